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

#endif
