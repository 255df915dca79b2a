"""Matrix-product kernels for dense layers.

Row-wise products run in panels of a fixed number of rows (``panel_rows``, a
property of the network), one BLAS call per panel on one thread, the panels
shared out by ``prange``. Every call has exactly the same shape (the last,
short panel is zero-padded through a scratch buffer): BLAS picks its
micro-kernels by shape (small-matrix paths, edge tiles), and those round
differently. With one shape for every call, a sample's output never depends
on which other samples share its batch, on its position in the batch, or on
the thread count.

Reductions over the batch (weight gradients) are cut into fixed blocks of
output rows, one single-threaded BLAS call per block, so the result is the
same for any thread count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

from ._activations cimport LINEAR, forward_row
from ._blas cimport gemm

# Largest number of output rows per block of a weight-gradient product; the
# rows are split into equal blocks, by a rule that depends on the shape only.
cdef int REDUCE_BLOCK = 512
# Columns per block of a column sum (the size of its stack accumulator).
cdef enum:
    SUM_BLOCK = 64


cdef void _panel_product(int start, int rows, int panel_rows, int k, int p,
                         bint trans_b, const floating* a, const floating* b,
                         const floating* bias, int activation, double alpha,
                         floating* c, floating* pad_a, floating* pad_c) noexcept nogil:
    """C[start:start+rows] = f(A[start:start+rows] @ op(B) + bias)."""
    cdef int ldb = p if not trans_b else k
    cdef int i, j
    cdef floating* row
    if rows == panel_rows:
        gemm(False, trans_b, panel_rows, p, k, <floating> 1.0,
             a + <Py_ssize_t> start * k, k, b, ldb, <floating> 0.0,
             c + <Py_ssize_t> start * p, p)
    else:
        # Short last panel: pad with zero rows so BLAS sees the usual shape.
        memcpy(pad_a, a + <Py_ssize_t> start * k, rows * k * sizeof(floating))
        memset(pad_a + rows * k, 0, (panel_rows - rows) * k * sizeof(floating))
        gemm(False, trans_b, panel_rows, p, k, <floating> 1.0, pad_a, k,
             b, ldb, <floating> 0.0, pad_c, p)
        memcpy(c + <Py_ssize_t> start * p, pad_c, rows * p * sizeof(floating))
    for i in range(start, start + rows):
        row = c + <Py_ssize_t> i * p
        if bias != NULL:
            for j in range(p):
                row[j] += bias[j]
        if activation != LINEAR:
            forward_row(activation, alpha, row, row, p)


def rowwise_gemm(const floating[:, ::1] A, const floating[:, ::1] B,
                 floating[:, ::1] C, bint trans_b,
                 floating[:, ::1] pad_a, floating[:, ::1] pad_c,
                 int n_threads, const floating[::1] bias=None,
                 int activation=0, double alpha=0.0):
    """C = f(A @ op(B) + bias), computed in row panels of one shape.

    Parameters
    ----------
    A : (n, k) array
    B : (k, p) array, or (p, k) when ``trans_b``
    C : (n, p) output array
    trans_b : bool
    pad_a, pad_c : (panel_rows, k) and (panel_rows, p) scratch arrays; their
        row count is the panel size
    n_threads : int
    bias : (p,) array or None
    activation : int, activation kind (see _activations.pxd); 0 is linear
    alpha : float, parameter of the activation
    """
    cdef int n = A.shape[0]
    cdef int k = A.shape[1]
    cdef int p = C.shape[1]
    cdef int panel_rows = pad_a.shape[0]
    cdef int n_panels = (n + panel_rows - 1) // panel_rows
    cdef int i, start, rows
    cdef const floating* bias_ptr = NULL
    if bias is not None:
        bias_ptr = &bias[0]
    if n == 0:
        return
    with nogil:
        for i in prange(n_panels, schedule='static', num_threads=n_threads):
            start = i * panel_rows
            rows = min(panel_rows, n - start)
            # Only the last panel can be short, so one scratch pair suffices.
            _panel_product(start, rows, panel_rows, k, p, trans_b, &A[0, 0],
                           &B[0, 0], bias_ptr, activation, alpha, &C[0, 0],
                           &pad_a[0, 0], &pad_c[0, 0])


def gemm_tn_blocked(double alpha, const floating[:, ::1] A,
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
    cdef int block = (p + n_blocks - 1) // n_blocks
    cdef int i, i0, rows
    if n == 0:
        C[:, :] = 0
        return
    with nogil:
        for i in prange(n_blocks, schedule='static', num_threads=n_threads):
            i0 = i * block
            rows = min(block, p - i0)
            gemm(True, False, rows, q, n, <floating> alpha, &A[0, i0], p, &B[0, 0], q,
                 <floating> 0.0, &C[i0, 0], q)


cdef void _column_sum_block(const floating* a, const double* w, int n, int p,
                            int j0, int width, double alpha,
                            floating* out) noexcept nogil:
    cdef double acc[SUM_BLOCK]
    cdef int r, j
    cdef double wr = 1.0
    cdef const floating* row
    for j in range(width):
        acc[j] = 0.0
    for r in range(n):
        if w != NULL:
            wr = w[r]
        row = a + <Py_ssize_t> r * p + j0
        for j in range(width):
            acc[j] += wr * row[j]
    for j in range(width):
        out[j0 + j] = <floating> (alpha * acc[j])


def weighted_column_sum(const floating[:, ::1] A, const double[::1] weights,
                        double alpha, floating[::1] out, int n_threads):
    """out[j] = alpha * sum_r weights[r] * A[r, j], accumulated in float64.

    Parameters
    ----------
    A : (n, p) array
    weights : (n,) float64 array, or None for all ones
    alpha : float
    out : (p,) output array
    n_threads : int
    """
    cdef int n = A.shape[0]
    cdef int p = A.shape[1]
    cdef int n_blocks = (p + SUM_BLOCK - 1) // SUM_BLOCK
    cdef int b, j0
    cdef const double* w = NULL
    if weights is not None:
        w = &weights[0]
    if n == 0:
        out[:] = 0
        return
    with nogil:
        for b in prange(n_blocks, schedule='static', num_threads=n_threads):
            j0 = b * SUM_BLOCK
            _column_sum_block(&A[0, 0], w, n, p, j0, min(<int> SUM_BLOCK, p - j0),
                              alpha, &out[0])
