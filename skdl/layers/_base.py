"""Layer specs (clone-safe hyper-parameters) and runtime layers (state).

A spec is what users put in an estimator's ``layers``: hyper-parameters only,
with ``get_params``/``set_params`` from scikit-learn's ``BaseEstimator``, so
``clone`` and ``GridSearchCV`` treat it like any estimator parameter. At
``fit`` the network asks each spec to ``build`` a runtime :class:`Layer`,
which owns views into the network's flat parameter and gradient buffers and
whatever its backward pass needs. A spec never holds fitted state.
"""
import functools
import re
from abc import ABCMeta, abstractmethod
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import validate_parameter_constraints


@functools.cache
def _init_parameter_names(cls):
    return tuple(BaseEstimator._get_param_names.__func__(cls))


def cached_param_names(cls):
    """``BaseEstimator._get_param_names`` computed once per class: scikit-learn
    reads the ``__init__`` signature on every ``get_params`` (about 0.1 ms),
    and every fit validates each layer spec and the estimator."""
    return list(_init_parameter_names(cls))


class LayerSpec(BaseEstimator, metaclass=ABCMeta):
    """Base class of layer specs."""

    _parameter_constraints: dict = {}

    @classmethod
    def _get_param_names(cls):
        return cached_param_names(cls)

    # Whether _build takes ``after_sequence`` (specs with a data_format
    # that follows the layout of the layer before them).
    _reads_layout = False

    def build(self, input_shape, dtype, name, after_sequence=False):
        """Validate the hyper-parameters and return the runtime layer.

        Parameters
        ----------
        input_shape : tuple of int
            Shape of one sample arriving at this layer.
        dtype : numpy dtype
        name : str
        after_sequence : bool, default=False
            Whether the input comes from a layer that outputs sequences of
            shape (steps, features) (see ``Layer.output_is_sequence``); the
            1-D convolutions and pools with ``data_format=None`` then read
            their input as channels-last.

        Returns
        -------
        Layer
        """
        self._validate_params()
        input_shape = tuple(int(s) for s in input_shape)
        extra = {"after_sequence": bool(after_sequence)} if self._reads_layout else {}
        try:
            return self._build(input_shape, np.dtype(dtype), name, **extra)
        except ValueError as error:
            # A geometry that cannot work names the layer it belongs to; the
            # subclasses (scikit-learn's InvalidParameterError) keep their type.
            if type(error) is not ValueError or repr(name) in str(error):
                raise
            raise ValueError(f"{type(self).__name__} {name!r} on samples of shape "
                             f"{input_shape}: {error}") from None

    def _validate_params(self):
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    @abstractmethod
    def _build(self, input_shape, dtype, name):
        """Runtime layer for validated hyper-parameters."""

    def children(self):
        """The layer specs nested in this one (a pathway's layers), in build
        order. Their names are unique across the whole network and their
        hyper-parameters are searchable by name like any other layer's.

        Returns
        -------
        list of LayerSpec
        """
        return []

    def build_in(self, context, input_shape, name):
        """Build within a network: containers build their children through
        ``context`` (a ``skdl._network.BuildContext``), which hands out unique
        names and knows the network's side inputs; a plain layer just builds.

        Parameters
        ----------
        context : BuildContext
        input_shape : tuple of int
        name : str

        Returns
        -------
        Layer
        """
        return self.build(input_shape, context.dtype, name,
                          after_sequence=context.sequence_input)

    @property
    def base_name(self):
        """Name prefix for generated layer names: ``dense`` for Dense, ``conv2d``
        for Conv2D, ``max_pool2d`` for MaxPool2D."""
        return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type(self).__name__).lower()


