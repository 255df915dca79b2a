"""Dropout ops: inverted dropout and its gradient (numpy; no kernel).
"""


from ._checks import _float_array


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
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")
    keep = rng.random(X.shape, dtype=X.dtype) >= rate
    mask = keep.astype(X.dtype) * X.dtype.type(1.0 / (1.0 - rate))
    return X * mask, mask


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
