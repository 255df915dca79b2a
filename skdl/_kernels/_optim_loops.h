/* Elementwise optimizer loops and the two chunk reductions (gradient norm,
 * L1/L2 penalty), compiled twice on x86-64 with GCC: for AVX2 and for the
 * baseline ISA, the right one picked at load time (function multi-versioning).
 * The build keeps -O3 and the baseline target; no FMA is enabled, so both
 * versions round the same way.
 *
 * Every update loop sees the gradient through two folds, so the caller's
 * gradient buffer is never written:
 *   gi   = clamp(g[i], -cv, cv) * gs   value clip first, then the clipnorm
 *                                      factor gs (cv = inf, gs = 1: off, and
 *                                      then exact: NaN stays NaN)
 *   keep = 1 - lrwd * mask[i]          decoupled weight decay, lrwd =
 *                                      learning_rate * weight_decay (no mask:
 *                                      1 - lrwd everywhere)
 * and tells whether an updated parameter is not finite, in the same pass: the
 * smallest, over the elements, of the exponent bits that are 0 (~bits & the
 * exponent mask) is 0 exactly when some exponent is all ones (inf or NaN). An
 * integer min reduction vectorizes and costs about nothing, where testing
 * |p| <= MAX in the loop slowed float32 Adam by a quarter. */
#ifndef SKDL_OPTIM_LOOPS_H
#define SKDL_OPTIM_LOOPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_generic.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKDL_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define SKDL_MULTIVERSION
#endif

/* clamp(x, -cv, cv) written as min then max, which GCC turns into minps and
 * maxps; a NaN x stays NaN (both comparisons are false). */
#define SKDL_CLAMP(out, x)                                                    \
    const T out##_hi = (x) > cv ? cv : (x);                                   \
    const T out = out##_hi < -cv ? -cv : out##_hi;

/* One element: the folded gradient gi, the decay factor keep, then BODY sets
 * the new value pn from p[i] (and updates the state arrays). */
#define SKDL_ELEMENT(KEEP, BODY)                                              \
    {                                                                         \
        const T keep = (KEEP);                                                \
        const T graw = g[i];                                                  \
        SKDL_CLAMP(gc, graw)                                                  \
        const T gi = gc * gs;                                                 \
        T pn;                                                                 \
        BODY                                                                  \
        p[i] = pn;                                                            \
        TI bits;                                                              \
        memcpy(&bits, &pn, sizeof bits);                                      \
        const TI zeros = ~bits & exponent;                                    \
        lowest = zeros < lowest ? zeros : lowest;                             \
    }

/* The loop twice, so neither version tests for a mask inside; 1 when some
 * new value is not finite. */
#define SKDL_UPDATE_LOOPS(BODY)                                               \
    TI lowest = exponent;                                                     \
    if (mask) {                                                               \
        for (ptrdiff_t i = 0; i < n; i++)                                     \
            SKDL_ELEMENT((T) 1 - lrwd * mask[i], BODY)                        \
    } else {                                                                  \
        const T keep_all = (T) 1 - lrwd;                                      \
        for (ptrdiff_t i = 0; i < n; i++)                                     \
            SKDL_ELEMENT(keep_all, BODY)                                      \
    }                                                                         \
    return lowest == 0;

/* Each optimizer: one body, two functions (float, double) sharing it. The
 * common trailing arguments are the mask (or NULL), the clipnorm factor gs,
 * the clip value cv and lrwd. */
#define SKDL_COMMON(T) const T *restrict mask, ptrdiff_t n, T gs, T cv, T lrwd

#define SKDL_DEFINE(NAME, BODY)                                               \
    SKDL_MULTIVERSION static int                                              \
    skdl_##NAME##_float(float *restrict p, const float *restrict g,           \
                        SKDL_ARGS_##NAME(float), SKDL_COMMON(float))          \
    {                                                                         \
        typedef float T;                                                      \
        typedef int32_t TI;                                                   \
        const TI exponent = 0x7f800000;                                       \
        SKDL_UPDATE_LOOPS(BODY)                                               \
    }                                                                         \
    SKDL_MULTIVERSION static int                                              \
    skdl_##NAME##_double(double *restrict p, const double *restrict g,        \
                         SKDL_ARGS_##NAME(double), SKDL_COMMON(double))       \
    {                                                                         \
        typedef double T;                                                     \
        typedef int64_t TI;                                                   \
        const TI exponent = 0x7ff0000000000000;                               \
        SKDL_UPDATE_LOOPS(BODY)                                               \
    }

/* Math in the element's own precision: sqrtf/fabsf for float, sqrt/fabs for
 * double. sizeof(T) is a constant, so only one branch is compiled in; the cast
 * keeps the expression of type T (float math stays float). The bodies below
 * hold no comma outside parentheses: they are macro arguments. */
#define SKDL_SQRT(x) ((T) (sizeof(T) == sizeof(float) ? sqrtf(x) : sqrt(x)))
#define SKDL_ABS(x) ((T) (sizeof(T) == sizeof(float) ? fabsf(x) : fabs(x)))

