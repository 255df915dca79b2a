"""Losses on raw network outputs (logits), value and gradient in one pass.

Each kernel writes the per-sample loss (float64) and the gradient of that
per-sample loss with respect to the outputs. Sample weights and the average
over the batch are applied by the caller, where samples are summed.
Intermediate sums run in float64, so float32 logits of any size stay finite.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, fabs, log, log1p, sqrt

from ._activations cimport sigmoid
from ._openmp cimport (REGRESSION_LOSS, SIGMOID_CROSS_ENTROPY, SIGMOID_HELLINGER,
                       SOFTMAX_CROSS_ENTROPY, SOFTMAX_HELLINGER, note_thread)



cdef inline double _logsumexp(const floating* z, int k) noexcept nogil:
    """log(sum(exp(z[0:k]))), shifted by the row's maximum so nothing overflows."""
    cdef double mx = z[0], total = 0.0
    cdef int j
    for j in range(1, k):
        if z[j] > mx:
            mx = z[j]
    for j in range(k):
        total = total + exp(z[j] - mx)
    return mx + log(total)


def softmax_cross_entropy(const floating[:, ::1] Z, const floating[:, ::1] Y,
                          double[::1] loss, floating[:, ::1] grad, int n_threads):
    """Softmax fused with categorical cross-entropy.

    loss[i] = logsumexp(Z[i]) * sum(Y[i]) - Y[i] @ Z[i];
    grad[i] = softmax(Z[i]) * sum(Y[i]) - Y[i].

    Parameters
    ----------
    Z : (n, k) logits
    Y : (n, k) targets (one-hot rows, or probabilities)
    loss : (n,) float64 output
    grad : (n, k) output
    n_threads : int
    """
    cdef int n = Z.shape[0]
    cdef int k = Z.shape[1]
    cdef int i, j, t = 0
    cdef double lse, ysum, yz
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(n, schedule='static'):
            note_thread(SOFTMAX_CROSS_ENTROPY, t)
            lse = _logsumexp(&Z[i, 0], k)
            ysum = 0.0
            yz = 0.0
            for j in range(k):
                ysum = ysum + Y[i, j]
                yz = yz + <double> Y[i, j] * Z[i, j]
            loss[i] = lse * ysum - yz
            for j in range(k):
                grad[i, j] = <floating> (exp(Z[i, j] - lse) * ysum - Y[i, j])


def sigmoid_cross_entropy(const floating[:, ::1] Z, const floating[:, ::1] Y,
                          double[::1] loss, floating[:, ::1] grad, int n_threads):
    """Sigmoid fused with binary cross-entropy, summed over the k outputs.

    loss[i] = sum_j max(z, 0) - z * y + log1p(exp(-|z|));
    grad[i, j] = sigmoid(z) - y.

    Parameters
    ----------
    Z : (n, k) logits
    Y : (n, k) targets in [0, 1]
    loss : (n,) float64 output
    grad : (n, k) output
    n_threads : int
    """
    cdef int n = Z.shape[0]
    cdef int k = Z.shape[1]
    cdef int i, j, t = 0
    cdef double z, acc
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(n, schedule='static'):
            note_thread(SIGMOID_CROSS_ENTROPY, t)
            acc = 0.0
            for j in range(k):
                z = Z[i, j]
                acc = acc + (z if z > 0 else 0.0) - z * Y[i, j] + log1p(exp(-fabs(z)))
                grad[i, j] = <floating> (sigmoid(z) - Y[i, j])
            loss[i] = acc


def softmax_hellinger(const floating[:, ::1] Z, const floating[:, ::1] Y,
                      double[::1] loss, floating[:, ::1] grad, int n_threads):
    """Softmax fused with the squared Hellinger distance to the targets.

    With p = softmax(Z[i]) and BC = sum_j sqrt(Y[i, j] * p_j) (the Bhattacharyya
    coefficient): loss[i] = sum_j (sqrt(p_j) - sqrt(Y[i, j]))**2 / 2
    = (1 + sum(Y[i])) / 2 - BC; grad[i, j] = (p_j * BC - sqrt(Y[i, j] * p_j)) / 2.
    Written with sqrt(y * p), never 1 / sqrt(p), so tiny probabilities stay finite.

    Parameters
    ----------
    Z : (n, k) logits
    Y : (n, k) targets (one-hot rows, or probabilities)
    loss : (n,) float64 output
    grad : (n, k) output
    n_threads : int
    """
    cdef int n = Z.shape[0]
    cdef int k = Z.shape[1]
    cdef int i, j, t = 0
    cdef double lse, ysum, bc, p
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(n, schedule='static'):
            note_thread(SOFTMAX_HELLINGER, t)
            lse = _logsumexp(&Z[i, 0], k)
            ysum = 0.0
            for j in range(k):
                ysum = ysum + Y[i, j]
            bc = 0.0
            for j in range(k):
                bc = bc + sqrt(Y[i, j] * exp(Z[i, j] - lse))
            loss[i] = 0.5 * (1.0 + ysum) - bc
            for j in range(k):
                p = exp(Z[i, j] - lse)
                grad[i, j] = <floating> (0.5 * (p * bc - sqrt(Y[i, j] * p)))


