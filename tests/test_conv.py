"""Convolution: ops against numpy twins, gradients, geometry, layers, estimator."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from _examples import load_example
from _fd import check_layer
from _threads import one_thread, two_threads
from skdl import (
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    NNClassifier,
    NNRegressor,
    _ops,
    _reference,
)
from skdl._kernels import _conv
from skdl._network import build_layers

DTYPES = [np.float32, np.float64]
GEOMETRIES = [
    dict(),
    dict(strides=2),
    dict(strides=(2, 1), padding=((1, 1), (0, 2))),
    dict(dilation=(2, 1), padding=((2, 2), (1, 1))),
    dict(strides=(1, 3), dilation=2, padding=((1, 0), (2, 1))),
]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12,
                                                                     atol=1e-12)


def _data(rng, dtype, n=3, C=2, H=7, W=8, F=4, kh=3, kw=2):
    return (rng.randn(n, C, H, W).astype(dtype), rng.randn(F, C, kh, kw).astype(dtype),
            rng.randn(F).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv_ops_match_reference(dtype, geometry, unfolding):
    rng = np.random.RandomState(0)
    X, K, b = _data(rng, dtype)
    for bias, activation in [(b, None), (None, "relu"), (b, "tanh")]:
        assert_allclose(_ops.conv2d_forward(X, K, bias, activation=activation, **geometry),
                        _reference.conv2d_forward(X, K, bias, activation=activation,
                                                  **geometry), **_tol(dtype))
    Y = _ops.conv2d_forward(X, K, b, **geometry)
    dY = rng.randn(*Y.shape).astype(dtype)
    assert_allclose(_ops.conv2d_backward_input(dY, K, X.shape[2:], **geometry),
                    _reference.conv2d_backward_input(dY, K, X.shape[2:], **geometry),
                    **_tol(dtype))
    w = rng.uniform(0, 2, len(X))
    for weights, acc in [(None, None), (w, None), (w, np.float64)]:
        got = _ops.conv2d_backward_params(X, dY, weights, 0.3, acc, K.shape[2:], **geometry)
        ref = _reference.conv2d_backward_params(X, dY, weights, 0.3, acc, K.shape[2:],
                                                **geometry)
        for a, r in zip(got, ref):
            assert a.dtype == dtype
            assert_allclose(a, r, **_tol(dtype))


def test_conv_writes_into_given_gradient_views():
    rng = np.random.RandomState(1)
    X, K, b = _data(rng, np.float64, n=20)
    dY = rng.randn(20, 4, 5, 7)
    dK, db = np.empty_like(K), np.empty_like(b)
    out = _ops.conv2d_backward_params(X, dY, None, 1.0, None, (3, 2), dK=dK, db=db)
    assert out[0] is dK and out[1] is db
    assert_allclose(dK, _reference.conv2d_backward_params(X, dY, kernel_hw=(3, 2))[0])


def test_samples_do_not_depend_on_their_batch(unfolding):
    rng = np.random.RandomState(2)
    X, K, b = _data(rng, np.float32, n=40, C=3, H=9, W=9, F=8, kh=3, kw=3)
    Y = _ops.conv2d_forward(X, K, b, padding=((1, 1), (1, 1)), activation="relu")
    dY = rng.randn(*Y.shape).astype(np.float32)
    dX = _ops.conv2d_backward_input(dY, K, (9, 9), padding=((1, 1), (1, 1)))
    for rows in [np.arange(3), rng.permutation(40), np.array([39])]:
        assert_array_equal(_ops.conv2d_forward(X[rows], K, b, padding=((1, 1), (1, 1)),
                                               activation="relu"), Y[rows])
        assert_array_equal(_ops.conv2d_backward_input(dY[rows], K, (9, 9),
                                                      padding=((1, 1), (1, 1))), dX[rows])


def test_one_and_two_threads_agree_bit_for_bit(unfolding):
    rng = np.random.RandomState(3)
    X, K, b = _data(rng, np.float32, n=37, C=3, H=12, W=12, F=16, kh=3, kw=3)
    dY = rng.randn(37, 16, 10, 10).astype(np.float32)
    w = rng.uniform(size=37)
    results = []
    for threads in (one_thread, two_threads):
        with threads():
            results.append([
                _ops.conv2d_forward(X, K, b, activation="elu"),
                _ops.conv2d_backward_input(dY, K, (12, 12)),
                *_ops.conv2d_backward_params(X, dY, w, 0.5, None, (3, 3)),
                *_ops.conv2d_backward_params(X, dY, w, 0.5, np.float64, (3, 3)),
            ])
    for a, b2 in zip(*results):
        assert_array_equal(a, b2)


def test_read_only_inputs_and_no_mutation(unfolding):
    rng = np.random.RandomState(4)
    X, K, b = _data(rng, np.float64)
    dY = rng.randn(3, 4, 5, 7)
    copies = [a.copy() for a in (X, K, b, dY)]
    for a in (X, K, b, dY):
        a.flags.writeable = False
    _ops.conv2d_forward(X, K, b)
    _ops.conv2d_backward_input(dY, K, (7, 8))
    _ops.conv2d_backward_params(X, dY, None, 1.0, None, (3, 2))
    for a, c in zip((X, K, b, dY), copies):
        assert_array_equal(a, c)


@pytest.mark.parametrize("call, message", [
    (lambda X, K: _ops.conv2d_forward(X[:, :, :2], K),
     r"kernel spans 3 positions \(size 3, dilation 1\) but the padded input has only 2"),
    (lambda X, K: _ops.conv2d_forward(X, K, dilation=(4, 1)),
     "kernel spans 9 positions"),
    (lambda X, K: _ops.conv2d_forward(X, K, strides=0), "strides must be positive ints"),
    (lambda X, K: _ops.conv2d_forward(X, K, padding=((-1, 0), (0, 0))),
     "padding must be non-negative"),
    (lambda X, K: _ops.conv2d_forward(X, K, padding=1), r"padding must be \(\(top"),
    (lambda X, K: _ops.conv2d_forward(X[:, :1], K), "X has 1 channels but the kernel expects 2"),
    (lambda X, K: _ops.conv2d_forward(X[0], K), "X must be 4-D"),
    (lambda X, K: _ops.conv2d_forward(X, K, np.ones(3)), r"b has shape \(3,\)"),
    (lambda X, K: _ops.conv2d_backward_input(np.ones((3, 4, 2, 2)), K, (7, 8)),
     "dY has shape"),
    (lambda X, K: _ops.conv2d_backward_params(X, np.ones((3, 4, 5, 7)), np.ones(2), 1.0,
                                              None, (3, 2)), "sample_weight must have shape"),
])
def test_bad_geometry_is_a_clear_error(call, message):
    X, K, _ = _data(np.random.RandomState(5), np.float64)
    with pytest.raises(ValueError, match=message):
        call(X, K)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), C=st.integers(1, 3), F=st.integers(1, 4),
       H=st.integers(1, 9), W=st.integers(1, 9), kh=st.integers(1, 4),
       kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       dh=st.integers(1, 2), pads=st.tuples(*[st.integers(0, 2)] * 4),
       seed=st.integers(0, 2**16))
def test_conv_shapes_fuzzed(n, C, F, H, W, kh, kw, sh, sw, dh, pads, seed):
    rng = np.random.RandomState(seed)
    X, K = rng.randn(n, C, H, W), rng.randn(F, C, kh, kw)
    geometry = dict(strides=(sh, sw), dilation=(dh, 1),
                    padding=((pads[0], pads[1]), (pads[2], pads[3])))
    fits = ((kh - 1) * dh + 1 <= H + pads[0] + pads[1]) and (kw <= W + pads[2] + pads[3])
    if not fits:
        with pytest.raises(ValueError, match="spans"):
            _ops.conv2d_forward(X, K, **geometry)
        return
    Y_ref = _reference.conv2d_forward(X, K, **geometry)
    dY = rng.randn(*Y_ref.shape)
    dX_ref = _reference.conv2d_backward_input(dY, K, (H, W), **geometry)
    grads_ref = _reference.conv2d_backward_params(X, dY, None, 1.0, None, (kh, kw),
                                                  **geometry)
    default = _conv.patch_rows_min_channels()
    try:
        for min_channels in (1, 2**30):  # channels-last, then plane by plane
            _conv.patch_rows_min_channels(min_channels)
            assert_allclose(_ops.conv2d_forward(X, K, **geometry), Y_ref,
                            rtol=1e-12, atol=1e-12)
            assert_allclose(_ops.conv2d_backward_input(dY, K, (H, W), **geometry), dX_ref,
                            rtol=1e-12, atol=1e-12)
            for a, r in zip(_ops.conv2d_backward_params(X, dY, None, 1.0, None, (kh, kw),
                                                        **geometry), grads_ref):
                assert_allclose(a, r, rtol=1e-12, atol=1e-12)
    finally:
        _conv.patch_rows_min_channels(default)


# -- layers ---------------------------------------------------------------------
@pytest.mark.parametrize("spec, input_shape", [
    (Conv2D(3, 3), (2, 5, 6)),
    (Conv2D(3, (2, 3), strides=2, padding="same"), (2, 5, 6)),
    (Conv2D(2, 3, padding=1, dilation=2, activation="tanh"), (1, 6, 6)),
    (Conv2D(2, (3, 2), strides=(1, 2), padding=((1, 0), (0, 1)), use_bias=False), (2, 4, 5)),
    (Conv2D(2, (4, 5), activation="sigmoid"), (3, 4, 5)),  # kernel equal to the input
    (Conv2D(2, 2, padding="same", activation="softplus"), (4, 5)),  # no channel axis
    (Conv1D(3, 3), (2, 9)),
    (Conv1D(2, 4, strides=3, padding="same", activation="elliot"), (3, 10)),
    (Conv1D(2, 2, dilation=3, padding=2), (7,)),
    (Conv1D(3, 6), (2, 6)),
])
@pytest.mark.parametrize("batch", [1, 3])
def test_conv_layer_gradients(spec, input_shape, batch, unfolding):
    X = np.random.RandomState(batch).randn(batch, *input_shape)
    check_layer(spec, X)


def test_conv_layer_gradients_with_sample_weights():
    X = np.random.RandomState(6).randn(4, 2, 5, 5)
    check_layer(Conv2D(3, 3, padding="same", activation="tanh"), X,
                sample_weight=np.array([0.5, 2.0, 0.0, 1.5]))


@pytest.mark.parametrize("spec, input_shape, output_shape, kernel_shape", [
    (Conv2D(8, 3), (3, 10, 12), (8, 8, 10), (8, 3, 3, 3)),
    (Conv2D(8, 3, strides=2, padding="same"), (3, 10, 11), (8, 5, 6), (8, 3, 3, 3)),
    (Conv2D(4, (1, 5), dilation=(1, 2)), (10, 12), (4, 10, 4), (4, 1, 1, 5)),
    (Conv1D(6, 5, padding="same"), (2, 30), (6, 30), (6, 2, 5)),
    (Conv1D(6, 5, strides=2), (30,), (6, 13), (6, 1, 5)),
])
def test_output_shapes_and_weight_layout(spec, input_shape, output_shape, kernel_shape):
    layer = build_layers([spec], input_shape, np.float32)[0]
    assert layer.output_shape == output_shape
    assert layer.param_shapes["kernel"] == kernel_shape
    assert layer.param_shapes["bias"] == (kernel_shape[0],)


@pytest.mark.parametrize("spec, input_shape, error, message", [
    (Conv2D(2, 3), (2, 2, 5), ValueError, "kernel spans 3 positions"),
    (Conv2D(2, 3), (5,), ValueError, r"takes samples of shape \(channels, height, width\)"),
    (Conv1D(2, 3), (2, 3, 5), ValueError, r"takes samples of shape \(channels, length\)"),
    (Conv2D(2, (3, 3, 3)), (2, 5, 5), ValueError, "kernel_size must be a positive int or 2"),
    (Conv2D(2, 3, padding="full"), (2, 5, 5), ValueError, "padding"),
    (Conv2D(2, 3, padding=(1, -1)), (2, 5, 5), ValueError, "non-negative"),
    (Conv2D(0, 3), (2, 5, 5), ValueError, "filters"),
    (Conv1D(2, 3, strides=0), (2, 5), ValueError, "strides"),
])
def test_bad_layer_geometry(spec, input_shape, error, message):
    with pytest.raises(error, match=message):
        build_layers([spec], input_shape, np.float32)


def test_cnn_on_digits_reaches_98_5_percent():
    make_model = load_example("digits_cnn").make_model
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16, y, test_size=0.25, stratify=y, random_state=0)
    model = make_model(random_state=0).fit(X_train, y_train)
    assert model.score(X_test, y_test) >= 0.985


def test_conv_estimators_train_and_predict_images():
    rng = np.random.RandomState(7)
    X = rng.rand(120, 1, 6, 6).astype(np.float32)
    y = (X[:, 0, :3].mean(axis=(1, 2)) > X[:, 0, 3:].mean(axis=(1, 2))).astype(int)
    clf = NNClassifier([Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2),
                        Flatten(), Dropout(0.1), Dense(8, activation="relu")],
                       max_iter=150, learning_rate=0.01, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    # The same images as flat features with input_shape give the same model.
    flat = NNClassifier(clf.layers, input_shape=(1, 6, 6), max_iter=150,
                        learning_rate=0.01, random_state=0).fit(X.reshape(120, -1), y)
    assert_array_equal(flat.predict_proba(X.reshape(120, -1)), clf.predict_proba(X))
    w = clf.get_weights()
    assert w["conv2d"]["kernel"].shape == (4, 1, 3, 3)
    reg = NNRegressor([Conv1D(4, 3, activation="tanh"), Flatten()], input_shape=(1, -1),
                      max_iter=100, learning_rate=0.01, random_state=0)
    signal = rng.randn(100, 12)
    target = signal[:, 1:-1].sum(axis=1)
    assert reg.fit(signal, target).score(signal, target) > 0.9


def test_reused_training_buffers_change_nothing(monkeypatch):
    # Layers keep their large training arrays from batch to batch (a short
    # last batch takes a leading slice); the weights must be those of fresh
    # arrays every time, and nothing is kept once fit returns.
    rng = np.random.RandomState(8)
    X = rng.rand(70, 1, 7, 7)
    y = rng.randint(0, 3, 70)

    def make():
        return NNClassifier([Conv2D(3, 3, activation="relu"), MaxPool2D(2),
                             Conv2D(4, 2, padding="same", activation="tanh"), Flatten()],
                            batch_size=32, max_iter=3, random_state=0)

    reused = make().fit(X, y)
    assert not any("_scratch_arrays" in vars(layer) for layer in reused.network_.layers)
    from skdl.layers._base import Layer

    monkeypatch.setattr(Layer, "_scratch",
                        lambda self, key, shape, dtype=None: np.empty(shape, dtype or self.dtype))
    fresh = make().fit(X, y)
    for name, params in fresh.get_weights().items():
        for key, value in params.items():
            assert_array_equal(reused.get_weights()[name][key], value)


def test_training_buffers_are_not_pickled():
    import pickle

    net = build_layers([Conv2D(2, 2)], (1, 4, 4), np.float32)
    layer = net[0]
    layer._scratch("A", (3, 2, 3, 3))
    assert "_scratch_arrays" in vars(layer)
    assert "_scratch_arrays" not in vars(pickle.loads(pickle.dumps(layer)))


@pytest.mark.parametrize("filters, out_hw", [(2, (1, 1)), (16, (3, 2))])
def test_softmax_activation_normalizes_each_plane(filters, out_hw):
    """Softmax acts over each (sample, filter) plane: one sample's output never
    depends on the others, and the gradient matches finite differences."""
    rng = np.random.RandomState(0)
    X = rng.randn(3, 2, out_hw[0] + 2, out_hw[1] + 2)
    spec = Conv2D(filters, 3, activation="softmax")
    layer = check_layer(spec, X)
    Y = layer.forward(X)
    assert_allclose(Y.reshape(3, filters, -1).sum(axis=2), 1.0, rtol=1e-12)
    assert_allclose(layer.forward(X[:1]), Y[:1], rtol=1e-12)
