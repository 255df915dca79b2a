"""Pooling: ops against numpy twins, gradients, geometry, layers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from _fd import check_layer
from _networks import initialized_network
from _threads import one_thread, two_threads
from skdl import (
    AvgPool1D,
    Dense,
    Embedding,
    AvgPool2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    LastStep,
    LayerNormalization,
    MaxPool1D,
    MaxPool2D,
    MultiHeadAttention,
    NNClassifier,
    _ops,
    _reference,
)
from skdl._network import build_layers
from skdl.layers._base import forward_chain

GEOMETRIES = [
    dict(pool_size=2),
    dict(pool_size=3, strides=1),  # overlapping windows, as pydnn allowed
    dict(pool_size=(2, 3), strides=(1, 2), padding=((1, 0), (1, 1))),
    dict(pool_size=(3, 2), strides=(2, 1), padding=((1, 1), (0, 1))),
    dict(pool_size=2, padding=((0, 1), (0, 0))),  # 2x2 reaching into trailing padding
]


@pytest.mark.parametrize("pool, strides", [(2, 2), (3, 2), (2, 1)])
def test_max_pool_ties_go_to_the_first_position(pool, strides):
    # 2x2 windows with stride 2 take a dedicated loop; it must agree with the
    # general one, which keeps the first maximum in row-major order.
    X = np.zeros((1, 2, 6, 6))
    X[0, 1, ::3, ::3] = 1.0  # some windows hold one 1, the rest are all ties
    Y, argmax = _ops.maxpool2d_forward(X, pool, strides)
    Y_ref, argmax_ref = _reference.maxpool2d_forward(X, pool, strides)
    assert_array_equal(Y, Y_ref)
    assert_array_equal(argmax, argmax_ref)


def _distinct(rng, shape, dtype=np.float64):
    """Values with no ties, so the maximum of every window is unique."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 3).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_pool_ops_match_reference(dtype, geometry):
    rng = np.random.RandomState(0)
    X = _distinct(rng, (3, 2, 7, 6), dtype)
    Y, argmax = _ops.maxpool2d_forward(X, **geometry)
    Y_ref, argmax_ref = _reference.maxpool2d_forward(X, **geometry)
    assert_array_equal(Y, Y_ref)
    assert_array_equal(argmax, argmax_ref)
    dY = rng.randn(*Y.shape).astype(dtype)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13)
    assert_allclose(_ops.maxpool2d_backward(dY, argmax, (7, 6)),
                    _reference.maxpool2d_backward(dY, argmax_ref, (7, 6)), **tol)
    assert_allclose(_ops.avgpool2d_forward(X, **geometry),
                    _reference.avgpool2d_forward(X, **geometry), **tol)
    assert_allclose(_ops.avgpool2d_backward(dY, (7, 6), **geometry),
                    _reference.avgpool2d_backward(dY, (7, 6), **geometry), **tol)


def test_padding_never_wins_and_is_not_averaged():
    X = -np.ones((1, 1, 2, 2))
    Y, argmax = _ops.maxpool2d_forward(X, 2, 1, padding=((1, 1), (1, 1)))
    assert_array_equal(Y, -np.ones((1, 1, 3, 3)))  # not the padding's 0
    assert_array_equal(_ops.avgpool2d_forward(X, 2, 1, padding=((1, 1), (1, 1))),
                       -np.ones((1, 1, 3, 3)))


def test_one_and_two_threads_agree():
    rng = np.random.RandomState(1)
    X = rng.randn(16, 8, 12, 12).astype(np.float32)
    out = []
    for threads in (one_thread, two_threads):
        with threads():
            Y, argmax = _ops.maxpool2d_forward(X, 3, 1)
            dY = np.ones_like(Y)
            out.append([Y, argmax, _ops.maxpool2d_backward(dY, argmax, (12, 12)),
                        _ops.avgpool2d_backward(dY, (12, 12), 3, 1)])
    for a, b in zip(*out):
        assert_array_equal(a, b)


