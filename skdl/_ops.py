"""Operations: the only importer of :mod:`skdl._kernels`.

Each op validates shapes and dtypes in Python and raises ``ValueError`` or
``TypeError`` before any ``nogil`` code runs, makes its inputs C-contiguous,
allocates its outputs, reads the OpenMP thread count at call time and calls
one kernel. :mod:`skdl._reference` has a plain-numpy twin of every op with the
same name and signature; the tests hold each op to its twin.

The ops a training step repeats have a ``bind_`` form: the same checks, run
once, then a callable that runs the kernel on the same arrays at every call
(their values may change, their shapes may not). Each op is its ``bind_``
form called once, so both paths share every check and kernel call.
"""
import functools
import math
import numbers
import threading
import weakref

import numpy as np
from scipy.sparse import issparse

from ._kernels import _activations, _conv, _dense, _loss, _norm, _optim, _pool, _recurrent
from ._kernels._openmp import effective_n_threads

__all__ = [
    "ACTIVATIONS",
    "REGRESSION_LOSSES",
    "activation_backward",
    "activation_forward",
    "adadelta_update",
    "adagrad_update",
    "adam_update",
    "adamax_update",
    "add_penalty",
    "avgpool2d_backward",
    "avgpool2d_forward",
    "batchnorm_backward",
    "bind_activation_backward",
    "bind_conv2d_backward_input",
    "bind_conv2d_backward_params",
    "bind_conv2d_forward",
    "bind_dense_backward_input",
    "bind_dense_forward",
    "bind_dense_param_grads",
    "bind_maxpool2d_backward",
    "bind_maxpool2d_forward",
    "batchnorm_inference",
    "batchnorm_inv_std",
    "batchnorm_train_forward",
    "conv2d_backward_input",
    "conv2d_backward_params",
    "conv2d_forward",
    "dense_backward_input",
    "dense_forward",
    "dense_param_grads",
    "dropout_backward",
    "dropout_forward",
    "effective_n_threads",
    "embedding_backward",
    "embedding_indices",
    "gradient_norm",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "prelu_backward",
    "prelu_forward",
    "recurrent_backward",
    "recurrent_forward",
    "regression_loss",
    "rmsprop_update",
    "sgd_update",
    "sigmoid_cross_entropy",
    "sigmoid_hellinger",
    "softmax_cross_entropy",
    "softmax_hellinger",
    "window_output_size",
]

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
REGRESSION_LOSSES = {"squared_error": 0, "absolute_error": 1, "huber": 2, "poisson": 3}
FLOAT_DTYPES = (np.float32, np.float64)
# Largest size or offset the kernels index with (a C int).
INT_MAX = 2**31 - 1


# -- how many threads an op's work pays for ------------------------------------
# Work is counted in multiply-adds; an elementwise pass (activation, loss,
# optimizer, normalization, pooling) counts ELEMENT_WORK per element. Both are
# measured by benchmarks/bench_grain.py on a quiet 2-core x86-64. Timed alone,
# an op gains from a second thread from about 0.6-8 million multiply-adds in
# the products (2 million in the median) and 16-64 thousand elements in the
# elementwise passes, whose memory-bound loops scale better than the
# products' FMA-bound ones. Within a training step the other thread is still
# awake from the op before, so whole fits gain from smaller work:
# bench_grain.py's second table fits networks at several thresholds, and
# with 2 * 250,000 the CNNs of bench_cnn.py and bench_load.py fit 1.07-1.33x
# faster on two threads than on one (2 million: 0.98-1.05x), while the demo's
# dense net, whose ops stay below it, is unchanged (lower thresholds made it
# 4-11% slower). Below two threads' worth the op runs on the calling thread
# without a parallel region. Under load, the short spin of the idle OpenMP
# threads (skdl._kernels) and the per-step choice of skdl._training.StepThreads
# keep the threads from waiting on each other.
ELEMENT_WORK = 64
MIN_WORK_PER_THREAD = 250_000


def _threads_for(work):
    """Threads an op should use for ``work`` multiply-adds.

    One per ``MIN_WORK_PER_THREAD`` of work, at most
    :func:`effective_n_threads`; small work gets 1, which runs the kernel's
    parallel region on the calling thread alone (no other thread is woken or
    waited for). The kernels cut their work into fixed chunks, so results do
    not depend on the count.

    Parameters
    ----------
    work : int
        Estimated cost of the op in multiply-adds (``ELEMENT_WORK`` per
        element for elementwise passes).

    Returns
    -------
    n_threads : int >= 1
    """
    if work < 2 * MIN_WORK_PER_THREAD:
        return 1  # without asking OpenMP: the common case for small networks
    n_threads = min(effective_n_threads(), int(work) // MIN_WORK_PER_THREAD)
    cap = getattr(_thread_cap, "value", None)
    return n_threads if cap is None else min(n_threads, cap)


# A cap on the threads of the ops this Python thread calls (the training loop
# sets it per step, see skdl._training.StepThreads); other Python threads,
# predicting at the same time, keep theirs.
_thread_cap = threading.local()


class at_most_threads:
    """Ops called by this Python thread in the block use at most ``n_threads``
    (None: no cap). Results do not depend on it; only the time does.

    A class rather than a generator-based context manager: the training loop
    enters it at every step.

    Parameters
    ----------
    n_threads : int >= 1 or None
    """

    __slots__ = ("n_threads", "previous")

    def __init__(self, n_threads):
        self.n_threads = n_threads

    def __enter__(self):
        self.previous = getattr(_thread_cap, "value", None)
        _thread_cap.value = self.n_threads

    def __exit__(self, *exc):
        _thread_cap.value = self.previous


def _float_array(name, a, ndim=None, dtype=None):
    """C-contiguous float32/float64 array, or a clear error."""
    if type(a) is not np.ndarray:
        a = np.asarray(a)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}.")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but {dtype} is expected.")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}.")
    # ascontiguousarray copies only what is not C-contiguous (and makes 0-d 1-d).
    return a if a.flags.c_contiguous and a.ndim else np.ascontiguousarray(a)


def _bound(names, given, checked):
    """The checked arrays, which a bound op keeps: each must be the array
    given (a contiguous copy made by the checks would not see the values
    written into the original later), else a ValueError naming it."""
    for name, a, b in zip(names, given, checked):
        if a is not None and a is not b:
            raise ValueError(f"{name} must be a C-contiguous float32 or float64 ndarray "
                             "to bind an op to it (the op reads it at every call).")
    return checked


def _compressed_arrays(name, X, fmt):
    """(data, indices, indptr) of a scipy sparse ``X`` in ``fmt`` ('csr' or
    'csc'), float data and intp indices, checked so the kernels cannot read
    outside them; or a clear error."""
    X = X.asformat(fmt)
    if X.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {X.dtype}.")
    major, minor = X.shape if fmt == "csr" else X.shape[::-1]
    data = np.ascontiguousarray(X.data)
    indices = np.ascontiguousarray(X.indices, dtype=np.intp)
    indptr = np.ascontiguousarray(X.indptr, dtype=np.intp)
    if (indptr.shape != (major + 1,) or indptr[0] != 0 or indptr[-1] > data.size
            or indptr[-1] > indices.size or (np.diff(indptr) < 0).any()
            or (indices[:indptr[-1]].size
                and not 0 <= indices[:indptr[-1]].min() <= indices[:indptr[-1]].max()
                < minor)):
        raise ValueError(f"{name} is not a valid {fmt.upper()} matrix of shape "
                         f"{X.shape}: its index arrays point outside it.")
    if max(X.shape) > INT_MAX:
        raise ValueError(f"{name} has shape {X.shape}; the kernels take at most "
                         f"{INT_MAX} rows and columns.")
    return data, indices, indptr


