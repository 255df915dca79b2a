"""Every op against its plain-numpy twin; row and thread independence; input errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from _threads import one_thread, two_threads
from skdl import _ops, _reference

DTYPES = [np.float32, np.float64]
ACTIVATIONS = sorted(_ops.ACTIVATIONS)


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


def _rand(rng, *shape, dtype=np.float64, scale=1.0):
    return (rng.randn(*shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 5, 17, 130, 300])
# Around the kernel's tiles: 8 and 16 columns per vector, k in blocks of 256.
@pytest.mark.parametrize("k, p", [(13, 7), (1, 1), (300, 17), (513, 33)])
def test_dense_forward(dtype, n, k, p):
    rng = np.random.RandomState(n)
    X, W, b = _rand(rng, n, k, dtype=dtype), _rand(rng, k, p, dtype=dtype), _rand(rng, p, dtype=dtype)
    # The standard error bound of a k-term dot product in this precision.
    eps = np.finfo(dtype).eps
    for bias in (None, b):
        error = _ops.dense_forward(X, W, bias) - _reference.dense_forward(X, W, bias)
        assert (np.abs(error) <= k * eps * (np.abs(X) @ np.abs(W) + (bias is not None) * np.abs(b))
                + 1e-30).all()
    dY = _rand(rng, n, p, dtype=dtype)
    error = _ops.dense_backward_input(dY, W) - _reference.dense_backward_input(dY, W)
    assert (np.abs(error) <= p * eps * (np.abs(dY) @ np.abs(W.T)) + 1e-30).all()
    if k <= 13:  # short sums: close in the usual sense too
        assert_allclose(_ops.dense_forward(X, W, b), _reference.dense_forward(X, W, b),
                        **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_with_no_input_features_is_the_bias(dtype):
    b = np.array([0.5, -2.0], dtype=dtype)
    Y = _ops.dense_forward(np.ones((3, 0), dtype), np.ones((0, 2), dtype), b, "relu")
    assert_array_equal(Y, np.tile([0.5, 0.0], (3, 1)).astype(dtype))
    assert_array_equal(_ops.dense_backward_input(np.ones((3, 2), dtype), np.ones((0, 2), dtype)),
                       np.ones((3, 0), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_forward_fused_activation(dtype, activation):
    rng = np.random.RandomState(1)
    X, W, b = _rand(rng, 70, 9, dtype=dtype), _rand(rng, 9, 6, dtype=dtype), _rand(rng, 6, dtype=dtype)
    assert_allclose(_ops.dense_forward(X, W, b, activation),
                    _reference.dense_forward(X, W, b, activation), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("accumulate", [None, np.float64])
def test_dense_param_grads(dtype, weighted, accumulate):
    rng = np.random.RandomState(2)
    X, dY = _rand(rng, 90, 600, dtype=dtype), _rand(rng, 90, 11, dtype=dtype)
    w = rng.uniform(0, 3, 90) if weighted else None
    dW, db = np.empty((600, 11), dtype), np.empty(11, dtype)
    out = _ops.dense_param_grads(X, dY, w, 0.25, accumulate, dW=dW, db=db)
    assert out[0] is dW and out[1] is db
    ref_W, ref_b = _reference.dense_param_grads(X, dY, w, 0.25, accumulate)
    assert_allclose(dW, ref_W, **_tol(dtype if accumulate is None else np.float64))
    assert_allclose(db, ref_b, **_tol(dtype))


def test_float64_accumulation_makes_weights_equal_repetition():
    rng = np.random.RandomState(3)
    X, dY = _rand(rng, 20, 50, dtype=np.float32), _rand(rng, 20, 7, dtype=np.float32)
    w = rng.randint(0, 4, 20)
    order = rng.permutation(int(w.sum()))
    Xr, dYr = np.repeat(X, w, 0)[order], np.repeat(dY, w, 0)[order]
    weighted = _ops.dense_param_grads(X, dY, w.astype(float), 1 / w.sum(), np.float64)
    repeated = _ops.dense_param_grads(Xr, dYr, None, 1 / w.sum(), np.float64)
    assert_array_equal(weighted[0], repeated[0])
    assert_array_equal(weighted[1], repeated[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 5), (1, 1)])
def test_activations(dtype, activation, shape):
    rng = np.random.RandomState(4)
    X = _rand(rng, *shape, dtype=dtype, scale=3.0)
    Y = _ops.activation_forward(activation, X)
    assert_allclose(Y, _reference.activation_forward(activation, X), **_tol(dtype))
    dY = _rand(rng, *shape, dtype=dtype)
    assert_allclose(_ops.activation_backward(activation, Y, dY),
                    _reference.activation_backward(activation, Y, dY), **_tol(dtype))
    if activation in ("leaky_relu", "elu"):
        assert_allclose(_ops.activation_forward(activation, X, alpha=0.4),
                        _reference.activation_forward(activation, X, alpha=0.4), **_tol(dtype))


@pytest.mark.parametrize("name, exact", [("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
                                         ("tanh", np.tanh)])
def test_float32_sigmoid_and_tanh_are_within_a_few_ulp(name, exact):
    # float32 uses skdl's vectorized exp (_fastmath.h), not libm: hold it to
    # float64 libm over the whole range, at the edges and on inf and NaN.
    x = np.concatenate([np.linspace(-100, 100, 400001), [0.0, -0.0, 1e-30, -1e-7, 0.625,
                                                          -0.625, 87.5, -87.5, 88.5]])
    x = x.astype(np.float32)
    got = _ops.activation_forward(name, x).astype(np.float64)
    want = exact(x.astype(np.float64))
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    big = np.abs(want) > 1e-30  # below that, sigmoid is flushed toward 0
    assert (np.abs(got - want)[big] <= 3 * ulp[big]).all()
    assert ((np.abs(got - want) <= 1e-37) | big).all()
    special = _ops.activation_forward(name, np.array([np.inf, -np.inf, np.nan], np.float32))
    assert special[0] == 1
    assert special[1] == -1 if name == "tanh" else 0 <= special[1] < 1e-37
    assert np.isnan(special[2])


def test_softmax_over_last_axis():
    X = np.random.RandomState(5).randn(2, 3, 4)
    assert_allclose(_ops.activation_forward("softmax", X).sum(-1), 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropies(dtype):
    rng = np.random.RandomState(6)
    Z = _rand(rng, 40, 5, dtype=dtype, scale=4.0)
    Y = np.eye(5, dtype=dtype)[rng.randint(0, 5, 40)]
    for op, ref in [(_ops.softmax_cross_entropy, _reference.softmax_cross_entropy),
                    (_ops.sigmoid_cross_entropy, _reference.sigmoid_cross_entropy)]:
        loss, grad = op(Z, Y)
        ref_loss, ref_grad = ref(Z, Y)
        assert loss.dtype == np.float64 and grad.dtype == dtype
        assert_allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
        assert_allclose(grad, ref_grad, **_tol(dtype))


@pytest.mark.parametrize("op", [_ops.softmax_cross_entropy, _ops.sigmoid_cross_entropy])
def test_cross_entropy_is_safe_on_extreme_float32_logits(op):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3e38, -3e38, 0.0]], np.float32)
    Y = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], np.float32)
    loss, grad = op(Z, Y)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert loss[0] > 1e3  # confidently wrong costs a lot ...
    Y_right = np.array([[1, 0, 0]], np.float32)
    assert op(Z[:1], Y_right)[0][0] < 1e-3 + (op is _ops.sigmoid_cross_entropy) * 1.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(_ops.REGRESSION_LOSSES))
def test_regression_losses(dtype, name):
    rng = np.random.RandomState(7)
    Y = rng.uniform(0, 3, (30, 3)).astype(dtype)
    Z = _rand(rng, 30, 3, dtype=dtype, scale=2.0)
    loss, grad = _ops.regression_loss(name, Z, Y, delta=0.7)
    ref_loss, ref_grad = _reference.regression_loss(name, Z, Y, delta=0.7)
    assert_allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
    assert_allclose(grad, ref_grad, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update(dtype, momentum, nesterov):
    rng = np.random.RandomState(8)
    params, velocity = _rand(rng, 40000, dtype=dtype), np.zeros(40000, dtype)
    p_ref, v_ref = params.copy(), velocity.copy()
    for _ in range(3):
        grads = _rand(rng, 40000, dtype=dtype)
        _ops.sgd_update(params, grads, velocity, 0.05, momentum, nesterov)
        _reference.sgd_update(p_ref, grads, v_ref, 0.05, momentum, nesterov)
    assert_allclose(params, p_ref, **_tol(dtype))
    assert_allclose(velocity, v_ref, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update(dtype):
    rng = np.random.RandomState(9)
    params = _rand(rng, 40000, dtype=dtype)
    m, v = np.zeros_like(params), np.zeros_like(params)
    p_ref, m_ref, v_ref = params.copy(), m.copy(), v.copy()
    for t in range(1, 5):
        grads = _rand(rng, 40000, dtype=dtype)
        _ops.adam_update(params, grads, m, v, 0.01, 0.9, 0.999, 1e-8, t)
        _reference.adam_update(p_ref, grads, m_ref, v_ref, 0.01, 0.9, 0.999, 1e-8, t)
    for a, b in [(params, p_ref), (m, m_ref), (v, v_ref)]:
        assert_allclose(a, b, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, p", [(100, 3), (300, 40)])
def test_rows_do_not_depend_on_their_batch(dtype, k, p):
    # Bit-identical, not close: BLAS does not promise this (OpenBLAS's sgemm
    # rounds a row by its position in a tile on some CPUs); skdl's kernel does.
    rng = np.random.RandomState(10)
    X, W, b = _rand(rng, 300, k, dtype=dtype), _rand(rng, k, p, dtype=dtype), None
    dY = _rand(rng, 300, p, dtype=dtype)
    whole = _ops.dense_forward(X, W, b, "tanh")
    whole_dx = _ops.dense_backward_input(dY, W)
    for rows in [np.arange(5), np.arange(37, 300), rng.permutation(300), np.array([299, 0]),
                 np.array([7])]:
        assert_array_equal(_ops.dense_forward(X[rows], W, b, "tanh"), whole[rows])
        assert_array_equal(_ops.dense_backward_input(dY[rows], W), whole_dx[rows])


def _run_all_ops(seed=11):
    rng = np.random.RandomState(seed)
    X, W = _rand(rng, 300, 700, dtype=np.float32), _rand(rng, 700, 130, dtype=np.float32)
    b, dY = _rand(rng, 130, dtype=np.float32), _rand(rng, 300, 130, dtype=np.float32)
    w = rng.uniform(0, 2, 300)
    Z = _rand(rng, 300, 10, dtype=np.float32)
    T = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 300)]
    params, grads = _rand(rng, 50000, dtype=np.float32), _rand(rng, 50000, dtype=np.float32)
    m, v = np.zeros_like(params), np.zeros_like(params)
    _ops.adam_update(params, grads, m, v, 0.01, 0.9, 0.999, 1e-8, 1)
    return [
        _ops.dense_forward(X, W, b, "relu"),
        _ops.dense_backward_input(dY, W),
        *_ops.dense_param_grads(X, dY, w, 0.1),
        *_ops.dense_param_grads(X, dY, w, 0.1, np.float64),
        *_ops.softmax_cross_entropy(Z, T), *_ops.sigmoid_cross_entropy(Z, T),
        *_ops.regression_loss("huber", Z, T), _ops.activation_forward("softmax", Z),
        params, m, v,
    ]


def test_one_and_two_threads_agree_bit_for_bit():
    with one_thread():
        one = _run_all_ops()
    with two_threads():
        two = _run_all_ops()
    for a, b in zip(one, two):
        assert_array_equal(a, b)


def test_read_only_inputs():
    rng = np.random.RandomState(12)
    X, W, b = _rand(rng, 20, 6), _rand(rng, 6, 4), _rand(rng, 4)
    for a in (X, W, b):
        a.flags.writeable = False
    assert_allclose(_ops.dense_forward(X, W, b), _reference.dense_forward(X, W, b))
    dY = _rand(rng, 20, 4)
    dY.flags.writeable = False
    assert_allclose(_ops.dense_param_grads(X, dY)[0], _reference.dense_param_grads(X, dY)[0])
    assert np.isfinite(_ops.softmax_cross_entropy(dY, dY)[0]).all()


def test_inputs_are_not_modified():
    rng = np.random.RandomState(13)
    arrays = [_rand(rng, 9, 5), _rand(rng, 5, 3), _rand(rng, 3), _rand(rng, 9, 3)]
    copies = [a.copy() for a in arrays]
    X, W, b, dY = arrays
    _ops.dense_forward(X, W, b, "relu")
    _ops.dense_backward_input(dY, W)
    _ops.dense_param_grads(X, dY, np.ones(9), 2.0)
    _ops.activation_backward("tanh", dY, dY)
    _ops.softmax_cross_entropy(dY, dY)
    _ops.regression_loss("poisson", dY, np.abs(dY))
    for a, c in zip(arrays, copies):
        assert_array_equal(a, c)


@pytest.mark.parametrize("call, error, message", [
    (lambda: _ops.dense_forward(np.ones((3, 4)), np.ones((5, 2))), ValueError,
     "X has 4 features per row but W expects 5"),
    (lambda: _ops.dense_forward(np.ones((3, 4)), np.ones((4, 2)), np.ones(3)), ValueError,
     r"b has shape \(3,\), expected \(2,\)"),
    (lambda: _ops.dense_forward(np.ones((3, 4), int), np.ones((4, 2))), TypeError,
     "X must be float32 or float64, got dtype int"),
    (lambda: _ops.dense_forward(np.ones((3, 4)), np.ones((4, 2), np.float32)), TypeError,
     "W has dtype float32 but float64 is expected"),
    (lambda: _ops.dense_forward(np.ones(4), np.ones((4, 2))), ValueError, "X must be 2-D"),
    (lambda: _ops.dense_forward(np.ones((3, 4)), np.ones((4, 2)), activation="swish"),
     ValueError, "Unknown activation 'swish'"),
    (lambda: _ops.dense_backward_input(np.ones((3, 2)), np.ones((4, 3))), ValueError,
     "dY has 2 columns but W has shape"),
    (lambda: _ops.dense_param_grads(np.ones((3, 4)), np.ones((2, 2))), ValueError,
     "X has 3 rows but dY has 2"),
    (lambda: _ops.dense_param_grads(np.ones((3, 4)), np.ones((3, 2)), np.ones(4)), ValueError,
     r"sample_weight must have shape \(3,\)"),
    (lambda: _ops.dense_param_grads(np.ones((3, 4)), np.ones((3, 2)), dW=np.ones((2, 2))),
     ValueError, "dW must be a C-contiguous float64 array of shape"),
    (lambda: _ops.dense_param_grads(np.ones((3, 4)), np.ones((3, 2)), accumulate_dtype=int),
     ValueError, "accumulate_dtype must be float32 or float64"),
    (lambda: _ops.activation_backward("relu", np.ones((2, 3)), np.ones((3, 2))), ValueError,
     "Y and dY must have one shape"),
    (lambda: _ops.activation_forward("elu", np.ones((2, 3)), alpha=-1), ValueError,
     "alpha must be non-negative"),
    (lambda: _ops.softmax_cross_entropy(np.ones((2, 3)), np.ones((2, 4))), ValueError,
     r"Y has shape \(2, 4\) but the outputs Z have \(2, 3\)"),
    (lambda: _ops.regression_loss("hinge", np.ones((2, 3)), np.ones((2, 3))), ValueError,
     "Unknown regression loss 'hinge'"),
    (lambda: _ops.regression_loss("huber", np.ones((2, 3)), np.ones((2, 3)), delta=0),
     ValueError, "delta must be positive"),
    (lambda: _ops.adam_update(np.ones(3), np.ones(3), np.ones(3), np.ones(3), 0.1, 0.9,
                              0.99, 1e-8, 0), ValueError, "step counts from 1"),
    (lambda: _ops.adam_update(np.ones(3), np.ones(4), np.ones(3), np.ones(3), 0.1, 0.9,
                              0.99, 1e-8, 1), ValueError, "grads must match params"),
    (lambda: _ops.sgd_update(np.ones((3, 1)), np.ones(3), np.ones(3), 0.1), ValueError,
     "params must be a 1-D numpy array"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_read_only_params_are_refused():
    params = np.ones(3)
    params.flags.writeable = False
    with pytest.raises(ValueError, match="params is read-only"):
        _ops.sgd_update(params, np.ones(3), np.zeros(3), 0.1)


def test_the_buffers_of_the_last_step_are_checked_once_but_kept_honest():
    params, grads, m, v = np.ones(6), np.full(6, 0.5), np.zeros(6), np.zeros(6)
    _ops.adam_update(params, grads, m, v, 0.1, 0.9, 0.99, 1e-8, 1)
    after_one = params.copy()
    # The same buffers again: the step runs as the first did.
    _ops.adam_update(params, grads, m, v, 0.1, 0.9, 0.99, 1e-8, 2)
    assert np.all(params < after_one)
    # A buffer made read-only since, or a new one, is checked again.
    m.flags.writeable = False
    with pytest.raises(ValueError, match="m is read-only"):
        _ops.adam_update(params, grads, m, v, 0.1, 0.9, 0.99, 1e-8, 3)
    m.flags.writeable = True
    with pytest.raises(TypeError, match="grads has dtype float32 but params is float64"):
        _ops.adam_update(params, grads.astype(np.float32), m, v, 0.1, 0.9, 0.99, 1e-8, 3)
    with pytest.raises(ValueError, match="m and v share memory"):
        _ops.adam_update(params, grads, m, m, 0.1, 0.9, 0.99, 1e-8, 3)
    # Nothing is kept alive by the memory of the last buffers.
    _ops.adam_update(params, grads, m, v, 0.1, 0.9, 0.99, 1e-8, 3)
    ref = _ops.optim._checked_buffers.refs[0]
    assert ref() is params
    del params
    assert ref() is None


def _out_cases():
    rng = np.random.RandomState(3)
    X, K = rng.randn(2, 3, 6, 5), rng.randn(4, 3, 3, 3)
    Y = _ops.conv2d_forward(X, K)
    P = _ops.maxpool2d_forward(X, 2)[0]
    big = rng.randn(X.size)  # dY lives at the start of a buffer as large as dX
    dY = big[:Y.size].reshape(Y.shape)
    return [
        ("conv2d_forward", lambda out: _ops.conv2d_forward(X, K, out=out), Y.shape, X),
        ("conv2d_backward_input",  # dY sits at the start of big
         lambda out: _ops.conv2d_backward_input(dY, K, (6, 5), out=out), X.shape, big),
        ("maxpool2d_forward", lambda out: _ops.maxpool2d_forward(X, 2, out=out)[0],
         P.shape, X),
        ("activation_backward", lambda out: _ops.activation_backward("tanh", Y, Y, out=out),
         Y.shape, Y),
    ]


@pytest.mark.parametrize("case", range(4))
def test_ops_write_into_out(case):
    name, call, shape, an_input = _out_cases()[case]
    expected = call(None)
    out = np.full(shape, np.nan)
    assert call(out) is out
    assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="must be a C-contiguous float64 array of shape"):
        call(np.empty(shape, np.float32))
    with pytest.raises(ValueError, match="must be a C-contiguous"):
        call(np.empty(shape[:-1] + (shape[-1] + 1,)))
    if name != "activation_backward":  # (which may write over its inputs)
        with pytest.raises(ValueError, match="out overlaps an input"):
            call(an_input.ravel()[:int(np.prod(shape))].reshape(shape))


def test_activation_backward_in_place_on_dY():
    rng = np.random.RandomState(4)
    Y, dY = np.tanh(rng.randn(5, 7)), rng.randn(5, 7)
    expected = _ops.activation_backward("tanh", Y, dY)
    assert _ops.activation_backward("tanh", Y, dY, out=dY) is dY
    assert_array_equal(dY, expected)
    # A shifted overlap would read values already overwritten.
    buf = rng.randn(36)
    with pytest.raises(ValueError, match="out overlaps an input"):
        _ops.activation_backward("tanh", Y, buf[:35].reshape(5, 7), out=buf[1:].reshape(5, 7))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 70), k=st.integers(1, 40), p=st.integers(1, 40),
       seed=st.integers(0, 2**16))
def test_dense_shapes_fuzzed(n, k, p, seed):
    rng = np.random.RandomState(seed)
    X, W, b, dY = _rand(rng, n, k), _rand(rng, k, p), _rand(rng, p), _rand(rng, n, p)
    assert_allclose(_ops.dense_forward(X, W, b, "sigmoid"),
                    _reference.dense_forward(X, W, b, "sigmoid"), rtol=1e-12, atol=1e-13)
    assert_allclose(_ops.dense_backward_input(dY, W),
                    _reference.dense_backward_input(dY, W), rtol=1e-12, atol=1e-13)
    w = rng.uniform(size=n)
    for got, ref in zip(_ops.dense_param_grads(X, dY, w, 0.5),
                        _reference.dense_param_grads(X, dY, w, 0.5)):
        assert_allclose(got, ref, rtol=1e-11, atol=1e-12)


@pytest.fixture(params=[0, 1, 2], ids=["baseline", "avx2", "avx512"])
def gemm_level(request):
    """Each compiled version of the matrix kernel this CPU can run."""
    from skdl._kernels import _dense

    try:
        if _dense.limit_gemm_level(request.param) != request.param:
            pytest.skip("this CPU cannot run that version of the kernel")
        yield request.param
    finally:
        _dense.limit_gemm_level(-1)


def test_matrix_kernel_version_is_one_choice_for_every_module(gemm_level):
    # Each kernel module compiles its own copy of the matrix kernel; the
    # version they use is one process-wide choice, which show_config reports.
    from skdl._kernels import _conv, _dense, _recurrent

    from skdl._config import GEMM_LEVELS, config

    assert [m.gemm_level() for m in (_dense, _conv, _recurrent)] == [gemm_level] * 3
    assert config()["matrix_kernel"] == GEMM_LEVELS[gemm_level]
    assert _recurrent.limit_gemm_level(-1) == _dense.gemm_level() == _conv.gemm_level()


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_version_matches_reference(gemm_level, dtype):
    rng = np.random.RandomState(gemm_level)
    # Shapes past every tile edge: rows 1..13, columns 1..40, k past a block of 256.
    for n, k, p in [(1, 1, 1), (13, 300, 40), (7, 5, 33), (6, 257, 16)]:
        X, W, b = (_rand(rng, n, k, dtype=dtype), _rand(rng, k, p, dtype=dtype),
                   _rand(rng, p, dtype=dtype))
        eps = np.finfo(dtype).eps
        bound = k * eps * (np.abs(X) @ np.abs(W) + np.abs(b)) + 1e-30
        assert (np.abs(_ops.dense_forward(X, W, b) - _reference.dense_forward(X, W, b))
                <= bound).all()
        whole = _ops.dense_forward(X, W, b, "tanh")
        for i in range(n):
            assert_array_equal(_ops.dense_forward(X[i:i + 1], W, b, "tanh"), whole[i:i + 1])
    X, K = _rand(rng, 3, 2, 7, 6, dtype=dtype), _rand(rng, 5, 2, 3, 2, dtype=dtype)
    geometry = dict(strides=(1, 2), padding=((1, 0), (0, 1)))
    Y = _ops.conv2d_forward(X, K, **geometry)
    assert_allclose(Y, _reference.conv2d_forward(X, K, **geometry), **_tol(dtype))
    dY = _rand(rng, *Y.shape, dtype=dtype)
    assert_allclose(_ops.conv2d_backward_input(dY, K, (7, 6), **geometry),
                    _reference.conv2d_backward_input(dY, K, (7, 6), **geometry), **_tol(dtype))
    for got, ref in zip(_ops.conv2d_backward_params(X, dY, kernel_hw=(3, 2), **geometry),
                        _reference.conv2d_backward_params(X, dY, kernel_hw=(3, 2), **geometry)):
        assert_allclose(got, ref, **_tol(dtype))
    # The recurrent time loop, forward and backward, LSTM with a mask.
    Xs = _rand(rng, 5, 4, 3, dtype=dtype)
    Wr, Ur = _rand(rng, 3, 8, dtype=dtype), _rand(rng, 2, 8, dtype=dtype)
    mask = rng.rand(5, 4) > 0.3
    state = _ops.recurrent_forward("lstm", Xs, Wr, Ur, mask=mask)
    ref = _reference.recurrent_forward("lstm", Xs, Wr, Ur, mask=mask)
    assert_allclose(state.H, ref.H, **_tol(dtype))
    dH = _rand(rng, 5, 4, 2, dtype=dtype)
    for got, want in zip(_ops.recurrent_backward("lstm", dH, Xs, Wr, Ur, state),
                         _reference.recurrent_backward("lstm", dH, Xs, Wr, Ur, state)):
        assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-11,
                        atol=1e-5 if dtype == np.float32 else 1e-12)


# -- sparse input to dense ops ----------------------------------------------

def _sparse(rng, n, k, density, dtype, fmt, index_dtype=np.int32):
    from scipy import sparse
    X = sparse.random(n, k, density=density, format=fmt, dtype=dtype, random_state=rng)
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    return X


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("activation", [None, "relu", "softmax"])
def test_dense_forward_sparse_matches_the_dense_product(dtype, fmt, index_dtype, activation):
    rng = np.random.RandomState(0)
    X = _sparse(rng, 37, 50, 0.1, dtype, "csr", index_dtype).asformat(fmt)
    W, b = _rand(rng, 50, 9, dtype=dtype), _rand(rng, 9, dtype=dtype)
    Y = _ops.dense_forward(X, W, b, activation)
    assert Y.dtype == dtype and Y.shape == (37, 9)
    assert_allclose(Y, _reference.dense_forward(X.toarray(), W, b, activation), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("weighted", [False, True])
def test_dense_param_grads_sparse_match_the_dense_sums(dtype, fmt, weighted):
    rng = np.random.RandomState(1)
    X = _sparse(rng, 40, 30, 0.15, dtype, "csr", np.int64).tolil()
    X[:, 3] = 0  # a feature never seen: its kernel row gets a zero gradient
    X = X.asformat(fmt)
    X.eliminate_zeros()
    dY = _rand(rng, 40, 6, dtype=dtype)
    w = rng.rand(40) * 3 if weighted else None
    dW, db = _ops.dense_param_grads(X, dY, w, scale=0.25)
    # The sparse sums always run in float64.
    ref_W, ref_b = _reference.dense_param_grads(X.toarray(), dY, w, 0.25, np.float64)
    assert_allclose(dW, ref_W, **_tol(dtype))
    assert_allclose(db, ref_b, **_tol(dtype))
    assert_array_equal(dW[3], 0)


def test_sparse_dense_ops_do_not_depend_on_threads_or_batch_company():
    rng = np.random.RandomState(2)
    X = _sparse(rng, 300, 200, 0.05, np.float32, "csr")
    # 67 columns: the bias gradient sums more than one 64-column block.
    W, dY = _rand(rng, 200, 67, dtype=np.float32), _rand(rng, 300, 67, dtype=np.float32)
    with one_thread():
        Y1 = _ops.dense_forward(X, W, None, "tanh")
        G1 = _ops.dense_param_grads(X, dY)[0]
    with two_threads():
        Y2 = _ops.dense_forward(X, W, None, "tanh")
        G2 = _ops.dense_param_grads(X, dY)[0]
    assert_array_equal(Y1, Y2)
    assert_array_equal(G1, G2)
    # A row's output is the same alone and in the batch.
    assert_array_equal(_ops.dense_forward(X[17:18], W, None, "tanh"), Y2[17:18])


def test_sparse_ops_write_into_given_buffers_and_handle_empty_rows():
    from scipy import sparse
    X = sparse.csr_matrix((3, 4))  # no stored values at all
    W, b = np.ones((4, 2)), np.array([1.0, -1.0])
    out = np.full((3, 2), np.nan)
    assert _ops.dense_forward(X, W, b, out=out) is out
    assert_array_equal(out, [[1, -1]] * 3)
    dW, db = np.full((4, 2), np.nan), np.full(2, np.nan)
    _ops.dense_param_grads(X, np.ones((3, 2)), dW=dW, db=db)
    assert_array_equal(dW, 0)
    assert_array_equal(db, [3, 3])


def test_sparse_ops_refuse_bad_matrices():
    from scipy import sparse
    W = np.ones((4, 2))
    X = sparse.csr_matrix(np.eye(3, 4))
    with pytest.raises(TypeError, match="float32 or float64"):
        _ops.dense_forward(X.astype(np.int64), W)
    with pytest.raises(ValueError, match="features per row"):
        _ops.dense_forward(X[:, :3], W)
    bad = X.copy()
    bad.indices = bad.indices.copy()
    bad.indices[1] = 4  # beyond the last column: the kernel would read outside W
    with pytest.raises(ValueError, match="index arrays point outside"):
        _ops.dense_forward(bad, W)
    bad = X.copy()
    bad.indptr = bad.indptr.copy()
    bad.indptr[-1] = 10  # more entries than stored
    with pytest.raises(ValueError, match="index arrays point outside"):
        _ops.dense_forward(bad, W)
    with pytest.raises(TypeError, match="dY has dtype float64 but float32 is expected"):
        _ops.dense_param_grads(X.astype(np.float32), np.ones((3, 2)))


# -- ops bound to their arrays -------------------------------------------------
def _bound_cases(rng):
    """(bind call, op call) pairs: each makes fresh arrays from rng's draws."""
    X = rng.standard_normal((5, 2, 6, 7))
    K = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    dY4 = rng.standard_normal((5, 3, 4, 6))
    w = rng.uniform(0.5, 2, 5)
    geometry = dict(strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1))
    D = rng.standard_normal((5, 4))
    W = rng.standard_normal((4, 3))
    dY = rng.standard_normal((5, 3))
    return {
        "dense_forward": ((D, W, b), dict(activation="tanh")),
        "dense_backward_input": ((dY, W), {}),
        "dense_param_grads": ((D, dY, w), {}),
        "activation_backward": (("elu", dY, rng.standard_normal((5, 3))), dict(alpha=0.5)),
        "conv2d_forward": ((X, K, b), dict(activation="relu", **geometry)),
        "conv2d_backward_input": ((dY4, K, (6, 7)), geometry),
        "conv2d_backward_params": ((X, dY4, w), dict(kernel_hw=(3, 2), **geometry)),
        "maxpool2d_forward": ((X,), dict(pool_size=(2, 3), strides=1,
                                         padding=((1, 0), (1, 1)))),
    }


