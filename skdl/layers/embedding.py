"""Token embeddings and masking of padded steps."""
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _ops
from .._initializers import INITIALIZERS, initialize
from ..regularizers import Regularizer
from ._base import Layer, LayerSpec, regularizer_coefficients
from .recurrent import sequence_shape


class Embedding(LayerSpec):
    """Look up a learned vector for each token index.

    Input: (steps,) token indices per sample (whole numbers in
    ``[0, input_dim)``; anything else is a ``ValueError``). Output:
    (steps, output_dim).

    Parameters
    ----------
    input_dim : int
        Vocabulary size.
    output_dim : int
        Length of each vector.
    weights : array-like of shape (input_dim, output_dim) or None, default=None
        Initial table (e.g. pretrained vectors); None draws it with
        ``embeddings_initializer``.
    trainable : bool, default=True
        False keeps the table as it is.
    mask_zero : bool, default=False
        Index 0 is padding: those steps are masked for the layers after
        (recurrent layers skip them, sequence pooling ignores them).
    embeddings_initializer : str, default='uniform'
        How the table is drawn when ``weights`` is None: an initializer name
        (``'uniform'`` is U(-0.05, 0.05)).
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on the table ``embeddings`` (named as on the other layers so
        one search key fits all); None applies the estimator-wide one. A
        table with ``trainable=False`` is never penalized or decayed.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``embedding``,
        ``embedding_1``...) if None.

    Notes
    -----
    Weights: ``embeddings`` (input_dim, output_dim).
    """

    _parameter_constraints = {
        "input_dim": [Interval(Integral, 1, None, closed="left")],
        "output_dim": [Interval(Integral, 1, None, closed="left")],
        "weights": ["array-like", None],
        "trainable": ["boolean"],
        "mask_zero": ["boolean"],
        "embeddings_initializer": [StrOptions(set(INITIALIZERS))],
        "kernel_regularizer": [Regularizer, None],
        "name": [str, None],
    }

    def __init__(self, input_dim, output_dim, weights=None, trainable=True, mask_zero=False,
                 embeddings_initializer="uniform", kernel_regularizer=None, name=None):
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.weights = weights
        self.trainable = trainable
        self.mask_zero = mask_zero
        self.embeddings_initializer = embeddings_initializer
        self.kernel_regularizer = kernel_regularizer
        self.name = name

    def _build(self, input_shape, dtype, name):
        if self.weights is not None:
            shape = np.shape(self.weights)
            if shape != (self.input_dim, self.output_dim):
                raise ValueError(
                    f"Embedding {name!r}: weights has shape {shape}, expected "
                    f"({self.input_dim}, {self.output_dim})."
                )
        return EmbeddingLayer(self, input_shape, dtype, name)


class EmbeddingLayer(Layer):
    """Runtime state of :class:`Embedding`."""

    output_is_sequence = True  # (steps, output_dim)

    def __init__(self, spec, input_shape, dtype, name):
        if len(input_shape) != 1:
            raise ValueError(f"Embedding {name!r} expects (steps,) token indices per "
                             f"sample, got {input_shape}.")
        super().__init__(name, input_shape, input_shape + (spec.output_dim,), dtype)
        self.input_dim = spec.input_dim
        self.trainable = spec.trainable
        self.mask_zero = spec.mask_zero
        self.initial = None if spec.weights is None else np.asarray(spec.weights, dtype)
        self.initializer = spec.embeddings_initializer
        self.param_shapes = {"embeddings": (spec.input_dim, spec.output_dim)}
        # A frozen table is no weight: a penalty or decay would move it.
        self.weight_penalties = ({"embeddings": regularizer_coefficients(spec.kernel_regularizer)}
                                 if spec.trainable else {})
        self._cache = None

    def initialize(self, rng):
        shape = self.param_shapes["embeddings"]
        self.params["embeddings"][...] = (initialize(self.initializer, shape, rng, self.dtype)
                                          if self.initial is None else self.initial)

    def forward(self, X, training=False, rng=None, mask=None):
        indices = _ops.embedding_indices(X, self.input_dim)
        self._cache = indices if training else None
        return self.params["embeddings"][indices]

    def compute_mask(self, X, mask):
        if not self.mask_zero:
            return mask
        keep = np.asarray(X) != 0
        return keep if mask is None else keep & mask

    def backward(self, dY, context, need_input_grad=True):
        if self.trainable:
            _ops.embedding_backward(self._cache, dY, self.input_dim, context.sample_weight,
                                    context.scale, context.accumulate_dtype,
                                    dE=self.grads["embeddings"])
        else:
            self.grads["embeddings"][...] = 0
        if need_input_grad:
            # Indices are not differentiable: nothing flows further back.
            return np.zeros((dY.shape[0],) + self.input_shape, self.dtype)
        return None

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """None: a table lookup (the index check is not arithmetic)."""
        return 0


class Masking(LayerSpec):
    """Mask the steps whose features all equal ``mask_value`` (padding).

    Masked steps become zeros and are skipped by later recurrent layers and
    sequence pooling. Input and output: (steps, features) or (steps,).

    Parameters
    ----------
    mask_value : float, default=0.0
        A step is masked when every one of its features equals this value.
    name : str or None, default=None
        Layer name; generated (``masking``, ``masking_1``...) if None.
    """

    _parameter_constraints = {"mask_value": [Real], "name": [str, None]}

    def __init__(self, mask_value=0.0, name=None):
        self.mask_value = mask_value
        self.name = name

    def _build(self, input_shape, dtype, name):
        return MaskingLayer(self, input_shape, dtype, name)


class MaskingLayer(Layer):
    """Runtime state of :class:`Masking`."""

    output_is_sequence = True  # its input, (steps, features)

    def __init__(self, spec, input_shape, dtype, name):
        sequence_shape(input_shape, f"Masking {name!r}")
        super().__init__(name, input_shape, input_shape, dtype)
        self.mask_value = spec.mask_value
        self._cache = None

    def _keep(self, X):
        X3 = X.reshape((X.shape[0], self.input_shape[0], -1))
        return np.any(X3 != self.mask_value, axis=-1)

    def forward(self, X, training=False, rng=None, mask=None):
        keep = self._keep(X)
        self._cache = keep if training else None
        shape = keep.shape + (1,) * (X.ndim - 2)
        return X * keep.reshape(shape).astype(X.dtype)

    def compute_mask(self, X, mask):
        keep = self._keep(X)
        return keep if mask is None else keep & mask

    def backward(self, dY, context, need_input_grad=True):
        if not need_input_grad:
            return None
        keep = self._cache
        return dY * keep.reshape(keep.shape + (1,) * (dY.ndim - 2)).astype(dY.dtype)

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """None: finding and zeroing the padded steps is bookkeeping, not
        counted."""
        return 0
