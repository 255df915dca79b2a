"""BatchNormalization and PReLU: ops against numpy twins, gradients, running
statistics, buffers in weights/pickles/snapshots, threads, estimators."""
import copy
import pickle

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError

from _fd import check_layer
from _threads import one_thread, two_threads
from skdl import (
    GRU,
    BatchNormalization,
    Conv1D,
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    MaxPool2D,
    NNClassifier,
    NNRegressor,
    PReLU,
    _ops,
    _reference,
)
from skdl._kernels import _norm
from skdl._network import Network, NetworkSnapshot, build_layers

from _networks import initialized_network as _network

DTYPES = [np.float32, np.float64]
CHUNK = _norm.CHUNK_


def _tol(dtype):
    return dict(rtol=3e-5, atol=3e-5) if dtype == np.float32 else dict(rtol=1e-11,
                                                                     atol=1e-11)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16.0).astype(np.float32), y, random_state=0)


# -- ops against their numpy twins ---------------------------------------------
# Positions per channel below, at and above the kernels' 8 lanes, with tails.
SHAPES = [(1, 1, 1), (5, 3, 1), (3, 2, 7), (2, 3, 8), (3, 2, 19), (2 * CHUNK + 5, 4, 3),
          (CHUNK, 1, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_ops_match_reference(dtype, shape):
    rng = np.random.RandomState(0)
    m, C, P = shape
    X = (rng.randn(*shape) * 3 + 2).astype(dtype)
    gamma, beta = rng.randn(C).astype(dtype), rng.randn(C).astype(dtype)
    w = rng.uniform(0, 2, m)
    w[0] = 1.0
    if m > 2:
        w[1] = 0.0
    dY = rng.randn(*shape).astype(dtype)
    for weights in (None, w):
        for g, b in ((gamma, beta), (None, None)):
            got = _ops.batchnorm_train_forward(X, g, b, 1e-3, weights)
            ref = _reference.batchnorm_train_forward(X, g, b, 1e-3, weights)
            for a, r in zip(got, ref):
                assert a.dtype == r.dtype
                assert_allclose(a, r, **_tol(dtype))
        Y, Xhat, mean, var = got
        for loss_w in (None, w):
            for need in (True, False):
                got = _ops.batchnorm_backward(dY, Xhat, gamma, var, 1e-3, loss_w, weights,
                                              0.7, need_input_grad=need)
                ref = _reference.batchnorm_backward(dY, Xhat, gamma, var, 1e-3, loss_w,
                                                    weights, 0.7, need_input_grad=need)
                assert (got[0] is None) == (not need)
                for a, r in zip(got, ref):
                    if r is not None:
                        assert a.dtype == dtype
                        assert_allclose(a, r, **_tol(dtype))
    moving_var = rng.uniform(0.5, 2, C)
    assert_allclose(_ops.batchnorm_inference(X, gamma, beta, mean, moving_var, 1e-2),
                    _reference.batchnorm_inference(X, gamma, beta, mean, moving_var, 1e-2),
                    **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_prelu_ops_match_reference(dtype, shape):
    rng = np.random.RandomState(1)
    X = rng.randn(*shape).astype(dtype)
    alpha = rng.uniform(-0.5, 1.0, shape[1]).astype(dtype)
    dY = rng.randn(*shape).astype(dtype)
    w = rng.uniform(0, 3, shape[0])
    assert_array_equal(_ops.prelu_forward(X, alpha), _reference.prelu_forward(X, alpha))
    for weights in (None, w):
        got = _ops.prelu_backward(X, dY, alpha, weights, 0.3)
        ref = _reference.prelu_backward(X, dY, alpha, weights, 0.3)
        assert_array_equal(got[0], ref[0])
        assert got[1].dtype == dtype
        assert_allclose(got[1], ref[1], **_tol(dtype))
    dX, dalpha = _ops.prelu_backward(X, dY, alpha, w, 0.3, need_input_grad=False)
    assert dX is None
    assert_allclose(dalpha, ref[1], **_tol(dtype))


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 3 * CHUNK), C=st.integers(1, 5), P=st.integers(1, 20),
       seed=st.integers(0, 1000))
def test_ops_fuzzed_shapes(m, C, P, seed):
    rng = np.random.RandomState(seed)
    X = rng.randn(m, C, P)
    dY = rng.randn(m, C, P)
    w = rng.randint(0, 3, m).astype(float)
    w[rng.randint(m)] = 1.0
    Y, Xhat, mean, var = _ops.batchnorm_train_forward(X, None, None, 1e-3, w)
    for a, r in zip((Y, Xhat, mean, var),
                    _reference.batchnorm_train_forward(X, None, None, 1e-3, w)):
        assert_allclose(a, r, rtol=1e-10, atol=1e-10)
    for a, r in zip(_ops.batchnorm_backward(dY, Xhat, None, var, 1e-3, w, w),
                    _reference.batchnorm_backward(dY, Xhat, None, var, 1e-3, w, w)):
        assert_allclose(a, r, rtol=1e-9, atol=1e-9)
    alpha = rng.randn(C)
    for a, r in zip(_ops.prelu_backward(X, dY, alpha, w),
                    _reference.prelu_backward(X, dY, alpha, w)):
        assert_allclose(a, r, rtol=1e-10, atol=1e-10)


def test_weighted_statistics_count_like_repeated_rows():
    rng = np.random.RandomState(2)
    X = rng.randn(7, 3, 2)
    k = np.array([0, 1, 3, 2, 0, 1, 4])
    _, _, mean, var = _ops.batchnorm_train_forward(X, None, None, 1e-3, k.astype(float))
    _, _, mean_r, var_r = _ops.batchnorm_train_forward(np.repeat(X, k, axis=0))
    assert_allclose(mean, mean_r, rtol=1e-13)
    assert_allclose(var, var_r, rtol=1e-13)
    # The weights' scale does not matter (no n - 1 anywhere).
    _, _, mean_s, var_s = _ops.batchnorm_train_forward(X, None, None, 1e-3, k * 1e-3)
    assert_allclose(mean_s, mean, rtol=1e-13)
    assert_allclose(var_s, var, rtol=1e-13)


def test_inference_op_in_place_and_formula():
    rng = np.random.RandomState(3)
    X = rng.randn(4, 3, 5).astype(np.float32)
    g, b, mu, v = rng.randn(3), rng.randn(3), rng.randn(3), rng.uniform(0.1, 2, 3)
    expected = (g[:, None] * (X - mu[:, None]) / np.sqrt(v[:, None] + 1e-3) + b[:, None])
    Y = _ops.batchnorm_inference(X, g, b, mu, v, 1e-3)
    assert_allclose(Y, expected, rtol=1e-5, atol=1e-6)
    _ops.batchnorm_inference(X, g, b, mu, v, 1e-3, out=X)
    assert_array_equal(X, Y)


@pytest.mark.parametrize("call, error, message", [
    (lambda X: _ops.batchnorm_train_forward(X[0]), ValueError, "must be 3-D"),
    (lambda X: _ops.batchnorm_train_forward(X[:0]), ValueError, "at least one row"),
    (lambda X: _ops.batchnorm_train_forward(X.astype(int)), TypeError, "float32 or float64"),
    (lambda X: _ops.batchnorm_train_forward(X, np.ones(2)), ValueError, r"gamma must be .*\(3,\)"),
    (lambda X: _ops.batchnorm_train_forward(X, None, None, 0.0), ValueError, "epsilon"),
    (lambda X: _ops.batchnorm_train_forward(X, sample_weight=np.zeros(4)), ValueError,
     "sums to 0"),
    (lambda X: _ops.batchnorm_train_forward(X, sample_weight=-np.ones(4)), ValueError,
     "non-negative"),
    (lambda X: _ops.batchnorm_train_forward(X, sample_weight=np.ones(3)), ValueError,
     r"shape \(4,\)"),
    (lambda X: _ops.batchnorm_inference(X, variance=-np.ones(3)), ValueError,
     "non-negative"),
    (lambda X: _ops.batchnorm_backward(X, X[:2]), ValueError, "Xhat has shape"),
    (lambda X: _ops.batchnorm_backward(X, X.astype(np.float32)), TypeError, "dtype"),
    (lambda X: _ops.prelu_forward(X, np.ones(4)), ValueError, r"alpha must be .*\(3,\)"),
    (lambda X: _ops.prelu_backward(X, X[:, :2], np.ones(3)), ValueError, "dY has shape"),
    (lambda X: _ops.batchnorm_train_forward(X, out=np.empty((4, 3, 1))), ValueError,
     "out must be"),
])
def test_op_errors(call, error, message):
    X = np.random.RandomState(0).randn(4, 3, 2)
    with pytest.raises(error, match=message):
        call(X)


# -- gradients -------------------------------------------------------------------
OPTIONS = [dict(), dict(center=False), dict(scale=False), dict(center=False, scale=False)]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("weights", ["none", "loss_only", "loss_and_statistics"])
@pytest.mark.parametrize("input_shape, axis", [
    ((4,), 1), ((2, 3, 4), 1), ((3, 5), 1), ((3, 2, 3), -1), ((2, 3, 2), 2)])
def test_batchnorm_gradients(options, weights, input_shape, axis):
    rng = np.random.RandomState(4)
    n = 5
    X = rng.randn(n, *input_shape) * 2 + 0.5
    w = None if weights == "none" else rng.uniform(0.2, 2.0, n)
    layer = check_layer(BatchNormalization(axis=axis, **options), X, sample_weight=w,
                        training=True, weigh_statistics=weights == "loss_and_statistics")
    assert set(layer.params) == ({"gamma"} if options.get("scale", True) else set()) | (
        {"beta"} if options.get("center", True) else set())


def test_batchnorm_gradient_with_zero_weights_weighed_statistics():
    # A sample of weight 0 is out of the statistics: the gradient stays exact.
    rng = np.random.RandomState(5)
    X = rng.randn(6, 2, 3)
    w = np.array([1.0, 0.0, 2.0, 0.5, 0.0, 3.0])
    check_layer(BatchNormalization(), X, sample_weight=w, training=True,
                weigh_statistics=True)


def test_batchnorm_gradient_with_sequence_mask():
    rng = np.random.RandomState(6)
    X = rng.randn(4, 5, 3)
    mask = rng.rand(4, 5) > 0.35
    mask[:, 0] = True
    w = rng.uniform(0.5, 2, 4)
    check_layer(BatchNormalization(axis=-1), X, sample_weight=w, mask=mask, training=True,
                weigh_statistics=True)


@pytest.mark.parametrize("input_shape, axis", [((5,), 1), ((2, 3, 4), 1), ((3, 4), -1)])
@pytest.mark.parametrize("initializer", [0.25, -0.3, "normal"])
def test_prelu_gradients(input_shape, axis, initializer):
    rng = np.random.RandomState(7)
    X = rng.randn(4, *input_shape)
    X[np.abs(X) < 1e-3] = 0.5  # keep finite differences off the kink
    layer = check_layer(PReLU(alpha_initializer=initializer, axis=axis), X,
                        sample_weight=rng.uniform(0, 2, 4))
    assert layer.params["alpha"].shape == (input_shape[axis - 1 if axis > 0 else axis],)


def test_prelu_values_and_slopes_per_channel():
    net = _network([PReLU(alpha_initializer=0.1)], (2, 3))
    net.layers[0].params["alpha"][...] = [0.5, -2.0]
    X = np.array([[[-1.0, 2.0, -3.0], [-1.0, 0.0, 4.0]]])
    assert_array_equal(net.forward(X), [[[-0.5, 2.0, -1.5], [2.0, 0.0, 4.0]]])


# -- running statistics and inference ------------------------------------------
def _batches(rng, shape, k=3):
    return [rng.randn(*shape) * (i + 1) + i for i in range(k)]


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9, 0.99])
def test_running_statistics_are_bias_corrected_averages(momentum):
    # Adam's bias-corrected moment: the moving average from zero accumulators,
    # divided by 1 - momentum**t after t batches. No trace of the starting
    # values (0 and 1) is left, whatever the momentum.
    rng = np.random.RandomState(8)
    net = _network([BatchNormalization(momentum=momentum)], (3, 2, 2))
    layer = net.layers[0]
    mean_acc, var_acc = np.zeros(3), np.zeros(3)
    weights = [None, rng.uniform(0, 2, 6), np.r_[np.zeros(3), np.ones(3)], None, None]
    batches = [rng.randn(6, 3, 2, 2) * (i + 1) + 3 * i for i in range(5)]
    for t, (X, w) in enumerate(zip(batches, weights), start=1):
        net.forward(X, training=True, sample_weight=w)
        ww = np.ones(6) if w is None else w
        share = ww[:, None, None, None] / (ww.sum() * 4)
        batch_mean = (share * X).sum(axis=(0, 2, 3))
        batch_var = (share * (X - batch_mean[:, None, None]) ** 2).sum(axis=(0, 2, 3))
        mean_acc = momentum * mean_acc + (1 - momentum) * batch_mean
        var_acc = momentum * var_acc + (1 - momentum) * batch_var
        state = net.get_weights()["batch_normalization"]
        assert_allclose(state["moving_mean"], mean_acc / (1 - momentum**t), rtol=1e-12)
        assert_allclose(state["moving_variance"], var_acc / (1 - momentum**t),
                        rtol=1e-12)
        assert_array_equal(state["n_updates"], [t])
        if t == 1:  # the first batch's statistics, exactly
            assert_allclose(layer.buffers["moving_mean"], batch_mean, rtol=1e-14)


