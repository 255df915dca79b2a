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

#endif
