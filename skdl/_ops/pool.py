"""Pooling ops (skdl._kernels._pool): max and average pooling over windows of
1, 2 or 3 spatial axes (the ``2d`` names are kept from when they took images
only) and their gradients. Arrays are channels first, (n, C, *spatial); the
kernels see (n, C, prod(spatial)) views and the geometry as one
``skdl_window`` (``Window.kernel_args``).
"""
import math

import numpy as np

from .._kernels import _pool
from . import _threads
from ._checks import Window, _bound, _flat, _float_array, _output
from ._threads import ELEMENT_WORK


def _pool_window(X_shape, pool, strides, padding, window=None):
    """The checked Window of a pool over inputs of ``X_shape`` (n, C,
    *spatial): ``window`` when given (checked to fit them; ``pool``,
    ``strides`` and ``padding`` are then not read), else parsed from them."""
    if window is not None:
        return window.fits(X_shape[2:], window.size)
    return Window.of(X_shape[2:], pool, strides, padding, what="pool")


def _pooled(name, a):
    """``a`` as a C-contiguous float array of 1 to 3 spatial axes (images'
    rank named in the error)."""
    a = _float_array(name, a)
    return a if 3 <= a.ndim <= 5 else _float_array(name, a, ndim=4)


def maxpool2d_forward(X, pool_size, strides=None, padding=None, out=None,
                      argmax_out=None, window=None):
    """Max over windows of each channel.

    Parameters
    ----------
    X : ndarray of shape (n, C, *spatial), 1 to 3 spatial axes
    pool_size : int or tuple of int (one per spatial axis)
    strides : int or tuple of int or None (= pool_size); smaller strides overlap
    padding : sequence of (before, after) pairs, one per axis, or None (none);
        padding never wins the max
    out, argmax_out : ndarrays of shape (n, C, *out_shape) (float, int32) or
        None, written in place when given
    window : Window or None
        The geometry checked once (``Window.of(..., what='pool')``), in place
        of ``pool_size`` (which may then be None), ``strides`` and ``padding``.

    Returns
    -------
    Y : ndarray of shape (n, C, *out_shape)
    argmax : int32 ndarray of shape (n, C, *out_shape), flat (C-order) position
        of each maximum in its channel's input, ``ih * W + iw`` for images
    """
    run, Y, argmax = _bind_maxpool2d_forward(_pooled("X", X), pool_size,
                                             strides, padding, out, argmax_out, window)
    run()
    return Y, argmax


def bind_maxpool2d_forward(X, pool_size, strides=None, padding=None, out=None,
                           argmax_out=None, window=None):
    """:func:`maxpool2d_forward` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
    Y : ndarray of shape (n, C, *out_shape)
    argmax : int32 ndarray of shape (n, C, *out_shape)
    """
    X, = _bound(("X",), (X,), (_pooled("X", X),))
    return _bind_maxpool2d_forward(X, pool_size, strides, padding, out, argmax_out, window)


def _bind_maxpool2d_forward(X, pool_size, strides, padding, out, argmax_out, window):
    window = _pool_window(X.shape, pool_size, strides, padding, window)
    geometry = window.kernel_args()
    Y = _output(out, "out", X.shape[:2] + window.out_shape, X.dtype, (X,))
    argmax = _output(argmax_out, "argmax_out", Y.shape, np.dtype(np.int32), (X, Y))
    work = ELEMENT_WORK * Y.size * math.prod(window.size)
    X3, Y3, argmax3 = _flat(X), _flat(Y), _flat(argmax)

    def run():
        _pool.maxpool2d_forward(X3, Y3, argmax3, geometry, _threads.threads_for(work))
    return run, Y, argmax


