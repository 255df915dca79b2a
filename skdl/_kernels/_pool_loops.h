/* Max and average pooling over windows of 1, 2 or 3 spatial axes
 * (skdl_window, _window.h: three axes, the leading ones of size 1 for lower
 * ranks), on planes [p0, p1) of a batch: plane p is one channel of one
 * sample, in_vol inputs at x + p * in_vol and out_vol outputs. The caller's
 * prange hands out blocks of planes, since a call per plane costs as much as
 * a small plane's work.
 *
 * Windows may overlap (stride smaller than the pool) and may reach into
 * leading and trailing padding, which never wins a max and is not counted in
 * an average: each window is clipped to the input. Max pooling records the
 * flat (C-order) input position of each window's first maximum; its
 * backward pass and average pooling's add into each input plane in output
 * order, so overlapping windows are summed in a fixed order.
 *
 * Each helper is one macro over its element type T, instantiated for float
 * and double; the dispatcher of the same name picks the version from a
 * pointer's type (_generic.h). */
#ifndef SKDL_POOL_LOOPS_H
#define SKDL_POOL_LOOPS_H

#include <stddef.h>
#include <string.h>

#include "_generic.h"
#include "_window.h"

/* Windows' rows are a few values: GCC's vectorized version of the adding
 * loop (with its checks and remainders) is slower there than the plain one. */
#if defined(__GNUC__) && !defined(__clang__)
#define SKDL_SCALAR_LOOPS __attribute__((optimize("no-tree-vectorize")))
#else
#define SKDL_SCALAR_LOOPS
#endif

/* Input positions [lo, hi) of output o's window on axis a (stride S, leading
 * padding P, window K, input I), clipped to the input. */
#define SKDL_CLIP_LO(o, S, P) ((o) * (S) - (P) > 0 ? (o) * (S) - (P) : 0)
#define SKDL_CLIP_HI(o, S, P, K, I) \
    ((o) * (S) - (P) + (K) < (I) ? (o) * (S) - (P) + (K) : (I))

/* Loops over the output positions of a plane, with the clipped window
 * [lo_a, hi_a) on each axis a, `out` the output's offset and `count` the
 * number of input positions in the window (the lead axes' bounds fold to
 * constants, see SKDL_WINDOW_LOCALS). */
#define SKDL_POOL_WINDOWS(BODY)                                               \
    for (int o0 = 0; o0 < O0; o0++) {                                         \
        int lo0 = SKDL_CLIP_LO(o0, S0, P0);                                   \
        int hi0 = SKDL_CLIP_HI(o0, S0, P0, K0, I0);                           \
        for (int o1 = 0; o1 < O1; o1++) {                                     \
            int lo1 = SKDL_CLIP_LO(o1, S1, P1);                               \
            int hi1 = SKDL_CLIP_HI(o1, S1, P1, K1, I1);                       \
            for (int o2 = 0; o2 < O2; o2++) {                                 \
                int lo2 = SKDL_CLIP_LO(o2, S2, P2);                           \
                int hi2 = SKDL_CLIP_HI(o2, S2, P2, K2, I2);                   \
                ptrdiff_t out = ((ptrdiff_t) o0 * O1 + o1) * O2 + o2;         \
                int count = (hi0 - lo0) * (hi1 - lo1) * (hi2 - lo2);          \
                (void) count;                                                 \
                BODY                                                          \
            }                                                                 \
        }                                                                     \
    }

/* The rows (i0, i1) of a clipped window, with `base` the flat position of
 * (i0, i1, 0) in the plane; the caller loops over [lo2, hi2) in each. */
#define SKDL_WINDOW_ROWS(BODY)                                                \
    for (int i0 = lo0; i0 < hi0; i0++)                                        \
        for (int i1 = lo1; i1 < hi1; i1++) {                                  \
            int base = (i0 * I1 + i1) * I2;                                   \
            BODY                                                              \
        }

/* For each plane p in [p0, p1): BODY with `in` and `out0` the offsets of its
 * input and output (p * in_vol, p * out_vol) and the window's fields as
 * constants (SKDL_WINDOW_LOCALS), which the compiler keeps in registers:
 * the stores to outputs cannot change them. */
#define SKDL_EACH_PLANE(BODY)                                                 \
    SKDL_WINDOW_LOCALS                                                        \
    const ptrdiff_t out_vol = (ptrdiff_t) O0 * O1 * O2;                       \
    for (ptrdiff_t p = p0; p < p1; p++) {                                     \
        ptrdiff_t in = p * in_vol, out0 = p * out_vol;                        \
        BODY                                                                  \
    }

