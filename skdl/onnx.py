"""ONNX export of fitted skdl estimators, alone or inside scikit-learn pipelines.

Importing this module registers converters for :class:`~skdl.NNClassifier`
and :class:`~skdl.NNRegressor` with `skl2onnx
<https://onnx.ai/sklearn-onnx/>`_, so that ``skl2onnx.to_onnx(model, X[:1])``
converts a fitted estimator, or a ``Pipeline`` or ``ColumnTransformer``
holding one next to scikit-learn's own transformers. The converted graph runs
in any ONNX runtime (onnxruntime, a browser, C#, Java...) without Python or
skdl.

Converted layers: Dense and Activation (every activation), PReLU, Dropout
(the identity at prediction), Flatten, Reshape, BatchNormalization (its
running statistics), Conv1D, Conv2D, the max and average pools and the global
pools, and the blocks made of them. Any other layer (recurrent, Embedding,
Masking, Pathways, MergeInput) is refused with a ValueError naming it, as are
models with side inputs and multilabel classifiers.

The outputs are those skl2onnx gives ``MLPClassifier`` and ``MLPRegressor``:
a classifier's ``label`` (as ``predict``) and ``probabilities`` (as
``predict_proba``; a list of dicts through skl2onnx's ZipMap unless
``options={id(clf): {'zipmap': False}}`` or ``{NNClassifier: {'zipmap':
False}}``), a regressor's ``variable`` of shape (n_samples, n_outputs).

Requires the ``onnx`` extra: ``pip install "skdl[onnx]"`` (skl2onnx, onnx,
onnxruntime).
"""
import numpy as np

try:
    from onnx import TensorProto
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import guess_proto_type
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
except ImportError as error:  # skdl itself needs neither
    raise ImportError(
        f"skdl.onnx needs skl2onnx and onnx ({error}); install them with "
        "pip install 'skdl[onnx]'."
    ) from error

from . import _ops
from ._estimators import NNClassifier, NNRegressor
from .layers.blocks import SequenceLayer
from .layers.conv import ConvLayer
from .layers.core import ActivationLayer, DenseLayer, DropoutLayer, PReLULayer, _ShapeLayer
from .layers.normalization import BatchNormalizationLayer
from .layers.pooling import PoolLayer, SequencePoolLayer

__all__ = ["register"]

# ONNX operators of the activations that have one, alpha read by the two
# that take it; elliot, softmax and linear are built below.
_ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid",
                   "softplus": "Softplus", "softsign": "Softsign",
                   "symmetric_elliot": "Softsign", "leaky_relu": "LeakyRelu",
                   "elu": "Elu"}


