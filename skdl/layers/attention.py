"""Attention: LayerNormalization, MultiHeadAttention, PositionalEmbedding and a
Transformer encoder block."""
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _ops
from .._initializers import INITIALIZERS, initialize
from ..regularizers import Regularizer
from ._base import (
    BoundLayer,
    Layer,
    LayerSpec,
    backward_chain,
    forward_chain,
    regularizer_coefficients,
    run_all,
)
from .core import Dense, Dropout
from .merge import ContainerSpec

_INITIALIZER_NAMES = StrOptions(set(INITIALIZERS))


def _sequence_input(input_shape, layer):
    """``(steps, features)`` of a layer that reads sequences, or a ValueError
    naming ``layer``."""
    if len(input_shape) != 2:
        raise ValueError(
            f"{layer} reads sequences of shape (steps, features), got samples of shape "
            f"{input_shape}. Put an Embedding, a Reshape((steps, features)) or a "
            "recurrent layer with return_sequences=True before it."
        )
    steps, features = input_shape
    if steps < 1 or features < 1:
        raise ValueError(f"{layer} needs at least one step and one feature, got samples "
                         f"of shape {input_shape}.")
    return steps, features


class LayerNormalization(LayerSpec):
    """Normalize each sample's last axis: every step of a sequence, or a flat
    sample, by its own mean and variance.

    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta``, with the mean
    and the (biased) variance over the last axis of the one row; unlike
    :class:`BatchNormalization` nothing depends on the rest of the batch, so
    training and prediction compute the same thing.

    Parameters
    ----------
    epsilon : float > 0, default=1e-3
        Added to the variance before its square root. 1e-3 is Keras'
        default (and that of skdl's ``BatchNormalization``); PyTorch's
        ``nn.LayerNorm`` uses 1e-5, as does :class:`TransformerEncoderBlock`.
    center : bool, default=True
        Learn the shift ``beta``; without it the shift is 0.
    scale : bool, default=True
        Learn the scale ``gamma``; without it the scale is 1.
    name : str or None, default=None

    Notes
    -----
    Input and output per sample ``(..., features)``; masks and the layout
    (a sequence stays a sequence) pass through. Parameters: ``gamma`` and
    ``beta`` of shape ``(features,)``, starting at 1 and 0 (``nn.LayerNorm``'s
    ``weight`` and ``bias``); neither is a weight for penalties.
    """

    _parameter_constraints = {
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "center": ["boolean"],
        "scale": ["boolean"],
        "name": [str, None],
    }

    def __init__(self, epsilon=1e-3, center=True, scale=True, name=None):
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.name = name

    def _build(self, input_shape, dtype, name):
        return LayerNormalizationLayer(self, input_shape, dtype, name)


class LayerNormalizationLayer(Layer):
    """Runtime state of :class:`LayerNormalization`."""

    passes_mask = True  # each step is normalized alone

    def __init__(self, spec, input_shape, dtype, name):
        if len(input_shape) == 0 or input_shape[-1] < 1:
            raise ValueError(f"LayerNormalization {name!r} needs samples with a last axis "
                             f"of at least one feature, got shape {input_shape}.")
        super().__init__(name, input_shape, input_shape, dtype)
        self.features = int(input_shape[-1])
        self.epsilon = float(spec.epsilon)
        self.param_shapes = {}
        if spec.scale:
            self.param_shapes["gamma"] = (self.features,)
        if spec.center:
            self.param_shapes["beta"] = (self.features,)
        self._cache = None

    def initialize(self, rng):
        if "gamma" in self.params:
            self.params["gamma"][...] = 1
        if "beta" in self.params:
            self.params["beta"][...] = 0

    def forward(self, X, training=False, rng=None, mask=None):
        rows = X.reshape(-1, self.features)
        extra = {}
        if training:
            shape = rows.shape
            extra = dict(out=self._scratch("Y", shape), xhat_out=self._scratch("Xhat", shape),
                         inv_std_out=self._scratch("inv_std", shape[:1]))
        Y, Xhat, inv_std = _ops.layer_norm_forward(
            rows, self.params.get("gamma"), self.params.get("beta"), self.epsilon, **extra)
        self._cache = (Xhat, inv_std) if training else None
        return Y.reshape(X.shape)

    def backward(self, dY, context, need_input_grad=True):
        Xhat, inv_std = self._cache
        m = Xhat.shape[0]
        dX, dgamma, dbeta = _ops.layer_norm_backward(
            dY.reshape(Xhat.shape), Xhat, inv_std, self.params.get("gamma"),
            context.row_weights(m), context.scale, context.accumulate_dtype,
            need_input_grad, out=self._scratch("dX", Xhat.shape) if need_input_grad else None,
            dgamma=self.grads.get("gamma"), dbeta=self.grads.get("beta"))
        return None if dX is None else dX.reshape(dY.shape)

    def bind(self, X, dX, context):
        rows = X.reshape(-1, self.features)
        if context.sample_weight is not None and rows.shape[0] != X.shape[0]:
            return None  # the steps of a sequence would need repeated weights
        gamma, beta = self.params.get("gamma"), self.params.get("beta")
        forward, Y, Xhat, inv_std = _ops.bind_layer_norm_forward(rows, gamma, beta,
                                                                 self.epsilon)
        dY = np.empty_like(Y)
        out = None if dX is None else dX.reshape(rows.shape)
        backward = _ops.bind_layer_norm_backward(
            dY, Xhat, inv_std, gamma, context.sample_weight, context.accumulate_dtype,
            out is not None, out=out, dgamma=self.grads.get("gamma"),
            dbeta=self.grads.get("beta"))[0]
        return BoundLayer(Y.reshape(X.shape), dY.reshape(X.shape), forward, backward)

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """Per row of ``C`` features: ``C`` for the mean, ``3 C`` for the
        variance (difference, square, sum), ``2 C`` to normalize (difference,
        product; the one square root per row is not counted) and ``C`` for
        each of ``gamma`` and ``beta`` used."""
        values = int(np.prod(self.input_shape, dtype=np.int64))
        return values * (6 + len(self.param_shapes))


