"""Layer normalization and scaled dot-product attention ops
(skdl._kernels._attention).

Layer normalization normalizes each row of X (m, C) over its C values, its
statistics summed in lanes of X's dtype in a fixed order; gamma's and beta's
gradients are summed in float64 over fixed chunks of rows, so they do not
depend on the thread count.

Attention takes Q, K (n, T, H, dk) and V (n, T, H, dv), the layout a
projection (n * T, F) @ (F, H * d) leaves once reshaped, and attends within
each (sample, head) pair: threads share out the pairs, each pair's products
run on skdl's row-invariant kernel, and the softmax with the key-padding and
causal masks is fused into the pass over each row of scores. A sample's
result does not depend on the rest of its batch or on the thread count.
Scratch is a few (T, T) blocks per thread; the weights P (n, H, T, T) exist
only when asked for (``need_weights``; the backward pass needs them).
"""
import math

import numpy as np

from .._kernels import _attention
from . import _threads
from ._checks import (
    INT_MAX,
    _accumulation_dtype,
    _bound,
    _float_array,
    _output,
    _scalar,
    _weights,
)
from ._threads import ELEMENT_WORK


# -- layer normalization -------------------------------------------------------

def _layer_norm_vectors(gamma, beta, C, dtype):
    """gamma and beta (C,) in ``dtype``, as the kernel takes them: both None
    (identity), or both arrays (the missing one filled with 1 or 0)."""
    if gamma is None and beta is None:
        return None, None
    vectors = []
    for name, v, default in (("gamma", gamma, 1.0), ("beta", beta, 0.0)):
        if v is None:
            vectors.append(np.full(C, default, dtype))
            continue
        v = np.asarray(v)
        if v.dtype.kind != "f" or v.shape != (C,):
            raise ValueError(f"{name} must be a float array of shape ({C},), got "
                             f"{v.dtype} {v.shape}.")
        vectors.append(np.ascontiguousarray(v, dtype=dtype))
    return tuple(vectors)


def _finite(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    return float(value)


def _layer_norm_input(X, name="X"):
    X = _float_array(name, X, ndim=2)
    if X.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column to normalize, got shape "
                         f"{X.shape}.")
    if X.shape[1] > INT_MAX:
        raise ValueError(f"{name} has {X.shape[1]} columns; the kernels take at most "
                         f"{INT_MAX}.")
    return X


def layer_norm_forward(X, gamma=None, beta=None, epsilon=1e-3, out=None, xhat_out=None,
                       inv_std_out=None):
    """Each row of X normalized over its C values, then scaled and shifted.

    ``Xhat = (X - mean) / sqrt(var + epsilon)`` with the row's mean and
    biased variance (two passes, summed in 16 float32 or 8 float64 lanes
    added in a fixed order), ``Y = gamma * Xhat + beta``.
    Rows are independent: a row's result does not depend on the others.

    Parameters
    ----------
    X : ndarray of shape (m, C)
    gamma : ndarray of shape (C,) or None
        Scale; None is ones.
    beta : ndarray of shape (C,) or None
        Shift; None is zeros.
    epsilon : float > 0
        Added to the variance (1e-3 as Keras' LayerNormalization; PyTorch's
        nn.LayerNorm uses 1e-5).
    out, xhat_out : ndarray of shape (m, C) or None, written in place when given
    inv_std_out : ndarray of shape (m,) or None, written in place when given

    Returns
    -------
    Y, Xhat : ndarray of shape (m, C), X's dtype
    inv_std : ndarray of shape (m,), ``1 / sqrt(var + epsilon)`` of each row
    """
    run, Y, Xhat, inv_std = bind_layer_norm_forward(
        _layer_norm_input(X), gamma, beta, epsilon, out, xhat_out, inv_std_out)
    run()
    return Y, Xhat, inv_std