@pytest.mark.parametrize("op", sorted(_bound_cases(np.random.RandomState(0))))
def test_a_bound_op_reads_its_arrays_at_every_call(op):
    rng = np.random.RandomState(0)
    args, kwargs = _bound_cases(rng)[op]
    bound = getattr(_ops, "bind_" + op)(*args, **kwargs)
    run, outputs = bound[0], bound[1:]
    takes_scale = op.endswith("params") or op.endswith("param_grads")
    for scale in (1.0, 0.3):
        # New values in the same arrays: the bound op must see them.
        for a in args:
            if isinstance(a, np.ndarray):
                a[...] = rng.standard_normal(a.shape) if a.ndim > 1 else rng.uniform(
                    0.5, 2, a.shape)
        run(scale) if takes_scale else run()
        extra = dict(scale=scale) if takes_scale else {}
        expected = getattr(_ops, op)(*args, **kwargs, **extra)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for got, want in zip(outputs, expected):
            assert_array_equal(got, want)


def test_binding_refuses_arrays_the_checks_would_copy():
    X = np.zeros((4, 6))
    with pytest.raises(ValueError, match="X must be a C-contiguous.*to bind"):
        _ops.bind_dense_forward(X[:, :3], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="W must be a C-contiguous"):
        _ops.bind_dense_forward(X, np.zeros((2, 6)).T)
    with pytest.raises(ValueError, match="sample_weight must be a C-contiguous"):
        _ops.bind_dense_param_grads(X, np.zeros((4, 2)), sample_weight=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="softmax"):
        _ops.bind_conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 2, 2)),
                                 activation="softmax")
    # The checks of the op itself still run once, with its messages.
    with pytest.raises(ValueError, match="X has 6 features per row but W expects 5"):
        _ops.bind_dense_forward(X, np.zeros((5, 2)))
    with pytest.raises(TypeError, match="dY has dtype float32 but float64"):
        _ops.bind_conv2d_backward_params(np.zeros((1, 1, 3, 3)),
                                         np.zeros((1, 1, 2, 2), np.float32), kernel_hw=2)