@pytest.mark.parametrize("pool, strides", [(2, 2), (3, 2)])
def test_max_pool_over_blocks_of_planes(pool, strides):
    # The kernel works on blocks of 64 planes: 3 * 50 planes are two whole
    # blocks and a partial one; 9x7 planes leave a row and a column out of
    # the 2x2 windows.
    rng = np.random.RandomState(2)
    X = _distinct(rng, (3, 50, 9, 7), np.float32)
    Y_ref, argmax_ref = _reference.maxpool2d_forward(X, pool, strides)
    dY = rng.randn(*Y_ref.shape).astype(np.float32)
    dX_ref = _reference.maxpool2d_backward(dY, argmax_ref, (9, 7))
    dXs = []
    for threads in (one_thread, two_threads):
        with threads():
            Y, argmax = _ops.maxpool2d_forward(X, pool, strides)
            dXs.append(_ops.maxpool2d_backward(dY, argmax, (9, 7)))
        assert_array_equal(Y, Y_ref)
        assert_array_equal(argmax, argmax_ref)
    # Overlapping windows add in a fixed order: any thread count, one result.
    assert_array_equal(dXs[0], dXs[1])
    assert_allclose(dXs[0], dX_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda X: _ops.maxpool2d_forward(X, 4), r"pool spans 4 positions .* only 3"),
    (lambda X: _ops.avgpool2d_forward(X, 2, 0), "strides must be positive ints"),
    (lambda X: _ops.maxpool2d_forward(X, 2, padding=((2, 0), (0, 0))),
     "must be smaller than the pool size"),
    (lambda X: _ops.maxpool2d_forward(X, 2, padding=((0, 0), (-1, 0))), "non-negative"),
    (lambda X: _ops.maxpool2d_backward(np.ones((1, 1, 1, 1)),
                                       np.full((1, 1, 1, 1), 99, np.int32), (3, 3)),
     "positions outside an input plane"),
    (lambda X: _ops.avgpool2d_backward(np.ones((1, 1, 2, 2)), (3, 3), 2), "spatial shape"),
])
def test_bad_geometry(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.ones((1, 1, 3, 3)))


@settings(max_examples=30, deadline=None)
@given(H=st.integers(1, 8), W=st.integers(1, 8), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_pool_shapes_fuzzed(H, W, kh, kw, sh, sw, seed):
    X = _distinct(np.random.RandomState(seed), (2, 2, H, W))
    geometry = dict(pool_size=(kh, kw), strides=(sh, sw))
    if kh > H or kw > W:
        with pytest.raises(ValueError, match="pool spans"):
            _ops.maxpool2d_forward(X, **geometry)
        return
    Y, argmax = _ops.maxpool2d_forward(X, **geometry)
    assert_array_equal(argmax, _reference.maxpool2d_forward(X, **geometry)[1])
    assert_allclose(_ops.avgpool2d_forward(X, **geometry),
                    _reference.avgpool2d_forward(X, **geometry), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("spec, input_shape", [
    (MaxPool2D(2), (2, 4, 6)),
    (MaxPool2D(3, strides=1), (2, 5, 5)),
    (MaxPool2D((2, 3), strides=(1, 2), padding="same"), (2, 5, 7)),
    (MaxPool2D(3), (3, 3, 3)),  # pool equal to the input
    (AvgPool2D(2), (2, 4, 6)),
    (AvgPool2D(3, strides=2, padding=1), (1, 6, 5)),
    (AvgPool2D(2), (4, 6)),  # no channel axis
    (MaxPool1D(2), (3, 8)),
    (MaxPool1D(3, strides=1, padding="same"), (2, 7)),
    (AvgPool1D(4, strides=2), (9,)),
    (GlobalMaxPool2D(), (3, 4, 5)),
    (GlobalAvgPool2D(), (3, 4, 5)),
    (GlobalMaxPool1D(), (3, 7)),
    (GlobalAvgPool1D(), (3, 7)),
])
@pytest.mark.parametrize("batch", [1, 3])
def test_pool_layer_gradients(spec, input_shape, batch):
    X = _distinct(np.random.RandomState(batch), (batch,) + input_shape)
    check_layer(spec, X)


@pytest.mark.parametrize("spec, input_shape, output_shape", [
    (MaxPool2D(2), (3, 8, 9), (3, 4, 4)),
    (MaxPool2D(2, padding="same"), (3, 8, 9), (3, 4, 5)),
    (AvgPool2D(3, strides=1), (8, 9), (6, 7)),
    (MaxPool1D(2), (4, 9), (4, 4)),
    (MaxPool1D(2), (9,), (4,)),
    (GlobalAvgPool2D(), (5, 3, 3), (5,)),
    (GlobalMaxPool1D(), (6, 10), (6,)),
])
def test_output_shapes(spec, input_shape, output_shape):
    layer = build_layers([spec], input_shape, np.float32)[0]
    assert layer.output_shape == output_shape
    assert layer.param_shapes == {}


def test_global_pools_are_channel_means_and_maxima():
    X = np.random.RandomState(2).randn(4, 3, 5, 6)
    avg = build_layers([GlobalAvgPool2D()], (3, 5, 6), np.float64)[0]
    mx = build_layers([GlobalMaxPool2D()], (3, 5, 6), np.float64)[0]
    assert_allclose(avg.forward(X), X.mean(axis=(2, 3)))
    assert_allclose(mx.forward(X), X.max(axis=(2, 3)))


# -- LastStep ----------------------------------------------------------------------

# Rows: left-aligned (padded at the end), right-aligned (padded in front), all
# padding, holes in the middle, nothing padded.
LAST_STEP_MASK = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0],
                           [1, 1, 1, 1]], bool)


