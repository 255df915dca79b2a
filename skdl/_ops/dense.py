"""Dense ops (skdl._kernels._dense): the row-invariant products of a dense
layer, its input gradient and its weight gradients, on dense or sparse input.
"""

import numpy as np
from scipy.sparse import issparse

from .._kernels import _dense
from . import _threads
from ._checks import (
    _accumulation_dtype,
    _bound,
    _compressed_arrays,
    _float_array,
    _output,
    _weights,
)
from ._threads import ELEMENT_WORK
from .activations import _activation_code, _alpha


def dense_forward(X, W, b=None, activation=None, alpha=None, out=None):
    """Affine map of each row and an activation: ``f(X @ W + b)``.

    Every output element is accumulated in the same order wherever its row
    is, so a sample's output does not depend on the rest of its batch, its
    position in it, or the thread count.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix/array of shape (n, k)
        Sparse X (any format; CSR is used as is) is multiplied through its
        stored values only.
    W : ndarray of shape (k, p)
    b : ndarray of shape (p,) or None
    activation : str or None
        One of :data:`ACTIVATIONS`; None is linear.
    alpha : float or None
        Parameter of ``leaky_relu`` / ``elu``.
    out : ndarray of shape (n, p) or None, written in place when given

    Returns
    -------
    Y : ndarray of shape (n, p)
    """
    code = 0 if activation is None else _activation_code(activation)
    if not issparse(X):
        run, Y = _bind_dense_forward(*_dense_inputs(X, W, b), code,
                                     _alpha(activation, alpha), out)
        run()
        return Y
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}.")
    data, indices, indptr = _compressed_arrays("X", X, "csr")
    W, b = _dense_weights(X, W, b)
    Y = _output(out, "out", (X.shape[0], W.shape[1]), X.dtype, (data, W))
    _dense.csr_rows_product(data, indices, indptr, W, Y, _threads.threads_for(data.size * W.shape[1]),
                            b, code, _alpha(activation, alpha))
    return Y


def _bind_dense_forward(X, W, b, code, alpha, out):
    Y = _output(out, "out", (X.shape[0], W.shape[1]), X.dtype, (X, W))
    work = X.size * W.shape[1]

    def run():
        _dense.rowwise_gemm(X, W, Y, False, _threads.threads_for(work), b, code, alpha)
    return run, Y


def bind_dense_forward(X, W, b=None, activation=None, alpha=None, out=None):
    """:func:`dense_forward` of dense ``X`` checked once and bound to its
    arrays, for a training loop that calls it every batch.

    Returns
    -------
    run : callable ``run()``
        Writes ``f(X @ W + b)`` into Y from the values the arrays hold then.
    Y : ndarray of shape (n, p)
    """
    X, W, b = _bound(("X", "W", "b"), (X, W, b), _dense_inputs(X, W, b))
    code = 0 if activation is None else _activation_code(activation)
    return _bind_dense_forward(X, W, b, code, _alpha(activation, alpha), out)


def _dense_inputs(X, W, b):
    """Dense X, W and b checked (see :func:`dense_forward`)."""
    X = _float_array("X", X, ndim=2)
    return (X,) + _dense_weights(X, W, b)


def _dense_weights(X, W, b):
    """W and b checked against X's features and dtype (X dense or sparse)."""
    W = _float_array("W", W, ndim=2, dtype=X.dtype)
    if W.shape[0] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features per row but W expects {W.shape[0]} "
            f"(W has shape {W.shape})."
        )
    if b is not None:
        b = _float_array("b", b, ndim=1, dtype=X.dtype)
        if b.shape[0] != W.shape[1]:
            raise ValueError(f"b has shape {b.shape}, expected ({W.shape[1]},).")
    return W, b


def dense_backward_input(dY, W, out=None):
    """Gradient with respect to the input of ``X @ W + b``: ``dY @ W.T``.

    Parameters
    ----------
    dY : ndarray of shape (n, p)
    W : ndarray of shape (k, p)
    out : ndarray of shape (n, k) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (n, k)
    """
    run, dX = _bind_dense_backward_input(*_dense_grad_inputs(dY, W), out)
    run()
    return dX


def bind_dense_backward_input(dY, W, out=None):
    """:func:`dense_backward_input` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
    dX : ndarray of shape (n, k)
    """
    dY, W = _bound(("dY", "W"), (dY, W), _dense_grad_inputs(dY, W))
    return _bind_dense_backward_input(dY, W, out)


def _dense_grad_inputs(dY, W):
    dY = _float_array("dY", dY, ndim=2)
    W = _float_array("W", W, ndim=2, dtype=dY.dtype)
    if W.shape[1] != dY.shape[1]:
        raise ValueError(
            f"dY has {dY.shape[1]} columns but W has shape {W.shape}."
        )
    return dY, W