def sigmoid_hellinger(const floating[:, ::1] Z, const floating[:, ::1] Y,
                      double[::1] loss, floating[:, ::1] grad, int n_threads):
    """Sigmoid fused with the squared Hellinger distance, summed over outputs.

    Each output is a two-class distribution (1 - p, p), p = sigmoid(z), against
    (1 - y, y): loss = 1 - sqrt((1 - p)(1 - y)) - sqrt(p y), and
    grad = (sqrt((1 - y)(1 - p)) p - sqrt(y p) (1 - p)) / 2; 1 - p is computed
    as sigmoid(-z), accurate for large z.

    Parameters
    ----------
    Z : (n, k) logits
    Y : (n, k) targets in [0, 1]
    loss : (n,) float64 output
    grad : (n, k) output
    n_threads : int
    """
    cdef int n = Z.shape[0]
    cdef int k = Z.shape[1]
    cdef int i, j, t = 0
    cdef double z, y, p, q, acc, root_q, root_p
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(n, schedule='static'):
            note_thread(SIGMOID_HELLINGER, t)
            acc = 0.0
            for j in range(k):
                z = Z[i, j]
                y = Y[i, j]
                p = sigmoid(z)
                q = sigmoid(-z)
                root_q = sqrt((1.0 - y) * q)
                root_p = sqrt(y * p)
                acc = acc + 1.0 - root_q - root_p
                grad[i, j] = <floating> (0.5 * (root_q * p - root_p * q))
            loss[i] = acc


# Regression losses, averaged over the k outputs of a sample.
cdef enum:
    SQUARED_ERROR = 0
    ABSOLUTE_ERROR = 1
    HUBER = 2
    POISSON = 3


def regression_loss(int kind, double delta, const floating[:, ::1] Z,
                    const floating[:, ::1] Y, double[::1] loss,
                    floating[:, ::1] grad, int n_threads):
    """Regression loss of the outputs Z against Y, averaged over outputs.

    kind 0, squared error: (z - y)**2 / 2
    kind 1, absolute error: |z - y|
    kind 2, Huber: r**2 / 2 if |r| <= delta else delta * (|r| - delta / 2)
    kind 3, Poisson deviance / 2 on the log link: exp(z) - y * z + y log y - y

    Parameters
    ----------
    kind : int
    delta : float, Huber threshold
    Z : (n, k) outputs
    Y : (n, k) targets
    loss : (n,) float64 output
    grad : (n, k) output
    n_threads : int
    """
    cdef int n = Z.shape[0]
    cdef int k = Z.shape[1]
    cdef double inv_k = 1.0 / k
    cdef int i, j, t = 0
    cdef double r, acc, ez, y
    with nogil, parallel(num_threads=n_threads):
        t = threadid()
        for i in prange(n, schedule='static'):
            note_thread(REGRESSION_LOSS, t)
            acc = 0.0
            for j in range(k):
                r = <double> Z[i, j] - Y[i, j]
                if kind == SQUARED_ERROR:
                    acc = acc + 0.5 * r * r
                    grad[i, j] = <floating> (r * inv_k)
                elif kind == ABSOLUTE_ERROR:
                    acc = acc + fabs(r)
                    grad[i, j] = <floating> (((r > 0) - (r < 0)) * inv_k)
                elif kind == HUBER:
                    if fabs(r) <= delta:
                        acc = acc + 0.5 * r * r
                        grad[i, j] = <floating> (r * inv_k)
                    else:
                        acc = acc + delta * (fabs(r) - 0.5 * delta)
                        grad[i, j] = <floating> (delta * ((r > 0) - (r < 0)) * inv_k)
                else:
                    y = Y[i, j]
                    ez = exp(<double> Z[i, j])
                    # y log y - y makes the minimum 0 (the deviance's constant).
                    acc = acc + ez - y * Z[i, j] + ((y * log(y) - y) if y > 0 else 0.0)
                    grad[i, j] = <floating> ((ez - y) * inv_k)
            loss[i] = acc * inv_k
