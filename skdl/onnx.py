"""ONNX export of fitted skdl estimators, alone or inside scikit-learn pipelines.

Importing this module registers converters for :class:`~skdl.NNClassifier`
and :class:`~skdl.NNRegressor` with `skl2onnx
<https://onnx.ai/sklearn-onnx/>`_, so that ``skl2onnx.to_onnx(model, X[:1])``
converts a fitted estimator, or a ``Pipeline`` or ``ColumnTransformer``
holding one next to scikit-learn's own transformers. The converted graph runs
in any ONNX runtime (onnxruntime, a browser, C#, Java...) without Python or
skdl.

Every layer of skdl converts: Dense and Activation (every activation),
PReLU, Dropout (the identity at prediction), Flatten, Reshape,
BatchNormalization (its running statistics), Conv1D, Conv2D, the pools,
LastStep (the last step a mask keeps), Embedding and Masking with the masks
they make, SimpleRNN, GRU and LSTM (one ONNX Scan over the steps: masked
steps keep the state wherever they are; return_sequences, go_backwards,
initial_state and return_state),
Bidirectional, Pathways, MergeInput, the blocks, and the attention layers:
LayerNormalization (ONNX's operator from opset 17, MatMuls and Sqrt before
it), MultiHeadAttention (masked and causal), PositionalEmbedding and
TransformerEncoderBlock in both norm orders. Side inputs arrive as
flat rows holding every input's columns side by side, as ``predict`` takes
them. A layer defined outside skdl is refused with a ValueError naming it.

The outputs are those skl2onnx gives ``MLPClassifier`` and ``MLPRegressor``:
a classifier's ``label`` (as ``predict``) and ``probabilities`` (as
``predict_proba``; a list of dicts through skl2onnx's ZipMap unless
``options={id(clf): {'zipmap': False}}`` or ``{NNClassifier: {'zipmap':
False}}``), a multilabel classifier's ``label`` being its int64 label
indicator matrix; a regressor's ``variable`` of shape (n_samples, n_outputs).

Requires the ``onnx`` extra: ``pip install "skdl[onnx]"`` (skl2onnx, onnx,
onnxruntime).
"""
import numpy as np

try:
    from onnx import TensorProto
    from onnx.helper import make_graph, make_node, make_tensor, make_tensor_value_info
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
from .layers.attention import (
    LayerNormalizationLayer,
    MultiHeadAttentionLayer,
    PositionalEmbeddingLayer,
    TransformerEncoderBlockLayer,
)
from .layers.blocks import SequenceLayer
from .layers.conv import ConvLayer
from .layers.core import ActivationLayer, DenseLayer, DropoutLayer, PReLULayer, _ShapeLayer
from .layers.embedding import EmbeddingLayer, MaskingLayer
from .layers.merge import MergeLayer
from .layers.normalization import BatchNormalizationLayer
from .layers.pooling import LastStepLayer, PoolLayer, SequencePoolLayer
from .layers.recurrent import BidirectionalLayer, RecurrentLayer

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
        self.side_inputs = {}  # the network's side inputs by name
        self.outputs = {}  # outputs of the layers others read (initial_state)
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


def _indices(g, values):
    """An int64 constant: step indices for Gather."""
    return g.const(np.asarray(values, np.int64), "index", np.int64, TensorProto.INT64)


def _zeros_like(g, x):
    """Zeros of ``x``'s (dynamic) shape in the graph's dtype."""
    value = make_tensor("value", g.proto, [1], [0.0])
    return g.node("ConstantOfShape", [g.node("Shape", [x])], "zeros", value=value)


def _step(g, x, t):
    """``x[:, t]`` of an (n, steps, ...) tensor."""
    return g.node("Gather", [x, _indices(g, t)], "step", axis=1)


def _reverse_steps(g, x, steps):
    """``x[:, ::-1]``: Gather in reverse order (ONNX has no negative strides)."""
    return g.node("Gather", [x, _indices(g, np.arange(steps)[::-1])], "reversed", axis=1)