def _bind_dense_backward_input(dY, W, out):
    dX = _output(out, "out", (dY.shape[0], W.shape[0]), dY.dtype, (dY, W))
    work = dY.size * W.shape[0]

    def run():
        _dense.rowwise_gemm(dY, W, dX, True, _threads.threads_for(work))
    return run, dX


def dense_param_grads(X, dY, sample_weight=None, scale=1.0, accumulate_dtype=None,
                      dW=None, db=None):
    """Weight and bias gradients of ``X @ W + b`` summed over the batch.

    ``dW = scale * X.T @ (w * dY)`` and ``db = scale * sum_r w[r] * dY[r]``,
    where ``dY`` holds per-sample gradients and ``w`` the sample weights.
    With ``accumulate_dtype=float64`` the sum runs in float64 whatever the
    dtype of ``X``; the products of float32 numbers are exact there, so
    weighting a sample by an integer k gives the same sum as k copies of it.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix/array of shape (n, k)
        Sparse X (any format; CSC is used as is) contributes through its
        stored values only, and its sums always run in float64.
    dY : ndarray of shape (n, p)
    sample_weight : ndarray of shape (n,) or None
    scale : float
    accumulate_dtype : {None, numpy.float32, numpy.float64}
        None accumulates in the dtype of ``X``.
    dW : ndarray of shape (k, p) or None
        Output, written in place when given (e.g. a view of a gradient buffer).
    db : ndarray of shape (p,) or None
        Output, written in place when given.

    Returns
    -------
    dW : ndarray of shape (k, p)
    db : ndarray of shape (p,)
    """
    if not issparse(X):
        run, dW, db = _bind_dense_param_grads(
            *_dense_param_inputs(X, dY, sample_weight), accumulate_dtype, dW, db)
        run(scale)
        return dW, db
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}.")
    data, indices, indptr = _compressed_arrays("X", X, "csc")
    dY, w = _dense_param_inputs(X, dY, sample_weight)[1:]
    dW = _output(dW, "dW", X.shape[1:] + dY.shape[1:], X.dtype)
    db = _output(db, "db", dY.shape[1:], X.dtype)
    _accumulation_dtype(accumulate_dtype, X.dtype)
    _dense.csc_weight_gradient(scale, data, indices, indptr, dY, w, dW,
                               _threads.threads_for(data.size * dY.shape[1]))
    _dense.weighted_column_sum(dY, w, scale, db, _threads.threads_for(ELEMENT_WORK * dY.size))
    return dW, db


def bind_dense_param_grads(X, dY, sample_weight=None, accumulate_dtype=None, dW=None,
                           db=None):
    """:func:`dense_param_grads` of dense ``X`` checked once and bound to its
    arrays; ``sample_weight`` is read at every call.

    Returns
    -------
    run : callable ``run(scale)``
    dW : ndarray of shape (k, p)
    db : ndarray of shape (p,)
    """
    checked = _bound(("X", "dY", "sample_weight"), (X, dY, sample_weight),
                     _dense_param_inputs(X, dY, sample_weight))
    return _bind_dense_param_grads(*checked, accumulate_dtype, dW, db)


def _dense_param_inputs(X, dY, sample_weight):
    """(X, dY, float64 weights or None) checked; X dense or sparse."""
    if not issparse(X):
        X = _float_array("X", X, ndim=2)
    dY = _float_array("dY", dY, ndim=2, dtype=X.dtype)
    if dY.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but dY has {dY.shape[0]}.")
    return X, dY, _weights(sample_weight, X.shape[0])


def _bind_dense_param_grads(X, dY, w, accumulate_dtype, dW, db):
    n, k = X.shape
    p = dY.shape[1]
    dW = _output(dW, "dW", (k, p), X.dtype)
    db = _output(db, "db", (p,), X.dtype)
    acc = _accumulation_dtype(accumulate_dtype, X.dtype)
    work, column_work = n * k * p, ELEMENT_WORK * dY.size
    if acc != X.dtype:  # the sums' own copies, filled at every call
        X_acc, dY_acc, dW_acc = (np.empty(X.shape, acc), np.empty(dY.shape, acc),
                                 np.empty((k, p), acc))

    def run(scale):
        if acc == X.dtype:
            A, B, target = X, dY, dW
        else:
            np.copyto(X_acc, X)
            np.copyto(dY_acc, dY)
            A, B, target = X_acc, dY_acc, dW_acc
        if w is not None:
            B = np.multiply(B, w.astype(B.dtype, copy=False)[:, None])
        _dense.gemm_tn(scale, A, B, target, _threads.threads_for(work))
        if target is not dW:
            dW[...] = target
        _dense.weighted_column_sum(dY, w, scale, db, _threads.threads_for(column_work))
    return run, dW, db
