/* Max pooling over 2x2 windows with stride 2 and no padding, the usual case,
 * written so GCC turns the comparisons into selects (and vectorizes them):
 * with branches, random data mispredicts every other window. Scan order and
 * strict comparisons are those of the general loop in _pool.pyx, so the
 * argmax is the same: the first maximum in row-major order. */
#ifndef SKDL_POOL_LOOPS_H
#define SKDL_POOL_LOOPS_H

#include <stddef.h>
#include <string.h>

#define SKDL_MAX_2X2_BODY                                                     \
    for (int oh = 0; oh < OH; oh++) {                                         \
        const T *r0 = x + (ptrdiff_t) (2 * oh) * W;                           \
        const T *r1 = r0 + W;                                                 \
        T *yrow = y + (ptrdiff_t) oh * OW;                                    \
        int *arow = arg + (ptrdiff_t) oh * OW;                                \
        for (int ow = 0; ow < OW; ow++) {                                     \
            T a = r0[2 * ow], b = r0[2 * ow + 1];                             \
            T c = r1[2 * ow], d = r1[2 * ow + 1];                             \
            /* Index choices as masks: GCC keeps them branch-free. */      \
            int take_b = -(b > a);                                            \
            T m = b > a ? b : a;                                              \
            int off = take_b & 1;                                             \
            int take_c = -(c > m);                                            \
            m = c > m ? c : m;                                                \
            off = (off & ~take_c) | (W & take_c);                             \
            int take_d = -(d > m);                                            \
            m = d > m ? d : m;                                                \
            off = (off & ~take_d) | ((W + 1) & take_d);                       \
            yrow[ow] = m;                                                     \
            arow[ow] = 2 * oh * W + 2 * ow + off;                             \
        }                                                                     \
    }

static void skdl_max_2x2_float(const float *restrict x, int W, float *restrict y,
                               int *restrict arg, int OH, int OW)
{
    typedef float T;
    SKDL_MAX_2X2_BODY
}

static void skdl_max_2x2_double(const double *restrict x, int W, double *restrict y,
                                int *restrict arg, int OH, int OW)
{
    typedef double T;
    SKDL_MAX_2X2_BODY
}

/* Planes [p0, p1) of a batch, each plane in_size (H*W) inputs and out_size
 * (OH*OW) outputs: the caller's prange hands out blocks of planes, since a
 * call per plane costs as much as a small plane's work. */
#define SKDL_MAX_2X2_PLANES(T)                                                \
    static void skdl_max_2x2_planes_##T(const T *x, int W, ptrdiff_t in_size, \
                                        T *y, int *arg, int OH, int OW,       \
                                        ptrdiff_t out_size, ptrdiff_t p0,     \
                                        ptrdiff_t p1)                         \
    {                                                                         \
        for (ptrdiff_t p = p0; p < p1; p++)                                   \
            skdl_max_2x2_##T(x + p * in_size, W, y + p * out_size,            \
                             arg + p * out_size, OH, OW);                     \
    }

SKDL_MAX_2X2_PLANES(float)
SKDL_MAX_2X2_PLANES(double)

/* Max pooling's backward pass on planes [p0, p1): each input plane zeroed,
 * then every output's gradient added at its argmax, outputs in row-major
 * order (overlapping windows sum in that fixed order). */
#define SKDL_MAX_UNPOOL_BODY                                                  \
    memset(dx + p0 * in_size, 0, (size_t) ((p1 - p0) * in_size) * sizeof(T)); \
    for (ptrdiff_t p = p0; p < p1; p++) {                                     \
        T *plane = dx + p * in_size;                                          \
        const T *g = dy + p * out_size;                                       \
        const int *pos = arg + p * out_size;                                  \
        for (ptrdiff_t o = 0; o < out_size; o++)                              \
            plane[pos[o]] += g[o];                                            \
    }

static void skdl_max_unpool_float(const float *restrict dy, const int *restrict arg,
                                  float *restrict dx, ptrdiff_t in_size,
                                  ptrdiff_t out_size, ptrdiff_t p0, ptrdiff_t p1)
{
    typedef float T;
    SKDL_MAX_UNPOOL_BODY
}

static void skdl_max_unpool_double(const double *restrict dy, const int *restrict arg,
                                   double *restrict dx, ptrdiff_t in_size,
                                   ptrdiff_t out_size, ptrdiff_t p0, ptrdiff_t p1)
{
    typedef double T;
    SKDL_MAX_UNPOOL_BODY
}

#endif