def _default_mask(layer, mask):
    """:meth:`Layer.compute_mask`'s rule: the mask passes a layer acting on
    each step alone whose output keeps the steps axis."""
    if mask is None or not layer.passes_mask or len(layer.output_shape) < 2:
        return None
    return mask


def _window_mask(g, mask, layer):
    """skdl.layers.conv.window_mask: an output step is kept when no step its
    window covers is masked (the zero padding aside). A max pool of the
    masked indicator over the same window, whose padding never wins."""
    window = layer.window
    masked = g.node("Cast", [g.node("Not", [mask])], to=g.proto)
    masked = g.node("Reshape", [masked, g.shape((-1, 1, layer.planes[1]))])
    pooled = g.node("MaxPool", [masked], dilations=[int(d) for d in window.dilation],
                    **_window_attrs(window))
    pooled = g.node("Reshape", [pooled, g.shape((-1, int(window.out_shape[0])))])
    return g.node("Less", [pooled, g.const(0.5, "half")])


def _kept_steps(g, keep, steps):
    """How many steps each row of ``keep`` (..., steps), 0/1 in the graph's
    dtype, keeps: (..., 1), a MatMul with ones (no opset changes it, unlike
    the reductions)."""
    return g.node("MatMul", [keep, g.const(np.ones((steps, 1)), "ones")])


def _sequence_pool(g, x, layer, mask):
    """Global pool over the steps, leaving out masked ones as skdl does: the
    mean of the kept steps (0 for none), the max of the kept steps (0 for
    none)."""
    x3 = g.reshape(x, (layer.steps,) + layer.output_shape)  # (n, steps, features)
    op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
    if mask is None:
        pooled = g.node(op, [g.node("Transpose", [x3], perm=[0, 2, 1])])
        return g.reshape(pooled, layer.output_shape)
    keep = g.node("Cast", [mask], to=g.proto)  # (n, steps)
    counts = _kept_steps(g, keep, layer.steps)
    keep3 = g.node("Reshape", [keep, g.shape((-1, layer.steps, 1))])
    if layer.kind == "avg":
        total = g.node("MatMul", [g.node("Transpose", [g.node("Mul", [x3, keep3])],
                                          perm=[0, 2, 1]), keep3])  # (n, features, 1)
        total = g.reshape(total, layer.output_shape)
        return g.node("Div", [total, g.node("Max", [counts, g.const(1.0, "one")])])
    on = g.node("Reshape", [mask, g.shape((-1, layer.steps, 1))])
    filled = g.node("Where", [on, x3, g.const(-np.inf, "minus_inf")])
    pooled = g.reshape(g.node(op, [g.node("Transpose", [filled], perm=[0, 2, 1])]),
                       layer.output_shape)
    any_kept = g.node("Greater", [counts, g.const(0.0, "zero")])
    return g.node("Where", [any_kept, pooled, g.const(0.0, "zero")])


def _last_step(g, x, layer, mask):
    """Each sample's last step whose mask is True (zeros if none), or the
    last step without a mask, as :class:`~skdl.layers.pooling.LastStepLayer`."""
    x3 = g.reshape(x, (layer.steps,) + layer.output_shape)  # (n, steps, features)
    if mask is None:
        return g.reshape(_step(g, x3, layer.steps - 1), layer.output_shape)
    keep = g.node("Cast", [mask], to=g.proto)  # (n, steps)
    # ArgMax takes the first maximum: on the reversed mask, the last True.
    from_end = g.node("ArgMax", [_reverse_steps(g, keep, layer.steps)], axis=1,
                      keepdims=1)  # (n, 1)
    last = g.node("Sub", [_indices(g, layer.steps - 1), from_end])
    where = g.node("Expand", [g.node("Reshape", [last, g.shape((-1, 1, 1))]),
                              g.shape((1, 1) + layer.output_shape)])  # (n, 1, features)
    y = g.reshape(g.node("GatherElements", [x3, where], axis=1), layer.output_shape)
    any_kept = g.node("Greater", [_kept_steps(g, keep, layer.steps),
                                  g.const(0.0, "zero")])  # (n, 1)
    return g.node("Where", [any_kept, y, g.const(0.0, "zero")])


