/* Row passes of the attention kernels (_attention.pyx), float and double.
 *
 * skdl_attn_softmax: one query's scores, already multiplied by the scale
 * (folded into the packed keys), turned into its softmax weights in place:
 * keys hidden by the padding mask or, with `len` < T, by causality get weight
 * 0, and a query that sees no key gets an all-zero row. float64 uses libm's
 * exp (the gradient checks hold it to the numpy twin to 1e-12); float32 the
 * vectorized polynomial of _fastmath.h (about 2 ulp), in loops of plain
 * arithmetic GCC vectorizes: max and sum run in 8 lanes added in a fixed
 * order, the mask is applied by a multiplication by 0 or 1.
 *
 * skdl_attn_softmax_grad: one row of dS = P o (dP - sum_j dP_j P_j), dP =
 * dA o keep (keep may be NULL), written over dA.
 */
#ifndef SKDL_ATTENTION_H
#define SKDL_ATTENTION_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "_fastmath.h"
#include "_generic.h"

#define SKDL_LANES8(acc) (((acc[0] + acc[1]) + (acc[2] + acc[3])) \
                          + ((acc[4] + acc[5]) + (acc[6] + acc[7])))

/* s[0:T): scores in, weights out; keys len..T-1 are hidden (causal); mask
 * (NULL: every key present) holds 0 or 1 per key. */
SKDL_MATH_MULTIVERSION static void
skdl_attn_softmax_float(float *s, const unsigned char *mask, int len, int T)
{
    float lanes[8], top, total, inv;
    int body = len - len % 8, j, l;
    for (l = 0; l < 8; l++)
        lanes[l] = -INFINITY;
    if (mask != NULL) {
        for (j = 0; j < body; j += 8)
            for (l = 0; l < 8; l++) {
                float v = mask[j + l] ? s[j + l] : -INFINITY;
                lanes[l] = v > lanes[l] ? v : lanes[l];
            }
    } else {
        for (j = 0; j < body; j += 8)
            for (l = 0; l < 8; l++)
                lanes[l] = s[j + l] > lanes[l] ? s[j + l] : lanes[l];
    }
    top = -INFINITY;
    for (l = 0; l < 8; l++)
        top = lanes[l] > top ? lanes[l] : top;
    for (j = body; j < len; j++)
        if ((mask == NULL || mask[j]) && s[j] > top)
            top = s[j];
    if (!(top > -INFINITY)) { /* no visible key (or NaN scores): zero weights */
        memset(s, 0, (size_t) T * sizeof(float));
        return;
    }
    /* Clamp in a loop of its own (see _fastmath.h): exp(-88) is 0 in float. */
    for (j = 0; j < len; j++) {
        float x = s[j] - top;
        s[j] = x < -88.0f ? -88.0f : x;
    }
    for (j = 0; j < len; j++)
        s[j] = skdl_expf_poly(s[j]);
    if (mask != NULL)
        for (j = 0; j < len; j++)
            s[j] *= (float) mask[j];
    for (l = 0; l < 8; l++)
        lanes[l] = 0.0f;
    for (j = 0; j < body; j += 8)
        for (l = 0; l < 8; l++)
            lanes[l] += s[j + l];
    total = SKDL_LANES8(lanes);
    for (j = body; j < len; j++)
        total += s[j];
    inv = 1.0f / total;
    for (j = 0; j < len; j++)
        s[j] *= inv;
    if (len < T)
        memset(s + len, 0, (size_t) (T - len) * sizeof(float));
}

static void
skdl_attn_softmax_double(double *s, const unsigned char *mask, int len, int T)
{
    double top = -INFINITY, total = 0.0;
    int j;
    for (j = 0; j < len; j++)
        if ((mask == NULL || mask[j]) && s[j] > top)
            top = s[j];
    if (!(top > -INFINITY)) {
        memset(s, 0, (size_t) T * sizeof(double));
        return;
    }
    for (j = 0; j < len; j++) {
        double e = (mask == NULL || mask[j]) ? exp(s[j] - top) : 0.0;
        s[j] = e;
        total += e;
    }
    for (j = 0; j < len; j++)
        s[j] /= total;
    if (len < T)
        memset(s + len, 0, (size_t) (T - len) * sizeof(double));
}

/* da[0:len) -> P o (dP - sum(dP o P)), dP = da o keep; da[len:T) = 0 (P is 0
 * there). Sums in 8 lanes (float) or one accumulator (double). */
#define SKDL_SOFTMAX_GRAD_BODY(T_)                                            \
    T_ lanes[8], dot;                                                         \
    int body = len - len % 8, j, l;                                           \
    if (keep != NULL)                                                         \
        for (j = 0; j < len; j++)                                             \
            da[j] *= keep[j];                                                 \
    for (l = 0; l < 8; l++)                                                   \
        lanes[l] = 0;                                                         \
    for (j = 0; j < body; j += 8)                                             \
        for (l = 0; l < 8; l++)                                               \
            lanes[l] += da[j + l] * p[j + l];                                 \
    dot = SKDL_LANES8(lanes);                                                 \
    for (j = body; j < len; j++)                                              \
        dot += da[j] * p[j];                                                  \
    for (j = 0; j < len; j++)                                                 \
        da[j] = p[j] * (da[j] - dot);                                         \
    if (len < T)                                                              \
        memset(da + len, 0, (size_t) (T - len) * sizeof(T_));

SKDL_MATH_MULTIVERSION static void
skdl_attn_softmax_grad_float(float *da, const float *p, const float *keep, int len, int T)
{
    SKDL_SOFTMAX_GRAD_BODY(float)
}

static void
skdl_attn_softmax_grad_double(double *da, const double *p, const double *keep, int len,
                              int T)
{
    SKDL_SOFTMAX_GRAD_BODY(double)
}

/* dst (cols, rows) = src (rows, cols) transposed, src row stride lds, times
 * mul (rows, cols, row stride lds) elementwise when not NULL; in 32 x 32
 * tiles so both sides stay in cache. */
#define SKDL_TRANSPOSE_BODY(T_)                                               \
    for (int i0 = 0; i0 < rows; i0 += 32)                                     \
        for (int j0 = 0; j0 < cols; j0 += 32) {                               \
            int i1 = i0 + 32 < rows ? i0 + 32 : rows;                         \
            int j1 = j0 + 32 < cols ? j0 + 32 : cols;                         \
            for (int j = j0; j < j1; j++)                                     \
                for (int i = i0; i < i1; i++) {                               \
                    ptrdiff_t o = (ptrdiff_t) i * lds + j;                    \
                    dst[(ptrdiff_t) j * rows + i] =                           \
                        mul == NULL ? src[o] : src[o] * mul[o];               \
                }                                                             \
        }

static void
skdl_attn_transpose_float(const float *src, const float *mul, int rows, int cols, int lds,
                          float *dst)
{
    SKDL_TRANSPOSE_BODY(float)
}

static void
skdl_attn_transpose_double(const double *src, const double *mul, int rows, int cols,
                           int lds, double *dst)
{
    SKDL_TRANSPOSE_BODY(double)
}

#define skdl_attn_softmax(s, mask, len, T) \
    SKDL_BY_TYPE(skdl_attn_softmax, s)(s, mask, len, T)
#define skdl_attn_softmax_grad(da, p, keep, len, T) \
    SKDL_BY_TYPE(skdl_attn_softmax_grad, da)(da, p, keep, len, T)
#define skdl_attn_transpose(src, mul, rows, cols, lds, dst) \
    SKDL_BY_TYPE(skdl_attn_transpose, dst)(src, mul, rows, cols, lds, dst)

#endif
