"""A built network: runtime layers over one flat parameter buffer."""
import numpy as np

from .layers._base import (
    GradientContext,
    LayerSpec,
    PassContext,
    backward_chain,
    forward_chain,
    walk_layers,
)


class BuildContext:
    """What the layers of one network share while they are built: names that
    must stay unique across the whole tree of layers, the dtype, and the
    shapes of the network's side inputs.

    Parameters
    ----------
    dtype : numpy dtype
    side_inputs : dict of str to tuple of int, optional
        Shape of one sample of each side input, by name.
    taken_names : iterable of str
        Names already used by layers the network will also hold.

    Attributes
    ----------
    used_inputs : set of str
        The side inputs some layer has merged in so far.
    built : dict of str to Layer
        The layers built so far, nested ones included, by name: those a
        later layer may read the output of (see :meth:`earlier_layer`).
    sequence_input : bool
        Whether the input of the layer being built is a sequence of shape
        (steps, features) (the previous layer's ``output_is_sequence``, or a
        layer that passes masks on after one); read by the 1-D convolutions and
        pools with ``data_format=None``.
    sequence_output : bool
        The same for the output of the chain :meth:`build` built last.
    """

    def __init__(self, dtype=np.float32, side_inputs=None, taken_names=()):
        self.dtype = np.dtype(dtype)
        self.side_inputs = dict(side_inputs or {})
        self.names = set(taken_names)
        self.counts = {}
        self.used_inputs = set()
        self.built = {}
        # Whether the input of the layer being built is a (steps, features)
        # sequence; the chain being built keeps it current (see build).
        self.sequence_input = False
        self.sequence_output = False

    def name_for(self, spec):
        """The spec's own name, or the first free ``base``, ``base_1``...;
        reserved from now on."""
        name = spec.name
        if name is None:
            base = spec.base_name
            name = base
            while name in self.names:
                self.counts[base] = self.counts.get(base, 0) + 1
                name = f"{base}_{self.counts[base]}"
        elif name in self.names:
            raise ValueError(f"Two layers are named {name!r}; layer names must be unique.")
        self.names.add(name)
        return name

    def reserve(self, name):
        """Reserve a name a container gives one of its own layers."""
        if name in self.names:
            raise ValueError(f"Two layers are named {name!r}; layer names must be unique.")
        self.names.add(name)
        return name

    def side_input_shape(self, input_name, layer):
        """Shape of one sample of the side input ``input_name``, for ``layer``
        (named in the errors), which merges it in."""
        if input_name not in self.side_inputs:
            known = sorted(self.side_inputs)
            raise ValueError(
                f"{layer} merges the input {input_name!r}, but the network's side "
                + (f"inputs are {known}." if known else
                   "inputs are none: declare them with a dict input_shape such as "
                   f"{{'main': (1, 8, 8), {input_name!r}: (2,)}} (the first entry "
                   "is the main input).")
            )
        self.used_inputs.add(input_name)
        return self.side_inputs[input_name]

    def earlier_layer(self, name, layer, what):
        """The layer called ``name``, built before ``layer`` (so it runs
        before it forward, and after it backward), whose output ``layer``
        reads; from now on the passes keep that output (``output_read``).

        Parameters
        ----------
        name : str
        layer : str
            How errors name the reading layer.
        what : str
            What the output is for, in errors (``its initial state``).

        Returns
        -------
        Layer
        """
        if name not in self.built:
            before = sorted(self.built)
            raise ValueError(
                f"{layer} takes {what} from a layer named {name!r}, but no layer of "
                "that name comes before it in the network"
                + (f"; the layers before it are {before}." if before else
                   " (it is the first layer).")
                + " Name the layer whose output to use (name=...) and put it earlier: "
                "on the main path before, or in an earlier branch of the same "
                "Pathways or MergeInput."
            )
        source = self.built[name]
        source.output_read = True
        return source

    def build(self, specs, input_shape, where="layers"):
        """Build a chain of specs from one sample shape.

        Parameters
        ----------
        specs : sequence of LayerSpec
        input_shape : tuple of int
        where : str
            How errors name the sequence (``layers``, a pathway's branch).

        Returns
        -------
        list of Layer
        """
        layers = []
        shape = tuple(input_shape)
        # A nested chain (a pathway's branch, a block) starts from its
        # container's input, whose layout is the current one.
        start = sequence = self.sequence_input
        for position, spec in enumerate(specs):
            if not isinstance(spec, LayerSpec):
                raise TypeError(
                    f"{where}[{position}] must be a layer spec such as "
                    f"skdl.layers.Dense, got {spec!r}."
                )
            self.sequence_input = sequence
            layer = spec.build_in(self, shape, self.name_for(spec))
            layers.append(layer)
            self.built.update((built.name, built) for built in walk_layers([layer]))
            shape = layer.output_shape
            sequence = bool(layer.output_is_sequence or (
                sequence and layer.passes_mask and len(shape) == 2))
        # The next chain from the same input (another branch) starts alike.
        self.sequence_input, self.sequence_output = start, sequence
        return layers


