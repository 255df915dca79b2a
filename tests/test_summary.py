"""Network summary: parameters, FLOPs, activation memory and time per epoch.

Expected numbers are written as the arithmetic that gives them, so each can be
checked by hand against the conventions of the layers' ``forward_flops``
(a multiply-add counts 2, any other operation 1).
"""
import math
import re

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from skdl._network import Network, build_layers
from skdl._summary import format_bytes, format_seconds, summarize
from skdl.layers import (
    GRU,
    LSTM,
    Activation,
    AvgPool1D,
    AvgPool2D,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    LastStep,
    GlobalMaxPool2D,
    LayerNormalization,
    Masking,
    MaxPool1D,
    MaxPool2D,
    MultiHeadAttention,
    PositionalEmbedding,
    PReLU,
    Reshape,
    SimpleRNN,
    TransformerEncoderBlock,
)
from skdl.layers._base import Layer


def one(spec, input_shape, dtype=np.float32):
    """The runtime layer of a single spec."""
    (layer,) = build_layers([spec], input_shape, dtype)
    return layer


def flops(spec, input_shape):
    return one(spec, input_shape).forward_flops()


def conv_net(dtype=np.float32):
    return build_layers([Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2),
                         Flatten(), Dense(10)], (1, 8, 8), dtype)


# ----------------------------------------------------------------- the table

def test_conv_net_rows_and_totals():
    s = summarize(conv_net(), batch_size=64, dtype=np.float32)
    assert [r["name"] for r in s.rows] == ["conv2d", "max_pool2d", "flatten", "dense"]
    assert [r["type"] for r in s.rows] == ["Conv2D", "MaxPool", "Flatten", "Dense"]
    assert [r["output_shape"] for r in s.rows] == [(4, 8, 8), (4, 4, 4), (64,), (10,)]
    assert [r["depth"] for r in s.rows] == [0, 0, 0, 0]
    params = [4 * 1 * 3 * 3 + 4, 0, 0, 4 * 4 * 4 * 10 + 10]
    # conv: products, bias, relu per output; pool: 2x2 comparisons per
    # output; dense: products and bias.
    flops_ = [2 * 1 * 3 * 3 * 4 * 8 * 8 + 4 * 8 * 8 + 4 * 8 * 8,
              4 * 4 * 4 * (2 * 2),
              0,
              2 * 64 * 10 + 10]
    activation_bytes = [4 * 8 * 8 * 64 * 4, 4 * 4 * 4 * 64 * 4, 64 * 64 * 4, 10 * 64 * 4]
    assert [r["params"] for r in s.rows] == params
    assert [r["flops"] for r in s.rows] == flops_
    assert [r["activation_bytes"] for r in s.rows] == activation_bytes
    assert s.total_params == sum(params) == 40 + 650
    assert s.total_flops == sum(flops_)
    assert s.total_activation_bytes == sum(activation_bytes)
    assert s.batch_size == 64 and s.dtype == np.float32
    assert s.n_samples is None and s.seconds_per_batch is None


def test_activation_bytes_follow_dtype_and_batch():
    s32 = summarize(conv_net(), 64, np.float32)
    s64 = summarize(conv_net(np.float64), 64, np.float64)
    s64_half = summarize(conv_net(np.float64), 32, np.float64)
    assert s64.total_activation_bytes == 2 * s32.total_activation_bytes
    assert s64_half.total_activation_bytes == s32.total_activation_bytes
    assert s64.total_flops == s32.total_flops and s64.total_params == s32.total_params


def test_table_lists_layers_shapes_and_totals():
    s = summarize(conv_net(), 64, np.float32)
    text = str(s)
    assert repr(s) == text
    for name, shape in [("conv2d", "(4, 8, 8)"), ("max_pool2d", "(4, 4, 4)"),
                        ("flatten", "(64,)"), ("dense", "(10,)")]:
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert shape in line
    dense_line = next(line for line in text.splitlines() if line.startswith("dense "))
    assert "650" in dense_line and "1,290" in dense_line and "2.5 KiB" in dense_line
    total_line = next(line for line in text.splitlines() if line.startswith("Total"))
    assert s.total_params == 690 and "690" in total_line
    assert f"{s.total_flops:,}" in total_line
    assert format_bytes(s.total_activation_bytes) in total_line
    assert "float32" in text
    assert "epoch" not in text  # no calibration, no time line


