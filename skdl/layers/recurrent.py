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
        "initial_state": [str, None],
        "name": [str, None],
    }

    def _build(self, input_shape, dtype, name):
        if self.initial_state is not None:
            raise ValueError(
                f"{type(self).__name__} {name!r} takes its initial state from the layer "
                f"{self.initial_state!r}, so it is built within a network holding that "
                "layer (an estimator's layers), not alone."
            )
        return RecurrentLayer(self, input_shape, dtype, name)

    def build_in(self, context, input_shape, name):
        """Build within a network, reading the initial state off the layer
        ``initial_state`` names, which must have been built before.

        Parameters
        ----------
        context : skdl._network.BuildContext
            The network's build context, which knows the layers built so far.
        input_shape : tuple of int
            Shape of one sample arriving at this layer.
        name : str
            The layer's name.

        Returns
        -------
        RecurrentLayer
        """
        if self.initial_state is None:
            return self.build(input_shape, context.dtype, name)
        self._validate_params()
        what = f"{type(self).__name__} {name!r}"
        source = context.earlier_layer(self.initial_state, what, "its initial state")
        return RecurrentLayer(self, tuple(int(s) for s in input_shape), context.dtype,
                              name, source)


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
    initial_state : str or None, default=None
        The name of a layer that comes earlier in the network (before this
        one on the main path, or in an earlier branch of the same
        ``Pathways`` or ``MergeInput``) whose output is the state before the
        first step: (units,) per sample, such as an encoder's final state.
        Gradients flow back into that layer. None starts from zeros.
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
                 kernel_regularizer=None, recurrent_regularizer=None, initial_state=None,
                 name=None):
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
        self.initial_state = initial_state
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
    initial_state : str or None, default=None
        The name of a layer that comes earlier in the network (before this
        one on the main path, or in an earlier branch of the same
        ``Pathways`` or ``MergeInput``) whose output is the state before the
        first step: (units,) per sample, such as an encoder's final state.
        Gradients flow back into that layer. None starts from zeros.
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
                 recurrent_regularizer=None, initial_state=None, name=None):
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
        self.initial_state = initial_state
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
    initial_state : str or None, default=None
        The name of a layer that comes earlier in the network (before this
        one on the main path, or in an earlier branch of the same
        ``Pathways`` or ``MergeInput``) whose output is the state before the
        first step: (units,) per sample for ``h`` (the cell state starting
        at zeros), or (2*units,) for ``h`` and ``c`` side by side, as an
        encoder LSTM with ``return_state=True`` outputs them. Gradients flow
        back into that layer. None starts both from zeros.
    return_state : bool, default=False
        Output the last state and cell state side by side, (2*units,): the
        ``h`` and ``c`` another LSTM's ``initial_state`` can start from.
        Not with ``return_sequences``.
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
                              "unit_forget_bias": ["boolean"],
                              "return_state": ["boolean"]}

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, return_sequences=False, go_backwards=False,
                 unit_forget_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, initial_state=None,
                 return_state=False, name=None):
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
        self.initial_state = initial_state
        self.return_state = return_state
        self.name = name