def maxpool2d_backward(dY, argmax, input_hw, out=None):
    """Gradient of :func:`maxpool2d_forward`: each window's maximum gets its dY.

    Parameters
    ----------
    dY : ndarray of shape (n, C, *out_shape)
    argmax : int32 ndarray of shape (n, C, *out_shape), from the forward pass
    input_hw : tuple of int, the input's spatial shape (``spatial``)
    out : ndarray of shape (n, C, *spatial) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (n, C, *spatial)
    """
    dY = _pooled("dY", dY)
    argmax = np.ascontiguousarray(argmax)
    spatial = tuple(int(v) for v in input_hw)
    if argmax.dtype == np.int32 and argmax.size and (
            argmax.min() < 0 or argmax.max() >= math.prod(spatial)):
        raise ValueError("argmax holds positions outside an input plane of "
                         f"{'x'.join(map(str, spatial))}.")
    run, dX = _bind_maxpool2d_backward(dY, argmax, spatial, out)
    run()
    return dX


def bind_maxpool2d_backward(dY, argmax, input_hw, out=None):
    """:func:`maxpool2d_backward` checked once and bound to its arrays.

    ``argmax`` must be the array a :func:`bind_maxpool2d_forward` of this
    geometry fills before every call: its values are not checked again.

    Returns
    -------
    run : callable ``run()``
    dX : ndarray of shape (n, C, *spatial)
    """
    dY, argmax = _bound(("dY", "argmax"), (dY, argmax),
                        (_pooled("dY", dY), np.ascontiguousarray(argmax)))
    return _bind_maxpool2d_backward(dY, argmax, input_hw, out)


def _bind_maxpool2d_backward(dY, argmax, input_hw, out):
    spatial = tuple(int(v) for v in input_hw)
    if argmax.dtype != np.int32 or argmax.shape != dY.shape:
        raise ValueError("argmax must be the int32 array of dY's shape from the forward pass.")
    dX = _output(out, "out", dY.shape[:2] + spatial, dY.dtype, (dY, argmax))
    work = ELEMENT_WORK * (dX.size + dY.size)
    dY3, argmax3, dX3 = _flat(dY), _flat(argmax), _flat(dX)

    def run():
        _pool.maxpool2d_backward(dY3, argmax3, dX3, _threads.threads_for(work))
    return run, dX


def avgpool2d_forward(X, pool_size, strides=None, padding=None, window=None):
    """Mean over windows of each channel; padding is not counted.

    Parameters
    ----------
    X : ndarray of shape (n, C, *spatial), 1 to 3 spatial axes
    pool_size, strides, padding, window : as in :func:`maxpool2d_forward`

    Returns
    -------
    Y : ndarray of shape (n, C, *out_shape)
    """
    X = _pooled("X", X)
    window = _pool_window(X.shape, pool_size, strides, padding, window)
    Y = np.empty(X.shape[:2] + window.out_shape, dtype=X.dtype)
    _pool.avgpool2d_forward(_flat(X), _flat(Y), window.kernel_args(), _threads.threads_for(
        ELEMENT_WORK * Y.size * math.prod(window.size)))
    return Y


def avgpool2d_backward(dY, input_hw, pool_size, strides=None, padding=None,
                       window=None):
    """Gradient of :func:`avgpool2d_forward`.

    Parameters
    ----------
    dY : ndarray of shape (n, C, *out_shape)
    input_hw : tuple of int, the input's spatial shape (``spatial``)
    pool_size, strides, padding, window : as in the forward pass

    Returns
    -------
    dX : ndarray of shape (n, C, *spatial)
    """
    dY = _pooled("dY", dY)
    x_shape = dY.shape[:2] + tuple(int(v) for v in input_hw)
    window = _pool_window(x_shape, pool_size, strides, padding, window)
    if dY.shape[2:] != window.out_shape:
        raise ValueError(f"dY has spatial shape {dY.shape[2:]}, the pool gives "
                         f"{window.out_shape}.")
    dX = np.empty(x_shape, dtype=dY.dtype)
    _pool.avgpool2d_backward(_flat(dY), _flat(dX), window.kernel_args(), _threads.threads_for(
        ELEMENT_WORK * dY.size * math.prod(window.size)))
    return dX
