"""Convolution ops (skdl._kernels._conv): convolutions over 1, 2 or 3 spatial
axes (the ``conv2d_`` names are kept from when they took images only), their
input and weight gradients. Arrays are channels first: X (n, C, *spatial),
kernels (F, C, *window), outputs (n, F, *out); the kernels see each sample's
spatial axes flattened, (n, C, prod(spatial)), a free view, and the geometry
as one ``skdl_window`` (``Window.kernel_args``).
"""

import math

import numpy as np

from .._kernels import _conv
from . import _threads
from ._checks import (Window, _accumulation_dtype, _axis_ints, _bound, _flat, _float_array,
                      _output, _weights)
from .activations import _activation_code, _alpha, activation_forward


def _conv_window(X_shape, K_shape, strides, padding, dilation, window):
    """The checked Window of a convolution of ``X_shape`` by ``K_shape``:
    ``window`` when given (checked to fit them), else parsed from the rest."""
    if window is not None:
        return window.fits(X_shape[2:], K_shape[2:])
    return Window.of(X_shape[2:], K_shape[2:], strides, padding, dilation)


def _spatial_ndim(K):
    """X's and K's number of axes: K's, if it has 1 to 3 spatial axes, else
    that of images (so the error names what an image convolution needs)."""
    ndim = np.ndim(K)
    return ndim if 3 <= ndim <= 5 else 4


def _conv_inputs(X, K):
    ndim = _spatial_ndim(K)
    X = _float_array("X", X, ndim=ndim)
    K = _float_array("K", K, ndim=ndim, dtype=X.dtype)
    if K.shape[1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} channels but the kernel expects {K.shape[1]} "
            f"(kernel shape {K.shape})."
        )
    return X, K