def test_table_time_line():
    s = summarize(conv_net(), 64, np.float32, n_samples=1797, seconds_per_batch=0.0023)
    last = str(s).splitlines()[-1]
    # ceil(1797 / 64) = 29 batches of 2.3 ms
    assert last == ("estimated time per epoch for 1797 samples: 66.7 ms "
                    "(measured 2.3 ms per batch of 64)")
    calibrated = summarize(conv_net(), 64, np.float32, seconds_per_batch=0.0023)
    assert "epoch" not in str(calibrated)
    assert "2.3 ms per batch of 64" in str(calibrated)


def test_epoch_seconds():
    s = summarize(conv_net(), 64, np.float32, n_samples=1797, seconds_per_batch=0.5)
    assert s.epoch_seconds() == pytest.approx(math.ceil(1797 / 64) * 0.5) == 29 * 0.5
    assert s.epoch_seconds(128) == pytest.approx(2 * 0.5)
    assert s.epoch_seconds(129) == pytest.approx(3 * 0.5)
    assert s.epoch_seconds(1) == pytest.approx(0.5)


def test_epoch_seconds_errors():
    uncalibrated = summarize(conv_net(), 64, np.float32, n_samples=100)
    with pytest.raises(ValueError, match="no time calibration.*seconds_per_batch"):
        uncalibrated.epoch_seconds()
    unknown = summarize(conv_net(), 64, np.float32, seconds_per_batch=0.1)
    with pytest.raises(ValueError, match="number of samples is unknown"):
        unknown.epoch_seconds()
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        unknown.epoch_seconds(0)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"n_samples": -3}, "n_samples"),
    ({"seconds_per_batch": -1.0}, "seconds_per_batch"),
    ({"seconds_per_batch": float("nan")}, "seconds_per_batch"),
])
def test_summarize_rejects_bad_arguments(kwargs, match):
    args = {"batch_size": 8, "dtype": np.float32} | kwargs
    with pytest.raises(ValueError, match=match):
        summarize(conv_net(), **args)


def test_format_units():
    assert format_bytes(512) == "512 B"
    assert format_bytes(12595) == "12.3 KiB"  # 12595 / 1024 = 12.299...
    assert format_bytes(int(4.5 * 1024**2)) == "4.5 MiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"
    assert format_seconds(0.0023) == "2.3 ms"
    assert format_seconds(0.00085) == "850 µs"
    assert format_seconds(12.5) == "12.5 s"
    assert format_seconds(192) == "3.2 min"
    assert format_seconds(5400) == "1.5 h"


# ------------------------------------------------------------- containers

class ToyContainerLayer(Layer):
    """A container running two Dense layers; its own work is a sum of 2 values."""

    def __init__(self, kind=None):
        self.inner = build_layers([Dense(4, name="inner_a"), Dense(2, name="inner_b")],
                                  (5,), np.float32)
        super().__init__("toy", (5,), (2,), np.float32)
        self.param_shapes = {"scale": (2,)}
        if kind is not None:
            self.kind = kind

    def sublayers(self):
        return self.inner

    def forward_flops(self):
        return 2

    def forward(self, X, training=False, rng=None, mask=None):
        raise AssertionError("a summary never runs the layers")

    def backward(self, dY, context, need_input_grad=True):
        raise AssertionError("a summary never runs the layers")


