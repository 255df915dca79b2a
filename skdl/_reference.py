"""Plain-numpy twins of the ops in :mod:`skdl._ops`.

Same names, same signatures, written for clarity rather than speed. The tests
hold each compiled op to its twin; nothing in the library calls this module.
Dropout has no twin: its op is plain numpy already.
"""
import numpy as np

from ._ops import DEFAULT_ACTIVATION_ALPHA


def dense_forward(X, W, b=None, activation=None, alpha=None, panel_rows=128):
    Z = X @ W if b is None else X @ W + b
    return Z if activation is None else activation_forward(activation, Z, alpha)


def dense_backward_input(dY, W, panel_rows=128):
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


def sgd_update(params, grads, velocity, learning_rate, momentum=0.0, nesterov=False):
    g = grads.astype(np.float64)
    v = momentum * velocity.astype(np.float64) - learning_rate * g
    velocity[...] = v
    step = momentum * v - learning_rate * g if nesterov else v
    params[...] = params.astype(np.float64) + step


def adam_update(params, grads, m, v, learning_rate, beta1, beta2, epsilon, step):
    g = grads.astype(np.float64)
    m[...] = beta1 * m.astype(np.float64) + (1 - beta1) * g
    v[...] = beta2 * v.astype(np.float64) + (1 - beta2) * g * g
    lr_t = learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
    params[...] = params.astype(np.float64) - lr_t * m.astype(np.float64) / (
        np.sqrt(v.astype(np.float64)) + epsilon
    )
