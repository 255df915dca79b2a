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

/* Leading axes a window does not move along (one input and output position,
 * a window of 1, no padding): 2 for a signal's, 1 for an image's, 0 for a
 * volume's. The helpers take it as a constant `lead` (each is compiled for
 * 0, 1 and 2, see SKDL_BY_LEAD, and SKDL_WINDOW_LOCALS makes those axes'
 * fields constants), so the loops over those axes vanish and a signal or an
 * image runs the loops it ran when every window was 2-D. */
static inline int skdl_window_lead(const skdl_window *w)
{
    int lead = 0;
    while (lead < 2 && w->input[lead] == 1 && w->output[lead] == 1
           && w->size[lead] == 1 && w->pad[lead] == 0)
        lead++;
    return lead;
}

/* F(..., lead) with lead the constant skdl_window_lead(w). */
#define SKDL_BY_LEAD(w, F, ...)                                               \
    switch (skdl_window_lead(w)) {                                            \
    case 2: F(__VA_ARGS__, 2); break;                                         \
    case 1: F(__VA_ARGS__, 1); break;                                         \
    default: F(__VA_ARGS__, 0);                                               \
    }

/* SKDL_ALWAYS_INLINE: the `lead` versions of a helper (see SKDL_BY_LEAD);
 * SKDL_NOINLINE: a helper compiled on its own, not inlined into its caller's
 * loop (pooling's loops ran 15-30% slower inlined into a function that held
 * several of them). */
#if defined(__GNUC__)
#define SKDL_ALWAYS_INLINE __attribute__((always_inline)) inline
#define SKDL_NOINLINE __attribute__((noinline))
#else
#define SKDL_ALWAYS_INLINE inline
#define SKDL_NOINLINE
#endif

/* The window's fields as constants of the helper (I input, O output, K size,
 * S stride, D dilation, P leading padding, E padded extent; 0, 1, 2 the axes),
 * and the sizes of one channel's input and of its padded copy. Needs `lead`
 * (skdl_window_lead, a constant in each version of a helper): the lead axes'
 * fields are then constants (one position, no padding) the compiler folds. */
#define SKDL_AXIS(field, a, fixed) (lead > (a) ? (fixed) : w->field[a])
#define SKDL_WINDOW_LOCALS                                                    \
    const int I0 = SKDL_AXIS(input, 0, 1), I1 = SKDL_AXIS(input, 1, 1);        \
    const int O0 = SKDL_AXIS(output, 0, 1), O1 = SKDL_AXIS(output, 1, 1);     \
    const int K0 = SKDL_AXIS(size, 0, 1), K1 = SKDL_AXIS(size, 1, 1);         \
    const int S0 = SKDL_AXIS(stride, 0, 1), S1 = SKDL_AXIS(stride, 1, 1);     \
    const int D0 = SKDL_AXIS(dilation, 0, 1), D1 = SKDL_AXIS(dilation, 1, 1); \
    const int P0 = SKDL_AXIS(pad, 0, 0), P1 = SKDL_AXIS(pad, 1, 0);           \
    const int E0 = SKDL_AXIS(extent, 0, 1), E1 = SKDL_AXIS(extent, 1, 1);     \
    const int I2 = w->input[2], O2 = w->output[2], K2 = w->size[2];           \
    const int S2 = w->stride[2], D2 = w->dilation[2], P2 = w->pad[2];         \
    const int E2 = w->extent[2];                                              \
    const ptrdiff_t in_vol = (ptrdiff_t) I0 * I1 * I2;                        \
    const ptrdiff_t pad_vol = (ptrdiff_t) E0 * E1 * E2;                       \
    (void) I0; (void) I1; (void) I2; (void) O0; (void) O1; (void) O2;         \
    (void) K0; (void) K1; (void) K2; (void) S0; (void) S1; (void) S2;         \
    (void) D0; (void) D1; (void) D2; (void) P0; (void) P1; (void) P2;         \
    (void) E0; (void) E1; (void) E2; (void) in_vol; (void) pad_vol;

#endif