def build_layers(specs, input_shape, dtype, taken_names=(), side_inputs=None):
    """Build runtime layers from specs, chaining their shapes.

    Parameters
    ----------
    specs : sequence of LayerSpec
    input_shape : tuple of int
        Shape of one sample at the first layer.
    dtype : numpy dtype
    taken_names : iterable of str
        Names already used by layers this network will also hold.
    side_inputs : dict of str to tuple of int, optional
        The network's side inputs (for ``MergeInput`` layers); each must be
        merged in by some layer.

    Returns
    -------
    list of Layer
    """
    context = BuildContext(dtype, side_inputs, taken_names)
    layers = context.build(specs, input_shape)
    unused = sorted(set(context.side_inputs) - context.used_inputs)
    if unused:
        raise ValueError(
            f"The side inputs {unused} are declared in input_shape but no layer "
            "merges them in; add MergeInput layers for them."
        )
    return layers


def layer_names(specs):
    """The name every spec of ``specs`` gets in a network, nested specs
    included (as :func:`build_layers` names them, without building).

    Returns
    -------
    dict of str to LayerSpec
        In build order.
    """
    context, named = BuildContext(), {}

    def visit(sequence):
        for spec in sequence:
            if isinstance(spec, LayerSpec):
                named[context.name_for(spec)] = spec
                visit(spec.children())

    visit(specs)
    return named


def split_inputs(X, input_shapes):
    """Cut flat rows into the network's inputs.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        The inputs' values side by side, in the order of ``input_shapes``.
    input_shapes : dict of str to tuple of int
        Shape of one sample of each input; the first is the main input.

    Returns
    -------
    main : ndarray of shape (n, *first shape)
    side : dict of str to ndarray of shape (n, *shape)
    """
    pieces, start = [], 0
    for shape in input_shapes.values():
        size = int(np.prod(shape))
        pieces.append(X[:, start:start + size].reshape((X.shape[0],) + tuple(shape)))
        start += size
    names = list(input_shapes)
    return pieces[0], dict(zip(names[1:], pieces[1:]))


class NetworkSnapshot:
    """Copies of a network's parameters and buffers, from :meth:`Network.snapshot`.

    Attributes
    ----------
    params : ndarray of shape (n_params,)
    buffers : ndarray of shape (n_buffers,)
    """

    def __init__(self, params, buffers):
        self.params = params
        self.buffers = buffers


# Whether training steps run through bound passes (TrainingPass) where every
# layer binds; off, they take the layers' forward/backward (for tests, which
# hold the two to identical results).
USE_BOUND_PASSES = True
# Bound passes kept per network: batch sizes seen lately (a fit has two, the
# full and the last, shorter batch; partial_fit may vary them).
MAX_BOUND_PASSES = 4


