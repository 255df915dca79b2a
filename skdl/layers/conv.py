"""Convolution layers: Conv1D (channels first or last) and Conv2D (channels first)."""
import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _ops
from .._initializers import INITIALIZERS, initialize
from ..regularizers import Regularizer
from ._base import BoundLayer, Layer, LayerSpec, regularizer_coefficients, run_all
from .core import _ActivationMixin, check_activation_alpha


def as_planes(input_shape, rank, name):
    """(C, *spatial) of a channels-first sample with ``rank`` spatial axes.

    Samples without a channel axis ((H, W) for 2-D, (L,) for 1-D) have one
    channel.
    """
    if len(input_shape) == rank:
        input_shape = (1,) + tuple(input_shape)
    if len(input_shape) != rank + 1:
        kind = "(channels, height, width) or (height, width)" if rank == 2 else \
            "(channels, length) or (length,)"
        raise ValueError(f"{name} takes samples of shape {kind}, got {input_shape}.")
    if min(input_shape) < 1:
        raise ValueError(f"{name} needs samples without empty axes, got shape "
                         f"{input_shape}.")
    return tuple(int(v) for v in input_shape)


_PADDING = [StrOptions({"valid", "same"}), Integral, tuple, list]
_DATA_FORMAT = [StrOptions({"channels_first", "channels_last"}), None]


class DataFormatMixin:
    """What the 1-D convolution and pools share about ``data_format``.

    None, the default, reads the input as channels-last (steps, features)
    when the layer before outputs sequences (``Layer.output_is_sequence``:
    Embedding, Masking, recurrent layers returning sequences, channels-last
    1-D convolutions and pools, and the layers acting on each step after
    them), else as channels-first (channels, length), as before
    ``data_format`` existed.
    """

    _reads_layout = True
    # Files of skdl's safe format written before data_format existed hold
    # no value for it; they meant channels-first (see skdl._persistence).
    _missing_params = {"data_format": "channels_first"}

    def _channels_last(self, after_sequence):
        if self.data_format is None:
            return bool(after_sequence)
        return self.data_format == "channels_last"

    def __setstate__(self, state):
        # Specs pickled before data_format existed convolved channels-first.
        state = dict(state)
        state.setdefault("data_format", "channels_first")
        super().__setstate__(state)


def sequence_planes(input_shape, name):
    """(C, L) planes of a channels-last sample (steps, features) or (steps,)."""
    if len(input_shape) not in (1, 2):
        raise ValueError(f"{name} with data_format='channels_last' takes samples of "
                         f"shape (steps, features) or (steps,), got {input_shape}.")
    if min(input_shape) < 1:
        raise ValueError(f"{name} needs samples without empty axes, got shape "
                         f"{input_shape}.")
    steps = int(input_shape[0])
    features = int(input_shape[1]) if len(input_shape) == 2 else 1
    return (features, steps)


def to_channels_first(X, planes):
    """(n, C, L) C-contiguous copy of a channels-last batch (n, L, C)."""
    C, L = planes
    return np.ascontiguousarray(X.reshape((X.shape[0], L, C)).transpose(0, 2, 1))


def to_channels_last(Y):
    """(n, L, C) C-contiguous copy of a channels-first batch (n, C, L)."""
    return np.ascontiguousarray(Y.transpose(0, 2, 1))


def window_mask(mask, window):
    """Mask of a 1-D window's outputs: a position is kept if every step its
    window covers is kept (taps in the zero padding aside), so no kept
    output depends on a masked step.

    Parameters
    ----------
    mask : bool ndarray of shape (n, steps)
    window : skdl._ops.Window
        A rank-1 window over ``steps``.

    Returns
    -------
    bool ndarray of shape (n, out_steps)
    """
    (before, _), = window.padding
    steps = mask.shape[1]
    taps = (np.arange(window.out_shape[0])[:, None] * window.strides[0] - before
            + np.arange(window.size[0]) * window.dilation[0])  # (out_steps, k)
    outside = (taps < 0) | (taps >= steps)
    return (mask[:, np.clip(taps, 0, steps - 1)] | outside).all(axis=2)


