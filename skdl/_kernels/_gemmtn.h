/* Weight-gradient product R = S.T @ V for S (n, ns), V (n, nv): a sum over
 * the n rows of a batch, with no transpose and no packing of the operands.
 *
 * A register tile holds MR rows of R (MR columns of S) by VPP vectors of its
 * columns (columns of V). For k = 0..n-1 in order, each of the MR values
 * S[k, i0 + r] (contiguous in row k of S) is broadcast and multiplied by the
 * vectors V[k, j0 : j0 + VPP * VW] (contiguous in row k of V), so every element
 * is the chain
 *     acc = 0;  for k in 0..n-1 (in order):  acc += S[k, i] * V[k, j]
 * exactly as _rowgemm.h computes C = A.T @ B from A.T and the packed B: the
 * results are the same bits, whatever the tile, the thread count or whether R
 * is C or C.T (a * b = b * a). The k dimension is walked in blocks of
 * SKDL_TN_KC rows so a panel's slice of V stays in L1; partial sums are stored
 * in R between blocks, which is exact.
 *
 * Edges: rows left over after the MR-row tiles go through tiles of 4, 2 and 1
 * rows (the 27 rows of a 3x3x3 convolution kernel: 8 + 8 + 8 + 2 + 1, no
 * padding work). A panel of V is copied, per k block, into a small contiguous
 * buffer, zero padded to whole vectors, when its width is not a whole number
 * of vectors (a 10-column output layer's gradient then uses one vector per row
 * instead of a whole panel) or when several tiles read it.
 *
 * R[r, c] is stored at out[r * rs + c * cs]: (q, 1) for C itself, (1, q) to
 * write C.T when S is B and V is A (the caller picks the wider operand for V).
 *
 * The three versions (AVX-512, AVX2+FMA, baseline) follow _rowgemm.h's
 * dispatch and compute what its versions compute: FMA in the first two, a
 * multiply then an add in the baseline.
 */
#ifndef SKDL_GEMMTN_H
#define SKDL_GEMMTN_H

#include <stddef.h>
#include <string.h>

#include "_rowgemm.h"

/* Rows of the batch per block: a panel's slice of V (64 x 128 bytes) stays in
 * L1 while the tiles of S stream past it (64 measured faster than 128, 256). */
#define SKDL_TN_KC 64

/* One register tile: rows i0 .. i0+MR-1 of R, columns j0 .. j0+width-1,
 * over kc rows of the batch: s points at S[k0, i0], v at V[k0, j0] (or at a
 * padded copy); first: start from zero, else from out. The columns of S are
 * addressed from one pointer (s[kk * lds + r]): an array of MR pointers, one
 * per column, was spilled to the stack. */
#define SKDL_TN_TILE_BODY(T, VEC, VEC_U, MR, VPP)                               \
    enum { VW = sizeof(VEC) / sizeof(T) };                                      \
    VEC acc[MR][VPP];                                                           \
    int full = cs == 1 && width == VPP * VW;                                    \
    _Pragma("GCC unroll 16")                                                    \
    for (int r = 0; r < MR; r++) {                                              \
        if (first) {                                                            \
            _Pragma("GCC unroll 4")                                             \
            for (int u = 0; u < VPP; u++)                                       \
                acc[r][u] = (VEC) {0};                                          \
        } else if (full) {                                                      \
            _Pragma("GCC unroll 4")                                             \
            for (int u = 0; u < VPP; u++)                                       \
                acc[r][u] = *(const VEC_U *) (out + (ptrdiff_t) r * rs + u * VW); \
        } else {                                                                \
            T tmp[VPP * VW] = {0};                                              \
            for (int j = 0; j < width; j++)                                     \
                tmp[j] = out[(ptrdiff_t) r * rs + (ptrdiff_t) j * cs];          \
            memcpy(acc[r], tmp, sizeof(tmp));                                   \
        }                                                                       \
    }                                                                           \
    for (int kk = 0; kk < kc; kk++) {                                           \
        VEC vv[VPP];                                                            \
        const T *vrow = v + (ptrdiff_t) kk * ldv;                               \
        const T *srow = s + (ptrdiff_t) kk * lds;                               \
        _Pragma("GCC unroll 4")                                                 \
        for (int u = 0; u < VPP; u++)                                           \
            vv[u] = *(const VEC_U *) (vrow + u * VW);                           \
        _Pragma("GCC unroll 16")                                                \
        for (int r = 0; r < MR; r++) {                                          \
            T sv = srow[r];                                                     \
            _Pragma("GCC unroll 4")                                             \
            for (int u = 0; u < VPP; u++)                                       \
                acc[r][u] += sv * vv[u];                                        \
        }                                                                       \
    }                                                                           \
    _Pragma("GCC unroll 16")                                                    \
    for (int r = 0; r < MR; r++) {                                              \
        if (full) {                                                             \
            _Pragma("GCC unroll 4")                                             \
            for (int u = 0; u < VPP; u++)                                       \
                *(VEC_U *) (out + (ptrdiff_t) r * rs + u * VW) = acc[r][u];     \
        } else {                                                                \
            T tmp[VPP * VW];                                                    \
            memcpy(tmp, acc[r], sizeof(tmp));                                   \
            for (int j = 0; j < width; j++)                                     \
                out[(ptrdiff_t) r * rs + (ptrdiff_t) j * cs] = tmp[j];          \
        }                                                                       \
    }