def test_containers_are_walked_without_double_counting():
    head = build_layers([Dense(5, name="head")], (3,), np.float32)
    layers = head + [ToyContainerLayer(kind="Pathways")]
    s = summarize(layers, 10, np.float32)
    assert [(r["name"], r["depth"]) for r in s.rows] == [
        ("head", 0), ("toy", 0), ("inner_a", 1), ("inner_b", 1)]
    assert [r["type"] for r in s.rows] == ["Dense", "Pathways", "Dense", "Dense"]
    assert [r["params"] for r in s.rows] == [3 * 5 + 5, 2, 5 * 4 + 4, 4 * 2 + 2]
    assert [r["flops"] for r in s.rows] == [2 * 3 * 5 + 5, 2, 2 * 5 * 4 + 4, 2 * 4 * 2 + 2]
    assert s.total_params == 20 + 2 + 24 + 10
    assert s.total_flops == 35 + 2 + 44 + 18
    assert s.total_activation_bytes == (5 + 2 + 4 + 2) * 10 * 4
    lines = str(s).splitlines()
    assert any(line.startswith("toy ") for line in lines)
    assert any(line.startswith("  inner_a ") for line in lines)
    assert any(line.startswith("  inner_b ") for line in lines)


def test_type_without_kind_is_class_name_without_layer():
    s = summarize([ToyContainerLayer()], 1, np.float32)
    assert s.rows[0]["type"] == "ToyContainer"


# ------------------------------------------------------- forward_flops by layer

def test_dense_on_sequences():
    # (steps=5, features=4): 5 rows of 4 inputs.
    assert flops(Dense(6, activation="tanh"), (5, 4)) == 5 * (2 * 4 * 6 + 6 + 6)
    assert flops(Dense(6), (5, 4)) == 5 * (2 * 4 * 6 + 6)
    assert flops(Dense(6, activation="linear", use_bias=False), (5, 4)) == 5 * 2 * 4 * 6
    assert flops(Dense(6, activation="softmax"), (4,)) == 2 * 4 * 6 + 6 + 6
    assert flops(Dense(3), (2, 5, 4)) == 2 * 5 * (2 * 4 * 3 + 3)
    s = summarize(build_layers([Dense(6)], (5, 4), np.float32), 2, np.float32)
    assert s.rows[0]["params"] == 4 * 6 + 6
    assert s.rows[0]["activation_bytes"] == 5 * 6 * 2 * 4


def test_conv1d_with_stride_and_dilation():
    # Length 11, kernel 3 dilated by 2 spans 5: (11 - 5) // 2 + 1 = 4 outputs.
    layer = one(Conv1D(3, 3, strides=2, dilation=2), (2, 11))
    assert layer.output_shape == (3, 4)
    assert layer.forward_flops() == 2 * 2 * 3 * 3 * 4 + 3 * 4
    # 'same' keeps ceil(11 / 2) = 6 outputs; no bias, linear.
    layer = one(Conv1D(3, 3, strides=2, dilation=2, padding="same", use_bias=False),
                (2, 11))
    assert layer.output_shape == (3, 6)
    assert layer.forward_flops() == 2 * 2 * 3 * 3 * 6
    # One channel without a channel axis, relu.
    assert flops(Conv1D(5, 4, activation="relu"), (10,)) == (
        2 * 1 * 4 * 5 * 7 + 5 * 7 + 5 * 7)


def test_conv2d_strided_padded():
    # (2, 7, 6) input, 3x2 kernel, strides (2, 1), padding ((1, 0), (2, 2)):
    # OH = (7 + 1 - 3) // 2 + 1 = 3, OW = (6 + 4 - 2) // 1 + 1 = 9.
    layer = one(Conv2D(4, (3, 2), strides=(2, 1), padding=((1, 0), (2, 2)),
                       activation="elu"), (2, 7, 6))
    assert layer.output_shape == (4, 3, 9)
    assert layer.forward_flops() == 2 * 2 * 3 * 2 * 4 * 3 * 9 + 4 * 3 * 9 + 4 * 3 * 9