class _ConvSpec(LayerSpec):
    rank = 2

    _parameter_constraints = {
        "filters": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "strides": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "padding": _PADDING,
        "dilation": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "activation": [StrOptions(set(_ops.ACTIVATIONS)), None],
        "alpha": [Interval(Real, 0, None, closed="left"), None],
        "use_bias": ["boolean"],
        "kernel_initializer": [StrOptions(set(INITIALIZERS))],
        "bias_initializer": [StrOptions(set(INITIALIZERS))],
        "kernel_regularizer": [Regularizer, None],
        "name": [str, None],
    }

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation=1,
                 activation=None, alpha=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, name=None):
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.activation = activation
        self.alpha = alpha
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.name = name

    def _build(self, input_shape, dtype, name):
        return ConvLayer(self, input_shape, dtype, name)


class Conv2D(_ConvSpec):
    """2-D convolution over images of shape (channels, height, width).

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
        Height and width of the window; one int for both.
    strides : int or (int, int), default=1
        Steps between windows, down and across.
    padding : 'valid', 'same', int or per-axis ints / (before, after) pairs, default='valid'
        'same' keeps ``ceil(size / stride)`` outputs (the odd padding after);
        'valid' adds none; an int pads every side by it.
    dilation : int or (int, int), default=1
        Spacing between the window's taps (1: adjacent taps).
    activation : str or None, default=None
        Any name :class:`~skdl.layers.Dense` takes.
    alpha : float or None, default=None
        Slope of ``leaky_relu`` or scale of ``elu``, as in
        :class:`~skdl.layers.Dense`.
    use_bias : bool, default=True
        Add a learned ``bias`` per filter.
    kernel_initializer : str, default='glorot_uniform'
        How ``kernel`` is drawn: an initializer name such as
        ``'he_uniform'``, ``'lecun_normal'`` or ``'orthogonal'``.
    bias_initializer : str, default='zeros'
        How ``bias`` is drawn.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``kernel``; None applies the estimator-wide one.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``conv2d``, ``conv2d_1``...)
        if None.

    Notes
    -----
    Samples of shape (height, width) have one channel. Output per sample:
    (filters, out_height, out_width). Parameters: ``kernel`` of shape
    ``(filters, in_channels, kh, kw)`` (PyTorch's layout) and ``bias`` of shape
    ``(filters,)``. Like every deep-learning library, this computes a
    cross-correlation.
    """

    rank = 2


class Conv1D(DataFormatMixin, _ConvSpec):
    """1-D convolution over signals (channels, length) or sequences (steps, features).

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int,)
        Length of the window.
    strides : int or (int,), default=1
        Step between windows.
    padding : 'valid', 'same', int or [int or (before, after)], default='valid'
        'same' keeps ``ceil(length / stride)`` outputs (the odd padding
        after); 'valid' adds none; an int pads both ends by it; a one-entry
        sequence holds an int or a ``(before, after)`` pair, such as
        ``[(2, 1)]``.
    dilation : int or (int,), default=1
        Spacing between the window's taps (1: adjacent taps).
    activation : str or None, default=None
        Any name :class:`~skdl.layers.Dense` takes.
    alpha : float or None, default=None
        Slope of ``leaky_relu`` or scale of ``elu``, as in
        :class:`~skdl.layers.Dense`.
    use_bias : bool, default=True
        Add a learned ``bias`` per filter.
    kernel_initializer : str, default='glorot_uniform'
        How ``kernel`` is drawn: an initializer name such as
        ``'he_uniform'``, ``'lecun_normal'`` or ``'orthogonal'``.
    bias_initializer : str, default='zeros'
        How ``bias`` is drawn.
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``kernel``; None applies the estimator-wide one.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``conv1d``, ``conv1d_1``...)
        if None.
    data_format : {'channels_first', 'channels_last'} or None, default=None
        'channels_first': samples (channels, length), output
        (filters, out_length). 'channels_last': samples (steps, features), as
        Embedding and recurrent layers output them, convolved along the
        steps; output (out_steps, filters). None: 'channels_last' when the
        layer before outputs sequences (Embedding, Masking, a recurrent layer
        with ``return_sequences=True``, a channels-last Conv1D or pool, and
        layers acting on each step after them), else 'channels_first'; the
        first layer of a network reads 'channels_first'.

    Notes
    -----
    Samples of shape (length,) have one channel (one feature). Parameters:
    ``kernel`` of shape ``(filters, in_channels, k)`` (PyTorch's layout, in
    both data formats) and ``bias`` of shape ``(filters,)``. Like every
    deep-learning library, this computes a cross-correlation. Channels-last
    computes exactly what channels-first computes on the transposed sample,
    the activation included (``softmax`` normalizes each filter over the
    steps). A mask over the steps (``Embedding(mask_zero=True)``, ``Masking``)
    goes on channels-last only: an output step is kept if every step its
    window covers is kept (taps in the zero padding aside), so a global pool
    after it reads only windows of real steps; a sequence shorter than the
    window then has no kept output, and the global pools give zeros for it.
    """

    rank = 1

    _parameter_constraints = {**_ConvSpec._parameter_constraints,
                              "data_format": _DATA_FORMAT}

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation=1,
                 activation=None, alpha=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, name=None, data_format=None):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         dilation=dilation, activation=activation, alpha=alpha,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, name=name)
        self.data_format = data_format

    def _build(self, input_shape, dtype, name, after_sequence=False):
        return ConvLayer(self, input_shape, dtype, name,
                         channels_last=self._channels_last(after_sequence))


