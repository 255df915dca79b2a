# skdl's row-invariant matrix product (_rowgemm.h), declared once for both
# dtypes: the C names pick the float or double version from the type of the
# output pointer (_generic.h), so fused code calls them without a branch.
# Arrays passed together must share one dtype; the C compiler checks that.


cdef extern from "_rowgemm.h" nogil:
    # Elements of a packed (k, n) matrix of ``itemsize``-byte elements (pass
    # sizeof(floating)).
    size_t packed_size "skdl_packed_size"(int k, int n, size_t itemsize)
    int skdl_gemm_limit(int level)
    int skdl_gemm_current()
    void skdl_gemm_share(int* choice)
    # Pack scale * B (k, n), B[kk, j] = b[kk * s_k + j * s_n], as rows k0 ..
    # k0+k-1 of a packed (k_total, n).
    void pack_b_rows "skdl_pack_b"(int k, int n, const void* b, Py_ssize_t s_k,
                                   Py_ssize_t s_n, double scale, void* packed,
                                   int k_total, int k0)
    # packed = scale * B for B[kk, j] = b[kk * s_k + j * s_n], (k, n).
    void pack_b "skdl_pack_b_whole"(int k, int n, const void* b, Py_ssize_t s_k,
                                    Py_ssize_t s_n, double scale, void* packed)
    # C (m, n) = A (m, k) @ B, or C += A @ B; B packed by pack_b.
    void rowgemm "skdl_rowgemm"(int m, int n, int k, const void* a, int lda,
                                const void* packed, void* c, int ldc, int accumulate)

