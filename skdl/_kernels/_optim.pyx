"""Optimizer steps as single fused loops over the flat parameter buffer.

The buffer is cut into fixed chunks shared out by ``prange``; each chunk is a
plain C loop (``_optim_loops.h``) in the buffer's own precision, vectorized by
the compiler for AVX2 and for the baseline ISA. Every element is updated independently, so the result
does not depend on the number of threads.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, pow

cdef extern from "_optim_loops.h" nogil:
    void skdl_adam_float(float* p, const float* g, float* m, float* v, Py_ssize_t n,
                         float lr_t, float b1, float b2, float eps)
    void skdl_adam_double(double* p, const double* g, double* m, double* v,
                          Py_ssize_t n, double lr_t, double b1, double b2, double eps)
    void skdl_sgd_float(float* p, const float* g, float* vel, Py_ssize_t n,
                        float lr, float mu, int nesterov)
    void skdl_sgd_double(double* p, const double* g, double* vel, Py_ssize_t n,
                         double lr, double mu, int nesterov)

cdef Py_ssize_t CHUNK = 16384


cdef inline void _sgd_chunk(floating* p, const floating* g, floating* vel,
                            Py_ssize_t n, double lr, double mu,
                            bint nesterov) noexcept nogil:
    if floating is float:
        skdl_sgd_float(p, g, vel, n, <float> lr, <float> mu, nesterov)
    else:
        skdl_sgd_double(p, g, vel, n, lr, mu, nesterov)


cdef inline void _adam_chunk(floating* p, const floating* g, floating* m, floating* v,
                             Py_ssize_t n, double lr_t, double b1, double b2,
                             double eps) noexcept nogil:
    if floating is float:
        skdl_adam_float(p, g, m, v, n, <float> lr_t, <float> b1, <float> b2,
                        <float> eps)
    else:
        skdl_adam_double(p, g, m, v, n, lr_t, b1, b2, eps)


def sgd_update(floating[::1] params, const floating[::1] grads,
               floating[::1] velocity, double learning_rate, double momentum,
               bint nesterov, int n_threads):
    """One SGD step with optional (Nesterov) momentum, in place.

    velocity = momentum * velocity - learning_rate * grad
    params += momentum * velocity - learning_rate * grad   (Nesterov)
    params += velocity                                      (otherwise)

    Parameters
    ----------
    params, grads, velocity : (n_params,) arrays
    learning_rate, momentum : float
    nesterov : bool
    n_threads : int
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, start
    if n == 0:
        return
    with nogil:
        for c in prange(n_chunks, schedule='static', num_threads=n_threads):
            start = c * CHUNK
            _sgd_chunk(&params[start], &grads[start], &velocity[start],
                       min(CHUNK, n - start), learning_rate, momentum, nesterov)


def adam_update(floating[::1] params, const floating[::1] grads,
                floating[::1] m, floating[::1] v, double learning_rate,
                double beta1, double beta2, double epsilon, long step,
                int n_threads):
    """One Adam step (Kingma & Ba, 2014) in place; ``step`` counts from 1.

    The bias corrections are folded into the step size, as in scikit-learn's
    MLP: lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t).

    Parameters
    ----------
    params, grads, m, v : (n_params,) arrays
    learning_rate, beta1, beta2, epsilon : float
    step : int
    n_threads : int
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, start
    cdef double lr_t = (learning_rate * sqrt(1.0 - pow(beta2, step))
                        / (1.0 - pow(beta1, step)))
    if n == 0:
        return
    with nogil:
        for c in prange(n_chunks, schedule='static', num_threads=n_threads):
            start = c * CHUNK
            _adam_chunk(&params[start], &grads[start], &m[start], &v[start],
                        min(CHUNK, n - start), lr_t, beta1, beta2, epsilon)
