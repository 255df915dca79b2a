"""Composite blocks: pydnn's ``add_convolution`` and ``add_hidden`` conveniences."""
from abc import abstractmethod
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from .. import _ops
from ..regularizers import Regularizer
from ._base import Layer, backward_chain, forward_chain, walk_layers
from .conv import Conv1D, Conv2D
from .core import Activation, Dense, Dropout
from .merge import ContainerSpec
from .normalization import BatchNormalization
from .pooling import AvgPool1D, AvgPool2D, MaxPool1D, MaxPool2D


class SequenceLayer(Layer):
    """Runtime state of a block: its layers run one after the other.

    Parameters
    ----------
    name : str
    layers : list of Layer
        Built layers, the first taking the block's input.
    dtype : numpy dtype
    kind : str
        The spec's class name, for summaries.
    """

    takes_inputs = True
    takes_sample_weight = True
    output_is_sublayers = True

    def __init__(self, name, layers, dtype, kind):
        super().__init__(name, layers[0].input_shape, layers[-1].output_shape, dtype)
        self.layers = layers
        self.kind = kind
        self.passes_mask = all(layer.passes_mask for layer in walk_layers(layers))

    def sublayers(self):
        return list(self.layers)

    def forward(self, X, training=False, rng=None, mask=None, sample_weight=None,
                inputs=None, taps=None):
        return forward_chain(self.layers, X, training, rng, mask, sample_weight, inputs,
                             taps)[0]

    def backward(self, dY, context, need_input_grad=True):
        return backward_chain(self.layers, dY, context, need_input_grad)


_ACTIVATION = [StrOptions(set(_ops.ACTIVATIONS)), None]


class _BlockSpec(ContainerSpec):
    """A block builds a fixed sequence of layers named ``<block>/<part>``."""

    @abstractmethod
    def _parts(self):
        """(part name, spec) pairs of the block, in order."""

    def _parts_in(self, context):
        """The parts for a block built in ``context`` (what its input is)."""
        return self._parts()

    def _build_in(self, context, input_shape, name):
        specs = []
        for part, spec in self._parts_in(context):
            spec.name = f"{name}/{part}"
            specs.append(spec)
        layers = context.build(specs, input_shape, where=f"{type(self).__name__} {name!r}")
        layer = SequenceLayer(name, layers, context.dtype, type(self).__name__)
        layer.output_is_sequence = context.sequence_output  # its last part's layout
        return layer

    def _activation_parts(self, batch_norm_axis):
        """Batch normalization then the activation, when the block normalizes
        (the main layer then has no bias and no activation of its own)."""
        parts = []
        if self.batch_norm:
            parts.append(("batch_norm", BatchNormalization(
                axis=batch_norm_axis, momentum=self.momentum, epsilon=self.epsilon)))
            if self.activation not in (None, "linear"):
                parts.append(("activation", Activation(self.activation, alpha=self.alpha)))
        return parts