/* The maximum of each window and its flat input position: the first maximum
 * in C order. The index is chosen through a mask, not a branch (GCC makes a
 * select into a branch here): random data mispredicts. */
#define SKDL_MAX_POOL(T)                                                      \
static SKDL_ALWAYS_INLINE void skdl_max_pool_at_##T(                          \
    const skdl_window *w, const T *x, T *y, int *arg, ptrdiff_t p0, ptrdiff_t p1, \
    const int lead)                                                           \
{                                                                             \
    SKDL_EACH_PLANE({                                                         \
        const T *xp = x + in;                                                 \
        T *yp = y + out0;                                                     \
        int *ap = arg + out0;                                                 \
        SKDL_POOL_WINDOWS({                                                   \
            int best = (lo0 * I1 + lo1) * I2 + lo2;                           \
            T best_value = xp[best];                                          \
            SKDL_WINDOW_ROWS({                                                \
                const T *row = xp + base;                                     \
                for (int i2 = lo2; i2 < hi2; i2++) {                          \
                    T value = row[i2];                                        \
                    int take = -(value > best_value);                         \
                    best = (best & ~take) | ((base + i2) & take);             \
                    best_value = value > best_value ? value : best_value;     \
                }                                                             \
            })                                                                \
            yp[out] = best_value;                                             \
            ap[out] = best;                                                   \
        })                                                                    \
    })                                                                        \
}                                                                             \
                                                                              \
static SKDL_NOINLINE void skdl_max_pool_##T(                                  \
    const skdl_window *w, const T *x, T *y, int *arg, ptrdiff_t p0, ptrdiff_t p1) \
{                                                                             \
    SKDL_BY_LEAD(w, skdl_max_pool_at_##T, w, x, y, arg, p0, p1)             \
}

/* Window means in float64, over the window's positions inside the input. */
#define SKDL_AVG_POOL(T)                                                      \
static SKDL_ALWAYS_INLINE void skdl_avg_pool_at_##T(                          \
    const skdl_window *w, const T *x, T *y, ptrdiff_t p0, ptrdiff_t p1,      \
    const int lead)                                                           \
{                                                                             \
    SKDL_EACH_PLANE({                                                         \
        const T *xp = x + in;                                                 \
        T *yp = y + out0;                                                     \
        SKDL_POOL_WINDOWS({                                                   \
            double acc = 0.0;                                                 \
            SKDL_WINDOW_ROWS({                                                \
                const T *row = xp + base;                                     \
                for (int i2 = lo2; i2 < hi2; i2++)                            \
                    acc = acc + row[i2];                                      \
            })                                                                \
            yp[out] = (T) (acc / count);                                      \
        })                                                                    \
    })                                                                        \
}                                                                             \
                                                                              \
static SKDL_NOINLINE void skdl_avg_pool_##T(                                  \
    const skdl_window *w, const T *x, T *y, ptrdiff_t p0, ptrdiff_t p1)       \
{                                                                             \
    SKDL_BY_LEAD(w, skdl_avg_pool_at_##T, w, x, y, p0, p1)                  \
}

/* The adjoint of skdl_avg_pool: each input plane zeroed, then each output's
 * gradient shared over its window, outputs in C order. */
#define SKDL_AVG_UNPOOL(T)                                                    \
static SKDL_ALWAYS_INLINE SKDL_SCALAR_LOOPS void skdl_avg_unpool_at_##T(      \
    const skdl_window *w, const T *dy, T *dx, ptrdiff_t p0, ptrdiff_t p1,    \
    const int lead)                                                           \
{                                                                             \
    SKDL_EACH_PLANE({                                                         \
        T *dxp = dx + in;                                                     \
        const T *g = dy + out0;                                               \
        memset(dxp, 0, (size_t) in_vol * sizeof(T));                          \
        SKDL_POOL_WINDOWS({                                                   \
            T share = g[out] / count;                                         \
            SKDL_WINDOW_ROWS({                                                \
                T *row = dxp + base;                                          \
                for (int i2 = lo2; i2 < hi2; i2++)                            \
                    row[i2] += share;                                         \
            })                                                                \
        })                                                                    \
    })                                                                        \
}                                                                             \
                                                                              \
