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
 * Compiled three times on x86-64 with GCC: AVX-512 (tile of 6 rows: 12
 * accumulator registers), AVX2+FMA (3 rows, 12 registers) and the baseline
 * (1 row), picked at the first call by the CPU's features. The tile height
 * does not change any element's operations. The FMA versions round each step
 * once, the baseline twice: a machine always uses the same version, so
 * results are identical within a machine, not across CPU generations.
 */
#ifndef SKDL_ROWGEMM_H
#define SKDL_ROWGEMM_H

#include <stddef.h>
#include <string.h>

#include "_generic.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define SKDL_GEMM_DISPATCH 1
#endif

#define SKDL_GEMM_KC 512

/* A panel is 128 bytes wide: 32 floats or 16 doubles, held as two AVX-512
 * registers, four AVX2 ones or eight SSE ones. Each version uses vectors of its
 * own register width: GCC lowers a vector wider than the target's registers
 * through memory, which made the AVX2 version 38x slower. */
typedef float skdl_vf64 __attribute__((vector_size(64)));
typedef double skdl_vd64 __attribute__((vector_size(64)));
typedef float skdl_vf64_u __attribute__((vector_size(64), aligned(4)));
typedef double skdl_vd64_u __attribute__((vector_size(64), aligned(8)));
typedef float skdl_vf32 __attribute__((vector_size(32)));
typedef double skdl_vd32 __attribute__((vector_size(32)));
typedef float skdl_vf32_u __attribute__((vector_size(32), aligned(4)));
typedef double skdl_vd32_u __attribute__((vector_size(32), aligned(8)));
typedef float skdl_vf16 __attribute__((vector_size(16)));
typedef double skdl_vd16 __attribute__((vector_size(16)));
typedef float skdl_vf16_u __attribute__((vector_size(16), aligned(4)));
typedef double skdl_vd16_u __attribute__((vector_size(16), aligned(8)));

#define SKDL_NR_FLOAT 32
#define SKDL_NR_DOUBLE 16

/* Packed size (elements) of a K x N matrix of elements of `itemsize` bytes:
 * N rounded up to whole panels. */
static inline size_t skdl_packed_size(int k, int n, size_t itemsize)
{
    size_t nr = itemsize == sizeof(float) ? SKDL_NR_FLOAT : SKDL_NR_DOUBLE;
    return (size_t) k * (((size_t) n + nr - 1) / nr) * nr;
}

/* Pack scale * B, element (kk, j) at b[kk * s_k + j * s_n], into panels of
 * NR columns, as rows k0 .. k0 + k - 1 of a packed matrix of k_total rows:
 * packed[(panel * k_total + k0 + kk) * NR + jj] = scale * B[kk, panel * NR + jj].
 * (k_total = k, k0 = 0 packs a whole matrix; several calls can stack blocks
 * of rows, e.g. one per sample.) */
#define SKDL_PACK_BODY(T, NR)                                                    \
    int n_panels = (n + NR - 1) / NR;                                         \
    for (int pnl = 0; pnl < n_panels; pnl++) {                                \
        int j0 = pnl * NR;                                                    \
        int width = n - j0 < NR ? n - j0 : NR;                                \
        for (int kk = 0; kk < k; kk++) {                                      \
            size_t dst = ((size_t) pnl * k_total + k0 + kk) * NR;             \
            const T *src = b + (ptrdiff_t) kk * s_k + (ptrdiff_t) j0 * s_n;   \
            int jj = 0;                                                       \
            if (s_n == 1) /* contiguous rows: a loop GCC vectorizes */        \
                for (; jj < width; jj++)                                      \
                    packed[dst + jj] = scale * src[jj];                       \
            else                                                              \
                for (; jj < width; jj++)                                      \
                    packed[dst + jj] = scale * src[(ptrdiff_t) jj * s_n];     \
            for (; jj < NR; jj++)                                             \
                packed[dst + jj] = 0;                                         \
        }                                                                     \
    }

static void skdl_pack_b_float(int k, int n, const float *b, ptrdiff_t s_k,
                              ptrdiff_t s_n, float scale, float *packed,
                              int k_total, int k0)
{
    SKDL_PACK_BODY(float, SKDL_NR_FLOAT)
}

static void skdl_pack_b_double(int k, int n, const double *b, ptrdiff_t s_k,
                               ptrdiff_t s_n, double scale, double *packed,
                               int k_total, int k0)
{
    SKDL_PACK_BODY(double, SKDL_NR_DOUBLE)
}

/* C[0:m, 0:n] (row stride ldc) = A[0:m, 0:k] (row stride lda) @ B, B packed,
 * or C += A @ B when accumulate is set. The register tile is MR rows x one
 * panel (NR columns) held as VPP vectors of VW elements each. */