/* SGD with optional (Nesterov) momentum:
 *   vel = mu * vel - lr * g;  p += (nesterov ? mu * vel - lr * g : vel)    */
#define SKDL_ARGS_sgd(T) T *restrict vel, T lr, T mu, int nesterov
SKDL_DEFINE(sgd, {
    const T vi = mu * vel[i] - lr * gi;
    vel[i] = vi;
    pn = keep * p[i] + (nesterov ? mu * vi - lr * gi : vi);
})

/* Plain SGD, no velocity buffer read or written. */
#define SKDL_ARGS_sgd_plain(T) T lr
SKDL_DEFINE(sgd_plain, {
    pn = keep * p[i] - lr * gi;
})

/* Adagrad: acc += g^2;  p -= lr * g / (sqrt(acc) + eps)                    */
#define SKDL_ARGS_adagrad(T) T *restrict acc, T lr, T eps
SKDL_DEFINE(adagrad, {
    const T ai = acc[i] + gi * gi;
    acc[i] = ai;
    pn = keep * p[i] - lr * gi / (SKDL_SQRT(ai) + eps);
})

/* RMSprop: ms = rho * ms + (1 - rho) * g^2;  inc = lr * g / (sqrt(ms) + eps);
 * p -= inc, or with momentum: buf = mom * buf + inc;  p -= buf            */
#define SKDL_ARGS_rmsprop(T) T *restrict ms, T lr, T rho, T eps
SKDL_DEFINE(rmsprop, {
    const T si = rho * ms[i] + ((T) 1 - rho) * gi * gi;
    ms[i] = si;
    pn = keep * p[i] - lr * gi / (SKDL_SQRT(si) + eps);
})

#define SKDL_ARGS_rmsprop_momentum(T) T *restrict ms, T *restrict buf, T lr, T rho, \
                                      T eps, T mom
SKDL_DEFINE(rmsprop_momentum, {
    const T si = rho * ms[i] + ((T) 1 - rho) * gi * gi;
    ms[i] = si;
    const T bi = mom * buf[i] + lr * gi / (SKDL_SQRT(si) + eps);
    buf[i] = bi;
    pn = keep * p[i] - bi;
})

/* Adadelta (Zeiler, 2012):
 *   eg = rho * eg + (1 - rho) * g^2
 *   d  = sqrt(ed + eps) / sqrt(eg + eps) * g
 *   ed = rho * ed + (1 - rho) * d^2;   p -= lr * d                        */
#define SKDL_ARGS_adadelta(T) T *restrict eg, T *restrict ed, T lr, T rho, T eps
SKDL_DEFINE(adadelta, {
    const T egi = rho * eg[i] + ((T) 1 - rho) * gi * gi;
    eg[i] = egi;
    const T d = SKDL_SQRT(ed[i] + eps) / SKDL_SQRT(egi + eps) * gi;
    ed[i] = rho * ed[i] + ((T) 1 - rho) * d * d;
    pn = keep * p[i] - lr * d;
})

/* Adam, bias corrections folded into lr_t:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr_t m / (sqrt(v) + eps) */
#define SKDL_ARGS_adam(T) T *restrict m, T *restrict v, T lr_t, T b1, T b2, T eps
SKDL_DEFINE(adam, {
    const T mi = b1 * m[i] + ((T) 1 - b1) * gi;
    const T vi = b2 * v[i] + ((T) 1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    pn = keep * p[i] - lr_t * mi / (SKDL_SQRT(vi) + eps);
})

/* Adamax: m as Adam;  u = max(b2 u, |g|);  p -= lr_t m / (u + eps), with
 * lr_t = lr / (1 - b1^t). The select keeps a NaN gradient (the comparison is
 * false) so it reaches p and the finiteness count. */
#define SKDL_ARGS_adamax(T) T *restrict m, T *restrict u, T lr_t, T b1, T b2, T eps
SKDL_DEFINE(adamax, {
    const T mi = b1 * m[i] + ((T) 1 - b1) * gi;
    const T bu = b2 * u[i];
    const T ag = SKDL_ABS(gi);
    const T ui = bu > ag ? bu : ag;
    m[i] = mi;
    u[i] = ui;
    pn = keep * p[i] - lr_t * mi / (ui + eps);
})

/* Reductions over one chunk in float64, in eight fixed lanes combined in a
 * fixed order: the same sum on every ISA version and thread count. */
#define SKDL_LANES 8
#define SKDL_COMBINE(acc)                                                     \
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))

/* sum((clamp(g, -cv, cv) * inv)^2); the clamp in T, as the update loops do.
 * inv rescales when the plain sum of squares overflows float64. Each block
 * clamps in T first and converts after: one expression doing both stayed
 * scalar in float32 (and branched on the clamp), at a third of the speed. */
