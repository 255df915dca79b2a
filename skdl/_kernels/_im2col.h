/* im2col and its adjoint for one sample, through a zero-padded copy of each
 * input plane, so the inner loops have no bounds tests.
 *
 * cols row (c, i, j) starts at cols + ((c * kh + i) * kw + j) * ld and holds,
 * for every output position (oh, ow), x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
 * (0 in the padding). ld > OH*OW leaves room for other samples' columns.
 *
 * The padded plane is PH x PW with the input at (ph, pw); PH and PW reach the
 * last row and column any window reads (see skdl_padded_extent). Without
 * padding the input plane is read in place.
 *
 * GCC would turn the short copy loops into calls to memcpy (rows of a small
 * image are a few values: the call costs more than the copy), hence the
 * optimize attribute. */
#ifndef SKDL_IM2COL_H
#define SKDL_IM2COL_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#define SKDL_NO_MEMCPY_IDIOM __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define SKDL_NO_MEMCPY_IDIOM
#endif

/* Rows (or columns) of the padded plane: the input with its leading padding,
 * extended to the last position a window reads. */
static inline int skdl_padded_extent(int size, int lead, int out, int stride,
                                     int k, int dilation)
{
    int reach = (out - 1) * stride + (k - 1) * dilation + 1;
    return reach > lead + size ? reach : lead + size;
}

#define SKDL_PAD_PLANE(T)                                                     \
    const T *plane = x + (ptrdiff_t) c * H * W;                               \
    int pw_ = PW;                                                             \
    if (direct) {                                                             \
        pw_ = W;                                                              \
    } else {                                                                  \
        memset(padded, 0, (size_t) PH * PW * sizeof(T));                      \
        for (int r = 0; r < H; r++)                                           \
            for (int q = 0; q < W; q++)                                       \
                padded[(ptrdiff_t) (r + ph) * PW + pw + q] = plane[(ptrdiff_t) r * W + q]; \
        plane = padded;                                                       \
    }

#define SKDL_IM2COL_BODY(T)                                                   \
    int direct = ph == 0 && pw == 0 && PH == H && PW == W;                    \
    for (int c = 0; c < C; c++) {                                             \
        SKDL_PAD_PLANE(T)                                                     \
        for (int i = 0; i < kh; i++)                                          \
            for (int j = 0; j < kw; j++) {                                    \
                T *row = cols + ((ptrdiff_t) (c * kh + i) * kw + j) * ld;     \
                for (int oh = 0; oh < OH; oh++) {                             \
                    const T *src = plane + (ptrdiff_t) (oh * sh + i * dh) * pw_ + j * dw; \
                    T *out = row + (ptrdiff_t) oh * OW;                       \
                    if (sw == 1)                                              \
                        for (int ow = 0; ow < OW; ow++)                       \
                            out[ow] = src[ow];                                \
                    else                                                      \
                        for (int ow = 0; ow < OW; ow++)                       \
                            out[ow] = src[(ptrdiff_t) ow * sw];               \
                }                                                             \
            }                                                                 \
    }

/* x = 0, then x[c, ih, iw] += cols[(c, i, j), (oh, ow)] in the order of the
 * loops below (fixed, so the sums are reproducible). */
#define SKDL_COL2IM_BODY(T)                                                   \
    int direct = ph == 0 && pw == 0 && PH == H && PW == W;                    \
    for (int c = 0; c < C; c++) {                                             \
        T *plane = x + (ptrdiff_t) c * H * W;                                 \
        T *acc = direct ? plane : padded;                                     \
        int pw_ = direct ? W : PW;                                            \
        memset(acc, 0, (size_t) (direct ? H * W : PH * PW) * sizeof(T));      \
        for (int i = 0; i < kh; i++)                                          \
            for (int j = 0; j < kw; j++) {                                    \
                const T *row = cols + ((ptrdiff_t) (c * kh + i) * kw + j) * ld; \
                for (int oh = 0; oh < OH; oh++) {                             \
                    T *dst = acc + (ptrdiff_t) (oh * sh + i * dh) * pw_ + j * dw; \
                    const T *src = row + (ptrdiff_t) oh * OW;                 \
                    if (sw == 1)                                              \
                        for (int ow = 0; ow < OW; ow++)                       \
                            dst[ow] += src[ow];                               \
                    else                                                      \
                        for (int ow = 0; ow < OW; ow++)                       \
                            dst[(ptrdiff_t) ow * sw] += src[ow];              \
                }                                                             \
            }                                                                 \
        if (!direct)                                                          \
            for (int r = 0; r < H; r++)                                       \
                for (int q = 0; q < W; q++)                                   \
                    plane[(ptrdiff_t) r * W + q] = padded[(ptrdiff_t) (r + ph) * PW + pw + q]; \
    }

#define SKDL_IM2COL_ARGS(T)                                                   \
    (const T *x, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, \
     int pw, int dh, int dw, int OH, int OW, T *cols, ptrdiff_t ld,           \
     T *padded, int PH, int PW)

#define SKDL_COL2IM_ARGS(T)                                                   \
    (const T *cols, ptrdiff_t ld, int C, int H, int W, int kh, int kw, int sh, \
     int sw, int ph, int pw, int dh, int dw, int OH, int OW, T *x, T *padded, \
     int PH, int PW)

SKDL_NO_MEMCPY_IDIOM static void skdl_im2col_float SKDL_IM2COL_ARGS(float)
{
    SKDL_IM2COL_BODY(float)
}

