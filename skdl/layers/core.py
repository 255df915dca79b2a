"""Core layers: Dense, Activation, PReLU, Dropout, Flatten, Reshape."""
from numbers import Integral, Real

import numpy as np
from scipy.sparse import issparse
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _ops
from .._initializers import INITIALIZERS, initialize
from ..regularizers import Regularizer
from ._base import (
    BoundLayer,
    Layer,
    LayerSpec,
    channel_axis,
    channel_layout,
    regularizer_coefficients,
    run_all,
)

_ACTIVATION_NAMES = StrOptions(set(_ops.ACTIVATIONS))
_INITIALIZER_NAMES = StrOptions(set(INITIALIZERS))


def check_activation_alpha(activation, alpha, layer):
    """Refuse an ``alpha`` that ``activation`` would ignore.

    Only ``leaky_relu`` (its slope) and ``elu`` (its scale) read one; any
    other would silently drop it, e.g. a NumpyDL ``Elliot(steepness)`` port.

    Parameters
    ----------
    activation : str or None
    alpha : float or None
    layer : str
        How the message names the layer.
    """
    if alpha is None or activation in _ops.DEFAULT_ACTIVATION_ALPHA:
        return
    hint = ""
    if activation in ("elliot", "symmetric_elliot"):
        # A steepness s multiplies the input, which the layer's kernel (and
        # bias) can learn: it would only change their starting values.
        hint = (f" skdl's {activation} has no steepness: the layer's weights learn any "
                "scale of its input (NumpyDL's steepness s is the kernel times s).")
    raise ValueError(
        f"{layer}: alpha={alpha!r} has no effect with activation={activation!r}; only "
        f"'leaky_relu' (its slope) and 'elu' (its scale) take an alpha.{hint} Remove "
        "alpha."
    )


class _ActivationMixin:
    """Backward of an optional activation, for layers that end in one."""

    def _activation_grad(self, A, dA, out=None):
        if self.activation in (None, "linear"):
            return dA
        return _ops.activation_backward(self.activation, A, dA, self.alpha, out=out)

    def _bind_activation_grad(self, A, dA):
        """[the activation's backward, bound in place on dA: ``call(scale)``],
        or [] for a linear layer."""
        if self.activation in (None, "linear"):
            return []
        run = _ops.bind_activation_backward(self.activation, A, dA, self.alpha, out=dA)[0]
        return [lambda scale: run()]


class Dense(LayerSpec):
    """Fully connected layer: ``activation(X @ kernel + bias)``.

    Applied to the last axis of its input, so on sequences ``(steps, features)``
    it acts on every step with the same weights.

    Parameters
    ----------
    units : int
        Number of outputs.
    activation : str or None, default=None
        One of ``linear``, ``relu``, ``leaky_relu``, ``elu``, ``tanh``,
        ``sigmoid``, ``softplus``, ``softsign``, ``elliot``,
        ``symmetric_elliot``, ``softmax``; None is linear.
    alpha : float or None, default=None
        Slope of ``leaky_relu`` (default 0.01) or scale of ``elu`` (default 1);
        other activations take none (a ValueError at ``fit``).
    use_bias : bool, default=True
    kernel_initializer : str, default='glorot_uniform'
    bias_initializer : str, default='zeros'
    kernel_regularizer : skdl.regularizers.L1L2, L1, L2 or None, default=None
        Penalty on ``kernel``; None applies the estimator-wide one.
    name : str or None, default=None
        Name used by ``get_weights``; generated (``dense``, ``dense_1``...) if None.

    Notes
    -----
    Parameters: ``kernel`` of shape ``(n_in, units)`` (the layout of
    ``MLPClassifier.coefs_``) and ``bias`` of shape ``(units,)``.
    """

    _parameter_constraints = {
        "units": [Interval(Integral, 1, None, closed="left")],
        "activation": [_ACTIVATION_NAMES, None],
        "alpha": [Interval(Real, 0, None, closed="left"), None],
        "use_bias": ["boolean"],
        "kernel_initializer": [_INITIALIZER_NAMES],
        "bias_initializer": [_INITIALIZER_NAMES],
        "kernel_regularizer": [Regularizer, None],
        "name": [str, None],
    }

    def __init__(self, units, activation=None, alpha=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, name=None):
        self.units = units
        self.activation = activation
        self.alpha = alpha
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.name = name

    def _build(self, input_shape, dtype, name):
        return DenseLayer(self, input_shape, dtype, name)