class TrainingPass:
    """A network's training pass over batches of one shape, with every layer's
    ops checked and bound once (:meth:`Layer.bind`): per batch it copies the
    batch in, runs the bound kernels layer by layer and copies the output
    gradient in, and checks or allocates nothing.

    Use :meth:`bind`, which gives None when some layer does not bind (the
    network then trains through its layers' ``forward``/``backward``).

    Attributes
    ----------
    X : ndarray of shape (n, *input_shape)
    context : PassContext
        The sample weights, precision and random generator the layers read.
    Z, dZ : ndarrays of shape (n, *output_shape)
        The output, and where :meth:`backward` puts the loss gradient.
    """

    def __init__(self, X, context, bound):
        self.X = X
        self.context = context
        self.Z, self.dZ = bound[-1].Y, bound[-1].dY
        self._forwards = [b.forward for b in bound if b.forward is not None]
        self._backwards = [b.backward for b in reversed(bound) if b.backward is not None]

    @classmethod
    def bind(cls, layers, n, dtype, weighted, accumulate_dtype):
        """The pass for batches of ``n`` samples, or None.

        Parameters
        ----------
        layers : list of Layer
        n : int
        dtype : numpy dtype
        weighted : bool
            Whether the batches come with sample weights.
        accumulate_dtype : numpy dtype

        Returns
        -------
        TrainingPass or None
        """
        X = np.empty((n,) + tuple(layers[0].input_shape), dtype=dtype)
        context = PassContext(np.empty(n) if weighted else None, accumulate_dtype)
        bound, inputs, input_grad = [], X, None
        for layer in layers:
            b = layer.bind(inputs, input_grad, context)
            if b is None:
                return None
            bound.append(b)
            inputs, input_grad = b.Y, b.dY
        return cls(X, context, bound)

    def forward(self, X, sample_weight=None, rng=None):
        """The network's output for a training batch (an array the next call
        overwrites).

        Parameters
        ----------
        X : ndarray of shape (n, *input_shape) or (n, n_features)
            Of the network's dtype.
        sample_weight : ndarray of shape (n,) or None
            Given exactly when the pass was bound ``weighted``.
        rng : numpy.random.Generator or None
            The step's random draws (dropout), as :meth:`Network.forward`
            takes them.

        Returns
        -------
        Z : ndarray of shape (n, *output_shape)
        """
        np.copyto(self.X, X.reshape(self.X.shape), casting="no")
        context = self.context
        if context.sample_weight is not None:
            np.copyto(context.sample_weight, sample_weight, casting="safe")
        context.rng = rng
        for forward in self._forwards:
            forward()
        return self.Z

    def backward(self, dZ, scale):
        """Fill the network's ``grads`` from the loss gradient of the last
        :meth:`forward`, as :meth:`Network.backward` does.

        Parameters
        ----------
        dZ : ndarray of shape (n, *output_shape)
        scale : float
        """
        np.copyto(self.dZ, dZ.reshape(self.dZ.shape), casting="no")
        for backward in self._backwards:
            backward(scale)


