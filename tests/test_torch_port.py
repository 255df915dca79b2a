"""PyTorch as an independent oracle: every layer family, activation and loss,
and whole training runs, against PyTorch in float64.

Each layer test builds a PyTorch module, ports its parameters into an skdl
network by the layouts the README documents (``Dense`` kernel = ``Linear``
weight.T, convolution kernels as they are, recurrent kernels transposed,
LSTM and SimpleRNN bias = ``bias_ih + bias_hh``...), runs the network's
training forward pass and backward pass, and compares the output, the input
gradient and every parameter gradient with PyTorch's autograd. PyTorch is not
a dependency of skdl: without it this module is skipped, except where
``SKDL_REQUIRE_TORCH=1`` asks for it (CI's PyTorch step).
"""
import math
import os
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from _networks import initialized_network
from skdl import (
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
    Embedding,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    LayerNormalization,
    MaxPool1D,
    MaxPool2D,
    MultiHeadAttention,
    NNClassifier,
    Pathways,
    PReLU,
    SimpleRNN,
    TransformerEncoderBlock,
    _ops,
)
from skdl._losses import RegressionLoss, SigmoidCrossEntropy, SoftmaxCrossEntropy
from skdl.callbacks import LambdaCallback
from skdl.layers._base import GradientContext, backward_chain
from skdl.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop

# Without PyTorch this module is skipped (a fresh CI environment has none
# during the main run, `pytest`); CI's own step for these tests
# installs it and sets SKDL_REQUIRE_TORCH=1, so that a missing PyTorch fails
# there instead of skipping unseen. The variable, not CI=true, decides:
# CI=true is also set during the main run, where PyTorch may be absent.
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    if os.environ.get("SKDL_REQUIRE_TORCH") == "1":
        pytest.fail("SKDL_REQUIRE_TORCH=1 but PyTorch is not installed: the PyTorch port "
                    "tests cannot run (install it with `pip install torch==2.13.0`).",
                    pytrace=False)
    pytest.skip("PyTorch is not installed (not a dependency of skdl); "
                "`pip install torch==2.13.0` to run the port tests.",
                allow_module_level=True)

pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread():
    """The arrays here are tiny; PyTorch's OpenMP threads, spinning after each
    of its parallel regions, would compete with skdl's kernels for the cores
    (on two loaded cores the module took ten times as long). PyTorch's
    libgomp is the one skdl's kernels use (one soname, loaded once), so the
    limit is set for this module only and restored after it: set at import,
    it held every later test of the run to one thread."""
    with threadpool_limits(1):
        yield


# Both sides compute in float64; only the order of sums differs.
TOL = dict(rtol=1e-10, atol=1e-12)


def _parameters(module, gradients=False):
    """A module's parameters (or their gradients) as numpy arrays by name."""
    if module is None:
        return {}
    return {name: (p.grad if gradients else p.detach()).numpy()
            for name, p in module.named_parameters()}


def _check_port(specs, X, module, forward, layout, seed=0, inference=True):
    """Compare an skdl network with its PyTorch twin, forward and backward.

    Parameters
    ----------
    specs : list of LayerSpec
        The skdl network, built on samples of shape ``X.shape[1:]``.
    X : ndarray of shape (n, *sample_shape), float64
        The batch (token indices as floats for an embedding).
    module : torch.nn.Module or None
        Holds every PyTorch parameter ``forward`` uses.
    forward : callable
        The PyTorch computation: float64 tensor like ``X`` -> output tensor.
    layout : callable
        ``{torch name: ndarray} -> {skdl layer: {skdl param: [ndarray, ...]}}``:
        each skdl parameter is the sum of the listed (transposed)
        PyTorch parameters, and its gradient equals each one's gradient.
        Applied to the parameters to port them, then to their gradients.
    seed : int
        Draws the output gradient.
    inference : bool
        Also compare the inference forward pass (a separate code path in
        recurrent layers) with the same output; False for layers whose
        inference output differs (batch normalization's running statistics).

    Returns
    -------
    Network
        The skdl network after the training forward and backward pass.
    """
    weights = {layer: {key: sum(parts) for key, parts in params.items()}
               for layer, params in layout(_parameters(module)).items()}
    net = initialized_network(specs, X.shape[1:])
    net.set_weights(weights)
    Y = net.forward(X, training=True)
    dY = np.random.RandomState(seed).randn(*Y.shape)
    dX = backward_chain(net.layers, dY, GradientContext(None, 1.0, np.float64),
                        need_input_grad=True)

    x = torch.tensor(X, requires_grad=True)
    y = forward(x)
    y.backward(torch.from_numpy(dY))
    assert_allclose(Y, y.detach().numpy(), **TOL, err_msg="output")
    if inference:
        assert_allclose(net.forward(X), y.detach().numpy(), **TOL,
                        err_msg="inference output")
    # Token indices are not differentiable: no gradient reaches them.
    expected_dX = np.zeros_like(X) if x.grad is None else x.grad.numpy()
    assert_allclose(dX, expected_dX, **TOL, err_msg="input gradient")

    expected = layout(_parameters(module, gradients=True))
    trained = {layer.name: set(layer.grads) for layer in net.all_layers if layer.grads}
    assert trained == {layer: set(params) for layer, params in expected.items()}
    for layer, params in expected.items():
        got = net.find_layer(layer).grads
        for key, parts in params.items():
            for part in parts:
                assert_allclose(got[key], part, **TOL, err_msg=f"gradient of {layer}/{key}")
    return net


# -- dense, activations ---------------------------------------------------------
def _dense_layout(named, layer="dense", prefix=""):
    params = {"kernel": [named[f"{prefix}weight"].T]}
    if f"{prefix}bias" in named:
        params["bias"] = [named[f"{prefix}bias"]]
    return {layer: params}


@pytest.mark.parametrize("activation, torch_activation", [
    (None, lambda z: z), ("relu", F.relu), ("tanh", torch.tanh),
    ("softmax", lambda z: F.softmax(z, dim=-1))])
