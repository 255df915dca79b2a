/* Max pooling over 2x2 windows with stride 2 and no padding, the usual case,
 * written so GCC turns the comparisons into selects (and vectorizes them):
 * with branches, random data mispredicts every other window. Scan order and
 * strict comparisons are those of the general loop in _pool.pyx, so the
 * argmax is the same: the first maximum in row-major order. */
#ifndef SKDL_POOL_LOOPS_H
#define SKDL_POOL_LOOPS_H

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

#endif