def conv2d_forward(X, K, b=None, strides=1, padding=None, dilation=1,
                   activation=None, alpha=None, out=None, window=None):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Parameters
    ----------
    X : ndarray of shape (n, C, *spatial)
        1 to 3 spatial axes: (n, C, L), (n, C, H, W) or (n, C, D, H, W).
    K : ndarray of shape (F, C, *window), as many spatial axes as X
    b : ndarray of shape (F,) or None
    strides, dilation : int or tuple of int (one per spatial axis)
    padding : sequence of (int, int) or None
        (before, after) zeros on each spatial axis, such as
        ((top, bottom), (left, right)) for images; None adds none.
    activation : str or None
    alpha : float or None
    out : ndarray of shape (n, F, *out_shape) or None, written in place when given
    window : Window or None
        The geometry checked once (``Window.of``), in place of ``strides``,
        ``padding`` and ``dilation``.

    Returns
    -------
    Y : ndarray of shape (n, F, *out_shape)
    """
    # Softmax normalizes each (sample, filter) plane; the kernel's fused
    # activations act on values alone, so softmax runs after it, on the planes.
    fused = None if activation == "softmax" else activation
    run, Y = _bind_conv2d_forward(*_conv_forward_inputs(X, K, b), strides, padding,
                                  dilation, fused, alpha, out, window)
    run()
    if activation == "softmax" and Y.size:
        planes = Y.reshape(Y.shape[0] * Y.shape[1], -1)
        planes[...] = activation_forward("softmax", planes)
    return Y


def bind_conv2d_forward(X, K, b=None, strides=1, padding=None, dilation=1,
                        activation=None, alpha=None, out=None, window=None):
    """:func:`conv2d_forward` checked once and bound to its arrays; every
    activation but softmax (which :func:`conv2d_forward` applies after the
    kernel).

    Returns
    -------
    run : callable ``run()``
    Y : ndarray of shape (n, F, *out_shape)
    """
    if activation == "softmax":
        raise ValueError("A bound convolution fuses elementwise activations only, "
                         "not softmax.")
    X, K, b = _bound(("X", "K", "b"), (X, K, b), _conv_forward_inputs(X, K, b))
    return _bind_conv2d_forward(X, K, b, strides, padding, dilation, activation, alpha,
                                out, window)


def _conv_forward_inputs(X, K, b):
    X, K = _conv_inputs(X, K)
    if b is not None:
        b = _float_array("b", b, ndim=1, dtype=X.dtype)
        if b.shape[0] != K.shape[0]:
            raise ValueError(f"b has shape {b.shape}, expected ({K.shape[0]},).")
    return X, K, b


def _bind_conv2d_forward(X, K, b, strides, padding, dilation, activation, alpha, out,
                         window):
    window = _conv_window(X.shape, K.shape, strides, padding, dilation, window)
    geometry = window.kernel_args()
    code = 0 if activation is None else _activation_code(activation)
    alpha = _alpha(activation, alpha)
    Y = _output(out, "out", (X.shape[0], K.shape[0]) + window.out_shape, X.dtype, (X, K))
    work = Y.size * K[0].size
    X3, K3, Y3 = _flat(X), _flat(K), _flat(Y)

    def run():
        _conv.conv2d_forward(X3, K3, b, Y3, geometry, code, alpha,
                             _threads.threads_for(work))
    return run, Y


def conv2d_backward_input(dY, K, input_hw, strides=1, padding=None,
                          dilation=1, out=None, window=None):
    """Gradient of :func:`conv2d_forward` (without activation) for its input.

    Parameters
    ----------
    dY : ndarray of shape (n, F, *out_shape)
    K : ndarray of shape (F, C, *window)
    input_hw : tuple of int, the input's spatial shape (``spatial``)
    strides, padding, dilation, window : as in :func:`conv2d_forward`
    out : ndarray of shape (n, C, *spatial) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (n, C, *spatial)
    """
    run, dX = _bind_conv2d_backward_input(*_conv_grad_inputs(dY, K), input_hw, strides,
                                          padding, dilation, out, window)
    run()
    return dX


def bind_conv2d_backward_input(dY, K, input_hw, strides=1, padding=None,
                               dilation=1, out=None, window=None):
    """:func:`conv2d_backward_input` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
    dX : ndarray of shape (n, C, *spatial)
    """
    dY, K = _bound(("dY", "K"), (dY, K), _conv_grad_inputs(dY, K))
    return _bind_conv2d_backward_input(dY, K, input_hw, strides, padding, dilation, out,
                                       window)


def _conv_grad_inputs(dY, K):
    ndim = _spatial_ndim(K)
    dY = _float_array("dY", dY, ndim=ndim)
    return dY, _float_array("K", K, ndim=ndim, dtype=dY.dtype)


def _bind_conv2d_backward_input(dY, K, input_hw, strides, padding, dilation, out, window):
    x_shape = (dY.shape[0], K.shape[1]) + tuple(int(v) for v in input_hw)
    window = _conv_window(x_shape, K.shape, strides, padding, dilation, window)
    if dY.shape[1:] != (K.shape[0],) + window.out_shape:
        raise ValueError(
            f"dY has shape {dY.shape[1:]} per sample but the convolution gives "
            f"{(K.shape[0],) + window.out_shape}."
        )
    geometry = window.kernel_args()
    dX = _output(out, "out", x_shape, dY.dtype, (dY, K))
    work = dY.size * K[0].size
    dY3, K3, dX3 = _flat(dY), _flat(K), _flat(dX)

    def run():
        _conv.conv2d_backward_input(dY3, K3, dX3, geometry, _threads.threads_for(work))
    return run, dX


def conv2d_backward_params(X, dY, sample_weight=None, scale=1.0, accumulate_dtype=None,
                           kernel_hw=None, strides=1, padding=None,
                           dilation=1, dK=None, db=None, window=None):
    """Kernel and bias gradients of :func:`conv2d_forward`, summed over the batch.

    ``dK = scale * sum_i w_i dK_i`` and ``db = scale * sum_i w_i sum(dY_i)``,
    summed over fixed chunks of samples so the result does not depend on the
    thread count; ``accumulate_dtype=float64`` sums in float64 (see
    :func:`dense_param_grads`).

    Parameters
    ----------
    X : ndarray of shape (n, C, *spatial)
    dY : ndarray of shape (n, F, *out_shape), per-sample gradients
    sample_weight : ndarray of shape (n,) or None
    scale : float
    accumulate_dtype : {None, numpy.float32, numpy.float64}
    kernel_hw : int or tuple of int, the window's size (``window``)
    strides, padding, dilation, window : as in :func:`conv2d_forward`
    dK : ndarray of shape (F, C, *window) or None, written in place when given
    db : ndarray of shape (F,) or None, written in place when given

    Returns
    -------
    dK, db
    """
    run, dK, db = _bind_conv2d_backward_params(
        *_conv_param_inputs(X, dY, sample_weight), accumulate_dtype, kernel_hw, strides,
        padding, dilation, dK, db, window)
    run(scale)
    return dK, db


def bind_conv2d_backward_params(X, dY, sample_weight=None, accumulate_dtype=None,
                                kernel_hw=None, strides=1, padding=None,
                                dilation=1, dK=None, db=None, window=None):
    """:func:`conv2d_backward_params` checked once and bound to its arrays;
    ``sample_weight`` is read at every call.

    Returns
    -------
    run : callable ``run(scale)``
    dK : ndarray of shape (F, C, *window)
    db : ndarray of shape (F,)
    """
    checked = _bound(("X", "dY", "sample_weight"), (X, dY, sample_weight),
                     _conv_param_inputs(X, dY, sample_weight))
    return _bind_conv2d_backward_params(*checked, accumulate_dtype, kernel_hw, strides,
                                        padding, dilation, dK, db, window)


def _conv_param_inputs(X, dY, sample_weight):
    X = _float_array("X", X)
    if not 3 <= X.ndim <= 5:
        X = _float_array("X", X, ndim=4)  # the error, naming images' rank
    dY = _float_array("dY", dY, ndim=X.ndim, dtype=X.dtype)
    return X, dY, _weights(sample_weight, X.shape[0])


def _bind_conv2d_backward_params(X, dY, w, accumulate_dtype, kernel_hw, strides, padding,
                                 dilation, dK, db, window):
    n, C = X.shape[:2]
    F = dY.shape[1]
    size = _axis_ints("kernel_hw", kernel_hw, X.ndim - 2, layer=False)
    window = _conv_window(X.shape, (F, C) + size, strides, padding, dilation, window)
    if dY.shape != (n, F) + window.out_shape:
        raise ValueError(f"dY has shape {dY.shape}, expected {(n, F) + window.out_shape}.")
    geometry = window.kernel_args()
    dK = _output(dK, "dK", (F, C) + size, X.dtype)
    db = _output(db, "db", (F,), X.dtype)
    acc = _accumulation_dtype(accumulate_dtype, X.dtype)
    target_K = dK if acc == dK.dtype else np.empty(dK.shape, acc)
    target_b = db if acc == db.dtype else np.empty(db.shape, acc)
    n_chunks = max(1, -(-n // _conv.CHUNK_))
    partial_K = np.empty((n_chunks, target_K.size), dtype=acc)
    partial_b = np.empty((n_chunks, F))
    work = dY.size * C * math.prod(size)
    dK3 = _flat(target_K)

    def run(scale):
        A, B = (X, dY) if acc == X.dtype else (X.astype(acc), dY.astype(acc))
        _conv.conv2d_backward_params(_flat(A), _flat(B), w, float(scale), dK3, target_b,
                                     partial_K, partial_b, geometry,
                                     _threads.threads_for(work))
        if target_K is not dK:
            dK[...] = target_K
            db[...] = target_b
    return run, dK, db
