# nogil BLAS wrapper over scipy.linalg.cython_blas, row-major (C order), for
# float32 and float64 through Cython's fused ``floating`` type.
from cython cimport floating

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil
