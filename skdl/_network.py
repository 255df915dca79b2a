"""A built network: runtime layers over one flat parameter buffer."""
import numpy as np

from .layers._base import GradientContext, LayerSpec


def build_layers(specs, input_shape, dtype, taken_names=()):
    """Build runtime layers from specs, chaining their shapes.

    Parameters
    ----------
    specs : sequence of LayerSpec
    input_shape : tuple of int
        Shape of one sample at the first layer.
    dtype : numpy dtype
    taken_names : iterable of str
        Names already used by layers this network will also hold.

    Returns
    -------
    list of Layer
    """
    layers, names, counts = [], set(taken_names), {}
    shape = tuple(input_shape)
    for position, spec in enumerate(specs):
        if not isinstance(spec, LayerSpec):
            raise TypeError(
                f"layers[{position}] must be a layer spec such as skdl.layers.Dense, "
                f"got {spec!r}."
            )
        name = spec.name
        if name is None:
            base = spec.base_name
            name = base
            while name in names:
                counts[base] = counts.get(base, 0) + 1
                name = f"{base}_{counts[base]}"
        elif name in names:
            raise ValueError(f"Two layers are named {name!r}; layer names must be unique.")
        names.add(name)
        layer = spec.build(shape, dtype, name)
        layers.append(layer)
        shape = layer.output_shape
    return layers


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
        Built layers, e.g. from :func:`build_layers`.
    dtype : numpy dtype

    Attributes
    ----------
    params, grads : ndarray of shape (n_params,)
    buffers : ndarray of shape (n_buffers,)
    """

    def __init__(self, layers, dtype):
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)
        size = sum(int(np.prod(s)) for layer in self.layers
                   for s in layer.param_shapes.values())
        self.params = np.zeros(size, dtype=self.dtype)
        self.grads = np.zeros(size, dtype=self.dtype)
        n_buffers = sum(int(np.prod(s)) for layer in self.layers
                        for s in layer.buffer_shapes.values())
        self.buffers = np.zeros(n_buffers, dtype=self.dtype)
        self._bind()

    @property
    def input_shape(self):
        return self.layers[0].input_shape

    @property
    def output_shape(self):
        return self.layers[-1].output_shape

    def _bind(self):
        offset = buffer_offset = 0
        for layer in self.layers:
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
        for layer in self.layers:
            layer.initialize(rng)

    def forward(self, X, training=False, rng=None, sample_weight=None):
        """Network output for a batch of shape (n, *input_shape).

        Parameters
        ----------
        X : ndarray of shape (n, *input_shape)
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
        mask = None
        for layer in self.layers:
            if training and layer.takes_sample_weight:
                Y = layer.forward(X, training=training, rng=rng, mask=mask,
                                  sample_weight=sample_weight)
            else:
                Y = layer.forward(X, training=training, rng=rng, mask=mask)
            mask = layer.compute_mask(X, mask)
            X = Y
        return X

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
        for i in range(len(self.layers) - 1, -1, -1):
            dY = self.layers[i].backward(dY, context, need_input_grad=i > 0)
        for layer in self.layers:
            layer.clear()

    def release_scratch(self):
        """Free the arrays the layers keep from one training batch to the next."""
        for layer in self.layers:
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
            for layer in self.layers
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
        by_name = {layer.name: layer for layer in self.layers
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
        for layer in self.layers:
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
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # Networks pickled before buffers existed had none.
        if "buffers" not in state:
            self.buffers = np.zeros(0, dtype=self.dtype)
        self.grads = np.zeros(self.params.shape, dtype=self.dtype)
        self._bind()