def test_pooling_max_versus_avg():
    # 3x3 windows with stride 1 on 6x6: 4x4 outputs per channel.
    assert flops(MaxPool2D(3, strides=1), (3, 6, 6)) == 3 * 4 * 4 * 3 * 3
    assert flops(AvgPool2D(3, strides=1), (3, 6, 6)) == 3 * 4 * 4 * (3 * 3 + 1)
    assert flops(MaxPool2D(2), (6, 6)) == 3 * 3 * 2 * 2
    # Length 9, pool 3, stride 2: (9 - 3) // 2 + 1 = 4 outputs per channel.
    assert flops(MaxPool1D(3, strides=2), (2, 9)) == 2 * 4 * 3
    assert flops(AvgPool1D(3, strides=2), (2, 9)) == 2 * 4 * (3 + 1)


def test_global_pools():
    assert flops(GlobalMaxPool2D(), (3, 5, 4)) == 3 * 5 * 4
    assert flops(GlobalAvgPool2D(), (3, 5, 4)) == 3 * 5 * 4 + 3
    assert flops(GlobalMaxPool1D(), (3, 7)) == 3 * 7
    assert flops(GlobalAvgPool1D(), (3, 7)) == 3 * 7 + 3
    # channels_last: (steps, features) -> (features,)
    assert flops(GlobalMaxPool1D(data_format="channels_last"), (7, 3)) == 7 * 3
    assert flops(GlobalAvgPool1D(data_format="channels_last"), (7, 3)) == 7 * 3 + 3
    s = summarize(build_layers([GlobalAvgPool2D(), Dense(2)], (3, 5, 4), np.float32),
                  1, np.float32)
    assert s.rows[0]["type"] == "GlobalAvgPool"
    s = summarize(build_layers([GlobalMaxPool1D(data_format="channels_last")], (7, 3),
                               np.float32), 1, np.float32)
    assert s.rows[0]["type"] == "GlobalMaxPool"


def test_last_step_copies_one_step():
    assert flops(LastStep(), (7, 3)) == 0
    s = summarize(build_layers([LastStep(), Dense(2)], (7, 3), np.float32), 1,
                  np.float32)
    assert s.rows[0]["type"] == "LastStep" and s.rows[0]["output_shape"] == (3,)


def test_batch_normalization():
    assert flops(BatchNormalization(), (3, 4, 5)) == 2 * 3 * 4 * 5
    assert flops(BatchNormalization(axis=-1), (6, 4)) == 2 * 6 * 4
    s = summarize([one(BatchNormalization(axis=-1), (6, 4))], 1, np.float32)
    assert s.rows[0]["params"] == 2 * 4  # gamma and beta; running statistics aren't
    assert s.rows[0]["type"] == "BatchNormalization"
    s = summarize([one(BatchNormalization(center=False), (3, 4, 5))], 1, np.float32)
    assert s.rows[0]["params"] == 3


def test_attention_layers():
    # (steps T=5, features F=8), H=2 heads of dk=4 (features // heads), dv=3.
    T, F, H, dk, dv = 5, 8, 2, 4, 3
    assert flops(LayerNormalization(), (T, F)) == T * F * (6 + 2)  # + gamma, beta
    assert flops(LayerNormalization(center=False, scale=False), (T, F)) == T * F * 6
    projections = 2 * F * H * (2 * dk + dv) + 2 * H * dv * F
    per_pair = H * (2 * dk + 4 + 2 * dv)  # score, softmax's 4, weighted values
    assert flops(MultiHeadAttention(H, value_dim=dv), (T, F)) == (
        T * (projections + H * (2 * dk + dv) + F) + T * T * per_pair)
    assert flops(MultiHeadAttention(H, value_dim=dv, use_bias=False), (T, F)) == (
        T * projections + T * T * per_pair)
    assert flops(PositionalEmbedding(), (T, F)) == T * F
    assert flops(PositionalEmbedding("sinusoidal"), (T, F)) == T * F
    s = summarize([one(MultiHeadAttention(H, value_dim=dv), (T, F))], 1, np.float32)
    assert s.rows[0]["params"] == 2 * (F * H * dk + H * dk) + F * H * dv + H * dv + (
        H * dv * F + F)
    assert s.rows[0]["type"] == "MultiHeadAttention"
    # The block: its parts by themselves, and its two residual additions.
    s = summarize(build_layers([TransformerEncoderBlock(H, ff_units=6, name="enc")],
                               (T, F), np.float32), 2, np.float32)
    assert [(r["name"], r["type"], r["depth"]) for r in s.rows] == [
        ("enc", "TransformerEncoderBlock", 0), ("enc/attention", "MultiHeadAttention", 1),
        ("enc/norm1", "LayerNormalization", 1), ("enc/linear1", "Dense", 1),
        ("enc/linear2", "Dense", 1), ("enc/norm2", "LayerNormalization", 1)]
    assert s.rows[0]["flops"] == 2 * T * F
    assert s.total_flops == (2 * T * F + flops(MultiHeadAttention(H), (T, F))
                             + 2 * flops(LayerNormalization(), (T, F))
                             + flops(Dense(6, activation="relu"), (T, F))
                             + flops(Dense(F), (T, 6)))


