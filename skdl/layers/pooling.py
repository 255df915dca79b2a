"""Pooling layers: max and average, windowed and global, 1-D and 2-D, and the
last step of a sequence."""
import math
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _ops
from ._base import BoundLayer, Layer, LayerSpec
from .conv import (_DATA_FORMAT, DataFormatMixin, as_planes, sequence_planes,
                   to_channels_first, to_channels_last, window_mask)


class _PoolSpec(LayerSpec):
    rank = 2
    kind = "max"

    _parameter_constraints = {
        "pool_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "strides": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "padding": [StrOptions({"valid", "same"}), Integral, tuple, list],
        "name": [str, None],
    }

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None):
        self.pool_size = pool_size
        self.strides = strides
        self.padding = padding
        self.name = name

    def _build(self, input_shape, dtype, name, after_sequence=False):
        what = f"{type(self).__name__} {name!r}"
        channels_last = self.rank == 1 and self._channels_last(after_sequence)
        planes = (sequence_planes(input_shape, what) if channels_last
                  else as_planes(input_shape, self.rank, what))
        window = _ops.Window.of(planes[1:], self.pool_size, self.strides, self.padding,
                                what="pool", layer=True)
        return PoolLayer(name, input_shape, planes, self.kind, window, dtype,
                         keep_rank=True, channels_last=channels_last)


class _Pool1DSpec(DataFormatMixin, _PoolSpec):
    rank = 1
    _parameter_constraints = {**_PoolSpec._parameter_constraints,
                              "data_format": _DATA_FORMAT}

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None,
                 data_format=None):
        super().__init__(pool_size, strides=strides, padding=padding, name=name)
        self.data_format = data_format


class MaxPool2D(_PoolSpec):
    """Maximum over windows of each channel of (channels, height, width) samples.

    Parameters
    ----------
    pool_size : int or (int, int), default=2
        Height and width of the window; one int for both.
    strides : int or (int, int) or None, default=None
        None is ``pool_size``; smaller strides make windows overlap.
    padding : 'valid', 'same', int or per-axis ints / pairs, default='valid'
        Padding never wins the maximum; it must be smaller than the pool.
    name : str or None, default=None
        Layer name; generated (``max_pool2d``, ``max_pool2d_1``...) if None.

    Notes
    -----
    Samples of shape (height, width) are pooled as one channel and keep that
    shape. No parameters.
    """

    rank, kind = 2, "max"


class AvgPool2D(_PoolSpec):
    """Mean over windows of each channel; padding is not counted in the mean.

    Parameters
    ----------
    pool_size : int or (int, int), default=2
        Height and width of the window; one int for both.
    strides : int or (int, int) or None, default=None
        None is ``pool_size``; smaller strides make windows overlap.
    padding : 'valid', 'same', int or per-axis ints / pairs, default='valid'
        Padding is left out of each window's mean; it must be smaller than
        the pool.
    name : str or None, default=None
        Layer name; generated (``avg_pool2d``, ``avg_pool2d_1``...) if None.

    Notes
    -----
    Samples of shape (height, width) are pooled as one channel and keep that
    shape. No parameters.
    """

    rank, kind = 2, "avg"


class MaxPool1D(_Pool1DSpec):
    """Maximum over windows of (channels, length) signals or (steps, features) sequences.

    Parameters
    ----------
    pool_size : int or (int,), default=2
        Length of the window.
    strides : int or (int,) or None, default=None
        None is ``pool_size``; smaller strides make windows overlap.
    padding : 'valid', 'same', int or [int or (before, after)], default='valid'
        A one-entry sequence holds an int or a ``(before, after)`` pair.
        Padding never wins the maximum; it must be smaller than the pool.
    name : str or None, default=None
        Layer name; generated (``max_pool1d``, ``max_pool1d_1``...) if None.
    data_format : {'channels_first', 'channels_last'} or None, default=None
        'channels_first': samples (channels, length), pooled along the
        length. 'channels_last': samples (steps, features), pooled along the
        steps; output (out_steps, features). None: 'channels_last' when the
        layer before outputs sequences (as for :class:`Conv1D`), else
        'channels_first'.

    Notes
    -----
    Samples of shape (length,) are pooled as one channel and keep that
    shape. No parameters. Channels-last passes a mask over the steps on:
    an output step is kept if every step its window covers is kept (as for
    :class:`Conv1D`).
    """

    rank, kind = 1, "max"


