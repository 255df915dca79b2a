"""Optimizer steps as single fused loops over the flat parameter buffer.

Every element is updated independently, so the result does not depend on the
number of threads.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt


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
    cdef Py_ssize_t i
    cdef double v, g
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            g = grads[i]
            v = momentum * velocity[i] - learning_rate * g
            velocity[i] = <floating> v
            if nesterov:
                params[i] = <floating> (params[i] + momentum * v - learning_rate * g)
            else:
                params[i] = <floating> (params[i] + v)


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
    cdef Py_ssize_t i
    cdef double lr_t = learning_rate * sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)
    cdef double g, mi, vi
    with nogil:
        for i in prange(n, schedule='static', num_threads=n_threads):
            g = grads[i]
            mi = beta1 * m[i] + (1.0 - beta1) * g
            vi = beta2 * v[i] + (1.0 - beta2) * g * g
            m[i] = <floating> mi
            v[i] = <floating> vi
            params[i] = <floating> (params[i] - lr_t * m[i] / (sqrt(v[i]) + epsilon))