def test_elementwise_and_free_layers():
    assert flops(Activation("sigmoid"), (3, 4)) == 3 * 4
    assert flops(Activation("linear"), (3, 4)) == 0
    assert flops(PReLU(), (3, 4)) == 2 * 3 * 4  # compare and multiply
    assert flops(Dropout(0.5), (3, 4)) == 0
    assert flops(Flatten(), (3, 4)) == 0
    assert flops(Reshape((4, 3)), (3, 4)) == 0
    assert flops(Masking(), (3, 4)) == 0
    assert flops(Embedding(10, 4), (6,)) == 0
    s = summarize(build_layers([Embedding(10, 4), Flatten(), Reshape((4, 6))], (6,),
                               np.float32), 1, np.float32)
    assert [r["type"] for r in s.rows] == ["Embedding", "Flatten", "Reshape"]
    assert s.rows[0]["params"] == 10 * 4


STEPS, FEATURES, UNITS = 6, 3, 4


def test_simple_rnn():
    # Per step: x W + h U as multiply-adds, bias, tanh.
    assert flops(SimpleRNN(UNITS), (STEPS, FEATURES)) == STEPS * (
        2 * (FEATURES + UNITS) * UNITS + UNITS + UNITS)
    assert flops(SimpleRNN(UNITS, activation="linear", use_bias=False),
                 (STEPS, FEATURES)) == STEPS * 2 * (FEATURES + UNITS) * UNITS


def test_lstm_by_hand():
    # 6 steps, 3 features, 4 units, 4 gate blocks of 4 units each.
    per_step = (
        2 * (3 + 4) * 16  # x W (3x16) + h U (4x16): 112 multiply-adds = 224
        + 16              # bias
        + 16              # sigmoid of i, f, o and tanh of g: one per gate value
        + 3 * 4           # c = f * c + i * g: a multiplication and a multiply-add
        + 4               # tanh(c)
        + 4               # h = o * tanh(c)
    )
    assert per_step == 276
    assert flops(LSTM(4), (6, 3)) == 6 * 276
    assert flops(LSTM(4, return_sequences=True, go_backwards=True), (6, 3)) == 6 * 276
    layer = one(LSTM(4), (6, 3))
    assert sum(math.prod(s) for s in layer.param_shapes.values()) == 3 * 16 + 4 * 16 + 16


def test_gru():
    G = 3
    per_step = (2 * (FEATURES + UNITS) * G * UNITS
                + 2 * G * UNITS      # bias and recurrent bias
                + G * UNITS          # sigmoid of r, z; tanh of n
                + 2 * UNITS          # x W_n + r * (h U_n + b_hn)
                + 4 * UNITS)         # (1 - z) * n + z * h
    assert flops(GRU(UNITS), (STEPS, FEATURES)) == STEPS * per_step
    assert flops(GRU(UNITS, use_bias=False), (STEPS, FEATURES)) == STEPS * (
        per_step - 2 * G * UNITS)
    # Linear gates: no gate activations; the candidate's tanh stays.
    assert flops(GRU(UNITS, recurrent_activation="linear"), (STEPS, FEATURES)) == STEPS * (
        per_step - 2 * UNITS)
    s = summarize([one(GRU(UNITS), (STEPS, FEATURES))], 1, np.float32)
    assert s.rows[0]["type"] == "GRU"
    assert s.rows[0]["params"] == FEATURES * 12 + UNITS * 12 + 12 + 12


