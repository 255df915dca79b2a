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

#include "_generic.h"

#if defined(__GNUC__) || defined(__clang__)
#define SKDL_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define SKDL_NOINLINE __declspec(noinline)
#else
#define SKDL_NOINLINE
#endif

/* The loops for element type T, instantiated for float and double below. */
#define SKDL_NORM_LOOPS(T)                                                    \
/* y = x where x > 0, else a * x; a NaN goes to the second term, stays NaN. */ \
static SKDL_NOINLINE void skdl_prelu_##T(const T *restrict x, T *restrict y,  \
                                         int n, T a)                          \
{                                                                             \
    for (int p = 0; p < n; p++) {                                             \
        T v = x[p];                                                           \
        T pos = v > 0 ? v : 0;                                                \
        T neg = v > 0 ? 0 : v;                                                \
        y[p] = pos + a * neg;                                                 \
    }                                                                         \
}                                                                             \
                                                                              \
/* dx = dy where x > 0, else a * dy. */                                       \
static SKDL_NOINLINE void skdl_prelu_grad_##T(const T *restrict x,            \
                                              const T *restrict dy,           \
                                              T *restrict dx, int n, T a)     \
{                                                                             \
    for (int p = 0; p < n; p++) {                                             \
        T v = x[p], g = dy[p];                                                \
        T pos = v > 0 ? g : 0;                                                \
        T neg = v > 0 ? 0 : g;                                                \
        dx[p] = pos + a * neg;                                                \
    }                                                                         \
}                                                                             \
                                                                              \
/* sum_p dy * min(x, 0): each product in T, the sums in double. */            \
static SKDL_NOINLINE double skdl_negative_dot_##T(const T *restrict x,        \
                                                  const T *restrict dy, int n) \
{                                                                             \
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
            + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) + tail;                \
}

SKDL_NORM_LOOPS(float)
SKDL_NORM_LOOPS(double)

/* One name for both dtypes (see _generic.h). */
#define skdl_prelu(x, y, n, a) SKDL_BY_TYPE(skdl_prelu, y)(x, y, n, a)
#define skdl_prelu_grad(x, dy, dx, n, a) SKDL_BY_TYPE(skdl_prelu_grad, dx)(x, dy, dx, n, a)
#define skdl_negative_dot(x, dy, n) SKDL_BY_TYPE(skdl_negative_dot, x)(x, dy, n)

#endif