class AvgPool1D(_Pool1DSpec):
    """Mean over windows of (channels, length) signals or (steps, features) sequences.

    Parameters
    ----------
    pool_size : int or (int,), default=2
        Length of the window.
    strides : int or (int,) or None, default=None
        None is ``pool_size``; smaller strides make windows overlap.
    padding : 'valid', 'same', int or [int or (before, after)], default='valid'
        A one-entry sequence holds an int or a ``(before, after)`` pair.
        Padding is left out of each window's mean; it must be smaller than
        the pool.
    name : str or None, default=None
        Layer name; generated (``avg_pool1d``, ``avg_pool1d_1``...) if None.
    data_format : {'channels_first', 'channels_last'} or None, default=None
        'channels_first': samples (channels, length), pooled along the
        length. 'channels_last': samples (steps, features), pooled along the
        steps; output (out_steps, features). None: 'channels_last' when the
        layer before outputs sequences (as for :class:`Conv1D`), else
        'channels_first'.

    Notes
    -----
    Samples of shape (length,) are pooled as one channel and keep that
    shape. No parameters. Channels-last passes a mask over the steps on:
    an output step is kept if every step its window covers is kept (as for
    :class:`Conv1D`).
    """

    rank, kind = 1, "avg"


class _GlobalPoolSpec(LayerSpec):
    rank = 2
    kind = "max"

    _parameter_constraints = {"name": [str, None]}

    def __init__(self, name=None):
        self.name = name

    def _build(self, input_shape, dtype, name):
        planes = as_planes(input_shape, self.rank, f"{type(self).__name__} {name!r}")
        window = _ops.Window.of(planes[1:], planes[1:], what="pool")
        return PoolLayer(name, input_shape, planes, self.kind, window, dtype,
                         keep_rank=False)


class GlobalMaxPool2D(_GlobalPoolSpec):
    """Maximum of each channel over the whole image: (C, H, W) -> (C,).

    Samples of shape (H, W) are one channel: (H, W) -> (1,).

    Parameters
    ----------
    name : str or None, default=None
        Layer name; generated (``global_max_pool2d``...) if None.
    """

    rank, kind = 2, "max"


class GlobalAvgPool2D(_GlobalPoolSpec):
    """Mean of each channel over the whole image: (C, H, W) -> (C,).

    Samples of shape (H, W) are one channel: (H, W) -> (1,).

    Parameters
    ----------
    name : str or None, default=None
        Layer name; generated (``global_avg_pool2d``...) if None.
    """

    rank, kind = 2, "avg"


class _GlobalPool1DSpec(DataFormatMixin, _GlobalPoolSpec):
    rank = 1
    _parameter_constraints = {"data_format": _DATA_FORMAT, "name": [str, None]}

    def __init__(self, data_format=None, name=None):
        self.data_format = data_format
        self.name = name

    def _build(self, input_shape, dtype, name, after_sequence=False):
        if self._channels_last(after_sequence):
            return SequencePoolLayer(name, input_shape, self.kind, dtype)
        return super()._build(input_shape, dtype, name)


class GlobalMaxPool1D(_GlobalPool1DSpec):
    """Maximum of each channel over the whole signal: (C, L) -> (C,).

    With ``data_format='channels_last'``, the maximum over the steps of a
    sequence, (steps, features) -> (features,), for recurrent, embedding and
    channels-last convolution outputs; masked steps are left out (a sequence
    with every step masked gives zeros).

    Parameters
    ----------
    data_format : {'channels_first', 'channels_last'} or None, default=None
        'channels_first': signals (channels, length), or (length,) as one
        channel, give (channels,). 'channels_last': sequences
        (steps, features), or (steps,) as one feature, give (features,).
        None: 'channels_last' when the layer before outputs sequences (as
        for :class:`Conv1D`), else 'channels_first'.
    name : str or None, default=None
        Layer name; generated (``global_max_pool1d``...) if None.
    """

    kind = "max"


class GlobalAvgPool1D(_GlobalPool1DSpec):
    """Mean of each channel over the whole signal: (C, L) -> (C,).

    With ``data_format='channels_last'``, the mean over the steps of a
    sequence, (steps, features) -> (features,), for recurrent, embedding and
    channels-last convolution outputs; masked steps are left out (a sequence
    with every step masked gives zeros).

    Parameters
    ----------
    data_format : {'channels_first', 'channels_last'} or None, default=None
        'channels_first': signals (channels, length), or (length,) as one
        channel, give (channels,). 'channels_last': sequences
        (steps, features), or (steps,) as one feature, give (features,).
        None: 'channels_last' when the layer before outputs sequences (as
        for :class:`Conv1D`), else 'channels_first'.
    name : str or None, default=None
        Layer name; generated (``global_avg_pool1d``...) if None.
    """

    kind = "avg"


