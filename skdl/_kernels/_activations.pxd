# Row-wise activation functions, shared with the dense kernels that fuse them.
from cython cimport floating

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

from libc.math cimport exp


cdef inline double sigmoid(double x) noexcept nogil:
    # Two branches so exp never overflows.
    cdef double e
    if x >= 0:
        return 1.0 / (1.0 + exp(-x))
    e = exp(x)
    return e / (1.0 + e)


cdef void forward_row(int kind, double alpha, const floating* x, floating* y,
                      int m) noexcept nogil


cdef void backward_row(int kind, double alpha, const floating* y,
                       const floating* dy, floating* dx, int m) noexcept nogil