class _Graph:
    """Adds nodes and constants of one dtype to skl2onnx's container."""

    def __init__(self, scope, container, proto_dtype):
        self.scope, self.container = scope, container
        self.proto = proto_dtype
        self.dtype = np.float64 if proto_dtype == TensorProto.DOUBLE else np.float32

    def name(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def const(self, value, hint="c", dtype=None, proto=None):
        value = np.asarray(value, dtype=dtype or self.dtype)
        name = self.name(hint)
        self.container.add_initializer(name, proto or self.proto, list(value.shape),
                                       value.ravel().tolist())
        return name

    def shape(self, shape):
        return self.const(np.asarray(shape, np.int64), "shape", np.int64, TensorProto.INT64)

    def node(self, op, inputs, hint=None, output=None, domain="", **attrs):
        output = output or self.name(hint or op.lower())
        self.container.add_node(op, list(inputs), [output], op_domain=domain,
                                name=self.scope.get_unique_operator_name(op), **attrs)
        return output

    def reshape(self, x, sample_shape):
        return self.node("Reshape", [x, self.shape((-1,) + tuple(sample_shape))])


def _kind(layer):
    """How a refusal names a layer's type: LSTM, Embedding, Pathways..."""
    cell = getattr(layer, "cell", None)
    if isinstance(cell, str):
        return _ops.get_cell(cell).title
    kind = getattr(layer, "kind", None)
    if isinstance(kind, str) and kind[:1].isupper():
        return kind
    return type(layer).__name__.removesuffix("Layer").lstrip("_")


def _activation(g, x, name, alpha):
    if name in (None, "linear"):
        return x
    if name == "softmax":  # skdl's softmax is over the last axis
        return g.node("Softmax", [x], axis=-1)
    if name == "elliot":  # 0.5 * x / (1 + |x|) + 0.5
        half = g.const(0.5, "half")
        return g.node("Add", [g.node("Mul", [g.node("Softsign", [x]), half]), half])
    attrs = {}
    if name in _ops.DEFAULT_ACTIVATION_ALPHA:
        attrs["alpha"] = float(_ops.DEFAULT_ACTIVATION_ALPHA[name] if alpha is None
                               else alpha)
    return g.node(_ACTIVATION_OPS[name], [x], **attrs)


def _per_channel(g, x, layer, scale, shift=None):
    """``x * scale + shift`` with one value per channel, on the
    (rows, channels, positions) view skdl's per-channel layers take."""
    rows = g.node("Reshape", [x, g.shape((-1, layer.channels, layer.positions))])
    out = g.node("Mul", [rows, g.const(np.reshape(scale, (-1, 1)), "scale")])
    if shift is not None:
        out = g.node("Add", [out, g.const(np.reshape(shift, (-1, 1)), "shift")])
    return out


def _window_attrs(window):
    before = [int(p[0]) for p in window.padding]
    after = [int(p[1]) for p in window.padding]
    return dict(kernel_shape=[int(k) for k in window.size],
                strides=[int(s) for s in window.strides], pads=before + after)


def _channels_first(g, x, layer):
    """Samples as (n, C, *spatial), transposing channels-last sequences."""
    if layer.channels_last:
        x = g.reshape(x, layer.planes[::-1])  # (steps, features)
        return g.node("Transpose", [x], perm=[0, 2, 1])
    return g.reshape(x, layer.planes)


def _back_to_layout(g, y, layer):
    if layer.channels_last:
        y = g.node("Transpose", [y], perm=[0, 2, 1])
    return g.reshape(y, layer.output_shape)


def _convert_layer(g, x, layer):
    """ONNX nodes computing ``layer.forward(x)`` at prediction; the output name."""
    if isinstance(layer, SequenceLayer):
        for inner in layer.layers:
            x = _convert_layer(g, x, inner)
        return x
    if isinstance(layer, DenseLayer):
        # MatMul broadcasts over the leading axes: Dense acts on the last axis.
        y = g.node("MatMul", [x, g.const(layer.params["kernel"], "kernel")])
        if "bias" in layer.params:
            y = g.node("Add", [y, g.const(layer.params["bias"], "bias")])
        return _activation(g, y, layer.activation, layer.alpha)
    if isinstance(layer, ActivationLayer):
        return _activation(g, x, layer.activation, layer.alpha)
    if isinstance(layer, DropoutLayer):
        return x  # inverted dropout is the identity at prediction
    if isinstance(layer, _ShapeLayer):
        return g.reshape(x, layer.output_shape)
    if isinstance(layer, PReLULayer):
        # max(x, 0) + alpha * min(x, 0), alpha per channel
        rows = g.node("Reshape", [x, g.shape((-1, layer.channels, layer.positions))])
        zero = g.const(0.0, "zero")
        negative = g.node("Mul", [g.node("Min", [rows, zero]),
                                  g.const(layer.params["alpha"].reshape(-1, 1), "alpha")])
        y = g.node("Add", [g.node("Max", [rows, zero]), negative])
        return g.reshape(y, layer.output_shape)
    if isinstance(layer, BatchNormalizationLayer):
        # The running statistics folded into one scale and shift per channel,
        # in float64 before the cast to the graph's dtype.
        mean = layer.buffers["moving_mean"].astype(np.float64)
        var = layer.buffers["moving_variance"].astype(np.float64)
        gamma = layer.params.get("gamma", np.ones_like(mean)).astype(np.float64)
        beta = layer.params.get("beta", np.zeros_like(mean)).astype(np.float64)
        scale = gamma / np.sqrt(var + layer.epsilon)
        y = _per_channel(g, x, layer, scale, beta - mean * scale)
        return g.reshape(y, layer.output_shape)
    if isinstance(layer, ConvLayer):
        x = _channels_first(g, x, layer)
        inputs = [x, g.const(layer._kernel(layer.params), "kernel")]
        if "bias" in layer.params:
            inputs.append(g.const(layer.params["bias"], "bias"))
        y = g.node("Conv", inputs, dilations=[int(d) for d in layer.window.dilation],
                   **_window_attrs(layer.window))
        y = _activation(g, y, layer.activation, layer.alpha)
        return _back_to_layout(g, y, layer)
    if isinstance(layer, PoolLayer):
        x = _channels_first(g, x, layer)
        if layer.output_shape == layer.planes[:1]:  # a global pool: (C,)
            op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
            return g.reshape(g.node(op, [x]), layer.output_shape)
        if layer.kind == "max":
            y = g.node("MaxPool", [x], **_window_attrs(layer.window))
        else:  # skdl leaves padding out of each window's mean
            y = g.node("AveragePool", [x], count_include_pad=0,
                       **_window_attrs(layer.window))
        return _back_to_layout(g, y, layer)
    if isinstance(layer, SequencePoolLayer):
        # (steps, features) -> (features, steps): a global pool over the steps.
        x = g.node("Transpose", [g.reshape(x, (layer.steps,) + layer.output_shape)],
                   perm=[0, 2, 1])
        op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
        return g.reshape(g.node(op, [x]), layer.output_shape)
    raise ValueError(
        f"skdl's ONNX export does not convert {_kind(layer)} layers yet "
        f"({layer.name!r}); it converts Dense, Activation, PReLU, Dropout, Flatten, "
        "Reshape, BatchNormalization, Conv1D, Conv2D, pooling layers and blocks of them."
    )


def _network_outputs(scope, operator, container):
    """The fitted network's raw outputs (n, n_outputs) in the input's float
    type, and the _Graph that built them."""
    est = operator.raw_operator
    network = est.network_
    if network.input_shapes is not None:
        raise ValueError(
            f"skdl's ONNX export does not convert models with side inputs yet (this "
            f"{type(est).__name__} takes {sorted(network.input_shapes)})."
        )
    proto = guess_proto_type(operator.inputs[0].type)
    if proto != TensorProto.DOUBLE:
        proto = TensorProto.FLOAT
    g = _Graph(scope, container, proto)
    x = g.node("Cast", [operator.inputs[0].full_name], "input", to=proto)
    # Flat rows or shaped samples alike become (n, *input_shape_).
    x = g.reshape(x, network.input_shape)
    for layer in network.layers:
        x = _convert_layer(g, x, layer)
    return g, g.reshape(x, network.output_shape)


def _convert_classifier(scope, operator, container):
    est = operator.raw_operator
    if est._label_binarizer.y_type_ == "multilabel-indicator":
        raise ValueError("skdl's ONNX export does not convert multilabel classifiers yet.")
    g, Z = _network_outputs(scope, operator, container)
    probabilities = operator.outputs[1].full_name
    if len(est.classes_) == 2:  # one sigmoid output: P(classes_[1])
        p = g.node("Sigmoid", [Z])
        g.node("Concat", [g.node("Sub", [g.const(1.0, "one"), p]), p],
               output=probabilities, axis=1)
    else:
        g.node("Softmax", [Z], output=probabilities, axis=1)
    # Labels as skl2onnx gives MLPClassifier's: classes_[argmax], int64 or string.
    classes = est.classes_
    if classes.dtype.kind in "biuf":
        if not np.array_equal(classes, np.round(classes)):
            raise ValueError(
                f"skdl's ONNX export needs integer or string classes, got {classes.tolist()}."
            )
        values, proto = classes.astype(np.int64), TensorProto.INT64
    else:
        values, proto = np.array([str(c).encode("utf-8") for c in classes]), TensorProto.STRING
    table = g.name("classes")
    container.add_initializer(table, proto, list(values.shape), values.tolist())
    index = g.node("ArgMax", [probabilities], axis=1)
    label = g.node("ArrayFeatureExtractor", [table, index], domain="ai.onnx.ml")
    g.node("Reshape", [label, g.shape((-1,))], output=operator.outputs[0].full_name)


def _convert_regressor(scope, operator, container):
    est = operator.raw_operator
    g, Z = _network_outputs(scope, operator, container)
    if est.loss == "poisson":  # the output is the log of the mean
        Z = g.node("Exp", [Z])
    g.node("Identity", [Z], output=operator.outputs[0].full_name)


def _regressor_shape(operator):
    calculate_linear_regressor_output_shapes(operator)
    # One column per target (skl2onnx's default reads coef_, which skdl lacks).
    operator.outputs[0].type.shape = [None, int(operator.raw_operator.n_outputs_)]


def register():
    """Register skdl's converters with skl2onnx (done on import of this module).

    After it, ``skl2onnx.to_onnx`` and ``skl2onnx.convert_sklearn`` convert
    fitted :class:`~skdl.NNClassifier` and :class:`~skdl.NNRegressor`
    estimators, alone or inside pipelines. Calling it again is harmless.
    """
    update_registered_converter(
        NNClassifier, "SkdlNNClassifier", calculate_linear_classifier_output_shapes,
        _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                 "output_class_labels": [False, True]})
    update_registered_converter(NNRegressor, "SkdlNNRegressor", _regressor_shape,
                                _convert_regressor)


register()