def _weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = np.ascontiguousarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}.")
    return w


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
    _dense.csr_rows_product(data, indices, indptr, W, Y, _threads_for(data.size * W.shape[1]),
                            b, code, _alpha(activation, alpha))
    return Y


def _bind_dense_forward(X, W, b, code, alpha, out):
    Y = _output(out, "out", (X.shape[0], W.shape[1]), X.dtype, (X, W))
    work = X.size * W.shape[1]

    def run():
        _dense.rowwise_gemm(X, W, Y, False, _threads_for(work), b, code, alpha)
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
        _dense.rowwise_gemm(dY, W, dX, True, _threads_for(work))
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
                               _threads_for(data.size * dY.shape[1]))
    _dense.weighted_column_sum(dY, w, scale, db, _threads_for(ELEMENT_WORK * dY.size))
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
        _dense.gemm_tn(scale, A, B, target, _threads_for(work))
        if target is not dW:
            dW[...] = target
        _dense.weighted_column_sum(dY, w, scale, db, _threads_for(column_work))
    return run, dW, db


def _accumulation_dtype(accumulate_dtype, default):
    """The dtype sums over a batch run in: ``accumulate_dtype``, or ``default``
    for None; float32 or float64, or a ValueError."""
    acc = np.dtype(default if accumulate_dtype is None else accumulate_dtype)
    if acc not in FLOAT_DTYPES:
        raise ValueError(f"accumulate_dtype must be float32 or float64, got {acc}.")
    return acc


def _output(out, name, shape, dtype, inputs=()):
    """``out`` checked for an op to write into, or a new array; ``inputs`` are
    arrays the op reads while it writes, which ``out`` must not overlap."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a C-contiguous {dtype} array of shape {shape}, "
            f"got {out.dtype} {out.shape}."
        )
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only.")
    for a in inputs:
        if np.may_share_memory(out, a):
            raise ValueError(f"{name} overlaps an input of the operation.")
    return out


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


def _rows(a):
    """2-D view (rows, last axis) of an n-d array, for row-wise kernels."""
    if a.ndim == 0:
        raise ValueError("activations need at least a 1-D array.")
    return a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a


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
            _threads_for(ELEMENT_WORK * X.size),
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
                                         _threads_for(work))
    return run, dX


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
    _loss.softmax_cross_entropy(Z, Y, loss, grad, _threads_for(ELEMENT_WORK * Z.size))
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
    _loss.sigmoid_cross_entropy(Z, Y, loss, grad, _threads_for(ELEMENT_WORK * Z.size))
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
    _loss.softmax_hellinger(Z, Y, loss, grad, _threads_for(ELEMENT_WORK * Z.size))
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
    _loss.sigmoid_hellinger(Z, Y, loss, grad, _threads_for(ELEMENT_WORK * Z.size))
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
        _threads_for(ELEMENT_WORK * Z.size)
    )
    return loss, grad


# -- optimizers -----------------------------------------------------------------
# Every update op takes the flat parameter buffer, its gradient and the rule's
# state arrays, updates params and state in place in one fused pass and
# returns True when every updated parameter is finite. The common keywords:
#   weight_decay, decay_mask  decoupled decay, p -= learning_rate * weight_decay
#                             * decay_mask * p (no mask: everywhere), as in
#                             PyTorch's AdamW; applied to the old p, beside
#                             the rule's own step
#   clipvalue                 each gradient element clamped to [-clipvalue,
#                             clipvalue] first, then
#   clipnorm                  the whole (clamped) gradient rescaled so its
#                             global L2 norm is at most clipnorm
# Clipping is folded into the update loop: ``grads`` is never written.

# Update rules of _kernels/_optim.pyx, in the order of its enum.
(_SGD, _SGD_PLAIN, _ADAGRAD, _RMSPROP, _RMSPROP_MOMENTUM, _ADADELTA, _ADAM,
 _ADAMAX) = range(8)


def _scalar(name, value, low=0.0, high=None, low_open=False, high_open=True):
    """``value`` as a float inside the interval, or a TypeError/ValueError."""
    if type(value) is not float:  # the usual case skips the slower ABC checks
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}.")
        value = float(value)
    above = value > low if low_open else value >= low
    below = high is None or (value < high if high_open else value <= high)
    if not (math.isfinite(value) and above and below):
        lower = f"{'(' if low_open else '['}{low}"
        upper = "inf)" if high is None else f"{high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {lower}, {upper}, got {value}.")
    return value


def _check_params(params):
    if not isinstance(params, np.ndarray):
        raise TypeError("params must be a numpy array (the flat buffer), got "
                        f"{type(params).__name__}.")
    if params.ndim != 1:
        raise ValueError("params must be a 1-D numpy array (the flat buffer), got "
                         f"shape {params.shape}.")
    if params.dtype not in FLOAT_DTYPES:
        raise TypeError(f"params must be float32 or float64, got dtype {params.dtype}.")


def _in_place(name, a):
    """A buffer the kernel writes: C-contiguous, writeable, never a copy."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (it is updated in place), got "
                        f"{type(a).__name__}.")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (it is updated in place).")
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only.")
    return a


def _like(params, name, a):
    """``a`` checked against params' dtype and shape (read-only inputs may be
    copied to C order; arrays written in place are checked, never copied)."""
    if a.dtype != params.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but params is {params.dtype}.")
    if a.shape != params.shape:
        raise ValueError(f"{name} must match params (shape {params.shape}), "
                         f"got shape {a.shape}.")
    return a


def _no_overlap(arrays):
    # Kernels declare their pointers restrict; two names for one memory would
    # be undefined behaviour. Bounds checks only: cheap on 1-D buffers.
    named = [(k, a) for k, a in arrays.items() if a is not None]
    for i, (k1, a1) in enumerate(named):
        for k2, a2 in named[i + 1:]:
            if np.may_share_memory(a1, a2):
                raise ValueError(f"{k1} and {k2} share memory; the optimizer needs "
                                 "separate buffers.")


# The buffers of the last optimizer step whose checks passed, by weak
# reference: a training loop passes the same flat buffers at every step, and
# checking them again (dtypes, shapes, overlaps) cost as much as the update of
# a small network. Only whether they are still writeable is read again.
_checked_buffers = threading.local()


def _step_arrays(params, grads, state, decay_mask):
    """(grads, state, decay_mask) checked for an update of ``params`` in place;
    the same buffers as the last step's are not checked again."""
    given = (params, grads, decay_mask, *state.values())
    last = getattr(_checked_buffers, "refs", None)
    if (last is not None and len(last) == len(given)
            and all(a is None if ref is None else ref() is a for ref, a in zip(last, given))
            and all(a.flags.writeable for a in state.values() if a is not None)
            and params.flags.writeable):
        return grads, state, decay_mask
    _checked_buffers.refs = None
    _check_params(params)
    _in_place("params", params)
    grads = _like(params, "grads", np.ascontiguousarray(grads))
    state = {k: None if a is None else _like(params, k, _in_place(k, a))
             for k, a in state.items()}
    _no_overlap({"params": params, "grads": grads, **state})
    if decay_mask is not None:
        decay_mask = _like(params, "decay_mask", np.ascontiguousarray(decay_mask))
        _no_overlap({"params": params, "decay_mask": decay_mask, **state})
    if grads is given[1] and decay_mask is given[2]:  # no copies made: remember them
        _checked_buffers.refs = [None if a is None else weakref.ref(a) for a in given]
    return grads, state, decay_mask