@pytest.mark.parametrize("merge_mode, merge_ops", [
    ("concat", 0), ("sum", 1), ("mul", 1), ("ave", 2)])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional(merge_mode, merge_ops, return_sequences):
    inner = LSTM(UNITS, return_sequences=return_sequences)
    one_way = flops(inner, (STEPS, FEATURES))
    layer = one(Bidirectional(inner, merge_mode=merge_mode), (STEPS, FEATURES))
    merged = STEPS * UNITS if return_sequences else UNITS
    assert layer.forward_flops() == 2 * one_way + merge_ops * merged
    s = summarize([layer], 1, np.float32)
    single = one(inner, (STEPS, FEATURES))
    assert s.rows[0]["params"] == 2 * sum(math.prod(v)
                                          for v in single.param_shapes.values())
    assert len(s.rows) == 1  # the halves are part of the layer, not rows


def test_recurrent_net_totals():
    layers = build_layers([Embedding(50, 8), Bidirectional(SimpleRNN(5)), Dense(2)],
                          (7,), np.float32)
    s = summarize(layers, 16, np.float32)
    rnn = 7 * (2 * (8 + 5) * 5 + 5 + 5)
    assert [r["flops"] for r in s.rows] == [0, 2 * rnn, 2 * 10 * 2 + 2]
    assert s.total_params == 50 * 8 + 2 * (8 * 5 + 5 * 5 + 5) + 10 * 2 + 2
    assert [r["type"] for r in s.rows] == ["Embedding", "Bidirectional", "Dense"]
    assert s.total_activation_bytes == (7 * 8 + 10 + 2) * 16 * 4


# ------------------------------------------ agreement with independent counts

def _einsum_flops(subscripts, *operands):
    """numpy's own count for the contraction (a multiply-add as 2, like ours)."""
    text = np.einsum_path(subscripts, *operands, optimize=False)[1]
    return float(re.search(r"Naive FLOP count:\s*([0-9.e+]+)", text).group(1))


def _bound(specs, input_shape, seed=0):
    net = Network(build_layers(specs, input_shape, np.float64), np.float64)
    net.initialize(np.random.RandomState(seed))
    layer = net.layers[0]
    if "bias" in layer.params:
        layer.params["bias"][...] = np.random.RandomState(seed + 1).randn(
            *layer.param_shapes["bias"])
    return layer


def test_dense_flops_agree_with_einsum():
    layer = _bound([Dense(5, activation="relu")], (3, 4))
    X = np.random.RandomState(2).randn(3, 4)
    W, b = layer.params["kernel"], layer.params["bias"]
    Z = np.einsum("si,iu->su", X, W)
    Y = np.maximum(Z + b, 0)
    np.testing.assert_allclose(layer.forward(X[None])[0], Y, rtol=1e-12, atol=1e-12)
    # The products as counted by numpy, then one bias add and one relu per output.
    independent = _einsum_flops("si,iu->su", X, W) + Z.size + Z.size
    assert layer.forward_flops() == pytest.approx(independent, rel=5e-4)
    assert layer.forward_flops() == 2 * math.prod(X.shape + W.shape[1:]) + 2 * Z.size