@pytest.mark.parametrize("sample_shape, use_bias", [((4,), True), ((4,), False),
                                                    ((3, 4), True)])
def test_dense(activation, torch_activation, sample_shape, use_bias):
    # On sequences (n, steps, features) Dense acts on each step, as Linear does.
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 5, bias=use_bias, dtype=torch.float64)
    X = np.random.RandomState(1).randn(6, *sample_shape)
    _check_port([Dense(5, activation=activation, use_bias=use_bias, name="dense")], X,
                linear, lambda x: torch_activation(linear(x)), _dense_layout)


TORCH_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,  # slope 0.01 on both sides
    "elu": F.elu,  # alpha 1 on both sides
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "softmax": lambda z: F.softmax(z, dim=-1),
}
# PyTorch has no twin of these (x / (1 + |x|) scaled and shifted variants).
WITHOUT_TORCH_TWIN = {"elliot", "symmetric_elliot"}


def test_every_activation_is_ported_or_known_to_have_no_twin():
    assert set(TORCH_ACTIVATIONS) | WITHOUT_TORCH_TWIN == set(_ops.ACTIVATIONS)
    assert not set(TORCH_ACTIVATIONS) & WITHOUT_TORCH_TWIN


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
def test_activation(name):
    # (n, 3, 4): softmax acts on the last axis; values up to about +-9.
    X = np.random.RandomState(2).randn(5, 3, 4) * 3
    _check_port([Activation(name)], X, None, TORCH_ACTIVATIONS[name], lambda named: {})


@pytest.mark.parametrize("name, alpha, torch_activation", [
    ("leaky_relu", 0.3, lambda z: F.leaky_relu(z, 0.3)),
    ("elu", 2.0, lambda z: F.elu(z, 2.0))])
def test_activation_alpha(name, alpha, torch_activation):
    X = np.random.RandomState(3).randn(5, 6) * 3
    _check_port([Activation(name, alpha=alpha)], X, None, torch_activation,
                lambda named: {})


# -- convolutions and pooling ---------------------------------------------------
def _conv_layout(named):
    return {"conv": {"kernel": [named["weight"]], "bias": [named["bias"]]}}


# (kernel, strides, padding, dilation, the padding as F.pad's (left, right,
# top, bottom)): 'same' puts the odd pixel after, as TensorFlow does.
CONV2D_CASES = [
    (3, 1, "valid", 1, (0, 0, 0, 0)),
    ((3, 2), (2, 1), "same", 1, (0, 1, 1, 1)),   # H 7 -> 4, W 8 -> 8
    (3, 2, "same", 1, (0, 1, 1, 1)),             # H 7 -> 4, W 8 -> 4
    (3, 1, 1, 2, (1, 1, 1, 1)),                  # dilated
    (2, (1, 3), ((0, 1), (2, 0)), 1, (2, 0, 0, 1)),
]


@pytest.mark.parametrize("kernel, strides, padding, dilation, pads", CONV2D_CASES)
def test_conv2d(kernel, strides, padding, dilation, pads):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, kernel, stride=strides, dilation=dilation,
                           dtype=torch.float64)
    X = np.random.RandomState(4).randn(4, 2, 7, 8)
    spec = Conv2D(3, kernel, strides=strides, padding=padding, dilation=dilation,
                  activation="relu", name="conv")
    _check_port([spec], X, conv, lambda x: F.relu(conv(F.pad(x, pads))), _conv_layout)


# (kernel, strides, padding, dilation, (left, right)).
CONV1D_CASES = [(3, 1, "valid", 1, (0, 0)), (4, 2, "same", 1, (1, 2)),
                (3, 3, "same", 2, (1, 1)), (2, 1, [(3, 1)], 3, (3, 1))]


@pytest.mark.parametrize("kernel, strides, padding, dilation, pads", CONV1D_CASES)
def test_conv1d(kernel, strides, padding, dilation, pads):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(2, 3, kernel, stride=strides, dilation=dilation,
                           dtype=torch.float64)
    X = np.random.RandomState(5).randn(4, 2, 9)
    spec = Conv1D(3, kernel, strides=strides, padding=padding, dilation=dilation,
                  name="conv")
    _check_port([spec], X, conv, lambda x: conv(F.pad(x, pads)), _conv_layout)


@pytest.mark.parametrize("kernel, strides, padding, dilation, pads", CONV1D_CASES)
def test_conv1d_channels_last(kernel, strides, padding, dilation, pads):
    # (steps, features) samples: PyTorch's Conv1d on the transposed batch,
    # transposed back to (out_steps, filters).
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(2, 3, kernel, stride=strides, dilation=dilation,
                           dtype=torch.float64)
    X = np.random.RandomState(5).randn(4, 9, 2)
    spec = Conv1D(3, kernel, strides=strides, padding=padding, dilation=dilation,
                  activation="tanh", name="conv", data_format="channels_last")
    _check_port([spec], X, conv,
                lambda x: torch.tanh(conv(F.pad(x.transpose(1, 2), pads))).transpose(1, 2),
                _conv_layout)


def _torch_pool(kind, rank, pool, strides, pads):
    """PyTorch pooling with skdl's padding rules: padding never wins a
    maximum (-inf) and is left out of a mean (sum over padded windows divided
    by their count of real values)."""
    max_pool, avg_pool = (F.max_pool2d, F.avg_pool2d) if rank == 2 else (F.max_pool1d,
                                                                         F.avg_pool1d)
    if kind == "max":
        return lambda x: max_pool(F.pad(x, pads, value=-math.inf), pool, strides)

    def average(x):
        counts = avg_pool(F.pad(torch.ones_like(x), pads), pool, strides)
        return avg_pool(F.pad(x, pads), pool, strides) / counts
    return average


