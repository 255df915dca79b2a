/* Row-invariant matrix product C = A @ B for the dense layers.
 *
 * Every element C[i, j] is computed by the same sequence of operations,
 *     acc = 0;  for k in 0..K-1 (in order):  acc += A[i, k] * B[k, j]
 * whatever the row's position, the number of rows or the thread count. That is
 * what BLAS does not promise: OpenBLAS's sgemm on some CPUs rounds a row
 * differently depending on its position inside a register tile, so a sample's
 * output would depend on which samples share its batch.
 *
 * Layout: B is packed once into panels of NR columns (zero padded), panel by
 * panel, k-major inside a panel. Rows of A are taken MR at a time; a short last
 * block repeats its last row (the extra results are discarded), so every row
 * goes through the one register-tile code path. The K dimension is walked in
 * blocks of KC so a panel's slice of B stays in L1; partial sums are stored in
 * C between blocks, which is exact and so does not change the result.
 *
 * Compiled three times on x86-64 Linux with GCC (AVX-512, AVX2+FMA, baseline)
 * and picked at load time. The FMA versions round each step once, the baseline
 * twice: a machine always uses the same version, so results are identical
 * within a machine, not across CPU generations.
 */
#ifndef SKDL_ROWGEMM_H
#define SKDL_ROWGEMM_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKDL_GEMM_MULTIVERSION \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SKDL_GEMM_MULTIVERSION
#endif

#define SKDL_GEMM_MR 6
#define SKDL_GEMM_KC 256

/* 64-byte vectors: one AVX-512 register, two AVX2 registers, four SSE ones. */
typedef float skdl_vf __attribute__((vector_size(64)));
typedef double skdl_vd __attribute__((vector_size(64)));
typedef float skdl_vf_u __attribute__((vector_size(64), aligned(4)));
typedef double skdl_vd_u __attribute__((vector_size(64), aligned(8)));

#define SKDL_NR_FLOAT 16
#define SKDL_NR_DOUBLE 8

/* Packed size (elements) of a K x N matrix: N rounded up to whole panels. */
static inline size_t skdl_packed_size(int k, int n, int nr)
{
    return (size_t) k * (size_t) ((n + nr - 1) / nr) * (size_t) nr;
}

/* Pack B, element (kk, j) at b[kk * s_k + j * s_n], into panels of NR
 * columns: packed[(panel * K + kk) * NR + jj] = B[kk, panel * NR + jj]. */
#define SKDL_PACK_BODY(NR)                                                    \
    int n_panels = (n + NR - 1) / NR;                                         \
    for (int pnl = 0; pnl < n_panels; pnl++) {                                \
        int j0 = pnl * NR;                                                    \
        int width = n - j0 < NR ? n - j0 : NR;                                \
        for (int kk = 0; kk < k; kk++) {                                      \
            size_t dst = ((size_t) pnl * k + kk) * NR;                        \
            int jj = 0;                                                       \
            for (; jj < width; jj++)                                          \
                packed[dst + jj] = b[(ptrdiff_t) kk * s_k + (ptrdiff_t) (j0 + jj) * s_n]; \
            for (; jj < NR; jj++)                                             \
                packed[dst + jj] = 0;                                         \
        }                                                                     \
    }

static void skdl_pack_b_float(int k, int n, const float *b, ptrdiff_t s_k,
                              ptrdiff_t s_n, float *packed)
{
    SKDL_PACK_BODY(SKDL_NR_FLOAT)
}

static void skdl_pack_b_double(int k, int n, const double *b, ptrdiff_t s_k,
                               ptrdiff_t s_n, double *packed)
{
    SKDL_PACK_BODY(SKDL_NR_DOUBLE)
}

/* C[0:m, 0:n] (row stride ldc) = A[0:m, 0:k] (row stride lda) @ B, B packed.
 * The register tile is MR rows x one vector of NR columns. */
