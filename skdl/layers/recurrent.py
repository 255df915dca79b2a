"""Recurrent layers: SimpleRNN, GRU, LSTM and Bidirectional.

Sequences are (steps, features) per sample, or (steps,) for one feature. The
weight layouts follow PyTorch's gate order so weights can be ported:
``kernel`` (features, G*units) is PyTorch's ``weight_ih_l0.T``,
``recurrent_kernel`` (units, G*units) is ``weight_hh_l0.T``.
"""
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _ops
from .._initializers import INITIALIZERS, initialize
from ..regularizers import Regularizer
from ._base import ArrayCache, Layer, LayerSpec, regularizer_coefficients

# Rows per block of a recurrent layer's inference (see RecurrentLayer.forward).
INFERENCE_ROWS = 256
_ELEMENTWISE = StrOptions(set(_ops.ACTIVATIONS) - {"softmax"})
_GATE = StrOptions(set(_ops.GATE_ACTIVATIONS))
_INIT = StrOptions(set(INITIALIZERS))


def sequence_shape(input_shape, layer):
    """(steps, features) of a sequence input, or a clear error."""
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) == 2:
        if input_shape[1] < 1:
            raise ValueError(f"{layer} needs at least one feature per step, got "
                             f"sequences of shape {input_shape}.")
        return input_shape
    raise ValueError(
        f"{layer} expects sequences of shape (steps, features) or (steps,) per "
        f"sample, got {input_shape}; set input_shape=(-1, n_features) for flat X."
    )


class _RecurrentSpec(LayerSpec):
    cell = "simple"

    _parameter_constraints = {
        "units": [Interval(Integral, 1, None, closed="left")],
        "activation": [_ELEMENTWISE],
        "recurrent_activation": [_GATE],
        "use_bias": ["boolean"],
        "return_sequences": ["boolean"],
        "go_backwards": ["boolean"],
        "kernel_initializer": [_INIT],
        "recurrent_initializer": [_INIT],
        "bias_initializer": [_INIT],
        "kernel_regularizer": [Regularizer, None],
        "recurrent_regularizer": [Regularizer, None],
        "name": [str, None],
    }

    def _build(self, input_shape, dtype, name):
        return RecurrentLayer(self, input_shape, dtype, name)


class SimpleRNN(_RecurrentSpec):
    """Fully connected recurrence: ``h_t = activation(x_t W + h_{t-1} U + b)``.

    Parameters
    ----------
    units : int
        Size of the state, and of the output at each step.
    activation : str, default='tanh'
        Any name :class:`~skdl.layers.Dense` takes but ``softmax``.
    use_bias : bool, default=True
        Add learned biases.
    return_sequences : bool, default=False
        Output every step's state, (steps, units), instead of the last one.
    go_backwards : bool, default=False
        Read the sequence from its end; with ``return_sequences`` the output
        is in reading order (last step first), as in Keras.
    kernel_initializer : str, default='glorot_uniform'
        How ``kernel`` is drawn: an initializer name such as
        ``'glorot_uniform'``, ``'he_normal'`` or ``'orthogonal'``.
    recurrent_initializer : str, default='orthogonal'
        How ``recurrent_kernel`` is drawn.
    bias_initializer : str, default='zeros'
        How ``bias`` is drawn.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``kernel`` and ``recurrent_kernel``; None applies the
        estimator-wide one.
    recurrent_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``recurrent_kernel`` instead of ``kernel_regularizer``;
        None leaves ``recurrent_kernel`` to ``kernel_regularizer``.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``simple_rnn``,
        ``simple_rnn_1``...) if None.

    Notes
    -----
    Input per sample: (steps, features), or (steps,) for one feature.
    Weights: ``kernel`` (features, units), ``recurrent_kernel`` (units, units),
    ``bias`` (units,). Steps masked by an earlier layer keep the state.
    """

    cell = "simple"
    _parameter_constraints = {k: v for k, v in _RecurrentSpec._parameter_constraints.items()
                              if k != "recurrent_activation"}

    def __init__(self, units, activation="tanh", use_bias=True, return_sequences=False,
                 go_backwards=False, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, name=None):
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.name = name