class _ConvBlockSpec(_BlockSpec):
    rank = 2

    _parameter_constraints = {
        "filters": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "strides": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "padding": [StrOptions({"valid", "same"}), Integral, tuple, list],
        "batch_norm": ["boolean"],
        "activation": _ACTIVATION,
        "alpha": [Interval(Real, 0, None, closed="left"), None],
        "pool": [StrOptions({"max", "avg"}), None],
        "pool_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "pool_strides": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "kernel_regularizer": [Regularizer, None],
        "momentum": BatchNormalization._parameter_constraints["momentum"],
        "epsilon": BatchNormalization._parameter_constraints["epsilon"],
        "name": [str, None],
    }

    def __init__(self, filters, kernel_size=3, strides=1, padding="same",
                 batch_norm=False, activation="relu", alpha=None, pool="max",
                 pool_size=2, pool_strides=None, kernel_regularizer=None, momentum=0.9,
                 epsilon=1e-3, name=None):
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.batch_norm = batch_norm
        self.activation = activation
        self.alpha = alpha
        self.pool = pool
        self.pool_size = pool_size
        self.pool_strides = pool_strides
        self.kernel_regularizer = kernel_regularizer
        self.momentum = momentum
        self.epsilon = epsilon
        self.name = name

    def _parts_in(self, context):
        # After a sequence the 1-D convolution reads (steps, features) (its
        # data_format follows the input), so its channels are the last axis.
        channels_last = self.rank == 1 and context.sequence_input
        return self._parts(batch_norm_axis=-1 if channels_last else 1)

    def _parts(self, batch_norm_axis=1):
        conv, max_pool, avg_pool = ((Conv2D, MaxPool2D, AvgPool2D) if self.rank == 2
                                    else (Conv1D, MaxPool1D, AvgPool1D))
        parts = [("conv", conv(
            self.filters, self.kernel_size, strides=self.strides, padding=self.padding,
            activation=None if self.batch_norm else self.activation,
            alpha=None if self.batch_norm else self.alpha,
            use_bias=not self.batch_norm, kernel_regularizer=self.kernel_regularizer))]
        parts += self._activation_parts(batch_norm_axis=batch_norm_axis)
        if self.pool is not None:
            pool = max_pool if self.pool == "max" else avg_pool
            parts.append(("pool", pool(self.pool_size, strides=self.pool_strides)))
        return parts


class ConvBlock2D(_ConvBlockSpec):
    """Convolution, optional batch normalization, activation and pooling
    (pydnn's ``add_convolution``).

    Builds ``Conv2D -> [BatchNormalization -> Activation] -> [Max|Avg]Pool2D``.
    With ``batch_norm`` the convolution has no bias (the normalization's
    shift replaces it) and the activation follows the normalization;
    without it the activation is fused into the convolution.

    Parameters
    ----------
    filters : int
        Output channels of the convolution.
    kernel_size : int or (int, int), default=3
        Height and width of the convolution's window; one int for both.
    strides : int or (int, int), default=1
        Steps between the convolution's windows.
    padding : 'valid', 'same', int or per-axis ints, default='same'
        The convolution's padding, as in :class:`~skdl.layers.Conv2D`.
    batch_norm : bool, default=False
        Normalize the convolution's output per channel before the activation.
    activation : str or None, default='relu'
        Any name :class:`~skdl.layers.Dense` takes; None is linear.
    alpha : float or None, default=None
        Slope of ``leaky_relu`` or scale of ``elu``.
    pool : {'max', 'avg'} or None, default='max'
        None: no pooling.
    pool_size : int or (int, int), default=2
        Height and width of the pooling window.
    pool_strides : int, (int, int) or None, default=None
        None: equal to ``pool_size``.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on the convolution's ``kernel``; None applies the
        estimator-wide one.
    momentum : float in [0, 1), default=0.9
        With ``batch_norm``: the normalization's ``momentum``, as in
        :class:`~skdl.layers.BatchNormalization`.
    epsilon : float > 0, default=1e-3
        With ``batch_norm``: added to the variance before its square root.
    name : str or None, default=None
        The block's layers are named ``<name>/conv``, ``<name>/batch_norm``,
        ``<name>/activation`` and ``<name>/pool`` (in ``get_weights``).

    Notes
    -----
    Input per sample ``(channels, height, width)`` or ``(height, width)``;
    output ``(filters, out_height, out_width)`` after pooling.
    """

    rank = 2


