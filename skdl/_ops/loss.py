"""Loss ops (skdl._kernels._loss): losses fused with their output activation,
per sample, with the gradient for the logits.
"""

import numpy as np

from .._kernels import _loss
from . import _threads
from ._checks import _float_array
from ._threads import ELEMENT_WORK


REGRESSION_LOSSES = {"squared_error": 0, "absolute_error": 1, "huber": 2, "poisson": 3}


def _loss_inputs(Z, Y):
    Z = _float_array("Z", Z, ndim=2)
    Y = np.ascontiguousarray(Y, dtype=Z.dtype)
    if Y.shape != Z.shape:
        raise ValueError(f"Y has shape {Y.shape} but the outputs Z have {Z.shape}.")
    return Z, Y, np.empty(Z.shape[0]), np.empty_like(Z)


def softmax_cross_entropy(Z, Y):
    """Softmax on logits fused with categorical cross-entropy.

    Parameters
    ----------
    Z : ndarray of shape (n, k), logits
    Y : ndarray of shape (n, k), one-hot targets (or probabilities)

    Returns
    -------
    loss : float64 ndarray of shape (n,), per-sample loss
    grad : ndarray of shape (n, k), d loss[i] / d Z[i]
    """
    Z, Y, loss, grad = _loss_inputs(Z, Y)
    _loss.softmax_cross_entropy(Z, Y, loss, grad, _threads.threads_for(ELEMENT_WORK * Z.size))
    return loss, grad


def sigmoid_cross_entropy(Z, Y):
    """Sigmoid on logits fused with binary cross-entropy, summed over outputs.

    Parameters
    ----------
    Z : ndarray of shape (n, k), logits
    Y : ndarray of shape (n, k), targets in [0, 1]

    Returns
    -------
    loss : float64 ndarray of shape (n,)
    grad : ndarray of shape (n, k)
    """
    Z, Y, loss, grad = _loss_inputs(Z, Y)
    _loss.sigmoid_cross_entropy(Z, Y, loss, grad, _threads.threads_for(ELEMENT_WORK * Z.size))
    return loss, grad


def softmax_hellinger(Z, Y):
    """Softmax on logits fused with the squared Hellinger distance.

    ``loss[i] = sum_j (sqrt(p_ij) - sqrt(Y_ij))**2 / 2`` with ``p = softmax(Z)``
    (NumpyDL's HellingerDistance, squared so it is smooth at the target).

    Parameters
    ----------
    Z : ndarray of shape (n, k), logits
    Y : ndarray of shape (n, k), one-hot targets (or probabilities)

    Returns
    -------
    loss : float64 ndarray of shape (n,)
    grad : ndarray of shape (n, k), d loss[i] / d Z[i]
    """
    Z, Y, loss, grad = _loss_inputs(Z, Y)
    if Y.size and Y.min() < 0:
        raise ValueError("The Hellinger distance needs non-negative targets.")
    _loss.softmax_hellinger(Z, Y, loss, grad, _threads.threads_for(ELEMENT_WORK * Z.size))
    return loss, grad


def sigmoid_hellinger(Z, Y):
    """Sigmoid on logits fused with the squared Hellinger distance of each
    output's two-class distribution, summed over outputs.

    Parameters
    ----------
    Z : ndarray of shape (n, k), logits
    Y : ndarray of shape (n, k), targets in [0, 1]

    Returns
    -------
    loss : float64 ndarray of shape (n,)
    grad : ndarray of shape (n, k)
    """
    Z, Y, loss, grad = _loss_inputs(Z, Y)
    if Y.size and (Y.min() < 0 or Y.max() > 1):
        raise ValueError("The Hellinger distance needs targets in [0, 1].")
    _loss.sigmoid_hellinger(Z, Y, loss, grad, _threads.threads_for(ELEMENT_WORK * Z.size))
    return loss, grad


def regression_loss(name, Z, Y, delta=1.0):
    """Regression loss averaged over a sample's outputs.

    Parameters
    ----------
    name : {'squared_error', 'absolute_error', 'huber', 'poisson'}
        ``poisson`` reads Z as the log of the mean (log link).
    Z : ndarray of shape (n, k), network outputs
    Y : ndarray of shape (n, k), targets
    delta : float, threshold of the Huber loss

    Returns
    -------
    loss : float64 ndarray of shape (n,)
    grad : ndarray of shape (n, k)
    """
    if name not in REGRESSION_LOSSES:
        raise ValueError(
            f"Unknown regression loss {name!r}; expected one of "
            f"{sorted(REGRESSION_LOSSES)}."
        )
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta}.")
    Z, Y, loss, grad = _loss_inputs(Z, Y)
    if Z.shape[1] == 0:
        raise ValueError("Z must have at least one output column.")
    _loss.regression_loss(
        REGRESSION_LOSSES[name], float(delta), Z, Y, loss, grad,
        _threads.threads_for(ELEMENT_WORK * Z.size)
    )
    return loss, grad