#define SKDL_TN_TILE_ARGS(T)                                                    \
    (int kc, const T *s, ptrdiff_t lds, const T *v, ptrdiff_t ldv,              \
     int width, T *out, ptrdiff_t rs, ptrdiff_t cs, int first)

#define SKDL_TN_TILE(NAME, ATTR, T, VEC, VEC_U, MR, VPP)                        \
    ATTR static inline void NAME SKDL_TN_TILE_ARGS(T)                           \
    {                                                                           \
        SKDL_TN_TILE_BODY(T, VEC, VEC_U, MR, VPP)                               \
    }

/* Rows r0..r1-1, columns c0..c1-1 of R = alpha * S.T @ V, all n rows of the
 * batch. Panels of two vectors (NR = 2 VW columns); a narrower panel uses one
 * vector and taller tiles. */
#define SKDL_TN_ARGS(T)                                                         \
    (int n, const T *s, ptrdiff_t lds, const T *v, ptrdiff_t ldv, T *out,       \
     ptrdiff_t rs, ptrdiff_t cs, double alpha, int r0, int r1, int c0, int c1)

/* Rows r0..r1-1 of R in tiles of MR rows, then of 4, 2 and 1, each tile a
 * call of PREFIX<rows>. */
#define SKDL_TN_ROWS(PREFIX, MR)                                                \
    {                                                                           \
        int i0 = r0;                                                            \
        for (; i0 + MR <= r1; i0 += MR)                                         \
            PREFIX##MR(kc, sk + i0, lds, vp, lv, width,                         \
                       o + (ptrdiff_t) i0 * rs, rs, cs, first);                 \
        for (; i0 + 4 <= r1; i0 += 4)                                           \
            PREFIX##4(kc, sk + i0, lds, vp, lv, width,                          \
                      o + (ptrdiff_t) i0 * rs, rs, cs, first);                  \
        if (i0 + 2 <= r1) {                                                     \
            PREFIX##2(kc, sk + i0, lds, vp, lv, width,                          \
                      o + (ptrdiff_t) i0 * rs, rs, cs, first);                  \
            i0 += 2;                                                            \
        }                                                                       \
        if (i0 < r1)                                                            \
            PREFIX##1(kc, sk + i0, lds, vp, lv, width,                          \
                      o + (ptrdiff_t) i0 * rs, rs, cs, first);                  \
    }

#define SKDL_TN_DRIVER_BODY(T, VEC, PREFIX1, MR1, PREFIX2, MR2)                 \
    enum { VW = sizeof(VEC) / sizeof(T), NR = 2 * VW };                         \
    T pad[SKDL_TN_KC * NR] __attribute__((aligned(64)));                        \
    if (r1 <= r0 || c1 <= c0)                                                   \
        return;                                                                 \
    for (int k0 = 0; k0 < n; k0 += SKDL_TN_KC) {                                \
        int kc = n - k0 < SKDL_TN_KC ? n - k0 : SKDL_TN_KC;                     \
        int first = k0 == 0;                                                    \
        const T *sk = s + (ptrdiff_t) k0 * lds;                                 \
        for (int j0 = c0; j0 < c1; j0 += NR) {                                  \
            int width = c1 - j0 < NR ? c1 - j0 : NR;                            \
            int vpp = (width + VW - 1) / VW;                                    \
            const T *vp = v + (ptrdiff_t) k0 * ldv + j0;                        \
            ptrdiff_t lv = ldv;                                                 \
            /* A ragged panel, or one that several tiles read (its rows are  \
             * q apart: 1 KB rows of a 256-column gradient share few L1      \
             * sets), is copied contiguous and zero padded. */                \
            if (width % VW || r1 - r0 > 16) {                                   \
                for (int kk = 0; kk < kc; kk++) {                               \
                    T *dst = pad + (ptrdiff_t) kk * vpp * VW;                   \
                    memcpy(dst, vp + (ptrdiff_t) kk * ldv, (size_t) width * sizeof(T)); \
                    memset(dst + width, 0, (size_t) (vpp * VW - width) * sizeof(T)); \
                }                                                               \
                vp = pad;                                                       \
                lv = vpp * VW;                                                  \
            }                                                                   \
            T *o = out + (ptrdiff_t) j0 * cs;                                   \
            if (vpp == 2)                                                       \
                SKDL_TN_ROWS(PREFIX2, MR2)                                      \
            else                                                                \
                SKDL_TN_ROWS(PREFIX1, MR1)                                      \
        }                                                                       \
    }                                                                           \
    if (n == 0)                                                                 \
        for (int i = r0; i < r1; i++)                                           \
            for (int j = c0; j < c1; j++)                                       \
                out[(ptrdiff_t) i * rs + (ptrdiff_t) j * cs] = 0;               \
    else if (alpha != 1.0) /* scaled once at the end, in double, as before */   \
        for (int i = r0; i < r1; i++)                                           \
            for (int j = c0; j < c1; j++) {                                     \
                T *e = out + (ptrdiff_t) i * rs + (ptrdiff_t) j * cs;           \
                *e = (T) (alpha * *e);                                          \
            }

