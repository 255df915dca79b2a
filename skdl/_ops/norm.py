"""Normalization ops (skdl._kernels._norm): batch normalization (training,
inference, backward) and PReLU.
"""

import numpy as np

from .._kernels import _norm
from . import _threads
from ._checks import _float_array, _output
from ._threads import ELEMENT_WORK


# -- batch normalization and PReLU ---------------------------------------------
# Both read their input as X[m, C, P]: m rows (the samples, times the axes
# before the channel axis), C channels, P positions per channel (the product of
# the axes after it). The layers make that view; the ops check it.
def _channel_input(name, X):
    X = _float_array(name, X, ndim=3)
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"{name} must have at least one row, channel and position, "
                         f"got shape {X.shape}.")
    return X


def _channel_vector(name, v, C, default):
    """A per-channel vector as float64 (C,); ``default`` fills it for None."""
    if v is None:
        return np.full(C, default, dtype=np.float64)
    v = np.asarray(v)
    if v.dtype.kind != "f" or v.shape != (C,):
        raise ValueError(f"{name} must be a float array of shape ({C},), got "
                         f"{v.dtype} {v.shape}.")
    return np.ascontiguousarray(v, dtype=np.float64)


def _row_weights(name, w, m):
    """Non-negative finite float64 row weights (m,), or None."""
    if w is None:
        return None
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},), got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must hold finite non-negative values.")
    return w


def _epsilon(epsilon):
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}.")
    return float(epsilon)


