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
#include <stdint.h>
#include <string.h>

/* _fastmath.h's sigmoid and tanh are not used here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "_fastmath.h"
#pragma GCC diagnostic pop
/* The 64-byte vectors below pass between always-inlined helpers only: there
 * is no ABI to keep (GCC warns at the end of the module, so no pop). */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "_generic.h"

#define SKDL_LANES8(acc) (((acc[0] + acc[1]) + (acc[2] + acc[3])) \
                          + ((acc[4] + acc[5]) + (acc[6] + acc[7])))

/* float32 rows in GCC vectors of 16 (one AVX-512 register, two AVX2 ones,
 * four SSE ones): the row's passes are one loop each over whole vectors, with
 * no scalar prologue or epilogue per row (T is often 64 or less, so those
 * dominated when the loops were left to the auto-vectorizer). */
/* Inlined into their (multiversioned) callers, which compile them for their
 * own vector extension: a call would pass the vectors through memory. */
#define SKDL_ATTN_INLINE static inline __attribute__((always_inline))
typedef float skdl_attn_vf __attribute__((vector_size(64)));
typedef int32_t skdl_attn_vi __attribute__((vector_size(64)));
typedef unsigned char skdl_attn_vb __attribute__((vector_size(16)));
typedef float skdl_attn_vf_u __attribute__((vector_size(64), aligned(4)));
typedef unsigned char skdl_attn_vb_u __attribute__((vector_size(16), aligned(1)));
#define SKDL_ATTN_VW 16

/* skdl_expf_poly of _fastmath.h on a vector, for x in [-88, 0]; x <= -88
 * gives exactly 0 (the exponent bits are 0). */
SKDL_ATTN_INLINE skdl_attn_vf skdl_attn_exp16(skdl_attn_vf x)
{
    const float c1 = 0.693359375f, c2 = -2.12194440e-4f;
    skdl_attn_vf fx = x * 1.44269504088896341f + 0.5f;
    skdl_attn_vi n = __builtin_convertvector(fx, skdl_attn_vi);
    n += (skdl_attn_vi) (fx < __builtin_convertvector(n, skdl_attn_vf)); /* floor: -1 */
    skdl_attn_vf fn = __builtin_convertvector(n, skdl_attn_vf);
    skdl_attn_vf r = x - fn * c1 - fn * c2;
    skdl_attn_vf r2 = r * r;
    skdl_attn_vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    return p * (skdl_attn_vf) ((n + 127) << 23);
}

/* a where keep (all ones bits) else b. */
SKDL_ATTN_INLINE skdl_attn_vf
skdl_attn_select(skdl_attn_vi keep, skdl_attn_vf a, skdl_attn_vf b)
{
    return (skdl_attn_vf) (((skdl_attn_vi) a & keep) | ((skdl_attn_vi) b & ~keep));
}

/* Which of keys j0 .. j0+15 the query sees: before len, and in the mask. */
SKDL_ATTN_INLINE skdl_attn_vi
skdl_attn_visible(const unsigned char *mask, ptrdiff_t j0, int len)
{
    skdl_attn_vi j = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    skdl_attn_vi vis = (j + (int32_t) j0) < len;
    if (mask != NULL)
        vis &= __builtin_convertvector(*(const skdl_attn_vb_u *) (mask + j0), skdl_attn_vi)
               != 0;
    return vis;
}

SKDL_ATTN_INLINE float skdl_attn_hmax(skdl_attn_vf v)
{
    /* A tree (depth 4, not a chain of 15: it is on each row's critical path). */
    float h[8], q[4];
    for (int l = 0; l < 8; l++)
        h[l] = v[l] > v[l + 8] ? v[l] : v[l + 8];
    for (int l = 0; l < 4; l++)
        q[l] = h[l] > h[l + 4] ? h[l] : h[l + 4];
    q[0] = q[0] > q[2] ? q[0] : q[2];
    q[1] = q[1] > q[3] ? q[1] : q[3];
    return q[0] > q[1] ? q[0] : q[1];
}

SKDL_ATTN_INLINE float skdl_attn_hsum(skdl_attn_vf v)
{
    /* Pairwise, in a fixed order. */
    float h[8];
    for (int l = 0; l < 8; l++)
        h[l] = v[l] + v[l + 8];
    return ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]));
}