def bind_layer_norm_forward(X, gamma=None, beta=None, epsilon=1e-3, out=None, xhat_out=None,
                            inv_std_out=None):
    """:func:`layer_norm_forward` checked once and bound to its arrays, for a
    training loop that calls it every batch (gamma and beta are read at
    every call, so they may be parameters an optimizer updates in place).

    Parameters
    ----------
    X : ndarray of shape (m, C), C-contiguous float32 or float64
    gamma, beta, epsilon, out, xhat_out, inv_std_out
        As in :func:`layer_norm_forward`.

    Returns
    -------
    run : callable ``run()``
        Writes Y, Xhat and inv_std from the values the arrays hold then.
    Y, Xhat : ndarray of shape (m, C)
    inv_std : ndarray of shape (m,)
    """
    (X,) = _bound(("X",), (X,), (_layer_norm_input(X),))
    m, C = X.shape
    epsilon = _scalar("epsilon", epsilon, 0.0, low_open=True)
    _layer_norm_vectors(gamma, beta, C, X.dtype)  # checked now, read at every call
    Y = _output(out, "out", (m, C), X.dtype, (X,))
    Xhat = _output(xhat_out, "xhat_out", (m, C), X.dtype, (X, Y))
    inv_std = _output(inv_std_out, "inv_std_out", (m,), X.dtype, (X, Y, Xhat))
    work = ELEMENT_WORK * X.size

    def run():
        g, b = _layer_norm_vectors(gamma, beta, C, X.dtype)
        _attention.layer_norm_forward(X, g, b, epsilon, Y, Xhat, inv_std,
                                      _threads.threads_for(work))
    return run, Y, Xhat, inv_std


def layer_norm_backward(dY, Xhat, inv_std, gamma=None, sample_weight=None, scale=1.0,
                        accumulate_dtype=None, need_input_grad=True, out=None, dgamma=None,
                        dbeta=None):
    """Gradients of :func:`layer_norm_forward`.

    ``dgamma = scale * sum_i w_i dY_i * Xhat_i`` and ``dbeta = scale * sum_i
    w_i dY_i``, summed in float64 over fixed chunks of rows added in order
    (the same for any thread count); ``dX_i = inv_std_i (g - mean(g) - Xhat_i
    mean(g * Xhat_i))`` with ``g = gamma * dY_i``, each row on its own (the
    sample weight belongs to the loss, which scaled dY already).

    Parameters
    ----------
    dY, Xhat : ndarray of shape (m, C)
    inv_std : ndarray of shape (m,)
    gamma : ndarray of shape (C,) or None (ones)
    sample_weight : ndarray of shape (m,) or None, row weights of the sums
    scale : float
    accumulate_dtype : {None, numpy.float32, numpy.float64}
        Accepted for the signature the parameter gradients share; these sums
        always run in float64 (C values per row: the cost is nil), so both
        give the float64 result.
    need_input_grad : bool
    out : ndarray of shape (m, C) or None, written in place when given
    dgamma, dbeta : ndarray of shape (C,) or None, written in place when given

    Returns
    -------
    dX : ndarray of shape (m, C), or None without ``need_input_grad``
    dgamma, dbeta : ndarray of shape (C,), dY's dtype
    """
    run, dX, dgamma, dbeta = _bind_layer_norm_backward(
        _layer_norm_input(dY, "dY"), Xhat, inv_std, gamma, _weights(sample_weight, len(dY)),
        accumulate_dtype, need_input_grad, out, dgamma, dbeta)
    run(scale)
    return dX, dgamma, dbeta


def bind_layer_norm_backward(dY, Xhat, inv_std, gamma=None, sample_weight=None,
                             accumulate_dtype=None, need_input_grad=True, out=None,
                             dgamma=None, dbeta=None):
    """:func:`layer_norm_backward` checked once and bound to its arrays, for a
    training loop that calls it every batch (gamma and the sample weights are
    read at every call).

    Parameters
    ----------
    dY, Xhat, inv_std, gamma, accumulate_dtype, need_input_grad, out, dgamma, dbeta
        As in :func:`layer_norm_backward`; dY, Xhat and inv_std C-contiguous.
    sample_weight : float64 ndarray of shape (m,) or None
        Read at every call (a training pass refills it for every batch).

    Returns
    -------
    run : callable ``run(scale)``
        Writes dX (when asked for), dgamma and dbeta from the values the
        arrays hold then.
    dX : ndarray of shape (m, C) or None
    dgamma, dbeta : ndarray of shape (C,)
    """
    checked = _bound(("dY", "sample_weight"), (dY, sample_weight),
                     (_layer_norm_input(dY, "dY"), _weights(sample_weight, len(dY))))
    return _bind_layer_norm_backward(*checked[:1], Xhat, inv_std, gamma, checked[1],
                                     accumulate_dtype, need_input_grad, out, dgamma, dbeta)