class Network:
    """Runtime layers whose parameters live in one contiguous buffer.

    Every parameter is a view into ``params`` and its gradient a view into
    ``grads`` (same offsets), so an optimizer step is one fused loop over two
    flat arrays. State that is part of the model but not trained (batch
    normalization's running statistics) lives in a third flat array,
    ``buffers``, which the optimizer never sees.

    Parameters
    ----------
    layers : list of Layer
        Built layers, e.g. from :func:`build_layers`. Layers nested in them
        (pathways, blocks) are reached through ``Layer.sublayers``.
    dtype : numpy dtype
    input_shapes : dict of str to tuple of int, optional
        For a network with side inputs: the shape of one sample of every
        input by name, the main input first. :meth:`forward` then takes flat
        rows of all the inputs' values side by side (see
        :func:`split_inputs`).

    Attributes
    ----------
    params, grads : ndarray of shape (n_params,)
    buffers : ndarray of shape (n_buffers,)
    all_layers : list of Layer
        ``layers`` and every layer nested in them, depth first.
    """

    def __init__(self, layers, dtype, input_shapes=None):
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)
        self.input_shapes = None if input_shapes is None else {
            name: tuple(shape) for name, shape in input_shapes.items()}
        self.all_layers = list(walk_layers(self.layers))
        size = sum(int(np.prod(s)) for layer in self.all_layers
                   for s in layer.param_shapes.values())
        self.params = np.zeros(size, dtype=self.dtype)
        self.grads = np.zeros(size, dtype=self.dtype)
        n_buffers = sum(int(np.prod(s)) for layer in self.all_layers
                        for s in layer.buffer_shapes.values())
        self.buffers = np.zeros(n_buffers, dtype=self.dtype)
        self._bind()

    @property
    def input_shape(self):
        """Shape of one sample of the main input."""
        return self.layers[0].input_shape

    @property
    def output_shape(self):
        return self.layers[-1].output_shape

    def _bind(self):
        self.__dict__.pop("_passes", None)  # bound to the arrays replaced here
        offset = buffer_offset = 0
        for layer in self.all_layers:
            clash = set(layer.param_shapes) & set(layer.buffer_shapes)
            if clash:
                raise ValueError(f"Layer {layer.name!r} names both a parameter and a "
                                 f"buffer {sorted(clash)}.")
            layer.params, layer.grads, layer.buffers = {}, {}, {}
            for key, shape in layer.param_shapes.items():
                size = int(np.prod(shape))
                layer.params[key] = self.params[offset:offset + size].reshape(shape)
                layer.grads[key] = self.grads[offset:offset + size].reshape(shape)
                offset += size
            for key, shape in layer.buffer_shapes.items():
                size = int(np.prod(shape))
                layer.buffers[key] = self.buffers[buffer_offset:buffer_offset
                                                  + size].reshape(shape)
                buffer_offset += size

    def initialize(self, rng):
        """Draw initial parameters, layer by layer, from a RandomState."""
        for layer in self.all_layers:
            layer.initialize(rng)

    def forward(self, X, training=False, rng=None, sample_weight=None):
        """Network output for a batch of shape (n, *input_shape).

        Parameters
        ----------
        X : ndarray of shape (n, *input_shape) or (n, n_features)
            With side inputs (``input_shapes``): flat rows holding every
            input's values side by side.
        training : bool
            Keep what backward needs, let dropout act, and let batch
            normalization use (and update its running statistics from) the
            batch's statistics.
        rng : numpy.random.Generator or None
            Random draws of training-only layers (dropout).
        sample_weight : ndarray of shape (n,) or None
            While training, the weights the following :meth:`backward` will
            get: batch statistics are weighted by them, so a sample of weight
            0 takes no part and one of weight k counts as k copies. Pass them
            for gradients that are exact with uneven weights (without them the
            statistics weigh every sample equally). Ignored at inference.

        Returns
        -------
        ndarray of shape (n, *output_shape)
        """
        inputs = None
        if self.input_shapes is not None:
            X, inputs = split_inputs(X, self.input_shapes)
        return forward_chain(self.layers, X, training, rng, None, sample_weight,
                             inputs)[0]

    def find_layer(self, name):
        """The layer called ``name``, nested ones included.

        Raises
        ------
        ValueError
            When no layer has that name (the message lists them).
        """
        for layer in self.all_layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer is named {name!r}; the layers are "
                         f"{[layer.name for layer in self.all_layers]}.")

    def layer_output(self, X, name):
        """Output of the layer ``name`` (nested ones included) for a batch, at
        inference.

        Parameters
        ----------
        X : ndarray, as :meth:`forward` takes it
        name : str

        Returns
        -------
        ndarray of shape (n, *output_shape of the layer)
        """
        self.find_layer(name)
        inputs = None
        if self.input_shapes is not None:
            X, inputs = split_inputs(X, self.input_shapes)
        top = [layer.name for layer in self.layers]
        # A layer of the main chain: the layers after it need not run.
        chain = self.layers[:top.index(name) + 1] if name in top else self.layers
        taps = {name: None}
        forward_chain(chain, X, False, None, None, None, inputs, taps)
        return taps[name]

    def backward(self, dY, sample_weight, scale, accumulate_dtype):
        """Fill ``grads`` from per-sample output gradients of the last forward.

        Parameter gradients are ``scale * sum_i sample_weight[i] * g_i``.

        Parameters
        ----------
        dY : ndarray of shape (n, *output_shape)
        sample_weight : ndarray of shape (n,) or None
        scale : float
        accumulate_dtype : numpy dtype
            Precision of the sums over the batch.
        """
        context = GradientContext(sample_weight, scale, accumulate_dtype)
        backward_chain(self.layers, dY, context, need_input_grad=False)
        for layer in self.all_layers:
            layer.clear()

    def training_pass(self, n, weighted, accumulate_dtype):
        """The bound :class:`TrainingPass` for batches of ``n`` samples, made
        at the first request and kept until :meth:`release_scratch`; None for
        a network with side inputs or a layer that does not bind.

        Parameters
        ----------
        n : int
        weighted : bool
        accumulate_dtype : numpy dtype

        Returns
        -------
        TrainingPass or None
        """
        if not USE_BOUND_PASSES or self.input_shapes is not None:
            return None
        key = (n, weighted, np.dtype(accumulate_dtype))
        passes = self.__dict__.setdefault("_passes", {})
        if key not in passes:
            if len(passes) >= MAX_BOUND_PASSES:
                del passes[next(iter(passes))]
            passes[key] = TrainingPass.bind(self.layers, n, self.dtype, weighted,
                                            accumulate_dtype)
        return passes[key]

    def release_scratch(self):
        """Free the arrays the layers keep from one training batch to the next,
        and the bound training passes."""
        self.__dict__.pop("_passes", None)
        for layer in self.all_layers:
            layer.release_scratch()

    @staticmethod
    def _state(layer):
        """A layer's parameters and buffers by name (views)."""
        return {**layer.params, **layer.buffers}

    def get_weights(self):
        """Copies of the parameters and buffers of every layer that has any.

        Returns
        -------
        dict
            ``{layer_name: {name: ndarray}}``: the trained parameters (e.g.
            ``kernel``, ``bias``, ``gamma``, ``beta``, ``alpha``) and the
            buffers (``moving_mean``, ``moving_variance`` of batch
            normalization), in the network's dtype.
        """
        return {
            layer.name: {key: value.copy() for key, value in self._state(layer).items()}
            for layer in self.all_layers
            if layer.params or layer.buffers
        }

    def set_weights(self, weights):
        """Overwrite parameters and buffers from the format of :meth:`get_weights`.

        Every named layer and entry must exist and every array must have the
        entry's shape, be finite, and be valid for the layer (a variance is
        non-negative); nothing is written unless all of them are. Layers and
        entries that are left out keep their values.

        Parameters
        ----------
        weights : dict
            ``{layer_name: {name: array}}``.
        """
        if not isinstance(weights, dict):
            raise TypeError(
                f"weights must be a dict {{layer_name: {{param_name: array}}}}, "
                f"got {type(weights).__name__}."
            )
        by_name = {layer.name: layer for layer in self.all_layers
                   if layer.params or layer.buffers}
        updates = []
        for layer_name, params in weights.items():
            if layer_name not in by_name:
                raise ValueError(
                    f"No layer with parameters is named {layer_name!r}; "
                    f"the layers are {sorted(by_name)}."
                )
            layer = by_name[layer_name]
            state = self._state(layer)
            if not isinstance(params, dict):
                raise TypeError(f"weights[{layer_name!r}] must be a dict of arrays.")
            for key, value in params.items():
                if key not in state:
                    raise ValueError(
                        f"Layer {layer_name!r} has no parameter {key!r}; it has "
                        f"{sorted(state)}."
                    )
                value = np.asarray(value)
                if value.shape != state[key].shape:
                    raise ValueError(
                        f"weights[{layer_name!r}][{key!r}] has shape {value.shape}, "
                        f"expected {state[key].shape}."
                    )
                if not np.all(np.isfinite(value)):
                    raise ValueError(
                        f"weights[{layer_name!r}][{key!r}] contains NaN or infinity."
                    )
                layer.validate_weight(key, value)
                updates.append((state[key], value))
        for target, value in updates:
            target[...] = value

    def snapshot(self, into=None):
        """Copies of everything that makes the model: parameters and buffers.

        For keeping the best weights seen so far (early stopping) or rolling
        back a step; optimizer state and gradients are not included.

        Parameters
        ----------
        into : NetworkSnapshot or None
            An earlier snapshot of this network to overwrite instead of
            allocating a new one (training backs up every step).

        Returns
        -------
        NetworkSnapshot
        """
        if into is None:
            return NetworkSnapshot(self.params.copy(), self.buffers.copy())
        self._check_fits(into)
        into.params[...] = self.params
        into.buffers[...] = self.buffers
        return into

    def restore(self, snapshot):
        """Copy a :meth:`snapshot` of this network back into its buffers.

        The layers' views stay valid (the arrays are written in place).

        Parameters
        ----------
        snapshot : NetworkSnapshot
        """
        self._check_fits(snapshot)
        self.params[...] = snapshot.params
        self.buffers[...] = snapshot.buffers

    def make_writeable(self):
        """Copy read-only parameters and buffers (a model loaded with
        ``joblib.load(..., mmap_mode='r')``) into memory of their own, so
        training can update them; the layers' views follow."""
        if not (self.params.flags.writeable and self.buffers.flags.writeable):
            self.params = np.array(self.params)
            self.buffers = np.array(self.buffers)
            self._bind()

    def _check_fits(self, snapshot):
        if not isinstance(snapshot, NetworkSnapshot):
            raise TypeError(f"snapshot must come from Network.snapshot(), got "
                            f"{type(snapshot).__name__}.")
        for name in ("params", "buffers"):
            mine, theirs = getattr(self, name), getattr(snapshot, name)
            if theirs.shape != mine.shape or theirs.dtype != mine.dtype:
                raise ValueError(
                    f"The snapshot's {name} ({theirs.dtype} {theirs.shape}) do not fit "
                    f"this network ({mine.dtype} {mine.shape}): it was taken from "
                    "another network."
                )

    def _weight_slices(self):
        """(slice of params, layer's (l1, l2) or None) for every weight parameter."""
        offset = 0
        for layer in self.all_layers:
            for key, shape in layer.param_shapes.items():
                size = int(np.prod(shape))
                if key in layer.weight_penalties:
                    yield slice(offset, offset + size), layer.weight_penalties[key]
                offset += size

    def penalty_coefficients(self, l1=0.0, l2=0.0):
        """Per-parameter L1 and L2 coefficients over the flat buffer.

        The penalty they describe is ``sum(l1_coef * |params| + l2_coef *
        params**2)``. Each weight parameter (see ``Layer.weight_penalties``)
        gets its layer's own regularizer if it has one, else ``(l1, l2)``;
        every other entry (biases, normalization and PReLU parameters, frozen
        embeddings) gets 0.

        Parameters
        ----------
        l1, l2 : float >= 0
            Coefficients for weights whose layer has no regularizer.

        Returns
        -------
        l1_coef, l2_coef : ndarrays of the shape and dtype of ``params``
        """
        l1, l2 = float(l1), float(l2)
        if not (l1 >= 0 and l2 >= 0 and np.isfinite(l1) and np.isfinite(l2)):
            raise ValueError(f"l1 and l2 must be finite and non-negative, got {l1}, {l2}.")
        l1_coef = np.zeros_like(self.params)
        l2_coef = np.zeros_like(self.params)
        for where, own in self._weight_slices():
            l1_coef[where], l2_coef[where] = (l1, l2) if own is None else own
        return l1_coef, l2_coef

    def decay_mask(self):
        """Where weight decay applies: 1.0 on weight parameters, 0.0 elsewhere.

        Returns
        -------
        ndarray of the shape and dtype of ``params``
        """
        mask = np.zeros_like(self.params)
        for where, _ in self._weight_slices():
            mask[where] = 1.0
        return mask

    def __getstate__(self):
        state = self.__dict__.copy()
        # Gradients are scratch space; only the shape is worth keeping.
        state["grads"] = None
        state.pop("_passes", None)  # bound kernels: rebuilt at the next fit
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # Networks pickled before pathways and side inputs existed.
        self.__dict__.setdefault("input_shapes", None)
        self.all_layers = list(walk_layers(self.layers))
        # Networks pickled before buffers existed had none.
        if "buffers" not in state:
            self.buffers = np.zeros(0, dtype=self.dtype)
        self.grads = np.zeros(self.params.shape, dtype=self.dtype)
        self._bind()