def test_warmed_up_running_statistics_follow_the_plain_update():
    # Past a few 1 / (1 - momentum) batches (or at the count's cap) the update
    # is Keras' and PyTorch's, bit for bit.
    rng = np.random.RandomState(3)
    net = _network([BatchNormalization(momentum=0.9)], (4,))
    net.forward(rng.randn(8, 4), training=True)
    net.set_weights({"batch_normalization": {"n_updates": [2**24]}})
    before = net.get_weights()["batch_normalization"]
    X = rng.randn(8, 4) * 3 + 1
    net.forward(X, training=True)
    after = net.get_weights()["batch_normalization"]
    assert_array_equal(after["moving_mean"],
                       0.9 * before["moving_mean"] + (1 - 0.9) * X.mean(axis=0))
    assert_array_equal(after["moving_variance"],
                       0.9 * before["moving_variance"] + (1 - 0.9) * X.var(axis=0))
    assert_array_equal(after["n_updates"], [2**24])  # the count stops there
    for bad in ([-1.0], [1.5], [2.0**24 + 2]):
        with pytest.raises(ValueError, match="n_updates must be a whole number in "
                                             r"\[0, 16777216\]"):
            net.set_weights({"batch_normalization": {"n_updates": bad}})


def test_batch_of_zero_weights_leaves_running_statistics_alone():
    rng = np.random.RandomState(9)
    net = _network([BatchNormalization()], (3,))
    net.forward(rng.randn(5, 3), training=True)
    before = net.buffers.copy()
    Y = net.forward(rng.randn(5, 3), training=True, sample_weight=np.zeros(5))
    assert np.isfinite(Y).all()
    assert_array_equal(net.buffers, before)