# (pool, strides, padding, F.pad's padding) on (7, 8) images.
POOL2D_CASES = [
    (2, None, "valid", (0, 0, 0, 0)),
    (3, 2, "same", (0, 1, 1, 1)),
    (3, 1, 1, (1, 1, 1, 1)),                  # overlapping windows
    ((2, 3), (1, 2), "valid", (0, 0, 0, 0)),
    (2, 2, ((1, 0), (0, 1)), (0, 1, 1, 0)),
]


@pytest.mark.parametrize("kind, spec_class", [("max", MaxPool2D), ("avg", AvgPool2D)])
@pytest.mark.parametrize("pool, strides, padding, pads", POOL2D_CASES)
def test_pool2d(kind, spec_class, pool, strides, padding, pads):
    X = np.random.RandomState(6).randn(3, 2, 7, 8)
    torch_strides = pool if strides is None else strides
    _check_port([spec_class(pool, strides, padding)], X, None,
                _torch_pool(kind, 2, pool, torch_strides, pads), lambda named: {})


# (pool, strides, padding, F.pad's padding) on signals of length 9.
POOL1D_CASES = [(2, None, "valid", (0, 0)), (3, 2, "same", (1, 1)), (4, 3, "same", (0, 1)),
                (3, 1, 2, (2, 2))]


@pytest.mark.parametrize("kind, spec_class", [("max", MaxPool1D), ("avg", AvgPool1D)])
@pytest.mark.parametrize("pool, strides, padding, pads", POOL1D_CASES)
def test_pool1d(kind, spec_class, pool, strides, padding, pads):
    X = np.random.RandomState(7).randn(3, 2, 9)
    torch_strides = pool if strides is None else strides
    _check_port([spec_class(pool, strides, padding)], X, None,
                _torch_pool(kind, 1, pool, torch_strides, pads), lambda named: {})


@pytest.mark.parametrize("kind, spec_class", [("max", MaxPool1D), ("avg", AvgPool1D)])
@pytest.mark.parametrize("pool, strides, padding, pads", POOL1D_CASES)
def test_pool1d_channels_last(kind, spec_class, pool, strides, padding, pads):
    X = np.random.RandomState(7).randn(3, 9, 2)
    torch_strides = pool if strides is None else strides
    pool_cf = _torch_pool(kind, 1, pool, torch_strides, pads)
    _check_port([spec_class(pool, strides, padding, data_format="channels_last")], X, None,
                lambda x: pool_cf(x.transpose(1, 2)).transpose(1, 2), lambda named: {})


@pytest.mark.parametrize("spec, sample_shape, torch_pool", [
    (GlobalMaxPool2D(), (3, 4, 5), lambda x: x.amax(dim=(2, 3))),
    (GlobalAvgPool2D(), (3, 4, 5), lambda x: x.mean(dim=(2, 3))),
    (GlobalMaxPool1D(), (3, 6), lambda x: x.amax(dim=2)),
    (GlobalAvgPool1D(), (3, 6), lambda x: x.mean(dim=2)),
    (GlobalMaxPool1D(data_format="channels_last"), (6, 3), lambda x: x.amax(dim=1)),
    (GlobalAvgPool1D(data_format="channels_last"), (6, 3), lambda x: x.mean(dim=1)),
], ids=["max2d", "avg2d", "max1d", "avg1d", "max1d_steps", "avg1d_steps"])
def test_global_pool(spec, sample_shape, torch_pool):
    X = np.random.RandomState(8).randn(4, *sample_shape)
    _check_port([spec], X, None, torch_pool, lambda named: {})


# -- batch normalization, PReLU -------------------------------------------------
def _channels_second(module, axis):
    """``module`` (PyTorch's channel axis is 1) applied on skdl's ``axis``."""
    if axis == 1:
        return module
    return lambda x: module(x.transpose(1, -1)).transpose(1, -1)


BN_CASES = [((5,), 1, torch.nn.BatchNorm1d),        # features
            ((3, 4, 5), 1, torch.nn.BatchNorm2d),    # images
            ((6, 3), -1, torch.nn.BatchNorm1d)]      # steps x features


@pytest.mark.parametrize("sample_shape, axis, torch_bn", BN_CASES)
def test_batch_normalization_training(sample_shape, axis, torch_bn):
    # skdl (as Keras) weighs the old running value by momentum, PyTorch by
    # 1 - momentum: its momentum=0.01 is skdl's 0.99.
    torch.manual_seed(0)
    C = sample_shape[axis - 1 if axis > 0 else axis]
    bn = torch_bn(C, eps=1e-3, momentum=0.01, dtype=torch.float64)
    torch.nn.init.uniform_(bn.weight, 0.5, 1.5)
    torch.nn.init.uniform_(bn.bias, -0.5, 0.5)
    forward = _channels_second(bn, axis)
    X = np.random.RandomState(9).randn(8, *sample_shape) * 2 + 1
    net = _check_port([BatchNormalization(axis=axis, momentum=0.99, name="bn")], X, bn,
                      forward, lambda named: {"bn": {"gamma": [named["weight"]],
                                                     "beta": [named["bias"]]}},
                      inference=False)
    # A second batch: the running statistics follow both.
    X2 = np.random.RandomState(10).randn(8, *sample_shape) - 1
    net.forward(X2, training=True)
    with torch.no_grad():
        forward(torch.from_numpy(X2))
    buffers = net.get_weights()["bn"]
    # The documented differences: skdl's running statistics are bias-corrected
    # (divided by 1 - 0.99**2 after two batches, PyTorch's still hold 0.99**2
    # of their start, 0 and 1), and skdl updates the running variance with the
    # batch's biased variance, PyTorch with the unbiased one, N / (N - 1)
    # times larger for N values per channel.
    assert_array_equal(buffers["n_updates"], [2])
    decayed_start = 0.99 ** 2
    assert_allclose(buffers["moving_mean"] * (1 - decayed_start),
                    bn.running_mean.numpy(), **TOL)
    N = X.size // C
    assert_allclose(buffers["moving_variance"] * (1 - decayed_start) * N / (N - 1),
                    bn.running_var.numpy() - decayed_start, **TOL)