class ConvBlock1D(_ConvBlockSpec):
    """:class:`ConvBlock2D` over signals: ``Conv1D -> [BatchNormalization ->
    Activation] -> [Max|Avg]Pool1D``.

    With ``batch_norm`` the convolution has no bias (the normalization's
    shift replaces it) and the activation follows the normalization;
    without it the activation is fused into the convolution.

    Parameters
    ----------
    filters : int
        Output channels of the convolution.
    kernel_size : int or (int,), default=3
        Length of the convolution's window.
    strides : int or (int,), default=1
        Step between the convolution's windows.
    padding : 'valid', 'same', int or [int or (before, after)], default='same'
        The convolution's padding, as in :class:`~skdl.layers.Conv1D`.
    batch_norm : bool, default=False
        Normalize the convolution's output per channel before the activation.
    activation : str or None, default='relu'
        Any name :class:`~skdl.layers.Dense` takes; None is linear.
    alpha : float or None, default=None
        Slope of ``leaky_relu`` or scale of ``elu``.
    pool : {'max', 'avg'} or None, default='max'
        None: no pooling.
    pool_size : int or (int,), default=2
        Length of the pooling window.
    pool_strides : int, (int,) or None, default=None
        None: equal to ``pool_size``.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on the convolution's ``kernel``; None applies the
        estimator-wide one.
    momentum : float in [0, 1), default=0.9
        With ``batch_norm``: the normalization's ``momentum``, as in
        :class:`~skdl.layers.BatchNormalization`.
    epsilon : float > 0, default=1e-3
        With ``batch_norm``: added to the variance before its square root.
    name : str or None, default=None
        The block's layers are named ``<name>/conv``, ``<name>/batch_norm``,
        ``<name>/activation`` and ``<name>/pool`` (in ``get_weights``).

    Notes
    -----
    Input per sample ``(channels, length)`` or ``(length,)``; output
    ``(filters, out_length)`` after pooling. After a layer that outputs
    sequences (``Embedding``, a recurrent layer with
    ``return_sequences=True``...) the convolution and the pool read
    ``(steps, features)`` along the steps, as their ``data_format=None``
    does, the normalization is per filter on the last axis, and the output is
    ``(out_steps, filters)``.
    """

    rank = 1


class HiddenBlock(_BlockSpec):
    """Dense layer, optional batch normalization, activation and dropout
    (pydnn's ``add_hidden``).

    Builds ``Dense -> [BatchNormalization -> Activation] -> [Dropout]``.
    With ``batch_norm`` the dense layer has no bias and the activation
    follows the normalization; without it the activation is fused into the
    dense layer.

    Parameters
    ----------
    units : int
    batch_norm : bool, default=False
    activation : str or None, default='relu'
    alpha : float or None, default=None
    dropout : float in [0, 1), default=0.0
        0 adds no dropout layer.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
    momentum : float in [0, 1), default=0.9
        With ``batch_norm``: the normalization's ``momentum``, as in
        :class:`~skdl.layers.BatchNormalization`.
    epsilon : float > 0, default=1e-3
        With ``batch_norm``: added to the variance before its square root.
    name : str or None, default=None
        The block's layers are named ``<name>/dense``, ``<name>/batch_norm``,
        ``<name>/activation`` and ``<name>/dropout``.

    Notes
    -----
    Acts on the last axis: input per sample ``(..., n_in)``, output
    ``(..., units)``; the normalization is over that last axis.
    """

    _parameter_constraints = {
        "units": [Interval(Integral, 1, None, closed="left")],
        "batch_norm": ["boolean"],
        "activation": _ACTIVATION,
        "alpha": [Interval(Real, 0, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "kernel_regularizer": [Regularizer, None],
        "momentum": BatchNormalization._parameter_constraints["momentum"],
        "epsilon": BatchNormalization._parameter_constraints["epsilon"],
        "name": [str, None],
    }

    def __init__(self, units, batch_norm=False, activation="relu", alpha=None,
                 dropout=0.0, kernel_regularizer=None, momentum=0.9, epsilon=1e-3,
                 name=None):
        self.units = units
        self.batch_norm = batch_norm
        self.activation = activation
        self.alpha = alpha
        self.dropout = dropout
        self.kernel_regularizer = kernel_regularizer
        self.momentum = momentum
        self.epsilon = epsilon
        self.name = name

    def _parts(self):
        parts = [("dense", Dense(
            self.units, activation=None if self.batch_norm else self.activation,
            alpha=None if self.batch_norm else self.alpha, use_bias=not self.batch_norm,
            kernel_regularizer=self.kernel_regularizer))]
        parts += self._activation_parts(batch_norm_axis=-1)
        if self.dropout > 0:
            parts.append(("dropout", Dropout(self.dropout)))
        return parts