#define SKDL_SUMSQ_BODY                                                       \
    double acc[SKDL_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};                        \
    ptrdiff_t i = 0;                                                          \
    for (; i + SKDL_LANES <= n; i += SKDL_LANES) {                            \
        T c[SKDL_LANES];                                                      \
        for (int k = 0; k < SKDL_LANES; k++) {                                \
            SKDL_CLAMP(ck, g[i + k])                                          \
            c[k] = ck;                                                        \
        }                                                                     \
        for (int k = 0; k < SKDL_LANES; k++) {                                \
            const double x = (double) c[k] * inv;                             \
            acc[k] += x * x;                                                  \
        }                                                                     \
    }                                                                         \
    for (int k = 0; i < n; i++, k++) {                                        \
        SKDL_CLAMP(ck, g[i])                                                  \
        const double x = (double) ck * inv;                                   \
        acc[k] += x * x;                                                      \
    }                                                                         \
    return SKDL_COMBINE(acc);

SKDL_MULTIVERSION static double
skdl_sumsq_float(const float *restrict g, ptrdiff_t n, float cv, double inv)
{
    typedef float T;
    SKDL_SUMSQ_BODY
}

SKDL_MULTIVERSION static double
skdl_sumsq_double(const double *restrict g, ptrdiff_t n, double cv, double inv)
{
    typedef double T;
    SKDL_SUMSQ_BODY
}

/* L1/L2 penalty: g += l1 * sign(p) + 2 * l2 * p (sign(0) = 0, the
 * subgradient 0 at 0) and returns sum(l1 |p| + l2 p^2) in float64. Each block
 * works out its eight terms first and adds them to the lanes after, so both
 * loops vectorize. */
#define SKDL_PENALTY_TERM(j)                                                  \
    const T pk = p[j];                                                        \
    const T sgn = (T) ((pk > 0) - (pk < 0));                                  \
    g[j] += l1[j] * sgn + (l2[j] + l2[j]) * pk;                               \
    const double pd = (double) pk;                                            \
    const double term = (double) l1[j] * fabs(pd) + (double) l2[j] * pd * pd;

#define SKDL_PENALTY_BODY                                                     \
    double acc[SKDL_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};                        \
    ptrdiff_t i = 0;                                                          \
    for (; i + SKDL_LANES <= n; i += SKDL_LANES) {                            \
        double t[SKDL_LANES];                                                 \
        for (int k = 0; k < SKDL_LANES; k++) {                                \
            SKDL_PENALTY_TERM(i + k)                                          \
            t[k] = term;                                                      \
        }                                                                     \
        for (int k = 0; k < SKDL_LANES; k++)                                  \
            acc[k] += t[k];                                                   \
    }                                                                         \
    for (int k = 0; i < n; i++, k++) {                                        \
        SKDL_PENALTY_TERM(i)                                                  \
        acc[k] += term;                                                       \
    }                                                                         \
    return SKDL_COMBINE(acc);

SKDL_MULTIVERSION static double
skdl_penalty_float(const float *restrict p, float *restrict g, const float *restrict l1,
                   const float *restrict l2, ptrdiff_t n)
{
    typedef float T;
    SKDL_PENALTY_BODY
}

SKDL_MULTIVERSION static double
skdl_penalty_double(const double *restrict p, double *restrict g,
                    const double *restrict l1, const double *restrict l2, ptrdiff_t n)
{
    typedef double T;
    SKDL_PENALTY_BODY
}

#undef SKDL_SQRT
#undef SKDL_ABS

/* One name for both dtypes (see _generic.h), picked by the parameters' or
 * gradients' pointer. */
#define skdl_sgd(p, ...) SKDL_BY_TYPE(skdl_sgd, p)(p, __VA_ARGS__)
#define skdl_sgd_plain(p, ...) SKDL_BY_TYPE(skdl_sgd_plain, p)(p, __VA_ARGS__)
#define skdl_adagrad(p, ...) SKDL_BY_TYPE(skdl_adagrad, p)(p, __VA_ARGS__)
#define skdl_rmsprop(p, ...) SKDL_BY_TYPE(skdl_rmsprop, p)(p, __VA_ARGS__)
#define skdl_rmsprop_momentum(p, ...) SKDL_BY_TYPE(skdl_rmsprop_momentum, p)(p, __VA_ARGS__)
#define skdl_adadelta(p, ...) SKDL_BY_TYPE(skdl_adadelta, p)(p, __VA_ARGS__)
#define skdl_adam(p, ...) SKDL_BY_TYPE(skdl_adam, p)(p, __VA_ARGS__)
#define skdl_adamax(p, ...) SKDL_BY_TYPE(skdl_adamax, p)(p, __VA_ARGS__)
#define skdl_sumsq(g, ...) SKDL_BY_TYPE(skdl_sumsq, g)(g, __VA_ARGS__)
#define skdl_penalty(p, g, ...) SKDL_BY_TYPE(skdl_penalty, g)(p, g, __VA_ARGS__)

#endif