@pytest.mark.parametrize("sample_shape, axis, torch_bn", BN_CASES)
def test_batch_normalization_inference(sample_shape, axis, torch_bn):
    torch.manual_seed(0)
    C = sample_shape[axis - 1 if axis > 0 else axis]
    bn = torch_bn(C, eps=1e-3, dtype=torch.float64).eval()
    rng = np.random.RandomState(11)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.copy_(torch.from_numpy(rng.randn(C)))
        bn.running_var.copy_(torch.from_numpy(rng.uniform(0.2, 3.0, C)))
    net = initialized_network([BatchNormalization(axis=axis, name="bn")], sample_shape)
    net.set_weights({"bn": {"gamma": bn.weight.detach().numpy(),
                            "beta": bn.bias.detach().numpy(),
                            "moving_mean": bn.running_mean.numpy(),
                            "moving_variance": bn.running_var.numpy()}})
    X = rng.randn(5, *sample_shape)
    with torch.no_grad():
        expected = _channels_second(bn, axis)(torch.from_numpy(X)).numpy()
    assert_allclose(net.forward(X), expected, **TOL)


@pytest.mark.parametrize("sample_shape, axis", [((5,), 1), ((3, 4, 5), 1), ((6, 3), -1)])
def test_prelu(sample_shape, axis):
    torch.manual_seed(0)
    C = sample_shape[axis - 1 if axis > 0 else axis]
    prelu = torch.nn.PReLU(C, dtype=torch.float64)
    torch.nn.init.uniform_(prelu.weight, -0.5, 0.8)
    X = np.random.RandomState(12).randn(6, *sample_shape)
    _check_port([PReLU(axis=axis, name="prelu")], X, prelu,
                _channels_second(prelu, axis),
                lambda named: {"prelu": {"alpha": [named["weight"]]}})


# -- embeddings and recurrent layers ---------------------------------------------
def test_embedding():
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(7, 3, dtype=torch.float64)
    tokens = np.random.RandomState(13).randint(0, 7, (5, 6)).astype(np.float64)
    tokens[0, :3] = 4  # a repeated index sums its gradients
    _check_port([Embedding(7, 3, name="embedding")], tokens, embedding,
                lambda x: embedding(x.long()),
                lambda named: {"embedding": {"embeddings": [named["weight"]]}})


def test_text_cnn():
    # Kim's sentence CNN: embedding, convolutions of widths 2 and 3 over the
    # steps (data_format=None after Embedding: channels-last), global max
    # pooling, concatenation, dense; PyTorch's Conv1d reads the embeddings
    # transposed, (dim, steps).
    torch.manual_seed(0)
    module = torch.nn.ModuleDict({
        "embedding": torch.nn.Embedding(9, 4, dtype=torch.float64),
        "conv2": torch.nn.Conv1d(4, 3, 2, dtype=torch.float64),
        "conv3": torch.nn.Conv1d(4, 5, 3, dtype=torch.float64),
        "dense": torch.nn.Linear(8, 2, dtype=torch.float64)})

    def forward(x):
        e = module["embedding"](x.long()).transpose(1, 2)
        pooled = [F.relu(module[c](e)).amax(dim=2) for c in ("conv2", "conv3")]
        return module["dense"](torch.cat(pooled, dim=1))

    def layout(named):
        return {"embedding": {"embeddings": [named["embedding.weight"]]},
                **{c: {"kernel": [named[f"{c}.weight"]], "bias": [named[f"{c}.bias"]]}
                   for c in ("conv2", "conv3")},
                **_dense_layout(named, "dense", "dense.")}

    specs = [Embedding(9, 4, name="embedding"),
             Pathways([[Conv1D(3, 2, activation="relu", name="conv2"), GlobalMaxPool1D()],
                       [Conv1D(5, 3, activation="relu", name="conv3"), GlobalMaxPool1D()]]),
             Dense(2, name="dense")]
    tokens = np.random.RandomState(19).randint(0, 9, (5, 7)).astype(np.float64)
    _check_port(specs, tokens, module, forward, layout)


TORCH_CELLS = {"simple": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
SKDL_CELLS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}


def _recurrent_layout(cell, named, prefix="", direction="", into=""):
    """skdl's recurrent parameters from PyTorch's (README, "Layers").

    ``prefix`` is the module's name in a container, ``direction`` PyTorch's
    ``_reverse`` suffix, ``into`` skdl's ``forward_``/``backward_`` prefix in
    a Bidirectional. SimpleRNN and LSTM have one bias, the sum of PyTorch's
    two; GRU keeps both (the hidden one sits inside the reset product).
    """
    def get(name):
        return named[f"{prefix}{name}_l0{direction}"]

    params = {"kernel": [get("weight_ih").T], "recurrent_kernel": [get("weight_hh").T]}
    if cell == "gru":
        params.update(bias=[get("bias_ih")], recurrent_bias=[get("bias_hh")])
    else:
        params["bias"] = [get("bias_ih"), get("bias_hh")]
    return {into + key: parts for key, parts in params.items()}