def test_conv2d_flops_agree_with_einsum():
    kh, kw, (sh, sw), (dh, dw) = 3, 2, (2, 1), (1, 2)
    pad = ((1, 2), (0, 1))
    layer = _bound([Conv2D(3, (kh, kw), strides=(sh, sw), dilation=(dh, dw), padding=pad,
                           activation="relu")], (2, 7, 6))
    X = np.random.RandomState(3).randn(2, 7, 6)
    K, b = layer.params["kernel"], layer.params["bias"]
    # Windows over the padded planes, strided and dilated by hand.
    Xp = np.pad(X, ((0, 0),) + pad)
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    windows = sliding_window_view(Xp, span, axis=(1, 2))[:, ::sh, ::sw, ::dh, ::dw]
    Z = np.einsum("cyxij,fcij->fyx", windows, K)
    Y = np.maximum(Z + b[:, None, None], 0)
    np.testing.assert_allclose(layer.forward(X[None])[0], Y, rtol=1e-12, atol=1e-12)
    independent = _einsum_flops("cyxij,fcij->fyx", windows, K) + Z.size + Z.size
    assert layer.forward_flops() == pytest.approx(independent, rel=5e-4)
    # Exactly: twice the contraction's index space, plus bias and relu.
    assert layer.forward_flops() == 2 * math.prod(windows.shape) * K.shape[0] + 2 * Z.size


# -- the estimators' summary() ---------------------------------------------------

def _digits_net(**params):
    from skdl import NNClassifier

    return NNClassifier([Conv2D(4, 3, padding="same", activation="relu", name="conv"),
                         MaxPool2D(2), Flatten(), Dense(8, activation="relu")],
                        input_shape=(1, 8, 8), batch_size=32, random_state=0, **params)


def test_estimator_summary_before_and_after_fitting():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    est = _digits_net(max_iter=1)
    before = est.summary(n_outputs=10, calibrate=False)
    assert not hasattr(est, "network_")
    conv, pool, dense, out = (2 * 9 * 4 * 64 + 4 * 64 + 4 * 64, 4 * 16 * 4,
                              2 * 64 * 8 + 8 + 8, 2 * 8 * 10 + 10)
    assert [r["flops"] for r in before.rows] == [conv, pool, 0, dense, out]
    assert [r["name"] for r in before.rows] == ["conv", "max_pool2d", "flatten",
                                                "dense", "output"]
    assert before.batch_size == 32 and before.seconds_per_batch is None
    est.fit(X / 16, y)
    after = est.summary(calibrate=False)
    assert after.rows == before.rows
    assert after.total_params == est.network_.params.size == 4 * 9 + 4 + 64 * 8 + 8 + 90


def test_summary_calibration_leaves_the_model_alone():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    est = _digits_net(max_iter=1).fit(X / 16, y)
    proba = est.predict_proba(X / 16)
    summary = est.summary(n_samples=1797)
    assert summary.seconds_per_batch > 0
    assert summary.epoch_seconds() == pytest.approx(57 * summary.seconds_per_batch)
    assert "estimated time per epoch for 1797 samples" in str(summary)
    np.testing.assert_array_equal(est.predict_proba(X / 16), proba)


def test_summary_of_side_inputs_and_auto_batch():
    from skdl import MergeInput, NNRegressor

    est = NNRegressor([Flatten(), MergeInput("meta", layers=[Dense(2, name="m")])],
                      input_shape={"image": (1, 3, 3), "meta": (4,)})
    summary = est.summary(n_samples=100, n_outputs=1)
    assert summary.batch_size == 100  # 'auto' is min(256, n_samples)
    names = [r["name"] for r in summary.rows]
    assert names == ["flatten", "merge_input", "m", "output"]
    assert summary.rows[1]["output_shape"] == (11,) and summary.rows[2]["depth"] == 1
    assert summary.total_params == 4 * 2 + 2 + 11 + 1


@pytest.mark.parametrize("params, kwargs, match", [
    ({}, {"n_outputs": 3}, "needs input_shape"),
    ({"input_shape": (4,)}, {}, "needs n_outputs"),
    ({"input_shape": (1, -1)}, {"n_outputs": 2}, "has a -1"),
])
def test_summary_before_fitting_errors(params, kwargs, match):
    from skdl import NNRegressor

    with pytest.raises(ValueError, match=match):
        NNRegressor(**params).summary(calibrate=False, **kwargs)