def test_inference_uses_running_statistics_only():
    rng = np.random.RandomState(10)
    net = _network([Conv2D(3, 2), BatchNormalization(), PReLU()], (2, 5, 5))
    for X in _batches(rng, (8, 2, 5, 5), k=4):
        net.forward(X, training=True)
    before = net.buffers.copy()
    X = rng.randn(9, 2, 5, 5)
    full = net.forward(X)
    assert_array_equal(net.buffers, before)  # inference never updates them
    for i in range(len(X)):
        assert_array_equal(net.forward(X[i:i + 1]), full[i:i + 1])
    assert_array_equal(net.forward(X[::-1]), full[::-1])
    # And the formula with the running statistics:
    bn = net.layers[1]
    Z = net.layers[0].forward(X)
    moving = bn.buffers
    expected = (bn.params["gamma"][:, None, None] * (Z - moving["moving_mean"][:, None, None])
                / np.sqrt(moving["moving_variance"][:, None, None] + 1e-3)
                + bn.params["beta"][:, None, None])
    assert_allclose(net.layers[1].forward(Z), expected, rtol=1e-12, atol=1e-12)


def test_training_output_is_normalized_per_channel():
    rng = np.random.RandomState(11)
    X = rng.randn(16, 3, 4) * [[[1.0], [5.0], [0.1]]] + 7
    net = _network([BatchNormalization(axis=1, epsilon=1e-8)], (3, 4))
    Y = net.forward(X, training=True)
    assert_allclose(Y.mean(axis=(0, 2)), 0, atol=1e-10)
    assert_allclose(Y.var(axis=(0, 2)), 1, rtol=1e-5)  # eps / var is 1e-6
    seq = _network([BatchNormalization(axis=-1, epsilon=1e-8)], (3, 4))
    Y = seq.forward(X, training=True)
    assert_allclose(Y.mean(axis=(0, 1)), 0, atol=1e-10)
    assert_allclose(Y.var(axis=(0, 1)), 1, rtol=1e-5)