@pytest.mark.parametrize("cell", sorted(TORCH_CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_weights_port_from_pytorch(cell, return_sequences, go_backwards):
    # go_backwards reads the steps from the end and, with return_sequences,
    # outputs them in reading order (Keras): PyTorch on the flipped sequence.
    torch.manual_seed(0)
    module = TORCH_CELLS[cell](3, 4, batch_first=True, dtype=torch.float64)

    def forward(x):
        out = module(x.flip(1) if go_backwards else x)[0]
        return out if return_sequences else out[:, -1]

    X = np.random.RandomState(14).randn(5, 6, 3)
    spec = SKDL_CELLS[cell](4, return_sequences=return_sequences,
                            go_backwards=go_backwards, name="rnn")
    _check_port([spec], X, module, forward,
                lambda named: {"rnn": _recurrent_layout(cell, named)})


def test_simple_rnn_relu():
    torch.manual_seed(0)
    module = torch.nn.RNN(3, 4, nonlinearity="relu", batch_first=True, dtype=torch.float64)
    X = np.random.RandomState(15).randn(5, 6, 3)
    _check_port([SimpleRNN(4, activation="relu", return_sequences=True, name="rnn")], X,
                module, lambda x: module(x)[0],
                lambda named: {"rnn": _recurrent_layout("simple", named)})


MERGES = {"concat": lambda f, b: torch.cat([f, b], dim=-1), "sum": lambda f, b: f + b,
          "mul": lambda f, b: f * b, "ave": lambda f, b: (f + b) / 2}


@pytest.mark.parametrize("cell", sorted(TORCH_CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("merge_mode", sorted(MERGES))
def test_bidirectional(cell, return_sequences, merge_mode):
    # PyTorch's bidirectional output has the backward states in time order,
    # as skdl merges them; the last output of each direction is its h_n.
    torch.manual_seed(0)
    module = TORCH_CELLS[cell](3, 4, batch_first=True, bidirectional=True,
                               dtype=torch.float64)

    def forward(x):
        out, state = module(x)
        if return_sequences:
            return MERGES[merge_mode](out[..., :4], out[..., 4:])
        h_n = state[0] if cell == "lstm" else state
        return MERGES[merge_mode](h_n[0], h_n[1])

    def layout(named):
        return {"bi": {**_recurrent_layout(cell, named, into="forward_"),
                       **_recurrent_layout(cell, named, direction="_reverse",
                                           into="backward_")}}

    X = np.random.RandomState(16).randn(5, 6, 3)
    spec = Bidirectional(SKDL_CELLS[cell](4, return_sequences=return_sequences),
                         merge_mode=merge_mode, name="bi")
    _check_port([spec], X, module, forward, layout)


@pytest.mark.parametrize("cell", sorted(TORCH_CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_sequences_match_packed_sequences(cell, bidirectional):
    # Embedding(mask_zero=True) masks the padding after each sequence; the
    # recurrent layer's last output is then PyTorch's h_n of the packed
    # sequence, which stops at each sequence's length (and, backwards, starts
    # at its last real step).
    torch.manual_seed(0)
    module = torch.nn.ModuleDict({
        "embedding": torch.nn.Embedding(9, 3, dtype=torch.float64),
        "rnn": TORCH_CELLS[cell](3, 4, batch_first=True, bidirectional=bidirectional,
                                 dtype=torch.float64)})
    rng = np.random.RandomState(17)
    lengths = np.array([6, 2, 4, 1, 5])
    tokens = rng.randint(1, 9, (5, 6)).astype(np.float64)
    tokens[np.arange(6) >= lengths[:, None]] = 0

    def forward(x):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            module["embedding"](x.long()), torch.from_numpy(lengths), batch_first=True,
            enforce_sorted=False)
        state = module["rnn"](packed)[1]
        h_n = state[0] if cell == "lstm" else state
        return torch.cat([h_n[0], h_n[1]], dim=-1) if bidirectional else h_n[0]

    def layout(named):
        rnn = ({**_recurrent_layout(cell, named, "rnn.", into="forward_"),
                **_recurrent_layout(cell, named, "rnn.", "_reverse", into="backward_")}
               if bidirectional else _recurrent_layout(cell, named, "rnn."))
        return {"embedding": {"embeddings": [named["embedding.weight"]]}, "rnn": rnn}

    recurrent = SKDL_CELLS[cell](4)
    specs = [Embedding(9, 3, mask_zero=True, name="embedding"),
             Bidirectional(recurrent, name="rnn") if bidirectional
             else recurrent.set_params(name="rnn")]
    _check_port(specs, tokens, module, forward, layout)


@pytest.mark.parametrize("cell, state", [("simple", "h"), ("gru", "h"), ("lstm", "h"),
                                         ("lstm", "hc")])
def test_initial_state_from_an_encoder(cell, state):
    # Encoder -> decoder state passing: PyTorch's module(x, h0) (an LSTM's
    # (h0, c0)) from the encoder's h_n (and c_n), and autograd through both.
    # skdl: two branches of a Pathways reading the same sequence, the second
    # starting from the first's output (LSTM(return_state=True): h and c).
    torch.manual_seed(0)
    module = torch.nn.ModuleDict({
        name: TORCH_CELLS[cell](3, 4, batch_first=True, dtype=torch.float64)
        for name in ("enc", "dec")})
    lstm = cell == "lstm"

    def forward(x):
        out, final = module["enc"](x)
        if lstm:
            h, c = final
            init = (h, c if state == "hc" else torch.zeros_like(c))
            enc = torch.cat([h[0], c[0]], dim=-1) if state == "hc" else h[0]
        else:
            init, enc = final, final[0]
        return torch.cat([enc, module["dec"](x, init)[0][:, -1]], dim=-1)

    def layout(named):
        return {name: _recurrent_layout(cell, named, f"{name}.") for name in ("enc", "dec")}

    extra = {"return_state": True} if state == "hc" else {}
    specs = [Pathways([[SKDL_CELLS[cell](4, name="enc", **extra)],
                       [SKDL_CELLS[cell](4, initial_state="enc", name="dec")]])]
    X = np.random.RandomState(18).randn(5, 6, 3)
    _check_port(specs, X, module, forward, layout)


@pytest.mark.parametrize("cell", sorted(TORCH_CELLS))
def test_initial_state_with_masked_sequences(cell):
    # Padded token sequences: the encoder's h_n of the packed sequence starts
    # the decoder, which reads the same tokens packed (its own embedding);
    # a decoder's masked steps carry the state it started from. An LSTM
    # decoder takes h only (c0 = 0).
    torch.manual_seed(0)
    module = torch.nn.ModuleDict({
        "emb_enc": torch.nn.Embedding(9, 3, dtype=torch.float64),
        "emb_dec": torch.nn.Embedding(9, 3, dtype=torch.float64),
        "enc": TORCH_CELLS[cell](3, 4, batch_first=True, dtype=torch.float64),
        "dec": TORCH_CELLS[cell](3, 4, batch_first=True, dtype=torch.float64)})
    rng = np.random.RandomState(19)
    lengths = np.array([6, 2, 4, 1, 5])
    tokens = rng.randint(1, 9, (5, 6)).astype(np.float64)
    tokens[np.arange(6) >= lengths[:, None]] = 0

    def packed(x, embedding):
        return torch.nn.utils.rnn.pack_padded_sequence(
            module[embedding](x.long()), torch.from_numpy(lengths), batch_first=True,
            enforce_sorted=False)

    def last(final):
        return final[0][0] if cell == "lstm" else final[0]

    def forward(x):
        # skdl merges the two branches' outputs with merge="add".
        final = module["enc"](packed(x, "emb_enc"))[1]
        init = (final[0], torch.zeros_like(final[1])) if cell == "lstm" else final
        return last(final) + last(module["dec"](packed(x, "emb_dec"), init)[1])

    def layout(named):
        layers = {name: _recurrent_layout(cell, named, f"{name}.") for name in ("enc", "dec")}
        layers.update({name: {"embeddings": [named[f"{name}.weight"]]}
                       for name in ("emb_enc", "emb_dec")})
        return layers

    specs = [Pathways([
        [Embedding(9, 3, mask_zero=True, name="emb_enc"), SKDL_CELLS[cell](4, name="enc")],
        [Embedding(9, 3, mask_zero=True, name="emb_dec"),
         SKDL_CELLS[cell](4, initial_state="enc", name="dec")]], merge="add")]
    _check_port(specs, tokens, module, forward, layout)


# -- a small CNN as a whole ------------------------------------------------------
def test_cnn_chain():
    # Conv -> batch norm -> PReLU -> pooling -> Flatten -> Dense: Flatten
    # reads (C, H, W) in PyTorch's order.
    torch.manual_seed(0)
    module = torch.nn.ModuleDict({
        "conv": torch.nn.Conv2d(1, 3, 3, padding=1, dtype=torch.float64),
        "bn": torch.nn.BatchNorm2d(3, eps=1e-3, dtype=torch.float64),
        "prelu": torch.nn.PReLU(3, dtype=torch.float64),
        "dense": torch.nn.Linear(3 * 3 * 4, 4, dtype=torch.float64)})
    with torch.no_grad():
        module["bn"].weight.uniform_(0.5, 1.5)
        module["bn"].bias.uniform_(-0.5, 0.5)

    def forward(x):
        h = module["prelu"](module["bn"](module["conv"](x)))
        return module["dense"](torch.flatten(F.max_pool2d(h, 2), 1))

    def layout(named):
        return {"conv": {"kernel": [named["conv.weight"]], "bias": [named["conv.bias"]]},
                "bn": {"gamma": [named["bn.weight"]], "beta": [named["bn.bias"]]},
                "prelu": {"alpha": [named["prelu.weight"]]},
                **_dense_layout(named, "dense", "dense.")}

    specs = [Conv2D(3, 3, padding=1, name="conv"), BatchNormalization(name="bn"),
             PReLU(name="prelu"), MaxPool2D(2), Flatten(), Dense(4, name="dense")]
    X = np.random.RandomState(18).randn(5, 1, 6, 8)
    _check_port(specs, X, module, forward, layout, inference=False)


# -- losses -----------------------------------------------------------------------
def _poisson_deviance_half(z, y):
    # PyTorch's Poisson NLL (log input) lacks the constant y log y - y that
    # makes skdl's loss half the Poisson deviance (0 at a perfect fit).
    return F.poisson_nll_loss(z, y, log_input=True, full=False,
                              reduction="none") + torch.xlogy(y, y) - y


# Per sample: skdl sums the classification losses over the outputs and
# averages the regression losses; its squared error is half the squared
# residual (its gradient is the residual). The Hellinger losses have no
# PyTorch twin.
LOSSES = {
    "softmax_cross_entropy": (SoftmaxCrossEntropy(),
                              lambda z, y: F.cross_entropy(z, y, reduction="none")),
    "sigmoid_cross_entropy": (SigmoidCrossEntropy(), lambda z, y: (
        F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1))),
    "squared_error": (RegressionLoss("squared_error"), lambda z, y: (
        0.5 * F.mse_loss(z, y, reduction="none").mean(dim=1))),
    "absolute_error": (RegressionLoss("absolute_error"), lambda z, y: (
        F.l1_loss(z, y, reduction="none").mean(dim=1))),
    "huber": (RegressionLoss("huber", delta=0.7), lambda z, y: (
        F.huber_loss(z, y, reduction="none", delta=0.7).mean(dim=1))),
    "poisson": (RegressionLoss("poisson"),
                lambda z, y: _poisson_deviance_half(z, y).mean(dim=1)),
}


def _loss_targets(name, rng, shape):
    if name == "softmax_cross_entropy":
        hard = np.eye(shape[1])[rng.randint(0, shape[1], shape[0])]
        hard[:2] = rng.dirichlet(np.ones(shape[1]), 2)  # probabilities as targets too
        return hard
    if name == "sigmoid_cross_entropy":
        return np.where(rng.rand(*shape) < 0.3, rng.rand(*shape), rng.randint(0, 2, shape))
    if name == "poisson":
        return rng.poisson(2.0, shape).astype(np.float64)
    return rng.randn(*shape)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss(name):
    loss, torch_loss = LOSSES[name]
    rng = np.random.RandomState(19)
    Z = rng.randn(7, 4) * 2
    Y = _loss_targets(name, rng, Z.shape)
    values, grad = loss(Z, Y)
    z = torch.tensor(Z, requires_grad=True)
    expected = torch_loss(z, torch.from_numpy(Y))
    expected.sum().backward()
    assert_allclose(values, expected.detach().numpy(), **TOL)
    assert_allclose(grad, z.grad.numpy(), **TOL)


# -- training runs -----------------------------------------------------------------
def _adam_epsilon_hat(epsilon, beta2):
    """Adjust PyTorch's Adam to skdl's: skdl folds the bias corrections into
    the rate, ``lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) +
    epsilon)`` (its docstring), which is PyTorch's ``lr / (1 - beta1**t) *
    m / (sqrt(v / (1 - beta2**t)) + eps)`` with ``eps = epsilon / sqrt(1 -
    beta2**t)`` at step t."""
    def before_step(optimizer, t):
        for group in optimizer.param_groups:
            group["eps"] = epsilon / math.sqrt(1 - beta2 ** t)
    return before_step


# (skdl optimizer, PyTorch optimizer on param groups and lr, hook before step
# t). Adamax is left out: PyTorch puts eps inside the maximum (u = max(beta2 *
# u, |g| + eps)), skdl after it (m / (u + epsilon)); no setting maps one onto
# the other.
OPTIMIZERS = {
    "adam": (Adam(), lambda groups, lr: torch.optim.Adam(groups, lr, betas=(0.9, 0.999)),
             _adam_epsilon_hat(1e-8, 0.999)),
    "adamw": (AdamW(weight_decay=0.1),
              lambda groups, lr: torch.optim.AdamW(groups, lr, betas=(0.9, 0.999)),
              _adam_epsilon_hat(1e-8, 0.999)),
    "momentum": (SGD(momentum=0.9),
                 lambda groups, lr: torch.optim.SGD(groups, lr, momentum=0.9), None),
    "nesterov": (SGD(momentum=0.9, nesterov=True),
                 lambda groups, lr: torch.optim.SGD(groups, lr, momentum=0.9, nesterov=True),
                 None),
    "rmsprop": (RMSprop(momentum=0.5), lambda groups, lr: torch.optim.RMSprop(
        groups, lr, alpha=0.9, eps=1e-7, momentum=0.5), None),
    "adagrad": (Adagrad(), lambda groups, lr: torch.optim.Adagrad(
        groups, lr, eps=1e-7, initial_accumulator_value=0.1), None),
    "adadelta": (Adadelta(), lambda groups, lr: torch.optim.Adadelta(
        groups, lr, rho=0.95, eps=1e-6), None),
}


def _classifier_twin(kind, n_features, n_outputs):
    """A PyTorch network like NNClassifier's for ``kind`` ('dense': a tanh
    hidden layer; 'gru': a GRU's last state), with its layout."""
    if kind == "dense":
        module = torch.nn.ModuleDict({
            "hidden": torch.nn.Linear(n_features, 6, dtype=torch.float64),
            "output": torch.nn.Linear(6, n_outputs, dtype=torch.float64)})

        def forward(x):
            return module["output"](torch.tanh(module["hidden"](x)))

        def layout(named):
            return {**_dense_layout(named, "hidden", "hidden."),
                    **_dense_layout(named, "output", "output.")}
        return [Dense(6, activation="tanh", name="hidden")], module, forward, layout
    module = torch.nn.ModuleDict({
        "hidden": torch.nn.GRU(n_features, 4, batch_first=True, dtype=torch.float64),
        "output": torch.nn.Linear(4, n_outputs, dtype=torch.float64)})

    def forward(x):
        return module["output"](module["hidden"](x)[1][0])

    def layout(named):
        return {"hidden": _recurrent_layout("gru", named, "hidden."),
                **_dense_layout(named, "output", "output.")}
    return [GRU(4, name="hidden")], module, forward, layout


@pytest.mark.parametrize("optimizer, kind, n_classes, batch_size", [
    ("adam", "dense", 3, 8), ("adam", "dense", 2, 30), ("adam", "gru", 3, 8),
    ("adamw", "dense", 3, 8), ("momentum", "dense", 3, 8), ("nesterov", "dense", 2, 8),
    ("rmsprop", "dense", 3, 8), ("adagrad", "dense", 3, 8), ("adadelta", "dense", 3, 8)])
def test_training_matches_a_torch_loop(optimizer, kind, n_classes, batch_size):
    # NNClassifier fitted for a few epochs, unshuffled, from PyTorch's initial
    # weights, against the PyTorch loop on the same batches: the mean loss of
    # each batch (the last one smaller), softmax cross-entropy or, for two
    # classes, one sigmoid output, and the same optimizer.
    spec, torch_optimizer, before_step = OPTIMIZERS[optimizer]
    rng = np.random.RandomState(20)
    X = rng.randn(30, 5, 3) if kind == "gru" else rng.randn(30, 4)
    y = rng.randint(0, n_classes, 30)
    n_outputs = 1 if n_classes == 2 else n_classes
    torch.manual_seed(0)
    specs, module, forward, layout = _classifier_twin(kind, X.shape[-1], n_outputs)
    ported = {layer: {key: sum(parts) for key, parts in params.items()}
              for layer, params in layout(_parameters(module)).items()}

    learning_rate, epochs = (1.0 if optimizer == "adadelta" else 0.05), 4
    clf = NNClassifier(specs, optimizer=spec, learning_rate=learning_rate,
                       batch_size=batch_size, max_iter=epochs, shuffle=False,
                       dtype="float64", random_state=0,
                       callbacks=[LambdaCallback(on_fit_begin=lambda est: est.set_weights(
                           ported))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)

    # Decoupled weight decay applies to kernels only (README, "Training").
    kernels = [p for name, p in module.named_parameters() if "weight" in name]
    others = [p for name, p in module.named_parameters() if "weight" not in name]
    optim = torch_optimizer([{"params": kernels, "weight_decay": spec.weight_decay},
                             {"params": others, "weight_decay": 0.0}], learning_rate)
    x, target = torch.from_numpy(X), torch.from_numpy(y)
    epoch_losses = []
    t = 0
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch_size):
            rows = slice(start, start + batch_size)
            outputs = forward(x[rows])
            if n_outputs == 1:
                loss = F.binary_cross_entropy_with_logits(outputs[:, 0],
                                                          target[rows].double())
            else:
                loss = F.cross_entropy(outputs, target[rows])
            optim.zero_grad()
            loss.backward()
            t += 1
            if before_step is not None:
                before_step(optim, t)
            optim.step()
            total += loss.item() * len(target[rows])
        epoch_losses.append(total / len(X))

    assert clf.n_iter_ == epochs
    assert_allclose(clf.loss_curve_, epoch_losses, **TOL)
    expected = layout(_parameters(module))
    got = clf.get_weights()
    for layer, params in expected.items():
        for key, (value,) in params.items():
            assert_allclose(got[layer][key], value, **TOL,
                            err_msg=f"{layer}/{key} after {t} steps")


# -- attention ------------------------------------------------------------------
# PyTorch's modules run in train() mode with dropout 0: in eval() mode they
# take a "fast path" that zeroes the outputs at padded steps. Where steps are
# padded only the others are compared (their output gradient is 0 at padding).

ATTENTION_TOKENS = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)


def _mha_layout(named, E, H, layer, prefix=""):
    """skdl's Keras-layout attention parameters from nn.MultiheadAttention's."""
    W, b = named[f"{prefix}in_proj_weight"], named.get(f"{prefix}in_proj_bias")
    params = {}
    for i, part in enumerate(("query", "key", "value")):
        params[f"{part}_kernel"] = [W[i * E:(i + 1) * E].T.reshape(E, H, E // H)]
        if b is not None:
            params[f"{part}_bias"] = [b[i * E:(i + 1) * E].reshape(H, E // H)]
    params["output_kernel"] = [named[f"{prefix}out_proj.weight"].T.reshape(H, E // H, E)]
    if f"{prefix}out_proj.bias" in named:
        params["output_bias"] = [named[f"{prefix}out_proj.bias"]]
    return {layer: params}


def _check_sequence_port(specs, X, mask, module, forward, layout):
    """:func:`_check_port` for a layer given a key-padding ``mask`` (True:
    present): outputs and input gradients at the present steps, and every
    parameter gradient, with the output gradient 0 at padding."""
    weights = {layer: {key: sum(parts) for key, parts in params.items()}
               for layer, params in layout(_parameters(module)).items()}
    net = initialized_network(specs, X.shape[1:])
    net.set_weights(weights)
    layer = net.layers[0]
    Y = layer.forward(X, training=True, mask=mask)
    dY = np.random.RandomState(2).randn(*Y.shape) * mask[:, :, None]
    dX = backward_chain(net.layers, dY, GradientContext(None, 1.0, np.float64))

    x = torch.tensor(X, requires_grad=True)
    y = forward(x, torch.from_numpy(~mask))  # PyTorch's True is padding
    y.backward(torch.from_numpy(dY))
    assert_allclose(Y[mask], y.detach().numpy()[mask], **TOL, err_msg="output")
    assert_allclose(layer.forward(X, mask=mask)[mask], y.detach().numpy()[mask], **TOL,
                    err_msg="inference output")
    assert_allclose(dX[mask], x.grad.numpy()[mask], **TOL, err_msg="input gradient")
    expected = layout(_parameters(module, gradients=True))
    for name, params in expected.items():
        got = net.find_layer(name).grads
        assert set(got) == set(params)
        for key, parts in params.items():
            assert_allclose(got[key], parts[0], **TOL, err_msg=f"gradient of {name}/{key}")


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_multi_head_attention(heads, causal, bias):
    torch.manual_seed(0)
    E = 4
    mha = torch.nn.MultiheadAttention(E, heads, bias=bias, batch_first=True,
                                      dtype=torch.float64).train()
    with torch.no_grad():  # PyTorch starts its biases at 0
        for p in mha.parameters():
            p.normal_()
    X = np.random.RandomState(1).randn(3, 5, E)
    attn_mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1) if causal else None

    def forward(x, padding):
        return mha(x, x, x, key_padding_mask=padding, attn_mask=attn_mask,
                   need_weights=False)[0]

    _check_sequence_port([MultiHeadAttention(heads, use_bias=bias, causal=causal,
                                             name="mha")],
                         X, ATTENTION_TOKENS, mha, forward,
                         lambda named: _mha_layout(named, E, heads, "mha"))


def test_layer_normalization():
    torch.manual_seed(0)
    norm = torch.nn.LayerNorm(5, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    X = np.random.RandomState(1).randn(4, 3, 5) * 2 + 1
    _check_port([LayerNormalization(epsilon=1e-5, name="norm")], X, norm, norm,
                lambda named: {"norm": {"gamma": [named["weight"]], "beta": [named["bias"]]}})


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_transformer_encoder_layer(norm_first, causal):
    torch.manual_seed(0)
    E, H, ff = 4, 2, 6
    encoder = torch.nn.TransformerEncoderLayer(
        E, H, dim_feedforward=ff, dropout=0.0, batch_first=True, norm_first=norm_first,
        dtype=torch.float64).train()
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.3 * torch.randn_like(p))
    X = np.random.RandomState(1).randn(3, 5, E)
    causal_mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1) if causal else None

    def forward(x, padding):
        return encoder(x, src_mask=causal_mask, src_key_padding_mask=padding,
                       is_causal=causal)

    def layout(named):
        params = _mha_layout(named, E, H, "enc/attention", prefix="self_attn.")
        for part in ("linear1", "linear2"):
            params.update(_dense_layout(named, f"enc/{part}", prefix=f"{part}."))
        for part in ("norm1", "norm2"):
            params[f"enc/{part}"] = {"gamma": [named[f"{part}.weight"]],
                                     "beta": [named[f"{part}.bias"]]}
        return params

    _check_sequence_port([TransformerEncoderBlock(H, ff_units=ff, norm_first=norm_first,
                                                  causal=causal, name="enc")],
                         X, ATTENTION_TOKENS, encoder, forward, layout)
