"""Optimizer steps as single fused loops over the flat parameter buffer.

The buffer is cut into fixed chunks shared out by ``prange``; each chunk is a
plain C loop (``_optim_loops.h``) in the buffer's own precision, vectorized by
the compiler for AVX2 and for the baseline ISA. Every element is updated
independently, so the result does not depend on the number of threads.

The two reductions (the gradient's squared norm for ``clipnorm`` and the L1/L2
penalty) sum each chunk in float64 in fixed lanes, store one partial per chunk
and add the partials in chunk order after the parallel loop: the chunks, not
the threads, fix the summation order, so one thread and two agree bit for bit.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdlib cimport free, malloc

from ._openmp cimport ADD_PENALTY, SUM_OF_SQUARES, UPDATE, note_thread

cdef extern from "_optim_loops.h" nogil:
    # One name for float and double (the arrays share the parameters' dtype;
    # the scalars are converted to it): returns 1 when an updated parameter
    # is not finite. The common trailing arguments: mask (or NULL), n, the
    # clipnorm factor gs, the clip value cv and lrwd (see _optim_loops.h).
    int skdl_sgd(void* p, const void* g, void* vel, double lr, double mu, int nesterov,
                 const void* mask, Py_ssize_t n, double gs, double cv, double lrwd)
    int skdl_sgd_plain(void* p, const void* g, double lr, const void* mask, Py_ssize_t n,
                       double gs, double cv, double lrwd)
    int skdl_adagrad(void* p, const void* g, void* acc, double lr, double eps,
                     const void* mask, Py_ssize_t n, double gs, double cv, double lrwd)
    int skdl_rmsprop(void* p, const void* g, void* ms, double lr, double rho, double eps,
                     const void* mask, Py_ssize_t n, double gs, double cv, double lrwd)
    int skdl_rmsprop_momentum(void* p, const void* g, void* ms, void* buf, double lr,
                              double rho, double eps, double mom, const void* mask,
                              Py_ssize_t n, double gs, double cv, double lrwd)
    int skdl_adadelta(void* p, const void* g, void* eg, void* ed, double lr, double rho,
                      double eps, const void* mask, Py_ssize_t n, double gs, double cv,
                      double lrwd)
    int skdl_adam(void* p, const void* g, void* m, void* v, double lr_t, double b1,
                  double b2, double eps, const void* mask, Py_ssize_t n, double gs,
                  double cv, double lrwd)
    int skdl_adamax(void* p, const void* g, void* m, void* u, double lr_t, double b1,
                    double b2, double eps, const void* mask, Py_ssize_t n, double gs,
                    double cv, double lrwd)
    double skdl_sumsq(const void* g, Py_ssize_t n, double cv, double inv)
    double skdl_penalty(const void* p, void* g, const void* l1, const void* l2,
                        Py_ssize_t n)

cdef Py_ssize_t CHUNK = 16384

# Update rules; keep in step with the kinds in skdl._ops (OPTIMIZER_KINDS).
# h1, h2, h3 and flag mean, per kind:
#   SGD               h1 momentum, flag nesterov                 (s1 velocity)
#   SGD_PLAIN         -                                          (no state)
#   ADAGRAD           h1 epsilon                                 (s1 accumulator)
#   RMSPROP           h1 rho, h2 epsilon                         (s1 mean square)
#   RMSPROP_MOMENTUM  h1 rho, h2 epsilon, h3 momentum            (s1, s2 momentum)
#   ADADELTA          h1 rho, h2 epsilon                 (s1 mean g^2, s2 mean dx^2)
#   ADAM, ADAMAX      h1 beta1, h2 beta2, h3 epsilon; lr is the bias-corrected
#                     step size                                  (s1 m, s2 v or u)
cdef enum:
    SGD = 0
    SGD_PLAIN = 1
    ADAGRAD = 2
    RMSPROP = 3
    RMSPROP_MOMENTUM = 4
    ADADELTA = 5
    ADAM = 6
    ADAMAX = 7


cdef int _update_chunk(int kind, Py_ssize_t start, Py_ssize_t n, floating* p,
                       const floating* g, floating* s1, floating* s2,
                       const floating* mask, double lr, double h1, double h2,
                       double h3, int flag, double gs, double cv,
                       double lrwd) noexcept nogil:
    """Update elements start .. start+n-1 of the buffers; 1 when one of the
    new values is not finite, else 0. Absent buffers are NULL."""
    p += start
    g += start
    if s1 != NULL:
        s1 += start
    if s2 != NULL:
        s2 += start
    if mask != NULL:
        mask += start
    if kind == SGD:
        return skdl_sgd(p, g, s1, lr, h1, flag, mask, n, gs, cv, lrwd)
    if kind == SGD_PLAIN:
        return skdl_sgd_plain(p, g, lr, mask, n, gs, cv, lrwd)
    if kind == ADAGRAD:
        return skdl_adagrad(p, g, s1, lr, h1, mask, n, gs, cv, lrwd)
    if kind == RMSPROP:
        return skdl_rmsprop(p, g, s1, lr, h1, h2, mask, n, gs, cv, lrwd)
    if kind == RMSPROP_MOMENTUM:
        return skdl_rmsprop_momentum(p, g, s1, s2, lr, h1, h2, h3, mask, n, gs, cv, lrwd)
    if kind == ADADELTA:
        return skdl_adadelta(p, g, s1, s2, lr, h1, h2, mask, n, gs, cv, lrwd)
    if kind == ADAM:
        return skdl_adam(p, g, s1, s2, lr, h1, h2, h3, mask, n, gs, cv, lrwd)
    return skdl_adamax(p, g, s1, s2, lr, h1, h2, h3, mask, n, gs, cv, lrwd)

def update(int kind, floating[::1] params, const floating[::1] grads,
           floating[::1] state1, floating[::1] state2,
           const floating[::1] decay_mask, double learning_rate, double h1,
           double h2, double h3, bint flag, double grad_scale, double clipvalue,
           double lr_weight_decay, int n_threads):
    """One optimizer step in place; True when every updated parameter is finite.

    Each element's gradient is ``clamp(grads, -clipvalue, clipvalue) *
    grad_scale`` (``grads`` itself is only read) and the parameter is first
    shrunk by ``1 - lr_weight_decay * decay_mask`` (decoupled weight decay).

    Parameters
    ----------
    kind : int, the update rule (see the enum above)
    params : (n_params,) array, updated in place
    grads : (n_params,) array
    state1, state2 : (n_params,) arrays or None, the rule's state, in place
    decay_mask : (n_params,) array or None (decay everywhere)
    learning_rate, h1, h2, h3 : float, the rule's step size and constants
    flag : bool, Nesterov momentum for SGD
    grad_scale : float, the clipnorm factor (1.0 when off)
    clipvalue : float, inf when off
    lr_weight_decay : float, learning_rate * weight_decay
    n_threads : int
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, start
    cdef int n_bad = 0
    cdef floating* s1 = NULL
    cdef floating* s2 = NULL
    cdef const floating* mask = NULL
    cdef int t = 0
    if n == 0:
        return True
    if state1 is not None:
        s1 = &state1[0]
    if state2 is not None:
        s2 = &state2[0]
    if decay_mask is not None:
        mask = &decay_mask[0]
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for c in prange(n_chunks, schedule='static'):
            note_thread(UPDATE, t)
            start = c * CHUNK
            n_bad += _update_chunk(
                kind, start, min(CHUNK, n - start), &params[0], &grads[0], s1, s2,
                mask, learning_rate, h1, h2, h3, flag, grad_scale, clipvalue,
                lr_weight_decay,
            )
    return n_bad == 0


