"""Layer normalization and scaled dot-product attention, float32 and float64.

Layer normalization normalizes each row of X (m, C) over its C values. Its
statistics are summed in lanes (16 floats or 8 doubles, one AVX-512
register) added in a fixed order; the row loops are C helpers (_attention.h)
compiled for each vector extension. (float64 statistics for float32 rows
cost 2.4x the time in conversions, for no gain in float32 results.) gamma's
and beta's gradients are sums over the rows, in float64: they run over fixed
chunks of CHUNK rows, each chunk's sums kept apart and the chunks added in
order, so they depend on the shapes alone, never on the thread count.

Attention takes Q, K (n, T, H, dk) and V (n, T, H, dv) as a projection
(n * T, F) @ (F, H * d) leaves them, and works on one (sample, head) pair at
a time: ``prange`` over the n * H pairs, each pair's matrices read in place
with a row stride of H * d. Its products run on skdl's row-invariant kernel
(_rowgemm.h), the other operand packed into the thread's own scratch; the
softmax (scale folded into the packed keys, masks fused, _attention.h) runs
over each row of scores right after their product. A pair's result is the
same whichever thread computes it and whatever else is in the batch.

Scratch is per thread, never per pair: a (T, T) block or two and the packed
panels, so a long sequence costs O(threads * T^2) beyond the caller's
arrays; the forward pass without ``P`` needs no (n, H, T, T) array.

The residual additions of an encoder block run here too, over chunks of
ADD_CHUNK values: numpy's add runs on one thread, which left them a tenth of
a two-thread training step.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc

from ._openmp cimport (ATTENTION_BACKWARD, ATTENTION_FORWARD, LAYER_NORM_BACKWARD,
                       LAYER_NORM_FORWARD, RESIDUAL_ADD, note_thread)
from ._rowgemm cimport pack_b, packed_size, rowgemm


cdef extern from "_attention.h" nogil:
    # Declared with void pointers once for both dtypes (see _generic.h).
    void softmax_row "skdl_attn_softmax"(void* s, const unsigned char* mask,
                                         int n_visible, int T)
    void softmax_grad_row "skdl_attn_softmax_grad"(void* da, const void* p,
                                                   const void* keep, int n_visible,
                                                   int T)
    void norm_row "skdl_ln_row"(const void* x, void* y, void* xhat, void* inv_std, int C,
                                const void* gamma, const void* beta, double epsilon)
    void norm_grad_rows "skdl_ln_grad_rows"(const void* dy, const void* xhat,
                                            const void* inv_std, const void* gamma,
                                            const double* w, Py_ssize_t start,
                                            Py_ssize_t stop, int C, void* dx, double* s_dy,
                                            double* s_dy_xhat)
    # C (m, n) = A (m, k) @ B, B packed by pack_b, n at most narrow_width(C).
    void narrow_product "skdl_attn_narrow"(int m, int n, int k, const void* a,
                                           Py_ssize_t lda, const void* packed, void* c,
                                           Py_ssize_t ldc)
    int narrow_width "SKDL_NARROW_WIDTH"(void* c)
    void transpose "skdl_attn_transpose"(const void* src, const void* mul, int rows,
                                         int cols, int lds, void* dst, int ldd)


# Rows per chunk of gamma's and beta's gradients (see the module docstring).
cdef int CHUNK = 32
CHUNK_ = CHUNK
# Queries per block of a causal forward pass, whose products stop at the
# block's last key: a multiple of the softmax's vector (16 floats), so every
# score the softmax reads (up to its row's last whole vector) is computed.
cdef enum:
    CAUSAL_ROWS = 16


cdef void* _alloc(size_t size, str what) except NULL:
    cdef void* buf = malloc(max(<size_t> 1, size))
    if buf == NULL:
        raise MemoryError(f"cannot allocate {what}")
    return buf


# -- layer normalization -------------------------------------------------------

# Values per chunk of an addition: a thread's share stays in its core's cache.
cdef Py_ssize_t ADD_CHUNK = 4096


def residual_add(const floating[::1] a, const floating[::1] b, floating[::1] out, int n_threads):
    """out = a + b, elementwise (out may be a or b itself).

    Parameters
    ----------
    a, b, out : (size,) arrays of one dtype
    n_threads : int
    """
    cdef Py_ssize_t size = a.shape[0]
    cdef Py_ssize_t n_chunks = (size + ADD_CHUNK - 1) // ADD_CHUNK
    cdef Py_ssize_t k, i, stop
    cdef int t = 0
    cdef const floating* x = &a[0] if size else NULL
    cdef const floating* y = &b[0] if size else NULL
    cdef floating* z = &out[0] if size else NULL
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for k in prange(n_chunks, schedule='static'):
            note_thread(RESIDUAL_ADD, t)
            stop = min((k + 1) * ADD_CHUNK, size)
            for i in range(k * ADD_CHUNK, stop):
                z[i] = x[i] + y[i]


def layer_norm_forward(const floating[:, ::1] X, const floating[::1] gamma,
                       const floating[::1] beta, double epsilon, floating[:, ::1] Y,
                       floating[:, ::1] Xhat, floating[::1] inv_std, int n_threads):
    """Each row normalized over its C values, then scaled and shifted.

    ``xhat = (x - mean) / sqrt(var + epsilon)`` (biased variance of the row),
    ``y = gamma * xhat + beta``; statistics in X's dtype, in lanes.

    Parameters
    ----------
    X : (m, C)
    gamma, beta : (C,), or both None for 1 and 0
    epsilon : float > 0
    Y, Xhat : (m, C) outputs
    inv_std : (m,) output, 1 / sqrt(var + epsilon) of each row
    n_threads : int
    """
    cdef Py_ssize_t m = X.shape[0]
    cdef int C = X.shape[1]
    cdef int n_chunks = <int> ((m + CHUNK - 1) // CHUNK)
    cdef int k, t = 0
    cdef Py_ssize_t i
    cdef const floating* g = NULL
    cdef const floating* b = NULL
    if m == 0 or C == 0:
        return
    if gamma is not None:
        g = &gamma[0]
        b = &beta[0]
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for k in prange(n_chunks, schedule='static'):
            note_thread(LAYER_NORM_FORWARD, t)
            for i in range(<Py_ssize_t> k * CHUNK, min(<Py_ssize_t> (k + 1) * CHUNK, m)):
                norm_row(&X[i, 0], &Y[i, 0], &Xhat[i, 0], &inv_std[i], C, g, b, epsilon)


def layer_norm_backward(const floating[:, ::1] dY, const floating[:, ::1] Xhat,
                        const floating[::1] inv_std, const floating[::1] gamma,
                        const double[::1] weights, double scale, floating[:, ::1] dX,
                        double[::1] dgamma, double[::1] dbeta, double[:, ::1] partial1,
                        double[:, ::1] partial2, int n_threads):
    """Gradients of :func:`layer_norm_forward`, in one pass over the rows.

    ``dgamma = scale * sum_i w_i dy_i xhat_i``, ``dbeta = scale * sum_i w_i
    dy_i``, summed in float64 over fixed chunks of CHUNK rows added in order;
    ``dx = inv_std (g - mean(g) - xhat mean(g xhat))`` per row, ``g = gamma dy``.

    Parameters
    ----------
    dY, Xhat : (m, C)
    inv_std : (m,)
    gamma : (C,), or None for ones
    weights : (m,) float64 row weights, or None for ones
    scale : float
    dX : (m, C) output, or None to skip the input gradient
    dgamma, dbeta : (C,) float64 outputs
    partial1, partial2 : (max(1, ceil(m / CHUNK)), C) float64 scratch
    n_threads : int
    """
    cdef Py_ssize_t m = dY.shape[0]
    cdef int C = dY.shape[1]
    cdef int n_chunks = <int> ((m + CHUNK - 1) // CHUNK)
    cdef int k, c, t = 0
    cdef double a1, a2
    cdef const floating* g = NULL
    cdef const double* w = NULL
    cdef floating* dx = NULL
    if C == 0:
        return
    if m == 0:
        dgamma[:] = 0
        dbeta[:] = 0
        return
    if gamma is not None:
        g = &gamma[0]
    if weights is not None:
        w = &weights[0]
    if dX is not None:
        dx = &dX[0, 0]
    with nogil:
        with parallel(num_threads=n_threads):
            t = threadid()
            for k in prange(n_chunks, schedule='static'):
                note_thread(LAYER_NORM_BACKWARD, t)
                norm_grad_rows(&dY[0, 0], &Xhat[0, 0], &inv_std[0], g, w,
                                 <Py_ssize_t> k * CHUNK,
                                 min(<Py_ssize_t> (k + 1) * CHUNK, m), C, dx,
                                 &partial1[k, 0], &partial2[k, 0])
        for c in range(C):
            a1 = 0.0
            a2 = 0.0
            for k in range(n_chunks):
                a1 = a1 + partial1[k, c]
                a2 = a2 + partial2[k, c]
            dbeta[c] = scale * a1
            dgamma[c] = scale * a2


# -- attention -----------------------------------------------------------------

def attention_forward(const floating[:, :, :, ::1] Q, const floating[:, :, :, ::1] K,
                      const floating[:, :, :, ::1] V, const unsigned char[:, ::1] mask,
                      bint causal, double scale, const floating[:, :, :, ::1] keep,
                      floating[:, :, :, ::1] O, floating[:, :, :, ::1] P, int n_threads):
    """Scaled dot-product attention of every (sample, head) pair.

    ``P = softmax(scale * Q K^T)`` over the visible keys of each query (a
    query seeing none gets zeros), ``O = (P o keep) V``.

    Parameters
    ----------
    Q, K : (n, T, H, dk)
    V : (n, T, H, dv)
    mask : (n, T) uint8, 1 where the key is present, or None
    causal : bool, hide the keys after each query
    scale : float
    keep : (n, H, T, T) dropout multipliers, or None
    O : (n, T, H, dv) output
    P : (n, H, T, T) output (the weights before dropout), or None
    n_threads : int
    """
    cdef int n = Q.shape[0], T = Q.shape[1], H = Q.shape[2]
    cdef int dk = Q.shape[3], dv = V.shape[3]
    cdef int pair, b, h, i, blk, t = 0
    cdef Py_ssize_t e, TT = <Py_ssize_t> T * T
    cdef size_t pk = packed_size(dk, T, sizeof(floating))
    cdef size_t pv = packed_size(T, dv, sizeof(floating))
    cdef size_t per_thread = pk + pv + <size_t> TT
    cdef bint has_p = P is not None
    cdef bint has_keep = keep is not None
    cdef bint has_mask = mask is not None
    # A head's dv fits a vector: the narrow product (see _attention.h).
    cdef bint narrow = dv <= narrow_width(&O[0, 0, 0, 0]) if O.size else False
    cdef const unsigned char* mrow = NULL
    cdef const floating* kp
    cdef floating* base
    cdef floating* S
    cdef floating* A
    cdef floating* scratch
    if n == 0 or T == 0 or H == 0 or dk == 0 or dv == 0:
        return
    scratch = <floating*> _alloc(n_threads * per_thread * sizeof(floating),
                                 f"{n_threads} attention scratch blocks of {T} x {T}")
    try:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for pair in prange(n * H, schedule='static'):
                note_thread(ATTENTION_FORWARD, t)
                b = pair // H
                h = pair % H
                base = scratch + t * per_thread
                # Scores S = Q_bh (scale K_bh)^T, K_bh packed transposed.
                pack_b(dk, T, &K[b, 0, h, 0], 1, H * dk, <floating> scale, base)
                S = &P[b, h, 0, 0] if has_p else base + pk + pv
                if causal:
                    # Each block of CAUSAL_ROWS queries sees the keys up to its
                    # last: the scores after them are never read (the softmax
                    # hides them), nor computed.
                    for blk in range((T + CAUSAL_ROWS - 1) // CAUSAL_ROWS):
                        i = blk * CAUSAL_ROWS
                        rowgemm(min(CAUSAL_ROWS, T - i), min(T, i + CAUSAL_ROWS), dk,
                                &Q[b, i, h, 0], H * dk, base, S + <Py_ssize_t> i * T, T,
                                False)
                else:
                    rowgemm(T, T, dk, &Q[b, 0, h, 0], H * dk, base, S, T, False)
                if has_mask:
                    mrow = &mask[b, 0]
                for i in range(T):
                    softmax_row(S + <Py_ssize_t> i * T, mrow, i + 1 if causal else T, T)
                A = S
                if has_keep:
                    # Dropout on the weights that weigh V; P keeps them whole.
                    A = base + pk + pv
                    kp = &keep[b, h, 0, 0]
                    for e in range(TT):
                        A[e] = S[e] * kp[e]
                pack_b(T, dv, &V[b, 0, h, 0], H * dv, 1, <floating> 1.0, base + pk)
                if narrow and causal:  # the weights after a block's last key are 0
                    for blk in range((T + CAUSAL_ROWS - 1) // CAUSAL_ROWS):
                        i = blk * CAUSAL_ROWS
                        narrow_product(min(CAUSAL_ROWS, T - i), dv, min(T, i + CAUSAL_ROWS),
                                       A + <Py_ssize_t> i * T, T, base + pk, &O[b, i, h, 0],
                                       H * dv)
                elif narrow:
                    narrow_product(T, dv, T, A, T, base + pk, &O[b, 0, h, 0], H * dv)
                else:
                    rowgemm(T, dv, T, A, T, base + pk, &O[b, 0, h, 0], H * dv, False)
    finally:
        free(scratch)


def attention_backward(const floating[:, :, :, ::1] dO, const floating[:, :, :, ::1] Q,
                       const floating[:, :, :, ::1] K, const floating[:, :, :, ::1] V,
                       const floating[:, :, :, ::1] P, double scale,
                       const floating[:, :, :, ::1] keep, floating[:, :, :, ::1] dQ,
                       floating[:, :, :, ::1] dK, floating[:, :, :, ::1] dV,
                       int n_threads):
    """Gradients of :func:`attention_forward` from its weights P.

    ``dV = A^T dO`` (A = P o keep), ``dA = dO V^T``, ``dS = P o (dP -
    rowsum(dP o P))`` with ``dP = dA o keep``, ``dQ = scale dS K``,
    ``dK = scale dS^T Q``.

    dV and dK are computed transposed, ``dV^T = dO^T A`` and ``dK^T =
    Q^T (scale dS)``: their (T, T) factor is then the packed operand as it
    lies (a copy into panels, where transposing it cost a strided pass), and
    the products fill whole panels of T columns instead of dv or dk.

    Parameters
    ----------
    dO : (n, T, H, dv)
    Q, K : (n, T, H, dk)
    V : (n, T, H, dv)
    P : (n, H, T, T)
    scale : float
    keep : (n, H, T, T) or None
    dQ, dK : (n, T, H, dk) outputs
    dV : (n, T, H, dv) output
    n_threads : int
    """
    cdef int n = Q.shape[0], T = Q.shape[1], H = Q.shape[2]
    cdef int dk = Q.shape[3], dv = V.shape[3]
    cdef int pair, b, h, i, t = 0
    cdef Py_ssize_t e, TT = <Py_ssize_t> T * T
    cdef size_t pmax = max(max(packed_size(dv, T, sizeof(floating)),
                               packed_size(T, T, sizeof(floating))),
                           packed_size(T, dk, sizeof(floating)))
    cdef size_t small = <size_t> T * max(dk, dv)
    cdef size_t per_thread = pmax + 2 * <size_t> TT + 2 * small
    cdef bint has_keep = keep is not None
    cdef bint narrow = dk <= narrow_width(&dQ[0, 0, 0, 0]) if dQ.size else False
    cdef const floating* p
    cdef const floating* A
    cdef const floating* kp = NULL
    cdef const floating* kr = NULL
    cdef floating* base
    cdef floating* AK
    cdef floating* DS
    cdef floating* tin
    cdef floating* tout
    cdef floating* scratch
    if n == 0 or T == 0 or H == 0 or dk == 0 or dv == 0:
        return
    scratch = <floating*> _alloc(n_threads * per_thread * sizeof(floating),
                                 f"{n_threads} attention scratch blocks of 2 x {T} x {T}")
    try:
        with nogil, parallel(num_threads=n_threads):
            t = threadid()
            for pair in prange(n * H, schedule='static'):
                note_thread(ATTENTION_BACKWARD, t)
                b = pair // H
                h = pair % H
                base = scratch + t * per_thread
                AK = base + pmax
                DS = AK + TT
                tin = DS + TT
                tout = tin + small
                p = &P[b, h, 0, 0]
                A = p
                if has_keep:
                    kp = &keep[b, h, 0, 0]
                    for e in range(TT):
                        AK[e] = p[e] * kp[e]
                    A = AK
                # dV^T (dv, T) = dO^T A, A = P o keep
                transpose(&dO[b, 0, h, 0], <const floating*> NULL, T, dv, H * dv, tin, T)
                pack_b(T, T, A, T, 1, <floating> 1.0, base)
                rowgemm(dv, T, T, tin, T, base, tout, T, False)
                transpose(tout, <const floating*> NULL, dv, T, T, &dV[b, 0, h, 0], H * dv)
                # dA = dO V^T, then the softmax's gradient row by row
                pack_b(dv, T, &V[b, 0, h, 0], 1, H * dv, <floating> 1.0, base)
                rowgemm(T, T, dv, &dO[b, 0, h, 0], H * dv, base, DS, T, False)
                for i in range(T):
                    if has_keep:
                        kr = kp + <Py_ssize_t> i * T
                    softmax_grad_row(DS + <Py_ssize_t> i * T, p + <Py_ssize_t> i * T, kr,
                                     T, T)
                # dQ = dS (scale K)
                pack_b(T, dk, &K[b, 0, h, 0], H * dk, 1, <floating> scale, base)
                if narrow:
                    narrow_product(T, dk, T, DS, T, base, &dQ[b, 0, h, 0], H * dk)
                else:
                    rowgemm(T, dk, T, DS, T, base, &dQ[b, 0, h, 0], H * dk, False)
                # dK^T (dk, T) = Q^T (scale dS)
                transpose(&Q[b, 0, h, 0], <const floating*> NULL, T, dk, H * dk, tin, T)
                pack_b(T, T, DS, T, 1, <floating> scale, base)
                rowgemm(dk, T, T, tin, T, base, tout, T, False)
                transpose(tout, <const floating*> NULL, dk, T, T, &dK[b, 0, h, 0], H * dk)
    finally:
        free(scratch)


include "_gemm_level.pxi"