def _step_inputs(params, grads, state, learning_rate, weight_decay, decay_mask,
                 clipnorm, clipvalue):
    """Checked arrays and the folded clip and decay scalars of one step."""
    learning_rate = _scalar("learning_rate", learning_rate)
    weight_decay = _scalar("weight_decay", weight_decay)
    if weight_decay == 0.0:
        decay_mask = None  # nothing to read (and nothing to check every step)
    grads, state, decay_mask = _step_arrays(params, grads, state, decay_mask)
    clipvalue = np.inf if clipvalue is None else _scalar("clipvalue", clipvalue,
                                                         low_open=True)
    n_threads = _threads_for(ELEMENT_WORK * params.size)
    scale = 1.0
    if clipnorm is not None:
        clipnorm = _scalar("clipnorm", clipnorm, low_open=True)
        norm = _gradient_norm(grads, clipvalue, n_threads)
        # A non-finite norm is left alone: rescaling by clipnorm / inf would
        # zero the step and hide the problem, which the finiteness flag reports.
        if np.isfinite(norm) and norm > clipnorm:
            scale = clipnorm / norm
    return (grads, list(state.values()), decay_mask, learning_rate * weight_decay,
            scale, clipvalue, n_threads)


def _gradient_norm(grads, clipvalue, n_threads):
    total = _optim.sum_of_squares(grads, clipvalue, 1.0, n_threads)
    if np.isinf(total):
        # Squares past float64's range (|g| > ~1e154, float64 only): again
        # with every element divided by the largest, as BLAS's nrm2 does.
        top = min(float(np.max(np.abs(grads))), clipvalue)
        if np.isfinite(top):
            return top * np.sqrt(_optim.sum_of_squares(grads, clipvalue, 1.0 / top,
                                                       n_threads))
    return float(np.sqrt(total))


def gradient_norm(grads, clipvalue=None):
    """Global L2 norm of a gradient buffer, after an optional value clip.

    Summed in float64 over fixed chunks combined in order: the same value for
    any number of threads. This is the norm ``clipnorm`` compares.

    Parameters
    ----------
    grads : ndarray of shape (n_params,), float32 or float64
    clipvalue : float > 0 or None
        Clamp each element to [-clipvalue, clipvalue] first (in grads' dtype).

    Returns
    -------
    norm : float
    """
    grads = _float_array("grads", grads, ndim=1)
    clipvalue = np.inf if clipvalue is None else _scalar("clipvalue", clipvalue,
                                                         low_open=True)
    return _gradient_norm(grads, clipvalue, _threads_for(ELEMENT_WORK * grads.size))


def _update(kind, params, grads, state, learning_rate, h1, h2, h3, flag,
            weight_decay, decay_mask, clipnorm, clipvalue, step_size=None):
    grads, states, mask, lrwd, scale, cv, n_threads = _step_inputs(
        params, grads, state, learning_rate, weight_decay, decay_mask, clipnorm,
        clipvalue,
    )
    s1, s2 = (states + [None, None])[:2]
    # The rule's step size: learning_rate, or Adam's bias-corrected one.
    lr = float(learning_rate) if step_size is None else step_size
    return _optim.update(kind, params, grads, s1, s2, mask, lr, h1, h2, h3, flag,
                         scale, cv, lrwd, n_threads)


def _step_number(step):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an integer, got {step!r}.")
    if step < 1:
        raise ValueError(f"step counts from 1, got {step}.")
    return int(step)


def sgd_update(params, grads, velocity, learning_rate, momentum=0.0, nesterov=False, *,
               weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One SGD step in place on the flat parameter buffer.

    ``velocity = momentum * velocity - learning_rate * g``, then
    ``params += momentum * velocity - learning_rate * g`` (Nesterov) or
    ``params += velocity``; without a velocity buffer (momentum 0),
    ``params -= learning_rate * g``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,), params' dtype; only read
    velocity : ndarray of shape (n_params,) or None, updated in place
        None only when momentum is 0.
    learning_rate : float >= 0
    momentum : float in [0, 1]
    nesterov : bool
    weight_decay : float >= 0
        Decoupled: ``params -= learning_rate * weight_decay * decay_mask * params``.
    decay_mask : ndarray of shape (n_params,) or None
        1.0 where the decay applies, 0.0 elsewhere; None decays everything.
    clipnorm, clipvalue : float > 0 or None
        Each gradient element is clamped to [-clipvalue, clipvalue] first,
        then the gradient is rescaled to a global L2 norm of at most clipnorm.

    Returns
    -------
    finite : bool
        True when every updated parameter is finite.
    """
    momentum = _scalar("momentum", momentum, high=1.0, high_open=False)
    if velocity is None and momentum != 0.0:
        raise ValueError("momentum > 0 needs a velocity array.")
    kind = _SGD_PLAIN if velocity is None else _SGD
    return _update(kind, params, grads, {"velocity": velocity},
                   learning_rate, momentum, 0.0, 0.0, bool(nesterov), weight_decay,
                   decay_mask, clipnorm, clipvalue)


def adagrad_update(params, grads, accumulator, learning_rate, epsilon, *,
                   weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One Adagrad step in place (Duchi et al., 2011).

    ``accumulator += g**2``; ``params -= learning_rate * g / (sqrt(accumulator)
    + epsilon)``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    accumulator : ndarray of shape (n_params,), updated in place
    learning_rate : float >= 0
    epsilon : float > 0
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    epsilon = _scalar("epsilon", epsilon, low_open=True)
    return _update(_ADAGRAD, params, grads, {"accumulator": accumulator},
                   learning_rate, epsilon, 0.0, 0.0, False, weight_decay, decay_mask,
                   clipnorm, clipvalue)


def rmsprop_update(params, grads, mean_square, velocity, learning_rate, rho, epsilon,
                   momentum=0.0, *, weight_decay=0.0, decay_mask=None, clipnorm=None,
                   clipvalue=None):
    """One RMSprop step in place (Tieleman & Hinton, 2012).

    ``mean_square = rho * mean_square + (1 - rho) * g**2``;
    ``step = learning_rate * g / (sqrt(mean_square) + epsilon)``;
    ``params -= step``, or with momentum ``velocity = momentum * velocity +
    step; params -= velocity``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    mean_square : ndarray of shape (n_params,), updated in place
    velocity : ndarray of shape (n_params,) or None, updated in place
        Needed (and only touched) when momentum > 0.
    learning_rate : float >= 0
    rho : float in [0, 1]
    epsilon : float > 0
    momentum : float in [0, 1]
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    rho = _scalar("rho", rho, high=1.0, high_open=False)
    epsilon = _scalar("epsilon", epsilon, low_open=True)
    momentum = _scalar("momentum", momentum, high=1.0, high_open=False)
    if momentum == 0.0:
        return _update(_RMSPROP, params, grads,
                       {"mean_square": mean_square}, learning_rate,
                       rho, epsilon, 0.0, False, weight_decay, decay_mask, clipnorm,
                       clipvalue)
    if velocity is None:
        raise ValueError("momentum > 0 needs a velocity array.")
    return _update(_RMSPROP_MOMENTUM, params, grads,
                   {"mean_square": mean_square, "velocity": velocity}, learning_rate,
                   rho, epsilon, momentum, False, weight_decay, decay_mask, clipnorm,
                   clipvalue)


