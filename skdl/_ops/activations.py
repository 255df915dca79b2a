"""Activation ops (skdl._kernels._activations): elementwise functions and
softmax over the last axis, and their gradients from the outputs alone.
"""

import numpy as np

from .._kernels import _activations
from . import _threads
from ._checks import _bound, _float_array, _output, _rows
from ._threads import ELEMENT_WORK


# Name -> kernel code; keep in step with the enum in _kernels/_activations.pxd.
ACTIVATIONS = {
    "linear": 0,
    "relu": 1,
    "leaky_relu": 2,
    "elu": 3,
    "tanh": 4,
    "sigmoid": 5,
    "softplus": 6,
    "softsign": 7,
    "elliot": 8,
    "symmetric_elliot": 9,
    "softmax": 10,
}


# Slope (leaky_relu) or scale (elu) used when none is given.
DEFAULT_ACTIVATION_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}


def _activation_code(name):
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}."
        ) from None


def _alpha(name, alpha):
    if alpha is None:
        return DEFAULT_ACTIVATION_ALPHA.get(name, 0.0)
    if not alpha >= 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}.")
    return float(alpha)


def activation_forward(name, X, alpha=None):
    """Apply an activation elementwise (softmax: over the last axis).

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    X : ndarray of any shape (..., m)
    alpha : float or None
        Slope for ``leaky_relu`` (default 0.01), scale for ``elu`` (default 1).

    Returns
    -------
    Y : ndarray of the shape of X
    """
    code = _activation_code(name)
    X = _float_array("X", X)
    Y = np.empty_like(X)
    if X.size:
        _activations.activation_forward(
            code, _alpha(name, alpha), _rows(X), _rows(Y),
            _threads.threads_for(ELEMENT_WORK * X.size),
        )
    return Y


def activation_backward(name, Y, dY, alpha=None, out=None):
    """Gradient of an activation, ``dX = dY * f'(X)``, from its output alone.

    Every supported f has a derivative that is a function of ``Y = f(X)``,
    so layers need not keep the activation's input.

    Parameters
    ----------
    name : str
    Y : ndarray (..., m), the activation's output ``f(X)``
    dY : ndarray (..., m), gradient with respect to ``Y``
    alpha : float or None
    out : ndarray of the shape of Y or None
        Written in place when given (it may be ``dY`` itself).

    Returns
    -------
    dX : ndarray of the shape of Y
    """
    run, dX = _bind_activation_backward(name, *_activation_grad_inputs(Y, dY), alpha, out)
    run()
    return dX


def bind_activation_backward(name, Y, dY, alpha=None, out=None):
    """:func:`activation_backward` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
    dX : ndarray of the shape of Y
    """
    Y, dY = _bound(("Y", "dY"), (Y, dY), _activation_grad_inputs(Y, dY))
    return _bind_activation_backward(name, Y, dY, alpha, out)


def _activation_grad_inputs(Y, dY):
    Y = _float_array("Y", Y)
    dY = _float_array("dY", dY, dtype=Y.dtype)
    if Y.shape != dY.shape:
        raise ValueError(f"Y and dY must have one shape, got {Y.shape} and {dY.shape}.")
    return Y, dY


def _bind_activation_backward(name, Y, dY, alpha, out):
    code = _activation_code(name)
    alpha = _alpha(name, alpha)
    # Elementwise (or row by row), so out may be Y or dY exactly, not shifted.
    exact = out is not None and all(
        a.shape == out.shape and a.ctypes.data == out.ctypes.data for a in (Y, dY)
        if np.may_share_memory(a, out))
    dX = _output(out, "out", Y.shape, Y.dtype, () if exact else (Y, dY))
    if not Y.size:
        return (lambda: None), dX
    Y_rows, dY_rows, dX_rows = _rows(Y), _rows(dY), _rows(dX)
    work = ELEMENT_WORK * Y.size

    def run():
        _activations.activation_backward(code, alpha, Y_rows, dY_rows, dX_rows,
                                         _threads.threads_for(work))
    return run, dX