class _Body:
    """The nodes of a Scan's body, built with :class:`_Graph`'s interface;
    its constants are Constant nodes inside the body (no outer-scope names
    for skl2onnx's clean-up to drop)."""

    def __init__(self, g):
        self.outer, self.proto, self.dtype = g, g.proto, g.dtype
        self.nodes = []

    def name(self, hint):
        return self.outer.name(hint)

    def const(self, value, hint="c", dtype=None, proto=None):
        value = np.asarray(value, dtype=dtype or self.dtype)
        name = self.name(hint)
        tensor = make_tensor(name, proto or self.proto, list(value.shape),
                             value.ravel().tolist())
        self.nodes.append(make_node("Constant", [], [name], value=tensor))
        return name

    def shape(self, shape):
        return self.const(np.asarray(shape, np.int64), "shape", np.int64, TensorProto.INT64)

    def node(self, op, inputs, hint=None, output=None, domain="", **attrs):
        output = output or self.name(hint or op.lower())
        self.nodes.append(make_node(op, list(inputs), [output], domain=domain,
                                    name=self.outer.scope.get_unique_operator_name(op),
                                    **attrs))
        return output


def _cell_step(b, layer, h, c, xt):
    """One step of skdl's cell (PyTorch's forms, as skdl.layers.recurrent):
    the new h and c from the state and the step's input projection per gate
    block ``xt``; nodes added to the Scan body ``b``."""
    params, u = layer.params, layer.units
    U, bh = params["recurrent_kernel"], params.get("recurrent_bias")
    blocks = [slice(j * u, (j + 1) * u) for j in range(len(xt))]
    hu = [b.node("MatMul", [h, b.const(U[:, block], "recurrent_kernel")]) for block in blocks]
    if bh is not None:
        hu = [b.node("Add", [v, b.const(bh[block], "recurrent_bias")])
              for v, block in zip(hu, blocks)]
    act = lambda z: _activation(b, z, layer.activation, None)  # noqa: E731
    ract = lambda z: _activation(b, z, layer.recurrent_activation, None)  # noqa: E731
    if layer.cell == "simple":
        return act(b.node("Add", [xt[0], hu[0]])), None
    if layer.cell == "gru":  # gates (r, z, n), reset after
        r = ract(b.node("Add", [xt[0], hu[0]]))
        z = ract(b.node("Add", [xt[1], hu[1]]))
        cand = act(b.node("Add", [xt[2], b.node("Mul", [r, hu[2]])]))
        return b.node("Add", [b.node("Mul", [b.node("Sub", [b.const(1.0, "one"), z]), cand]),
                              b.node("Mul", [z, h])]), None
    a = [b.node("Add", [v, w]) for v, w in zip(xt, hu)]  # lstm, gates (i, f, g, o)
    i, f, o = ract(a[0]), ract(a[1]), ract(a[3])
    c = b.node("Add", [b.node("Mul", [f, c]), b.node("Mul", [i, act(a[2])])])
    return b.node("Mul", [o, act(c)]), c