def adadelta_update(params, grads, mean_square_grad, mean_square_delta, learning_rate,
                    rho, epsilon, *, weight_decay=0.0, decay_mask=None, clipnorm=None,
                    clipvalue=None):
    """One Adadelta step in place (Zeiler, 2012).

    ``Eg = rho * Eg + (1 - rho) * g**2``;
    ``delta = sqrt(Ed + epsilon) / sqrt(Eg + epsilon) * g``;
    ``Ed = rho * Ed + (1 - rho) * delta**2``; ``params -= learning_rate * delta``
    (Zeiler's rule has no learning rate: use 1.0).

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    mean_square_grad, mean_square_delta : ndarrays of shape (n_params,), in place
    learning_rate : float >= 0
    rho : float in [0, 1]
    epsilon : float > 0
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    rho = _scalar("rho", rho, high=1.0, high_open=False)
    epsilon = _scalar("epsilon", epsilon, low_open=True)
    return _update(_ADADELTA, params, grads,
                   {"mean_square_grad": mean_square_grad,
                    "mean_square_delta": mean_square_delta},
                   learning_rate, rho, epsilon, 0.0, False, weight_decay, decay_mask,
                   clipnorm, clipvalue)


def _betas(beta1, beta2, epsilon):
    return (_scalar("beta1", beta1, high=1.0), _scalar("beta2", beta2, high=1.0),
            _scalar("epsilon", epsilon, low_open=True))


def adam_update(params, grads, m, v, learning_rate, beta1, beta2, epsilon, step, *,
                weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One Adam step in place (Kingma & Ba, 2014); AdamW with weight_decay > 0.

    ``m = beta1 * m + (1 - beta1) * g``; ``v = beta2 * v + (1 - beta2) * g**2``;
    ``params -= lr_t * m / (sqrt(v) + epsilon)`` with the bias corrections
    folded into ``lr_t = learning_rate * sqrt(1 - beta2**step) / (1 -
    beta1**step)``, as in scikit-learn's MLP. The decoupled weight decay uses
    ``learning_rate`` itself (Loshchilov & Hutter's AdamW).

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    m, v : ndarrays of shape (n_params,), first and second moments, in place
    learning_rate : float >= 0
    beta1, beta2 : float in [0, 1)
    epsilon : float > 0
    step : int, the number of this step, from 1
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    beta1, beta2, epsilon = _betas(beta1, beta2, epsilon)
    step = _step_number(step)
    step_size = (_scalar("learning_rate", learning_rate) * np.sqrt(1.0 - beta2**step)
                 / (1.0 - beta1**step))
    return _update(_ADAM, params, grads, {"m": m, "v": v}, learning_rate, beta1, beta2,
                   epsilon, False, weight_decay, decay_mask, clipnorm, clipvalue,
                   step_size=float(step_size))


def adamax_update(params, grads, m, u, learning_rate, beta1, beta2, epsilon, step, *,
                  weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One Adamax step in place (Kingma & Ba, 2014, section 7.1).

    ``m = beta1 * m + (1 - beta1) * g``; ``u = max(beta2 * u, |g|)``;
    ``params -= learning_rate / (1 - beta1**step) * m / (u + epsilon)``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    m, u : ndarrays of shape (n_params,), first moment and infinity norm, in place
    learning_rate : float >= 0
    beta1, beta2 : float in [0, 1)
    epsilon : float > 0
    step : int, the number of this step, from 1
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    beta1, beta2, epsilon = _betas(beta1, beta2, epsilon)
    step = _step_number(step)
    step_size = _scalar("learning_rate", learning_rate) / (1.0 - beta1**step)
    return _update(_ADAMAX, params, grads, {"m": m, "u": u}, learning_rate, beta1, beta2,
                   epsilon, False, weight_decay, decay_mask, clipnorm, clipvalue,
                   step_size=float(step_size))


def add_penalty(params, grads, l1_coef, l2_coef):
    """Add the gradient of an elementwise L1/L2 penalty to ``grads``, in place.

    ``grads += l1_coef * sign(params) + 2 * l2_coef * params`` (the subgradient
    of ``|p|`` at 0 is taken as 0), and the penalty
    ``sum(l1_coef * |params| + l2_coef * params**2)`` is returned, summed in
    float64 over fixed chunks combined in order (the same for any number of
    threads).

    Parameters
    ----------
    params : ndarray of shape (n_params,), float32 or float64; only read
    grads : ndarray of shape (n_params,), params' dtype, updated in place
    l1_coef, l2_coef : ndarrays of shape (n_params,), params' dtype
        Per-parameter coefficients, 0 where no penalty applies.

    Returns
    -------
    penalty : float
    """
    params = _float_array("params", params, ndim=1)
    grads = _like(params, "grads", _in_place("grads", grads))
    l1_coef = _like(params, "l1_coef", np.ascontiguousarray(l1_coef))
    l2_coef = _like(params, "l2_coef", np.ascontiguousarray(l2_coef))
    _no_overlap({"grads": grads, "params": params})
    _no_overlap({"grads": grads, "l1_coef": l1_coef})
    _no_overlap({"grads": grads, "l2_coef": l2_coef})
    return float(_optim.add_penalty(params, grads, l1_coef, l2_coef,
                                    _threads_for(ELEMENT_WORK * params.size)))


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


# -- convolution and pooling ---------------------------------------------------
def _pairs(name, value):
    """Two ints (height, width) from an int or a pair, all >= 1."""
    values = (value, value) if np.isscalar(value) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1
                                   for v in values):
        raise ValueError(f"{name} must be positive ints (height, width), got {value!r}.")
    return tuple(int(v) for v in values)


def _padding_pairs(padding):
    """((top, bottom), (left, right)) of non-negative ints."""
    try:
        (top, bottom), (left, right) = padding
        pads = tuple(int(v) for v in (top, bottom, left, right))
    except (TypeError, ValueError):
        raise ValueError(
            f"padding must be ((top, bottom), (left, right)), got {padding!r}."
        ) from None
    if min(pads) < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}.")
    return (pads[0], pads[1]), (pads[2], pads[3])


def window_output_size(size, window, stride, pad_total, dilation=1, what="kernel"):
    """Number of window positions along one axis, or a ValueError.

    Parameters
    ----------
    size : int, input length along the axis
    window : int, kernel or pool size
    stride, pad_total, dilation : int

    Returns
    -------
    int
    """
    if max(size + pad_total, stride, dilation) > INT_MAX:
        # The kernels index with C ints: larger values would wrap around.
        raise ValueError(
            f"The {what}'s geometry is too large: the padded input ({size} + "
            f"padding {pad_total}), the stride ({stride}) and the dilation "
            f"({dilation}) must each be at most {INT_MAX}."
        )
    span = (window - 1) * dilation + 1
    if span > size + pad_total:
        raise ValueError(
            f"The {what} spans {span} positions (size {window}, dilation {dilation}) "
            f"but the padded input has only {size + pad_total} ({size} + padding "
            f"{pad_total})."
        )
    return (size + pad_total - span) // stride + 1


def _memoized(parse):
    """``parse`` remembered for hashable arguments (layers pass the same tuples
    every batch); others, e.g. lists, are parsed every time. Errors are never
    remembered: they propagate."""
    cached = functools.lru_cache(maxsize=256)(parse)

    @functools.wraps(parse)
    def wrapper(*args):
        try:
            return cached(*args)
        except TypeError as exc:  # unhashable argument
            if "unhashable" not in str(exc):
                raise
            return parse(*args)

    return wrapper


@_memoized
def _conv_geometry(X_shape, K_shape, strides, padding, dilation):
    sh, sw = _pairs("strides", strides)
    dh, dw = _pairs("dilation", dilation)
    (pt, pb), (pl, pr) = _padding_pairs(padding)
    oh = window_output_size(X_shape[2], K_shape[2], sh, pt + pb, dh)
    ow = window_output_size(X_shape[3], K_shape[3], sw, pl + pr, dw)
    return (sh, sw, pt, pl, dh, dw), (oh, ow)


def _conv_inputs(X, K):
    X = _float_array("X", X, ndim=4)
    K = _float_array("K", K, ndim=4, dtype=X.dtype)
    if K.shape[1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} channels but the kernel expects {K.shape[1]} "
            f"(kernel shape {K.shape})."
        )
    return X, K


def conv2d_forward(X, K, b=None, strides=1, padding=((0, 0), (0, 0)), dilation=1,
                   activation=None, alpha=None, out=None):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W)
    K : ndarray of shape (F, C, kh, kw)
    b : ndarray of shape (F,) or None
    strides, dilation : int or (int, int)
    padding : ((top, bottom), (left, right))
        Zeros added around the input.
    activation : str or None
    alpha : float or None
    out : ndarray of shape (n, F, OH, OW) or None, written in place when given

    Returns
    -------
    Y : ndarray of shape (n, F, OH, OW)
    """
    # Softmax normalizes each (sample, filter) plane; the kernel's fused
    # activations act on values alone, so softmax runs after it, on the planes.
    fused = None if activation == "softmax" else activation
    run, Y = _bind_conv2d_forward(*_conv_forward_inputs(X, K, b), strides, padding,
                                  dilation, fused, alpha, out)
    run()
    if activation == "softmax" and Y.size:
        planes = Y.reshape(Y.shape[0] * Y.shape[1], -1)
        planes[...] = activation_forward("softmax", planes)
    return Y