def test_masked_steps_are_out_of_the_statistics():
    rng = np.random.RandomState(12)
    X = rng.randn(3, 6, 2)
    mask = np.ones((3, 6), bool)
    mask[0, 4:] = mask[2, 3:] = False
    layers = [_network([BatchNormalization(axis=-1)], (6, 2)).layers[0] for _ in range(2)]
    X2 = X.copy()
    X2[~mask] = 1e6  # padding of any value
    Y1 = layers[0].forward(X, training=True, mask=mask)
    Y2 = layers[1].forward(X2, training=True, mask=mask)
    assert_allclose(Y1[mask], Y2[mask], rtol=1e-10)
    assert_allclose(layers[0].buffers["moving_mean"], layers[1].buffers["moving_mean"],
                    rtol=1e-12)


def test_network_weighted_batch_equals_repeated_batch():
    # Gradients included: weights passed to forward and backward make an
    # integer weight k the same as k copies of the sample.
    rng = np.random.RandomState(13)
    specs = [Dense(5), BatchNormalization(), PReLU(), Dense(2)]
    X = rng.randn(6, 4)
    k = np.array([2, 0, 1, 3, 1, 2])
    R = rng.randn(6, 2)
    grads = []
    for Xb, Rb, w in ((X, R, k.astype(float)), (np.repeat(X, k, 0), np.repeat(R, k, 0), None)):
        net = _network(specs, (4,))
        out = net.forward(Xb, training=True, sample_weight=w)
        net.backward(Rb, w, 1.0 / k.sum(), np.float64)
        grads.append((out, net.grads.copy(), net.buffers.copy()))
    assert_allclose(np.repeat(grads[0][0], k, 0), grads[1][0], rtol=1e-12)
    assert_allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-12)
    assert_allclose(grads[0][2], grads[1][2], rtol=1e-12)


