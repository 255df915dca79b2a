"""Composite blocks: what they build, that they compute what their parts
do, gradients, and their hyper-parameters searched by the block's name."""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skdl import NNClassifier
from skdl._network import Network, build_layers
from skdl.layers import (
    Activation,
    AvgPool1D,
    BatchNormalization,
    Conv1D,
    Conv2D,
    ConvBlock1D,
    ConvBlock2D,
    Dense,
    Dropout,
    Flatten,
    HiddenBlock,
    MaxPool2D,
)

from test_merge import check_network_gradients


def _parts(block, input_shape):
    (layer,) = build_layers([block], input_shape, np.float64)
    return [(sub.name, type(sub).__name__, sub.output_shape) for sub in layer.sublayers()]


def test_conv_block_parts_and_names():
    assert _parts(ConvBlock2D(4, name="b"), (1, 8, 8)) == [
        ("b/conv", "ConvLayer", (4, 8, 8)), ("b/pool", "PoolLayer", (4, 4, 4))]
    assert _parts(ConvBlock2D(4, batch_norm=True, pool=None, strides=2), (2, 7, 7)) == [
        ("conv_block2d/conv", "ConvLayer", (4, 4, 4)),
        ("conv_block2d/batch_norm", "BatchNormalizationLayer", (4, 4, 4)),
        ("conv_block2d/activation", "ActivationLayer", (4, 4, 4))]
    assert _parts(ConvBlock1D(3, kernel_size=5, padding="valid", pool="avg"), (2, 12)) == [
        ("conv_block1d/conv", "ConvLayer", (3, 8)), ("conv_block1d/pool", "PoolLayer", (3, 4))]


def test_hidden_block_parts_and_names():
    assert _parts(HiddenBlock(5, batch_norm=True, dropout=0.25, name="h"), (3,)) == [
        ("h/dense", "DenseLayer", (5,)), ("h/batch_norm", "BatchNormalizationLayer", (5,)),
        ("h/activation", "ActivationLayer", (5,)), ("h/dropout", "DropoutLayer", (5,))]
    assert _parts(HiddenBlock(5, activation=None), (7, 3)) == [
        ("hidden_block/dense", "DenseLayer", (7, 5))]


def _same_outputs(block, plain, X, training=False):
    """The block computes what the plain layers do, given the same weights."""
    a = Network(build_layers([block], X.shape[1:], np.float64), np.float64)
    b = Network(build_layers(plain, X.shape[1:], np.float64), np.float64)
    a.initialize(np.random.RandomState(0))
    b.params[...] = a.params
    b.buffers[...] = a.buffers
    kwargs = dict(training=training, rng=np.random.default_rng(3))
    assert_allclose(a.forward(X, **kwargs),
                    b.forward(X, training=training, rng=np.random.default_rng(3)),
                    rtol=1e-12)


def test_blocks_compute_what_their_parts_do():
    X = np.random.RandomState(0).randn(6, 2, 6, 6)
    _same_outputs(ConvBlock2D(3, activation="elu"),
                  [Conv2D(3, 3, padding="same", activation="elu"), MaxPool2D(2)], X)
    _same_outputs(ConvBlock2D(3, batch_norm=True, activation="tanh", pool=None),
                  [Conv2D(3, 3, padding="same", use_bias=False), BatchNormalization(),
                   Activation("tanh")], X, training=True)
    signal = np.random.RandomState(1).randn(6, 2, 10)
    _same_outputs(ConvBlock1D(3, pool="avg", pool_size=3, pool_strides=1),
                  [Conv1D(3, 3, padding="same", activation="relu"),
                   AvgPool1D(3, strides=1)], signal)
    flat = np.random.RandomState(2).randn(6, 4)
    _same_outputs(HiddenBlock(5, batch_norm=True, dropout=0.5),
                  [Dense(5, use_bias=False), BatchNormalization(axis=-1),
                   Activation("relu"), Dropout(0.5)], flat, training=True)


def test_block_gradients():
    X = np.random.RandomState(0).randn(4, 2, 4, 4)
    check_network_gradients([ConvBlock2D(2, activation="tanh", pool="avg"), Flatten(),
                             HiddenBlock(3, activation="tanh")], X)
    check_network_gradients([ConvBlock2D(2, batch_norm=True, activation="tanh"),
                             Flatten(), HiddenBlock(3, batch_norm=True, dropout=0.5)],
                            X, training=True, sample_weight=np.array([1.0, 2, 0, 1]))


