"""Batch normalization and PReLU: per-channel kernels, float32 and float64.

Every array is read as ``X[m, C, P]``: m rows (the samples, times the axes
before the channel axis), C channels, P positions per channel (the product of
the axes after it, e.g. height * width; 1 for dense features). Statistics,
slopes and their gradients are per channel, over rows and positions.

Sums over the rows run in float64 over fixed chunks of CHUNK rows; each
chunk's sums are kept apart and the chunks are added in order, so a result
depends on the shapes alone, never on the thread count. Elementwise passes run
``prange`` over the rows. Per-channel vectors (statistics, gamma, beta, slopes)
come in as float64 from the ops.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid

from ._openmp cimport (BATCHNORM_GRAD_SUMS, BATCHNORM_INPUT_GRAD, BATCHNORM_NORMALIZE,
                       CHANNEL_AFFINE, CHANNEL_MOMENTS, PRELU_BACKWARD, PRELU_FORWARD,
                       note_thread)


# Rows per chunk of a sum over the batch (see the module docstring).
cdef int CHUNK = 32
CHUNK_ = CHUNK


cdef inline double _weight(const double* w, Py_ssize_t i) noexcept nogil:
    return 1.0 if w == NULL else w[i]


# Sums along a channel's positions use 8 accumulators, lane l taking
# positions p = l (mod 8) of the multiple-of-8 body, added pairwise at the end,
# then the tail's sum: a fixed order (the same for any thread count) that lets
# the compiler vectorize, where a single accumulator would wait on each
# addition. The tail has its own accumulator: indexing the lanes by a variable
# would keep them in memory and the loop scalar. Positions are indexed with
# Py_ssize_t: with int, Python's -fwrapv makes ``p + l`` wrap and GCC leaves
# the loop scalar.
cdef inline double _lanes(const double* acc) noexcept nogil:
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef double _sum(const floating* x, int P, double center, bint square) noexcept nogil:
    """sum_p (x_p - center) (or its square with ``square``)."""
    cdef double acc[8]
    cdef double d, tail = 0.0
    cdef int l
    cdef Py_ssize_t p, body = P - P % 8  # not int: see _lanes
    for l in range(8):
        acc[l] = 0.0
    if square:
        for p in range(0, body, 8):
            for l in range(8):
                d = x[p + l] - center
                acc[l] += d * d
        for p in range(body, P):
            d = x[p] - center
            tail += d * d
    else:
        for p in range(0, body, 8):
            for l in range(8):
                acc[l] += x[p + l]
        for p in range(body, P):
            tail += x[p]
    return _lanes(acc) + tail


cdef void _chunk_sum(const floating* x, const double* w, Py_ssize_t start,
                     Py_ssize_t stop, int C, int P, const double* center,
                     double* out) noexcept nogil:
    """out[c] = sum over rows [start, stop) of w_i * sum_p (x - center_c)^k,
    k = 1 without ``center`` and 2 with it; out is overwritten."""
    cdef Py_ssize_t i
    cdef int c
    cdef double wi, d
    cdef const floating* row
    for c in range(C):
        out[c] = 0.0
    for i in range(start, stop):
        wi = _weight(w, i)
        row = x + i * C * P
        if P == 1:  # dense features: independent sums along the row
            if center == NULL:
                for c in range(C):
                    out[c] += wi * row[c]
            else:
                for c in range(C):
                    d = row[c] - center[c]
                    out[c] += wi * (d * d)
        else:
            for c in range(C):
                out[c] += wi * _sum(row + c * P, P,
                                    0.0 if center == NULL else center[c], center != NULL)


cdef void _add_chunks(const double[:, ::1] partial, int n_chunks, double factor,
                      double* out) noexcept nogil:
    """out[c] = factor * sum of partial[k, c] over k = 0, 1, ... in order."""
    cdef int c, k
    cdef double acc
    for c in range(partial.shape[1]):
        acc = 0.0
        for k in range(n_chunks):
            acc += partial[k, c]
        out[c] = factor * acc


def channel_moments(const floating[:, :, ::1] X, const double[::1] weights,
                    double total_weight, double[::1] mean, double[::1] var,
                    double[:, ::1] partial, int n_threads):
    """Weighted mean and biased variance of each channel (two passes).

    ``mean_c = sum_i w_i sum_p x[i, c, p] / (W P)`` and
    ``var_c = sum_i w_i sum_p (x[i, c, p] - mean_c)^2 / (W P)``.

    Parameters
    ----------
    X : (m, C, P)
    weights : (m,) float64 row weights, or None for ones
    total_weight : W, the sum of the weights (m without them), > 0
    mean, var : (C,) float64 outputs
    partial : (ceil(m / CHUNK), C) float64 scratch
    n_threads : int
    """
    cdef Py_ssize_t m = X.shape[0]
    cdef int C = X.shape[1], P = X.shape[2]
    cdef int n_chunks = <int> ((m + CHUNK - 1) // CHUNK)
    cdef int k, t = 0
    cdef const double* w = NULL
    if weights is not None:
        w = &weights[0]
    cdef double factor = 1.0 / (total_weight * P)
    with nogil:
        with parallel(num_threads=n_threads):
            t = threadid()
            for k in prange(n_chunks, schedule='static'):
                note_thread(CHANNEL_MOMENTS, t)
                _chunk_sum(&X[0, 0, 0], w, <Py_ssize_t> k * CHUNK,
                           min(<Py_ssize_t> (k + 1) * CHUNK, m), C, P, NULL, &partial[k, 0])
        _add_chunks(partial, n_chunks, factor, &mean[0])
        with parallel(num_threads=n_threads):
            t = threadid()
            for k in prange(n_chunks, schedule='static'):
                note_thread(CHANNEL_MOMENTS, t)
                _chunk_sum(&X[0, 0, 0], w, <Py_ssize_t> k * CHUNK,
                           min(<Py_ssize_t> (k + 1) * CHUNK, m), C, P, &mean[0],
                           &partial[k, 0])
        _add_chunks(partial, n_chunks, factor, &var[0])


cdef void _normalize_row(const floating* x, floating* y, floating* xhat, int C, int P,
                         const double* mean, const double* inv_std, const double* gamma,
                         const double* beta) noexcept nogil:
    # Per-channel values in locals (stores to y may alias them otherwise) and
    # Py_ssize_t positions (see _lanes): the inner loop vectorizes.
    cdef int c
    cdef Py_ssize_t p, o, j
    cdef double h, mu, s, g, b
    if P == 1:  # dense features: one loop along the row
        for j in range(C):
            h = (x[j] - mean[j]) * inv_std[j]
            xhat[j] = <floating> h
            y[j] = <floating> (gamma[j] * h + beta[j])
        return
    for c in range(C):
        mu, s, g, b = mean[c], inv_std[c], gamma[c], beta[c]
        o = <Py_ssize_t> c * P
        for p in range(P):
            h = (x[o + p] - mu) * s
            xhat[o + p] = <floating> h
            y[o + p] = <floating> (g * h + b)


def batchnorm_normalize(const floating[:, :, ::1] X, const double[::1] mean,
                        const double[::1] inv_std, const double[::1] gamma,
                        const double[::1] beta, floating[:, :, ::1] Y,
                        floating[:, :, ::1] Xhat, int n_threads):
    """Training pass: ``xhat = (x - mean_c) inv_std_c``, ``y = gamma_c xhat + beta_c``.

    Parameters
    ----------
    X : (m, C, P)
    mean, inv_std, gamma, beta : (C,) float64
    Y, Xhat : (m, C, P) outputs
    n_threads : int
    """
    cdef Py_ssize_t m = X.shape[0], i, size = <Py_ssize_t> X.shape[1] * X.shape[2]
    cdef int C = X.shape[1], P = X.shape[2]
    cdef int t = 0
    if m == 0 or size == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(m, schedule='static'):
            note_thread(BATCHNORM_NORMALIZE, t)
            _normalize_row(&X[0, 0, 0] + i * size, &Y[0, 0, 0] + i * size,
                           &Xhat[0, 0, 0] + i * size, C, P, &mean[0], &inv_std[0],
                           &gamma[0], &beta[0])


cdef void _affine_row(const floating* x, floating* y, int C, int P, const double* a,
                      const double* b) noexcept nogil:
    cdef int c
    cdef Py_ssize_t p, o, j
    cdef double ac, bc
    if P == 1:
        for j in range(C):
            y[j] = <floating> (x[j] * a[j] + b[j])
        return
    for c in range(C):
        ac, bc = a[c], b[c]
        o = <Py_ssize_t> c * P
        for p in range(P):
            y[o + p] = <floating> (x[o + p] * ac + bc)


def channel_affine(const floating[:, :, ::1] X, const double[::1] scale,
                   const double[::1] shift, floating[:, :, ::1] Y, int n_threads):
    """``y = x scale_c + shift_c`` elementwise (inference batch normalization).

    Each output depends on its own input alone, computed in float64.

    Parameters
    ----------
    X, Y : (m, C, P); Y may be X itself
    scale, shift : (C,) float64
    n_threads : int
    """
    cdef Py_ssize_t m = X.shape[0], i, size = <Py_ssize_t> X.shape[1] * X.shape[2]
    cdef int C = X.shape[1], P = X.shape[2]
    cdef int t = 0
    if m == 0 or size == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(m, schedule='static'):
            note_thread(CHANNEL_AFFINE, t)
            _affine_row(&X[0, 0, 0] + i * size, &Y[0, 0, 0] + i * size, C, P,
                        &scale[0], &shift[0])


cdef inline void _grad_run(const floating* dy, const floating* xhat, int n,
                           double* sum_dy, double* sum_dy_xhat) noexcept nogil:
    """sum_p dy and sum_p dy * xhat, in lanes (see _lanes)."""
    cdef double a[8]
    cdef double b[8]
    cdef double g, a_tail = 0.0, b_tail = 0.0
    cdef int l
    cdef Py_ssize_t p, body = n - n % 8  # not int: see _lanes
    for l in range(8):
        a[l] = 0.0
        b[l] = 0.0
    for p in range(0, body, 8):
        for l in range(8):
            g = dy[p + l]
            a[l] += g
            b[l] += g * xhat[p + l]
    for p in range(body, n):
        g = dy[p]
        a_tail += g
        b_tail += g * xhat[p]
    sum_dy[0] = _lanes(a) + a_tail
    sum_dy_xhat[0] = _lanes(b) + b_tail


cdef void _chunk_grad_sums(const floating* dy, const floating* xhat, const double* w,
                           Py_ssize_t start, Py_ssize_t stop, int C, int P,
                           double* s1, double* s2) noexcept nogil:
    """s1[c] = sum w_i sum_p dy, s2[c] = sum w_i sum_p dy * xhat over the rows."""
    cdef Py_ssize_t i, o
    cdef int c
    cdef double wi, g, a, b
    for c in range(C):
        s1[c] = 0.0
        s2[c] = 0.0
    for i in range(start, stop):
        wi = _weight(w, i)
        if P == 1:  # dense features: independent sums along the row
            for c in range(C):
                g = dy[i * C + c]
                s1[c] += wi * g
                s2[c] += wi * (g * xhat[i * C + c])
            continue
        for c in range(C):
            o = (i * C + c) * P
            _grad_run(dy + o, xhat + o, P, &a, &b)
            s1[c] += wi * a
            s2[c] += wi * b


def batchnorm_grad_sums(const floating[:, :, ::1] dY, const floating[:, :, ::1] Xhat,
                        const double[::1] weights, double[::1] sum_dy,
                        double[::1] sum_dy_xhat, double[:, ::1] partial1,
                        double[:, ::1] partial2, int n_threads):
    """Per-channel ``sum_i w_i sum_p dy`` and ``sum_i w_i sum_p dy * xhat``.

    These are beta's and gamma's gradients (before the batch scale) and the
    two sums the input gradient needs.

    Parameters
    ----------
    dY, Xhat : (m, C, P)
    weights : (m,) float64 row weights, or None for ones
    sum_dy, sum_dy_xhat : (C,) float64 outputs
    partial1, partial2 : (ceil(m / CHUNK), C) float64 scratch
    n_threads : int
    """
    cdef Py_ssize_t m = dY.shape[0]
    cdef int C = dY.shape[1], P = dY.shape[2]
    cdef int n_chunks = <int> ((m + CHUNK - 1) // CHUNK)
    cdef int k, t = 0
    cdef const double* w = NULL
    if weights is not None:
        w = &weights[0]
    with nogil:
        with parallel(num_threads=n_threads):
            t = threadid()
            for k in prange(n_chunks, schedule='static'):
                note_thread(BATCHNORM_GRAD_SUMS, t)
                _chunk_grad_sums(&dY[0, 0, 0], &Xhat[0, 0, 0], w, <Py_ssize_t> k * CHUNK,
                                 min(<Py_ssize_t> (k + 1) * CHUNK, m), C, P,
                                 &partial1[k, 0], &partial2[k, 0])
        _add_chunks(partial1, n_chunks, 1.0, &sum_dy[0])
        _add_chunks(partial2, n_chunks, 1.0, &sum_dy_xhat[0])


cdef void _input_grad_row(const floating* dy, const floating* xhat, floating* dx, int C,
                          int P, const double* coef, const double* s1, const double* s2,
                          double r) noexcept nogil:
    cdef int c
    cdef Py_ssize_t p, o, j
    cdef double k, a, b
    if P == 1:
        for j in range(C):
            dx[j] = <floating> (coef[j] * (dy[j] - r * (s1[j] + xhat[j] * s2[j])))
        return
    for c in range(C):
        k, a, b = coef[c], r * s1[c], r * s2[c]
        o = <Py_ssize_t> c * P
        for p in range(P):
            dx[o + p] = <floating> (k * (dy[o + p] - (a + xhat[o + p] * b)))


def batchnorm_input_grad(const floating[:, :, ::1] dY, const floating[:, :, ::1] Xhat,
                         const double[::1] coef, const double[::1] sum_dy,
                         const double[::1] sum_dy_xhat, const double[::1] row_factor,
                         floating[:, :, ::1] dX, int n_threads):
    """``dx = coef_c (dy - r_i (S1_c + xhat S2_c))`` elementwise.

    With ``coef = gamma inv_std`` and ``r_i`` the row's share of the
    statistics over its loss weight, this is the input gradient of batch
    normalization (see :func:`skdl._ops.batchnorm_backward`).

    Parameters
    ----------
    dY, Xhat : (m, C, P)
    coef, sum_dy, sum_dy_xhat : (C,) float64
    row_factor : (m,) float64, r_i
    dX : (m, C, P) output
    n_threads : int
    """
    cdef Py_ssize_t m = dY.shape[0], i, size = <Py_ssize_t> dY.shape[1] * dY.shape[2]
    cdef int C = dY.shape[1], P = dY.shape[2]
    cdef int t = 0
    if m == 0 or size == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(m, schedule='static'):
            note_thread(BATCHNORM_INPUT_GRAD, t)
            _input_grad_row(&dY[0, 0, 0] + i * size, &Xhat[0, 0, 0] + i * size,
                            &dX[0, 0, 0] + i * size, C, P, &coef[0], &sum_dy[0],
                            &sum_dy_xhat[0], row_factor[i])


cdef extern from "_norm_loops.h" nogil:
    # One name for float and double: x, y, dx, dy share the data's dtype.
    void skdl_prelu(const void* x, void* y, int n, double a)
    void skdl_prelu_grad(const void* x, const void* dy, void* dx, int n, double a)
    # sum_p dy_p min(x_p, 0): each product in the input's precision, the sum
    # in float64 lanes.
    double skdl_negative_dot(const void* x, const void* dy, int n)


cdef inline void _prelu_features(const floating* x, floating* y, int C,
                                 const double* alpha) noexcept nogil:
    """One position per channel (dense features): one loop along the row."""
    cdef int c
    cdef floating v, pos, neg
    for c in range(C):
        v = x[c]
        pos = v if v > 0 else 0
        neg = 0 if v > 0 else v
        y[c] = pos + (<floating> alpha[c]) * neg


cdef void _prelu_row(const floating* x, floating* y, int C, int P,
                     const double* alpha) noexcept nogil:
    cdef int c
    if P == 1:
        _prelu_features(x, y, C, alpha)
        return
    for c in range(C):
        skdl_prelu(x + c * P, y + c * P, P, <floating> alpha[c])


def prelu_forward(const floating[:, :, ::1] X, const double[::1] alpha,
                  floating[:, :, ::1] Y, int n_threads):
    """``y = x`` where ``x > 0``, else ``alpha_c x``.

    Parameters
    ----------
    X, Y : (m, C, P)
    alpha : (C,) float64, one slope per channel
    n_threads : int
    """
    cdef Py_ssize_t m = X.shape[0], i, size = <Py_ssize_t> X.shape[1] * X.shape[2]
    cdef int C = X.shape[1], P = X.shape[2]
    cdef int t = 0
    if m == 0 or size == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(m, schedule='static'):
            note_thread(PRELU_FORWARD, t)
            _prelu_row(&X[0, 0, 0] + i * size, &Y[0, 0, 0] + i * size, C, P, &alpha[0])


cdef inline void _prelu_features_grad(const floating* x, const floating* dy,
                                      floating* dx, int C, const double* alpha, double wi,
                                      double* out) noexcept nogil:
    """One position per channel: dx along the row and out[c] += wi dy min(x, 0)."""
    cdef int c
    cdef floating v, g, pos, neg
    for c in range(C):
        v = x[c]
        g = dy[c]
        pos = g if v > 0 else 0
        neg = 0 if v > 0 else g
        if dx != NULL:
            dx[c] = pos + (<floating> alpha[c]) * neg
        out[c] += wi * <double> (neg * v)


cdef void _prelu_chunk(const floating* x, const floating* dy, floating* dx,
                       const double* w, Py_ssize_t start, Py_ssize_t stop, int C, int P,
                       const double* alpha, double* out) noexcept nogil:
    """Input gradient of rows [start, stop) (if ``dx``) and
    out[c] = sum w_i sum_{p: x <= 0} dy * x, the slope's gradient."""
    cdef Py_ssize_t i, o
    cdef int c
    cdef double wi
    for c in range(C):
        out[c] = 0.0
    for i in range(start, stop):
        wi = _weight(w, i)
        if P == 1:
            _prelu_features_grad(x + i * C, dy + i * C, NULL if dx == NULL else dx + i * C,
                                 C, alpha, wi, out)
            continue
        for c in range(C):
            o = (i * C + c) * P
            if dx != NULL:
                skdl_prelu_grad(x + o, dy + o, dx + o, P, <floating> alpha[c])
            out[c] += wi * skdl_negative_dot(x + o, dy + o, P)