class DenseLayer(_ActivationMixin, Layer):
    """Runtime state of :class:`Dense`."""

    passes_mask = True  # acts on each step alone

    def __init__(self, spec, input_shape, dtype, name):
        if len(input_shape) == 0:
            raise ValueError(f"Dense layer {name!r} needs at least 1-D input.")
        if input_shape[-1] < 1:
            raise ValueError(f"Dense layer {name!r} needs at least one input feature, "
                             f"got samples of shape {input_shape}.")
        super().__init__(name, input_shape, input_shape[:-1] + (spec.units,), dtype)
        check_activation_alpha(spec.activation, spec.alpha, f"Dense layer {name!r}")
        self.units = spec.units
        self.activation = spec.activation
        self.alpha = spec.alpha
        self.use_bias = spec.use_bias
        self.initializers = {"kernel": spec.kernel_initializer,
                             "bias": spec.bias_initializer}
        n_in = input_shape[-1]
        self.param_shapes = {"kernel": (n_in, spec.units)}
        self.weight_penalties = {"kernel": regularizer_coefficients(spec.kernel_regularizer)}
        if spec.use_bias:
            self.param_shapes["bias"] = (spec.units,)
        self._cache = None

    def initialize(self, rng):
        for key, shape in self.param_shapes.items():
            self.params[key][...] = initialize(self.initializers[key], shape, rng,
                                               self.dtype)

    def forward(self, X, training=False, rng=None, mask=None):
        n_in = self.param_shapes["kernel"][0]
        # A sparse batch (a network's first layer only) is already its rows.
        rows = X if issparse(X) else X.reshape(-1, n_in)
        # While training, outputs and gradients go into arrays kept across
        # batches (fresh ones of several hundred KB cost page faults per step).
        out = self._scratch("A", (rows.shape[0], self.units)) if training else None
        A = _ops.dense_forward(rows, self.params["kernel"], self.params.get("bias"),
                               self.activation, self.alpha, out=out)
        self._cache = (rows, A) if training else None
        return A.reshape(X.shape[:-1] + (self.units,))

    def backward(self, dY, context, need_input_grad=True):
        rows, A = self._cache
        dZ = self._activation_grad(A, dY.reshape(A.shape),
                                   out=self._scratch("dZ", A.shape))
        _ops.dense_param_grads(
            rows, dZ, context.row_weights(rows.shape[0]), context.scale,
            context.accumulate_dtype, dW=self.grads["kernel"], db=self.grads.get("bias"),
        )
        if not need_input_grad:
            return None
        dX = _ops.dense_backward_input(dZ, self.params["kernel"],
                                       out=self._scratch("dX", rows.shape))
        return dX.reshape(dY.shape[:-1] + (rows.shape[1],))

    def bind(self, X, dX, context):
        rows = X.reshape(-1, self.param_shapes["kernel"][0])
        if context.sample_weight is not None and rows.shape[0] != X.shape[0]:
            return None  # the steps of a sequence would need repeated weights
        W, b = self.params["kernel"], self.params.get("bias")
        forward, A = _ops.bind_dense_forward(rows, W, b, self.activation, self.alpha)
        dA = np.empty_like(A)
        calls = self._bind_activation_grad(A, dA)
        calls.append(_ops.bind_dense_param_grads(
            rows, dA, context.sample_weight, context.accumulate_dtype, dW=self.grads["kernel"],
            db=self.grads.get("bias"))[0])
        if dX is not None:
            into = _ops.bind_dense_backward_input(dA, W, out=dX.reshape(-1, rows.shape[1]))[0]
            calls.append(lambda scale: into())
        shape = X.shape[:-1] + (self.units,)
        return BoundLayer(A.reshape(shape), dA.reshape(shape), forward,
                          lambda scale: run_all(calls, scale))

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """Per row ``2 * n_in * units`` for the product (a multiply-add per
        kernel entry), ``units`` for the bias if used and ``units`` for the
        activation unless linear (softmax too counts one per output); the
        rows are the sample's leading axes (a sequence's steps)."""
        n_in = self.input_shape[-1]
        rows = int(np.prod(self.input_shape[:-1], dtype=np.int64))
        per_row = 2 * n_in * self.units
        if self.use_bias:
            per_row += self.units
        if self.activation not in (None, "linear"):
            per_row += self.units
        return rows * per_row


class Activation(LayerSpec):
    """Apply an activation function elementwise (softmax: over the last axis).

    Parameters
    ----------
    activation : str
        See :class:`Dense` for the names.
    alpha : float or None, default=None
        Slope of ``leaky_relu`` (default 0.01) or scale of ``elu`` (default 1);
        other activations take none (a ValueError at ``fit``).
    name : str or None, default=None
    """

    _parameter_constraints = {
        "activation": [_ACTIVATION_NAMES],
        "alpha": [Interval(Real, 0, None, closed="left"), None],
        "name": [str, None],
    }

    def __init__(self, activation, alpha=None, name=None):
        self.activation = activation
        self.alpha = alpha
        self.name = name

    def _build(self, input_shape, dtype, name):
        return ActivationLayer(self, input_shape, dtype, name)


class ActivationLayer(_ActivationMixin, Layer):
    """Runtime state of :class:`Activation`."""

    passes_mask = True  # acts on each step alone

    def __init__(self, spec, input_shape, dtype, name):
        check_activation_alpha(spec.activation, spec.alpha, f"Activation layer {name!r}")
        super().__init__(name, input_shape, input_shape, dtype)
        self.activation = spec.activation
        self.alpha = spec.alpha
        self._cache = None

    def forward(self, X, training=False, rng=None, mask=None):
        Y = _ops.activation_forward(self.activation, X, self.alpha)
        self._cache = Y if training else None
        return Y

    def backward(self, dY, context, need_input_grad=True):
        return self._activation_grad(self._cache, dY) if need_input_grad else None

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """One elementwise function per value (softmax included); none for
        ``linear``."""
        if self.activation in (None, "linear"):
            return 0
        return int(np.prod(self.input_shape, dtype=np.int64))


class PReLU(LayerSpec):
    """Parametric ReLU: ``max(x, 0) + alpha * min(x, 0)`` with a learned slope
    per channel.

    Parameters
    ----------
    alpha_initializer : float or str, default=0.25
        Starting slope: a number (every channel starts there, 0.25 as in
        PyTorch) or an initializer name.
    axis : int or None, default=None
        The channel axis of the batch ``(n, *sample_shape)``, as in
        :class:`BatchNormalization`: one slope per feature of ``(n, features)``
        and per channel of ``(n, C, L)`` or ``(n, C, H, W)``; -1 for the
        features of ``(n, steps, features)``. None follows the layer before
        (-1 after a layer that outputs sequences, else 1).
    name : str or None, default=None

    Notes
    -----
    Parameter: ``alpha`` of shape ``(channels,)``. It is not a weight: no
    penalty or weight decay applies to it.
    """

    _parameter_constraints = {
        "alpha_initializer": [Real, _INITIALIZER_NAMES],
        "axis": [Integral, None],
        "name": [str, None],
    }

    _reads_layout = True  # axis=None follows the input's layout

    def __init__(self, alpha_initializer=0.25, axis=None, name=None):
        self.alpha_initializer = alpha_initializer
        self.axis = axis
        self.name = name

    @property
    def base_name(self):
        return "prelu"  # not "pre_lu"

    def _build(self, input_shape, dtype, name, after_sequence=False):
        return PReLULayer(self, input_shape, dtype, name,
                          channel_axis(self.axis, after_sequence))


class PReLULayer(Layer):
    """Runtime state of :class:`PReLU`."""

    passes_mask = True  # acts on each value alone

    def __init__(self, spec, input_shape, dtype, name, axis):
        _, lead, C, P = channel_layout(input_shape, axis, f"PReLU {name!r}")
        super().__init__(name, input_shape, input_shape, dtype)
        self.lead, self.channels, self.positions = lead, C, P
        self.initializer = spec.alpha_initializer
        self.param_shapes = {"alpha": (C,)}
        self._cache = None

    def initialize(self, rng):
        if isinstance(self.initializer, str):
            self.params["alpha"][...] = initialize(self.initializer, (self.channels,), rng,
                                                   self.dtype)
        else:
            self.params["alpha"][...] = self.initializer

    def _rows(self, X):
        return X.reshape(X.shape[0] * self.lead, self.channels, self.positions)

    def forward(self, X, training=False, rng=None, mask=None):
        X3 = self._rows(X)
        out = self._scratch("Y", X3.shape) if training else None
        Y = _ops.prelu_forward(X3, self.params["alpha"], out=out)
        self._cache = X3 if training else None
        return Y.reshape(X.shape)

    def backward(self, dY, context, need_input_grad=True):
        X3 = self._cache
        out = self._scratch("dX", X3.shape) if need_input_grad else None
        dX, dalpha = _ops.prelu_backward(
            X3, dY.reshape(X3.shape), self.params["alpha"],
            context.row_weights(X3.shape[0]), context.scale,
            need_input_grad=need_input_grad, out=out)
        self.grads["alpha"][...] = dalpha
        return None if dX is None else dX.reshape(dY.shape)

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """Two per value: the comparison with 0 and the multiplication by the
        slope (counted for every value, as a branch-free kernel does)."""
        return 2 * int(np.prod(self.input_shape, dtype=np.int64))