class GRU(_RecurrentSpec):
    """Gated recurrent unit, in the reset-after form of cuDNN and PyTorch.

    ``r = σ(x W_r + b_r + h U_r + bh_r)``, ``z = σ(x W_z + b_z + h U_z + bh_z)``,
    ``n = tanh(x W_n + b_n + r * (h U_n + bh_n))``, ``h' = (1 - z) n + z h``.

    Parameters
    ----------
    units : int
        Size of the state, and of the output at each step.
    activation : str, default='tanh'
        Activation of the candidate state ``n`` (``tanh`` above): any name
        :class:`~skdl.layers.Dense` takes but ``softmax``.
    recurrent_activation : str, default='sigmoid'
        Activation of the reset and update gates ``r`` and ``z`` (``σ``
        above): one of ``sigmoid``, ``tanh``, ``linear``, ``softsign``,
        ``elliot``, ``symmetric_elliot``.
    use_bias : bool, default=True
        Add learned biases.
    return_sequences : bool, default=False
        Output every step's state, (steps, units), instead of the last one.
    go_backwards : bool, default=False
        Read the sequence from its end; with ``return_sequences`` the output
        is in reading order (last step first), as in Keras.
    kernel_initializer : str, default='glorot_uniform'
        How ``kernel`` is drawn: an initializer name such as
        ``'glorot_uniform'``, ``'he_normal'`` or ``'orthogonal'``.
    recurrent_initializer : str, default='orthogonal'
        How ``recurrent_kernel`` is drawn.
    bias_initializer : str, default='zeros'
        How ``bias`` and ``recurrent_bias`` are drawn.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``kernel`` and ``recurrent_kernel``; None applies the
        estimator-wide one.
    recurrent_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``recurrent_kernel`` instead of ``kernel_regularizer``;
        None leaves ``recurrent_kernel`` to ``kernel_regularizer``.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``gru``, ``gru_1``...) if None.

    Notes
    -----
    Input per sample: (steps, features), or (steps,) for one feature.
    Weights: ``kernel`` (features, 3*units), ``recurrent_kernel``
    (units, 3*units), gate blocks in the order reset, update, new;
    separate ``bias`` and ``recurrent_bias`` (3*units,) each (PyTorch's
    ``bias_ih_l0`` and ``bias_hh_l0``). Steps masked by an earlier layer keep
    the state.
    """

    cell = "gru"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, return_sequences=False, go_backwards=False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, name=None):
        self.units = units
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.use_bias = use_bias
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.name = name


class LSTM(_RecurrentSpec):
    """Long short-term memory.

    ``i, f, o = σ(·)``, ``g = tanh(·)`` of ``x W + h U + b``,
    ``c' = f c + i g``, ``h' = o tanh(c')``.

    Parameters
    ----------
    units : int
        Size of the state, and of the output at each step.
    activation : str, default='tanh'
        Activation of the candidate ``g`` and of the cell state in
        ``h' = o tanh(c')`` (``tanh`` above): any name
        :class:`~skdl.layers.Dense` takes but ``softmax``.
    recurrent_activation : str, default='sigmoid'
        Activation of the input, forget and output gates ``i``, ``f`` and
        ``o`` (``σ`` above): one of ``sigmoid``, ``tanh``, ``linear``,
        ``softsign``, ``elliot``, ``symmetric_elliot``.
    use_bias : bool, default=True
        Add learned biases.
    return_sequences : bool, default=False
        Output every step's state, (steps, units), instead of the last one.
    go_backwards : bool, default=False
        Read the sequence from its end; with ``return_sequences`` the output
        is in reading order (last step first), as in Keras.
    unit_forget_bias : bool, default=True
        Start the forget gate's bias at 1 (whatever ``bias_initializer``), as
        in Keras; no effect without ``use_bias``.
    kernel_initializer : str, default='glorot_uniform'
        How ``kernel`` is drawn: an initializer name such as
        ``'glorot_uniform'``, ``'he_normal'`` or ``'orthogonal'``.
    recurrent_initializer : str, default='orthogonal'
        How ``recurrent_kernel`` is drawn.
    bias_initializer : str, default='zeros'
        How ``bias`` is drawn.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``kernel`` and ``recurrent_kernel``; None applies the
        estimator-wide one.
    recurrent_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``recurrent_kernel`` instead of ``kernel_regularizer``;
        None leaves ``recurrent_kernel`` to ``kernel_regularizer``.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``lstm``, ``lstm_1``...) if
        None.

    Notes
    -----
    Input per sample: (steps, features), or (steps,) for one feature.
    Weights: ``kernel`` (features, 4*units), ``recurrent_kernel``
    (units, 4*units), gate blocks in the order input, forget, cell, output;
    one ``bias`` (4*units,) (PyTorch's ``bias_ih_l0 + bias_hh_l0``). Steps
    masked by an earlier layer keep the state (and the cell state).
    """

    cell = "lstm"
    _parameter_constraints = {**_RecurrentSpec._parameter_constraints,
                              "unit_forget_bias": ["boolean"]}

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, return_sequences=False, go_backwards=False,
                 unit_forget_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, name=None):
        self.units = units
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.use_bias = use_bias
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.unit_forget_bias = unit_forget_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.name = name


