"""Layer-norm and attention ops against their numpy twins; thread, batch and
matrix-kernel independence; masks, causality, dropout multipliers; errors."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from _threads import one_thread, two_threads
from skdl import _ops, _reference
from skdl._kernels import _attention

DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)


def _qkv(rng, n, T, H, dk, dv, dtype=np.float64):
    Q, K = (rng.randn(n, T, H, dk).astype(dtype) for _ in range(2))
    V, dO = (rng.randn(n, T, H, dv).astype(dtype) for _ in range(2))
    return Q, K, V, dO


def _mask(rng, n, T):
    """Keys present at random, the first always there, the last sample padded
    throughout (its queries see no key)."""
    mask = rng.rand(n, T) > 0.4
    mask[:, 0] = True
    mask[-1] = False
    return mask


def _keep(rng, n, H, T, dtype, rate=0.3):
    return ((rng.rand(n, H, T, T) > rate) / (1 - rate)).astype(dtype)


def _assert_close(got, want, dtype):
    for g, w in zip(got, want):
        assert g.dtype == dtype
        assert_allclose(g, w, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H", [1, 3])
@pytest.mark.parametrize("T", [1, 7, 33])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_attention_matches_its_twin(dtype, H, T, masked, causal, dropout):
    rng = np.random.RandomState(T * 10 + H)
    n, dk, dv = 4, 5, 3
    Q, K, V, dO = _qkv(rng, n, T, H, dk, dv, dtype)
    mask = _mask(rng, n, T) if masked else None
    keep = _keep(rng, n, H, T, dtype) if dropout else None
    O_ref, P_ref = _reference.attention_forward(Q, K, V, mask, causal, None, keep)
    O, P = _ops.attention_forward(Q, K, V, mask, causal, None, keep)
    _assert_close((O, P), (O_ref, P_ref), dtype)
    if masked:  # a sample whose keys are all padding attends to nothing
        assert not P[-1].any() and not O[-1].any()
    if causal:  # no weight on a later key
        assert not np.triu(P, 1).any()
    O2, none = _ops.attention_forward(Q, K, V, mask, causal, None, keep, need_weights=False)
    assert none is None
    assert_array_equal(O2, O)
    grads_ref = _reference.attention_backward(dO, Q, K, V, P_ref, None, keep)
    _assert_close(_ops.attention_backward(dO, Q, K, V, P, None, keep), grads_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bound_attention_ops_read_the_arrays_values_at_every_call(dtype):
    rng = np.random.RandomState(1)
    n, T, H, dk, dv = 3, 9, 2, 4, 6
    Q, K, V, dO = _qkv(rng, n, T, H, dk, dv, dtype)
    mask = _mask(rng, n, T)
    keep = _keep(rng, n, H, T, dtype)
    run, O, P = _ops.bind_attention_forward(Q, K, V, mask, True, 0.7, keep)
    run_b, dQ, dK, dV = _ops.bind_attention_backward(dO, Q, K, V, P, 0.7, keep)
    for _ in range(2):  # new values in the same arrays, the mask included
        run()
        run_b()
        O_ref, P_ref = _reference.attention_forward(Q, K, V, mask, True, 0.7, keep)
        _assert_close((O, P), (O_ref, P_ref), dtype)
        _assert_close((dQ, dK, dV),
                      _reference.attention_backward(dO, Q, K, V, P_ref, 0.7, keep), dtype)
        for a in (Q, K, V, dO):
            a[...] = rng.randn(*a.shape)
        mask[...] = _mask(rng, n, T)
        keep[...] = _keep(rng, n, H, T, dtype)
    run, O, none = _ops.bind_attention_forward(Q, K, V, need_weights=False)
    run()
    assert none is None
    assert_allclose(O, _reference.attention_forward(Q, K, V)[0], **_tol(dtype))


def test_attention_writes_out_arrays_and_leaves_its_inputs_alone():
    rng = np.random.RandomState(2)
    n, T, H, dk, dv = 2, 6, 2, 3, 4
    arrays = _qkv(rng, n, T, H, dk, dv)
    mask, keep = _mask(rng, n, T), _keep(rng, n, H, T, np.float64)
    copies = [a.copy() for a in arrays + (mask, keep)]
    Q, K, V, dO = arrays
    out, weights = np.empty((n, T, H, dv)), np.empty((n, H, T, T))
    O, P = _ops.attention_forward(Q, K, V, mask, True, None, keep, out=out,
                                  weights_out=weights)
    assert O is out and P is weights
    outs = np.empty(Q.shape), np.empty(K.shape), np.empty(V.shape)
    grads = _ops.attention_backward(dO, Q, K, V, P, None, keep, *outs)
    assert all(g is o for g, o in zip(grads, outs))
    for a, c in zip(arrays + (mask, keep), copies):
        assert_array_equal(a, c)


def test_attention_takes_strided_inputs_and_integer_masks():
    rng = np.random.RandomState(3)
    n, T, H, dk, dv = 3, 5, 2, 4, 4
    Q, K, V, _ = _qkv(rng, n, T, H, dk, dv)
    mask = _mask(rng, n, T)
    Qt = np.asfortranarray(Q)
    O, P = _ops.attention_forward(Qt, K[:, :, :, ::1], V, mask.astype(np.int64))
    O_ref, P_ref = _reference.attention_forward(Q, K, V, mask)
    _assert_close((O, P), (O_ref, P_ref), np.float64)


def test_scale_and_default_scale():
    rng = np.random.RandomState(4)
    Q, K, V, _ = _qkv(rng, 2, 6, 2, 9, 3)
    default = _ops.attention_forward(Q, K, V)
    explicit = _ops.attention_forward(Q, K, V, scale=1 / 3)
    for a, b in zip(default, explicit):
        assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    _assert_close(_ops.attention_forward(Q, K, V, scale=2.5),
                  _reference.attention_forward(Q, K, V, scale=2.5), np.float64)


@pytest.mark.parametrize("need_weights", [False, True])
def test_a_few_hundred_steps(need_weights):
    # Per-thread scratch only: T = 300 needs a few (300, 300) blocks per
    # thread, and with need_weights=False no (n, H, T, T) array at all.
    rng = np.random.RandomState(5)
    n, T, H, dk, dv = 2, 300, 2, 8, 5
    Q, K, V, dO = _qkv(rng, n, T, H, dk, dv)
    mask = _mask(rng, n, T)
    mask[-1, :100] = True  # keep a partly padded last sample
    O_ref, P_ref = _reference.attention_forward(Q, K, V, mask, True)
    O, P = _ops.attention_forward(Q, K, V, mask, True, need_weights=need_weights)
    assert_allclose(O, O_ref, rtol=1e-11, atol=1e-12)
    if not need_weights:
        assert P is None
        return
    assert_allclose(P, P_ref, rtol=1e-11, atol=1e-12)
    for got, want in zip(_ops.attention_backward(dO, Q, K, V, P),
                         _reference.attention_backward(dO, Q, K, V, P_ref)):
        assert_allclose(got, want, rtol=1e-10, atol=1e-11)


def test_float32_softmax_is_accurate_on_large_scores():
    # The vectorized float32 exp against float64 on scores far from 0 (the
    # max is subtracted first) and a row whose other keys vanish.
    rng = np.random.RandomState(6)
    Q, K, V, _ = _qkv(rng, 2, 40, 1, 4, 4)
    Q *= 8
    O, P = _ops.attention_forward(Q.astype(np.float32), K.astype(np.float32),
                                  V.astype(np.float32))
    O_ref, P_ref = _reference.attention_forward(Q, K, V)
    assert_allclose(P, P_ref, rtol=1e-4, atol=1e-6)
    assert_allclose(P.sum(axis=-1), 1, rtol=1e-6)
    assert_allclose(O, O_ref, rtol=1e-4, atol=1e-5)


@pytest.fixture(params=[0, 1, 2], ids=["baseline", "avx2", "avx512"])
def gemm_level(request):
    """Each compiled version of the matrix kernel this CPU can run."""
    try:
        if _attention.limit_gemm_level(request.param) != request.param:
            pytest.skip("this CPU cannot run that version of the kernel")
        yield request.param
    finally:
        _attention.limit_gemm_level(-1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_on_every_matrix_kernel_version(gemm_level, dtype):
    rng = np.random.RandomState(7)
    n, T, H, dk, dv = 3, 37, 3, 7, 18  # partial panels and row tiles
    Q, K, V, dO = _qkv(rng, n, T, H, dk, dv, dtype)
    mask, keep = _mask(rng, n, T), _keep(rng, n, H, T, dtype)
    O_ref, P_ref = _reference.attention_forward(Q, K, V, mask, False, None, keep)
    O, P = _ops.attention_forward(Q, K, V, mask, False, None, keep)
    _assert_close((O, P), (O_ref, P_ref), dtype)
    _assert_close(_ops.attention_backward(dO, Q, K, V, P, None, keep),
                  _reference.attention_backward(dO, Q, K, V, P_ref, None, keep), dtype)


def _all_results(dtype):
    rng = np.random.RandomState(8)
    n, T, H, dk, dv = 4, 21, 3, 6, 5
    Q, K, V, dO = _qkv(rng, n, T, H, dk, dv, dtype)
    mask, keep = _mask(rng, n, T), _keep(rng, n, H, T, dtype)
    O, P = _ops.attention_forward(Q, K, V, mask, True, None, keep)
    grads = _ops.attention_backward(dO, Q, K, V, P, None, keep)
    X, dY = rng.randn(2, 100, 17).astype(dtype)  # 4 chunks of rows
    gamma, beta = rng.randn(2, 17).astype(dtype)
    Y, Xhat, inv_std = _ops.layer_norm_forward(X, gamma, beta)
    ln_grads = _ops.layer_norm_backward(dY, Xhat, inv_std, gamma, rng.rand(100), 0.5)
    return (O, P) + grads + (Y, Xhat, inv_std) + ln_grads


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_agree_bit_for_bit(dtype):
    with one_thread():
        one = _all_results(dtype)
    with two_threads():
        two = _all_results(dtype)
    for a, b in zip(one, two):
        assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_samples_result_does_not_depend_on_its_batch(dtype):
    rng = np.random.RandomState(9)
    n, T, H, dk, dv = 5, 13, 2, 4, 3
    Q, K, V, dO = _qkv(rng, n, T, H, dk, dv, dtype)
    mask, keep = _mask(rng, n, T), _keep(rng, n, H, T, dtype)
    O, P = _ops.attention_forward(Q, K, V, mask, True, None, keep)
    grads = _ops.attention_backward(dO, Q, K, V, P, None, keep)
    X = rng.randn(70, 9).astype(dtype)
    Y = _ops.layer_norm_forward(X)[0]
    for i in (0, 2, 4):
        s = slice(i, i + 1)
        O1, P1 = _ops.attention_forward(Q[s], K[s], V[s], mask[s], True, None, keep[s])
        assert_array_equal(O1, O[s])
        assert_array_equal(P1, P[s])
        for g1, g in zip(_ops.attention_backward(dO[s], Q[s], K[s], V[s], P1, None, keep[s]),
                         grads):
            assert_array_equal(g1, g[s])
        assert_array_equal(_ops.layer_norm_forward(X[10 * i:10 * i + 3])[0],
                           Y[10 * i:10 * i + 3])


# -- layer normalization -------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (70, 33), (40, 64)])
@pytest.mark.parametrize("affine", ["none", "both", "gamma", "beta"])
def test_layer_norm_matches_its_twin(dtype, shape, affine):
    rng = np.random.RandomState(shape[0])
    m, C = shape
    X = (rng.randn(m, C) * 3 + 1).astype(dtype)
    gamma = rng.randn(C).astype(dtype) if affine in ("both", "gamma") else None
    beta = rng.randn(C).astype(dtype) if affine in ("both", "beta") else None
    want = _reference.layer_norm_forward(X, gamma, beta, 1e-3)
    got = _ops.layer_norm_forward(X, gamma, beta, 1e-3)
    _assert_close(got, want, dtype)
    run, *bound = _ops.bind_layer_norm_forward(X, gamma, beta, 1e-3)
    run()
    for a, b in zip(bound, got):
        assert_array_equal(a, b)
    dY = rng.randn(m, C).astype(dtype)
    w = rng.rand(m)
    for weights, scale in ((None, 1.0), (w, 0.25)):
        _assert_close(
            _ops.layer_norm_backward(dY, got[1], got[2], gamma, weights, scale),
            _reference.layer_norm_backward(dY, want[1], want[2], gamma, weights, scale),
            dtype)
    dX, dgamma, dbeta = _ops.layer_norm_backward(dY, got[1], got[2], gamma, w, 0.25,
                                                 need_input_grad=False)
    assert dX is None
    _assert_close((dgamma, dbeta), _reference.layer_norm_backward(
        dY, want[1], want[2], gamma, w, 0.25, need_input_grad=False)[1:], dtype)


def test_layer_norm_sample_weights_weigh_the_parameter_gradients_like_repetition():
    rng = np.random.RandomState(10)
    X, dY = rng.randn(2, 6, 5)
    _, Xhat, inv_std = _ops.layer_norm_forward(X)
    twice = np.r_[np.arange(6), [2]]
    weighted = _ops.layer_norm_backward(dY, Xhat, inv_std, sample_weight=[1, 1, 2, 1, 1, 1])
    repeated = _ops.layer_norm_backward(dY[twice], Xhat[twice], inv_std[twice])
    for a, b in zip(weighted[1:], repeated[1:]):
        assert_allclose(a, b, rtol=1e-13)


def test_bound_layer_norm_reads_new_values_and_gamma_at_every_call():
    rng = np.random.RandomState(11)
    X = rng.randn(9, 4)
    gamma, beta = rng.randn(2, 4)
    run, Y, Xhat, inv_std = _ops.bind_layer_norm_forward(X, gamma, beta, 1e-5)
    for _ in range(2):
        run()
        for a, b in zip((Y, Xhat, inv_std), _reference.layer_norm_forward(X, gamma, beta, 1e-5)):
            assert_allclose(a, b, rtol=1e-12, atol=1e-13)
        X[...] = rng.randn(9, 4)
        gamma -= 0.1  # an optimizer's step, in place


def test_bound_layer_norm_backward_reads_new_values_weights_and_gamma_at_every_call():
    rng = np.random.RandomState(13)
    X = rng.randn(9, 4)
    gamma = rng.randn(4)
    _, Xhat, inv_std = _ops.layer_norm_forward(X, gamma)
    dY, w = rng.randn(9, 4), rng.rand(9)
    run, dX, dgamma, dbeta = _ops.bind_layer_norm_backward(dY, Xhat, inv_std, gamma, w)
    for scale in (1.0, 0.3):
        run(scale)
        want = _ops.layer_norm_backward(dY, Xhat, inv_std, gamma, w, scale)
        for a, b in zip((dX, dgamma, dbeta), want):
            assert_array_equal(a, b)
        dY[...] = rng.randn(9, 4)
        w[...] = rng.rand(9)
        gamma -= 0.1  # an optimizer's step, in place
    w[0] = np.nan
    with pytest.raises(ValueError, match="sample_weight must hold finite values"):
        run(1.0)
    with pytest.raises(ValueError, match="dY must be a C-contiguous"):
        _ops.bind_layer_norm_backward(dY[:, :2], Xhat[:, :2], inv_std, None)


def test_layer_norm_out_arrays_and_inputs():
    rng = np.random.RandomState(12)
    X, dY = rng.randn(2, 8, 3)
    copies = X.copy(), dY.copy()
    outs = np.empty((8, 3)), np.empty((8, 3)), np.empty(8)
    got = _ops.layer_norm_forward(X, None, None, 1e-3, *outs)
    assert all(g is o for g, o in zip(got, outs))
    grads_out = np.empty((8, 3)), np.empty(3), np.empty(3)
    grads = _ops.layer_norm_backward(dY, got[1], got[2], out=grads_out[0], dgamma=grads_out[1],
                                     dbeta=grads_out[2])
    assert all(g is o for g, o in zip(grads, grads_out))
    assert_array_equal(X, copies[0])
    assert_array_equal(dY, copies[1])


def test_layer_norm_of_a_constant_row_is_zero():
    Y, Xhat, inv_std = _ops.layer_norm_forward(np.full((2, 5), 3.0, np.float32), epsilon=1e-3)
    assert not Xhat.any() and not Y.any()
    assert_allclose(inv_std, 1 / np.sqrt(1e-3), rtol=1e-6)


# -- errors ----------------------------------------------------------------------

def _bad_calls():
    rng = np.random.RandomState(0)
    Q, K, V, dO = _qkv(rng, 2, 3, 2, 4, 5)
    P = np.full((2, 2, 3, 3), 1 / 3)
    X = rng.randn(4, 3)
    f32 = Q.astype(np.float32)
    fwd, bwd = _ops.attention_forward, _ops.attention_backward
    ln, lnb = _ops.layer_norm_forward, _ops.layer_norm_backward
    return [
        (lambda: fwd(Q.astype(int), K, V), TypeError, "Q must be float32 or float64"),
        (lambda: fwd(f32, K, V), TypeError, "K has dtype float64 but float32"),
        (lambda: fwd(Q[0], K, V), ValueError, "Q must be 4-D"),
        (lambda: fwd(Q, K[:, :2], V), ValueError, r"K must have Q's shape"),
        (lambda: fwd(Q, K, V[:, :, :1]), ValueError, r"V must have shape \(n, T, H, dv\)"),
        (lambda: fwd(Q[..., :0], K[..., :0], V), ValueError, "at least one step"),
        (lambda: fwd(Q, K, V, mask=np.ones((2, 4), bool)), ValueError,
         r"mask must have shape \(n, T\) = \(2, 3\)"),
        (lambda: fwd(Q, K, V, mask=np.array([[0, 1, 2], [1, 1, 1]])), ValueError,
         "mask must hold 0 or 1"),
        (lambda: fwd(Q, K, V, mask=np.full((2, 3), "a")), TypeError, "mask must be bool"),
        (lambda: fwd(Q, K, V, keep=np.ones((2, 2, 3, 4))), ValueError,
         r"keep must have shape \(n, H, T, T\)"),
        (lambda: fwd(Q, K, V, keep=np.ones((2, 2, 3, 3), np.float32)), TypeError,
         "keep has dtype float32"),
        (lambda: fwd(Q, K, V, scale=np.inf), ValueError, "scale must be finite"),
        (lambda: fwd(Q, K, V, scale="1"), TypeError, "scale must be a real number"),
        (lambda: fwd(Q, K, V, need_weights=False, weights_out=P.copy()), ValueError,
         "weights_out is given but need_weights is False"),
        (lambda: fwd(Q, K, V, out=np.empty((2, 3, 2, 4))), ValueError,
         "out must be a C-contiguous float64 array of shape"),
        (lambda: fwd(Q, K, V, out=V), ValueError, "out overlaps an input"),
        (lambda: bwd(dO[:, :, :, :2], Q, K, V, P), ValueError, "dO must have V's shape"),
        (lambda: bwd(dO, Q, K, V, P[:, :1]), ValueError,
         r"P must have shape \(n, H, T, T\) = \(2, 2, 3, 3\)"),
        (lambda: bwd(dO, Q, K, V, P.astype(np.float32)), TypeError, "P has dtype float32"),
        (lambda: bwd(dO, Q, K, V, P, dq_out=Q), ValueError, "dq_out overlaps an input"),
        (lambda: _ops.bind_attention_forward(np.asfortranarray(Q), K, V), ValueError,
         "Q must be a C-contiguous float32 or float64 ndarray to bind"),
        (lambda: ln(X[0]), ValueError, "X must be 2-D"),
        (lambda: ln(X[:, :0]), ValueError, "X must have at least one column"),
        (lambda: ln(X, epsilon=0), ValueError, r"epsilon must be in \(0.0, inf\), got 0"),
        (lambda: ln(X, epsilon=None), TypeError, "epsilon must be a real number"),
        (lambda: ln(X, gamma=np.ones(4)), ValueError,
         r"gamma must be a float array of shape \(3,\)"),
        (lambda: ln(X, beta=np.ones(3, int)), ValueError, "beta must be a float array"),
        (lambda: ln(X, out=X), ValueError, "out overlaps an input"),
        (lambda: lnb(X, X[:2], np.ones(4)), ValueError, r"Xhat has shape \(2, 3\)"),
        (lambda: lnb(X, X, np.ones(3)), ValueError, r"inv_std must have shape \(4,\)"),
        (lambda: lnb(X, X, np.ones(4), sample_weight=np.ones(3)), ValueError,
         r"sample_weight must have shape \(4,\)"),
        (lambda: lnb(X, X, np.ones(4), scale=np.nan), ValueError, "scale must be finite"),
        (lambda: lnb(X, X, np.ones(4), accumulate_dtype=np.int32), ValueError,
         "accumulate_dtype must be float32 or float64"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_bad_inputs_raise_clear_errors(case):
    call, error, message = _bad_calls()[case]
    with pytest.raises(error, match=message):
        call()


# -- residual additions ------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_add_is_numpys_sum_on_any_thread_count_and_in_place(dtype):
    rng = np.random.RandomState(14)
    A, B = rng.randn(2, 3, 5000, 7).astype(dtype)  # several chunks, a short last one
    want = A + B
    copies = A.copy(), B.copy()
    for threads in (one_thread, two_threads):
        with threads():
            assert_array_equal(_ops.residual_add(A, B), want)
    assert_array_equal(A, copies[0])
    assert_array_equal(B, copies[1])
    run, Y = _ops.bind_residual_add(A, B, out=A)  # in place, as the layers use it
    assert Y is A
    run()
    assert_array_equal(A, want)
    assert_array_equal(_ops.residual_add(np.empty((0, 3), dtype), np.empty((0, 3), dtype)),
                       np.empty((0, 3), dtype))


def test_residual_add_errors():
    A = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"A has shape \(4, 3\) but B has \(3, 4\)"):
        _ops.residual_add(A, np.zeros((3, 4)))
    with pytest.raises(TypeError, match="B has dtype float32 but float64 is expected"):
        _ops.residual_add(A, np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="out overlaps an input"):
        _ops.residual_add(A, np.ones((4, 3)), out=A[:, :])  # A's memory, not A itself
    with pytest.raises(ValueError, match="to bind an op to it"):
        _ops.bind_residual_add(A[:, :2], A[:, 1:])