@pytest.mark.parametrize("block, match", [
    (ConvBlock2D(0), "filters"),
    (ConvBlock2D(2, pool="min"), "pool"),
    (HiddenBlock(3, dropout=1.0), "dropout"),
    (ConvBlock2D(2, kernel_size=9, padding="valid"), "kernel"),
])
def test_bad_blocks_raise(block, match):
    with pytest.raises(ValueError, match=match):
        build_layers([block], (1, 6, 6), np.float64)


def test_block_hyper_parameters_by_the_block_name():
    est = NNClassifier([ConvBlock2D(4, name="features"), Flatten(), HiddenBlock(8)],
                       input_shape=(1, 6, 6), max_iter=1, random_state=0)
    est.set_params(layers__features__filters=6, layers__hidden_block__batch_norm=True)
    rng = np.random.RandomState(0)
    est.fit(rng.rand(20, 36), rng.randint(0, 2, 20))
    weights = est.get_weights()
    assert weights["features/conv"]["kernel"].shape == (6, 1, 3, 3)
    assert "bias" not in weights["hidden_block/dense"]
    assert set(weights["hidden_block/batch_norm"]) == {
        "gamma", "beta", "moving_mean", "moving_variance", "n_updates"}
    assert clone(est).get_params()["layers__features__filters"] == 6


def test_summary_counts_a_blocks_output_once():
    from skdl._summary import summarize

    layers = build_layers([ConvBlock2D(4, name="b")], (1, 8, 8), np.float32)
    summary = summarize(layers, batch_size=2, dtype=np.float32)
    rows = {row["name"]: row for row in summary.rows}
    assert rows["b"]["activation_bytes"] == 0
    assert rows["b/pool"]["activation_bytes"] == 4 * 4 * 4 * 2 * 4
    assert summary.total_activation_bytes == (4 * 8 * 8 + 4 * 4 * 4) * 2 * 4
    assert summary.total_flops == (2 * 9 * 4 * 64 + 4 * 64 + 4 * 64) + 4 * 16 * 4


@pytest.mark.parametrize("block, input_shape", [
    (HiddenBlock(4, batch_norm=True, momentum=0.5, epsilon=0.25), (3,)),
    (ConvBlock1D(4, batch_norm=True, momentum=0.5, epsilon=0.25), (2, 6)),
    (ConvBlock2D(4, batch_norm=True, momentum=0.5, epsilon=0.25), (2, 4, 4)),
])
def test_block_momentum_and_epsilon_reach_its_batch_norm(block, input_shape):
    (layer,) = build_layers([block], input_shape, np.float64)
    bn = layer.sublayers()[1]
    assert (bn.momentum, bn.epsilon) == (0.5, 0.25)
    net = Network([layer], np.float64)
    net.initialize(np.random.RandomState(0))
    rng = np.random.RandomState(1)
    X1, X2 = rng.randn(5, *input_shape), rng.randn(5, *input_shape) + 2
    net.forward(X1, training=True)
    mean1 = bn.buffers["moving_mean"].copy()
    net.forward(X2, training=True)
    Z2 = layer.sublayers()[0].forward(X2)  # the batch norm's input
    axes = (0,) + tuple(range(2, Z2.ndim)) if Z2.ndim > 2 else (0,)
    # The bias-corrected average of two batches at momentum 0.5: 1/3 and 2/3.
    assert_allclose(bn.buffers["moving_mean"], (mean1 + 2 * Z2.mean(axis=axes)) / 3,
                    rtol=1e-12)
    # epsilon: a running variance of 0 scales the normalized input by 1/sqrt(0.25).
    bn.buffers["moving_variance"][...] = 0
    Y = bn.forward(Z2)
    shape = (1, -1) + (1,) * (Z2.ndim - 2)
    assert_allclose(Y, (Z2 - bn.buffers["moving_mean"].reshape(shape)) / 0.5
                    * bn.params["gamma"].reshape(shape) + bn.params["beta"].reshape(shape),
                    rtol=1e-12)


@pytest.mark.parametrize("Block", [HiddenBlock, ConvBlock1D, ConvBlock2D])
def test_block_momentum_and_epsilon_are_checked(Block):
    for bad in (dict(momentum=1.0), dict(epsilon=0.0)):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            build_layers([Block(4, batch_norm=True, **bad)],
                         (3,) if Block is HiddenBlock else (2, 6, 6)[:Block.rank + 1],
                         np.float64)