def _partial(m, C):
    return np.empty((max(1, -(-m // _norm.CHUNK_)), C), dtype=np.float64)


def batchnorm_inv_std(variance, epsilon):
    """``1 / sqrt(variance + epsilon)`` in float64, as every batch-norm op uses it.

    Parameters
    ----------
    variance : ndarray of shape (C,)
    epsilon : float > 0

    Returns
    -------
    float64 ndarray of shape (C,)
    """
    return 1.0 / np.sqrt(np.asarray(variance, dtype=np.float64) + _epsilon(epsilon))


def batchnorm_train_forward(X, gamma=None, beta=None, epsilon=1e-3, sample_weight=None,
                            out=None, xhat_out=None):
    """Batch normalization with the batch's own statistics (training).

    ``xhat = (x - mean_c) / sqrt(var_c + epsilon)`` and
    ``y = gamma_c xhat + beta_c``, where ``mean_c`` and the biased ``var_c``
    are taken over the rows and positions of channel c, each row weighted by
    ``sample_weight`` (so an integer weight k counts like k copies of the row
    and a zero weight leaves the row out of the statistics). Sums run in
    float64 over fixed chunks of rows: the same for any thread count.

    Parameters
    ----------
    X : ndarray of shape (m, C, P)
    gamma, beta : ndarrays of shape (C,) or None (ones, zeros)
    epsilon : float > 0
    sample_weight : ndarray of shape (m,) or None
        Non-negative row weights with a positive sum.
    out, xhat_out : ndarrays of shape (m, C, P) or None, written in place when given

    Returns
    -------
    Y : ndarray of shape (m, C, P)
    Xhat : ndarray of shape (m, C, P), the normalized input (for the backward pass)
    mean, var : float64 ndarrays of shape (C,), the batch statistics
    """
    X = _channel_input("X", X)
    m, C, _ = X.shape
    g = _channel_vector("gamma", gamma, C, 1.0)
    b = _channel_vector("beta", beta, C, 0.0)
    w = _row_weights("sample_weight", sample_weight, m)
    total = float(m) if w is None else float(w.sum())
    if not total > 0:
        raise ValueError("sample_weight sums to 0: the batch has no statistics.")
    mean = np.empty(C)
    var = np.empty(C)
    n_threads = _threads.threads_for(ELEMENT_WORK * X.size)
    _norm.channel_moments(X, w, total, mean, var, _partial(m, C), n_threads)
    Y = _output(out, "out", X.shape, X.dtype, (X,))
    Xhat = _output(xhat_out, "xhat_out", X.shape, X.dtype, (X, Y))
    _norm.batchnorm_normalize(X, mean, batchnorm_inv_std(var, epsilon), g, b, Y, Xhat,
                              n_threads)
    return Y, Xhat, mean, var


def batchnorm_inference(X, gamma=None, beta=None, mean=None, variance=None, epsilon=1e-3,
                        out=None):
    """Batch normalization with fixed statistics (inference).

    ``y = gamma_c (x - mean_c) / sqrt(variance_c + epsilon) + beta_c``,
    computed as ``x * a_c + b_c`` in float64: each output depends on its own
    input alone, never on the rest of the batch.

    Parameters
    ----------
    X : ndarray of shape (m, C, P)
    gamma, beta : ndarrays of shape (C,) or None (ones, zeros)
    mean, variance : ndarrays of shape (C,), e.g. the running statistics
        (None: zeros, ones)
    epsilon : float > 0
    out : ndarray of shape (m, C, P) or None, written in place when given (it
        may be X itself)

    Returns
    -------
    Y : ndarray of shape (m, C, P)
    """
    X = _channel_input("X", X)
    C = X.shape[1]
    g = _channel_vector("gamma", gamma, C, 1.0)
    b = _channel_vector("beta", beta, C, 0.0)
    mu = _channel_vector("mean", mean, C, 0.0)
    var = _channel_vector("variance", variance, C, 1.0)
    if np.any(var < 0):
        raise ValueError("variance must be non-negative.")
    a = g * batchnorm_inv_std(var, epsilon)
    shift = b - mu * a
    exact = out is not None and out.shape == X.shape and out.ctypes.data == X.ctypes.data
    Y = _output(out, "out", X.shape, X.dtype, () if exact else (X,))
    _norm.channel_affine(X, a, shift, Y, _threads.threads_for(ELEMENT_WORK * X.size))
    return Y


def batchnorm_backward(dY, Xhat, gamma=None, variance=None, epsilon=1e-3,
                       sample_weight=None, stat_weight=None, scale=1.0,
                       need_input_grad=True, out=None):
    """Gradients of :func:`batchnorm_train_forward`.

    The loss is ``L = scale * sum_i w_i l_i`` with ``w = sample_weight`` and
    ``dY[i]`` the gradient of ``l_i``; the statistics were taken with the row
    weights ``stat_weight`` (``a_i = s_i / (sum(s) P)`` per value; None:
    equal). With ``S1_c = sum_i w_i sum_p dy`` and ``S2_c = sum_i w_i sum_p dy
    xhat``:

    - ``dgamma = scale S2``, ``dbeta = scale S1``;
    - ``dX_i = gamma_c inv_std_c (dy - r_i (S1_c + xhat S2_c))`` with
      ``r_i = a_i / w_i``, the per-sample gradient whose weighted sum
      ``w_i dX_i`` is exactly ``dL/dx_i / scale``. When the statistics used
      the loss weights (or both are None), ``r_i = 1 / (sum(w) P)``. A row
      with ``w_i = 0`` but a share in the statistics gets ``r_i = 0``: its
      influence on the statistics cannot pass through a zero weight.

    Parameters
    ----------
    dY, Xhat : ndarrays of shape (m, C, P)
    gamma : ndarray of shape (C,) or None (ones)
    variance : ndarray of shape (C,), the batch variance from the forward pass
    epsilon : float > 0
    sample_weight : ndarray of shape (m,) or None, the loss weights
    stat_weight : ndarray of shape (m,) or None, the forward pass's weights
    scale : float
    need_input_grad : bool
    out : ndarray of shape (m, C, P) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (m, C, P), or None without ``need_input_grad``
    dgamma, dbeta : ndarrays of shape (C,), dY's dtype
    """
    dY = _channel_input("dY", dY)
    Xhat = _float_array("Xhat", Xhat, dtype=dY.dtype)
    if Xhat.shape != dY.shape:
        raise ValueError(f"Xhat has shape {Xhat.shape}, dY has {dY.shape}.")
    m, C, P = dY.shape
    g = _channel_vector("gamma", gamma, C, 1.0)
    var = _channel_vector("variance", variance, C, 1.0)
    w = _row_weights("sample_weight", sample_weight, m)
    s = _row_weights("stat_weight", stat_weight, m)
    n_threads = _threads.threads_for(ELEMENT_WORK * dY.size)
    S1, S2 = np.empty(C), np.empty(C)
    _norm.batchnorm_grad_sums(dY, Xhat, w, S1, S2, _partial(m, C), _partial(m, C),
                              n_threads)
    dgamma = (scale * S2).astype(dY.dtype)
    dbeta = (scale * S1).astype(dY.dtype)
    if not need_input_grad:
        return None, dgamma, dbeta
    if s is None:
        share = np.full(m, 1.0 / (m * P))
    else:
        if not s.sum() > 0:
            raise ValueError("stat_weight sums to 0.")
        share = s / (s.sum() * P)
    if w is None:
        r = share
    else:
        r = np.zeros(m)
        np.divide(share, w, out=r, where=w > 0)
    coef = g * batchnorm_inv_std(var, epsilon)
    dX = _output(out, "out", dY.shape, dY.dtype, (dY, Xhat))
    _norm.batchnorm_input_grad(dY, Xhat, coef, S1, S2, r, dX, n_threads)
    return dX, dgamma, dbeta


def prelu_forward(X, alpha, out=None):
    """Parametric ReLU: ``max(x, 0) + alpha_c min(x, 0)``, one slope per channel.

    Parameters
    ----------
    X : ndarray of shape (m, C, P)
    alpha : ndarray of shape (C,)
    out : ndarray of shape (m, C, P) or None, written in place when given

    Returns
    -------
    Y : ndarray of shape (m, C, P)
    """
    X = _channel_input("X", X)
    a = _channel_vector("alpha", alpha, X.shape[1], 0.0)
    Y = _output(out, "out", X.shape, X.dtype, (X,))
    _norm.prelu_forward(X, a, Y, _threads.threads_for(ELEMENT_WORK * X.size))
    return Y


def prelu_backward(X, dY, alpha, sample_weight=None, scale=1.0, need_input_grad=True,
                   out=None):
    """Gradients of :func:`prelu_forward`.

    ``dalpha_c = scale * sum_i w_i sum_p dy min(x, 0)``, summed in float64
    over fixed chunks of rows (the same for any thread count), and
    ``dX = dy`` where ``x > 0``, ``alpha_c dy`` elsewhere.

    Parameters
    ----------
    X, dY : ndarrays of shape (m, C, P)
    alpha : ndarray of shape (C,)
    sample_weight : ndarray of shape (m,) or None, row weights
    scale : float
    need_input_grad : bool
    out : ndarray of shape (m, C, P) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (m, C, P), or None without ``need_input_grad``
    dalpha : ndarray of shape (C,), X's dtype
    """
    X = _channel_input("X", X)
    dY = _float_array("dY", dY, dtype=X.dtype)
    if dY.shape != X.shape:
        raise ValueError(f"dY has shape {dY.shape}, X has {X.shape}.")
    m, C, _ = X.shape
    a = _channel_vector("alpha", alpha, C, 0.0)
    w = _row_weights("sample_weight", sample_weight, m)
    dX = _output(out, "out", X.shape, X.dtype, (X, dY)) if need_input_grad else None
    dalpha = np.empty(C)
    _norm.prelu_backward(X, dY, a, w, float(scale), dalpha, _partial(m, C), dX,
                         _threads.threads_for(ELEMENT_WORK * X.size))
    return dX, dalpha.astype(X.dtype)
