"""Plain-numpy twins of the ops in :mod:`skdl._ops`.

Same names and signatures (less the ``out=`` buffers), written for clarity
rather than speed. The tests hold each compiled op to its twin; nothing in the
library calls this module.
Dropout has no twin: its op is plain numpy already.
"""
import numpy as np

# The documented defaults (docs/layers.md "Activations", Dense's ``alpha``), written
# out rather than imported from _ops: the twins must not follow a change there.
DEFAULT_ACTIVATION_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}


def dense_forward(X, W, b=None, activation=None, alpha=None):
    Z = X @ W if b is None else X @ W + b
    return Z if activation is None else activation_forward(activation, Z, alpha)


def dense_backward_input(dY, W):
    return dY @ W.T


def dense_param_grads(X, dY, sample_weight=None, scale=1.0, accumulate_dtype=None,
                      dW=None, db=None):
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight)
    acc = X.dtype if accumulate_dtype is None else accumulate_dtype
    grad_W = (scale * (X.astype(acc).T @ (dY.astype(acc) * w[:, None]))).astype(X.dtype)
    grad_b = (scale * (w @ dY.astype(np.float64))).astype(X.dtype)
    if dW is not None:
        dW[...] = grad_W
        grad_W = dW
    if db is not None:
        db[...] = grad_b
        grad_b = db
    return grad_W, grad_b


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _activation(name, x, alpha):
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, alpha * x)
    if name == "elu":
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "softplus":
        return np.logaddexp(0.0, x)
    if name in ("softsign", "symmetric_elliot"):
        return x / (1.0 + np.abs(x))
    if name == "elliot":
        return 0.5 * x / (1.0 + np.abs(x)) + 0.5
    if name == "softmax":
        return _softmax(x)
    raise ValueError(f"Unknown activation {name!r}.")


def _derivative(name, y, alpha):
    """f'(x) written in terms of y = f(x), for elementwise activations."""
    if name == "linear":
        return np.ones_like(y)
    if name == "relu":
        return (y > 0).astype(y.dtype)
    if name == "leaky_relu":
        return np.where(y > 0, 1.0, alpha)
    if name == "elu":
        return np.where(y > 0, 1.0, y + alpha)
    if name == "tanh":
        return 1.0 - y * y
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "softplus":
        return -np.expm1(-y)
    if name in ("softsign", "symmetric_elliot"):
        return (1.0 - np.abs(y)) ** 2
    if name == "elliot":
        return 0.5 * (1.0 - np.abs(2.0 * y - 1.0)) ** 2
    raise ValueError(f"Unknown activation {name!r}.")


def activation_forward(name, X, alpha=None):
    alpha = DEFAULT_ACTIVATION_ALPHA.get(name, 0.0) if alpha is None else alpha
    return _activation(name, X.astype(np.float64), alpha).astype(X.dtype)


def activation_backward(name, Y, dY, alpha=None):
    alpha = DEFAULT_ACTIVATION_ALPHA.get(name, 0.0) if alpha is None else alpha
    y, dy = Y.astype(np.float64), dY.astype(np.float64)
    if name == "softmax":
        dx = y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    else:
        dx = dy * _derivative(name, y, alpha)
    return dx.astype(Y.dtype)


