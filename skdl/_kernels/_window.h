/* The geometry of a sliding window (a convolution's kernel, a pool) over
 * inputs of 1, 2 or 3 spatial axes, as every conv and pool helper takes it:
 * one struct, filled once per kernel call from skdl._ops.Window.kernel_args
 * (see _window.pxd), instead of a dozen scalars per helper.
 *
 * Axes are right-aligned in the arrays: a rank-r window fills the last r
 * entries and the leading 3 - r axes have one input and output position, a
 * window of 1, stride and dilation 1, no padding. The helpers therefore
 * always loop over three axes, the last one innermost and contiguous (its
 * loop is the one GCC vectorizes); an axis of one position costs one trip,
 * and the positions are visited in the same order for every rank, so a
 * rank-1 window computes what a (1, k) window on a height-1 image did. */
#ifndef SKDL_WINDOW_H
#define SKDL_WINDOW_H

#include <stddef.h>

#define SKDL_MAX_RANK 3

typedef struct {
    int rank;         /* spatial axes the window was built for: 1, 2 or 3 */
    int input[3];     /* input positions per axis (each channel's) */
    int output[3];    /* window positions per axis */
    int size[3];      /* the window's taps per axis (kernel or pool size) */
    int stride[3];
    int pad[3];       /* leading padding; the trailing one is implied by output */
    int dilation[3];  /* spacing of the taps (pools: 1) */
    int extent[3];    /* the zero-padded input's positions (skdl_window_finish) */
} skdl_window;

/* Positions of the padded input along one axis: the input with its leading
 * padding, extended to the last position a window reads. */
static inline int skdl_padded_extent(int size, int lead, int out, int stride,
                                     int k, int dilation)
{
    int reach = (out - 1) * stride + (k - 1) * dilation + 1;
    return reach > lead + size ? reach : lead + size;
}

/* Fills w->extent from the other fields. */
static inline void skdl_window_finish(skdl_window *w)
{
    for (int a = 0; a < SKDL_MAX_RANK; a++)
        w->extent[a] = skdl_padded_extent(w->input[a], w->pad[a], w->output[a],
                                          w->stride[a], w->size[a], w->dilation[a]);
}

/* Number of positions of a 3-axis shape (input, output, size or extent). */
static inline ptrdiff_t skdl_volume(const int v[3])
{
    return (ptrdiff_t) v[0] * v[1] * v[2];
}

/* True when the input is its own padded copy: no padding, and no window
 * reads past its end. */
static inline int skdl_window_unpadded(const skdl_window *w)
{
    for (int a = 0; a < SKDL_MAX_RANK; a++)
        if (w->pad[a] != 0 || w->extent[a] != w->input[a])
            return 0;
    return 1;
}

/* The window's fields as constants of the helper (I input, O output, K size,
 * S stride, D dilation, P leading padding, E padded extent; 0, 1, 2 the axes),
 * and the sizes of one channel's input and of its padded copy. */
#define SKDL_WINDOW_LOCALS                                                    \
    const int I0 = w->input[0], I1 = w->input[1], I2 = w->input[2];           \
    const int O0 = w->output[0], O1 = w->output[1], O2 = w->output[2];        \
    const int K0 = w->size[0], K1 = w->size[1], K2 = w->size[2];              \
    const int S0 = w->stride[0], S1 = w->stride[1], S2 = w->stride[2];        \
    const int D0 = w->dilation[0], D1 = w->dilation[1], D2 = w->dilation[2];  \
    const int P0 = w->pad[0], P1 = w->pad[1], P2 = w->pad[2];                 \
    const int E1 = w->extent[1], E2 = w->extent[2];                           \
    const ptrdiff_t in_vol = skdl_volume(w->input);                           \
    const ptrdiff_t pad_vol = skdl_volume(w->extent);                         \
    (void) I0; (void) I1; (void) I2; (void) O0; (void) O1; (void) O2; (void) K0; (void) K1;         \
    (void) K2; (void) S0; (void) S1; (void) S2; (void) D0; (void) D1;         \
    (void) D2; (void) P0; (void) P1; (void) P2; (void) E1; (void) E2;         \
    (void) in_vol; (void) pad_vol;

#endif
