"""Matrix-product kernels for dense layers.

Row-wise products run in fixed panels of rows, one BLAS call per panel on one
thread, the panels shared out by ``prange``. Every call has a row count that
is a multiple of ``ROW_ALIGN`` (the last, short panel is zero-padded through a
scratch buffer), so a sample's output never depends on which other samples
share its batch, on its position in the batch, or on the thread count: BLAS
picks different micro-kernels for other row counts, and those round
differently.

Reductions over the batch (weight gradients) are cut into fixed blocks of
output rows, again one single-threaded BLAS call per block, so the result is
the same for any thread count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

from ._blas cimport gemm

# Rows per panel, and the granularity every BLAS call's row count is padded to.
cdef int PANEL_ROWS = 64
cdef int ROW_ALIGN = 16
# Output rows per block of a weight-gradient product.
cdef int REDUCE_BLOCK = 64

PANEL_ROWS_ = PANEL_ROWS
ROW_ALIGN_ = ROW_ALIGN


cdef void _panel_product(int start, int rows, int k, int p, bint trans_b,
                         const floating* a, const floating* b, const floating* bias,
                         floating* c, floating* pad_a, floating* pad_c) noexcept nogil:
    """C[start:start+rows] = A[start:start+rows] @ op(B) (+ bias)."""
    cdef int full = rows - rows % ROW_ALIGN
    cdef int rem = rows - full
    cdef int ldb = p if not trans_b else k
    cdef int i, j
    cdef floating* row
    if full > 0:
        gemm(False, trans_b, full, p, k, <floating> 1.0, a + <Py_ssize_t> start * k, k,
             b, ldb, <floating> 0.0, c + <Py_ssize_t> start * p, p)
    if rem > 0:
        # Short tail: pad to ROW_ALIGN rows with zeros so BLAS sees the same shape.
        memcpy(pad_a, a + <Py_ssize_t> (start + full) * k, rem * k * sizeof(floating))
        memset(pad_a + rem * k, 0, (ROW_ALIGN - rem) * k * sizeof(floating))
        gemm(False, trans_b, ROW_ALIGN, p, k, <floating> 1.0, pad_a, k,
             b, ldb, <floating> 0.0, pad_c, p)
        memcpy(c + <Py_ssize_t> (start + full) * p, pad_c, rem * p * sizeof(floating))
    if bias != NULL:
        for i in range(start, start + rows):
            row = c + <Py_ssize_t> i * p
            for j in range(p):
                row[j] += bias[j]


def rowwise_gemm(const floating[:, ::1] A, const floating[:, ::1] B,
                 floating[:, ::1] C, bint trans_b,
                 floating[:, ::1] pad_a, floating[:, ::1] pad_c,
                 int n_threads, const floating[::1] bias=None):
    """C = A @ op(B) (+ bias), computed in fixed row panels.

    Parameters
    ----------
    A : (n, k) array
    B : (k, p) array, or (p, k) when ``trans_b``
    C : (n, p) output array
    trans_b : bool
    pad_a, pad_c : (ROW_ALIGN, k) and (ROW_ALIGN, p) scratch arrays
    n_threads : int
    bias : (p,) array or None
    """
    cdef int n = A.shape[0]
    cdef int k = A.shape[1]
    cdef int p = C.shape[1]
    cdef int n_panels = (n + PANEL_ROWS - 1) // PANEL_ROWS
    cdef int i, start, rows
    cdef const floating* bias_ptr = NULL
    if bias is not None:
        bias_ptr = &bias[0]
    if n == 0:
        return
    with nogil:
        for i in prange(n_panels, schedule='static', num_threads=n_threads):
            start = i * PANEL_ROWS
            rows = min(PANEL_ROWS, n - start)
            # Only the last panel can have a tail, so one scratch pair suffices.
            _panel_product(start, rows, k, p, trans_b, &A[0, 0], &B[0, 0], bias_ptr,
                           &C[0, 0], &pad_a[0, 0], &pad_c[0, 0])


def gemm_tn_blocked(floating alpha, const floating[:, ::1] A,
                    const floating[:, ::1] B, floating[:, ::1] C, int n_threads):
    """C = alpha * A.T @ B in fixed blocks of C's rows.

    Parameters
    ----------
    alpha : float
    A : (n, p) array
    B : (n, q) array
    C : (p, q) output array
    n_threads : int
    """
    cdef int n = A.shape[0]
    cdef int p = A.shape[1]
    cdef int q = B.shape[1]
    cdef int n_blocks = (p + REDUCE_BLOCK - 1) // REDUCE_BLOCK
    cdef int i, i0, rows
    if n == 0:
        C[:, :] = 0
        return
    with nogil:
        for i in prange(n_blocks, schedule='static', num_threads=n_threads):
            i0 = i * REDUCE_BLOCK
            rows = min(REDUCE_BLOCK, p - i0)
            gemm(True, False, rows, q, n, alpha, &A[0, i0], p, &B[0, 0], q,
                 <floating> 0.0, &C[i0, 0], q)


def weighted_column_sum(const floating[:, ::1] A, const double[::1] weights,
                        double alpha, floating[::1] out, int n_threads):
    """out[j] = alpha * sum_r weights[r] * A[r, j], accumulated in float64.

    Parameters
    ----------
    A : (n, p) array
    weights : (n,) float64 array
    alpha : float
    out : (p,) output array
    n_threads : int
    """
    cdef int n = A.shape[0]
    cdef int p = A.shape[1]
    cdef int r, j
    cdef double acc
    with nogil:
        for j in prange(p, schedule='static', num_threads=n_threads):
            acc = 0.0
            for r in range(n):
                acc = acc + weights[r] * A[r, j]
            out[j] = <floating> (alpha * acc)