def softmax_cross_entropy(Z, Y):
    z, y = Z.astype(np.float64), np.asarray(Y, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    loss = (y * (lse - z)).sum(axis=1)
    grad = np.exp(z - lse) * y.sum(axis=1, keepdims=True) - y
    return loss, grad.astype(Z.dtype)


def sigmoid_cross_entropy(Z, Y):
    z, y = Z.astype(np.float64), np.asarray(Y, dtype=np.float64)
    loss = (np.logaddexp(0.0, z) - z * y).sum(axis=1)
    return loss, (_sigmoid(z) - y).astype(Z.dtype)


def softmax_hellinger(Z, Y):
    """The definition, and the chain rule through softmax's Jacobian."""
    z, y = Z.astype(np.float64), np.asarray(Y, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = 0.5 * ((np.sqrt(p) - np.sqrt(y)) ** 2).sum(axis=1)
    d_p = 0.5 * (np.sqrt(p) - np.sqrt(y)) / np.sqrt(p)
    jacobian = p[:, :, None] * np.eye(p.shape[1]) - p[:, :, None] * p[:, None, :]
    grad = np.einsum("nk,nkj->nj", d_p, jacobian)
    return loss, grad.astype(Z.dtype)


def sigmoid_hellinger(Z, Y):
    z, y = Z.astype(np.float64), np.asarray(Y, dtype=np.float64)
    p = _sigmoid(z)
    loss = 0.5 * ((np.sqrt(1 - p) - np.sqrt(1 - y)) ** 2 + (np.sqrt(p) - np.sqrt(y)) ** 2)
    d_p = (0.5 * (np.sqrt(p) - np.sqrt(y)) / np.sqrt(p)
           - 0.5 * (np.sqrt(1 - p) - np.sqrt(1 - y)) / np.sqrt(1 - p))
    return loss.sum(axis=1), (d_p * p * (1 - p)).astype(Z.dtype)


def regression_loss(name, Z, Y, delta=1.0):
    z, y = Z.astype(np.float64), np.asarray(Y, dtype=np.float64)
    k = z.shape[1]
    r = z - y
    if name == "squared_error":
        loss, grad = 0.5 * r**2, r
    elif name == "absolute_error":
        loss, grad = np.abs(r), np.sign(r)
    elif name == "huber":
        small = np.abs(r) <= delta
        loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
        grad = np.where(small, r, delta * np.sign(r))
    elif name == "poisson":
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
        loss, grad = np.exp(z) - y * z + ylogy - y, np.exp(z) - y
    else:
        raise ValueError(f"Unknown regression loss {name!r}.")
    return loss.sum(axis=1) / k, (grad / k).astype(Z.dtype)


def _clipped_gradient(grads, clipnorm, clipvalue):
    """The gradient an update sees: value clip first, then the norm clip."""
    g = grads.astype(np.float64)
    if clipvalue is not None:
        g = _clip(g, clipvalue, grads.dtype)
    if clipnorm is not None:
        norm = _norm(g)
        if np.isfinite(norm) and norm > clipnorm:
            g = g * (clipnorm / norm)
    return g


def _norm(g):
    top = np.max(np.abs(g), initial=0.0)
    if top == 0 or not np.isfinite(top):
        return float(np.sqrt(np.sum(g * g)))
    return float(top * np.sqrt(np.sum((g / top) ** 2)))


def _clip(g, clipvalue, dtype):
    # The clip value as the kernels see it: in the gradient's dtype.
    c = float(dtype.type(clipvalue))
    return np.clip(g, -c, c)


def gradient_norm(grads, clipvalue=None):
    g = grads.astype(np.float64)
    return _norm(g if clipvalue is None else _clip(g, clipvalue, grads.dtype))


def _apply(params, new_params, learning_rate, weight_decay, decay_mask):
    """params <- decayed params + the rule's step; True when all finite."""
    p = params.astype(np.float64)
    mask = 1.0 if decay_mask is None else decay_mask.astype(np.float64)
    params[...] = p * (1.0 - learning_rate * weight_decay * mask) + (new_params - p)
    return bool(np.isfinite(params).all())


def sgd_update(params, grads, velocity, learning_rate, momentum=0.0, nesterov=False, *,
               weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    g = _clipped_gradient(grads, clipnorm, clipvalue)
    p = params.astype(np.float64)
    if velocity is None:
        return _apply(params, p - learning_rate * g, learning_rate, weight_decay,
                      decay_mask)
    v = momentum * velocity.astype(np.float64) - learning_rate * g
    velocity[...] = v
    step = momentum * v - learning_rate * g if nesterov else v
    return _apply(params, p + step, learning_rate, weight_decay, decay_mask)


def adagrad_update(params, grads, accumulator, learning_rate, epsilon, *,
                   weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    g = _clipped_gradient(grads, clipnorm, clipvalue)
    a = accumulator.astype(np.float64) + g * g
    accumulator[...] = a
    new = params.astype(np.float64) - learning_rate * g / (np.sqrt(a) + epsilon)
    return _apply(params, new, learning_rate, weight_decay, decay_mask)


def rmsprop_update(params, grads, mean_square, velocity, learning_rate, rho, epsilon,
                   momentum=0.0, *, weight_decay=0.0, decay_mask=None, clipnorm=None,
                   clipvalue=None):
    g = _clipped_gradient(grads, clipnorm, clipvalue)
    s = rho * mean_square.astype(np.float64) + (1 - rho) * g * g
    mean_square[...] = s
    step = learning_rate * g / (np.sqrt(s) + epsilon)
    if momentum > 0:
        step = momentum * velocity.astype(np.float64) + step
        velocity[...] = step
    return _apply(params, params.astype(np.float64) - step, learning_rate, weight_decay,
                  decay_mask)


def adadelta_update(params, grads, mean_square_grad, mean_square_delta, learning_rate,
                    rho, epsilon, *, weight_decay=0.0, decay_mask=None, clipnorm=None,
                    clipvalue=None):
    g = _clipped_gradient(grads, clipnorm, clipvalue)
    eg = rho * mean_square_grad.astype(np.float64) + (1 - rho) * g * g
    ed = mean_square_delta.astype(np.float64)
    delta = np.sqrt(ed + epsilon) / np.sqrt(eg + epsilon) * g
    mean_square_grad[...] = eg
    mean_square_delta[...] = rho * ed + (1 - rho) * delta * delta
    return _apply(params, params.astype(np.float64) - learning_rate * delta,
                  learning_rate, weight_decay, decay_mask)


def adam_update(params, grads, m, v, learning_rate, beta1, beta2, epsilon, step, *,
                weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    g = _clipped_gradient(grads, clipnorm, clipvalue)
    m[...] = beta1 * m.astype(np.float64) + (1 - beta1) * g
    v[...] = beta2 * v.astype(np.float64) + (1 - beta2) * g * g
    lr_t = learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
    new = params.astype(np.float64) - lr_t * m.astype(np.float64) / (
        np.sqrt(v.astype(np.float64)) + epsilon
    )
    return _apply(params, new, learning_rate, weight_decay, decay_mask)


def adamax_update(params, grads, m, u, learning_rate, beta1, beta2, epsilon, step, *,
                  weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    g = _clipped_gradient(grads, clipnorm, clipvalue)
    m[...] = beta1 * m.astype(np.float64) + (1 - beta1) * g
    u[...] = np.maximum(beta2 * u.astype(np.float64), np.abs(g))
    lr_t = learning_rate / (1 - beta1**step)
    new = params.astype(np.float64) - lr_t * m.astype(np.float64) / (
        u.astype(np.float64) + epsilon
    )
    return _apply(params, new, learning_rate, weight_decay, decay_mask)


def add_penalty(params, grads, l1_coef, l2_coef):
    p = params.astype(np.float64)
    l1, l2 = l1_coef.astype(np.float64), l2_coef.astype(np.float64)
    grads[...] = grads.astype(np.float64) + l1 * np.sign(p) + 2 * l2 * p
    return float(np.sum(l1 * np.abs(p) + l2 * p * p))


# -- convolution and pooling ---------------------------------------------------
# Any number of spatial axes, as the ops: X (n, C, *spatial), K (F, C, *window).
def _axes(v, rank):
    return (v,) * rank if np.isscalar(v) else tuple(v)


def _no_padding(padding, rank):
    return ((0, 0),) * rank if padding is None else tuple(tuple(p) for p in padding)


def _conv_out(size, k, s, pad, d):
    return (size + pad - (k - 1) * d - 1) // s + 1


def _conv_windows(Xp, window, s, d, out):
    """Yield (tap, view) with view[n, c, *o] = Xp[n, c, *(o * s + tap * d)]."""
    for tap in np.ndindex(*window):
        yield tap, Xp[(slice(None), slice(None)) + tuple(
            slice(t * di, t * di + si * (o - 1) + 1, si)
            for t, si, di, o in zip(tap, s, d, out))]


def _at(tap):
    return (slice(None), slice(None)) + tuple(tap)


def conv2d_forward(X, K, b=None, strides=1, padding=None, dilation=1,
                   activation=None, alpha=None):
    rank = K.ndim - 2
    s, d, pads = _axes(strides, rank), _axes(dilation, rank), _no_padding(padding, rank)
    Xp = np.pad(X.astype(np.float64), ((0, 0), (0, 0)) + pads)
    F = K.shape[0]
    out = tuple(_conv_out(n, k, si, sum(p), di)
                for n, k, si, p, di in zip(X.shape[2:], K.shape[2:], s, pads, d))
    Y = np.zeros((X.shape[0], F) + out)
    for tap, view in _conv_windows(Xp, K.shape[2:], s, d, out):
        Y += np.einsum("nc...,fc->nf...", view, K[_at(tap)].astype(np.float64))
    if b is not None:
        Y += b.reshape((1, F) + (1,) * rank)
    if activation is not None:
        Y = _activation(activation, Y.reshape(Y.shape[0], F, -1),
                        DEFAULT_ACTIVATION_ALPHA.get(activation, 0.0) if alpha is None
                        else alpha).reshape(Y.shape)
    return Y.astype(X.dtype)


def conv2d_backward_input(dY, K, input_hw, strides=1, padding=None, dilation=1):
    rank = K.ndim - 2
    s, d, pads = _axes(strides, rank), _axes(dilation, rank), _no_padding(padding, rank)
    C = K.shape[1]
    dXp = np.zeros((dY.shape[0], C) + tuple(n + sum(p) for n, p in zip(input_hw, pads)))
    for tap, view in _conv_windows(dXp, K.shape[2:], s, d, dY.shape[2:]):
        view += np.einsum("nf...,fc->nc...", dY.astype(np.float64),
                          K[_at(tap)].astype(np.float64))
    inside = tuple(slice(p[0], p[0] + n) for n, p in zip(input_hw, pads))
    return dXp[(slice(None), slice(None)) + inside].astype(dY.dtype)


def conv2d_backward_params(X, dY, sample_weight=None, scale=1.0, accumulate_dtype=None,
                           kernel_hw=None, strides=1, padding=None, dilation=1, dK=None,
                           db=None):
    rank = X.ndim - 2
    s, d, pads = _axes(strides, rank), _axes(dilation, rank), _no_padding(padding, rank)
    window = _axes(kernel_hw, rank)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight)
    Xp = np.pad(X.astype(np.float64), ((0, 0), (0, 0)) + pads)
    wdY = dY.astype(np.float64) * w.reshape((-1,) + (1,) * (rank + 1))
    grad_K = np.zeros((dY.shape[1], X.shape[1]) + window)
    for tap, view in _conv_windows(Xp, window, s, d, dY.shape[2:]):
        grad_K[_at(tap)] = np.einsum("nfp,ncp->fc", wdY.reshape(wdY.shape[:2] + (-1,)),
                                     view.reshape(view.shape[:2] + (-1,)))
    grad_K = (scale * grad_K).astype(X.dtype)
    grad_b = (scale * wdY.sum(axis=(0,) + tuple(range(2, 2 + rank)))).astype(X.dtype)
    if dK is not None:
        dK[...] = grad_K
        grad_K = dK
    if db is not None:
        db[...] = grad_b
        grad_b = db
    return grad_K, grad_b


def _pool_windows(X_shape, pool_size, strides, padding):
    """Yield (o, window, out): each output position, the input ranges (one
    slice per spatial axis) its window covers, and the output's shape."""
    spatial = X_shape[2:]
    rank = len(spatial)
    k = _axes(pool_size, rank)
    s = _axes(pool_size if strides is None else strides, rank)
    pads = _no_padding(padding, rank)
    out = tuple((n + a + b - ki) // si + 1 for n, ki, si, (a, b) in zip(spatial, k, s, pads))
    for o in np.ndindex(*out):
        yield o, tuple(slice(max(oi * si - a, 0), min(oi * si - a + ki, n))
                       for oi, si, (a, _), ki, n in zip(o, s, pads, k, spatial)), out


def maxpool2d_forward(X, pool_size, strides=None, padding=None):
    n, C = X.shape[:2]
    Y = argmax = None
    for o, window, out in _pool_windows(X.shape, pool_size, strides, padding):
        if Y is None:
            Y = np.empty((n, C) + out, X.dtype)
            argmax = np.empty((n, C) + out, np.int32)
        values = X[_at(window)].reshape(n, C, -1)
        k = values.argmax(axis=2)  # the first maximum in C order
        Y[_at(o)] = values.max(axis=2)
        inside = np.unravel_index(k, tuple(w.stop - w.start for w in window))
        argmax[_at(o)] = np.ravel_multi_index(
            tuple(w.start + i for w, i in zip(window, inside)), X.shape[2:])
    return Y, argmax


def maxpool2d_backward(dY, argmax, input_hw):
    n, C = dY.shape[:2]
    dX = np.zeros((n, C, int(np.prod(input_hw))))
    for i in range(n):
        for c in range(C):
            np.add.at(dX[i, c], argmax[i, c].ravel(), dY[i, c].ravel())
    return dX.reshape((n, C) + tuple(input_hw)).astype(dY.dtype)


def avgpool2d_forward(X, pool_size, strides=None, padding=None):
    Y = None
    for o, window, out in _pool_windows(X.shape, pool_size, strides, padding):
        if Y is None:
            Y = np.empty(X.shape[:2] + out, X.dtype)
        Y[_at(o)] = X[_at(window)].astype(np.float64).mean(
            axis=tuple(range(2, X.ndim)))
    return Y


def avgpool2d_backward(dY, input_hw, pool_size, strides=None, padding=None):
    x_shape = dY.shape[:2] + tuple(input_hw)
    dX = np.zeros(x_shape)
    for o, window, _ in _pool_windows(x_shape, pool_size, strides, padding):
        count = np.prod([w.stop - w.start for w in window])
        dX[_at(window)] += (dY[_at(o)] / count).reshape(dY.shape[:2] + (1,) * len(window))
    return dX.astype(dY.dtype)


def _gate_act(name, Z, alpha=None):
    return activation_forward(name, Z, alpha)


def recurrent_forward(cell, X, W, U, b=None, bh=None, mask=None, activation="tanh",
                      recurrent_activation="sigmoid", alpha=None, h0=None, c0=None):
    """Step by step, one numpy expression per equation (PyTorch's forms): the
    cell's :meth:`~skdl._ops.Cell.reference_forward`, masked steps keeping
    the state and zeroing the kept gates; from ``h0`` and ``c0`` (n, u) when
    given, else zeros."""
    from ._ops import RecurrentState, get_cell

    cell = get_cell(cell)
    n, T, _ = X.shape
    u = U.shape[0]
    act = lambda Z: activation_forward(activation, Z, alpha)  # noqa: E731
    ract = lambda Z: activation_forward(recurrent_activation, Z)  # noqa: E731
    b = 0 if b is None else b
    G = cell.gates
    H = np.zeros((n, T + 1, u), X.dtype)
    C = np.zeros((n, T + 1, u), X.dtype) if cell.cell_state else None
    gates = np.zeros((n, T, G * u), X.dtype) if cell.gate_arrays else None
    extra = np.zeros((n, T, u), X.dtype) if cell.gate_arrays else None
    if h0 is not None:
        H[:, 0] = h0
    if c0 is not None:
        C[:, 0] = c0
    keep = np.ones((n, T), bool) if mask is None else np.asarray(mask, bool)
    for s in range(T):
        h = H[:, s]
        on = keep[:, s, None]
        new_h, c, g, e = cell.reference_forward(
            X[:, s] @ W + b, h, None if C is None else C[:, s], U, bh, act, ract)
        if C is not None:
            C[:, s + 1] = np.where(on, c, C[:, s])
        if gates is not None:
            gates[:, s] = np.where(on, g, 0)
            extra[:, s] = np.where(on, e, 0)
        H[:, s + 1] = np.where(on, new_h, h)
    mask_u8 = None if mask is None else np.asarray(mask, np.uint8)
    return RecurrentState(H, C, gates, extra, mask_u8)


def recurrent_backward(cell, dY, X, W, U, state, sample_weight=None, scale=1.0,
                       accumulate_dtype=None, activation="tanh",
                       recurrent_activation="sigmoid", alpha=None, need_input_grad=True,
                       dc_last=None, state_grads=False):
    """Backpropagation through time, step by step, from the forward's state:
    the cell's :meth:`~skdl._ops.Cell.reference_backward` at each step.
    ``dc_last`` seeds the last cell state's gradient; ``state_grads`` adds
    the initial states' gradients ``dh0`` and ``dc0`` (what reaches the
    state before step 0) to the results.

    The derivative of each activation is taken from its output, as in
    :func:`activation_backward`; masked steps pass the gradient through.
    """
    from ._ops import get_cell

    cell = get_cell(cell)
    n, T, k = X.shape
    u = U.shape[0]
    G = cell.gates
    act_grad = lambda Y, dA: activation_backward(activation, Y, dA, alpha)  # noqa: E731
    ract_grad = lambda Y, dA: activation_backward(recurrent_activation, Y, dA)  # noqa: E731
    if dY.shape[1] == 1:  # the last step's gradient only
        full = np.zeros((n, T, u), dY.dtype)
        full[:, -1:] = dY
        dY = full
    keep = np.ones((n, T), bool) if state.mask is None else state.mask.astype(bool)
    H, C, gates, extra = state.H, state.C, state.gates, state.extra
    dGx = np.zeros((n, T, G * u))
    dGh = np.zeros((n, T, G * u))
    dh_next = np.zeros((n, u))
    dc = np.zeros((n, u)) if dc_last is None else np.asarray(dc_last, float)
    for s in range(T - 1, -1, -1):
        dh = dY[:, s] + dh_next
        on = keep[:, s, None]
        dgx, dgh, direct, dc_prev = cell.reference_backward(
            dh, dc, H[:, s + 1], H[:, s], None if C is None else C[:, s],
            None if gates is None else gates[:, s], None if extra is None else extra[:, s],
            act_grad, ract_grad)
        if dc_prev is not None:
            dc = np.where(on, dc_prev, dc)
        dGx[:, s] = np.where(on, dgx, 0)
        dGh[:, s] = np.where(on, dgh, 0)
        dh_next = np.where(on, dGh[:, s] @ U.T + direct, dh)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    wx = (dGx * w[:, None, None]).reshape(n * T, G * u)
    wh = (dGh * w[:, None, None]).reshape(n * T, G * u)
    dW = scale * X.reshape(n * T, k).T @ wx
    dU = scale * H[:, :T].reshape(n * T, u).T @ wh
    db, dbh = scale * wx.sum(axis=0), scale * wh.sum(axis=0)
    dX = (dGx @ W.T) if need_input_grad else None
    cast = lambda a: None if a is None else a.astype(X.dtype)  # noqa: E731
    grads = cast(dX), cast(dW), cast(dU), cast(db), cast(dbh)
    if state_grads:
        return grads + (cast(dh_next), cast(dc) if cell.cell_state else None)
    return grads


# -- batch normalization and PReLU ---------------------------------------------
def _vector(v, C, default):
    return np.full(C, default) if v is None else np.asarray(v, dtype=np.float64)


def batchnorm_inv_std(variance, epsilon):
    return 1.0 / np.sqrt(np.asarray(variance, dtype=np.float64) + epsilon)


def batchnorm_train_forward(X, gamma=None, beta=None, epsilon=1e-3, sample_weight=None):
    m, C, P = X.shape
    x = X.astype(np.float64)
    w = np.ones(m) if sample_weight is None else np.asarray(sample_weight, np.float64)
    share = w[:, None, None] / (w.sum() * P)  # each value's weight in the statistics
    mean = (share * x).sum(axis=(0, 2))
    var = (share * (x - mean[:, None]) ** 2).sum(axis=(0, 2))
    xhat = (x - mean[:, None]) * batchnorm_inv_std(var, epsilon)[:, None]
    y = _vector(gamma, C, 1.0)[:, None] * xhat + _vector(beta, C, 0.0)[:, None]
    return y.astype(X.dtype), xhat.astype(X.dtype), mean, var


def batchnorm_inference(X, gamma=None, beta=None, mean=None, variance=None, epsilon=1e-3):
    C = X.shape[1]
    xhat = ((X.astype(np.float64) - _vector(mean, C, 0.0)[:, None])
            * batchnorm_inv_std(_vector(variance, C, 1.0), epsilon)[:, None])
    return (_vector(gamma, C, 1.0)[:, None] * xhat
            + _vector(beta, C, 0.0)[:, None]).astype(X.dtype)


def batchnorm_backward(dY, Xhat, gamma=None, variance=None, epsilon=1e-3,
                       sample_weight=None, stat_weight=None, scale=1.0,
                       need_input_grad=True):
    """The exact gradient of ``L = scale * sum_i w_i sum(dY_i * y_i)`` with
    respect to x_i, divided by ``scale * w_i`` (rows with w_i = 0: the direct
    term only)."""
    m, C, P = dY.shape
    g = dY.astype(np.float64)
    xhat = Xhat.astype(np.float64)
    w = np.ones(m) if sample_weight is None else np.asarray(sample_weight, np.float64)
    s = np.ones(m) if stat_weight is None else np.asarray(stat_weight, np.float64)
    wg = w[:, None, None] * g
    S1, S2 = wg.sum(axis=(0, 2)), (wg * xhat).sum(axis=(0, 2))
    dgamma, dbeta = (scale * S2).astype(dY.dtype), (scale * S1).astype(dY.dtype)
    if not need_input_grad:
        return None, dgamma, dbeta
    coef = _vector(gamma, C, 1.0) * batchnorm_inv_std(_vector(variance, C, 1.0), epsilon)
    share = s / (s.sum() * P)
    # dL/dx_i / scale: the direct term and the terms through the mean and variance.
    total = coef[:, None] * (wg - share[:, None, None] * (S1[:, None] + xhat * S2[:, None]))
    direct = coef[:, None] * g
    dX = np.where(w[:, None, None] > 0,
                  total / np.where(w > 0, w, 1.0)[:, None, None], direct)
    return dX.astype(dY.dtype), dgamma, dbeta


def prelu_forward(X, alpha):
    a = np.asarray(alpha, np.float64)[:, None]
    x = X.astype(np.float64)
    return (np.maximum(x, 0) + a * np.minimum(x, 0)).astype(X.dtype)


def prelu_backward(X, dY, alpha, sample_weight=None, scale=1.0, need_input_grad=True):
    x, g = X.astype(np.float64), dY.astype(np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    dalpha = scale * (w[:, None, None] * g * np.minimum(x, 0)).sum(axis=(0, 2))
    dX = None
    if need_input_grad:
        dX = np.where(x > 0, g, np.asarray(alpha, np.float64)[:, None] * g).astype(X.dtype)
    return dX, dalpha.astype(X.dtype)


# -- layer normalization and attention -----------------------------------------
def layer_norm_forward(X, gamma=None, beta=None, epsilon=1e-3):
    """Rows ``X`` (m, C) normalized over their C values: ``(Y, Xhat, inv_std)``."""
    x = X.astype(np.float64)
    C = x.shape[1]
    mean = x.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=1) + epsilon)
    xhat = (x - mean) * inv_std[:, None]
    y = _vector(gamma, C, 1.0) * xhat + _vector(beta, C, 0.0)
    return y.astype(X.dtype), xhat.astype(X.dtype), inv_std.astype(X.dtype)


def layer_norm_backward(dY, Xhat, inv_std, gamma=None, sample_weight=None, scale=1.0,
                        accumulate_dtype=None, need_input_grad=True):
    """``(dX, dgamma, dbeta)``: dX is the per-row input gradient (rows are
    independent), dgamma and dbeta ``scale`` times the row-weighted sums."""
    g, xhat = dY.astype(np.float64), Xhat.astype(np.float64)
    m, C = g.shape
    w = np.ones(m) if sample_weight is None else np.asarray(sample_weight, np.float64)
    dgamma = (scale * (w[:, None] * g * xhat).sum(axis=0)).astype(dY.dtype)
    dbeta = (scale * (w[:, None] * g).sum(axis=0)).astype(dY.dtype)
    if not need_input_grad:
        return None, dgamma, dbeta
    gx = g * _vector(gamma, C, 1.0)
    dX = (np.asarray(inv_std, np.float64)[:, None]
          * (gx - gx.mean(axis=1, keepdims=True)
             - xhat * (gx * xhat).mean(axis=1, keepdims=True)))
    return dX.astype(dY.dtype), dgamma, dbeta


def attention_forward(Q, K, V, mask=None, causal=False, scale=None, keep=None):
    """Scaled dot-product attention of every head: ``(O, P)``.

    Q, K (n, T, H, dk) and V (n, T, H, dv); mask (n, T) marks the keys that
    are there; ``causal`` hides the keys after each query. P (n, H, T, T) are
    the softmax weights over the visible keys (a query that sees no key gets
    0 weights and a 0 output); ``keep`` (n, H, T, T), dropout's 0 or
    ``1 / (1 - rate)``, multiplies them before they weigh V.
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
    return O.astype(Q.dtype), P.astype(Q.dtype)


def attention_backward(dO, Q, K, V, P, scale=None, keep=None):
    """``(dQ, dK, dV)`` of :func:`attention_forward` given its weights P
    (masked keys have weight 0, so the masks need not be given again)."""
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
    return tuple(x.transpose(0, 2, 1, 3).astype(Q.dtype) for x in (dQ, dK, dV))