static SKDL_NOINLINE SKDL_SCALAR_LOOPS void skdl_avg_unpool_##T(              \
    const skdl_window *w, const T *dy, T *dx, ptrdiff_t p0, ptrdiff_t p1)     \
{                                                                             \
    SKDL_BY_LEAD(w, skdl_avg_unpool_at_##T, w, dy, dx, p0, p1)              \
}

/* Max pooling over 2x2 windows with stride 2 and no padding of images (or of
 * single-position depth), the usual case, written so GCC turns the
 * comparisons into selects (and vectorizes them): with branches, random
 * data mispredicts every other window. Scan order and strict comparisons
 * are those of skdl_max_pool, so the argmax is the same: the first maximum
 * in row-major order. */
static inline int skdl_plain_2x2(const skdl_window *w)
{
    return w->input[0] == 1 && w->size[0] == 1 && w->size[1] == 2 && w->size[2] == 2
        && w->stride[1] == 2 && w->stride[2] == 2 && w->pad[1] == 0 && w->pad[2] == 0
        && 2 * w->output[1] <= w->input[1] && 2 * w->output[2] <= w->input[2];
}

#define SKDL_MAX_2X2(T)                                                       \
static void skdl_max_2x2_##T(const T *restrict x, int W, T *restrict y,       \
                             int *restrict arg, int OH, int OW)               \
{                                                                             \
    for (int oh = 0; oh < OH; oh++) {                                         \
        const T *r0 = x + (ptrdiff_t) (2 * oh) * W;                           \
        const T *r1 = r0 + W;                                                 \
        T *yrow = y + (ptrdiff_t) oh * OW;                                    \
        int *arow = arg + (ptrdiff_t) oh * OW;                                \
        for (int ow = 0; ow < OW; ow++) {                                     \
            T a = r0[2 * ow], b = r0[2 * ow + 1];                             \
            T c = r1[2 * ow], d = r1[2 * ow + 1];                             \
            /* Index choices as masks: GCC keeps them branch-free. */         \
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
    }                                                                         \
}                                                                             \
                                                                              \
static SKDL_NOINLINE void skdl_max_2x2_planes_##T(                            \
    const skdl_window *w, const T *x, T *y, int *arg, ptrdiff_t p0, ptrdiff_t p1) \
{                                                                             \
    const int lead = 0;                                                       \
    SKDL_EACH_PLANE({                                                         \
        skdl_max_2x2_##T(x + in, I2, y + out0, arg + out0, O1, O2);           \
    })                                                                        \
}

/* Max pooling's backward pass on planes [p0, p1): each input plane zeroed,
 * then every output's gradient added at its argmax, outputs in C order. */
#define SKDL_MAX_UNPOOL(T)                                                    \
static SKDL_NOINLINE void skdl_max_unpool_##T(                                \
    const T *restrict dy, const int *restrict arg, T *restrict dx,            \
    ptrdiff_t in_size, ptrdiff_t out_size, ptrdiff_t p0, ptrdiff_t p1)        \
{                                                                             \
    memset(dx + p0 * in_size, 0, (size_t) ((p1 - p0) * in_size) * sizeof(T)); \
    for (ptrdiff_t p = p0; p < p1; p++) {                                     \
        T *plane = dx + p * in_size;                                          \
        const T *g = dy + p * out_size;                                       \
        const int *pos = arg + p * out_size;                                  \
        for (ptrdiff_t o = 0; o < out_size; o++)                              \
            plane[pos[o]] += g[o];                                            \
    }                                                                         \
}

SKDL_MAX_POOL(float)
SKDL_MAX_POOL(double)
SKDL_AVG_POOL(float)
SKDL_AVG_POOL(double)
SKDL_AVG_UNPOOL(float)
SKDL_AVG_UNPOOL(double)
SKDL_MAX_2X2(float)
SKDL_MAX_2X2(double)
SKDL_MAX_UNPOOL(float)
SKDL_MAX_UNPOOL(double)

#define skdl_max_pool(w, x, y, arg, p0, p1) \
    SKDL_BY_TYPE(skdl_max_pool, x)(w, x, y, arg, p0, p1)
#define skdl_avg_pool(w, x, y, p0, p1) SKDL_BY_TYPE(skdl_avg_pool, x)(w, x, y, p0, p1)
#define skdl_avg_unpool(w, dy, dx, p0, p1) \
    SKDL_BY_TYPE(skdl_avg_unpool, dy)(w, dy, dx, p0, p1)
#define skdl_max_2x2_planes(w, x, y, arg, p0, p1) \
    SKDL_BY_TYPE(skdl_max_2x2_planes, x)(w, x, y, arg, p0, p1)
#define skdl_max_unpool(dy, arg, dx, in_size, out_size, p0, p1) \
    SKDL_BY_TYPE(skdl_max_unpool, dy)(dy, arg, dx, in_size, out_size, p0, p1)

#endif
