/* PReLU's loops over one channel's positions, written so GCC turns the sign
 * tests into selects and vectorizes them: with branches, data of random sign
 * mispredicts every other element (10x slower). Each is a function of its
 * own and never inlined: inside the OpenMP region's loop nest GCC left the
 * same loop scalar. Sums use 8 lanes and a separate tail (as _norm.pyx's
 * _lanes): a fixed order, the same for any thread count. Their indices are
 * ptrdiff_t: Python's -fwrapv makes int index arithmetic wrap, and GCC then
 * leaves the lane loops scalar. */
#ifndef SKDL_NORM_LOOPS_H
#define SKDL_NORM_LOOPS_H

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define SKDL_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define SKDL_NOINLINE __declspec(noinline)
#else
#define SKDL_NOINLINE
#endif

/* y = x where x > 0, else a * x; a NaN goes to the second term, stays NaN. */
#define SKDL_PRELU_BODY                                                       \
    for (int p = 0; p < n; p++) {                                             \
        T v = x[p];                                                           \
        T pos = v > 0 ? v : 0;                                                \
        T neg = v > 0 ? 0 : v;                                                \
        y[p] = pos + a * neg;                                                 \
    }

/* dx = dy where x > 0, else a * dy. */
#define SKDL_PRELU_GRAD_BODY                                                  \
    for (int p = 0; p < n; p++) {                                             \
        T v = x[p], g = dy[p];                                                \
        T pos = v > 0 ? g : 0;                                                \
        T neg = v > 0 ? 0 : g;                                                \
        dx[p] = pos + a * neg;                                                \
    }

/* sum_p dy * min(x, 0): each product in T, the sums in double. */
#define SKDL_NEGATIVE_DOT_BODY                                                \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tail = 0.0;                     \
    ptrdiff_t body = n - n % 8;                                               \
    for (ptrdiff_t p = 0; p < body; p += 8) {                                 \
        for (int l = 0; l < 8; l++) {                                         \
            T v = x[p + l];                                                   \
            T m = v > 0 ? 0 : v;                                              \
            acc[l] += (double) (dy[p + l] * m);                               \
        }                                                                     \
    }                                                                         \
    for (ptrdiff_t p = body; p < n; p++) {                                    \
        T v = x[p];                                                           \
        T m = v > 0 ? 0 : v;                                                  \
        tail += (double) (dy[p] * m);                                         \
    }                                                                         \
    return (((acc[0] + acc[1]) + (acc[2] + acc[3]))                           \
            + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) + tail;

static SKDL_NOINLINE void skdl_prelu_float(const float *restrict x, float *restrict y,
                                           int n, float a)
{
    typedef float T;
    SKDL_PRELU_BODY
}

static SKDL_NOINLINE void skdl_prelu_double(const double *restrict x,
                                            double *restrict y, int n, double a)
{
    typedef double T;
    SKDL_PRELU_BODY
}

static SKDL_NOINLINE void skdl_prelu_grad_float(const float *restrict x,
                                                const float *restrict dy,
                                                float *restrict dx, int n, float a)
{
    typedef float T;
    SKDL_PRELU_GRAD_BODY
}

static SKDL_NOINLINE void skdl_prelu_grad_double(const double *restrict x,
                                                 const double *restrict dy,
                                                 double *restrict dx, int n, double a)
{
    typedef double T;
    SKDL_PRELU_GRAD_BODY
}

static SKDL_NOINLINE double skdl_negative_dot_float(const float *restrict x,
                                                    const float *restrict dy, int n)
{
    typedef float T;
    SKDL_NEGATIVE_DOT_BODY
}

static SKDL_NOINLINE double skdl_negative_dot_double(const double *restrict x,
                                                     const double *restrict dy, int n)
{
    typedef double T;
    SKDL_NEGATIVE_DOT_BODY
}

#endif
