# Fused-type access to skdl's row-invariant matrix product (_rowgemm.h).
from cython cimport floating


cdef extern from "_rowgemm.h" nogil:
    int SKDL_NR_FLOAT
    int SKDL_NR_DOUBLE
    size_t skdl_packed_size(int k, int n, int nr)
    int skdl_gemm_limit(int level)
    int skdl_gemm_current()
    void skdl_pack_b_float(int k, int n, const float* b, Py_ssize_t s_k,
                           Py_ssize_t s_n, float scale, float* packed,
                           int k_total, int k0)
    void skdl_pack_b_double(int k, int n, const double* b, Py_ssize_t s_k,
                            Py_ssize_t s_n, double scale, double* packed,
                            int k_total, int k0)
    void skdl_rowgemm_float(int m, int n, int k, const float* a, int lda,
                            const float* packed, float* c, int ldc, int accumulate)
    void skdl_rowgemm_double(int m, int n, int k, const double* a, int lda,
                             const double* packed, double* c, int ldc,
                             int accumulate)


cdef inline size_t packed_size(int k, int n, floating* kind) noexcept nogil:
    """Elements of a packed (k, n) matrix of ``kind``'s type (pass a NULL pointer)."""
    if floating is float:
        return skdl_packed_size(k, n, SKDL_NR_FLOAT)
    else:
        return skdl_packed_size(k, n, SKDL_NR_DOUBLE)


cdef inline void pack_b(int k, int n, const floating* b, Py_ssize_t s_k,
                        Py_ssize_t s_n, floating scale,
                        floating* packed) noexcept nogil:
    """packed = scale * B for B[kk, j] = b[kk * s_k + j * s_n], (k, n)."""
    pack_b_rows(k, n, b, s_k, s_n, scale, packed, k, 0)


cdef inline void pack_b_rows(int k, int n, const floating* b, Py_ssize_t s_k,
                             Py_ssize_t s_n, floating scale, floating* packed,
                             int k_total, int k0) noexcept nogil:
    """Pack scale * B (k, n) as rows k0 .. k0+k-1 of a packed (k_total, n)."""
    if floating is float:
        skdl_pack_b_float(k, n, b, s_k, s_n, scale, packed, k_total, k0)
    else:
        skdl_pack_b_double(k, n, b, s_k, s_n, scale, packed, k_total, k0)


cdef inline void rowgemm(int m, int n, int k, const floating* a, int lda,
                         const floating* packed, floating* c, int ldc,
                         bint accumulate) noexcept nogil:
    """C (m, n) = A (m, k) @ B, or C += A @ B; B packed by :func:`pack_b`."""
    if floating is float:
        skdl_rowgemm_float(m, n, k, a, lda, packed, c, ldc, accumulate)
    else:
        skdl_rowgemm_double(m, n, k, a, lda, packed, c, ldc, accumulate)