class MultiHeadAttention(LayerSpec):
    """Multi-head scaled dot-product self-attention over ``(steps, features)``
    sequences (Vaswani et al. 2017).

    Each head ``h`` projects every step to a query, a key and a value,
    ``Q_h = X @ query_kernel[:, h] + query_bias[h]`` (and alike ``K_h``,
    ``V_h``), weighs the values by ``softmax(Q_h K_h^T / sqrt(key_dim))``
    over the steps, and the heads' results are projected back to the
    features: ``Y = sum_h O_h @ output_kernel[h] + output_bias``.

    Parameters
    ----------
    num_heads : int
        Number of attention heads.
    key_dim : int or None, default=None
        Size of each head's queries and keys; None is
        ``features // num_heads`` (PyTorch's ``embed_dim // num_heads``).
    value_dim : int or None, default=None
        Size of each head's values; None is ``key_dim`` (Keras).
    dropout : float in [0, 1), default=0.0
        Dropout on the attention weights while fitting (as Keras and
        PyTorch do): each weight is zeroed with this probability and the
        rest are scaled by ``1 / (1 - dropout)``.
    use_bias : bool, default=True
        Whether the four projections have biases.
    causal : bool, default=False
        Hide from each step the steps after it (language models).
    kernel_initializer : str, default='glorot_uniform'
        Drawn for each kernel over its 2-D view ``(features, heads *
        key_dim)`` or ``(heads * value_dim, features)``.
    bias_initializer : str, default='zeros'
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on the four kernels; None applies the estimator-wide one.
    name : str or None, default=None

    Notes
    -----
    Self-attention: the queries, keys and values all come from the layer's
    input, of shape ``(steps, features)``; the output has the same shape
    (Keras' default ``output_shape``, PyTorch's ``embed_dim``). A mask from
    ``Embedding(mask_zero=True)`` or ``Masking`` hides the padded steps as
    keys (PyTorch's ``key_padding_mask``) and passes on to the next layers;
    a step that sees no key gets a zero output before the output projection.

    Parameters, in Keras' layout (``F`` features, ``H`` heads, ``dk``
    key_dim, ``dv`` value_dim): ``query_kernel`` and ``key_kernel``
    ``(F, H, dk)``, ``query_bias`` and ``key_bias`` ``(H, dk)``,
    ``value_kernel`` ``(F, H, dv)``, ``value_bias`` ``(H, dv)``,
    ``output_kernel`` ``(H, dv, F)`` and ``output_bias`` ``(F,)`` (biases
    only with ``use_bias``). PyTorch's ``nn.MultiheadAttention`` weights are
    ``query_kernel = in_proj_weight[:E].T.reshape(F, H, dk)`` (then keys and
    values) and ``output_kernel = out_proj.weight.T.reshape(H, dv, F)``.
    """

    _parameter_constraints = {
        "num_heads": [Interval(Integral, 1, None, closed="left")],
        "key_dim": [Interval(Integral, 1, None, closed="left"), None],
        "value_dim": [Interval(Integral, 1, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "use_bias": ["boolean"],
        "causal": ["boolean"],
        "kernel_initializer": [_INITIALIZER_NAMES],
        "bias_initializer": [_INITIALIZER_NAMES],
        "kernel_regularizer": [Regularizer, None],
        "name": [str, None],
    }

    def __init__(self, num_heads, key_dim=None, value_dim=None, dropout=0.0, use_bias=True,
                 causal=False, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, name=None):
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.causal = causal
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.name = name

    def _build(self, input_shape, dtype, name):
        return MultiHeadAttentionLayer(self, input_shape, dtype, name)


_PROJECTIONS = ("query", "key", "value")


class MultiHeadAttentionLayer(Layer):
    """Runtime state of :class:`MultiHeadAttention`."""

    passes_mask = True  # the output keeps the input's steps (and padding)
    output_is_sequence = True

    def __init__(self, spec, input_shape, dtype, name):
        what = f"MultiHeadAttention {name!r}"
        steps, features = _sequence_input(input_shape, what)
        H = int(spec.num_heads)
        dk = features // H if spec.key_dim is None else int(spec.key_dim)
        if dk < 1:
            raise ValueError(
                f"{what}: key_dim=None is features // num_heads = {features} // {H} = 0; "
                "use fewer heads or give key_dim.")
        dv = dk if spec.value_dim is None else int(spec.value_dim)
        super().__init__(name, input_shape, input_shape, dtype)
        self.steps, self.features = steps, features
        self.num_heads, self.key_dim, self.value_dim = H, dk, dv
        self.dropout = float(spec.dropout)
        self.causal = bool(spec.causal)
        self.use_bias = bool(spec.use_bias)
        self.initializers = (spec.kernel_initializer, spec.bias_initializer)
        F = features
        self.param_shapes = {}
        penalty = regularizer_coefficients(spec.kernel_regularizer)
        self.weight_penalties = {}
        for part, size in zip(_PROJECTIONS, (dk, dk, dv)):
            self.param_shapes[f"{part}_kernel"] = (F, H, size)
            if self.use_bias:
                self.param_shapes[f"{part}_bias"] = (H, size)
            self.weight_penalties[f"{part}_kernel"] = penalty
        self.param_shapes["output_kernel"] = (H, dv, F)
        if self.use_bias:
            self.param_shapes["output_bias"] = (F,)
        self.weight_penalties["output_kernel"] = penalty
        self._cache = None

    def initialize(self, rng):
        F, H, dk, dv = self.features, self.num_heads, self.key_dim, self.value_dim
        views = {"query_kernel": (F, H * dk), "key_kernel": (F, H * dk),
                 "value_kernel": (F, H * dv), "output_kernel": (H * dv, F)}
        kernel, bias = self.initializers
        for key, shape in self.param_shapes.items():
            if key.endswith("_kernel"):  # glorot's fans are those of the 2-D product
                value = initialize(kernel, views[key], rng, self.dtype)
            else:
                value = initialize(bias, shape, rng, self.dtype)
            self.params[key][...] = value.reshape(shape)

    def _matrices(self, part, source=None):
        """The 2-D (kernel, bias) of a projection, views of ``source``
        (``params`` or ``grads``)."""
        source = self.params if source is None else source
        kernel = source[f"{part}_kernel"]
        if part == "output":
            kernel = kernel.reshape(-1, self.features)
        else:
            kernel = kernel.reshape(self.features, -1)
        bias = source.get(f"{part}_bias")
        return kernel, None if bias is None else bias.reshape(-1)

    def forward(self, X, training=False, rng=None, mask=None):
        n, T, F = X.shape
        H, dk, dv = self.num_heads, self.key_dim, self.value_dim
        rows = X.reshape(n * T, F)
        heads = {}
        for part, size in zip(_PROJECTIONS, (dk, dk, dv)):
            W, b = self._matrices(part)
            out = self._scratch(part, (n * T, H * size)) if training else None
            heads[part] = _ops.dense_forward(rows, W, b, out=out).reshape(n, T, H, size)
        keep = None
        if training and self.dropout > 0:
            keep = self._draw_keep(rng, self._scratch("keep", (n, H, T, T)))
        if mask is not None:
            mask = np.ascontiguousarray(mask, dtype=bool)
            if mask.shape != (n, T):
                raise ValueError(f"MultiHeadAttention {self.name!r}: mask must have shape "
                                 f"{(n, T)}, got {mask.shape}.")
        extra = {}
        if training:
            extra = dict(out=self._scratch("O", (n, T, H, dv)),
                         weights_out=self._scratch("P", (n, H, T, T)))
        O, P = _ops.attention_forward(heads["query"], heads["key"], heads["value"], mask,
                                      self.causal, None, keep, need_weights=training,
                                      **extra)
        O2 = O.reshape(n * T, H * dv)
        W, b = self._matrices("output")
        Y = _ops.dense_forward(O2, W, b, out=self._scratch("Y", (n * T, F)) if training
                               else None)
        self._cache = (rows, heads, P, keep, O2) if training else None
        return Y.reshape(n, T, F)

    def _draw_keep(self, rng, keep):
        """Fill ``keep`` with the attention weights' dropout multipliers
        (inverted dropout, 0 or ``1 / (1 - dropout)``) drawn from ``rng``."""
        if rng is None:
            raise ValueError(f"MultiHeadAttention {self.name!r} needs a random "
                             "generator while training (dropout).")
        np.greater_equal(rng.random(keep.shape, dtype=keep.dtype), self.dropout, out=keep)
        keep *= keep.dtype.type(1.0 / (1.0 - self.dropout))
        return keep

    def backward(self, dY, context, need_input_grad=True):
        rows, heads, P, keep, O2 = self._cache
        n, T, F = dY.shape
        dY2 = dY.reshape(n * T, F)
        w = context.row_weights(n * T)
        W, _ = self._matrices("output")
        dW, db = self._matrices("output", self.grads)
        _ops.dense_param_grads(O2, dY2, w, context.scale, context.accumulate_dtype,
                               dW=dW, db=db)
        # Gradients go into arrays kept across batches, as forward's outputs.
        dO = _ops.dense_backward_input(dY2, W, out=self._scratch("dO", O2.shape)).reshape(
            n, T, self.num_heads, self.value_dim)
        Q, K, V = (heads[part] for part in _PROJECTIONS)
        grads = dict(zip(_PROJECTIONS, _ops.attention_backward(
            dO, Q, K, V, P, None, keep, dq_out=self._scratch("dQ", Q.shape),
            dk_out=self._scratch("dK", K.shape), dv_out=self._scratch("dV", V.shape))))
        dX = None
        for part in _PROJECTIONS:
            dZ = grads[part].reshape(n * T, -1)
            dW, db = self._matrices(part, self.grads)
            _ops.dense_param_grads(rows, dZ, w, context.scale, context.accumulate_dtype,
                                   dW=dW, db=db)
            if need_input_grad:
                into = "dX" if dX is None else "part_dX"
                part_dX = _ops.dense_backward_input(dZ, self._matrices(part)[0],
                                                    out=self._scratch(into, rows.shape))
                if dX is None:
                    dX = part_dX
                else:
                    _ops.residual_add(dX, part_dX, out=dX)
        return None if dX is None else dX.reshape(dY.shape)

    def bind(self, X, dX, context):
        # A bound pass has no masks (the layers making them do not bind).
        n, T, F = X.shape
        if context.sample_weight is not None and T != 1:
            return None  # the steps of a sequence would need repeated weights
        H, dk, dv = self.num_heads, self.key_dim, self.value_dim
        rows = X.reshape(n * T, F)
        acc, w = context.accumulate_dtype, context.sample_weight
        forwards, heads, Z = [], {}, {}
        for part, size in zip(_PROJECTIONS, (dk, dk, dv)):
            W, b = self._matrices(part)
            run, Z[part] = _ops.bind_dense_forward(rows, W, b)
            forwards.append(run)
            heads[part] = Z[part].reshape(n, T, H, size)
        keep = np.empty((n, H, T, T), X.dtype) if self.dropout > 0 else None
        if keep is not None:
            forwards.append(lambda: self._draw_keep(context.rng, keep))
        run, O, P = _ops.bind_attention_forward(heads["query"], heads["key"], heads["value"],
                                                None, self.causal, None, keep)
        forwards.append(run)
        O2 = O.reshape(n * T, H * dv)
        W_out, b_out = self._matrices("output")
        run, Y = _ops.bind_dense_forward(O2, W_out, b_out)
        forwards.append(run)

        dY = np.empty_like(Y)
        calls = [_ops.bind_dense_param_grads(O2, dY, w, acc,
                                             *self._matrices("output", self.grads))[0]]
        run_dO, dO2 = _ops.bind_dense_backward_input(dY, W_out)
        run_core, *grads = _ops.bind_attention_backward(
            dO2.reshape(n, T, H, dv), heads["query"], heads["key"], heads["value"], P, None,
            keep)
        calls.append(lambda scale: (run_dO(), run_core()))
        dX2 = None if dX is None else dX.reshape(n * T, F)
        part_dX = None if dX is None else np.empty_like(dX2)
        add = None if dX is None else _ops.bind_residual_add(dX2, part_dX, out=dX2)[0]

        def input_grad(into, first):
            # The same sum as backward's: the query's part, plus the key's,
            # plus the value's.
            if first:
                return lambda scale: into()
            return lambda scale: (into(), add())

        for i, (part, dZ) in enumerate(zip(_PROJECTIONS, grads)):
            dZ2 = dZ.reshape(n * T, -1)
            calls.append(_ops.bind_dense_param_grads(rows, dZ2, w, acc,
                                                     *self._matrices(part, self.grads))[0])
            if dX is not None:
                into = _ops.bind_dense_backward_input(dZ2, self._matrices(part)[0],
                                                      out=dX2 if i == 0 else part_dX)[0]
                calls.append(input_grad(into, i == 0))
        return BoundLayer(Y.reshape(n, T, F), dY.reshape(n, T, F),
                          lambda: run_all(forwards), lambda scale: run_all(calls, scale))

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """Per step: ``2 F (2 dk + dv) H`` for the query, key and value
        projections and ``2 H dv F`` for the output one (a multiply-add per
        kernel entry), plus one per bias entry used; per head and pair of
        steps: ``2 dk`` for the score, 4 for the scaling, the exponential,
        its sum and the division, and ``2 dv`` to weigh the values (every
        pair is counted, causal or masked). ``F`` features, ``H`` heads."""
        T, F, H = self.steps, self.features, self.num_heads
        dk, dv = self.key_dim, self.value_dim
        per_step = 2 * F * H * (2 * dk + dv) + 2 * H * dv * F
        if self.use_bias:
            per_step += H * (2 * dk + dv) + F
        return T * per_step + H * T * T * (2 * dk + 4 + 2 * dv)


class PositionalEmbedding(LayerSpec):
    """Add a vector to each step of ``(steps, features)`` sequences telling
    its position.

    Parameters
    ----------
    mode : {'learned', 'sinusoidal'}, default='learned'
        ``'learned'``: a trained table ``embeddings`` of shape ``(steps,
        features)`` (keras_hub's ``PositionEmbedding``, BERT's);
        ``'sinusoidal'``: the fixed table of Vaswani et al. (keras_hub's
        ``SinePositionEncoding`` with ``max_wavelength=10000``), ``sin(p /
        10000**(2i / F))`` at feature ``2i`` and ``cos`` of it at ``2i + 1``,
        with no parameters.
    initializer : str, default='glorot_uniform'
        How the learned table starts (keras_hub's ``PositionEmbedding``
        default); unused by ``'sinusoidal'``.
    name : str or None, default=None

    Notes
    -----
    Input and output per sample ``(steps, features)``; masks pass on. The
    learned table fixes the number of steps; the sinusoidal one is the same
    for the first steps of any length. The learned table is a weight, as
    ``Embedding``'s is: the estimator's ``l1`` and ``l2`` apply to it.
    """

    _parameter_constraints = {
        "mode": [StrOptions({"learned", "sinusoidal"})],
        "initializer": [_INITIALIZER_NAMES],
        "name": [str, None],
    }

    def __init__(self, mode="learned", initializer="glorot_uniform", name=None):
        self.mode = mode
        self.initializer = initializer
        self.name = name

    def _build(self, input_shape, dtype, name):
        return PositionalEmbeddingLayer(self, input_shape, dtype, name)


def sinusoidal_positions(steps, features, max_wavelength=10000.0):
    """Vaswani et al.'s position table, as keras_hub's ``SinePositionEncoding``.

    Parameters
    ----------
    steps, features : int
    max_wavelength : float, default=10000.0

    Returns
    -------
    ndarray of shape (steps, features), float64
    """
    position = np.arange(steps, dtype=np.float64)[:, None]
    i = np.arange(features)
    angles = position * np.power(1.0 / max_wavelength, 2 * (i // 2) / features)
    return np.where(i % 2 == 0, np.sin(angles), np.cos(angles))


class PositionalEmbeddingLayer(Layer):
    """Runtime state of :class:`PositionalEmbedding`."""

    passes_mask = True
    output_is_sequence = True

    def __init__(self, spec, input_shape, dtype, name):
        steps, features = _sequence_input(input_shape, f"PositionalEmbedding {name!r}")
        super().__init__(name, input_shape, input_shape, dtype)
        self.mode = spec.mode
        self.initializer = spec.initializer
        if self.mode == "learned":
            self.param_shapes = {"embeddings": (steps, features)}
            self.weight_penalties = {"embeddings": None}
            self.table = None
        else:
            self.table = sinusoidal_positions(steps, features).astype(dtype)

    def initialize(self, rng):
        if self.mode == "learned":
            shape = self.param_shapes["embeddings"]
            self.params["embeddings"][...] = initialize(self.initializer, shape, rng,
                                                        self.dtype)

    def forward(self, X, training=False, rng=None, mask=None):
        table = self.params["embeddings"] if self.table is None else self.table
        return X + table  # a new array: X stays as it is

    def _table_grad(self, dY, scale, context):
        """The learned table's gradient: ``scale`` times the sample-weighted
        sum of dY over the batch (nothing for the fixed table)."""
        if self.table is None:
            w = context.sample_weight
            summed = (dY.sum(axis=0, dtype=context.accumulate_dtype) if w is None else
                      np.tensordot(np.asarray(w, context.accumulate_dtype), dY, axes=1))
            self.grads["embeddings"][...] = scale * summed

    def backward(self, dY, context, need_input_grad=True):
        self._table_grad(dY, context.scale, context)
        return dY if need_input_grad else None

    def bind(self, X, dX, context):
        table = self.params["embeddings"] if self.table is None else self.table
        Y, dY = np.empty_like(X), np.empty_like(X)

        def backward(scale):
            self._table_grad(dY, scale, context)
            if dX is not None:
                np.copyto(dX, dY)
        return BoundLayer(Y, dY, lambda: np.add(X, table, out=Y), backward)

    def forward_flops(self):
        """One addition per value."""
        return int(np.prod(self.input_shape, dtype=np.int64))


class TransformerEncoderBlock(ContainerSpec):
    """A Transformer encoder layer: self-attention and a feed-forward network,
    each with a residual connection and layer normalization, exactly as
    PyTorch's ``nn.TransformerEncoderLayer(batch_first=True)``.

    With ``norm_first=False`` (post-norm, Vaswani et al.)::

        x = norm1(x + dropout1(attention(x)))
        x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))

    and with ``norm_first=True`` (pre-norm)::

        x = x + dropout1(attention(norm1(x)))
        x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))

    Parameters
    ----------
    num_heads : int
        Attention heads.
    key_dim : int or None, default=None
        Size of each head's queries and keys; None is
        ``features // num_heads`` (PyTorch's head size).
    ff_units : int or None, default=None
        Units of the feed-forward network's hidden layer; None is four times
        the features (Vaswani et al.'s and BERT's ratio; PyTorch's fixed
        ``dim_feedforward=2048`` is that ratio for 512 features).
    dropout : float in [0, 1), default=0.0
        Rate of every dropout of the block (the attention weights included),
        as PyTorch's single ``dropout``.
    norm_first : bool, default=False
        Pre-norm instead of post-norm (PyTorch's ``norm_first``).
    value_dim : int or None, default=None
        Size of each head's values; None is ``key_dim``.
    activation : str, default='relu'
        Activation of the hidden layer, any name :class:`Dense` takes.
    epsilon : float > 0, default=1e-5
        The layer normalizations' epsilon.
    use_bias : bool, default=True
        Biases in the attention's projections (the feed-forward layers and
        the normalizations always have theirs).
    causal : bool, default=False
        Causal attention (each step sees itself and the steps before).
    name : str or None, default=None
        The block's layers are named ``<name>/attention``,
        ``<name>/dropout1``, ``<name>/norm1``, ``<name>/linear1``,
        ``<name>/dropout``, ``<name>/linear2``, ``<name>/dropout2`` and
        ``<name>/norm2`` (PyTorch's names; the dropouts only with
        ``dropout > 0``).

    Notes
    -----
    Input and output per sample ``(steps, features)``; a mask from
    ``Embedding(mask_zero=True)`` or ``Masking`` hides padded steps from the
    attention and passes on (to a ``GlobalAvgPool1D``, say).

    The defaults ``epsilon=1e-5`` and ``activation='relu'`` follow PyTorch's
    ``nn.TransformerEncoderLayer`` and keras_hub's ``TransformerEncoder``;
    :class:`LayerNormalization` alone follows Keras (1e-3).
    """

    _parameter_constraints = {
        "num_heads": [Interval(Integral, 1, None, closed="left")],
        "key_dim": [Interval(Integral, 1, None, closed="left"), None],
        "ff_units": [Interval(Integral, 1, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "norm_first": ["boolean"],
        "value_dim": [Interval(Integral, 1, None, closed="left"), None],
        "activation": [StrOptions(set(_ops.ACTIVATIONS))],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "use_bias": ["boolean"],
        "causal": ["boolean"],
        "name": [str, None],
    }

    def __init__(self, num_heads, key_dim=None, ff_units=None, dropout=0.0, norm_first=False,
                 value_dim=None, activation="relu", epsilon=1e-5, use_bias=True,
                 causal=False, name=None):
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.ff_units = ff_units
        self.dropout = dropout
        self.norm_first = norm_first
        self.value_dim = value_dim
        self.activation = activation
        self.epsilon = epsilon
        self.use_bias = use_bias
        self.causal = causal
        self.name = name

    def _build_in(self, context, input_shape, name):
        what = f"TransformerEncoderBlock {name!r}"
        _, features = _sequence_input(input_shape, what)
        if self.key_dim is None and features < self.num_heads:
            raise ValueError(
                f"{what}: key_dim=None is features // num_heads = {features} // "
                f"{self.num_heads} = 0; use fewer heads or give key_dim.")
        ff_units = 4 * features if self.ff_units is None else self.ff_units
        drop = self.dropout > 0

        def named(part, spec):
            spec.name = f"{name}/{part}"
            return spec

        attention = [named("attention", MultiHeadAttention(
            self.num_heads, self.key_dim, self.value_dim, dropout=self.dropout,
            use_bias=self.use_bias, causal=self.causal))]
        if drop:
            attention.append(named("dropout1", Dropout(self.dropout)))
        feed_forward = [named("linear1", Dense(ff_units, activation=self.activation))]
        if drop:
            feed_forward.append(named("dropout", Dropout(self.dropout)))
        feed_forward.append(named("linear2", Dense(features)))
        if drop:
            feed_forward.append(named("dropout2", Dropout(self.dropout)))
        shape = tuple(input_shape)
        parts = {
            "attention": context.build(attention, shape, where=what),
            "norm1": context.build([named("norm1", LayerNormalization(self.epsilon))],
                                   shape, where=what),
            "feed_forward": context.build(feed_forward, shape, where=what),
            "norm2": context.build([named("norm2", LayerNormalization(self.epsilon))],
                                   shape, where=what),
        }
        return TransformerEncoderBlockLayer(name, shape, parts, self.norm_first,
                                            context.dtype)


class TransformerEncoderBlockLayer(Layer):
    """Runtime state of :class:`TransformerEncoderBlock`: its four chains of
    layers (``attention``, ``norm1``, ``feed_forward``, ``norm2``) and the
    residual additions between them."""

    takes_inputs = True
    takes_sample_weight = True
    passes_mask = True
    output_is_sequence = True
    kind = "TransformerEncoderBlock"

    def __init__(self, name, input_shape, parts, norm_first, dtype):
        super().__init__(name, input_shape, input_shape, dtype)
        self.parts = parts
        self.norm_first = bool(norm_first)
        # Post-norm ends in norm2, whose output array is the block's.
        self.output_is_sublayers = not self.norm_first

    def sublayers(self):
        p = self.parts
        if self.norm_first:
            return p["norm1"] + p["attention"] + p["norm2"] + p["feed_forward"]
        return p["attention"] + p["norm1"] + p["feed_forward"] + p["norm2"]

    def forward(self, X, training=False, rng=None, mask=None, sample_weight=None,
                inputs=None, taps=None):
        def run(part, Z):
            return forward_chain(self.parts[part], Z, training, rng, mask, sample_weight,
                                 inputs, taps)[0]

        def add(key, A, B):
            # The residual sums, in arrays kept across training batches.
            return _ops.residual_add(A, B, out=self._scratch(key, A.shape) if training
                                     else None)

        if self.norm_first:
            X = add("x1", X, run("attention", run("norm1", X)))
            return add("y", X, run("feed_forward", run("norm2", X)))
        X = run("norm1", add("s1", X, run("attention", X)))
        return run("norm2", add("s2", X, run("feed_forward", X)))

    def backward(self, dY, context, need_input_grad=True):
        def back(part, dZ, need=True):
            return backward_chain(self.parts[part], dZ, context, need)

        def add(key, A, B):
            # The residual gradients' sums, in arrays kept across batches.
            return _ops.residual_add(A, B, out=self._scratch(key, A.shape))

        if self.norm_first:
            dX = add("dx1", dY, back("norm2", back("feed_forward", dY)))
            inner = back("norm1", back("attention", dX), need_input_grad)
            return add("dX", dX, inner) if need_input_grad else None
        dX = back("norm2", dY)
        dX = back("norm1", add("ds1", dX, back("feed_forward", dX)))
        inner = back("attention", dX, need_input_grad)
        return add("dX", dX, inner) if need_input_grad else None

    def bind(self, X, dX, context):
        def chain(part, Z, dZ):
            """The part's layers bound one after the other from ``Z``, their
            input gradient written into ``dZ``: (forward calls, backward
            calls, output, output gradient), or None."""
            forwards, backwards = [], []
            for layer in self.parts[part]:
                b = layer.bind(Z, dZ, context)
                if b is None:
                    return None
                if b.forward is not None:
                    forwards.append(b.forward)
                if b.backward is not None:
                    backwards.insert(0, b.backward)
                Z, dZ = b.Y, b.dY
            return forwards, backwards, Z, dZ

        def add(A, B, out):
            run = _ops.bind_residual_add(A, B, out)[0]
            return lambda *scale: run()

        def fresh():
            return np.empty_like(X)

        # Each part writes its input gradient where the part before it reads
        # its output gradient; the residual sums are added in backward's order.
        if self.norm_first:
            # x1 = X + attention(norm1(X)); Y = x1 + feed_forward(norm2(x1))
            into_norm1 = None if dX is None else fresh()
            norm1 = chain("norm1", X, into_norm1)
            attention = norm1 and chain("attention", norm1[2], norm1[3])
            x1, into_norm2 = fresh(), fresh()
            norm2 = attention and chain("norm2", x1, into_norm2)
            feed_forward = norm2 and chain("feed_forward", norm2[2], norm2[3])
            if feed_forward is None:
                return None
            Y, dY = fresh(), feed_forward[3]
            forwards = (norm1[0] + attention[0] + [add(X, attention[2], x1)] + norm2[0]
                        + feed_forward[0] + [add(x1, feed_forward[2], Y)])
            backwards = (feed_forward[1] + norm2[1] + [add(dY, into_norm2, attention[3])]
                         + attention[1] + norm1[1])
            if dX is not None:
                backwards.append(add(attention[3], into_norm1, dX))
        else:
            # x1 = norm1(X + attention(X)); Y = norm2(x1 + feed_forward(x1))
            into_attention = None if dX is None else fresh()
            attention = chain("attention", X, into_attention)
            s1 = fresh()
            norm1 = attention and chain("norm1", s1, attention[3])
            into_feed_forward, s2 = fresh(), fresh()
            feed_forward = norm1 and chain("feed_forward", norm1[2], into_feed_forward)
            norm2 = feed_forward and chain("norm2", s2, feed_forward[3])
            if norm2 is None:
                return None
            Y, dY = norm2[2], norm2[3]
            forwards = (attention[0] + [add(X, attention[2], s1)] + norm1[0]
                        + feed_forward[0] + [add(norm1[2], feed_forward[2], s2)] + norm2[0])
            backwards = (norm2[1] + feed_forward[1]
                         + [add(feed_forward[3], into_feed_forward, norm1[3])]
                         + norm1[1] + attention[1])
            if dX is not None:
                backwards.append(add(attention[3], into_attention, dX))
        return BoundLayer(Y, dY, lambda: run_all(forwards),
                          lambda scale: run_all(backwards, scale))

    def clear(self):
        for layer in self.sublayers():
            layer.clear()

    def forward_flops(self):
        """The two residual additions, one per value; the sublayers count
        their own."""
        return 2 * int(np.prod(self.input_shape, dtype=np.int64))
