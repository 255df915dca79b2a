"""Finite-difference gradient checks in float64 for every layer, activation and loss."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

from skdl import Activation, Dense, Dropout, Flatten, Reshape, _ops
from skdl._network import Network, build_layers
from skdl.layers._base import GradientContext

from _fd import check_layer, numeric_grad

ACTIVATIONS = sorted(_ops.ACTIVATIONS)


def _away_from_kinks(X, margin=0.1):
    """Move values off 0, where relu-like derivatives jump."""
    return np.where(np.abs(X) < margin, np.sign(X + 1e-12) * margin, X)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense(activation):
    rng = np.random.RandomState(0)
    X = rng.randn(5, 4)
    spec = Dense(3, activation=activation)
    if activation in ("relu", "leaky_relu", "elu"):
        # Pick inputs whose pre-activations stay clear of the kink at 0.
        net = Network(build_layers([Dense(3)], (4,), np.float64), np.float64)
        net.initialize(np.random.RandomState(0))
        Z = net.forward(X)
        X = X[np.all(np.abs(Z) > 0.05, axis=1)]
        assert len(X) >= 2
    check_layer(spec, X)


def test_dense_without_bias_and_on_sequences():
    rng = np.random.RandomState(1)
    layer = check_layer(Dense(3, activation="tanh", use_bias=False), rng.randn(4, 5))
    assert list(layer.params) == ["kernel"]
    # (n, steps, features): Dense acts on the last axis, weights shared by steps.
    layer = check_layer(Dense(2, activation="sigmoid"), rng.randn(3, 4, 5))
    assert layer.output_shape == (4, 2)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer(activation):
    X = _away_from_kinks(np.random.RandomState(2).randn(4, 6))
    check_layer(Activation(activation), X)


def test_activation_alpha():
    X = _away_from_kinks(np.random.RandomState(3).randn(4, 6))
    check_layer(Activation("leaky_relu", alpha=0.3), X)
    check_layer(Activation("elu", alpha=2.0), X)


def test_shape_layers():
    X = np.random.RandomState(4).randn(3, 2, 6)
    check_layer(Flatten(), X)
    check_layer(Reshape((3, -1)), X)


def test_dropout():
    X = np.random.RandomState(5).randn(6, 10)
    net = Network(build_layers([Dropout(0.4)], (10,), np.float64), np.float64)
    layer = net.layers[0]
    np.testing.assert_array_equal(layer.forward(X, training=False), X)
    Y = layer.forward(X, training=True, rng=np.random.default_rng(0))
    mask = np.where(Y != 0, 1 / 0.6, 0.0)
    assert_allclose(Y, X * mask)
    assert 0 < (Y == 0).mean() < 1
    dY = np.random.RandomState(6).randn(6, 10)
    dX = layer.backward(dY, GradientContext(None, 1.0, np.float64))
    assert_allclose(dX, dY * mask)


@pytest.mark.parametrize("weighted", [False, True])
def test_network_with_sample_weights(weighted):
    rng = np.random.RandomState(7)
    X = rng.randn(6, 4)
    specs = [Dense(5, activation="relu"), Dense(4, activation="tanh"), Dense(2)]
    net = Network(build_layers(specs, (4,), np.float64), np.float64)
    net.initialize(np.random.RandomState(0))
    R = rng.randn(6, 2)
    w = rng.uniform(0.5, 2.0, 6) if weighted else None
    scale = 0.37

    def loss():
        per_sample = np.sum(R * net.forward(X), axis=1)
        return scale * float(per_sample @ (np.ones(6) if w is None else w))

    net.forward(X, training=True)
    net.backward(R, w, scale, np.float64)
    assert_allclose(net.grads, numeric_grad(loss, net.params), rtol=1e-5, atol=1e-7)


def _check_loss(fn, Z, Y):
    loss, grad = fn(Z, Y)
    for i in range(Z.shape[0]):
        row = Z[i:i + 1].copy()
        numeric = numeric_grad(lambda: float(fn(row, Y[i:i + 1])[0][0]), row)
        assert_allclose(grad[i:i + 1], numeric, rtol=1e-5, atol=1e-8)
    return loss


def test_softmax_cross_entropy():
    rng = np.random.RandomState(8)
    Z = rng.randn(5, 4) * 3
    Y = np.eye(4)[rng.randint(0, 4, 5)]
    _check_loss(_ops.softmax_cross_entropy, Z, Y)
    soft = rng.dirichlet(np.ones(4), 5)
    _check_loss(_ops.softmax_cross_entropy, Z, soft)


def test_sigmoid_cross_entropy():
    rng = np.random.RandomState(9)
    Z = rng.randn(5, 3) * 3
    _check_loss(_ops.sigmoid_cross_entropy, Z, rng.randint(0, 2, (5, 3)).astype(float))
    _check_loss(_ops.sigmoid_cross_entropy, Z, rng.uniform(0.05, 0.95, (5, 3)))


@pytest.mark.parametrize("name", sorted(_ops.REGRESSION_LOSSES))
def test_regression_losses(name):
    rng = np.random.RandomState(10)
    Y = rng.uniform(0.2, 3.0, (6, 3))
    # Residuals clear of 0 (absolute error) and of +-delta (Huber).
    R = rng.choice([-1, 1], (6, 3)) * rng.choice([0.3, 0.6, 1.5, 2.5], (6, 3))
    Z = np.log(Y) + R * 0.2 if name == "poisson" else Y + R
    _check_loss(lambda z, y: _ops.regression_loss(name, z, y), Z, Y)