# -- threads ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_ops_identical_with_one_and_two_threads(dtype):
    rng = np.random.RandomState(14)
    X = (rng.randn(5 * CHUNK + 3, 6, 13) * 3).astype(dtype)
    dY = rng.randn(*X.shape).astype(dtype)
    w = rng.uniform(0, 2, len(X))
    g, b = rng.randn(6).astype(dtype), rng.randn(6).astype(dtype)
    results = []
    for threads in (one_thread, two_threads):
        with threads():
            Y, Xhat, mean, var = _ops.batchnorm_train_forward(X, g, b, 1e-3, w)
            back = _ops.batchnorm_backward(dY, Xhat, g, var, 1e-3, w, w, 0.5)
            prelu = _ops.prelu_backward(X, dY, g, w, 0.5)
            results.append((Y, Xhat, mean, var) + back + prelu
                           + (_ops.batchnorm_inference(X, g, b, mean, var, 1e-3),))
    for a, b_ in zip(*results):
        assert_array_equal(a, b_)


def test_model_identical_with_one_and_two_threads(digits):
    Xtr, _, ytr, _ = digits
    models = []
    for threads in (one_thread, two_threads):
        with threads():
            # Dense(300): over 16384 weights (two optimizer chunks) and a bias
            # gradient of more than one 64-column block, so both split.
            models.append(NNClassifier(
                [Conv2D(4, 3, padding="same"), BatchNormalization(), PReLU(),
                 MaxPool2D(2), Flatten(), Dense(300), BatchNormalization(), PReLU()],
                input_shape=(1, 8, 8), batch_size=100, max_iter=2,
                random_state=3).fit(Xtr, ytr))
    w1, w2 = (m.get_weights() for m in models)
    assert "moving_variance" in w1["batch_normalization"]
    for layer in w1:
        for key in w1[layer]:
            assert_array_equal(w1[layer][key], w2[layer][key])


