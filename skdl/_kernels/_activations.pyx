"""Activation functions, forward and backward, row by row over a 2-D array.

The activation is chosen once per row (``kind``), so each inner loop is a
plain elementwise loop the compiler can vectorize.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log1p, tanh, fabs

# Keep in step with skdl._ops.ACTIVATIONS.
cdef enum:
    LINEAR = 0
    RELU = 1
    LEAKY_RELU = 2
    ELU = 3
    TANH = 4
    SIGMOID = 5
    SOFTPLUS = 6
    SOFTSIGN = 7
    ELLIOT = 8
    SYMMETRIC_ELLIOT = 9
    SOFTMAX = 10


cdef inline double _sigmoid(double x) noexcept nogil:
    # Two branches so exp never overflows.
    cdef double e
    if x >= 0:
        return 1.0 / (1.0 + exp(-x))
    e = exp(x)
    return e / (1.0 + e)


cdef void _forward_row(int kind, double alpha, const floating* x, floating* y,
                       int m) noexcept nogil:
    cdef int j
    cdef double v, mx, total
    if kind == LINEAR:
        for j in range(m):
            y[j] = x[j]
    elif kind == RELU:
        for j in range(m):
            y[j] = x[j] if x[j] > 0 else 0
    elif kind == LEAKY_RELU:
        for j in range(m):
            y[j] = x[j] if x[j] > 0 else <floating> (alpha * x[j])
    elif kind == ELU:
        for j in range(m):
            y[j] = x[j] if x[j] > 0 else <floating> (alpha * (exp(x[j]) - 1.0))
    elif kind == TANH:
        for j in range(m):
            y[j] = <floating> tanh(x[j])
    elif kind == SIGMOID:
        for j in range(m):
            y[j] = <floating> _sigmoid(x[j])
    elif kind == SOFTPLUS:
        for j in range(m):
            v = x[j]
            y[j] = <floating> ((v if v > 0 else 0.0) + log1p(exp(-fabs(v))))
    elif kind == SOFTSIGN or kind == SYMMETRIC_ELLIOT:
        for j in range(m):
            y[j] = <floating> (x[j] / (1.0 + fabs(x[j])))
    elif kind == ELLIOT:
        for j in range(m):
            y[j] = <floating> (0.5 * x[j] / (1.0 + fabs(x[j])) + 0.5)
    elif kind == SOFTMAX:
        mx = x[0]
        for j in range(1, m):
            if x[j] > mx:
                mx = x[j]
        total = 0.0
        for j in range(m):
            total = total + exp(x[j] - mx)
        for j in range(m):
            y[j] = <floating> (exp(x[j] - mx) / total)


cdef void _backward_row(int kind, double alpha, const floating* x, const floating* y,
                        const floating* dy, floating* dx, int m) noexcept nogil:
    cdef int j
    cdef double d, s, inner
    if kind == LINEAR:
        for j in range(m):
            dx[j] = dy[j]
    elif kind == RELU:
        for j in range(m):
            dx[j] = dy[j] if x[j] > 0 else 0
    elif kind == LEAKY_RELU:
        for j in range(m):
            dx[j] = dy[j] if x[j] > 0 else <floating> (alpha * dy[j])
    elif kind == ELU:
        for j in range(m):
            dx[j] = dy[j] if x[j] > 0 else <floating> (dy[j] * alpha * exp(x[j]))
    elif kind == TANH:
        for j in range(m):
            dx[j] = <floating> (dy[j] * (1.0 - <double> y[j] * y[j]))
    elif kind == SIGMOID:
        for j in range(m):
            dx[j] = <floating> (dy[j] * <double> y[j] * (1.0 - y[j]))
    elif kind == SOFTPLUS:
        for j in range(m):
            dx[j] = <floating> (dy[j] * _sigmoid(x[j]))
    elif kind == SOFTSIGN or kind == SYMMETRIC_ELLIOT:
        for j in range(m):
            d = 1.0 + fabs(x[j])
            dx[j] = <floating> (dy[j] / (d * d))
    elif kind == ELLIOT:
        for j in range(m):
            d = 1.0 + fabs(x[j])
            dx[j] = <floating> (0.5 * dy[j] / (d * d))
    elif kind == SOFTMAX:
        inner = 0.0
        for j in range(m):
            inner = inner + <double> dy[j] * y[j]
        for j in range(m):
            dx[j] = <floating> (y[j] * (dy[j] - inner))


def activation_forward(int kind, double alpha, const floating[:, ::1] X,
                       floating[:, ::1] Y, int n_threads):
    """Y = f(X) for the activation ``kind``; X and Y are (n, m)."""
    cdef int n = X.shape[0]
    cdef int m = X.shape[1]
    cdef int i
    if n == 0 or m == 0:
        return
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            _forward_row(kind, alpha, &X[i, 0], &Y[i, 0], m)


def activation_backward(int kind, double alpha, const floating[:, ::1] X,
                        const floating[:, ::1] Y, const floating[:, ::1] dY,
                        floating[:, ::1] dX, int n_threads):
    """dX = dY * f'(X), given X (n, m), Y = f(X) and dY, all (n, m)."""
    cdef int n = X.shape[0]
    cdef int m = X.shape[1]
    cdef int i
    if n == 0 or m == 0:
        return
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            _backward_row(kind, alpha, &X[i, 0], &Y[i, 0], &dY[i, 0], &dX[i, 0], m)