class GradientContext:
    """How per-sample gradients are summed into parameter gradients.

    Parameters
    ----------
    sample_weight : ndarray of shape (n,) or None
        Weight of each sample of the batch.
    scale : float
        Factor applied to the weighted sums (one over the batch's total weight).
    accumulate_dtype : numpy dtype
        Precision of the sums over the batch.
    """

    def __init__(self, sample_weight, scale, accumulate_dtype):
        self.sample_weight = sample_weight
        self.scale = scale
        self.accumulate_dtype = np.dtype(accumulate_dtype)
        # Gradients for layer outputs read off the chain (a recurrent layer's
        # initial state), by layer name, added when that layer's turn comes.
        self.output_grads = {}

    def add_output_grad(self, name, grad):
        """Add ``grad`` to the gradient reaching the output of the layer
        ``name``, which :func:`backward_chain` adds to the gradient it hands
        that layer (whose backward runs later: it ran earlier forward).

        Parameters
        ----------
        name : str
        grad : ndarray of shape (n, *output_shape of that layer)
        """
        held = self.output_grads.get(name)
        self.output_grads[name] = grad if held is None else held + grad

    def row_weights(self, n_rows):
        """Weights for ``n_rows`` rows that split the batch's samples evenly.

        A layer applied to every step of a sequence sees ``n * steps`` rows;
        each row carries the weight of its sample.
        """
        w = self.sample_weight
        if w is None or n_rows == len(w):
            return w
        return np.repeat(w, n_rows // len(w))


class PassContext:
    """What the layers of a bound training pass read besides their arrays.

    Attributes
    ----------
    sample_weight : float64 ndarray of shape (n,) or None
        The batch's sample weights, filled in before every step.
    accumulate_dtype : numpy dtype
        Precision of the sums over the batch.
    rng : numpy.random.Generator or None
        The step's random draws (dropout), set before every step.
    """

    __slots__ = ("sample_weight", "accumulate_dtype", "rng")

    def __init__(self, sample_weight, accumulate_dtype):
        self.sample_weight = sample_weight
        self.accumulate_dtype = accumulate_dtype
        self.rng = None


class BoundLayer:
    """A layer's training pass bound to fixed arrays, from :meth:`Layer.bind`.

    Results are bit-identical to :meth:`Layer.forward` and
    :meth:`Layer.backward`: the same kernels run on the same values.

    Parameters
    ----------
    Y : ndarray of shape (n, *output_shape)
        What ``forward`` writes (it may be a view of the input).
    dY : ndarray of shape (n, *output_shape)
        Where the next layer (or the loss) writes the output gradient, which
        ``backward`` reads.
    forward : callable ``forward()`` or None
        Reads the input array, writes ``Y``; None when there is nothing to run.
    backward : callable ``backward(scale)`` or None
        Reads ``dY``; writes the layer's gradients (``scale`` times the
        weighted sums over the batch, as :class:`GradientContext` says) and
        the input gradient when one was asked for.
    """

    __slots__ = ("Y", "dY", "forward", "backward")

    def __init__(self, Y, dY, forward=None, backward=None):
        self.Y, self.dY, self.forward, self.backward = Y, dY, forward, backward

    @classmethod
    def view(cls, X, dX, shape):
        """A layer whose output is its input's values under the per-sample
        ``shape`` (Flatten, Reshape, a dropout of rate 0): nothing runs, the
        output is a view of ``X`` and the next layer writes the gradient
        straight into ``dX`` (into an array of its own when ``dX`` is None)."""
        Y = X.reshape((X.shape[0],) + tuple(shape))
        return cls(Y, np.empty_like(Y) if dX is None else dX.reshape(Y.shape))


def run_all(calls, *args):
    """Call each of ``calls`` with ``args``, in order (a bound pass)."""
    for call in calls:
        call(*args)


def regularizer_coefficients(regularizer):
    """``(l1, l2)`` of a layer's regularizer spec, or None when it has none.

    The runtime layer keeps plain floats, not the spec: a fitted model does
    not change when the spec object is changed afterwards.
    """
    return None if regularizer is None else regularizer.coefficients()


def channel_axis(axis, after_sequence):
    """The channel axis a per-channel layer (``BatchNormalization``,
    ``PReLU``) uses: ``axis`` when given, else -1 (the features) after a
    layer that outputs sequences ``(steps, features)`` and 1 (the features of
    flat samples, the channels of channels-first signals and images)
    otherwise."""
    if axis is not None:
        return axis
    return -1 if after_sequence else 1


def channel_layout(input_shape, axis, layer):
    """Read samples as rows of channels: the view the per-channel ops take.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample.
    axis : int
        The channel axis of the batch ``(n, *input_shape)``: 1 is the first
        axis of a sample, -1 its last; 0 (the batch) is not allowed.
    layer : str
        How error messages name the layer.

    Returns
    -------
    position : int
        Index of the channel axis in ``input_shape``.
    lead : int
        Product of the sample's axes before the channel axis: a batch of n
        samples is ``n * lead`` rows.
    channels : int
    positions : int
        Product of the axes after the channel axis.
    """
    k = len(input_shape)
    if not isinstance(axis, Integral) or isinstance(axis, bool):
        raise TypeError(f"{layer}: axis must be an int, got {axis!r}.")
    if k == 0:
        raise ValueError(f"{layer} needs samples with at least one axis, got shape "
                         f"{input_shape}.")
    position = axis - 1 if axis > 0 else k + axis
    if axis == 0 or not 0 <= position < k:
        raise ValueError(
            f"{layer}: axis={axis} is not an axis of the samples; batches have shape "
            f"(n, *{input_shape}), so axis must be in 1..{k} or -{k}..-1 (0 is the "
            "batch)."
        )
    lead = int(np.prod(input_shape[:position], dtype=np.int64))
    positions = int(np.prod(input_shape[position + 1:], dtype=np.int64))
    return position, lead, int(input_shape[position]), positions


def forward_chain(layers, X, training=False, rng=None, mask=None, sample_weight=None,
                  inputs=None, taps=None):
    """Run ``layers`` one after the other on a batch.

    Parameters
    ----------
    layers : list of Layer
    X : ndarray of shape (n, *layers[0].input_shape)
    training : bool
    rng : numpy.random.Generator or None
    mask : bool ndarray of shape (n, steps) or None
    sample_weight : ndarray of shape (n,) or None
        Given, while training, to the layers that take it.
    inputs : dict of str to ndarray or None
        The network's side inputs by name, given to the layers that read
        them (see ``Layer.takes_inputs``). The outputs of layers other layers
        read off the chain (``Layer.output_read``) are added to it under
        ``("output", name)``; None starts an empty dict for the pass.
    taps : dict of str to ndarray or None
        Layer names whose outputs to keep: each entry found here or in a
        nested layer is set to that layer's output.

    Returns
    -------
    Y : ndarray of shape (n, *layers[-1].output_shape)
        X itself when ``layers`` is empty.
    mask : bool ndarray or None
        The mask that applies to Y.
    """
    if inputs is None:
        inputs = {}
    for layer in layers:
        if layer.takes_inputs or (training and layer.takes_sample_weight):
            extra = {"inputs": inputs, "taps": taps} if layer.takes_inputs else {}
            if training and layer.takes_sample_weight:
                extra["sample_weight"] = sample_weight
            Y = layer.forward(X, training=training, rng=rng, mask=mask, **extra)
        else:
            Y = layer.forward(X, training=training, rng=rng, mask=mask)
        mask = layer.compute_mask(X, mask)
        if layer.output_read:
            inputs[("output", layer.name)] = Y
        if taps is not None and layer.name in taps:
            taps[layer.name] = Y
        X = Y
    return X, mask


def backward_chain(layers, dY, context, need_input_grad=True):
    """Backward through ``layers`` run by :func:`forward_chain`.

    Parameters
    ----------
    layers : list of Layer
    dY : ndarray of shape (n, *layers[-1].output_shape)
    context : GradientContext
    need_input_grad : bool
        Whether the first layer's input gradient is wanted.

    Returns
    -------
    dX : ndarray of shape (n, *layers[0].input_shape) or None
        dY itself when ``layers`` is empty.
    """
    pending = getattr(context, "output_grads", None)
    for i in range(len(layers) - 1, -1, -1):
        if pending and layers[i].name in pending:
            # The output also fed a layer off the chain (run backward already).
            dY = dY + pending.pop(layers[i].name)
        dY = layers[i].backward(dY, context, need_input_grad=i > 0 or need_input_grad)
    return dY


def walk_layers(layers):
    """Every layer of ``layers`` and, after each, those of its
    :meth:`Layer.sublayers`, depth first."""
    for layer in layers:
        yield layer
        yield from walk_layers(layer.sublayers())


class ArrayCache(dict):
    """Arrays by name, handed out again for requests they can serve."""

    def array(self, key, shape, dtype):
        """A C-contiguous array of ``shape`` and ``dtype`` (contents undefined):
        the one kept under ``key`` when it has the same dtype and trailing
        shape and at least as many rows (a leading slice of it), else a new
        one, kept from now on."""
        shape = tuple(map(int, shape))
        array = self.get(key)
        if (array is None or array.dtype != dtype or array.shape[1:] != shape[1:]
                or array.shape[0] < shape[0]):
            array = self[key] = np.empty(shape, dtype=dtype)
        return array[:shape[0]]


class Layer(metaclass=ABCMeta):
    """Runtime layer: parameters, forward and backward.

    Attributes
    ----------
    name : str
    input_shape, output_shape : tuple of int
        Shapes of one sample.
    param_shapes : dict of str to tuple
        Shapes of the parameters, in buffer order.
    params, grads : dict of str to ndarray
        Views into the network's flat parameter and gradient buffers.
    buffer_shapes : dict of str to tuple
        Shapes of the layer's state that is not trained by the optimizer but
        is part of the model (batch normalization's running statistics).
    buffers : dict of str to ndarray
        Views into the network's flat ``buffers`` array.
    late_buffers : dict of str to float
        Buffers added after skdl's model files first held this layer, each
        with the value a file without it gets (``skdl.load`` fills them in;
        layers unpickled from before keep their own ``buffer_shapes`` and so
        go without them).
    weight_penalties : dict of str to (float, float) or None
        The parameters that are weights (kernels, embedding tables): subject
        to L1/L2 penalties and weight decay. Each maps to the layer's own
        ``(l1, l2)`` or to None for the network-wide coefficients. Biases,
        normalization scales and shifts and activation slopes are not
        weights.
    """

    param_shapes: dict = {}
    buffer_shapes: dict = {}
    late_buffers: dict = {}
    weight_penalties: dict = {}

    def __init__(self, name, input_shape, output_shape, dtype):
        self.name = name
        self.input_shape = input_shape
        self.output_shape = output_shape
        self.dtype = dtype
        self.params = {}
        self.grads = {}
        self.buffers = {}

    def initialize(self, rng):
        """Fill ``params`` with initial values drawn from ``rng``."""

    # Whether a mask over the steps of a sequence still applies to this
    # layer's output (layers acting on each step alone); see compute_mask.
    passes_mask = False
    # Whether the output is a sequence of shape (steps, features) (Embedding,
    # recurrent layers returning sequences, channels-last convolutions): the
    # next 1-D convolution or pool with data_format=None reads it channels-last.
    # Layers that pass masks on keep their input's layout (BuildContext.build).
    output_is_sequence = False
    # Whether forward(training=True) reads the batch's sample weights (a
    # ``sample_weight`` keyword): layers whose output depends on the whole
    # batch, so that a zero weight leaves a sample out as it does the loss.
    takes_sample_weight = False
    # Whether the output is the array of the last of sublayers() (a block),
    # not one of its own: summaries count that memory once.
    output_is_sublayers = False
    # Whether forward reads the network's side inputs and the outputs to keep
    # (``inputs`` and ``taps`` keywords, see forward_chain): the layers that
    # run others inside them, and those reading another layer's output.
    takes_inputs = False
    # Whether another layer reads this one's output besides the next layer
    # (a recurrent layer's initial_state): forward_chain then keeps it in
    # ``inputs`` for the pass, and backward_chain adds the gradient that
    # layer left in the GradientContext.
    output_read = False

    def validate_weight(self, key, value):
        """Raise ValueError if ``value`` cannot be the parameter or buffer
        ``key`` (called by ``Network.set_weights`` after the shape check)."""

    @abstractmethod
    def forward(self, X, training=False, rng=None, mask=None):
        """Output for a batch ``X`` of shape (n, *input_shape).

        With ``training`` the layer keeps what ``backward`` needs. ``mask``, a
        bool array (n, steps) or None, marks the steps of a sequence that are
        there (False: padding); layers that do not read sequences ignore it.
        """

    def compute_mask(self, X, mask):
        """The mask for this layer's output, given its input and input mask.

        By default a layer passes the mask on if it acts on each step alone
        (``passes_mask``) and its output still has the steps axis; otherwise
        the mask ends here.
        """
        if mask is None or not self.passes_mask or len(self.output_shape) < 2:
            return None
        return mask

    @abstractmethod
    def backward(self, dY, context, need_input_grad=True):
        """Fill ``grads`` and return dX, the gradient for the layer's input.

        Parameters
        ----------
        dY : ndarray of shape (n, *output_shape)
            Per-sample gradients of the loss with respect to the output.
        context : GradientContext
        need_input_grad : bool
            False for the first layer, whose input gradient nobody reads.

        Returns
        -------
        dX : ndarray of shape (n, *input_shape) or None
        """

    def clear(self):
        """Drop what the last training forward pass kept."""

    def bind(self, X, dX, context):
        """This layer's training pass for batches of ``X``'s shape, with its
        ops checked once and bound to ``X``, ``dX`` and arrays of its own
        (see :class:`BoundLayer`); the training loop then runs the kernels
        without checking or allocating anything per batch.

        Parameters
        ----------
        X : ndarray of shape (n, *input_shape)
            The array the layer reads at every forward (C-contiguous, the
            network's dtype).
        dX : ndarray of shape (n, *input_shape) or None
            Where backward writes the input gradient; None when nobody
            reads it (the first layer).
        context : PassContext
            The batch's sample weights and random generator (read at every
            step) and the precision of the sums.

        Returns
        -------
        BoundLayer or None
            None (the default) for a layer that trains through
            :meth:`forward` and :meth:`backward` only; then so does the
            whole network.
        """
        return None

    def sublayers(self):
        """The layers this one runs inside it (pathways, blocks), in order.

        Returns
        -------
        list of Layer
            Empty for a plain layer.
        """
        return []

    def forward_flops(self):
        """Floating-point operations of one sample's inference forward pass.

        A multiply-add counts as 2, any other arithmetic operation,
        comparison or elementwise function (``exp``, ``tanh``...) as 1; see
        each layer's own method for what it counts. The layers of
        :meth:`sublayers` are counted by themselves, not here.

        Returns
        -------
        int
        """
        return 0

    def _scratch(self, key, shape, dtype=None):
        """A C-contiguous array of ``shape`` (contents undefined) kept across
        training batches.

        Fresh arrays of several MB per batch cost page faults that can take
        longer than the arithmetic. A batch smaller than an earlier one gets a
        leading slice. For training only: prediction may run from several
        threads at once. :meth:`release_scratch` frees them.
        """
        arrays = self.__dict__.setdefault("_scratch_arrays", ArrayCache())
        return arrays.array(key, shape, self.dtype if dtype is None else dtype)

    def release_scratch(self):
        """Free the arrays kept by :meth:`_scratch`."""
        self.__dict__.pop("_scratch_arrays", None)

    def __getstate__(self):
        # Views into the network's buffers are rebound by the network after
        # unpickling; caches from the last batch are not worth saving.
        state = self.__dict__.copy()
        state["params"] = {}
        state["grads"] = {}
        state["buffers"] = {}
        for key in list(state):
            if key.startswith("_cache"):
                state[key] = None
        state.pop("_scratch_arrays", None)
        return state
