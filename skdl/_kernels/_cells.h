/* Elementwise arithmetic of the recurrent cells, per sample and step, on
 * arrays that never overlap (restrict), so GCC vectorizes the loops; compiled
 * for AVX-512, AVX2 and the baseline, picked at load time. The activations
 * themselves are applied by the callers (skdl/_kernels/_activations).
 *
 * Gate blocks: LSTM (i, f, g, o) of u values each; GRU (r, z, n). Each
 * block comes as its own pointer: offsets into one pointer make GCC test
 * for overlap at run time and take its scalar loop. */
#ifndef SKDL_CELLS_H
#define SKDL_CELLS_H

#include "_generic.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKDL_CELL_MULTIVERSION \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SKDL_CELL_MULTIVERSION
#endif

#define SKDL_CELL_FUNCTIONS(T)                                                \
/* pre = xw + r (+ bh), the gates' pre-activations. */                        \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_add3_##T(int m, const T *restrict a, const T *restrict b,                \
              const T *restrict c, T *restrict out)                           \
{                                                                             \
    if (c)                                                                    \
        for (int j = 0; j < m; j++) out[j] = a[j] + b[j] + c[j];              \
    else                                                                      \
        for (int j = 0; j < m; j++) out[j] = a[j] + b[j];                     \
}                                                                             \
                                                                              \
/* LSTM forward after the activations: c = f c_prev + i g, then (with        \
 * ac = act(c) filled in by the caller) h = o ac. */                          \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_lstm_state_##T(int u, const T *restrict gi, const T *restrict gf,        \
                    const T *restrict gg, const T *restrict c_prev,           \
                    T *restrict c)                                            \
{                                                                             \
    for (int j = 0; j < u; j++)                                               \
        c[j] = gf[j] * c_prev[j] + gi[j] * gg[j];                             \
}                                                                             \
                                                                              \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_mul_##T(int m, const T *restrict a, const T *restrict b, T *restrict out) \
{                                                                             \
    for (int j = 0; j < m; j++) out[j] = a[j] * b[j];                         \
}                                                                             \
                                                                              \
/* LSTM backward, first part: from dh, the gradient for act(c) (dac) and for  \
 * o (dpost[3u:]). */                                                         \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_lstm_back_h_##T(int u, const T *restrict dh, const T *restrict go,       \
                     const T *restrict ac, T *restrict dac, T *restrict do_)  \
{                                                                             \
    for (int j = 0; j < u; j++) {                                             \
        dac[j] = dh[j] * go[j];                                               \
        do_[j] = dh[j] * ac[j];                                               \
    }                                                                         \
}                                                                             \
                                                                              \
/* LSTM backward, second part: dc += dc_h (from h); the gradients of i, f, g  \
 * after their activations; dc becomes the gradient for c_prev. */           \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_lstm_back_c_##T(int u, T *restrict dc, const T *restrict dc_h,           \
                     const T *restrict gi, const T *restrict gf,              \
                     const T *restrict gg, const T *restrict c_prev,          \
                     T *restrict di, T *restrict df, T *restrict dg)          \
{                                                                             \
    for (int j = 0; j < u; j++) {                                             \
        T d = dc[j] + dc_h[j];                                                \
        di[j] = d * gg[j];                                                    \
        df[j] = d * c_prev[j];                                                \
        dg[j] = d * gi[j];                                                    \
        dc[j] = d * gf[j];                                                    \
    }                                                                         \
}                                                                             \
                                                                              \
