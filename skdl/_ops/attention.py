"""Layer normalization and scaled dot-product attention ops.

TEMPORARY numpy bodies: the API below is final, the Cython kernels
(skdl._kernels._attention) replace these bodies.
"""
import numpy as np

from ._checks import _float_array


def _vec(v, C, default, dtype):
    return np.full(C, default, dtype) if v is None else np.asarray(v, dtype)


def layer_norm_forward(X, gamma=None, beta=None, epsilon=1e-3, out=None, xhat_out=None,
                       inv_std_out=None):
    """Rows X (m, C) normalized over their C values.

    Returns
    -------
    Y, Xhat : ndarray of shape (m, C)
    inv_std : ndarray of shape (m,)
    """
    X = _float_array("X", X, ndim=2)
    x = X.astype(np.float64)
    C = x.shape[1]
    mean = x.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=1) + epsilon)
    xhat = (x - mean) * inv_std[:, None]
    y = _vec(gamma, C, 1.0, np.float64) * xhat + _vec(beta, C, 0.0, np.float64)
    results = []
    for value, target in ((y, out), (xhat, xhat_out), (inv_std, inv_std_out)):
        if target is None:
            target = np.empty(value.shape, X.dtype)
        target[...] = value
        results.append(target)
    return tuple(results)


def bind_layer_norm_forward(X, gamma=None, beta=None, epsilon=1e-3, out=None, xhat_out=None,
                            inv_std_out=None):
    """Returns ``(run, Y, Xhat, inv_std)``; ``run()`` recomputes from X's values."""
    m, C = X.shape
    Y = np.empty((m, C), X.dtype) if out is None else out
    Xhat = np.empty((m, C), X.dtype) if xhat_out is None else xhat_out
    inv_std = np.empty(m, X.dtype) if inv_std_out is None else inv_std_out

    def run():
        layer_norm_forward(X, gamma, beta, epsilon, Y, Xhat, inv_std)
    return run, Y, Xhat, inv_std


def layer_norm_backward(dY, Xhat, inv_std, gamma=None, sample_weight=None, scale=1.0,
                        accumulate_dtype=None, need_input_grad=True, out=None, dgamma=None,
                        dbeta=None):
    """Returns ``(dX or None, dgamma, dbeta)``."""
    g, xhat = dY.astype(np.float64), Xhat.astype(np.float64)
    m, C = g.shape
    w = np.ones(m) if sample_weight is None else np.asarray(sample_weight, np.float64)
    dg = scale * (w[:, None] * g * xhat).sum(axis=0)
    db = scale * (w[:, None] * g).sum(axis=0)
    if dgamma is None:
        dgamma = np.empty(C, dY.dtype)
    if dbeta is None:
        dbeta = np.empty(C, dY.dtype)
    dgamma[...] = dg
    dbeta[...] = db
    if not need_input_grad:
        return None, dgamma, dbeta
    gx = g * _vec(gamma, C, 1.0, np.float64)
    dX = (np.asarray(inv_std, np.float64)[:, None]
          * (gx - gx.mean(axis=1, keepdims=True)
             - xhat * (gx * xhat).mean(axis=1, keepdims=True)))
    if out is None:
        out = np.empty((m, C), dY.dtype)
    out[...] = dX
    return out, dgamma, dbeta


def attention_forward(Q, K, V, mask=None, causal=False, scale=None, keep=None,
                      need_weights=True, out=None, weights_out=None):
    """Scaled dot-product attention of every head (see docs in the final version).

    Q, K (n, T, H, dk), V (n, T, H, dv), mask (n, T) bool or None,
    keep (n, H, T, T) or None. Returns ``(O (n, T, H, dv), P (n, H, T, T) or None)``.
    """
    n, T, H, dk = Q.shape
    scale = 1.0 / np.sqrt(dk) if scale is None else scale
    q, k, v = (np.asarray(a, np.float64).transpose(0, 2, 1, 3) for a in (Q, K, V))
    S = scale * q @ k.transpose(0, 1, 3, 2)
    visible = np.ones((n, 1, T, T), bool)
    if mask is not None:
        visible = visible & np.asarray(mask, bool)[:, None, None, :]
    if causal:
        visible = visible & np.tri(T, dtype=bool)
    S = np.where(visible, S, -np.inf)
    top = S.max(axis=-1, keepdims=True)
    E = np.where(visible, np.exp(S - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = E.sum(axis=-1, keepdims=True)
    P = E / np.where(total > 0, total, 1.0)
    A = P if keep is None else P * keep
    O = (A @ v).transpose(0, 2, 1, 3)
    if out is None:
        out = np.empty(O.shape, Q.dtype)
    out[...] = O
    if not need_weights:
        return out, None
    if weights_out is None:
        weights_out = np.empty(P.shape, Q.dtype)
    weights_out[...] = P
    return out, weights_out


def attention_backward(dO, Q, K, V, P, scale=None, keep=None, dq_out=None, dk_out=None,
                       dv_out=None):
    """Returns ``(dQ, dK, dV)``."""
    dk = Q.shape[-1]
    scale = 1.0 / np.sqrt(dk) if scale is None else scale
    q, k, v, g = (np.asarray(a, np.float64).transpose(0, 2, 1, 3) for a in (Q, K, V, dO))
    p = np.asarray(P, np.float64)
    a = p if keep is None else p * keep
    dV = a.transpose(0, 1, 3, 2) @ g
    dA = g @ v.transpose(0, 1, 3, 2)
    dP = dA if keep is None else dA * keep
    dS = scale * p * (dP - (dP * p).sum(axis=-1, keepdims=True))
    dQ, dK = dS @ k, dS.transpose(0, 1, 3, 2) @ q
    results = []
    for value, target, like in ((dQ, dq_out, Q), (dK, dk_out, K), (dV, dv_out, V)):
        if target is None:
            target = np.empty(like.shape, Q.dtype)
        target[...] = value.transpose(0, 2, 1, 3)
        results.append(target)
    return tuple(results)


def bind_attention_forward(Q, K, V, mask=None, causal=False, scale=None, keep=None,
                           need_weights=True, out=None, weights_out=None):
    """Returns ``(run, O, P)``; ``run()`` recomputes from the arrays' values."""
    n, T, H, _ = Q.shape
    O = np.empty(V.shape, Q.dtype) if out is None else out
    P = (np.empty((n, H, T, T), Q.dtype) if weights_out is None else weights_out) \
        if need_weights else None

    def run():
        attention_forward(Q, K, V, mask, causal, scale, keep, need_weights, O, P)
    return run, O, P


def bind_attention_backward(dO, Q, K, V, P, scale=None, keep=None, dq_out=None,
                            dk_out=None, dv_out=None):
    """Returns ``(run, dQ, dK, dV)``."""
    dQ = np.empty(Q.shape, Q.dtype) if dq_out is None else dq_out
    dK = np.empty(K.shape, Q.dtype) if dk_out is None else dk_out
    dV = np.empty(V.shape, Q.dtype) if dv_out is None else dv_out

    def run():
        attention_backward(dO, Q, K, V, P, scale, keep, dQ, dK, dV)
    return run, dQ, dK, dV
