"""Dropout ops: inverted dropout and its gradient (numpy; no kernel).
"""
import numpy as np

from ._checks import _bound, _float_array


def dropout_forward(X, rate, rng):
    """Inverted dropout: zero each entry with probability ``rate``, scale the rest.

    Parameters
    ----------
    X : ndarray of any shape
    rate : float in [0, 1)
    rng : numpy.random.Generator

    Returns
    -------
    Y : ndarray of the shape of X
    mask : ndarray of the shape of X, the factor each entry was multiplied by
        (0 or ``1 / (1 - rate)``)
    """
    X = _float_array("X", X)
    _check_rate(rate)
    keep = rng.random(X.shape, dtype=X.dtype) >= rate
    mask = keep.astype(X.dtype) * X.dtype.type(1.0 / (1.0 - rate))
    return X * mask, mask


def _check_rate(rate):
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")


def bind_dropout(X, rate, dY, dX=None):
    """:func:`dropout_forward` and :func:`dropout_backward` checked once and
    bound to their arrays: the same draws and products, without allocating.

    Parameters
    ----------
    X : ndarray of any shape, read at every forward
    rate : float in [0, 1)
    dY : ndarray of the shape of X, read at every backward
    dX : ndarray of the shape of X or None, written by backward when given

    Returns
    -------
    forward : callable ``forward(rng)``
        Draws a mask from the numpy Generator ``rng`` and writes ``Y``.
    backward : callable ``backward()``
        Writes ``dX = dY * mask`` (nothing when ``dX`` is None).
    Y : ndarray of the shape of X
    """
    X, dY, dX = _bound(("X", "dY", "dX"), (X, dY, dX),
                       (_float_array("X", X), _float_array("dY", dY, dtype=X.dtype),
                        None if dX is None else _float_array("dX", dX, dtype=X.dtype)))
    _check_rate(rate)
    if dY.shape != X.shape or (dX is not None and dX.shape != X.shape):
        raise ValueError(f"dY and dX must have X's shape {X.shape}.")
    draws, keep = np.empty_like(X), np.empty(X.shape, dtype=bool)
    mask, Y = np.empty_like(X), np.empty_like(X)
    scale = X.dtype.type(1.0 / (1.0 - rate))

    def forward(rng):
        rng.random(dtype=X.dtype, out=draws)
        np.greater_equal(draws, rate, out=keep)
        np.multiply(keep, scale, out=mask)
        np.multiply(X, mask, out=Y)

    def backward():
        if dX is not None:
            np.multiply(dY, mask, out=dX)
    return forward, backward, Y


def dropout_backward(dY, mask):
    """Gradient of dropout: ``dY * mask``.

    Parameters
    ----------
    dY : ndarray of any shape
    mask : ndarray of the shape of dY, from :func:`dropout_forward`

    Returns
    -------
    dX : ndarray of the shape of dY
    """
    dY = _float_array("dY", dY)
    if mask.shape != dY.shape:
        raise ValueError(f"mask has shape {mask.shape}, dY has {dY.shape}.")
    return dY * mask