def _bind_layer_norm_backward(dY, Xhat, inv_std, gamma, w, accumulate_dtype,
                              need_input_grad, out, dgamma, dbeta):
    m, C = dY.shape
    Xhat = _float_array("Xhat", Xhat, dtype=dY.dtype)
    if Xhat.shape != dY.shape:
        raise ValueError(f"Xhat has shape {Xhat.shape}, dY has {dY.shape}.")
    inv_std = _float_array("inv_std", inv_std, dtype=dY.dtype)
    if inv_std.shape != (m,):
        raise ValueError(f"inv_std must have shape ({m},), got {inv_std.shape}.")
    _layer_norm_vectors(gamma, None, C, dY.dtype)  # checked now, read at every call
    _accumulation_dtype(accumulate_dtype, np.float64)
    dX = (_output(out, "out", (m, C), dY.dtype, (dY, Xhat, inv_std))
          if need_input_grad else None)
    dgamma = _output(dgamma, "dgamma", (C,), dY.dtype, (dY, Xhat))
    dbeta = _output(dbeta, "dbeta", (C,), dY.dtype, (dY, Xhat, dgamma))
    n_chunks = max(1, -(-m // _attention.CHUNK_))
    g64, b64 = np.empty(C), np.empty(C)
    chunk_g, chunk_b = np.empty((n_chunks, C)), np.empty((n_chunks, C))
    work = ELEMENT_WORK * dY.size

    def run(scale):
        if w is not None and not np.isfinite(w).all():
            raise ValueError("sample_weight must hold finite values.")
        scale = _finite("scale", scale)
        g = None if gamma is None else _layer_norm_vectors(gamma, None, C, dY.dtype)[0]
        _attention.layer_norm_backward(dY, Xhat, inv_std, g, w, scale, dX, g64, b64,
                                       chunk_g, chunk_b, _threads.threads_for(work))
        dgamma[...] = g64
        dbeta[...] = b64
    return run, dX, dgamma, dbeta


# -- attention -----------------------------------------------------------------

def _qkv(Q, K, V):
    """Q, K (n, T, H, dk) and V (n, T, H, dv) checked: one float dtype,
    C-contiguous, sizes the kernels can index."""
    Q = _float_array("Q", Q, ndim=4)
    K = _float_array("K", K, ndim=4, dtype=Q.dtype)
    V = _float_array("V", V, ndim=4, dtype=Q.dtype)
    if K.shape != Q.shape:
        raise ValueError(f"K must have Q's shape {Q.shape} (n, T, H, dk), got {K.shape}.")
    if V.shape[:3] != Q.shape[:3]:
        raise ValueError(f"V must have shape (n, T, H, dv) = {Q.shape[:3] + ('dv',)} like "
                         f"Q {Q.shape}, got {V.shape}.")
    n, T, H, dk = Q.shape
    dv = V.shape[3]
    if min(T, H, dk, dv) < 1:
        raise ValueError(f"Q (n, T, H, dk) = {Q.shape} and V (n, T, H, dv) = {V.shape} "
                         "need at least one step, head and feature.")
    if max(n * H, H * dk, H * dv, T) > INT_MAX:
        raise ValueError(f"Q {Q.shape} and V {V.shape} are too large: n * H, H * dk and "
                         f"H * dv must each be at most {INT_MAX}.")
    return Q, K, V


def _scale(scale, dk):
    """The scores' factor: 1 / sqrt(dk) for None (as PyTorch and Keras)."""
    return 1.0 / math.sqrt(dk) if scale is None else _finite("scale", scale)


def _keep(keep, Q):
    """Dropout's multipliers (n, H, T, T) in Q's dtype, or None."""
    if keep is None:
        return None
    n, T, H, _ = Q.shape
    keep = _float_array("keep", keep, ndim=4, dtype=Q.dtype)
    if keep.shape != (n, H, T, T):
        raise ValueError(f"keep must have shape (n, H, T, T) = {(n, H, T, T)}, got "
                         f"{keep.shape}.")
    return keep


def _check_mask(mask, n, T):
    """The key-padding mask checked: (n, T), bool, or numbers 0/1."""
    mask = np.asarray(mask)
    if mask.shape != (n, T):
        raise ValueError(f"mask must have shape (n, T) = {(n, T)}, got {mask.shape}.")
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "iuf":
            raise TypeError(f"mask must be bool (True where the key is present), got "
                            f"dtype {mask.dtype}.")
        if mask.size and not np.isin(mask, (0, 1)).all():
            raise ValueError("mask must hold 0 or 1 (False or True) only.")
    return mask


def _mask_bytes(mask):
    """The mask as the kernel reads it, (n, T) uint8 0/1: a view of a
    C-contiguous bool array (so a bound op sees its new values), else a copy."""
    if mask.dtype == np.bool_ and mask.flags.c_contiguous:
        return mask.view(np.uint8)
    return np.ascontiguousarray(mask, dtype=np.uint8)


def attention_forward(Q, K, V, mask=None, causal=False, scale=None, keep=None,
                      need_weights=True, out=None, weights_out=None):
    """Scaled dot-product attention of every head.

    ``P = softmax(scale * Q K^T)`` over the keys each query may see, per
    sample and head, and ``O = (P * keep) V``. A query that sees no key (a
    fully padded sample) gets all-zero weights and a zero output.

    Parameters
    ----------
    Q, K : ndarray of shape (n, T, H, dk)
        Queries and keys: n samples, T steps, H heads of dk features.
    V : ndarray of shape (n, T, H, dv)
    mask : ndarray of shape (n, T), bool, or None
        True (or 1) where the key is present; None: every key is.
    causal : bool
        Hide from each query the keys after it.
    scale : float or None
        Factor of the scores; None is ``1 / sqrt(dk)`` (as PyTorch and Keras).
    keep : ndarray of shape (n, H, T, T) or None
        Dropout's multipliers (0 or ``1 / (1 - rate)``) of the weights before
        they weigh V; P is returned without them.
    need_weights : bool
        Return P. Without it no (n, H, T, T) array is made.
    out : ndarray of shape (n, T, H, dv) or None, written in place when given
    weights_out : ndarray of shape (n, H, T, T) or None, written in place
        when given (with ``need_weights`` only)

    Returns
    -------
    O : ndarray of shape (n, T, H, dv)
    P : ndarray of shape (n, H, T, T), or None without ``need_weights``
    """
    Q, K, V = _qkv(Q, K, V)
    run, O, P = _bind_attention_forward(Q, K, V, mask, causal, scale, _keep(keep, Q),
                                        need_weights, out, weights_out)
    run()
    return O, P


def bind_attention_forward(Q, K, V, mask=None, causal=False, scale=None, keep=None,
                           need_weights=True, out=None, weights_out=None):
    """:func:`attention_forward` checked once and bound to its arrays, for a
    training loop that calls it every batch.

    Q, K, V and keep must be C-contiguous arrays of one float dtype (the op
    reads them at every call); the mask is read at every call too.

    Parameters
    ----------
    Q, K, V, mask, causal, scale, keep, need_weights, out, weights_out
        As in :func:`attention_forward`.

    Returns
    -------
    run : callable ``run()``
        Writes O (and P) from the values the arrays hold then.
    O : ndarray of shape (n, T, H, dv)
    P : ndarray of shape (n, H, T, T), or None without ``need_weights``
    """
    Q, K, V = _bound(("Q", "K", "V"), (Q, K, V), _qkv(Q, K, V))
    (keep,) = _bound(("keep",), (keep,), (_keep(keep, Q),))
    return _bind_attention_forward(Q, K, V, mask, causal, scale, keep, need_weights, out,
                                   weights_out)


def _bind_attention_forward(Q, K, V, mask, causal, scale, keep, need_weights, out,
                            weights_out):
    n, T, H, dk = Q.shape
    dv = V.shape[3]
    scale = _scale(scale, dk)
    if mask is not None:
        mask = _check_mask(mask, n, T)
    if not need_weights and weights_out is not None:
        raise ValueError("weights_out is given but need_weights is False.")
    inputs = tuple(a for a in (Q, K, V, keep, mask) if a is not None)
    O = _output(out, "out", (n, T, H, dv), Q.dtype, inputs)
    P = (_output(weights_out, "weights_out", (n, H, T, T), Q.dtype, inputs + (O,))
         if need_weights else None)
    causal = bool(causal)
    work = n * H * T * T * (dk + dv)

    def run():
        m = None if mask is None else _mask_bytes(mask)
        _attention.attention_forward(Q, K, V, m, causal, scale, keep, O, P,
                                     _threads.threads_for(work))
    return run, O, P


def attention_backward(dO, Q, K, V, P, scale=None, keep=None, dq_out=None, dk_out=None,
                       dv_out=None):
    """Gradients of :func:`attention_forward` with respect to Q, K and V.

    With ``A = P * keep``: ``dV = A^T dO``, ``dP = (dO V^T) * keep``, ``dS =
    P * (dP - rowsum(dP * P))``, ``dQ = scale dS K``, ``dK = scale dS^T Q``
    per sample and head. The masks need not be given again: P is 0 where a
    key was hidden.

    Parameters
    ----------
    dO : ndarray of shape (n, T, H, dv)
    Q, K : ndarray of shape (n, T, H, dk)
    V : ndarray of shape (n, T, H, dv)
    P : ndarray of shape (n, H, T, T), the forward pass's weights
    scale : float or None, as in the forward pass (None: ``1 / sqrt(dk)``)
    keep : ndarray of shape (n, H, T, T) or None, as in the forward pass
    dq_out, dk_out : ndarray of shape (n, T, H, dk) or None, written in place
    dv_out : ndarray of shape (n, T, H, dv) or None, written in place

    Returns
    -------
    dQ, dK : ndarray of shape (n, T, H, dk)
    dV : ndarray of shape (n, T, H, dv)
    """
    run, dQ, dK, dV = _bind_attention_backward(
        *_backward_inputs(dO, Q, K, V, P, keep), scale, dq_out, dk_out, dv_out)
    run()
    return dQ, dK, dV


def bind_attention_backward(dO, Q, K, V, P, scale=None, keep=None, dq_out=None,
                            dk_out=None, dv_out=None):
    """:func:`attention_backward` checked once and bound to its arrays.

    Parameters
    ----------
    dO, Q, K, V, P, scale, keep, dq_out, dk_out, dv_out
        As in :func:`attention_backward`; the arrays C-contiguous, one float
        dtype (the op reads them at every call).

    Returns
    -------
    run : callable ``run()``
    dQ, dK : ndarray of shape (n, T, H, dk)
    dV : ndarray of shape (n, T, H, dv)
    """
    names = ("dO", "Q", "K", "V", "P", "keep")
    checked = _bound(names, (dO, Q, K, V, P, keep), _backward_inputs(dO, Q, K, V, P, keep))
    return _bind_attention_backward(*checked, scale, dq_out, dk_out, dv_out)


def _backward_inputs(dO, Q, K, V, P, keep):
    Q, K, V = _qkv(Q, K, V)
    n, T, H, _ = Q.shape
    dO = _float_array("dO", dO, ndim=4, dtype=Q.dtype)
    if dO.shape != V.shape:
        raise ValueError(f"dO must have V's shape {V.shape}, got {dO.shape}.")
    P = _float_array("P", P, ndim=4, dtype=Q.dtype)
    if P.shape != (n, H, T, T):
        raise ValueError(f"P must have shape (n, H, T, T) = {(n, H, T, T)}, got {P.shape}.")
    return dO, Q, K, V, P, _keep(keep, Q)


def _bind_attention_backward(dO, Q, K, V, P, keep, scale, dq_out, dk_out, dv_out):
    n, T, H, dk = Q.shape
    dv = V.shape[3]
    scale = _scale(scale, dk)
    inputs = tuple(a for a in (dO, Q, K, V, P, keep) if a is not None)
    dQ = _output(dq_out, "dq_out", Q.shape, Q.dtype, inputs)
    dK = _output(dk_out, "dk_out", K.shape, Q.dtype, inputs + (dQ,))
    dV = _output(dv_out, "dv_out", V.shape, Q.dtype, inputs + (dQ, dK))
    work = 2 * n * H * T * T * (dk + dv)

    def run():
        _attention.attention_backward(dO, Q, K, V, P, scale, keep, dQ, dK, dV,
                                      _threads.threads_for(work))
    return run, dQ, dK, dV


# -- residual additions ----------------------------------------------------------

def residual_add(A, B, out=None):
    """``A + B`` elementwise on the OpenMP threads (an encoder block's
    residual sums; numpy's add runs on one thread).

    Parameters
    ----------
    A, B : ndarray of one shape and float dtype
    out : ndarray of that shape or None
        Written in place when given; it may be ``A`` or ``B`` itself, but
        must not partly overlap them.

    Returns
    -------
    Y : ndarray of A's shape
    """
    run, Y = _bind_residual_add(*_residual_inputs(A, B), out)
    run()
    return Y


def bind_residual_add(A, B, out=None):
    """:func:`residual_add` checked once and bound to its arrays.

    Returns
    -------
    run : callable ``run()``
        Writes ``A + B`` from the values the arrays hold then.
    Y : ndarray of A's shape
    """
    A, B = _bound(("A", "B"), (A, B), _residual_inputs(A, B))
    return _bind_residual_add(A, B, out)


def _residual_inputs(A, B):
    A = _float_array("A", A)
    B = _float_array("B", B, dtype=A.dtype)
    if B.shape != A.shape:
        raise ValueError(f"A has shape {A.shape} but B has {B.shape}.")
    return A, B


def _bind_residual_add(A, B, out):
    # An output that is one of the inputs is read and written at the same
    # index only; any other overlap is refused.
    Y = _output(out, "out", A.shape, A.dtype,
                tuple(a for a in (A, B) if out is None or a is not out))
    a, b, y = A.reshape(-1), B.reshape(-1), Y.reshape(-1)
    work = ELEMENT_WORK * A.size

    def run():
        _attention.residual_add(a, b, y, _threads.threads_for(work))
    return run, Y
