/* im2col and its adjoint for one sample, over windows of 1, 2 or 3 spatial
 * axes (skdl_window, _window.h: three axes, the leading ones of size 1 for
 * lower ranks), through a zero-padded copy of each input channel, so the
 * inner loops have no bounds tests.
 *
 * cols row (c, k0, k1, k2) starts at cols + (((c*K0 + k0)*K1 + k1)*K2 + k2) * ld
 * and holds, for every output position (o0, o1, o2) in C order,
 * x[c, o0*S0 - P0 + k0*D0, o1*S1 - P1 + k1*D1, o2*S2 - P2 + k2*D2] (0 in the
 * padding). ld > O0*O1*O2 leaves room for other samples' columns.
 *
 * The padded copy has extent[] positions with the input at pad[] (see
 * skdl_window_finish); without padding the input is read in place. The
 * innermost loops run along the last axis, contiguous in both the input and
 * cols, with a unit-stride version (vectorized) and a strided one.
 *
 * Each helper is compiled for the window's fixed leading axes as constants
 * (skdl_window_lead, SKDL_BY_LEAD in _window.h): a signal's or an image's
 * loops are those of the 2-D helpers before windows had a rank (the extra
 * loops of one trip cost a channels-last unfolding a third of its time).
 *
 * GCC would turn the short copy loops into calls to memcpy (rows of a small
 * image are a few values: the call costs more than the copy), hence the
 * optimize attribute. The build aligns loops to 32 bytes (setup.py,
 * PLACEMENT_FLAGS): the channels-last copy's strided loop, split across a
 * 32-byte boundary, ran a Conv1D step 7-10% slower, by where the rest of the
 * module happened to place it.
 *
 * Each helper is one macro over its element type T, instantiated for float
 * and double (name_float, name_double); the dispatcher of the same name picks
 * the version from a pointer's type (_generic.h). */
#ifndef SKDL_IM2COL_H
#define SKDL_IM2COL_H

#include <stddef.h>
#include <string.h>

#include "_generic.h"
#include "_window.h"

#if defined(__GNUC__) && !defined(__clang__)
#define SKDL_NO_MEMCPY_IDIOM \
    __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define SKDL_NO_MEMCPY_IDIOM
#endif

/* Offset of input position (r0, r1, r2) in the padded copy (r: input
 * coordinates, before the padding is added). */
#define SKDL_PADDED_AT(r0, r1, r2)                                            \
    (((ptrdiff_t) ((r0) + P0) * E1 + (r1) + P1) * E2 + P2 + (r2))

/* plane: channel c of x, or its zero-padded copy in `padded`; e1, e2 the row
 * lengths of whichever it is. */
#define SKDL_PAD_PLANE(T)                                                     \
    const T *plane = x + (ptrdiff_t) c * in_vol;                              \
    int e1 = I1, e2 = I2;                                                     \
    if (!direct) {                                                            \
        memset(padded, 0, (size_t) pad_vol * sizeof(T));                      \
        for (int r0 = 0; r0 < I0; r0++)                                       \
            for (int r1 = 0; r1 < I1; r1++) {                                 \
                T *dst = padded + SKDL_PADDED_AT(r0, r1, 0);                  \
                const T *src = plane + ((ptrdiff_t) r0 * I1 + r1) * I2;       \
                for (int q = 0; q < I2; q++)                                  \
                    dst[q] = src[q];                                          \
            }                                                                 \
        plane = padded;                                                       \
        e1 = E1;                                                              \
        e2 = E2;                                                              \
    }

/* Loops over channels, taps and the outer output positions, with `row` the
 * tap's cols row and `at` the offset of the window's first input of the
 * output row (o0, o1, 0) in a plane of row lengths e1, e2. */
#define SKDL_TAP_ROWS(ROWS_T, BODY)                                           \
    for (int k0 = 0; k0 < K0; k0++)                                           \
        for (int k1 = 0; k1 < K1; k1++)                                       \
            for (int k2 = 0; k2 < K2; k2++) {                                 \
                ROWS_T *row = cols                                            \
                    + (((ptrdiff_t) (c * K0 + k0) * K1 + k1) * K2 + k2) * ld; \
                for (int o0 = 0; o0 < O0; o0++)                               \
                    for (int o1 = 0; o1 < O1; o1++) {                         \
                        ptrdiff_t at = ((ptrdiff_t) (o0 * S0 + k0 * D0) * e1  \
                                        + o1 * S1 + k1 * D1) * e2 + k2 * D2;  \
                        ptrdiff_t o = ((ptrdiff_t) o0 * O1 + o1) * O2;        \
                        BODY                                                  \
                    }                                                         \
            }