class LastStep(LayerSpec):
    """The last step of each sequence that is there: (steps, features) -> (features,).

    The readout of a causal Transformer language model (GPT's: the last
    token's output predicts the next token) and of classification from the
    last token; the state recurrent layers give without
    ``return_sequences``. In PyTorch one writes ``out[:, -1]`` (or gathers
    at ``lengths - 1`` for padded batches), in Keras a ``Lambda(lambda x:
    x[:, -1])``. ``Flatten`` followed by ``Dense`` instead learns a weight
    per position and so memorizes where things are.

    Parameters
    ----------
    name : str or None, default=None
        Layer name; generated (``last_step``, ``last_step_1``...) if None.

    Notes
    -----
    Samples of shape (steps,) are one feature: (steps,) -> (1,). With a mask
    from ``Embedding(mask_zero=True)`` or ``Masking``, each sample's output
    is its last step whose mask is True: left-aligned text (padded at the
    end) gives its last token, right-aligned windows (padded in front) their
    final step, and a sample with every step masked gives zeros, as the
    sequence pools do. Without a mask it is the last step. The mask ends
    here (the output has no steps). After ``MultiHeadAttention(causal=True)``
    with right-aligned padding (and no ``PositionalEmbedding``, whose
    positions move with the padding), a sample's output does not change when
    more padding is put in front. No parameters.
    """

    _parameter_constraints = {"name": [str, None]}

    def __init__(self, name=None):
        self.name = name

    def _build(self, input_shape, dtype, name):
        return LastStepLayer(name, input_shape, dtype)


class PoolLayer(Layer):
    """Runtime state of every pooling layer: a pool over (C, *spatial) samples.

    Parameters
    ----------
    name : str
    input_shape : tuple of int
        The samples' shape, with or without their channel axis.
    planes : tuple of int
        (C, *spatial), the samples as the ops take them.
    kind : {'max', 'avg'}
    window : skdl._ops.Window
        The pool's geometry over ``planes[1:]``, checked once here; the ops
        take it as it is (``window=``).
    dtype : numpy.dtype
    keep_rank : bool
        Output (C, *out_shape) (without C if the input had no channel axis),
        else (C,) (global pools).
    channels_last : bool, default=False
        Samples (steps, features) of a 1-D pool, pooled as their transposes
        (``planes`` is (features, steps)); output (out_steps, features).
    """

    channels_last = False  # layers pickled before data_format: channels-first

    def __init__(self, name, input_shape, planes, kind, window, dtype, keep_rank,
                 channels_last=False):
        self.window = window
        if not keep_rank:
            output_shape = planes[:1]
        elif channels_last:  # (out_steps, features), or (out_steps,) for (steps,)
            output_shape = window.out_shape + planes[:len(input_shape) - 1]
        else:  # (C, *spatial), or (*spatial) without a channel axis
            output_shape = planes[:len(input_shape) - window.rank] + window.out_shape
        super().__init__(name, input_shape, output_shape, dtype)
        self.channels_last = channels_last
        self.output_is_sequence = channels_last
        self.planes = planes
        self.kind = kind
        self._cache = None

    def forward(self, X, training=False, rng=None, mask=None):
        X4 = (to_channels_first(X, self.planes) if self.channels_last
              else X.reshape((X.shape[0],) + self.planes))
        if self.kind == "max":
            shape = (X4.shape[0], self.planes[0]) + self.window.out_shape
            buffers = {}
            if training:
                buffers = dict(out=self._scratch("Y", shape),
                               argmax_out=self._scratch("argmax", shape, np.int32))
            Y, argmax = _ops.maxpool2d_forward(X4, None, window=self.window, **buffers)
        else:
            Y, argmax = _ops.avgpool2d_forward(X4, None, window=self.window), None
        self._cache = argmax if training else None
        if self.channels_last:
            Y = to_channels_last(Y)
        return Y.reshape((X.shape[0],) + self.output_shape)

    def compute_mask(self, X, mask):
        if mask is None or not self.channels_last:
            return None  # channels-first samples have no steps to mask
        return window_mask(mask, self.window)

    def backward(self, dY, context, need_input_grad=True):
        if not need_input_grad:
            return None
        n = dY.shape[0]
        out_planes = (self.planes[0],) + self.window.out_shape
        if self.channels_last:
            dY4 = to_channels_first(dY, out_planes)
        else:
            dY4 = dY.reshape((n,) + out_planes)
        if self.kind == "max":
            dX = _ops.maxpool2d_backward(dY4, self._cache, self.planes[1:],
                                         out=self._scratch("dX", (n,) + self.planes))
        else:
            dX = _ops.avgpool2d_backward(dY4, self.planes[1:], None, window=self.window)
        if self.channels_last:
            dX = to_channels_last(dX)
        return dX.reshape((n,) + self.input_shape)

    def bind(self, X, dX, context):
        if self.kind != "max" or self.channels_last:
            # channels-last: transposed copies, which bound arrays cannot share
            return None
        n = X.shape[0]
        forward, Y, argmax = _ops.bind_maxpool2d_forward(X.reshape((n,) + self.planes),
                                                         None, window=self.window)
        dY = np.empty_like(Y)
        backward = None
        if dX is not None:  # a first layer's input gradient is not needed
            into = _ops.bind_maxpool2d_backward(dY, argmax, self.planes[1:],
                                                out=dX.reshape((n,) + self.planes))[0]
            backward = lambda scale: into()  # noqa: E731 (pools have no weights)
        shape = (n,) + self.output_shape
        return BoundLayer(Y.reshape(shape), dY.reshape(shape), forward, backward)

    def clear(self):
        self._cache = None

    def __setstate__(self, state):
        state = dict(state)
        if "window" not in state and "geometry" in state:
            # Pickled before layers kept a checked window (skdl's pickle format 1).
            geometry = state.pop("geometry")
            state["window"] = _ops.Window.of(state["planes"][1:], geometry["pool_size"],
                                             geometry["strides"], geometry["padding"],
                                             what="pool")
        # Pools pickled when every window was 2-D keep their (C, H, W) planes
        # and 2-D window (a 1-D pool's of height 1, which computes the same):
        # their state does not say whether (C, L) or (H, W) samples were meant.
        state.pop("out_hw", None)  # now window.out_shape
        self.__dict__.update(state)

    def forward_flops(self):
        """One per window element and output value (max: comparisons, avg:
        additions), plus one division per output for avg; a global pool's
        window is the whole plane, so one per input value."""
        outputs = self.planes[0] * math.prod(self.window.out_shape)
        return outputs * (math.prod(self.window.size) + (self.kind == "avg"))


