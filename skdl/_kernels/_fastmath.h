/* Vectorizable float32 exp, sigmoid and tanh over rows.
 *
 * libm's expf is a call per value and GCC only swaps in its vector versions
 * under -ffast-math, which skdl does not use. These are branch-free loops of
 * plain arithmetic that GCC vectorizes; each function is compiled for AVX-512,
 * AVX2+FMA and the baseline and picked at load time.
 *
 * exp: Cephes' expf scheme (range reduction by ln 2 split in two parts, a
 * degree-5 polynomial, the exponent put in through the bits), within about
 * 2 ulp on [-87, 88]. NaN stays NaN. tanh: an odd polynomial below |x| = 0.625 (no
 * cancellation near 0), 1 - 2 / (exp(2|x|) + 1) above. sigmoid:
 * 1 / (1 + exp(-x)) with the argument clamped so exp stays finite.
 * float64 keeps libm: it serves the gradient checks.
 */
#ifndef SKDL_FASTMATH_H
#define SKDL_FASTMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKDL_MATH_MULTIVERSION \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SKDL_MATH_MULTIVERSION
#endif

/* exp(x) for x in [-88, 88] (callers clamp: a select in the same loop as
 * this arithmetic keeps GCC 12 from vectorizing, so they clamp in a loop of
 * their own first). Below about -87.3 the result is 0. */
static inline float skdl_expf_poly(float x)
{
    const float log2e = 1.44269504088896341f;
    const float c1 = 0.693359375f, c2 = -2.12194440e-4f;
    /* n = round(x / ln 2), through a floor that needs no libm call. */
    float fx = x * log2e + 0.5f;
    int32_t n = (int32_t) fx;
    n -= (fx < (float) n);
    float fn = (float) n;
    float r = x - fn * c1 - fn * c2;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    int32_t bits = (n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

SKDL_MATH_MULTIVERSION static void
skdl_sigmoid_f32(const float *x, float *y, int m)
{
    for (int j = 0; j < m; j++) {
        float v = -x[j];
        v = v < -88.0f ? -88.0f : v;
        y[j] = v > 88.0f ? 88.0f : v;
    }
    for (int j = 0; j < m; j++)
        y[j] = 1.0f / (1.0f + skdl_expf_poly(y[j]));
}

SKDL_MATH_MULTIVERSION static void
skdl_tanh_f32(const float *x, float *y, int m)
{
    /* tanh(10) rounds to 1 in float32: clamping there changes nothing. */
    for (int j = 0; j < m; j++) {
        float v = x[j];
        v = v < -10.0f ? -10.0f : v;
        y[j] = v > 10.0f ? 10.0f : v;
    }
    for (int j = 0; j < m; j++) {
        float v = y[j];
        float a = __builtin_fabsf(v);
        /* Cephes tanhf polynomial for small |x|. */
        float z = v * v;
        float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z
                         - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z
                       - 3.33332819422e-1f) * z * v + v;
        float big = __builtin_copysignf(1.0f - 2.0f / (skdl_expf_poly(2.0f * a) + 1.0f), v);
        /* Choose through the bits: a select here is left as a branch. */
        int32_t sb, bb, take = -(int32_t) (a >= 0.625f);
        memcpy(&sb, &small, sizeof sb);
        memcpy(&bb, &big, sizeof bb);
        sb = (sb & ~take) | (bb & take);
        memcpy(&y[j], &sb, sizeof sb);
    }
}

#endif