#define SKDL_IM2COL(T)                                                        \
SKDL_NO_MEMCPY_IDIOM static SKDL_ALWAYS_INLINE void skdl_im2col_at_##T(       \
    const skdl_window *w, const T *x, int C, T *cols, ptrdiff_t ld, T *padded, \
    const int lead)                                                           \
{                                                                             \
    SKDL_WINDOW_LOCALS                                                        \
    int direct = skdl_window_unpadded(w);                                     \
    for (int c = 0; c < C; c++) {                                             \
        SKDL_PAD_PLANE(T)                                                     \
        SKDL_TAP_ROWS(T, {                                                    \
            const T *src = plane + at;                                        \
            T *out = row + o;                                                 \
            if (S2 == 1)                                                      \
                for (int ow = 0; ow < O2; ow++)                               \
                    out[ow] = src[ow];                                        \
            else                                                              \
                for (int ow = 0; ow < O2; ow++)                               \
                    out[ow] = src[(ptrdiff_t) ow * S2];                       \
        })                                                                    \
    }                                                                         \
}                                                                             \
                                                                              \
SKDL_NO_MEMCPY_IDIOM static void skdl_im2col_##T(                             \
    const skdl_window *w, const T *x, int C, T *cols, ptrdiff_t ld, T *padded) \
{                                                                             \
    SKDL_BY_LEAD(w, skdl_im2col_at_##T, w, x, C, cols, ld, padded)            \
}

/* x = 0, then x[c, input of (k, o)] += cols[(c, k), o] in the order of the
 * loops (fixed, so the sums are reproducible). */
#define SKDL_COL2IM(T)                                                        \
SKDL_NO_MEMCPY_IDIOM static SKDL_ALWAYS_INLINE void skdl_col2im_at_##T(       \
    const skdl_window *w, const T *cols, ptrdiff_t ld, int C, T *x, T *padded, \
    const int lead)                                                           \
{                                                                             \
    SKDL_WINDOW_LOCALS                                                        \
    int direct = skdl_window_unpadded(w);                                     \
    for (int c = 0; c < C; c++) {                                             \
        T *plane = x + (ptrdiff_t) c * in_vol;                                \
        T *acc = direct ? plane : padded;                                     \
        int e1 = direct ? I1 : E1, e2 = direct ? I2 : E2;                     \
        memset(acc, 0, (size_t) (direct ? in_vol : pad_vol) * sizeof(T));     \
        SKDL_TAP_ROWS(const T, {                                              \
            T *dst = acc + at;                                                \
            const T *src = row + o;                                           \
            if (S2 == 1)                                                      \
                for (int ow = 0; ow < O2; ow++)                               \
                    dst[ow] += src[ow];                                       \
            else                                                              \
                for (int ow = 0; ow < O2; ow++)                               \
                    dst[(ptrdiff_t) ow * S2] += src[ow];                      \
        })                                                                    \
        if (!direct)                                                          \
            for (int r0 = 0; r0 < I0; r0++)                                   \
                for (int r1 = 0; r1 < I1; r1++) {                             \
                    T *dst = plane + ((ptrdiff_t) r0 * I1 + r1) * I2;         \
                    const T *src = padded + SKDL_PADDED_AT(r0, r1, 0);        \
                    for (int q = 0; q < I2; q++)                              \
                        dst[q] = src[q];                                      \
                }                                                             \
    }                                                                         \
}                                                                             \
                                                                              \
SKDL_NO_MEMCPY_IDIOM static void skdl_col2im_##T(                             \
    const skdl_window *w, const T *cols, ptrdiff_t ld, int C, T *x, T *padded) \
{                                                                             \
    SKDL_BY_LEAD(w, skdl_col2im_at_##T, w, cols, ld, C, x, padded)            \
}

/* Channels-last unfolding ("patch rows"), for inputs with several channels:
 * a sample is first moved into a zero-padded (E0, E1, E2, C) copy, so each
 * last-axis run of a window is one contiguous run of K2 * C values (C with
 * dilation).
 *
 * Row (o0 * O1 + o1) * O2 + o2 of cols (row stride ld) holds the window of
 * that output in (k0, k1, k2, c) order. */
#define SKDL_PATCH_LOOPS(T, STATEMENT)                                        \
    int run = D2 == 1 ? K2 * C : C;                                           \
    int runs = D2 == 1 ? 1 : K2;                                              \
    for (int o0 = 0; o0 < O0; o0++)                                           \
        for (int o1 = 0; o1 < O1; o1++)                                       \
            for (int o2 = 0; o2 < O2; o2++) {                                 \
                T *row = cols + (((ptrdiff_t) o0 * O1 + o1) * O2 + o2) * ld;  \
                for (int k0 = 0; k0 < K0; k0++)                               \
                    for (int k1 = 0; k1 < K1; k1++) {                         \
                        T *win = xp + (((ptrdiff_t) (o0 * S0 + k0 * D0) * E1  \
                                        + o1 * S1 + k1 * D1) * E2             \
                                       + (ptrdiff_t) o2 * S2) * C;            \
                        for (int r = 0; r < runs; r++, row += run) {          \
                            T *seg = win + (ptrdiff_t) r * D2 * C;            \
                            for (int e = 0; e < run; e++)                     \
                                STATEMENT;                                    \
                        }                                                     \
                    }                                                         \
            }

/* Every input position (r0, r1, r2) of the sample, with `in` its offset in
 * a channel of x and `cl` the offset of its channel 0 in the padded copy. */
#define SKDL_INPUT_POSITIONS(BODY)                                            \
    for (int r0 = 0; r0 < I0; r0++)                                           \
        for (int r1 = 0; r1 < I1; r1++)                                       \
            for (int r2 = 0; r2 < I2; r2++) {                                 \
                ptrdiff_t in = ((ptrdiff_t) r0 * I1 + r1) * I2 + r2;          \
                ptrdiff_t cl = SKDL_PADDED_AT(r0, r1, r2) * C;                \
                BODY                                                          \
            }

#define SKDL_PATCHES(T)                                                       \
SKDL_NO_MEMCPY_IDIOM static SKDL_ALWAYS_INLINE void skdl_patches_at_##T(      \
    const skdl_window *w, const T *x, int C, T *cols, ptrdiff_t ld, T *xp,    \
    const int lead)                                                           \
{                                                                             \
    SKDL_WINDOW_LOCALS                                                        \
    memset(xp, 0, (size_t) pad_vol * C * sizeof(T));                          \
    SKDL_INPUT_POSITIONS({                                                    \
        for (int c = 0; c < C; c++)                                           \
            xp[cl + c] = x[in + c * in_vol];                                  \
    })                                                                        \
    SKDL_PATCH_LOOPS(T, row[e] = seg[e])                                      \
}                                                                             \
                                                                              \
