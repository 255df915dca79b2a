"""Pooling ops (skdl._kernels._pool): max and average pooling over 2-D windows
(1-D pools are the case height 1) and their gradients.
"""

import numpy as np

from .._kernels import _pool
from . import _threads
from ._checks import Window, _bound, _float_array, _output
from ._threads import ELEMENT_WORK


def _pool_geometry(X_shape, pool, strides, padding, window=None):
    """(the pooling kernels' geometry arguments, (OH, OW)) for planes of
    ``X_shape``: from ``window`` when given (checked to fit them; ``pool``,
    ``strides`` and ``padding`` are then not read), else parsed from them."""
    if window is not None:
        window = window.fits(X_shape[2:], window.size)
    else:
        window = Window.of(X_shape[2:], pool, pool if strides is None else strides,
                           padding, what="pool")
    return window.pool_args(), window.out_hw


def maxpool2d_forward(X, pool_size, strides=None, padding=((0, 0), (0, 0)), out=None,
                      argmax_out=None, window=None):
    """Max over windows of each channel.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W)
    pool_size : int or (int, int)
    strides : int or (int, int) or None (= pool_size); smaller strides overlap
    padding : ((top, bottom), (left, right)); padding never wins the max
    out, argmax_out : ndarrays of shape (n, C, OH, OW) (float, int32) or None,
        written in place when given
    window : Window or None
        The geometry checked once (``Window.of(..., what='pool')``), in place
        of ``pool_size`` (which may then be None), ``strides`` and ``padding``.

    Returns
    -------
    Y : ndarray of shape (n, C, OH, OW)
    argmax : int32 ndarray of shape (n, C, OH, OW), flat position ``ih * W + iw``
        of each maximum in its input plane
    """
    run, Y, argmax = _bind_maxpool2d_forward(_float_array("X", X, ndim=4), pool_size,
                                             strides, padding, out, argmax_out, window)
    run()
    return Y, argmax


def bind_maxpool2d_forward(X, pool_size, strides=None, padding=((0, 0), (0, 0)), out=None,
                           argmax_out=None, window=None):
    """:func:`maxpool2d_forward` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
    Y : ndarray of shape (n, C, OH, OW)
    argmax : int32 ndarray of shape (n, C, OH, OW)
    """
    X, = _bound(("X",), (X,), (_float_array("X", X, ndim=4),))
    return _bind_maxpool2d_forward(X, pool_size, strides, padding, out, argmax_out, window)


def _bind_maxpool2d_forward(X, pool_size, strides, padding, out, argmax_out, window):
    geometry, out_hw = _pool_geometry(X.shape, pool_size, strides, padding, window)
    Y = _output(out, "out", X.shape[:2] + out_hw, X.dtype, (X,))
    argmax = _output(argmax_out, "argmax_out", Y.shape, np.dtype(np.int32), (X, Y))
    work = ELEMENT_WORK * Y.size * geometry[0] * geometry[1]

    def run():
        _pool.maxpool2d_forward(X, Y, argmax, *geometry, _threads.threads_for(work))
    return run, Y, argmax


def maxpool2d_backward(dY, argmax, input_hw, out=None):
    """Gradient of :func:`maxpool2d_forward`: each window's maximum gets its dY.

    Parameters
    ----------
    dY : ndarray of shape (n, C, OH, OW)
    argmax : int32 ndarray of shape (n, C, OH, OW), from the forward pass
    input_hw : (H, W)
    out : ndarray of shape (n, C, H, W) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (n, C, H, W)
    """
    dY = _float_array("dY", dY, ndim=4)
    argmax = np.ascontiguousarray(argmax)
    H, W = (int(v) for v in input_hw)
    if argmax.dtype == np.int32 and argmax.size and (argmax.min() < 0
                                                     or argmax.max() >= H * W):
        raise ValueError(f"argmax holds positions outside an input plane of {H}x{W}.")
    run, dX = _bind_maxpool2d_backward(dY, argmax, (H, W), out)
    run()
    return dX


def bind_maxpool2d_backward(dY, argmax, input_hw, out=None):
    """:func:`maxpool2d_backward` checked once and bound to its arrays.

    ``argmax`` must be the array a :func:`bind_maxpool2d_forward` of this
    geometry fills before every call: its values are not checked again.

    Returns
    -------
    run : callable ``run()``
    dX : ndarray of shape (n, C, H, W)
    """
    dY, argmax = _bound(("dY", "argmax"), (dY, argmax),
                        (_float_array("dY", dY, ndim=4), np.ascontiguousarray(argmax)))
    return _bind_maxpool2d_backward(dY, argmax, input_hw, out)


def _bind_maxpool2d_backward(dY, argmax, input_hw, out):
    H, W = (int(v) for v in input_hw)
    if argmax.dtype != np.int32 or argmax.shape != dY.shape:
        raise ValueError("argmax must be the int32 array of dY's shape from the forward pass.")
    dX = _output(out, "out", dY.shape[:2] + (H, W), dY.dtype, (dY, argmax))
    work = ELEMENT_WORK * (dX.size + dY.size)

    def run():
        _pool.maxpool2d_backward(dY, argmax, dX, _threads.threads_for(work))
    return run, dX


def avgpool2d_forward(X, pool_size, strides=None, padding=((0, 0), (0, 0)), window=None):
    """Mean over windows of each channel; padding is not counted.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W)
    pool_size, strides, padding, window : as in :func:`maxpool2d_forward`

    Returns
    -------
    Y : ndarray of shape (n, C, OH, OW)
    """
    X = _float_array("X", X, ndim=4)
    geometry, out_hw = _pool_geometry(X.shape, pool_size, strides, padding, window)
    Y = np.empty(X.shape[:2] + out_hw, dtype=X.dtype)
    _pool.avgpool2d_forward(X, Y, *geometry,
                            _threads.threads_for(ELEMENT_WORK * Y.size * geometry[0] * geometry[1]))
    return Y


def avgpool2d_backward(dY, input_hw, pool_size, strides=None, padding=((0, 0), (0, 0)),
                       window=None):
    """Gradient of :func:`avgpool2d_forward`.

    Parameters
    ----------
    dY : ndarray of shape (n, C, OH, OW)
    input_hw : (H, W)
    pool_size, strides, padding, window : as in the forward pass

    Returns
    -------
    dX : ndarray of shape (n, C, H, W)
    """
    dY = _float_array("dY", dY, ndim=4)
    H, W = (int(v) for v in input_hw)
    x_shape = dY.shape[:2] + (H, W)
    geometry, out_hw = _pool_geometry(x_shape, pool_size, strides, padding, window)
    if dY.shape[2:] != out_hw:
        raise ValueError(f"dY has spatial shape {dY.shape[2:]}, the pool gives {out_hw}.")
    dX = np.empty(x_shape, dtype=dY.dtype)
    _pool.avgpool2d_backward(dY, dX, *geometry,
                             _threads.threads_for(ELEMENT_WORK * dY.size * geometry[0] * geometry[1]))
    return dX