class SequencePoolLayer(Layer):
    """Mean or maximum over the steps of (steps, features) sequences, mask-aware."""

    def __init__(self, name, input_shape, kind, dtype):
        if len(input_shape) not in (1, 2):
            raise ValueError(f"Layer {name!r} with data_format='channels_last' expects "
                             f"(steps, features) or (steps,) per sample, got {input_shape}.")
        self.steps = input_shape[0]
        features = input_shape[1] if len(input_shape) == 2 else 1
        super().__init__(name, input_shape, (features,), dtype)
        self.kind = kind
        self._cache = None

    def forward(self, X, training=False, rng=None, mask=None):
        n = X.shape[0]
        X3 = X.reshape((n, self.steps, -1))
        keep = np.ones((n, self.steps), bool) if mask is None else mask
        if self.kind == "avg":
            counts = keep.sum(axis=1, keepdims=True).astype(X.dtype)
            Y = (X3 * keep[..., None]).sum(axis=1) / np.maximum(counts, 1)
            where = None
        else:
            masked = np.where(keep[..., None], X3, -np.inf)
            where = masked.argmax(axis=1)  # first maximum, as max pooling
            Y = np.take_along_axis(X3, where[:, None], axis=1)[:, 0]
            Y = np.where(keep.any(axis=1)[:, None], Y, 0).astype(X.dtype)
            counts = None
        self._cache = (keep, counts, where) if training else None
        return Y

    def backward(self, dY, context, need_input_grad=True):
        if not need_input_grad:
            return None
        keep, counts, where = self._cache
        n, f = dY.shape
        if self.kind == "avg":
            dX = keep[..., None] * (dY / np.maximum(counts, 1))[:, None, :]
        else:
            dX = np.zeros((n, self.steps, f), dY.dtype)
            alive = keep.any(axis=1)[:, None]
            np.put_along_axis(dX, where[:, None], (dY * alive)[:, None], axis=1)
        return dX.astype(dY.dtype).reshape((n,) + self.input_shape)

    def bind(self, X, dX, context):
        # A bound pass has no masks (the layers making them do not bind): every
        # step counts, and the arithmetic is forward's and backward's with all
        # steps kept, so both paths give the same bits.
        n = X.shape[0]
        X3 = X.reshape((n, self.steps, -1))
        features = X3.shape[2]
        Y = np.empty((n, features), X.dtype)
        dY = np.empty_like(Y)
        if self.kind == "avg":
            count = X.dtype.type(self.steps)

            def forward():
                np.sum(X3, axis=1, out=Y)
                np.divide(Y, count, out=Y)

            def into():
                np.copyto(dX3, (dY / count)[:, None, :])
        else:
            where = np.empty((n, features), np.intp)

            def forward():
                np.argmax(X3, axis=1, out=where)  # the first maximum, as forward's
                Y[...] = np.take_along_axis(X3, where[:, None], axis=1)[:, 0]

            def into():
                dX3.fill(0)
                np.put_along_axis(dX3, where[:, None], dY[:, None], axis=1)
        backward = None
        if dX is not None:  # a first layer's input gradient is not needed
            dX3 = dX.reshape(X3.shape)
            backward = lambda scale: into()  # noqa: E731 (pools have no weights)
        return BoundLayer(Y, dY, forward, backward)

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """One per input value (max: comparisons, avg: additions), plus one
        division per output feature for avg; every step counted, masked or
        not."""
        values = int(np.prod(self.input_shape, dtype=np.int64))
        return values + (self.output_shape[0] if self.kind == "avg" else 0)