def _recurrent_steps(g, x, layer, mask):
    """The recurrence as one ONNX Scan over the steps, as skdl runs it: every
    step's h (n, steps, units) in reading order if the layer returns
    sequences (else None), and the last h and c (c None but for an LSTM).
    Masked steps keep the state. A Scan rather than ONNX's RNN/GRU/LSTM
    operators, which mask only right padding (sequence_lens) and take fewer
    gate activations than skdl; and rather than unrolled steps, whose graph
    (and skl2onnx's conversion time) grows with the steps."""
    T, F, u = layer.steps, layer.features, layer.units
    W, bias = layer.params["kernel"], layer.params.get("bias")
    blocks = [slice(j * u, (j + 1) * u) for j in range(W.shape[1] // u)]
    x3 = g.reshape(x, (T, F))
    # Every step's input projection at once, per gate block: (n, steps, u).
    xw = []
    for block in blocks:
        p = g.node("MatMul", [x3, g.const(W[:, block], "kernel")])
        xw.append(p if bias is None else g.node("Add", [p, g.const(bias[block], "bias")]))
    lstm = layer.cell == "lstm"
    if layer.initial_state is None:
        h0 = _zeros_like(g, _step(g, xw[0], 0))
        c0 = h0 if lstm else None
    else:
        state = g.outputs[layer.initial_state]
        h0 = g.node("Gather", [state, _indices(g, np.arange(u))], "h0", axis=1)
        c0 = None
        if lstm:
            c0 = (g.node("Gather", [state, _indices(g, np.arange(u, 2 * u))], "c0", axis=1)
                  if layer.state_width == 2 * u else _zeros_like(g, h0))
    body = _Body(g)
    info = lambda name, shape, proto=g.proto: make_tensor_value_info(  # noqa: E731
        name, proto, shape)
    h, c = body.name("h"), body.name("c") if lstm else None
    xt = [body.name("x_step") for _ in blocks]
    on = body.name("on") if mask is not None else None
    new_h, new_c = _cell_step(body, layer, h, c, xt)
    if on is not None:  # a masked step keeps the state
        column = body.node("Reshape", [on, body.shape((-1, 1))])
        new_h = body.node("Where", [column, new_h, h])
        if lstm:
            new_c = body.node("Where", [column, new_c, c])
    states = [h] + ([c] if lstm else [])
    new_states = [new_h] + ([new_c] if lstm else [])
    outputs = [body.node("Identity", [s]) for s in new_states]
    if layer.return_sequences:
        outputs.append(body.node("Identity", [new_h], "h_step"))
    scanned = xt + ([on] if on is not None else [])
    graph = make_graph(
        body.nodes, g.name("recurrence"),
        [info(s, [None, u]) for s in states + xt]
        + ([info(on, [None], TensorProto.BOOL)] if on is not None else []),
        [info(s, [None, u]) for s in outputs])
    inputs = [h0] + ([c0] if lstm else []) + xw + ([mask] if mask is not None else [])
    results = [g.name("h_last")] + ([g.name("c_last")] if lstm else [])
    if layer.return_sequences:
        results.append(g.name("h_sequence"))
    direction = 1 if layer.go_backwards else 0
    sequence_axes = {"scan_output_axes": [1]} if layer.return_sequences else {}
    g.container.add_node(
        "Scan", inputs, results, name=g.scope.get_unique_operator_name("Scan"),
        body=graph, num_scan_inputs=len(scanned), scan_input_axes=[1] * len(scanned),
        scan_input_directions=[direction] * len(scanned), op_version=9, **sequence_axes)
    sequence = results[-1] if layer.return_sequences else None
    return sequence, results[0], results[1] if lstm else None


def _recurrent(g, x, layer, mask, reverse=False):
    """A recurrent layer's output; ``reverse`` reverses a returned sequence
    (Bidirectional's backward half, put back in time order)."""
    sequence, h, c = _recurrent_steps(g, x, layer, mask)
    if layer.return_sequences:
        return _reverse_steps(g, sequence, layer.steps) if reverse else sequence
    if layer.return_state:
        return g.node("Concat", [h, c], axis=1)
    return h


def _layer_norm(g, x, layer):
    """LayerNormalization over the last axis: ONNX's operator from opset 17,
    before it the same sums as MatMuls with ones (no opset changes those;
    ReduceMean moved its axes to an input at 18)."""
    x = g.reshape(x, layer.input_shape)
    C = layer.features
    gamma, beta = layer.params.get("gamma"), layer.params.get("beta")
    if g.container.target_opset >= 17:
        scale = g.const(np.ones(C) if gamma is None else gamma, "gamma")
        inputs = [x, scale] + ([] if beta is None else [g.const(beta, "beta")])
        return g.node("LayerNormalization", inputs, axis=-1, epsilon=layer.epsilon)
    mean_of = g.const(np.full((C, 1), 1.0 / C), "mean_of")
    centered = g.node("Sub", [x, g.node("MatMul", [x, mean_of])])
    var = g.node("MatMul", [g.node("Mul", [centered, centered]), mean_of])
    std = g.node("Sqrt", [g.node("Add", [var, g.const(layer.epsilon, "epsilon")])])
    y = g.node("Div", [centered, std])
    if gamma is not None:
        y = g.node("Mul", [y, g.const(gamma, "gamma")])
    if beta is not None:
        y = g.node("Add", [y, g.const(beta, "beta")])
    return y


def _attention(g, x, layer, mask):
    """MultiHeadAttention at prediction (dropout off), as
    skdl._ops.attention_forward: hidden keys (padding, and later steps when
    causal) get no weight, and a query that sees no key gets all-zero
    weights, so its output is the output bias."""
    T, F, H = layer.steps, layer.features, layer.num_heads
    x = g.reshape(x, (T, F))
    heads = {}
    for part, size in zip(("query", "key", "value"),
                          (layer.key_dim, layer.key_dim, layer.value_dim)):
        kernel, bias = layer._matrices(part)  # (F, H * size) and (H * size,)
        z = g.node("MatMul", [x, g.const(kernel, f"{part}_kernel")])
        if bias is not None:
            z = g.node("Add", [z, g.const(bias, f"{part}_bias")])
        z = g.node("Reshape", [z, g.shape((-1, T, H, size))])
        # (n, H, T, size); keys as (n, H, dk, T) for Q @ K^T
        heads[part] = g.node("Transpose", [z], part,
                             perm=[0, 2, 3, 1] if part == "key" else [0, 2, 1, 3])
    scores = g.node("Mul", [g.node("MatMul", [heads["query"], heads["key"]]),
                            g.const(1.0 / np.sqrt(layer.key_dim), "scale")])  # (n, H, T, T)
    visible = None  # bool, broadcast to (n, 1, T, T): query row, key column
    if mask is not None:
        visible = g.node("Reshape", [mask, g.shape((-1, 1, 1, T))], "keys_present")
    if layer.causal:
        seen = g.const(np.tri(T, dtype=bool), "causal", bool, TensorProto.BOOL)
        visible = seen if visible is None else g.node("And", [visible, seen])
    if visible is not None:
        # The lowest finite value rather than -inf: a row of -inf softmaxes
        # to NaN, a row of equal finite values to weights zeroed below.
        lowest = g.const(np.finfo(g.dtype).min, "lowest")
        scores = g.node("Where", [visible, scores, lowest])
    weights = g.node("Softmax", [scores], "weights", axis=-1)
    if mask is not None:  # without a mask a query always sees itself
        seen_any = _kept_steps(g, g.node("Cast", [visible], to=g.proto), T)  # (n, 1, T, 1)
        seen_any = g.node("Cast", [g.node("Greater", [seen_any, g.const(0.0, "zero")])],
                          to=g.proto)
        weights = g.node("Mul", [weights, seen_any])
    out = g.node("Transpose", [g.node("MatMul", [weights, heads["value"]])],
                 perm=[0, 2, 1, 3])  # (n, T, H, dv)
    out = g.node("Reshape", [out, g.shape((-1, T, H * layer.value_dim))])
    kernel, bias = layer._matrices("output")  # (H * dv, F) and (F,)
    y = g.node("MatMul", [out, g.const(kernel, "output_kernel")])
    if bias is not None:
        y = g.node("Add", [y, g.const(bias, "output_bias")])
    return y


def _encoder_block(g, x, layer, mask):
    """TransformerEncoderBlockLayer.forward: its four chains and the two
    residual additions, post-norm or pre-norm."""
    x = g.reshape(x, layer.input_shape)

    def run(part, z):
        return _convert_chain(g, z, layer.parts[part], mask)[0]

    if layer.norm_first:
        x = g.node("Add", [x, run("attention", run("norm1", x))])
        return g.node("Add", [x, run("feed_forward", run("norm2", x))])
    x = run("norm1", g.node("Add", [x, run("attention", x)]))
    return run("norm2", g.node("Add", [x, run("feed_forward", x)]))


def _merge(g, outputs, merge, axis):
    if len(outputs) == 1:
        return outputs[0]
    if merge == "concat":
        return g.node("Concat", outputs, axis=axis)
    if merge == "multiply":
        total = outputs[0]
        for y in outputs[1:]:
            total = g.node("Mul", [total, y])
        return total
    total = outputs[0]
    for y in outputs[1:]:  # in branch order, as skdl sums them
        total = g.node("Add", [total, y])
    if merge == "average":
        total = g.node("Div", [total, g.const(float(len(outputs)), "count")])
    return total


def _convert_chain(g, x, layers, mask):
    """ONNX nodes of ``layers`` run one after the other (skdl's
    forward_chain): the output and its mask (a bool (n, steps) or None)."""
    for layer in layers:
        x, mask = _convert_layer(g, x, layer, mask)
        if layer.output_read:  # another layer's initial_state
            g.outputs[layer.name] = x
    return x, mask


def _convert_layer(g, x, layer, mask):
    """ONNX nodes computing ``layer.forward(x)`` at prediction: the output
    name and the output's mask."""
    if isinstance(layer, TransformerEncoderBlockLayer):
        return _encoder_block(g, x, layer, mask), _default_mask(layer, mask)
    if isinstance(layer, SequenceLayer):
        return _convert_chain(g, x, layer.layers, mask)
    if isinstance(layer, MergeLayer):
        outputs = []
        for source, layers in layer.branches:
            if source is None:
                outputs.append(_convert_chain(g, x, layers, mask)[0])
            else:
                outputs.append(_convert_chain(g, g.side_inputs[source], layers, None)[0])
        axis = None if layer.position is None else layer.position + 1
        return _merge(g, outputs, layer.merge, axis), _default_mask(layer, mask)
    if isinstance(layer, EmbeddingLayer):
        indices = g.node("Cast", [g.reshape(x, layer.input_shape)], "indices",
                         to=TensorProto.INT64)
        y = g.node("Gather", [g.const(layer.params["embeddings"], "embeddings"), indices],
                   axis=0)
        if layer.mask_zero:  # index 0 is padding
            keep = g.node("Not", [g.node("Equal", [g.reshape(x, layer.input_shape),
                                                   g.const(0.0, "zero")])])
            mask = keep if mask is None else g.node("And", [keep, mask])
        return y, mask
    if isinstance(layer, MaskingLayer):
        steps = layer.input_shape[0]
        features = int(np.prod(layer.input_shape[1:], dtype=np.int64))
        x3 = g.node("Reshape", [x, g.shape((-1, steps, features))])
        differs = g.node("Cast", [g.node("Not", [g.node("Equal", [
            x3, g.const(layer.mask_value, "mask_value")])])], to=g.proto)
        # A step is kept when any of its features differs: a count above 0
        # (a MatMul with ones, which no opset changes, for a reduction).
        count = g.node("MatMul", [differs, g.const(np.ones((features, 1)), "ones")])
        y = g.node("Mul", [x3, g.node("Cast", [g.node("Greater", [
            count, g.const(0.0, "zero")])], to=g.proto)])
        keep = g.node("Greater", [g.node("Reshape", [count, g.shape((-1, steps))]),
                                  g.const(0.0, "zero")])
        mask = keep if mask is None else g.node("And", [keep, mask])
        return g.reshape(y, layer.output_shape), mask
    y = _convert_plain_layer(g, x, layer, mask)
    if isinstance(layer, (RecurrentLayer, BidirectionalLayer)):
        # RecurrentLayer.compute_mask (Bidirectional's is its forward half's):
        # a returned sequence keeps the mask, in reading order.
        reader = layer.halves["forward"] if isinstance(layer, BidirectionalLayer) else layer
        if mask is None or not reader.return_sequences:
            return y, None
        return y, _reverse_steps(g, mask, reader.steps) if reader.go_backwards else mask
    if isinstance(layer, (ConvLayer, PoolLayer)):
        if mask is None or not layer.channels_last:
            return y, None
        return y, _window_mask(g, mask, layer)
    if isinstance(layer, SequencePoolLayer):
        return y, None
    return y, _default_mask(layer, mask)


def _convert_plain_layer(g, x, layer, mask):
    """The output of a layer that leaves masks to :func:`_convert_layer`."""
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
        return _sequence_pool(g, x, layer, mask)
    if isinstance(layer, LastStepLayer):
        return _last_step(g, x, layer, mask)
    if isinstance(layer, LayerNormalizationLayer):
        return _layer_norm(g, x, layer)
    if isinstance(layer, MultiHeadAttentionLayer):
        return _attention(g, x, layer, mask)
    if isinstance(layer, PositionalEmbeddingLayer):
        table = layer.params["embeddings"] if layer.table is None else layer.table
        return g.node("Add", [g.reshape(x, layer.input_shape), g.const(table, "positions")])
    if isinstance(layer, RecurrentLayer):
        return _recurrent(g, x, layer, mask)
    if isinstance(layer, BidirectionalLayer):
        layer._share()  # the halves read the layer's parameters
        forward = _recurrent(g, x, layer.halves["forward"], mask)
        backward = _recurrent(g, x, layer.halves["backward"], mask, reverse=True)
        return _merge(g, [forward, backward],
                      {"sum": "add", "mul": "multiply", "ave": "average"}.get(
                          layer.merge_mode, "concat"), len(layer.output_shape))
    raise ValueError(
        f"skdl's ONNX export does not convert {_kind(layer)} layers yet "
        f"({layer.name!r}); it converts skdl's own layers, not layers defined "
        "elsewhere."
    )


def _network_outputs(scope, operator, container):
    """The fitted network's raw outputs (n, n_outputs) in the input's float
    type, and the _Graph that built them."""
    est = operator.raw_operator
    network = est.network_
    proto = guess_proto_type(operator.inputs[0].type)
    if proto != TensorProto.DOUBLE:
        proto = TensorProto.FLOAT
    g = _Graph(scope, container, proto)
    x = g.node("Cast", [operator.inputs[0].full_name], "input", to=proto)
    if network.input_shapes is not None:
        # Side inputs arrive as predict takes them in a pipeline: flat rows
        # holding every input's values side by side (skdl._network.split_inputs).
        x = g.node("Reshape", [x, g.shape((-1, sum(
            int(np.prod(s, dtype=np.int64)) for s in network.input_shapes.values())))])
        start, pieces = 0, []
        for shape in network.input_shapes.values():
            size = int(np.prod(shape, dtype=np.int64))
            columns = _indices(g, np.arange(start, start + size))
            pieces.append(g.reshape(g.node("Gather", [x, columns], axis=1), shape))
            start += size
        x = pieces[0]
        g.side_inputs = dict(zip(list(network.input_shapes)[1:], pieces[1:]))
    else:
        # Flat rows or shaped samples alike become (n, *input_shape_).
        x = g.reshape(x, network.input_shape)
    x, _ = _convert_chain(g, x, network.layers, None)
    return g, g.reshape(x, network.output_shape)


def _convert_classifier(scope, operator, container):
    est = operator.raw_operator
    g, Z = _network_outputs(scope, operator, container)
    probabilities = operator.outputs[1].full_name
    if est._label_binarizer.y_type_ == "multilabel-indicator":
        # One sigmoid per label, and the labels above one half, as skl2onnx
        # converts MLPClassifier's (LabelBinarizer's threshold is strict too).
        g.node("Sigmoid", [Z], output=probabilities)
        on = g.node("Binarizer", [probabilities], domain="ai.onnx.ml", threshold=0.5)
        g.node("Cast", [on], output=operator.outputs[0].full_name, to=TensorProto.INT64)
        return
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


def _classifier_shape(operator):
    calculate_linear_classifier_output_shapes(operator)
    est = operator.raw_operator
    if est._label_binarizer.y_type_ == "multilabel-indicator":
        # A label indicator matrix, one int64 column per label.
        operator.outputs[0].type.shape = [None, len(est.classes_)]


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
        NNClassifier, "SkdlNNClassifier", _classifier_shape,
        _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                 "output_class_labels": [False, True]})
    update_registered_converter(NNRegressor, "SkdlNNRegressor", _regressor_shape,
                                _convert_regressor)


register()