class ConvLayer(_ActivationMixin, Layer):
    """Runtime state of :class:`Conv1D` and :class:`Conv2D`.

    A channels-last Conv1D (``channels_last``) takes (steps, features)
    samples, runs the channels-first ops on their transposes and gives
    (out_steps, filters).
    """

    channels_last = False  # layers pickled before data_format: channels-first

    def __init__(self, spec, input_shape, dtype, name, channels_last=False):
        what = f"{type(spec).__name__} {name!r}"
        planes = (sequence_planes(input_shape, what) if channels_last
                  else as_planes(input_shape, spec.rank, what))
        # Checked once here; the ops take it as it is (window=).
        self.window = _ops.Window.of(planes[1:], spec.kernel_size, spec.strides,
                                     spec.padding, spec.dilation, layer=True)
        F = spec.filters
        output_shape = (self.window.out_shape + (F,) if channels_last
                        else (F,) + self.window.out_shape)
        super().__init__(name, input_shape, output_shape, dtype)
        self.channels_last = channels_last
        self.output_is_sequence = channels_last
        self.planes = planes  # (C, *spatial): samples as the ops take them
        self.kernel_hw = self.window.size
        self.filters = F
        check_activation_alpha(spec.activation, spec.alpha,
                               f"{type(spec).__name__} layer {name!r}")
        self.activation = spec.activation
        self.alpha = spec.alpha
        self.initializers = {"kernel": spec.kernel_initializer,
                             "bias": spec.bias_initializer}
        self.param_shapes = {"kernel": (F, planes[0]) + self.kernel_hw}
        self.weight_penalties = {"kernel": regularizer_coefficients(spec.kernel_regularizer)}
        if spec.use_bias:
            self.param_shapes["bias"] = (F,)
        self._cache = None

    def initialize(self, rng):
        for key, shape in self.param_shapes.items():
            self.params[key][...] = initialize(self.initializers[key], shape, rng,
                                               self.dtype)

    def _kernel(self, source):
        return source["kernel"].reshape((self.filters, self.planes[0]) + self.kernel_hw)

    def forward(self, X, training=False, rng=None, mask=None):
        X4 = (to_channels_first(X, self.planes) if self.channels_last
              else X.reshape((X.shape[0],) + self.planes))
        n = X4.shape[0]
        out = (self._scratch("A", (n, self.filters) + self.window.out_shape) if training
               else None)
        A = _ops.conv2d_forward(X4, self._kernel(self.params), self.params.get("bias"),
                                activation=self.activation, alpha=self.alpha,
                                out=out, window=self.window)
        self._cache = (X4, A) if training else None
        if self.channels_last:
            return to_channels_last(A).reshape((n,) + self.output_shape)
        return A.reshape((X.shape[0],) + self.output_shape)

    def compute_mask(self, X, mask):
        if mask is None or not self.channels_last:
            return None  # a channels-first signal has no steps to mask
        return window_mask(mask, self.window)

    def backward(self, dY, context, need_input_grad=True):
        X4, A = self._cache
        n = X4.shape[0]
        if self.channels_last:
            dY = np.ascontiguousarray(
                dY.reshape((n,) + self.window.out_shape + (self.filters,)).transpose(0, 2, 1))
        # The activation acts on each channel's plane (softmax included).
        rows = (n * self.filters, -1)
        dZ = self._activation_grad(A.reshape(rows), dY.reshape(rows),
                                   out=self._scratch("dZ", A.shape).reshape(rows))
        dZ = dZ.reshape(A.shape)
        _ops.conv2d_backward_params(
            X4, dZ, context.row_weights(n), context.scale, context.accumulate_dtype,
            kernel_hw=self.kernel_hw, dK=self._kernel(self.grads),
            db=self.grads.get("bias"), window=self.window)
        if not need_input_grad:
            return None
        dX = _ops.conv2d_backward_input(dZ, self._kernel(self.params), self.planes[1:],
                                        out=self._scratch("dX", (n,) + self.planes),
                                        window=self.window)
        if self.channels_last:
            dX = to_channels_last(dX)
        return dX.reshape((n,) + self.input_shape)

    def bind(self, X, dX, context):
        if self.activation == "softmax" or self.channels_last:
            # softmax: applied per plane after the kernel, see conv2d_forward;
            # channels-last: transposed copies, which bound arrays cannot share.
            return None
        n = X.shape[0]
        X4 = X.reshape((n,) + self.planes)
        K = self._kernel(self.params)
        forward, A = _ops.bind_conv2d_forward(X4, K, self.params.get("bias"),
                                              activation=self.activation, alpha=self.alpha,
                                              window=self.window)
        dA = np.empty_like(A)
        rows = (n * self.filters, -1)  # as backward has them
        calls = self._bind_activation_grad(A.reshape(rows), dA.reshape(rows))
        calls.append(_ops.bind_conv2d_backward_params(
            X4, dA, context.sample_weight, context.accumulate_dtype, kernel_hw=self.kernel_hw,
            dK=self._kernel(self.grads), db=self.grads.get("bias"), window=self.window)[0])
        if dX is not None:
            into = _ops.bind_conv2d_backward_input(
                dA, K, self.planes[1:], out=dX.reshape((n,) + self.planes),
                window=self.window)[0]
            calls.append(lambda scale: into())
        shape = (n,) + self.output_shape
        return BoundLayer(A.reshape(shape), dA.reshape(shape), forward,
                          lambda scale: run_all(calls, scale))

    def clear(self):
        self._cache = None

    def __setstate__(self, state):
        state = dict(state)
        if "window" not in state and "geometry" in state:
            # Pickled before layers kept a checked window (skdl's pickle
            # format 1): their strides, padding and dilation, checked again.
            state["window"] = _ops.Window.of(state["planes"][1:], state["kernel_hw"],
                                             **state.pop("geometry"))
        window, rank = state["window"], len(state["param_shapes"]["kernel"]) - 2
        if window.rank != rank:
            # Pickled when a Conv1D ran as a height-1 image (C, 1, L) with a
            # (1, k) window: the same window without its height axis.
            window = _ops.Window.of(window.in_shape[1:], window.size[1:],
                                    window.strides[1:], window.padding[1:],
                                    window.dilation[1:])
            state.update(window=window, planes=state["planes"][:1] + window.in_shape,
                         kernel_hw=window.size)
        state.pop("out_hw", None)  # now window.out_shape
        self.__dict__.update(state)

    def forward_flops(self):
        """``2 * C_in * prod(kernel_size)`` per output value for the products
        (every kernel tap, padding included), plus one for the bias if used
        and one for the activation unless linear; ``F * prod(out_shape)``
        output values."""
        C = self.planes[0]
        outputs = self.filters * math.prod(self.window.out_shape)
        per_output = 2 * C * math.prod(self.kernel_hw)
        if "bias" in self.param_shapes:
            per_output += 1
        if self.activation not in (None, "linear"):
            per_output += 1
        return outputs * per_output