# -- estimators ------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classifier_with_batchnorm_and_prelu_learns_digits(digits):
    Xtr, Xte, ytr, yte = digits
    clf = NNClassifier([Dense(64), BatchNormalization(), PReLU(), Dense(32),
                        BatchNormalization(), PReLU()], max_iter=100,
                       random_state=0).fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= 0.96
    cnn = NNClassifier([Conv2D(8, 3, padding="same"), BatchNormalization(), PReLU(),
                        MaxPool2D(2), Flatten()], input_shape=(1, 8, 8), max_iter=100,
                       random_state=0).fit(Xtr, ytr)
    assert cnn.score(Xte, yte) >= 0.95


def _offset_problem():
    """Binary data far from the running statistics' start (mean 0, variance
    1): what running averages that remember their start get wrong."""
    X, y = make_classification(400, 10, n_informative=5, random_state=0)
    return (X + 30).astype(np.float32), y


def _accuracy_with_batch_statistics(clf, X, y):
    """The accuracy the network has while training: every batch-norm layer
    normalizing by the statistics of the batch (here all of X)."""
    out = copy.deepcopy(clf.network_).forward(X, training=True)
    return np.mean(clf.classes_[(out[:, 0] > 0).astype(int)] == y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_short_training_predicts_as_well_as_it_trains():
    # Issue 21: Keras' plain moving averages with momentum 0.99 after 208
    # batches still held 0.99**208 = 12% of their starting values, and this
    # net, 0.91 accurate with its batches' statistics, predicted at 0.58
    # (chance is 0.5). With the defaults (bias correction, momentum 0.9) it
    # predicts as it trains.
    X, y = _offset_problem()
    clf = NNClassifier([Dense(16), BatchNormalization(), Dense(16, activation="relu")],
                       batch_size=32, max_iter=16, random_state=0).fit(X, y)
    assert clf.t_ == 16 * 400  # 16 epochs of 13 batches
    training = _accuracy_with_batch_statistics(clf, X, y)
    assert training >= 0.9
    assert clf.score(X, y) >= training - 0.02


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bias_corrected_statistics_of_fixed_inputs_are_exact_at_any_momentum():
    # Normalizing the inputs themselves, the batches' statistics do not drift:
    # the running ones are their average even at momentum 0.99 after 208
    # batches (the plain average put the means 1.7 to 4.1 standard deviations
    # off, and predicted at 0.84).
    X, y = _offset_problem()
    clf = NNClassifier([BatchNormalization(momentum=0.99), Dense(16, activation="relu")],
                       batch_size=32, max_iter=16, random_state=0).fit(X, y)
    bn = clf.get_weights()["batch_normalization"]
    assert_allclose(bn["moving_mean"], X.mean(axis=0), atol=0.05 * X.std(axis=0).min())
    assert_allclose(bn["moving_variance"], X.var(axis=0), rtol=0.1)
    assert clf.score(X, y) >= _accuracy_with_batch_statistics(clf, X, y) - 0.01
    assert_array_equal(bn["n_updates"], [208])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("how", ["partial_fit", "warm_start", "pickle"])
def test_update_count_goes_on(how):
    X, y = _offset_problem()
    clf = NNClassifier([Dense(8), BatchNormalization(name="bn")], batch_size=100,
                       max_iter=2, random_state=0).fit(X, y)
    assert_array_equal(clf.get_weights()["bn"]["n_updates"], [8])
    if how == "pickle":
        clf = pickle.loads(pickle.dumps(clf))
        assert_array_equal(clf.get_weights()["bn"]["n_updates"], [8])
    if how == "warm_start":
        clf.set_params(warm_start=True, max_iter=1).fit(X, y)
    else:
        clf.partial_fit(X, y)
    assert_array_equal(clf.get_weights()["bn"]["n_updates"], [12])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_layers_pickled_before_the_count_update_as_warmed_up():
    # A pickle from before n_updates holds layers whose buffer_shapes lack it:
    # they load, predict as before, and go on with the plain update.
    X, y = _offset_problem()
    clf = NNClassifier([Dense(8), BatchNormalization(name="bn")], batch_size=100,
                       max_iter=2, random_state=0).fit(X, y)
    net = clf.network_
    del net.layers[1].buffer_shapes["n_updates"]
    net.buffers = net.buffers[:-1]  # the count is the network's last buffer
    old = pickle.loads(pickle.dumps(clf))
    assert "n_updates" not in old.get_weights()["bn"]
    assert_array_equal(old.predict_proba(X), clf.predict_proba(X))
    before = old.get_weights()["bn"]
    old.network_.forward(X[:100], training=True)
    after = old.get_weights()["bn"]
    batch = X[:100] @ old.get_weights()["dense"]["kernel"] + old.get_weights()["dense"]["bias"]
    assert_allclose(after["moving_mean"],
                    0.9 * before["moving_mean"] + 0.1 * batch.mean(axis=0), rtol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_regressor_with_batchnorm_on_a_sequence_learns():
    rng = np.random.RandomState(15)
    X = rng.randn(300, 6, 2)
    y = X[:, :, 0].sum(axis=1) - X[:, -1, 1]
    reg = NNRegressor([Conv1D(8, 2, padding="same"), BatchNormalization(), PReLU(),
                       Flatten()], input_shape=(2, 6), max_iter=80, learning_rate=0.01,
                      random_state=0)
    reg.fit(X.transpose(0, 2, 1), y)
    assert reg.score(X.transpose(0, 2, 1), y) > 0.9
    seq = NNRegressor([GRU(8, return_sequences=True), BatchNormalization(axis=-1),
                       PReLU(axis=-1), Flatten()], max_iter=40, learning_rate=0.01,
                      random_state=0).fit(X, y)
    assert seq.score(X, y) > 0.9


@pytest.fixture(scope="module")
def fitted(digits):
    Xtr, _, ytr, _ = digits
    return NNClassifier([Dense(16), BatchNormalization(), PReLU(), Dense(8),
                         BatchNormalization(scale=False)], max_iter=3,
                        random_state=0).fit(Xtr, ytr)


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_pickle_and_joblib_roundtrips_are_bit_identical(fitted, digits, tmp_path, mmap_mode):
    X = digits[1]
    expected = fitted.predict_proba(X)
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    for loaded in (joblib.load(path, mmap_mode=mmap_mode), pickle.loads(pickle.dumps(fitted))):
        assert_array_equal(loaded.predict_proba(X), expected)
        net = loaded.network_
        assert_array_equal(net.buffers, fitted.network_.buffers)
        for layer in net.layers:  # views of the loaded buffers, not copies
            for view in layer.buffers.values():
                assert np.shares_memory(view, net.buffers)


def test_pickled_layers_leave_out_their_views(fitted):
    layer = fitted.network_.layers[1]
    state = layer.__getstate__()
    assert state["buffers"] == {} and state["params"] == {}


def test_get_and_set_weights_with_statistics(fitted, digits):
    X = digits[1]
    clf = pickle.loads(pickle.dumps(fitted))
    weights = clf.get_weights()
    bn = weights["batch_normalization"]
    assert sorted(bn) == ["beta", "gamma", "moving_mean", "moving_variance", "n_updates"]
    assert sorted(weights["batch_normalization_1"]) == ["beta", "moving_mean",
                                                        "moving_variance", "n_updates"]
    n_train = len(digits[0])  # every training batch was counted
    steps = fitted.n_iter_ * -(-n_train // fitted._batch_size(n_train))
    assert_array_equal(bn["n_updates"], [steps])
    assert sorted(weights["prelu"]) == ["alpha"]
    assert bn["moving_mean"].dtype == np.float32
    # Copies: changing them does nothing until set_weights.
    bn["moving_mean"] += 1.0
    assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))
    clf.set_weights({"batch_normalization": {"moving_mean": bn["moving_mean"]}})
    assert not np.allclose(clf.predict_proba(X), fitted.predict_proba(X))
    clf.set_weights(fitted.get_weights())
    assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))
    for bad, message in [({"moving_variance": -np.ones(16)}, "non-negative"),
                         ({"moving_mean": np.ones(3)}, "has shape"),
                         ({"moving_mean": np.full(16, np.nan)}, "NaN"),
                         ({"running_mean": np.ones(16)}, "has no parameter")]:
        with pytest.raises(ValueError, match=message):
            clf.set_weights({"batch_normalization": {"gamma": np.zeros(16), **bad}})
    assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))  # nothing written


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_snapshot_and_restore(fitted, digits):
    Xtr, Xte, ytr, _ = digits
    clf = pickle.loads(pickle.dumps(fitted))
    net = clf.network_
    expected = clf.predict_proba(Xte)
    snap = net.snapshot()
    assert isinstance(snap, NetworkSnapshot)
    assert not np.shares_memory(snap.params, net.params)
    assert not np.shares_memory(snap.buffers, net.buffers)
    clf.partial_fit(Xtr, ytr)
    assert not np.array_equal(net.buffers, snap.buffers)
    assert not np.allclose(clf.predict_proba(Xte), expected)
    net.restore(snap)
    assert_array_equal(clf.predict_proba(Xte), expected)
    assert np.shares_memory(net.layers[1].buffers["moving_mean"], net.buffers)
    assert pickle.loads(pickle.dumps(snap)).buffers.shape == snap.buffers.shape
    other = _network([Dense(3), BatchNormalization()], (4,), dtype=np.float32)
    with pytest.raises(ValueError, match="another network"):
        net.restore(other.snapshot())
    with pytest.raises(TypeError, match="Network.snapshot"):
        net.restore((snap.params, snap.buffers))