#define SKDL_GEMM_BODY(T, VEC, VEC_U, NR, MR)                                 \
    enum { VW = sizeof(VEC) / sizeof(T), VPP = NR / VW };                     \
    int n_panels = (n + NR - 1) / NR;                                         \
    if (m <= 0 || n <= 0)                                                     \
        return;                                                               \
    if (k == 0) {                                                             \
        for (int i = 0; i < m && !accumulate; i++)                            \
            memset(c + (ptrdiff_t) i * ldc, 0, (size_t) n * sizeof(T));       \
        return;                                                               \
    }                                                                         \
    for (int k0 = 0; k0 < k; k0 += SKDL_GEMM_KC) {                            \
        int kc = k - k0 < SKDL_GEMM_KC ? k - k0 : SKDL_GEMM_KC;               \
        int first = k0 == 0 && !accumulate;                                   \
        for (int pnl = 0; pnl < n_panels; pnl++) {                            \
            int j0 = pnl * NR;                                                \
            int width = n - j0 < NR ? n - j0 : NR;                            \
            const T *bp = packed + ((size_t) pnl * k + k0) * NR;              \
            for (int i0 = 0; i0 < m; i0 += MR) {                              \
                int rows = m - i0 < MR ? m - i0 : MR;                         \
                const T *ar[MR];                                              \
                VEC acc[MR][VPP];                                             \
                _Pragma("GCC unroll 8")                                       \
                for (int r = 0; r < MR; r++) {                                \
                    ar[r] = a + (ptrdiff_t) (i0 + (r < rows ? r : rows - 1)) * lda + k0; \
                    if (first || r >= rows) {                                 \
                        _Pragma("GCC unroll 8")                               \
                        for (int v = 0; v < VPP; v++)                         \
                            acc[r][v] = (VEC) {0};                            \
                    } else {                                                  \
                        T tmp[NR] = {0};                                      \
                        memcpy(tmp, c + (ptrdiff_t) (i0 + r) * ldc + j0,      \
                               (size_t) width * sizeof(T));                   \
                        _Pragma("GCC unroll 8")                               \
                        for (int v = 0; v < VPP; v++)                         \
                            memcpy(&acc[r][v], tmp + v * VW, sizeof(VEC));    \
                    }                                                         \
                }                                                             \
                for (int kk = 0; kk < kc; kk++) {                             \
                    VEC bv[VPP];                                              \
                    _Pragma("GCC unroll 8")                                   \
                    for (int v = 0; v < VPP; v++)                             \
                        bv[v] = *(const VEC_U *) (bp + (size_t) kk * NR + v * VW); \
                    _Pragma("GCC unroll 8")                                   \
                    for (int r = 0; r < MR; r++) {                            \
                        T av = ar[r][kk];                                     \
                        _Pragma("GCC unroll 8")                               \
                        for (int v = 0; v < VPP; v++)                         \
                            acc[r][v] += av * bv[v];                          \
                    }                                                         \
                }                                                             \
                _Pragma("GCC unroll 8")                                       \
                for (int r = 0; r < MR; r++) {                                \
                    if (r >= rows)                                            \
                        break;                                                \
                    T *crow = c + (ptrdiff_t) (i0 + r) * ldc + j0;            \
                    if (width == NR) {                                        \
                        _Pragma("GCC unroll 8")                               \
                        for (int v = 0; v < VPP; v++)                         \
                            *(VEC_U *) (crow + v * VW) = acc[r][v];           \
                    } else {                                                  \
                        T tmp[NR];                                            \
                        _Pragma("GCC unroll 8")                               \
                        for (int v = 0; v < VPP; v++)                         \
                            memcpy(tmp + v * VW, &acc[r][v], sizeof(VEC));    \
                        memcpy(crow, tmp, (size_t) width * sizeof(T));        \
                    }                                                         \
                }                                                             \
            }                                                                 \
        }                                                                     \
    }

#define SKDL_GEMM_ARGS(T)                                                     \
    (int m, int n, int k, const T *a, int lda, const T *packed, T *c, int ldc, \
     int accumulate)

/* The version choice: [0] what the CPU supports, [1] a lower version asked
 * for by the tests (-1: none). This header is compiled into each kernel
 * module that multiplies matrices (inlined there: a call through another
 * module cost 4-8% on the recurrent and convolution kernels), but the choice
 * is one pair for the process, held by skdl._kernels._openmp: each such
 * module points skdl_gemm_choice at it when imported (_gemm_level.pxi), so
 * gemm_level() and show_config() report the version every module uses. */
static int skdl_gemm_local_choice[2] = {-1, -1};
static int *skdl_gemm_choice = skdl_gemm_local_choice;

