"""Row-major BLAS wrapper over ``scipy.linalg.cython_blas``.

BLAS is column-major; a row-major ``C = op(A) @ op(B)`` is the column-major
``C.T = op(B).T @ op(A).T``, so the operands swap places and keep their flags.
"""
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil:
    """C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C, row-major."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb,
              <float*> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb,
              <double*> a, &lda, &beta, c, &ldc)