def test_network_pickled_without_buffers_still_loads():
    net = _network([Dense(3)], (4,))
    state = net.__getstate__()
    del state["buffers"]
    loaded = Network.__new__(Network)
    loaded.__setstate__(state)
    assert loaded.buffers.shape == (0,)
    assert_array_equal(loaded.forward(np.ones((2, 4))), net.forward(np.ones((2, 4))))


# -- specs and errors -------------------------------------------------------------
def test_generated_names():
    layers = build_layers([BatchNormalization(), PReLU(), BatchNormalization()], (3,),
                          np.float32)
    assert [layer.name for layer in layers] == ["batch_normalization", "prelu",
                                                "batch_normalization_1"]


@pytest.mark.parametrize("spec", [BatchNormalization, PReLU])
@pytest.mark.parametrize("input_shape, axis", [((4,), 0), ((4,), 2), ((4,), -2),
                                               ((2, 3), 3), ((2, 3), -3)])
def test_bad_axis_is_a_clear_error(spec, input_shape, axis):
    with pytest.raises(ValueError, match=f"axis={axis} is not an axis of the samples"):
        build_layers([spec(axis=axis)], input_shape, np.float32)


@pytest.mark.parametrize("params, message", [
    (dict(momentum=1.0), "momentum"), (dict(momentum=-0.1), "momentum"),
    (dict(epsilon=0.0), "epsilon"), (dict(axis=1.5), "axis"), (dict(center="yes"), "center")])
def test_bad_batchnorm_hyper_parameters(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        build_layers([BatchNormalization(**params)], (3,), np.float32)


def test_bad_prelu_hyper_parameters():
    with pytest.raises(InvalidParameterError, match="alpha_initializer"):
        build_layers([PReLU(alpha_initializer="nope")], (3,), np.float32)


def test_bad_input_shape_in_the_estimator_is_a_clear_error(digits):
    Xtr, _, ytr, _ = digits
    clf = NNClassifier([BatchNormalization(axis=2)], max_iter=1)
    with pytest.raises(ValueError, match="axis=2 is not an axis"):
        clf.fit(Xtr, ytr)


def test_specs_clone_and_nested_params():
    spec = BatchNormalization(axis=-1, momentum=0.9, center=False)
    assert clone(spec).get_params() == spec.get_params()
    assert PReLU(alpha_initializer=0.1).set_params(axis=-1).axis == -1


def test_embedding_then_batchnorm_on_features():
    net = _network([Embedding(10, 4), BatchNormalization(axis=-1)], (5,))
    X = np.random.RandomState(0).randint(0, 10, (3, 5))
    assert net.forward(X, training=True).shape == (3, 5, 4)