def test_bound_maxpool_backward_follows_its_bound_forward():
    rng = np.random.RandomState(1)
    X = rng.standard_normal((3, 2, 5, 5))
    forward, Y, argmax = _ops.bind_maxpool2d_forward(X, 2, strides=1)
    dY = np.empty_like(Y)
    backward, dX = _ops.bind_maxpool2d_backward(dY, argmax, (5, 5))
    for _ in range(2):
        X[...] = rng.standard_normal(X.shape)
        dY[...] = rng.standard_normal(dY.shape)
        forward()
        backward()
        want_Y, want_argmax = _ops.maxpool2d_forward(X, 2, strides=1)
        assert_array_equal(Y, want_Y)
        assert_array_equal(dX, _ops.maxpool2d_backward(dY, want_argmax, (5, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, k, p", [(64, 100, 10), (37, 70, 3), (5, 40, 1), (130, 300, 33),
                                     (9, 3, 5)])
def test_a_weight_gradient_computed_transposed_has_the_same_bits(n, k, p, dtype):
    """gemm_tn computes X.T @ dY as (dY.T @ X).T, writing the result
    transposed, when dY has few columns: the same multiply-adds in the same
    order, at any thread count."""
    from skdl._kernels import _dense

    rng = np.random.RandomState(n)
    X, dY = rng.randn(n, k).astype(dtype), rng.randn(n, p).astype(dtype)
    default = _dense.gemm_tn_orientation()
    results = {}
    try:
        for name, orientation in (("plain", 0), ("transposed", 1)):
            _dense.gemm_tn_orientation(orientation)
            # A (3, 5) result is a single tile: nothing for a second thread.
            small = ("gemm_tn",) if k * p < 16 else ()
            for threads, context in (("1", one_thread),
                                     ("2", lambda: two_threads(one_thread_ok=small))):
                out = np.empty((k, p), dtype)
                with context():
                    _dense.gemm_tn(0.3, X, dY, out, 2)
                results[name, threads] = out
    finally:
        _dense.gemm_tn_orientation(default)
    for result in results.values():
        assert_array_equal(result, results["plain", "1"])
    assert_allclose(results["plain", "1"], 0.3 * X.T.astype(np.float64) @ dY,
                    rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_weight_gradient_is_the_row_kernels_product_of_the_transpose(gemm_level, dtype):
    """Where the batch is one chunk (under 1024 rows), gemm_tn reads A and B
    in place, yet each element of alpha * A.T @ B is the chain of
    multiply-adds the row kernel computes from A.T (then one scaling by alpha
    in float64): the same bits, at every kernel version and thread count, past
    every tile edge (rows of 8 and 16, vectors of 4 to 16 columns, a column
    count that is no whole number of vectors, blocks of 64 batch rows), in
    both orientations. (Taller batches are summed in chunks: see the next
    test.)"""
    from skdl._kernels import _dense

    rng = np.random.RandomState(gemm_level)
    default = _dense.gemm_tn_orientation()
    try:
        for n, p, q in [(1, 1, 1), (63, 10, 33), (64, 17, 100), (65, 100, 10), (200, 33, 1),
                        (130, 1, 47), (129, 40, 64), (7, 300, 3)]:
            assert _dense.gemm_tn_chunks(n, p, q, np.dtype(dtype).itemsize) == (n, 1)
            A, B = rng.randn(n, p).astype(dtype), rng.randn(n, q).astype(dtype)
            A_before, B_before = A.copy(), B.copy()
            rows = np.empty((p, q), dtype)
            _dense.rowwise_gemm(np.ascontiguousarray(A.T), B, rows, False, 1)
            scaled = (0.3 * rows.astype(np.float64)).astype(dtype)
            for orientation in (-1, 0, 1):
                _dense.gemm_tn_orientation(orientation)
                for n_threads in (1, 2, 3):
                    for alpha, want in ((1.0, rows), (0.3, scaled)):
                        out = np.full((p, q), np.nan, dtype)
                        _dense.gemm_tn(alpha, A, B, out, n_threads)
                        assert_array_equal(out, want, err_msg=f"{(n, p, q, orientation)}")
            assert_array_equal(A, A_before)
            assert_array_equal(B, B_before)
            assert_allclose(rows, A.T.astype(np.float64) @ B,
                            rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)
    finally:
        _dense.gemm_tn_orientation(default)
    # No rows: a sum of nothing.
    out = np.full((3, 4), np.nan, dtype)
    _dense.gemm_tn(0.5, np.empty((0, 3), dtype), np.empty((0, 4), dtype), out, 2)
    assert_array_equal(out, np.zeros((3, 4)))


def test_a_weight_gradient_is_summed_in_chunks_fixed_by_the_shapes():
    """gemm_tn_chunks: at least 512 rows per chunk, at most 16 chunks, in
    blocks of 64 rows, the partials of all chunks within 4 MB; else one
    chunk. Never a function of the thread count."""
    from skdl._kernels import _dense

    for (n, p, q, itemsize), want in [
            ((1023, 3, 5, 4), (1023, 1)),        # fewer than 2 x 512 rows
            ((1024, 3, 5, 4), (512, 2)),
            ((1100, 17, 33, 8), (576, 2)),       # 576 + 524
            ((4096, 64, 64, 4), (512, 8)),       # the Transformer's gradients
            ((9000, 5, 7, 4), (576, 16)),        # at most 16 chunks
            ((50176, 27, 32, 4), (3136, 16)),    # a 3x3x3 convolution's
            ((2560, 256, 1024, 4), (640, 4)),    # 1 MB partials: 4 chunks
            ((2560, 256, 1024, 8), (1280, 2)),   # 2 MB partials: 2 chunks
            ((100000, 1024, 1024, 4), (100000, 1))]:  # 4 MB partials: one chunk
        chunk, n_chunks = _dense.gemm_tn_chunks(n, p, q, itemsize)
        assert (chunk, n_chunks) == want
        assert n_chunks == 1 or (chunk >= 512 and chunk % 64 == 0
                                 and n_chunks * p * q * itemsize <= 4 << 20
                                 and (n_chunks - 1) * chunk < n <= n_chunks * chunk)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tall_weight_gradient_is_the_same_at_any_thread_count(gemm_level, dtype):
    """A batch of 1024 rows or more is summed in chunks of rows fixed by the
    shapes (each chunk's partial product, then the partials in chunk order),
    so that threads can take chunks of the rows they just wrote: the result
    is close to the float64 product and the same bits at 1, 2 or 3 threads,
    in either orientation and at every call, at every kernel version, with
    chunks that do or do not divide the batch, more chunks than threads and
    fewer."""
    from skdl._kernels import _dense

    rng = np.random.RandomState(gemm_level)
    default = _dense.gemm_tn_orientation()

    def assert_close(got, alpha, A, B):
        # The worst-case rounding of a sum of n products, n * eps * |A|.T @ |B|.
        A64, B64 = A.astype(np.float64), B.astype(np.float64)
        bound = len(A) * np.finfo(dtype).eps * (np.abs(A64).T @ np.abs(B64))
        assert (np.abs(got / alpha - A64.T @ B64) <= bound).all()

    # Two whole chunks, uneven chunks, a result written transposed (few
    # columns), three chunks of one vector's columns, 16 chunks.
    cases = [(1024, 3, 5), (1100, 17, 33), (2000, 64, 10), (1537, 10, 64), (2049, 40, 1),
             (9000, 5, 7)]
    try:
        for n, p, q in cases:
            assert _dense.gemm_tn_chunks(n, p, q, np.dtype(dtype).itemsize)[1] > 1
            A, B = rng.randn(n, p).astype(dtype), rng.randn(n, q).astype(dtype)
            A_before, B_before = A.copy(), B.copy()
            want = np.full((p, q), np.nan, dtype)
            _dense.gemm_tn(0.3, A, B, want, 1)
            assert_close(want, 0.3, A, B)
            for orientation in (-1, 0, 1):
                _dense.gemm_tn_orientation(orientation)
                for n_threads in (1, 2, 3, 2):
                    out = np.full((p, q), np.nan, dtype)
                    _dense.gemm_tn(0.3, A, B, out, n_threads)
                    assert_array_equal(out, want, err_msg=f"{(n, p, q, orientation, n_threads)}")
                # alpha = 1: the same sum, unscaled.
                out = np.full((p, q), np.nan, dtype)
                _dense.gemm_tn(1.0, A, B, out, 2)
                assert_close(out, 1.0, A, B)
            _dense.gemm_tn_orientation(default)
            assert_array_equal(A, A_before)
            assert_array_equal(B, B_before)
    finally:
        _dense.gemm_tn_orientation(default)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_weight_gradient_grows_its_chunks_and_stays_thread_independent(dtype):
    from skdl._kernels import _dense

    rng = np.random.RandomState(3)
    n, p, q = 2560, 256, 1024
    assert _dense.gemm_tn_chunks(n, p, q, np.dtype(dtype).itemsize)[1] in (2, 4)
    A, B = rng.randn(n, p).astype(dtype), rng.randn(n, q).astype(dtype)
    outs = []
    for n_threads in (1, 2, 3):
        outs.append(np.empty((p, q), dtype))
        _dense.gemm_tn(0.5, A, B, outs[-1], n_threads)
        assert_array_equal(outs[-1], outs[0])
    assert_allclose(outs[0], 0.5 * A.T.astype(np.float64) @ B,
                    rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-2 if dtype == np.float32
                    else 1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tall_bias_gradient_is_summed_in_the_same_chunks_at_any_thread_count(dtype):
    """weighted_column_sum cuts a tall batch into gemm_tn's chunks, so a bias
    gradient of a single block of columns splits over threads too: the same
    bits at 1, 2 or 3 threads, with or without weights, and the float64 sum."""
    from skdl._kernels import _dense

    rng = np.random.RandomState(5)
    for n, p in [(1024, 64), (1537, 10), (4096, 130), (9000, 3), (700, 64)]:
        A = rng.randn(n, p).astype(dtype)
        A_before = A.copy()
        for weights in (None, rng.rand(n)):
            outs = []
            for n_threads in (1, 2, 3):
                outs.append(np.full(p, np.nan, dtype))
                _dense.weighted_column_sum(A, weights, 0.25, outs[-1], n_threads)
                assert_array_equal(outs[-1], outs[0])
            w = np.ones(n) if weights is None else weights
            # Float64 sums: the float32 result is the float64 sum rounded once.
            assert_allclose(outs[0], 0.25 * (w @ A.astype(np.float64)),
                            rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-12)
        assert_array_equal(A, A_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tall_batch_has_the_same_weight_gradient_on_one_and_two_threads(dtype):
    # Through the op a training step calls, with both threads taking chunks.
    rng = np.random.RandomState(1)
    # 130 columns: three blocks of the bias gradient, one for each thread too.
    X, dY = rng.randn(1500, 64).astype(dtype), rng.randn(1500, 130).astype(dtype)
    w = rng.rand(1500)
    results = []
    for threads in (one_thread, two_threads):
        with threads():
            results.append(_ops.dense_param_grads(X, dY, w, 0.5))
    for got, want in zip(results[1], results[0]):
        assert_array_equal(got, want)
    for got, ref in zip(results[0], _reference.dense_param_grads(
            X, dY, w, 0.5, accumulate_dtype=np.float64)):
        assert_allclose(got, ref, **(dict(rtol=1e-4, atol=1e-4) if dtype == np.float32
                                     else dict(rtol=1e-12, atol=1e-12)))


def test_bound_dropout_draws_what_dropout_forward_draws():
    X = np.random.RandomState(0).standard_normal((4, 6)).astype(np.float32)
    dY, dX = np.ones_like(X), np.empty_like(X)
    forward, backward, Y = _ops.bind_dropout(X, 0.4, dY, dX)
    forward(np.random.default_rng(3))
    backward()
    want_Y, mask = _ops.dropout_forward(X, 0.4, np.random.default_rng(3))
    assert_array_equal(Y, want_Y)
    assert_array_equal(dX, _ops.dropout_backward(dY, mask))
    assert 0 < (Y == 0).sum() < Y.size
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1.0"):
        _ops.bind_dropout(X, 1.0, dY)
    with pytest.raises(ValueError, match="X must be a C-contiguous"):
        _ops.bind_dropout(np.asfortranarray(np.ones((4, 6), np.float32)), 0.4, dY)