#define SKDL_GEMM_BODY(T, VEC, VEC_U, NR)                                     \
    int n_panels = (n + NR - 1) / NR;                                         \
    if (m <= 0 || n <= 0)                                                     \
        return;                                                               \
    if (k == 0) {                                                             \
        for (int i = 0; i < m; i++)                                           \
            memset(c + (ptrdiff_t) i * ldc, 0, (size_t) n * sizeof(T));       \
        return;                                                               \
    }                                                                         \
    for (int k0 = 0; k0 < k; k0 += SKDL_GEMM_KC) {                            \
        int kc = k - k0 < SKDL_GEMM_KC ? k - k0 : SKDL_GEMM_KC;               \
        int first = k0 == 0;                                                  \
        for (int pnl = 0; pnl < n_panels; pnl++) {                            \
            int j0 = pnl * NR;                                                \
            int width = n - j0 < NR ? n - j0 : NR;                            \
            const T *bp = packed + ((size_t) pnl * k + k0) * NR;              \
            for (int i0 = 0; i0 < m; i0 += SKDL_GEMM_MR) {                    \
                int rows = m - i0 < SKDL_GEMM_MR ? m - i0 : SKDL_GEMM_MR;     \
                const T *a0 = a + (ptrdiff_t) i0 * lda + k0;                  \
                const T *a1 = a0 + (ptrdiff_t) (rows > 1 ? 1 : 0) * lda;      \
                const T *a2 = a0 + (ptrdiff_t) (rows > 2 ? 2 : rows - 1) * lda; \
                const T *a3 = a0 + (ptrdiff_t) (rows > 3 ? 3 : rows - 1) * lda; \
                const T *a4 = a0 + (ptrdiff_t) (rows > 4 ? 4 : rows - 1) * lda; \
                const T *a5 = a0 + (ptrdiff_t) (rows > 5 ? 5 : rows - 1) * lda; \
                VEC acc[SKDL_GEMM_MR];                                        \
                if (first) {                                                  \
                    for (int r = 0; r < SKDL_GEMM_MR; r++)                    \
                        acc[r] = (VEC) {0};                                   \
                } else {                                                      \
                    for (int r = 0; r < SKDL_GEMM_MR; r++) {                  \
                        T tmp[NR] = {0};                                      \
                        if (r < rows)                                         \
                            memcpy(tmp, c + (ptrdiff_t) (i0 + r) * ldc + j0,  \
                                   (size_t) width * sizeof(T));               \
                        memcpy(&acc[r], tmp, sizeof(tmp));                    \
                    }                                                         \
                }                                                             \
                VEC acc0 = acc[0], acc1 = acc[1], acc2 = acc[2];              \
                VEC acc3 = acc[3], acc4 = acc[4], acc5 = acc[5];              \
                for (int kk = 0; kk < kc; kk++) {                             \
                    VEC bv = *(const VEC_U *) (bp + (size_t) kk * NR);          \
                    acc0 += a0[kk] * bv;                                      \
                    acc1 += a1[kk] * bv;                                      \
                    acc2 += a2[kk] * bv;                                      \
                    acc3 += a3[kk] * bv;                                      \
                    acc4 += a4[kk] * bv;                                      \
                    acc5 += a5[kk] * bv;                                      \
                }                                                             \
                acc[0] = acc0; acc[1] = acc1; acc[2] = acc2;                  \
                acc[3] = acc3; acc[4] = acc4; acc[5] = acc5;                  \
                for (int r = 0; r < rows; r++) {                              \
                    T *crow = c + (ptrdiff_t) (i0 + r) * ldc + j0;            \
                    if (width == NR)                                          \
                        *(VEC_U *) crow = acc[r];                             \
                    else                                                      \
                        memcpy(crow, &acc[r], (size_t) width * sizeof(T));    \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }

SKDL_GEMM_MULTIVERSION static void
skdl_rowgemm_float(int m, int n, int k, const float *a, int lda,
                   const float *packed, float *c, int ldc)
{
    SKDL_GEMM_BODY(float, skdl_vf, skdl_vf_u, SKDL_NR_FLOAT)
}

SKDL_GEMM_MULTIVERSION static void
skdl_rowgemm_double(int m, int n, int k, const double *a, int lda,
                    const double *packed, double *c, int ldc)
{
    SKDL_GEMM_BODY(double, skdl_vd, skdl_vd_u, SKDL_NR_DOUBLE)
}

#endif