class RecurrentLayer(Layer):
    """Runtime state of :class:`SimpleRNN`, :class:`GRU` and :class:`LSTM`.

    ``source``, the layer the spec's ``initial_state`` names, gives the
    initial state: its output (n, units), or (n, 2*units) for an LSTM's
    ``h`` and ``c``.
    """

    # Class defaults: layers pickled before initial states existed.
    initial_state = None
    state_width = 0
    return_state = False

    def __init__(self, spec, input_shape, dtype, name, source=None):
        what = f"{type(spec).__name__} {name!r}"
        steps, features = sequence_shape(input_shape, what)
        units = spec.units
        self.return_state = getattr(spec, "return_state", False)
        if self.return_state and spec.return_sequences:
            raise ValueError(
                f"{what} cannot both return_sequences and return_state: the output is "
                "one array, either every step's h or the last h and c (for another "
                "LSTM's initial_state). Set one of them to False."
            )
        output_shape = ((steps, units) if spec.return_sequences
                        else (2 * units,) if self.return_state else (units,))
        super().__init__(name, input_shape, output_shape, dtype)
        if source is not None:
            cell = _ops.get_cell(spec.cell)
            widths = (units, 2 * units) if cell.cell_state else (units,)
            if len(source.output_shape) != 1 or source.output_shape[0] not in widths:
                expected = (f"({units},) for h, or ({2 * units},) for h and c side by "
                            "side (an LSTM with return_state=True)"
                            if cell.cell_state else f"({units},), one state")
                raise ValueError(
                    f"{what} takes its initial state from {source.name!r}, whose output "
                    f"per sample has shape {source.output_shape}; a {cell.title} of "
                    f"{units} units needs {expected}."
                )
            self.initial_state = source.name
            self.state_width = source.output_shape[0]
            self.takes_inputs = True
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

    def _initial(self, inputs):
        """(h0, c0) from the source layer's output in this pass, or Nones."""
        if self.initial_state is None:
            return None, None
        S = None if inputs is None else inputs.get(("output", self.initial_state))
        if S is None:
            raise ValueError(
                f"{self.kind} {self.name!r} starts from the output of "
                f"{self.initial_state!r}, which has not run in this pass: run the "
                "network, not the layer alone."
            )
        u = self.units
        if S.shape[1] == u:
            return np.ascontiguousarray(S), None
        return np.ascontiguousarray(S[:, :u]), np.ascontiguousarray(S[:, u:])

    def _run(self, X3, mask, keep, scratch, h0=None, c0=None):
        state = _ops.recurrent_forward(
            self.cell, X3, self.params["kernel"], self.params["recurrent_kernel"],
            self.params.get("bias"), self.params.get("recurrent_bias"), mask,
            scratch=scratch, keep=keep, h0=h0, c0=c0, **self._kwargs())
        if self.return_sequences:
            return state, np.ascontiguousarray(state.H[:, 1:])
        last = self.steps % state.H.shape[1]
        if self.return_state:
            return state, np.concatenate([state.H[:, last], state.C[:, last]], axis=1)
        return state, state.H[:, last].copy()

    def forward(self, X, training=False, rng=None, mask=None, inputs=None, taps=None):
        X3, mask = self._sequences(X, mask)
        h0, c0 = self._initial(inputs)
        if training:
            state, Y = self._run(X3, mask, "all", self._scratch, h0, c0)
            self._cache = (X3, state)
            return Y
        self._cache = None
        # Inference in blocks of rows that share one set of arrays: the input
        # projections of every step are large, and fresh memory costs page
        # faults. Local arrays, not the layer's: prediction may run from
        # several threads at once.
        scratch = ArrayCache().array
        keep = "states" if self.return_sequences else "last"
        rows = lambda a, i: None if a is None else a[i:i + INFERENCE_ROWS]  # noqa: E731
        outputs = [self._run(X3[i:i + INFERENCE_ROWS], rows(mask, i), keep, scratch,
                             rows(h0, i), rows(c0, i))[1]
                   for i in range(0, X3.shape[0], INFERENCE_ROWS)]
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def compute_mask(self, X, mask):
        if mask is None or not self.return_sequences:
            return None
        return mask[:, ::-1] if self.go_backwards else mask

    def backward(self, dY, context, need_input_grad=True):
        X3, state = self._cache
        n = X3.shape[0]
        u = self.units
        dc_last = None
        if self.return_state:
            dc_last = np.ascontiguousarray(dY[:, u:])
            dY = np.ascontiguousarray(dY[:, :u])
        # Without sequences only the last step has an output gradient.
        dH = dY.reshape((n, self.steps if self.return_sequences else 1, u))
        grads = _ops.recurrent_backward(
            self.cell, dH, X3, self.params["kernel"], self.params["recurrent_kernel"],
            state, context.sample_weight, context.scale, context.accumulate_dtype,
            need_input_grad=need_input_grad, scratch=self._scratch, dc_last=dc_last,
            state_grads=self.initial_state is not None, **self._kwargs())
        dX, dW, dU, db, dbh = grads[:5]
        if self.initial_state is not None:
            # The initial state's gradient goes to the layer it came from.
            dh0, dc0 = grads[5:]
            d_source = dh0 if self.state_width == u else np.concatenate([dh0, dc0], axis=1)
            context.add_output_grad(self.initial_state, d_source)
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

        if spec.layer.initial_state is not None:
            raise ValueError(
                f"Bidirectional {name!r}: its layer has initial_state="
                f"{spec.layer.initial_state!r}, but the two directions would need a "
                "state each (the backward one starting at the last step). Give the "
                "initial state to a SimpleRNN, GRU or LSTM outside Bidirectional."
            )
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
