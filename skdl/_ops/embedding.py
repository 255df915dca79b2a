"""Embedding ops: index checks and the table's gradient (numpy; no kernel).
"""

import numpy as np

from ._checks import _accumulation_dtype, _float_array, _output, _weights


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