/* s[0:T): scores in, weights out; keys len..T-1 are hidden (causal); mask
 * (NULL: every key present) holds 0 or 1 per key. */
SKDL_MATH_MULTIVERSION static void
skdl_attn_softmax_float(float *s, const unsigned char *mask, int len, int T)
{
    const skdl_attn_vf ninf = (skdl_attn_vf) {0} - INFINITY;
    ptrdiff_t body = len - len % SKDL_ATTN_VW, j;
    ptrdiff_t end = body + (len % SKDL_ATTN_VW && body + SKDL_ATTN_VW <= T ? SKDL_ATTN_VW : 0);
    skdl_attn_vf top_v = ninf, acc = {0};
    float top, total, inv;
    /* Whole vectors up to `end` (past len when a vector fits in the row:
       its hidden keys are masked); a scalar tail after it. */
    for (j = 0; j < end; j += SKDL_ATTN_VW) {
        skdl_attn_vf x = skdl_attn_select(skdl_attn_visible(mask, j, len),
                                          *(skdl_attn_vf_u *) (s + j), ninf);
        *(skdl_attn_vf_u *) (s + j) = x;
        top_v = skdl_attn_select(x > top_v, x, top_v);
    }
    top = skdl_attn_hmax(top_v);
    for (j = end; j < len; j++) {
        if (mask != NULL && !mask[j])
            s[j] = -INFINITY;
        top = s[j] > top ? s[j] : top;
    }
    if (!(top > -INFINITY)) { /* no visible key (or NaN scores): zero weights */
        memset(s, 0, (size_t) T * sizeof(float));
        return;
    }
    for (j = 0; j < end; j += SKDL_ATTN_VW) {
        skdl_attn_vf x = *(skdl_attn_vf_u *) (s + j) - top;
        x = skdl_attn_select(x < -88.0f, (skdl_attn_vf) {0} - 88.0f, x);
        x = skdl_attn_exp16(x);
        *(skdl_attn_vf_u *) (s + j) = x;
        acc += x;
    }
    total = skdl_attn_hsum(acc);
    for (j = end; j < len; j++) {
        float x = s[j] - top;
        s[j] = x < -88.0f ? 0.0f : skdl_expf_poly(x);
        total += s[j];
    }
    inv = 1.0f / total;
    for (j = 0; j < end; j += SKDL_ATTN_VW)
        *(skdl_attn_vf_u *) (s + j) *= inv;
    for (j = end; j < len; j++)
        s[j] *= inv;
    j = end > len ? end : len; /* hidden keys inside the last vector are 0 already */
    if (j < T)
        memset(s + j, 0, (size_t) (T - j) * sizeof(float));
}