SKDL_NO_MEMCPY_IDIOM static void skdl_patches_##T(                            \
    const skdl_window *w, const T *x, int C, T *cols, ptrdiff_t ld, T *xp)    \
{                                                                             \
    SKDL_BY_LEAD(w, skdl_patches_at_##T, w, x, C, cols, ld, xp)               \
}

/* The adjoint of skdl_patches: xp = 0, xp += the windows in cols (in the
 * order of the loops, fixed), then the sample x (C, *input) = the interior
 * of xp. cols is only read (not const for the shared loops). */
#define SKDL_PATCHES_ADJOINT(T)                                               \
SKDL_NO_MEMCPY_IDIOM static SKDL_ALWAYS_INLINE void skdl_patches_adjoint_at_##T( \
    const skdl_window *w, T *cols, ptrdiff_t ld, int C, T *x, T *xp,          \
    const int lead)                                                           \
{                                                                             \
    SKDL_WINDOW_LOCALS                                                        \
    memset(xp, 0, (size_t) pad_vol * C * sizeof(T));                          \
    SKDL_PATCH_LOOPS(T, seg[e] += row[e])                                     \
    for (int c = 0; c < C; c++)                                               \
        SKDL_INPUT_POSITIONS({ x[in + c * in_vol] = xp[cl + c]; })            \
}                                                                             \
                                                                              \
SKDL_NO_MEMCPY_IDIOM static void skdl_patches_adjoint_##T(                    \
    const skdl_window *w, T *cols, ptrdiff_t ld, int C, T *x, T *xp)          \
{                                                                             \
    SKDL_BY_LEAD(w, skdl_patches_adjoint_at_##T, w, cols, ld, C, x, xp)       \
}

/* dst[0:m] = w * src[0:m] (restrict: the loop is vectorized). */
#define SKDL_SCALED_COPY(T)                                                   \
static inline void skdl_scaled_copy_##T(T *restrict dst, const T *restrict src, \
                                        T w, int m)                           \
{                                                                             \
    for (int e = 0; e < m; e++)                                               \
        dst[e] = w * src[e];                                                  \
}

SKDL_IM2COL(float)
SKDL_IM2COL(double)
SKDL_COL2IM(float)
SKDL_COL2IM(double)
SKDL_PATCHES(float)
SKDL_PATCHES(double)
SKDL_PATCHES_ADJOINT(float)
SKDL_PATCHES_ADJOINT(double)
SKDL_SCALED_COPY(float)
SKDL_SCALED_COPY(double)

#define skdl_im2col(w, x, C, cols, ld, padded) \
    SKDL_BY_TYPE(skdl_im2col, x)(w, x, C, cols, ld, padded)
#define skdl_col2im(w, cols, ld, C, x, padded) \
    SKDL_BY_TYPE(skdl_col2im, x)(w, cols, ld, C, x, padded)
#define skdl_patches(w, x, C, cols, ld, xp) \
    SKDL_BY_TYPE(skdl_patches, x)(w, x, C, cols, ld, xp)
#define skdl_patches_adjoint(w, cols, ld, C, x, xp) \
    SKDL_BY_TYPE(skdl_patches_adjoint, x)(w, cols, ld, C, x, xp)
#define skdl_scaled_copy(dst, src, w, m) \
    SKDL_BY_TYPE(skdl_scaled_copy, dst)(dst, src, w, m)

#endif