def _last_steps(X, mask):
    """numpy: each row's last step whose mask is True, zeros if none."""
    Y = np.zeros((len(X), X.shape[2]), X.dtype)
    for i, keep in enumerate(mask):
        if keep.any():
            Y[i] = X[i, np.flatnonzero(keep)[-1]]
    return Y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_last_step_values_with_and_without_a_mask(dtype):
    X = np.random.RandomState(0).randn(5, 4, 3).astype(dtype)
    X[0, 3] = np.inf  # a padded step's values never reach the output
    X[2, :] = np.nan
    before = X.copy()
    layer = build_layers([LastStep()], (4, 3), dtype)[0]
    Y = layer.forward(X, mask=LAST_STEP_MASK)
    assert Y.dtype == dtype and layer.output_shape == (3,)
    assert_array_equal(Y, _last_steps(X, LAST_STEP_MASK))
    assert_array_equal(Y[[0, 1, 2, 3]], [X[0, 1], X[1, 3], np.zeros(3), X[3, 2]])
    assert_array_equal(layer.forward(X), X[:, -1])
    assert_array_equal(X, before)  # the input is not changed
    one = build_layers([LastStep()], (4,), dtype)[0]  # (steps,): one feature
    assert one.output_shape == (1,)
    assert_array_equal(one.forward(X[..., 0], mask=LAST_STEP_MASK),
                       _last_steps(X[..., :1], LAST_STEP_MASK))


def test_last_step_ends_the_mask():
    net = initialized_network([Embedding(5, 2, mask_zero=True), LastStep()], (4,))
    layers = net.layers
    tokens = np.array([[1, 2, 0, 0], [0, 0, 3, 4]])
    Y, mask = forward_chain(layers, tokens)
    assert mask is None
    table = layers[0].params["embeddings"]
    assert_array_equal(Y, table[[2, 4]])


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("input_shape", [(4, 3), (4,)])
def test_last_step_gradients(masked, input_shape):
    X = np.random.RandomState(3).randn(*((5,) + input_shape))
    layer = check_layer(LastStep(), X, mask=LAST_STEP_MASK if masked else None)
    assert layer.param_shapes == {} and layer.forward_flops() == 0


def test_last_step_backward_scatters_into_the_read_step():
    X = np.random.RandomState(4).randn(5, 4, 3)
    layer = build_layers([LastStep()], (4, 3), np.float64)[0]
    layer.forward(X, training=True, mask=LAST_STEP_MASK)
    dY = np.arange(1.0, 16.0).reshape(5, 3)
    dX = layer.backward(dY, None)
    expected = np.zeros_like(X)
    for i, step in [(0, 1), (1, 3), (3, 2), (4, 3)]:  # nothing for all-padded row 2
        expected[i, step] = dY[i]
    assert_array_equal(dX, expected)


def _right_aligned(n=90, steps=6, seed=0):
    """Token windows padded in front (0), the class read off the last token."""
    rng = np.random.RandomState(seed)
    X = rng.randint(1, 8, (n, steps))
    lengths = rng.randint(1, steps + 1, n)
    X[np.arange(steps) < steps - lengths[:, None]] = 0
    return X, X[:, -1] % 3


def _causal_reader(max_iter):
    return NNClassifier([Embedding(8, 8, mask_zero=True),
                         MultiHeadAttention(2, causal=True), LayerNormalization(),
                         LastStep(), Dense(8, activation="relu")],
                        max_iter=max_iter, learning_rate=0.01, random_state=0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_causal_attention_last_step_ignores_padding_in_front():
    X, y = _right_aligned()
    clf = _causal_reader(60).fit(X, y)
    assert clf.score(X, y) > 0.9
    padded = np.pad(X, ((0, 0), (3, 0)))  # three more steps of padding in front
    longer = _causal_reader(1).fit(padded, y)
    longer.set_weights(clf.get_weights())
    assert_allclose(longer.predict_proba(padded), clf.predict_proba(X),
                    rtol=1e-5, atol=1e-6)


def test_last_step_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"LastStep 'last' reads sequences of shape "
                                         r"\(steps, features\) or \(steps,\), got "
                                         r"samples of shape \(2, 3, 4\)"):
        build_layers([LastStep(name="last")], (2, 3, 4), np.float64)
    with pytest.raises(ValueError, match="'name' parameter of LastStep"):
        build_layers([LastStep(name=3)], (3, 4), np.float64)
