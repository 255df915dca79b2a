/* Elementwise optimizer loops, compiled twice on x86-64 with GCC: for AVX2
 * and for the baseline ISA, the right one picked at load time (function
 * multi-versioning). The build keeps -O3 and the baseline target; no FMA is
 * enabled, so both versions round the same way. */
#ifndef SKDL_OPTIM_LOOPS_H
#define SKDL_OPTIM_LOOPS_H

#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKDL_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define SKDL_MULTIVERSION
#endif

#define SKDL_ADAM_LOOP(T, SQRT)                                              \
    for (ptrdiff_t i = 0; i < n; i++) {                                       \
        T mi = b1 * m[i] + ((T) 1 - b1) * g[i];                               \
        T vi = b2 * v[i] + ((T) 1 - b2) * g[i] * g[i];                        \
        m[i] = mi;                                                            \
        v[i] = vi;                                                            \
        p[i] -= lr_t * mi / (SQRT(vi) + eps);                                 \
    }

SKDL_MULTIVERSION static void
skdl_adam_float(float *restrict p, const float *restrict g, float *restrict m,
                float *restrict v, ptrdiff_t n, float lr_t, float b1, float b2,
                float eps)
{
    SKDL_ADAM_LOOP(float, sqrtf)
}

SKDL_MULTIVERSION static void
skdl_adam_double(double *restrict p, const double *restrict g, double *restrict m,
                 double *restrict v, ptrdiff_t n, double lr_t, double b1,
                 double b2, double eps)
{
    SKDL_ADAM_LOOP(double, sqrt)
}

#define SKDL_SGD_LOOP(T)                                                      \
    for (ptrdiff_t i = 0; i < n; i++) {                                       \
        T vel_i = mu * vel[i] - lr * g[i];                                    \
        vel[i] = vel_i;                                                       \
        p[i] += nesterov ? mu * vel_i - lr * g[i] : vel_i;                    \
    }

SKDL_MULTIVERSION static void
skdl_sgd_float(float *restrict p, const float *restrict g, float *restrict vel,
               ptrdiff_t n, float lr, float mu, int nesterov)
{
    SKDL_SGD_LOOP(float)
}

SKDL_MULTIVERSION static void
skdl_sgd_double(double *restrict p, const double *restrict g, double *restrict vel,
                ptrdiff_t n, double lr, double mu, int nesterov)
{
    SKDL_SGD_LOOP(double)
}

#endif