/* GRU forward: with r, z (activated) in gates and hu_n = h_prev U_n + bh_n,  \
 * the candidate's pre-activation xw_n + r hu_n goes into gates[2u:]. */      \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_gru_candidate_##T(int u, const T *restrict xw_n, const T *restrict r_n,  \
                       const T *restrict bh_n, const T *restrict gr,          \
                       T *restrict gn, T *restrict hu_n)                      \
{                                                                             \
    for (int j = 0; j < u; j++) {                                             \
        hu_n[j] = r_n[j] + (bh_n ? bh_n[j] : (T) 0);                          \
        gn[j] = xw_n[j] + gr[j] * hu_n[j];                                    \
    }                                                                         \
}                                                                             \
                                                                              \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_gru_state_##T(int u, const T *restrict gz, const T *restrict gn,         \
                   const T *restrict h_prev, T *restrict h)                   \
{                                                                             \
    for (int j = 0; j < u; j++)                                               \
        h[j] = (1 - gz[j]) * gn[j] + gz[j] * h_prev[j];                       \
}                                                                             \
                                                                              \
/* GRU backward, first part: gradients of n and z after their activations    \
 * (dpost[0:u], dpost[u:2u]) and the direct part of dh_prev. */              \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_gru_back_h_##T(int u, const T *restrict dh, const T *restrict gz,        \
                    const T *restrict gn, const T *restrict h_prev,           \
                    T *restrict dn, T *restrict dz, T *restrict dh_direct)    \
{                                                                             \
    for (int j = 0; j < u; j++) {                                             \
        dn[j] = dh[j] * (1 - gz[j]);                                          \
        dz[j] = dh[j] * (h_prev[j] - gn[j]);                                  \
        dh_direct[j] = dh[j] * gz[j];                                         \
    }                                                                         \
}                                                                             \
                                                                              \
/* GRU backward, second part: from d a_n, the recurrent side of n and the     \
 * gradient of r after its activation (dpost[2u:3u]). */                      \
SKDL_CELL_MULTIVERSION static void                                            \
skdl_gru_back_n_##T(int u, const T *restrict da_n, const T *restrict gr,      \
                    const T *restrict hu_n, T *restrict dgh_n,                \
                    T *restrict dr)                                           \
{                                                                             \
    for (int j = 0; j < u; j++) {                                             \
        dgh_n[j] = da_n[j] * gr[j];                                           \
        dr[j] = da_n[j] * hu_n[j];                                            \
    }                                                                         \
}

SKDL_CELL_FUNCTIONS(float)
SKDL_CELL_FUNCTIONS(double)

/* One name per helper for both types, picked by the output's pointer type. */
#define skdl_add3(m, a, b, c, out) SKDL_BY_TYPE(skdl_add3, out)(m, a, b, c, out)
#define skdl_lstm_state(u, gi, gf, gg, c_prev, c) \
    SKDL_BY_TYPE(skdl_lstm_state, c)(u, gi, gf, gg, c_prev, c)
#define skdl_mul(m, a, b, out) SKDL_BY_TYPE(skdl_mul, out)(m, a, b, out)
#define skdl_lstm_back_h(u, dh, go, ac, dac, do_) \
    SKDL_BY_TYPE(skdl_lstm_back_h, dac)(u, dh, go, ac, dac, do_)
#define skdl_lstm_back_c(u, dc, dc_h, gi, gf, gg, c_prev, di, df, dg) \
    SKDL_BY_TYPE(skdl_lstm_back_c, dc)(u, dc, dc_h, gi, gf, gg, c_prev, di, df, dg)
#define skdl_gru_candidate(u, xw_n, r_n, bh_n, gr, gn, hu_n) \
    SKDL_BY_TYPE(skdl_gru_candidate, gn)(u, xw_n, r_n, bh_n, gr, gn, hu_n)
#define skdl_gru_state(u, gz, gn, h_prev, h) \
    SKDL_BY_TYPE(skdl_gru_state, h)(u, gz, gn, h_prev, h)
#define skdl_gru_back_h(u, dh, gz, gn, h_prev, dn, dz, dh_direct) \
    SKDL_BY_TYPE(skdl_gru_back_h, dn)(u, dh, gz, gn, h_prev, dn, dz, dh_direct)
#define skdl_gru_back_n(u, da_n, gr, hu_n, dgh_n, dr) \
    SKDL_BY_TYPE(skdl_gru_back_n, dr)(u, da_n, gr, hu_n, dgh_n, dr)

#endif
