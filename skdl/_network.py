"""A built network: runtime layers over one flat parameter buffer."""
import numpy as np

from . import _ops
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


class Network:
    """Runtime layers whose parameters live in one contiguous buffer.

    Every parameter is a view into ``params`` and its gradient a view into
    ``grads`` (same offsets), so an optimizer step is one fused loop over two
    flat arrays.

    Parameters
    ----------
    layers : list of Layer
        Built layers, e.g. from :func:`build_layers`.
    dtype : numpy dtype
    """

    def __init__(self, layers, dtype):
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)
        size = sum(int(np.prod(s)) for layer in self.layers
                   for s in layer.param_shapes.values())
        self.params = np.zeros(size, dtype=self.dtype)
        self.grads = np.zeros(size, dtype=self.dtype)
        self._bind()

    @property
    def input_shape(self):
        return self.layers[0].input_shape

    @property
    def output_shape(self):
        return self.layers[-1].output_shape

    def _bind(self):
        offset = 0
        for layer in self.layers:
            layer.params, layer.grads = {}, {}
            for key, shape in layer.param_shapes.items():
                size = int(np.prod(shape))
                layer.params[key] = self.params[offset:offset + size].reshape(shape)
                layer.grads[key] = self.grads[offset:offset + size].reshape(shape)
                offset += size

    def initialize(self, rng):
        """Draw initial parameters, layer by layer, from a RandomState."""
        for layer in self.layers:
            layer.initialize(rng)

    def forward(self, X, training=False, rng=None):
        """Network output for a batch of shape (n, *input_shape).

        Parameters
        ----------
        X : ndarray of shape (n, *input_shape)
        training : bool
            Keep what backward needs and let dropout act.
        rng : numpy.random.Generator or None
            Random draws of training-only layers (dropout).

        Returns
        -------
        ndarray of shape (n, *output_shape)
        """
        mask = None
        for layer in self.layers:
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

    def get_weights(self):
        """Copies of the parameters: ``{layer_name: {param_name: array}}``."""
        return {
            layer.name: {key: value.copy() for key, value in layer.params.items()}
            for layer in self.layers
            if layer.params
        }

    def set_weights(self, weights):
        """Overwrite parameters from ``{layer_name: {param_name: array}}``.

        Every named layer and parameter must exist and every array must have
        the parameter's shape; nothing is written unless all of them do.
        Layers that are left out keep their values.
        """
        if not isinstance(weights, dict):
            raise TypeError(
                f"weights must be a dict {{layer_name: {{param_name: array}}}}, "
                f"got {type(weights).__name__}."
            )
        by_name = {layer.name: layer for layer in self.layers if layer.params}
        updates = []
        for layer_name, params in weights.items():
            if layer_name not in by_name:
                raise ValueError(
                    f"No layer with parameters is named {layer_name!r}; "
                    f"the layers are {sorted(by_name)}."
                )
            layer = by_name[layer_name]
            if not isinstance(params, dict):
                raise TypeError(f"weights[{layer_name!r}] must be a dict of arrays.")
            for key, value in params.items():
                if key not in layer.params:
                    raise ValueError(
                        f"Layer {layer_name!r} has no parameter {key!r}; it has "
                        f"{sorted(layer.params)}."
                    )
                value = np.asarray(value)
                if value.shape != layer.params[key].shape:
                    raise ValueError(
                        f"weights[{layer_name!r}][{key!r}] has shape {value.shape}, "
                        f"expected {layer.params[key].shape}."
                    )
                if not np.all(np.isfinite(value)):
                    raise ValueError(
                        f"weights[{layer_name!r}][{key!r}] contains NaN or infinity."
                    )
                updates.append((layer.params[key], value))
        for target, value in updates:
            target[...] = value

    def __getstate__(self):
        state = self.__dict__.copy()
        # Gradients are scratch space; only the shape is worth keeping.
        state["grads"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.grads = np.zeros(self.params.shape, dtype=self.dtype)
        self._bind()