SKDL_NO_MEMCPY_IDIOM static void skdl_im2col_double SKDL_IM2COL_ARGS(double)
{
    SKDL_IM2COL_BODY(double)
}

SKDL_NO_MEMCPY_IDIOM static void skdl_col2im_float SKDL_COL2IM_ARGS(float)
{
    SKDL_COL2IM_BODY(float)
}

SKDL_NO_MEMCPY_IDIOM static void skdl_col2im_double SKDL_COL2IM_ARGS(double)
{
    SKDL_COL2IM_BODY(double)
}

/* Channels-last unfolding ("patch rows"), for inputs with several channels:
 * a sample is first moved into a zero-padded (PH, PW, C) plane, so each row
 * of a window is one contiguous run of kw * C values (C with dilation).
 *
 * Row p = oh * OW + ow of cols (row stride ld) holds the window of output
 * (oh, ow) in (i, j, c) order: xp[oh*sh + i*dh, ow*sw + j*dw, c]. */
#define SKDL_TO_HWC_BODY(T)                                                   \
    memset(xp, 0, (size_t) PH * PW * C * sizeof(T));                          \
    for (int h = 0; h < H; h++)                                               \
        for (int w = 0; w < W; w++) {                                         \
            T *dst = xp + ((ptrdiff_t) (h + ph) * PW + pw + w) * C;           \
            const T *src = x + (ptrdiff_t) h * W + w;                         \
            for (int c = 0; c < C; c++)                                       \
                dst[c] = src[(ptrdiff_t) c * H * W];                          \
        }

#define SKDL_PATCH_LOOPS(T, STATEMENT)                                        \
    int run = dw == 1 ? kw * C : C;                                           \
    int runs = dw == 1 ? 1 : kw;                                              \
    for (int oh = 0; oh < OH; oh++)                                           \
        for (int ow = 0; ow < OW; ow++) {                                     \
            T *row = cols + (ptrdiff_t) (oh * OW + ow) * ld;                  \
            for (int i = 0; i < kh; i++) {                                    \
                T *win = xp + ((ptrdiff_t) (oh * sh + i * dh) * PW              \
                               + (ptrdiff_t) ow * sw) * C;                    \
                for (int r = 0; r < runs; r++, row += run) {                  \
                    T *seg = win + (ptrdiff_t) r * dw * C;                    \
                    for (int e = 0; e < run; e++)                             \
                        STATEMENT;                                            \
                }                                                             \
            }                                                                 \
        }

/* xp = 0, xp += the windows in cols (in the order of the loops, fixed), then
 * the sample x (C, H, W) = the interior of xp. */
#define SKDL_FROM_HWC_BODY(T)                                                 \
    for (int c = 0; c < C; c++)                                               \
        for (int h = 0; h < H; h++)                                           \
            for (int w = 0; w < W; w++)                                       \
                x[((ptrdiff_t) c * H + h) * W + w] =                          \
                    xp[((ptrdiff_t) (h + ph) * PW + pw + w) * C + c];

#define SKDL_PATCHES_ARGS(T)                                                  \
    (const T *x, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, \
     int pw, int dh, int dw, int OH, int OW, T *cols, ptrdiff_t ld, T *xp,    \
     int PH, int PW)

#define SKDL_PATCHES_ADJOINT_ARGS(T)                                          \
    (T *cols, ptrdiff_t ld, int C, int H, int W, int kh, int kw, int sh,      \
     int sw, int ph, int pw, int dh, int dw, int OH, int OW, T *x, T *xp,     \
     int PH, int PW)

SKDL_NO_MEMCPY_IDIOM static void skdl_patches_float SKDL_PATCHES_ARGS(float)
{
    SKDL_TO_HWC_BODY(float)
    SKDL_PATCH_LOOPS(float, row[e] = seg[e])
}

SKDL_NO_MEMCPY_IDIOM static void skdl_patches_double SKDL_PATCHES_ARGS(double)
{
    SKDL_TO_HWC_BODY(double)
    SKDL_PATCH_LOOPS(double, row[e] = seg[e])
}

/* The adjoint of skdl_patches_*: cols is only read (not const for the macro). */
SKDL_NO_MEMCPY_IDIOM static void skdl_patches_adjoint_float SKDL_PATCHES_ADJOINT_ARGS(float)
{
    memset(xp, 0, (size_t) PH * PW * C * sizeof(float));
    SKDL_PATCH_LOOPS(float, seg[e] += row[e])
    SKDL_FROM_HWC_BODY(float)
}

SKDL_NO_MEMCPY_IDIOM static void skdl_patches_adjoint_double SKDL_PATCHES_ADJOINT_ARGS(double)
{
    memset(xp, 0, (size_t) PH * PW * C * sizeof(double));
    SKDL_PATCH_LOOPS(double, seg[e] += row[e])
    SKDL_FROM_HWC_BODY(double)
}

/* dst[0:m] = w * src[0:m] (restrict: the loop is vectorized). */
static inline void skdl_scaled_copy_float(float *restrict dst,
                                          const float *restrict src, float w, int m)
{
    for (int e = 0; e < m; e++)
        dst[e] = w * src[e];
}

static inline void skdl_scaled_copy_double(double *restrict dst,
                                           const double *restrict src, double w, int m)
{
    for (int e = 0; e < m; e++)
        dst[e] = w * src[e];
}

#endif