/* The tiles of one version (named skdl_tn_<T>_<SUFFIX>_<VPP>x<MR>) and its
 * driver. */
#define SKDL_TN_TILES(SUFFIX, ATTR, T, VEC, VEC_U, VPP, MR)                     \
    SKDL_TN_TILE(skdl_tn_##T##_##SUFFIX##_##VPP##x##MR, ATTR, T, VEC, VEC_U, MR, VPP) \
    SKDL_TN_TILE(skdl_tn_##T##_##SUFFIX##_##VPP##x4, ATTR, T, VEC, VEC_U, 4, VPP) \
    SKDL_TN_TILE(skdl_tn_##T##_##SUFFIX##_##VPP##x2, ATTR, T, VEC, VEC_U, 2, VPP) \
    SKDL_TN_TILE(skdl_tn_##T##_##SUFFIX##_##VPP##x1, ATTR, T, VEC, VEC_U, 1, VPP)

#define SKDL_TN_LEVEL(SUFFIX, ATTR, T, VEC, VEC_U, MR1, MR2)                    \
    SKDL_TN_TILES(SUFFIX, ATTR, T, VEC, VEC_U, 1, MR1)                          \
    SKDL_TN_TILES(SUFFIX, ATTR, T, VEC, VEC_U, 2, MR2)                          \
    ATTR static void skdl_gemm_tn_##T##_##SUFFIX SKDL_TN_ARGS(T)                \
    {                                                                           \
        SKDL_TN_DRIVER_BODY(T, VEC, skdl_tn_##T##_##SUFFIX##_1x, MR1,           \
                            skdl_tn_##T##_##SUFFIX##_2x, MR2)                   \
    }

/* Tile heights: MR x VPP accumulators plus VPP operand vectors fit the
 * registers (32 with AVX-512, 16 with AVX2 and SSE). */
#ifdef SKDL_GEMM_DISPATCH
#define SKDL_TN_V4 __attribute__((target("arch=x86-64-v4")))
#define SKDL_TN_V3 __attribute__((target("arch=x86-64-v3")))
SKDL_TN_LEVEL(v4, SKDL_TN_V4, float, skdl_vf64, skdl_vf64_u, 16, 8)
SKDL_TN_LEVEL(v4, SKDL_TN_V4, double, skdl_vd64, skdl_vd64_u, 16, 8)
SKDL_TN_LEVEL(v3, SKDL_TN_V3, float, skdl_vf32, skdl_vf32_u, 8, 6)
SKDL_TN_LEVEL(v3, SKDL_TN_V3, double, skdl_vd32, skdl_vd32_u, 8, 6)
#endif
SKDL_TN_LEVEL(base, , float, skdl_vf16, skdl_vf16_u, 8, 6)
SKDL_TN_LEVEL(base, , double, skdl_vd16, skdl_vd16_u, 8, 6)

#define SKDL_TN_DISPATCH(T)                                                     \
    static void skdl_gemm_tn_##T SKDL_TN_ARGS(T)                                \
    {                                                                           \
        SKDL_TN_SWITCH(T)                                                       \
        skdl_gemm_tn_##T##_base(n, s, lds, v, ldv, out, rs, cs, alpha, r0, r1, c0, c1); \
    }
#ifdef SKDL_GEMM_DISPATCH
#define SKDL_TN_SWITCH(T)                                                       \
    switch (skdl_gemm_level()) {                                                \
    case 2: skdl_gemm_tn_##T##_v4(n, s, lds, v, ldv, out, rs, cs, alpha, r0, r1, c0, c1); return; \
    case 1: skdl_gemm_tn_##T##_v3(n, s, lds, v, ldv, out, rs, cs, alpha, r0, r1, c0, c1); return; \
    }
#else
#define SKDL_TN_SWITCH(T)
#endif
SKDL_TN_DISPATCH(float)
SKDL_TN_DISPATCH(double)

/* Columns per vector of the version in use (the caller's cost model). */
static int skdl_gemm_tn_vector_width(size_t itemsize)
{
    int bytes = 16;
#ifdef SKDL_GEMM_DISPATCH
    int level = skdl_gemm_level();
    bytes = level == 2 ? 64 : level == 1 ? 32 : 16;
#endif
    return bytes / (int) itemsize;
}

/* One name for both dtypes (see _generic.h). */
#define skdl_gemm_tn(n, s, lds, v, ldv, out, rs, cs, alpha, r0, r1, c0, c1)    \
    SKDL_BY_TYPE(skdl_gemm_tn, out)(n, s, lds, v, ldv, out, rs, cs, alpha, r0, r1, c0, c1)

#endif
