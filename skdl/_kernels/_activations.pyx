"""Activation functions, forward and backward, row by row over a 2-D array.

The activation is chosen once per row (``kind``), so each inner loop is a
plain elementwise loop the compiler can vectorize. The backward pass needs
only the output Y = f(X): every derivative here can be written in terms of
f(x), so layers keep one array per activation instead of two, and the dense
kernels can apply the activation in place. Kinds are numbered in
``_activations.pxd``, in step with ``skdl._ops.ACTIVATIONS``.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, expm1, log1p, tanh, fabs

from ._openmp cimport ACTIVATION_BACKWARD, ACTIVATION_FORWARD, note_thread


cdef extern from "_fastmath.h" nogil:
    void skdl_sigmoid_f32(const float* x, float* y, int m)
    void skdl_tanh_f32(const float* x, float* y, int m)

cdef void forward_row(int kind, double alpha, const floating* x, floating* y,
                      int m) noexcept nogil:
    """y = f(x) over one row of m values; y may be x (in place)."""
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
        if floating is float:  # vectorized (see _fastmath.h)
            skdl_tanh_f32(x, y, m)
        else:
            for j in range(m):
                y[j] = tanh(x[j])
    elif kind == SIGMOID:
        if floating is float:
            skdl_sigmoid_f32(x, y, m)
        else:
            for j in range(m):
                y[j] = sigmoid(x[j])
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


cdef void backward_row(int kind, double alpha, const floating* y,
                        const floating* dy, floating* dx, int m) noexcept nogil:
    """dx = dy * f'(x) over one row, with f'(x) written in terms of y = f(x).

    dy[j] and y[j] are read before the comparison: a load inside a branch
    keeps GCC from turning it into a select, and a branch on the sign of
    random activations mispredicts half the time (10x slower).
    """
    cdef int j
    cdef double d, inner
    cdef floating g, v
    if kind == LINEAR:
        for j in range(m):
            dx[j] = dy[j]
    elif kind == RELU:
        for j in range(m):
            g = dy[j]
            dx[j] = g if y[j] > 0 else 0
    elif kind == LEAKY_RELU:
        for j in range(m):
            g = dy[j]
            dx[j] = g if y[j] > 0 else <floating> (alpha * g)
    elif kind == ELU:
        # x <= 0: y = alpha (e^x - 1), so f'(x) = alpha e^x = y + alpha.
        for j in range(m):
            g = dy[j]
            v = y[j]
            dx[j] = g if v > 0 else <floating> (g * (<double> v + alpha))
    elif kind == TANH:
        # In the array's own precision: float32 stays in float32 lanes.
        for j in range(m):
            v = y[j]
            dx[j] = dy[j] * (1 - v * v)
    elif kind == SIGMOID:
        for j in range(m):
            v = y[j]
            dx[j] = dy[j] * v * (1 - v)
    elif kind == SOFTPLUS:
        # sigmoid(x) = 1 - exp(-softplus(x)).
        for j in range(m):
            dx[j] = <floating> (-dy[j] * expm1(-<double> y[j]))
    elif kind == SOFTSIGN or kind == SYMMETRIC_ELLIOT:
        # 1 / (1 + |x|) = 1 - |y|.
        for j in range(m):
            d = 1.0 - fabs(y[j])
            dx[j] = <floating> (dy[j] * d * d)
    elif kind == ELLIOT:
        # y = (s + 1) / 2 with s the symmetric Elliot of x.
        for j in range(m):
            d = 1.0 - fabs(2.0 * y[j] - 1.0)
            dx[j] = <floating> (0.5 * dy[j] * d * d)
    elif kind == SOFTMAX:
        inner = 0.0
        for j in range(m):
            inner = inner + <double> dy[j] * y[j]
        for j in range(m):
            dx[j] = <floating> (y[j] * (dy[j] - inner))


# Elements per unit of parallel work for elementwise activations: rows of a
# convolution's output are short (its width), and a call per row would cost
# more than the arithmetic.
cdef Py_ssize_t FLAT_BLOCK = 8192


def activation_forward(int kind, double alpha, const floating[:, ::1] X,
                       floating[:, ::1] Y, int n_threads):
    """Y = f(X) for the activation ``kind``; X and Y are (n, m).

    Softmax works row by row; every other activation is elementwise and runs
    over the flat arrays in fixed blocks.
    """
    cdef int n = X.shape[0]
    cdef int m = X.shape[1]
    cdef int i, t = 0
    cdef Py_ssize_t size = <Py_ssize_t> n * m, b, start
    cdef Py_ssize_t n_blocks = (size + FLAT_BLOCK - 1) // FLAT_BLOCK
    if n == 0 or m == 0:
        return
    with nogil:
        if kind == SOFTMAX:
            with parallel(num_threads=n_threads):
                t = threadid()
                for i in prange(n, schedule='static'):
                    note_thread(ACTIVATION_FORWARD, t)
                    forward_row(kind, alpha, &X[i, 0], &Y[i, 0], m)
        else:
            with parallel(num_threads=n_threads):
                t = threadid()
                for b in prange(n_blocks, schedule='static'):
                    note_thread(ACTIVATION_FORWARD, t)
                    start = b * FLAT_BLOCK
                    forward_row(kind, alpha, &X[0, 0] + start, &Y[0, 0] + start,
                                <int> min(FLAT_BLOCK, size - start))


def activation_backward(int kind, double alpha, const floating[:, ::1] Y,
                        const floating[:, ::1] dY, floating[:, ::1] dX, int n_threads):
    """dX = dY * f'(X), given only Y = f(X) and dY, all (n, m).

    Blocks as in :func:`activation_forward`; dX may be dY itself (in place).
    """
    cdef int n = Y.shape[0]
    cdef int m = Y.shape[1]
    cdef int i, t = 0
    cdef Py_ssize_t size = <Py_ssize_t> n * m, b, start
    cdef Py_ssize_t n_blocks = (size + FLAT_BLOCK - 1) // FLAT_BLOCK
    if n == 0 or m == 0:
        return
    with nogil:
        if kind == SOFTMAX:
            with parallel(num_threads=n_threads):
                t = threadid()
                for i in prange(n, schedule='static'):
                    note_thread(ACTIVATION_BACKWARD, t)
                    backward_row(kind, alpha, &Y[i, 0], &dY[i, 0], &dX[i, 0], m)
        else:
            with parallel(num_threads=n_threads):
                t = threadid()
                for b in prange(n_blocks, schedule='static'):
                    note_thread(ACTIVATION_BACKWARD, t)
                    start = b * FLAT_BLOCK
                    backward_row(kind, alpha, &Y[0, 0] + start, &dY[0, 0] + start,
                                  &dX[0, 0] + start, <int> min(FLAT_BLOCK, size - start))