def sum_of_squares(const floating[::1] grads, double clipvalue, double inv,
                   int n_threads):
    """sum((clamp(grads, -clipvalue, clipvalue) * inv) ** 2) in float64.

    Parameters
    ----------
    grads : (n_params,) array
    clipvalue : float, inf for no clamp (the clamp is done in the array's dtype)
    inv : float, a factor applied before squaring (1.0, or 1 / max|g| to
        avoid overflow)
    n_threads : int
    """
    cdef Py_ssize_t n = grads.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, start
    cdef double total = 0.0
    cdef double* partials
    cdef int t = 0
    if n == 0:
        return 0.0
    partials = <double*> malloc(n_chunks * sizeof(double))
    if partials == NULL:
        raise MemoryError("cannot allocate the norm's chunk sums")
    try:
        with nogil:
            with parallel(num_threads=n_threads):
                t = threadid()
                for c in prange(n_chunks, schedule='static'):
                    note_thread(SUM_OF_SQUARES, t)
                    start = c * CHUNK
                    partials[c] = skdl_sumsq(&grads[start], min(CHUNK, n - start),
                                             clipvalue, inv)
            for c in range(n_chunks):
                total += partials[c]
    finally:
        free(partials)
    return total


def add_penalty(const floating[::1] params, floating[::1] grads,
                const floating[::1] l1_coef, const floating[::1] l2_coef,
                int n_threads):
    """grads += l1 * sign(params) + 2 * l2 * params; returns the penalty.

    The penalty ``sum(l1 * |params| + l2 * params**2)`` is summed in float64.

    Parameters
    ----------
    params, l1_coef, l2_coef : (n_params,) arrays
    grads : (n_params,) array, updated in place
    n_threads : int
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, start
    cdef double total = 0.0
    cdef double* partials
    cdef int t = 0
    if n == 0:
        return 0.0
    partials = <double*> malloc(n_chunks * sizeof(double))
    if partials == NULL:
        raise MemoryError("cannot allocate the penalty's chunk sums")
    try:
        with nogil:
            with parallel(num_threads=n_threads):
                t = threadid()
                for c in prange(n_chunks, schedule='static'):
                    note_thread(ADD_PENALTY, t)
                    start = c * CHUNK
                    partials[c] = skdl_penalty(&params[start], &grads[start],
                                               &l1_coef[start], &l2_coef[start],
                                               min(CHUNK, n - start))
            for c in range(n_chunks):
                total += partials[c]
    finally:
        free(partials)
    return total