class LastStepLayer(Layer):
    """Runtime :class:`LastStep`: each sample's last step whose mask is True.

    Parameters
    ----------
    name : str
    input_shape : tuple of int
        (steps, features) or (steps,).
    dtype : numpy.dtype
    """

    def __init__(self, name, input_shape, dtype):
        if len(input_shape) not in (1, 2):
            raise ValueError(f"LastStep {name!r} reads sequences of shape "
                             f"(steps, features) or (steps,), got samples of shape "
                             f"{input_shape}.")
        self.steps = input_shape[0]
        features = input_shape[1] if len(input_shape) == 2 else 1
        super().__init__(name, input_shape, (features,), dtype)
        self._cache = None

    def _where(self, mask):
        """Each sample's last kept step (n,) and whether it has one (n,)."""
        # argmax finds the first True of the reversed mask: the last kept step.
        last = self.steps - 1 - np.argmax(mask[:, ::-1], axis=1)
        return last, mask.any(axis=1)

    def forward(self, X, training=False, rng=None, mask=None):
        n = X.shape[0]
        X3 = X.reshape((n, self.steps, -1))
        if mask is None:
            Y, cache = X3[:, -1].copy(), (None, None)
        else:
            last, any_kept = self._where(mask)
            # np.where, not a product: inf or nan in a padded step stays out.
            Y = np.where(any_kept[:, None], X3[np.arange(n), last], 0).astype(X.dtype)
            cache = (last, any_kept)
        self._cache = cache if training else None
        return Y

    def backward(self, dY, context, need_input_grad=True):
        if not need_input_grad:
            return None
        n, f = dY.shape
        dX = np.zeros((n, self.steps, f), dY.dtype)
        last, any_kept = self._cache
        if last is None:  # no mask: the last step
            dX[:, -1] = dY
        else:
            rows = np.flatnonzero(any_kept)  # all-padding samples get nothing
            dX[rows, last[rows]] = dY[rows]
        return dX.reshape((n,) + self.input_shape)

    def bind(self, X, dX, context):
        # A bound pass has no masks (the layers making them do not bind): the
        # last step, copied as forward copies it and scattered as backward does.
        n = X.shape[0]
        X3 = X.reshape((n, self.steps, -1))
        Y = np.empty((n, X3.shape[2]), X.dtype)
        dY = np.empty_like(Y)

        def forward():
            np.copyto(Y, X3[:, -1])

        def scatter(scale):  # no weights: scale is not read
            dX3[:, :-1] = 0  # the layer before may have changed it in place
            dX3[:, -1] = dY

        dX3 = None if dX is None else dX.reshape(X3.shape)
        # A first layer's input gradient is not needed: no backward then.
        return BoundLayer(Y, dY, forward, None if dX is None else scatter)

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """None: the output is a copy of one step."""
        return 0