static void
skdl_attn_softmax_double(double *s, const unsigned char *mask, int len, int T)
{
    double top = -INFINITY, total = 0.0;
    ptrdiff_t j;
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
    ptrdiff_t body = len - len % 8, j, l;                                     \
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

/* dst (cols, rows) = src (rows, cols) transposed, row strides lds and ldd,
 * times mul (rows, cols, row stride lds) elementwise when not NULL; in 32 x 32
 * tiles so both sides stay in cache. */
#define SKDL_TRANSPOSE_BODY(T_)                                               \
    for (ptrdiff_t i0 = 0; i0 < rows; i0 += 32)                               \
        for (ptrdiff_t j0 = 0; j0 < cols; j0 += 32) {                         \
            ptrdiff_t i1 = i0 + 32 < rows ? i0 + 32 : rows;                   \
            ptrdiff_t j1 = j0 + 32 < cols ? j0 + 32 : cols;                   \
            for (ptrdiff_t j = j0; j < j1; j++)                               \
                for (ptrdiff_t i = i0; i < i1; i++) {                         \
                    ptrdiff_t o = i * lds + j;                                \
                    dst[j * ldd + i] = mul == NULL ? src[o] : src[o] * mul[o]; \
                }                                                             \
        }

static void
skdl_attn_transpose_float(const float *src, const float *mul, int rows, int cols, int lds,
                          float *dst, int ldd)
{
    SKDL_TRANSPOSE_BODY(float)
}

static void
skdl_attn_transpose_double(const double *src, const double *mul, int rows, int cols,
                           int lds, double *dst, int ldd)
{
    SKDL_TRANSPOSE_BODY(double)
}

/* -- narrow products -------------------------------------------------------
 * C (m, n) = A (m, k) @ B for n up to one 64-byte vector (16 floats or 8
 * doubles: a head's dv or dk), B packed by skdl_pack_b (panels of 32 floats
 * or 16 doubles; only the first vector of each packed row is read). The
 * shared kernel fills a whole 128-byte panel, half of it zeros at d = 16;
 * this one holds a row of C in one register, MR rows at a time. Every
 * element is the same chain acc += A[i, kk] * B[kk, j] for kk = 0, 1, ... in
 * order, whatever its row's position: row-invariant like _rowgemm.h. */
typedef double skdl_attn_vd __attribute__((vector_size(64)));
typedef double skdl_attn_vd_u __attribute__((vector_size(64), aligned(8)));

#define SKDL_NARROW_MR 6
#define SKDL_NARROW_BODY(T_, VEC, VEC_U, NR)                                  \
    enum { VW = sizeof(VEC) / sizeof(T_) };                                   \
    for (ptrdiff_t i0 = 0; i0 < m; i0 += SKDL_NARROW_MR) {                    \
        ptrdiff_t rows = m - i0 < SKDL_NARROW_MR ? m - i0 : SKDL_NARROW_MR;   \
        const T_ *ar[SKDL_NARROW_MR];                                         \
        VEC acc[SKDL_NARROW_MR];                                              \
        for (int r = 0; r < SKDL_NARROW_MR; r++) {                            \
            ar[r] = a + (i0 + (r < rows ? r : rows - 1)) * lda;               \
            acc[r] = (VEC) {0};                                               \
        }                                                                     \
        for (ptrdiff_t kk = 0; kk < k; kk++) {                                \
            VEC bv = *(const VEC_U *) (packed + kk * NR);                     \
            for (int r = 0; r < SKDL_NARROW_MR; r++)                          \
                acc[r] += ar[r][kk] * bv;                                     \
        }                                                                     \
        for (int r = 0; r < rows; r++) {                                      \
            T_ *crow = c + (i0 + r) * ldc;                                    \
            if (n == VW)                                                      \
                *(VEC_U *) crow = acc[r];                                     \
            else {                                                            \
                T_ tmp[VW];                                                   \
                memcpy(tmp, &acc[r], sizeof(VEC));                            \
                memcpy(crow, tmp, (size_t) n * sizeof(T_));                   \
            }                                                                 \
        }                                                                     \
    }

SKDL_MATH_MULTIVERSION static void
skdl_attn_narrow_float(int m, int n, int k, const float *a, ptrdiff_t lda,
                       const float *packed, float *c, ptrdiff_t ldc)
{
    SKDL_NARROW_BODY(float, skdl_attn_vf, skdl_attn_vf_u, 32)
}

SKDL_MATH_MULTIVERSION static void
skdl_attn_narrow_double(int m, int n, int k, const double *a, ptrdiff_t lda,
                        const double *packed, double *c, ptrdiff_t ldc)
{
    SKDL_NARROW_BODY(double, skdl_attn_vd, skdl_attn_vd_u, 16)
}

/* Columns one vector holds: 16 floats, 8 doubles. */
#define SKDL_NARROW_WIDTH(c) ((int) (64 / sizeof(*(c))))
#define skdl_attn_narrow(m, n, k, a, lda, packed, c, ldc) \
    SKDL_BY_TYPE(skdl_attn_narrow, c)(m, n, k, a, lda, packed, c, ldc)

/* -- layer normalization, row by row --------------------------------------
 * Compiled for AVX-512, AVX2 and the baseline like the exp above (Cython's
 * own loops get the baseline only). A row's sums run in N lanes of type A
 * (float64: 8 doubles; float32: 16 floats, one AVX-512 register, which the
 * float32 results need no more than), the lanes folded in halves in a fixed
 * order; every row is computed the same way wherever it is. */
#define SKDL_LN_FOLD(acc, N)                                                  \
    for (ptrdiff_t w_ = (N) / 2; w_ >= 1; w_ /= 2)                            \
        for (ptrdiff_t l_ = 0; l_ < w_; l_++)                                 \
            acc[l_] += acc[l_ + w_];

/* One row: mean and biased variance (two passes), xhat, y = gamma xhat + beta
 * (gamma and beta both NULL: y = xhat). */
#define SKDL_LN_ROW_BODY(T_, A_, N)                                           \
    A_ acc[N], mean, var, s, tail = 0;                                        \
    ptrdiff_t body = C - C % (N), j, l;                                       \
    for (l = 0; l < (N); l++)                                                 \
        acc[l] = 0;                                                           \
    for (j = 0; j < body; j += (N))                                           \
        for (l = 0; l < (N); l++)                                             \
            acc[l] += x[j + l];                                               \
    for (j = body; j < C; j++)                                                \
        tail += x[j];                                                         \
    SKDL_LN_FOLD(acc, N)                                                      \
    mean = (acc[0] + tail) / C;                                               \
    tail = 0;                                                                 \
    for (l = 0; l < (N); l++)                                                 \
        acc[l] = 0;                                                           \
    for (j = 0; j < body; j += (N))                                           \
        for (l = 0; l < (N); l++) {                                           \
            A_ d = x[j + l] - mean;                                           \
            acc[l] += d * d;                                                  \
        }                                                                     \
    for (j = body; j < C; j++) {                                              \
        A_ d = x[j] - mean;                                                   \
        tail += d * d;                                                        \
    }                                                                         \
    SKDL_LN_FOLD(acc, N)                                                      \
    var = (acc[0] + tail) / C;                                                \
    s = (A_) (1.0 / sqrt((double) var + epsilon));                            \
    *inv_std = (T_) s;                                                        \
    if (gamma == NULL)                                                        \
        for (j = 0; j < C; j++) {                                             \
            A_ h = (x[j] - mean) * s;                                         \
            xhat[j] = (T_) h;                                                 \
            y[j] = (T_) h;                                                    \
        }                                                                     \
    else                                                                      \
        for (j = 0; j < C; j++) {                                             \
            A_ h = (x[j] - mean) * s;                                         \
            xhat[j] = (T_) h;                                                 \
            y[j] = (T_) (gamma[j] * h + beta[j]);                             \
        }

SKDL_MATH_MULTIVERSION static void
skdl_ln_row_float(const float *restrict x, float *restrict y, float *restrict xhat,
                  float *restrict inv_std, int C, const float *gamma, const float *beta,
                  double epsilon)
{
    SKDL_LN_ROW_BODY(float, float, 16)
}

SKDL_MATH_MULTIVERSION static void
skdl_ln_row_double(const double *restrict x, double *restrict y, double *restrict xhat,
                   double *restrict inv_std, int C, const double *gamma, const double *beta,
                   double epsilon)
{
    SKDL_LN_ROW_BODY(double, double, 8)
}

/* Rows [start, stop) of the backward pass: s_dy[c] = sum_i w_i dy,
 * s_dy_xhat[c] = sum_i w_i dy xhat (overwritten; float64, they are summed
 * over the whole batch), and each row's dx = inv_std (g - mean(g) - xhat
 * mean(g xhat)), g = gamma dy, when dx is not NULL (gamma NULL: ones; w
 * NULL: ones). */
#define SKDL_LN_GRAD_BODY(T_, A_, N)                                          \
    ptrdiff_t body = C - C % (N), j, l, i;                                    \
    for (j = 0; j < C; j++) {                                                 \
        s_dy[j] = 0.0;                                                        \
        s_dy_xhat[j] = 0.0;                                                   \
    }                                                                         \
    for (i = start; i < stop; i++) {                                          \
        const T_ *g_ = dy + i * C, *h_ = xhat + i * C;                        \
        double wi = w == NULL ? 1.0 : w[i];                                   \
        A_ acc1[N], acc2[N], t1 = 0, t2 = 0, m1, m2, s;                       \
        for (j = 0; j < C; j++) {                                             \
            s_dy[j] += wi * g_[j];                                            \
            s_dy_xhat[j] += wi * ((double) g_[j] * h_[j]);                    \
        }                                                                     \
        if (dx == NULL)                                                       \
            continue;                                                         \
        for (l = 0; l < (N); l++) {                                           \
            acc1[l] = 0;                                                      \
            acc2[l] = 0;                                                      \
        }                                                                     \
        if (gamma == NULL) {                                                  \
            for (j = 0; j < body; j += (N))                                   \
                for (l = 0; l < (N); l++) {                                   \
                    acc1[l] += g_[j + l];                                     \
                    acc2[l] += g_[j + l] * h_[j + l];                         \
                }                                                             \
            for (j = body; j < C; j++) {                                      \
                t1 += g_[j];                                                  \
                t2 += g_[j] * h_[j];                                          \
            }                                                                 \
        } else {                                                              \
            for (j = 0; j < body; j += (N))                                   \
                for (l = 0; l < (N); l++) {                                   \
                    A_ gx = gamma[j + l] * g_[j + l];                         \
                    acc1[l] += gx;                                            \
                    acc2[l] += gx * h_[j + l];                                \
                }                                                             \
            for (j = body; j < C; j++) {                                      \
                A_ gx = gamma[j] * g_[j];                                     \
                t1 += gx;                                                     \
                t2 += gx * h_[j];                                             \
            }                                                                 \
        }                                                                     \
        SKDL_LN_FOLD(acc1, N)                                                 \
        SKDL_LN_FOLD(acc2, N)                                                 \
        m1 = (acc1[0] + t1) / C;                                              \
        m2 = (acc2[0] + t2) / C;                                              \
        s = inv_std[i];                                                       \
        if (gamma == NULL)                                                    \
            for (j = 0; j < C; j++)                                           \
                dx[i * C + j] = (T_) (s * (g_[j] - m1 - h_[j] * m2));         \
        else                                                                  \
            for (j = 0; j < C; j++)                                           \
                dx[i * C + j] = (T_) (s * (gamma[j] * g_[j] - m1 - h_[j] * m2)); \
    }

SKDL_MATH_MULTIVERSION static void
skdl_ln_grad_rows_float(const float *restrict dy, const float *restrict xhat,
                        const float *restrict inv_std, const float *restrict gamma,
                        const double *restrict w, ptrdiff_t start, ptrdiff_t stop, int C,
                        float *restrict dx, double *restrict s_dy,
                        double *restrict s_dy_xhat)
{
    SKDL_LN_GRAD_BODY(float, float, 16)
}

SKDL_MATH_MULTIVERSION static void
skdl_ln_grad_rows_double(const double *restrict dy, const double *restrict xhat,
                         const double *restrict inv_std, const double *restrict gamma,
                         const double *restrict w, ptrdiff_t start, ptrdiff_t stop, int C,
                         double *restrict dx, double *restrict s_dy,
                         double *restrict s_dy_xhat)
{
    SKDL_LN_GRAD_BODY(double, double, 8)
}

#define skdl_ln_row(x, y, xhat, inv_std, C, gamma, beta, epsilon) \
    SKDL_BY_TYPE(skdl_ln_row, y)(x, y, xhat, inv_std, C, gamma, beta, epsilon)
#define skdl_ln_grad_rows(dy, xhat, inv_std, gamma, w, start, stop, C, dx, s1, s2) \
    SKDL_BY_TYPE(skdl_ln_grad_rows, dy)(dy, xhat, inv_std, gamma, w, start, stop, C, dx, \
                                        s1, s2)

#define skdl_attn_softmax(s, mask, len, T) \
    SKDL_BY_TYPE(skdl_attn_softmax, s)(s, mask, len, T)
#define skdl_attn_softmax_grad(da, p, keep, len, T) \
    SKDL_BY_TYPE(skdl_attn_softmax_grad, da)(da, p, keep, len, T)
#define skdl_attn_transpose(src, mul, rows, cols, lds, dst, ldd) \
    SKDL_BY_TYPE(skdl_attn_transpose, dst)(src, mul, rows, cols, lds, dst, ldd)

#endif