class RecurrentLayer(Layer):
    """Runtime state of :class:`SimpleRNN`, :class:`GRU` and :class:`LSTM`."""

    def __init__(self, spec, input_shape, dtype, name):
        steps, features = sequence_shape(input_shape, f"{type(spec).__name__} {name!r}")
        units = spec.units
        output_shape = (steps, units) if spec.return_sequences else (units,)
        super().__init__(name, input_shape, output_shape, dtype)
        self.output_is_sequence = bool(spec.return_sequences)
        self.cell = spec.cell
        self.steps, self.features, self.units = steps, features, units
        self.activation = spec.activation
        self.recurrent_activation = getattr(spec, "recurrent_activation", "sigmoid")
        self.return_sequences = spec.return_sequences
        self.go_backwards = spec.go_backwards
        self.unit_forget_bias = getattr(spec, "unit_forget_bias", False)
        self.initializers = {"kernel": spec.kernel_initializer,
                             "recurrent_kernel": spec.recurrent_initializer,
                             "bias": spec.bias_initializer,
                             "recurrent_bias": spec.bias_initializer}
        self.param_shapes = _ops.get_cell(self.cell).param_shapes(features, units,
                                                                   spec.use_bias)
        kernel_penalty = regularizer_coefficients(spec.kernel_regularizer)
        recurrent_penalty = regularizer_coefficients(spec.recurrent_regularizer)
        self.weight_penalties = {
            "kernel": kernel_penalty,
            "recurrent_kernel": kernel_penalty if recurrent_penalty is None
            else recurrent_penalty,
        }
        self._cache = None

    @property
    def kind(self):
        """str, the cell's layer name: 'SimpleRNN', 'GRU' or 'LSTM'."""
        return _ops.get_cell(self.cell).title

    def initialize(self, rng):
        for key, shape in self.param_shapes.items():
            self.params[key][...] = initialize(self.initializers[key], shape, rng, self.dtype)
        if self.unit_forget_bias and "bias" in self.params:
            self.params["bias"][self.units:2 * self.units] = 1

    def _sequences(self, X, mask):
        """X as (n, steps, features) in reading order, and the mask likewise."""
        X3 = X.reshape((X.shape[0], self.steps, self.features))
        if self.go_backwards:
            X3 = X3[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        return np.ascontiguousarray(X3), mask

    def _kwargs(self):
        return dict(activation=self.activation, recurrent_activation=self.recurrent_activation)

    def _run(self, X3, mask, keep, scratch):
        state = _ops.recurrent_forward(
            self.cell, X3, self.params["kernel"], self.params["recurrent_kernel"],
            self.params.get("bias"), self.params.get("recurrent_bias"), mask,
            scratch=scratch, keep=keep, **self._kwargs())
        if self.return_sequences:
            return state, np.ascontiguousarray(state.H[:, 1:])
        return state, state.H[:, self.steps % state.H.shape[1]].copy()

    def forward(self, X, training=False, rng=None, mask=None):
        X3, mask = self._sequences(X, mask)
        if training:
            state, Y = self._run(X3, mask, "all", self._scratch)
            self._cache = (X3, state)
            return Y
        self._cache = None
        # Inference in blocks of rows that share one set of arrays: the input
        # projections of every step are large, and fresh memory costs page
        # faults. Local arrays, not the layer's: prediction may run from
        # several threads at once.
        scratch = ArrayCache().array
        keep = "states" if self.return_sequences else "last"
        outputs = [self._run(X3[i:i + INFERENCE_ROWS],
                             None if mask is None else mask[i:i + INFERENCE_ROWS],
                             keep, scratch)[1]
                   for i in range(0, X3.shape[0], INFERENCE_ROWS)]
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def compute_mask(self, X, mask):
        if mask is None or not self.return_sequences:
            return None
        return mask[:, ::-1] if self.go_backwards else mask

    def backward(self, dY, context, need_input_grad=True):
        X3, state = self._cache
        n = X3.shape[0]
        # Without sequences only the last step has an output gradient.
        dH = dY.reshape((n, self.steps if self.return_sequences else 1, self.units))
        dX, dW, dU, db, dbh = _ops.recurrent_backward(
            self.cell, dH, X3, self.params["kernel"], self.params["recurrent_kernel"],
            state, context.sample_weight, context.scale, context.accumulate_dtype,
            need_input_grad=need_input_grad, scratch=self._scratch, **self._kwargs())
        self.grads["kernel"][...] = dW
        self.grads["recurrent_kernel"][...] = dU
        if "bias" in self.grads:
            self.grads["bias"][...] = db
        if "recurrent_bias" in self.grads:
            self.grads["recurrent_bias"][...] = dbh
        if dX is None:
            return None
        if self.go_backwards:
            dX = dX[:, ::-1]
        return np.ascontiguousarray(dX).reshape((n,) + self.input_shape)

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """The cell's :meth:`~skdl._ops.Cell.forward_flops` per step (per step
        ``2 * (features + units) * G * units`` for ``x W + h U``, ``G * units``
        per bias vector, and per unit: SimpleRNN 1 (activation); GRU 9 (3
        activations, 2 for the reset ``r * (h U_n + b_hn)`` added to ``x W_n``,
        4 for ``(1 - z) * n + z * h``); LSTM 9 (4 gate activations, 3 for
        ``f * c + i * g``, 1 for ``act(c)``, 1 for ``o * act(c)``); linear
        activations count 0), times the steps, masked or not."""
        per_step = _ops.get_cell(self.cell).forward_flops(
            self.features, self.units, "bias" in self.param_shapes, self.activation,
            self.recurrent_activation)
        return self.steps * per_step


class Bidirectional(LayerSpec):
    """Run a recurrent layer over the sequence both ways and merge the outputs.

    Parameters
    ----------
    layer : SimpleRNN, GRU or LSTM
        Read forwards (as given); a copy with ``go_backwards`` flipped reads
        backwards. With ``return_sequences`` the backward outputs are put back
        in time order before merging.
    merge_mode : {'concat', 'sum', 'mul', 'ave'}, default='concat'
        How the two outputs combine: joined along their last axis (which
        doubles), added, multiplied elementwise or averaged.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``bidirectional``,
        ``bidirectional_1``...) if None.

    Notes
    -----
    Weights: those of the two layers, named ``forward_kernel``,
    ``backward_kernel``, etc.
    """

    _parameter_constraints = {
        "layer": [_RecurrentSpec],
        "merge_mode": [StrOptions({"concat", "sum", "mul", "ave"})],
        "name": [str, None],
    }

    def __init__(self, layer, merge_mode="concat", name=None):
        self.layer = layer
        self.merge_mode = merge_mode
        self.name = name

    def _build(self, input_shape, dtype, name):
        return BidirectionalLayer(self, input_shape, dtype, name)


class BidirectionalLayer(Layer):
    """Runtime state of :class:`Bidirectional`."""

    def __init__(self, spec, input_shape, dtype, name):
        from sklearn.base import clone

        forward_spec = spec.layer
        backward_spec = clone(spec.layer).set_params(go_backwards=not spec.layer.go_backwards)
        self.halves = {"forward": forward_spec.build(input_shape, dtype, f"{name}_forward"),
                       "backward": backward_spec.build(input_shape, dtype, f"{name}_backward")}
        inner = self.halves["forward"].output_shape
        output_shape = inner[:-1] + (2 * inner[-1],) if spec.merge_mode == "concat" else inner
        super().__init__(name, input_shape, output_shape, dtype)
        self.merge_mode = spec.merge_mode
        self.return_sequences = spec.layer.return_sequences
        self.output_is_sequence = bool(self.return_sequences)
        self.param_shapes = {f"{side}_{key}": shape for side, half in self.halves.items()
                             for key, shape in half.param_shapes.items()}
        self.weight_penalties = {f"{side}_{key}": penalty
                                 for side, half in self.halves.items()
                                 for key, penalty in half.weight_penalties.items()}
        self._cache = None

    def _share(self):
        # The network binds views to this layer; the halves use the same views.
        for side, half in self.halves.items():
            prefix = f"{side}_"
            half.params = {k[len(prefix):]: v for k, v in self.params.items()
                           if k.startswith(prefix)}
            half.grads = {k[len(prefix):]: v for k, v in self.grads.items()
                          if k.startswith(prefix)}

    def initialize(self, rng):
        self._share()
        for half in self.halves.values():
            half.initialize(rng)

    def _align(self, Y):
        # Backward outputs come last step first: put them back in time order.
        return Y[:, ::-1] if self.return_sequences else Y

    def forward(self, X, training=False, rng=None, mask=None):
        self._share()
        Yf = self.halves["forward"].forward(X, training, rng, mask)
        Yb = self._align(self.halves["backward"].forward(X, training, rng, mask))
        self._cache = (Yf, Yb) if training else None
        if self.merge_mode == "concat":
            return np.concatenate([Yf, Yb], axis=-1)
        if self.merge_mode == "sum":
            return Yf + Yb
        if self.merge_mode == "mul":
            return Yf * Yb
        return (Yf + Yb) / 2

    def compute_mask(self, X, mask):
        return self.halves["forward"].compute_mask(X, mask)

    def backward(self, dY, context, need_input_grad=True):
        self._share()
        Yf, Yb = self._cache
        if self.merge_mode == "concat":
            half = Yf.shape[-1]
            dYf, dYb = dY[..., :half], dY[..., half:]
        elif self.merge_mode == "sum":
            dYf = dYb = dY
        elif self.merge_mode == "mul":
            dYf, dYb = dY * Yb, dY * Yf
        else:
            dYf = dYb = dY / 2
        dXf = self.halves["forward"].backward(np.ascontiguousarray(dYf), context,
                                              need_input_grad)
        dXb = self.halves["backward"].backward(np.ascontiguousarray(self._align(dYb)),
                                               context, need_input_grad)
        return None if dXf is None else dXf + dXb

    def clear(self):
        self._cache = None
        for half in self.halves.values():
            half.clear()

    def forward_flops(self):
        """Both directions' counts (the halves are not :meth:`sublayers`),
        plus one per output value to merge for 'sum' and 'mul', two for
        'ave', none for 'concat'."""
        merge = {"concat": 0, "sum": 1, "mul": 1, "ave": 2}[self.merge_mode]
        outputs = int(np.prod(self.output_shape, dtype=np.int64))
        return sum(half.forward_flops() for half in self.halves.values()) + merge * outputs

    def release_scratch(self):
        for half in self.halves.values():
            half.release_scratch()