def bind_conv2d_forward(X, K, b=None, strides=1, padding=((0, 0), (0, 0)), dilation=1,
                        activation=None, alpha=None, out=None):
    """:func:`conv2d_forward` checked once and bound to its arrays; every
    activation but softmax (which :func:`conv2d_forward` applies after the
    kernel).

    Returns
    -------
    run : callable ``run()``
    Y : ndarray of shape (n, F, OH, OW)
    """
    if activation == "softmax":
        raise ValueError("A bound convolution fuses elementwise activations only, "
                         "not softmax.")
    X, K, b = _bound(("X", "K", "b"), (X, K, b), _conv_forward_inputs(X, K, b))
    return _bind_conv2d_forward(X, K, b, strides, padding, dilation, activation, alpha,
                                out)


def _conv_forward_inputs(X, K, b):
    X, K = _conv_inputs(X, K)
    if b is not None:
        b = _float_array("b", b, ndim=1, dtype=X.dtype)
        if b.shape[0] != K.shape[0]:
            raise ValueError(f"b has shape {b.shape}, expected ({K.shape[0]},).")
    return X, K, b


def _bind_conv2d_forward(X, K, b, strides, padding, dilation, activation, alpha, out):
    geometry, (oh, ow) = _conv_geometry(X.shape, K.shape, strides, padding, dilation)
    code = 0 if activation is None else _activation_code(activation)
    alpha = _alpha(activation, alpha)
    Y = _output(out, "out", (X.shape[0], K.shape[0], oh, ow), X.dtype, (X, K))
    work = Y.size * K[0].size

    def run():
        _conv.conv2d_forward(X, K, b, Y, *geometry, code, alpha, _threads_for(work))
    return run, Y


def conv2d_backward_input(dY, K, input_hw, strides=1, padding=((0, 0), (0, 0)),
                          dilation=1, out=None):
    """Gradient of :func:`conv2d_forward` (without activation) for its input.

    Parameters
    ----------
    dY : ndarray of shape (n, F, OH, OW)
    K : ndarray of shape (F, C, kh, kw)
    input_hw : (H, W), the input's spatial size
    strides, padding, dilation : as in :func:`conv2d_forward`
    out : ndarray of shape (n, C, H, W) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (n, C, H, W)
    """
    run, dX = _bind_conv2d_backward_input(*_conv_grad_inputs(dY, K), input_hw, strides,
                                          padding, dilation, out)
    run()
    return dX


def bind_conv2d_backward_input(dY, K, input_hw, strides=1, padding=((0, 0), (0, 0)),
                               dilation=1, out=None):
    """:func:`conv2d_backward_input` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
    dX : ndarray of shape (n, C, H, W)
    """
    dY, K = _bound(("dY", "K"), (dY, K), _conv_grad_inputs(dY, K))
    return _bind_conv2d_backward_input(dY, K, input_hw, strides, padding, dilation, out)


def _conv_grad_inputs(dY, K):
    dY = _float_array("dY", dY, ndim=4)
    return dY, _float_array("K", K, ndim=4, dtype=dY.dtype)


def _bind_conv2d_backward_input(dY, K, input_hw, strides, padding, dilation, out):
    H, W = (int(v) for v in input_hw)
    x_shape = (dY.shape[0], K.shape[1], H, W)
    geometry, out_hw = _conv_geometry(x_shape, K.shape, strides, padding, dilation)
    if dY.shape[1:] != (K.shape[0],) + out_hw:
        raise ValueError(
            f"dY has shape {dY.shape[1:]} per sample but the convolution gives "
            f"{(K.shape[0],) + out_hw}."
        )
    dX = _output(out, "out", x_shape, dY.dtype, (dY, K))
    work = dY.size * K[0].size

    def run():
        _conv.conv2d_backward_input(dY, K, dX, *geometry, _threads_for(work))
    return run, dX


def conv2d_backward_params(X, dY, sample_weight=None, scale=1.0, accumulate_dtype=None,
                           kernel_hw=None, strides=1, padding=((0, 0), (0, 0)),
                           dilation=1, dK=None, db=None):
    """Kernel and bias gradients of :func:`conv2d_forward`, summed over the batch.

    ``dK = scale * sum_i w_i dK_i`` and ``db = scale * sum_i w_i sum(dY_i)``,
    summed over fixed chunks of samples so the result does not depend on the
    thread count; ``accumulate_dtype=float64`` sums in float64 (see
    :func:`dense_param_grads`).

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W)
    dY : ndarray of shape (n, F, OH, OW), per-sample gradients
    sample_weight : ndarray of shape (n,) or None
    scale : float
    accumulate_dtype : {None, numpy.float32, numpy.float64}
    kernel_hw : (kh, kw)
    strides, padding, dilation : as in :func:`conv2d_forward`
    dK : ndarray of shape (F, C, kh, kw) or None, written in place when given
    db : ndarray of shape (F,) or None, written in place when given

    Returns
    -------
    dK, db
    """
    run, dK, db = _bind_conv2d_backward_params(
        *_conv_param_inputs(X, dY, sample_weight), accumulate_dtype, kernel_hw, strides,
        padding, dilation, dK, db)
    run(scale)
    return dK, db