def prelu_backward(const floating[:, :, ::1] X, const floating[:, :, ::1] dY,
                   const double[::1] alpha, const double[::1] weights, double scale,
                   double[::1] dalpha, double[:, ::1] partial, floating[:, :, ::1] dX,
                   int n_threads):
    """Slope gradient ``scale sum_i w_i sum_{x <= 0} dy x`` and, optionally,
    the input gradient ``dy`` (x > 0) or ``alpha_c dy``.

    Parameters
    ----------
    X, dY : (m, C, P)
    alpha : (C,) float64
    weights : (m,) float64 row weights, or None for ones
    scale : float
    dalpha : (C,) float64 output
    partial : (ceil(m / CHUNK), C) float64 scratch
    dX : (m, C, P) output, or None to skip the input gradient
    n_threads : int
    """
    cdef Py_ssize_t m = X.shape[0]
    cdef int C = X.shape[1], P = X.shape[2]
    cdef int n_chunks = <int> ((m + CHUNK - 1) // CHUNK)
    cdef int k, t = 0
    cdef const double* w = NULL
    if weights is not None:
        w = &weights[0]
    cdef floating* dx = NULL
    if dX is not None and dX.shape[0] > 0:
        dx = &dX[0, 0, 0]
    with nogil:
        with parallel(num_threads=n_threads):
            t = threadid()
            for k in prange(n_chunks, schedule='static'):
                note_thread(PRELU_BACKWARD, t)
                _prelu_chunk(&X[0, 0, 0], &dY[0, 0, 0], dx, w, <Py_ssize_t> k * CHUNK,
                             min(<Py_ssize_t> (k + 1) * CHUNK, m), C, P, &alpha[0],
                             &partial[k, 0])
        _add_chunks(partial, n_chunks, scale, &dalpha[0])