static void skdl_gemm_share(int *choice)
{
    skdl_gemm_choice = choice;
}

#ifdef SKDL_GEMM_DISPATCH
__attribute__((target("arch=x86-64-v4"))) static void
skdl_rowgemm_float_v4 SKDL_GEMM_ARGS(float)
{
    SKDL_GEMM_BODY(float, skdl_vf64, skdl_vf64_u, SKDL_NR_FLOAT, 6)
}

__attribute__((target("arch=x86-64-v4"))) static void
skdl_rowgemm_double_v4 SKDL_GEMM_ARGS(double)
{
    SKDL_GEMM_BODY(double, skdl_vd64, skdl_vd64_u, SKDL_NR_DOUBLE, 6)
}

__attribute__((target("arch=x86-64-v3"))) static void
skdl_rowgemm_float_v3 SKDL_GEMM_ARGS(float)
{
    SKDL_GEMM_BODY(float, skdl_vf32, skdl_vf32_u, SKDL_NR_FLOAT, 3)
}

__attribute__((target("arch=x86-64-v3"))) static void
skdl_rowgemm_double_v3 SKDL_GEMM_ARGS(double)
{
    SKDL_GEMM_BODY(double, skdl_vd32, skdl_vd32_u, SKDL_NR_DOUBLE, 3)
}

/* 2: AVX-512 (F, DQ, BW, VL), 1: AVX2 and FMA, 0: baseline. A race between
 * threads on the first call only writes the same value twice. */
static int skdl_gemm_level(void)
{
    int level = skdl_gemm_choice[0];
    if (level < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
            level = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            level = 1;
        else
            level = 0;
        skdl_gemm_choice[0] = level;
    }
    return skdl_gemm_choice[1] >= 0 && skdl_gemm_choice[1] < level ? skdl_gemm_choice[1] : level;
}
#endif

/* The version in use: 2 AVX-512, 1 AVX2+FMA, 0 baseline. */
static int skdl_gemm_current(void)
{
#ifdef SKDL_GEMM_DISPATCH
    return skdl_gemm_level();
#else
    return 0;
#endif
}

/* Use at most `level` from now on (-1: the best the CPU has); returns the
 * level in use. For testing each version on one machine. */
static int skdl_gemm_limit(int level)
{
#ifdef SKDL_GEMM_DISPATCH
    skdl_gemm_choice[1] = level;
    return skdl_gemm_level();
#else
    (void) level;
    return 0;
#endif
}

static void
skdl_rowgemm_float_base SKDL_GEMM_ARGS(float)
{
    SKDL_GEMM_BODY(float, skdl_vf16, skdl_vf16_u, SKDL_NR_FLOAT, 1)
}

static void
skdl_rowgemm_double_base SKDL_GEMM_ARGS(double)
{
    SKDL_GEMM_BODY(double, skdl_vd16, skdl_vd16_u, SKDL_NR_DOUBLE, 1)
}

static void
skdl_rowgemm_float SKDL_GEMM_ARGS(float)
{
#ifdef SKDL_GEMM_DISPATCH
    switch (skdl_gemm_level()) {
    case 2: skdl_rowgemm_float_v4(m, n, k, a, lda, packed, c, ldc, accumulate); return;
    case 1: skdl_rowgemm_float_v3(m, n, k, a, lda, packed, c, ldc, accumulate); return;
    }
#endif
    skdl_rowgemm_float_base(m, n, k, a, lda, packed, c, ldc, accumulate);
}

static void
skdl_rowgemm_double SKDL_GEMM_ARGS(double)
{
#ifdef SKDL_GEMM_DISPATCH
    switch (skdl_gemm_level()) {
    case 2: skdl_rowgemm_double_v4(m, n, k, a, lda, packed, c, ldc, accumulate); return;
    case 1: skdl_rowgemm_double_v3(m, n, k, a, lda, packed, c, ldc, accumulate); return;
    }
#endif
    skdl_rowgemm_double_base(m, n, k, a, lda, packed, c, ldc, accumulate);
}

/* One name for both dtypes (see _generic.h). */
#define skdl_pack_b(k, n, b, s_k, s_n, scale, packed, k_total, k0) \
    SKDL_BY_TYPE(skdl_pack_b, packed)(k, n, b, s_k, s_n, scale, packed, k_total, k0)
#define skdl_pack_b_whole(k, n, b, s_k, s_n, scale, packed) \
    skdl_pack_b(k, n, b, s_k, s_n, scale, packed, k, 0)
#define skdl_rowgemm(m, n, k, a, lda, packed, c, ldc, accumulate) \
    SKDL_BY_TYPE(skdl_rowgemm, c)(m, n, k, a, lda, packed, c, ldc, accumulate)

#endif