def bind_conv2d_backward_params(X, dY, sample_weight=None, accumulate_dtype=None,
                                kernel_hw=None, strides=1, padding=((0, 0), (0, 0)),
                                dilation=1, dK=None, db=None):
    """:func:`conv2d_backward_params` checked once and bound to its arrays;
    ``sample_weight`` is read at every call.

    Returns
    -------
    run : callable ``run(scale)``
    dK : ndarray of shape (F, C, kh, kw)
    db : ndarray of shape (F,)
    """
    checked = _bound(("X", "dY", "sample_weight"), (X, dY, sample_weight),
                     _conv_param_inputs(X, dY, sample_weight))
    return _bind_conv2d_backward_params(*checked, accumulate_dtype, kernel_hw, strides,
                                        padding, dilation, dK, db)


def _conv_param_inputs(X, dY, sample_weight):
    X = _float_array("X", X, ndim=4)
    dY = _float_array("dY", dY, ndim=4, dtype=X.dtype)
    return X, dY, _weights(sample_weight, X.shape[0])


def _bind_conv2d_backward_params(X, dY, w, accumulate_dtype, kernel_hw, strides, padding,
                                 dilation, dK, db):
    n, C = X.shape[:2]
    F = dY.shape[1]
    kh, kw = _pairs("kernel_hw", kernel_hw)
    geometry, out_hw = _conv_geometry(X.shape, (F, C, kh, kw), strides, padding, dilation)
    if dY.shape != (n, F) + out_hw:
        raise ValueError(f"dY has shape {dY.shape}, expected {(n, F) + out_hw}.")
    dK = _output(dK, "dK", (F, C, kh, kw), X.dtype)
    db = _output(db, "db", (F,), X.dtype)
    acc = _accumulation_dtype(accumulate_dtype, X.dtype)
    target_K = dK if acc == dK.dtype else np.empty(dK.shape, acc)
    target_b = db if acc == db.dtype else np.empty(db.shape, acc)
    n_chunks = max(1, -(-n // _conv.CHUNK_))
    partial_K = np.empty((n_chunks, F * C * kh * kw), dtype=acc)
    partial_b = np.empty((n_chunks, F))
    work = dY.size * C * kh * kw

    def run(scale):
        A, B = (X, dY) if acc == X.dtype else (X.astype(acc), dY.astype(acc))
        _conv.conv2d_backward_params(A, B, w, float(scale), target_K, target_b,
                                     partial_K, partial_b, *geometry, _threads_for(work))
        if target_K is not dK:
            dK[...] = target_K
            db[...] = target_b
    return run, dK, db


@_memoized
def _pool_geometry(X_shape, pool, strides, padding):
    kh, kw = _pairs("pool_size", pool)
    sh, sw = _pairs("strides", strides)
    (pt, pb), (pl, pr) = _padding_pairs(padding)
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        raise ValueError(
            f"padding {padding} must be smaller than the pool size {(kh, kw)}: a "
            "window would hold only padding."
        )
    oh = window_output_size(X_shape[2], kh, sh, pt + pb, what="pool")
    ow = window_output_size(X_shape[3], kw, sw, pl + pr, what="pool")
    return (kh, kw, sh, sw, pt, pl), (oh, ow)


def maxpool2d_forward(X, pool_size, strides=None, padding=((0, 0), (0, 0)), out=None,
                      argmax_out=None):
    """Max over windows of each channel.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W)
    pool_size : int or (int, int)
    strides : int or (int, int) or None (= pool_size); smaller strides overlap
    padding : ((top, bottom), (left, right)); padding never wins the max
    out, argmax_out : ndarrays of shape (n, C, OH, OW) (float, int32) or None,
        written in place when given

    Returns
    -------
    Y : ndarray of shape (n, C, OH, OW)
    argmax : int32 ndarray of shape (n, C, OH, OW), flat position ``ih * W + iw``
        of each maximum in its input plane
    """
    run, Y, argmax = _bind_maxpool2d_forward(_float_array("X", X, ndim=4), pool_size,
                                             strides, padding, out, argmax_out)
    run()
    return Y, argmax


def bind_maxpool2d_forward(X, pool_size, strides=None, padding=((0, 0), (0, 0)), out=None,
                           argmax_out=None):
    """:func:`maxpool2d_forward` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
    Y : ndarray of shape (n, C, OH, OW)
    argmax : int32 ndarray of shape (n, C, OH, OW)
    """
    X, = _bound(("X",), (X,), (_float_array("X", X, ndim=4),))
    return _bind_maxpool2d_forward(X, pool_size, strides, padding, out, argmax_out)


def _bind_maxpool2d_forward(X, pool_size, strides, padding, out, argmax_out):
    geometry, out_hw = _pool_geometry(X.shape, pool_size,
                                      pool_size if strides is None else strides, padding)
    Y = _output(out, "out", X.shape[:2] + out_hw, X.dtype, (X,))
    argmax = _output(argmax_out, "argmax_out", Y.shape, np.dtype(np.int32), (X, Y))
    work = ELEMENT_WORK * Y.size * geometry[0] * geometry[1]

    def run():
        _pool.maxpool2d_forward(X, Y, argmax, *geometry, _threads_for(work))
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
        _pool.maxpool2d_backward(dY, argmax, dX, _threads_for(work))
    return run, dX


def avgpool2d_forward(X, pool_size, strides=None, padding=((0, 0), (0, 0))):
    """Mean over windows of each channel; padding is not counted.

    Parameters
    ----------
    X : ndarray of shape (n, C, H, W)
    pool_size, strides, padding : as in :func:`maxpool2d_forward`

    Returns
    -------
    Y : ndarray of shape (n, C, OH, OW)
    """
    X = _float_array("X", X, ndim=4)
    geometry, out_hw = _pool_geometry(X.shape, pool_size,
                                      pool_size if strides is None else strides, padding)
    Y = np.empty(X.shape[:2] + out_hw, dtype=X.dtype)
    _pool.avgpool2d_forward(X, Y, *geometry,
                            _threads_for(ELEMENT_WORK * Y.size * geometry[0] * geometry[1]))
    return Y


def avgpool2d_backward(dY, input_hw, pool_size, strides=None, padding=((0, 0), (0, 0))):
    """Gradient of :func:`avgpool2d_forward`.

    Parameters
    ----------
    dY : ndarray of shape (n, C, OH, OW)
    input_hw : (H, W)
    pool_size, strides, padding : as in the forward pass

    Returns
    -------
    dX : ndarray of shape (n, C, H, W)
    """
    dY = _float_array("dY", dY, ndim=4)
    H, W = (int(v) for v in input_hw)
    x_shape = dY.shape[:2] + (H, W)
    geometry, out_hw = _pool_geometry(x_shape, pool_size,
                                      pool_size if strides is None else strides, padding)
    if dY.shape[2:] != out_hw:
        raise ValueError(f"dY has spatial shape {dY.shape[2:]}, the pool gives {out_hw}.")
    dX = np.empty(x_shape, dtype=dY.dtype)
    _pool.avgpool2d_backward(dY, dX, *geometry,
                             _threads_for(ELEMENT_WORK * dY.size * geometry[0] * geometry[1]))
    return dX


# Gate blocks per cell: SimpleRNN (a), GRU (r, z, n), LSTM (i, f, g, o).
RECURRENT_GATES = dict(_recurrent.GATES)
# Gates need an activation without a parameter and with a derivative that is
# a function of its output.
GATE_ACTIVATIONS = ("sigmoid", "tanh", "linear", "softsign", "elliot", "symmetric_elliot")


class RecurrentState:
    """What :func:`recurrent_forward` keeps for :func:`recurrent_backward`.

    Attributes
    ----------
    H : ndarray (n, T+1, u), H[:, 0] the initial state (zeros), H[:, s+1] the
        state after step s
    C : ndarray (n, T+1, u), LSTM cell states, or None
    gates : ndarray (n, T, G*u), gate values after their activations, or None
    extra : ndarray (n, T, u), act(c) (LSTM) or h @ U_n + b_hn (GRU), or None
    mask : uint8 ndarray (n, T) or None
    """

    def __init__(self, H, C, gates, extra, mask):
        self.H, self.C, self.gates, self.extra, self.mask = H, C, gates, extra, mask


def _recurrent_setup(cell, X, W, U, activation, recurrent_activation, alpha):
    if cell not in RECURRENT_GATES:
        raise ValueError(f"Unknown cell {cell!r}; expected one of {sorted(RECURRENT_GATES)}.")
    X = _float_array("X", X, ndim=3)
    W = _float_array("W", W, ndim=2, dtype=X.dtype)
    U = _float_array("U", U, ndim=2, dtype=X.dtype)
    G = RECURRENT_GATES[cell]
    u = U.shape[0]
    if U.shape != (u, G * u) or W.shape != (X.shape[2], G * u):
        raise ValueError(
            f"A {cell} cell of {u} units on {X.shape[2]} features needs W of shape "
            f"{(X.shape[2], G * u)} and U of shape {(u, G * u)}; got {W.shape} and {U.shape}."
        )
    if activation == "softmax":
        raise ValueError("activation='softmax' is not elementwise; a recurrent cell needs "
                         "an elementwise activation.")
    if recurrent_activation not in GATE_ACTIVATIONS:
        raise ValueError(f"recurrent_activation must be one of {GATE_ACTIVATIONS}, "
                         f"got {recurrent_activation!r}.")
    codes = (_activation_code(activation), _alpha(activation, alpha),
             _activation_code(recurrent_activation))
    return X, W, U, G, u, codes


def _recurrent_work(X, U, projects_input):
    """Multiply-adds of a recurrent kernel call on X (n, T, k) with U (u, G*u):
    the state product of every step, and the input product when the kernel
    projects each step itself (inference)."""
    n, T, k = X.shape
    u, gu = U.shape
    return n * T * ((u + (k if projects_input else 0)) * gu + ELEMENT_WORK * gu)


def _recurrent_mask(mask, n, T):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != (n, T):
        raise ValueError(f"mask must have shape {(n, T)}, got {mask.shape}.")
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _new_array(key, shape, dtype):
    return np.empty(shape, dtype)


def recurrent_forward(cell, X, W, U, b=None, bh=None, mask=None, activation="tanh",
                      recurrent_activation="sigmoid", alpha=None, scratch=None,
                      keep="all"):
    """Run a recurrent cell over sequences, step 0 first.

    Parameters
    ----------
    cell : {'simple', 'gru', 'lstm'}
    X : ndarray of shape (n, T, k)
    W : ndarray of shape (k, G*u), input kernel; G = 1, 3, 4 gate blocks
    U : ndarray of shape (u, G*u), recurrent kernel
    b : ndarray of shape (G*u,) or None, input bias
    bh : ndarray of shape (G*u,) or None, recurrent bias (GRU's ``b_hn`` acts
        inside the reset gate, so it is kept apart)
    mask : bool ndarray of shape (n, T) or None; a False step keeps the state
    activation : str, candidate / output activation (not softmax)
    recurrent_activation : str, gate activation, one of GATE_ACTIVATIONS
    alpha : float or None, parameter of ``activation``
    scratch : callable ``(key, shape, dtype) -> array`` or None
        Where the arrays come from (a layer's reusable training buffers);
        None allocates new ones.
    keep : {'all', 'states', 'last'}
        What to keep: everything backward needs ('all'); every state H but no
        gates ('states'); only the last state ('last', then ``H`` has two
        steps and the last state is ``H[:, T % 2]``). Inference needs far
        less memory with the latter two.

    Returns
    -------
    RecurrentState
    """
    X, W, U, G, u, (act, alpha_, ract) = _recurrent_setup(
        cell, X, W, U, activation, recurrent_activation, alpha)
    n, T, k = X.shape
    if bh is not None:
        if cell != "gru":
            raise ValueError("Only the GRU cell has a recurrent bias.")
        bh = _float_array("bh", bh, ndim=1, dtype=X.dtype)
        if bh.shape != (G * u,):
            raise ValueError(f"bh has shape {bh.shape}, expected {(G * u,)}.")
    mask = _recurrent_mask(mask, n, T)
    new = _new_array if scratch is None else scratch
    dtype = X.dtype
    if keep not in ("all", "states", "last"):
        raise ValueError(f"keep must be 'all', 'states' or 'last', got {keep!r}.")
    steps = T if keep == "all" else 1
    H = new("H", (n, 2 if keep == "last" else T + 1, u), dtype)
    C = new("C", (n, T + 1 if keep == "all" else 2, u), dtype) if cell == "lstm" else None
    gates = new("gates", (n, steps, G * u), dtype) if cell != "simple" else None
    extra = new("extra", (n, steps, u), dtype) if cell != "simple" else None
    if b is not None:
        b = _float_array("b", b, ndim=1, dtype=dtype)
        if b.shape != (G * u,):
            raise ValueError(f"b has shape {b.shape}, expected {(G * u,)}.")
    XW = None
    if keep == "all":
        # Training projects every step in one product; an LSTM straight into
        # its gates (the kernel adds h @ U there). Inference lets the kernel
        # project step by step, without the (n, T, G*u) array.
        fused = cell == "lstm"
        XW = dense_forward(X.reshape(n * T, k), W, b,
                           out=(gates.reshape(n * T, G * u) if fused
                                else new("XW", (n * T, G * u), dtype))).reshape(n, T, G * u)
    _recurrent.recurrent_forward(_recurrent.CELLS[cell], act, alpha_, ract, U, XW, X, W, b,
                                 bh, mask, H, C, gates, extra,
                                 _threads_for(_recurrent_work(X, U, XW is None)))
    return RecurrentState(H, C, gates, extra, mask)


def _stacked_param_grads(blocks, dG, rows_w, scale, accumulate_dtype, new):
    """Gradients of the weights that multiply ``blocks`` and of the bias.

    ``[A_1, ..., A_m, 1].T @ (w * dG) * scale`` in one product over the rows,
    each A_i (n, T, k_i) read as (n*T, k_i): the last row of the result, from
    the column of ones, is the bias gradient.

    Returns
    -------
    list of ndarray: (k_i, q) for each block, then (q,)
    """
    rows, q = dG.shape
    acc = _accumulation_dtype(accumulate_dtype, dG.dtype)
    widths = [a.shape[-1] for a in blocks]
    A = new("stacked", (rows, sum(widths) + 1), acc)
    start = 0
    for a, width in zip(blocks, widths):
        A[:, start:start + width] = a.reshape(rows, width)
        start += width
    A[:, -1] = 1
    B = dG if acc == dG.dtype else dG.astype(acc)
    if rows_w is not None:
        B = np.multiply(B, rows_w.astype(acc, copy=False)[:, None])
    total = np.empty((start + 1, q), acc)
    _dense.gemm_tn(scale, A, np.ascontiguousarray(B), total, _threads_for(A.size * q))
    total = total.astype(dG.dtype, copy=False)
    pieces, start = [], 0
    for width in widths:
        pieces.append(total[start:start + width])
        start += width
    return pieces + [total[start]]


def recurrent_backward(cell, dY, X, W, U, state, sample_weight=None, scale=1.0,
                       accumulate_dtype=None, activation="tanh",
                       recurrent_activation="sigmoid", alpha=None, need_input_grad=True,
                       scratch=None):
    """Gradients of :func:`recurrent_forward` (backpropagation through time).

    Parameters
    ----------
    cell, X, W, U, activation, recurrent_activation, alpha : as in the forward call
    dY : ndarray of shape (n, T, u), gradient for each step's state H[:, s+1],
        or (n, 1, u): for the last step's only
    state : RecurrentState from the forward call
    sample_weight, scale, accumulate_dtype : as in :func:`dense_param_grads`
    need_input_grad : bool, False skips dX
    scratch : as in :func:`recurrent_forward`

    Returns
    -------
    dX : ndarray (n, T, k) or None
    dW : ndarray (k, G*u)
    dU : ndarray (u, G*u)
    db : ndarray (G*u,), input bias gradient
    dbh : ndarray (G*u,), recurrent bias gradient (GRU; for the other cells it
        equals db)
    """
    X, W, U, G, u, (act, alpha_, ract) = _recurrent_setup(
        cell, X, W, U, activation, recurrent_activation, alpha)
    n, T, k = X.shape
    dY = _float_array("dY", dY, ndim=3, dtype=X.dtype)
    if dY.shape not in ((n, T, u), (n, 1, u)) or state.H.shape != (n, T + 1, u):
        raise ValueError(f"dY must have shape {(n, T, u)} or {(n, 1, u)} (got {dY.shape}) "
                         "and state must come from the forward call on this X, with "
                         "keep='all'.")
    new = _new_array if scratch is None else scratch
    dGx = new("dGx", (n, T, G * u), X.dtype)
    dGh = new("dGh", (n, T, G * u), X.dtype) if cell == "gru" else None
    _recurrent.recurrent_backward(_recurrent.CELLS[cell], act, alpha_, ract, dY, U, state.mask,
                                  state.H, state.C, state.gates, state.extra, dGx, dGh,
                                  _threads_for(_recurrent_work(X, U, False)))
    rows_w = None if sample_weight is None else np.repeat(_weights(sample_weight, n), T)
    dGx2 = dGx.reshape(n * T, G * u)
    H_prev = state.H[:, :T]
    if dGh is None:
        # Both kernels multiply the same gate gradients: one product over the
        # rows [x_s, h_{s-1}, 1] gives dW, dU and the bias gradient together.
        dW, dU, db = _stacked_param_grads([X, H_prev], dGx2, rows_w, scale,
                                          accumulate_dtype, new)
        dbh = db
    else:
        dW, db = _stacked_param_grads([X], dGx2, rows_w, scale, accumulate_dtype, new)
        dU, dbh = _stacked_param_grads([H_prev], dGh.reshape(n * T, G * u), rows_w, scale,
                                       accumulate_dtype, new)
    dX = None
    if need_input_grad:
        dX = dense_backward_input(dGx2, W, out=new("dX", (n * T, k), X.dtype)).reshape(n, T, k)
    return dX, dW, dU, db, dbh


def embedding_indices(X, input_dim):
    """Integer token indices from ``X``, or a clear error.

    Parameters
    ----------
    X : array-like of shape (n, steps), whole numbers (any numeric dtype)
    input_dim : int, size of the vocabulary

    Returns
    -------
    indices : int64 ndarray of shape (n, steps)
    """
    X = np.asarray(X)
    if X.dtype.kind not in "iuf":
        raise TypeError(f"Token indices must be numeric, got dtype {X.dtype}.")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError("Token indices must be whole numbers; got NaN or infinity.")
    # The range first, on the values as given: a cast of an index beyond int64
    # would wrap around.
    if X.size and (X.min() < 0 or X.max() >= input_dim):
        raise ValueError(
            f"Token indices must be in [0, {input_dim}) (input_dim={input_dim}); got "
            f"values from {X.min()} to {X.max()}."
        )
    indices = X.astype(np.int64)
    if X.dtype.kind == "f" and not np.array_equal(indices, X):
        raise ValueError("Token indices must be whole numbers; got fractional values.")
    return indices


def embedding_backward(indices, dY, input_dim, sample_weight=None, scale=1.0,
                       accumulate_dtype=None, dE=None):
    """Gradient of ``E[indices]`` for the table ``E``: rows summed per token.

    Parameters
    ----------
    indices : int64 ndarray (n, steps), from :func:`embedding_indices`
    dY : ndarray (n, steps, d), per-sample gradients of the looked-up rows
    input_dim : int
    sample_weight : ndarray (n,) or None
    scale : float
    accumulate_dtype : {None, numpy.float32, numpy.float64}
    dE : ndarray (input_dim, d) or None, written in place when given

    Returns
    -------
    dE : ndarray (input_dim, d)
    """
    dY = _float_array("dY", dY, ndim=3)
    n, steps, d = dY.shape
    if indices.shape != (n, steps):
        raise ValueError(f"indices has shape {indices.shape}, expected {(n, steps)}.")
    acc = _accumulation_dtype(accumulate_dtype, dY.dtype)
    rows = dY.reshape(n * steps, d).astype(acc)
    w = _weights(sample_weight, n)
    if w is not None:
        rows *= np.repeat(w, steps).astype(acc)[:, None]
    total = np.zeros((input_dim, d), acc)
    # np.add.at adds in index order: the same sums for any thread count.
    np.add.at(total, indices.ravel(), rows)
    dE = _output(dE, "dE", (input_dim, d), dY.dtype)
    dE[...] = scale * total
    return dE


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
    n_threads = _threads_for(ELEMENT_WORK * X.size)
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
    _norm.channel_affine(X, a, shift, Y, _threads_for(ELEMENT_WORK * X.size))
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
    n_threads = _threads_for(ELEMENT_WORK * dY.size)
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
    _norm.prelu_forward(X, a, Y, _threads_for(ELEMENT_WORK * X.size))
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
                         _threads_for(ELEMENT_WORK * X.size))
    return dX, dalpha.astype(X.dtype)