class Dropout(LayerSpec):
    """Inverted dropout, active only while fitting.

    During ``fit`` each input is zeroed with probability ``rate`` and the rest
    are scaled by ``1 / (1 - rate)``; at prediction time the layer is the
    identity. The random draws come from the estimator's ``random_state``.

    Parameters
    ----------
    rate : float in [0, 1)
        Fraction of inputs to drop.
    name : str or None, default=None
    """

    _parameter_constraints = {
        "rate": [Interval(Real, 0, 1, closed="left")],
        "name": [str, None],
    }

    def __init__(self, rate, name=None):
        self.rate = rate
        self.name = name

    def _build(self, input_shape, dtype, name):
        return DropoutLayer(self, input_shape, dtype, name)


class DropoutLayer(Layer):
    """Runtime state of :class:`Dropout`."""

    passes_mask = True  # acts on each step alone

    def __init__(self, spec, input_shape, dtype, name):
        super().__init__(name, input_shape, input_shape, dtype)
        self.rate = float(spec.rate)
        self._cache = None

    def forward(self, X, training=False, rng=None, mask=None):
        if not training or self.rate == 0.0:
            self._cache = None
            return X
        if rng is None:
            raise ValueError("Dropout needs a random generator while training.")
        Y, self._cache = _ops.dropout_forward(X, self.rate, rng)
        return Y

    def backward(self, dY, context, need_input_grad=True):
        if not need_input_grad:
            return None
        return dY if self._cache is None else _ops.dropout_backward(dY, self._cache)

    def bind(self, X, dX, context):
        if self.rate == 0.0:  # the identity: the neighbours share the arrays
            return BoundLayer.view(X, dX, self.output_shape)
        dY = np.empty_like(X)
        forward, backward, Y = _ops.bind_dropout(X, self.rate, dY, dX)
        return BoundLayer(Y, dY, lambda: forward(context.rng),
                          None if dX is None else lambda scale: backward())

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """None: dropout is the identity at inference."""
        return 0


class _ShapeLayer(Layer):
    """A layer that only changes the per-sample shape."""

    def forward(self, X, training=False, rng=None, mask=None):
        return X.reshape((X.shape[0],) + self.output_shape)

    def backward(self, dY, context, need_input_grad=True):
        return dY.reshape((dY.shape[0],) + self.input_shape) if need_input_grad else None

    def bind(self, X, dX, context):
        return BoundLayer.view(X, dX, self.output_shape)

    def forward_flops(self):
        """None: Flatten and Reshape only relabel the values."""
        return 0


class Flatten(LayerSpec):
    """Flatten each sample to one dimension: ``(n, *shape) -> (n, prod(shape))``.

    Parameters
    ----------
    name : str or None, default=None
    """

    _parameter_constraints = {"name": [str, None]}

    def __init__(self, name=None):
        self.name = name

    def _build(self, input_shape, dtype, name):
        return _ShapeLayer(name, input_shape, (int(np.prod(input_shape)),), dtype)


class Reshape(LayerSpec):
    """Give each sample a new shape with the same number of values.

    Parameters
    ----------
    target_shape : tuple of int
        Shape of one sample after the layer; one entry may be -1 (inferred).
    name : str or None, default=None
    """

    _parameter_constraints = {"target_shape": [tuple, list], "name": [str, None]}

    def __init__(self, target_shape, name=None):
        self.target_shape = target_shape
        self.name = name

    def _build(self, input_shape, dtype, name):
        shape = resolve_shape(self.target_shape, int(np.prod(input_shape)),
                              what=f"Reshape {name!r} target_shape")
        return _ShapeLayer(name, input_shape, shape, dtype)


def resolve_shape(shape, size, what="shape"):
    """Replace a single -1 in ``shape`` so its product is ``size``.

    Parameters
    ----------
    shape : tuple of int
    size : int
        Number of values one sample has.
    what : str
        How the error messages name the shape.

    Returns
    -------
    tuple of int
    """
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of ints, got {shape!r}.") from None
    if not shape or not all(isinstance(s, Integral) and not isinstance(s, bool)
                            for s in shape):
        raise TypeError(f"{what} must be a non-empty tuple of ints, got {shape!r}.")
    shape = tuple(int(s) for s in shape)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1 or any(s == 0 or s < -1 for s in shape):
        raise ValueError(
            f"{what} {shape} must hold positive sizes and at most one -1."
        )
    known = int(np.prod([s for s in shape if s != -1]))
    if unknown:
        if size % known:
            raise ValueError(
                f"{what} {shape} does not fit {size} values per sample: "
                f"{size} is not a multiple of {known}."
            )
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size:
        raise ValueError(
            f"{what} {shape} holds {known} values per sample, but the input has "
            f"{size}."
        )
    return shape
