"""Shared finite-difference helpers for the gradient tests."""
import numpy as np
from numpy.testing import assert_allclose

from _networks import initialized_network
from skdl._network import Network, build_layers
from skdl.layers._base import GradientContext, backward_chain

EPS = 1e-6


def numeric_grad(f, x):
    """Central differences of the scalar f() with respect to x (changed in place)."""
    grad = np.empty_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        up = f()
        flat[i] = old - EPS
        down = f()
        flat[i] = old
        g[i] = (up - down) / (2 * EPS)
    return grad


def check_layer(spec, X, seed=0, sample_weight=None, mask=None, training=False,
                weigh_statistics=False):
    """Check dL/dX and dL/dparams of L = sum_i w_i sum(R_i * layer(X)_i).

    Builds the layer in float64 inside a Network (so its parameters are bound),
    compares backward's input and parameter gradients with central
    differences, and returns the runtime layer. ``mask`` (n, steps) is given
    to the layer's forward pass as an earlier layer's mask would be.

    With ``training`` the loss is taken from the training forward pass, for
    layers whose training output differs (batch statistics). With
    ``weigh_statistics`` that pass also gets ``sample_weight``, as the network
    gives it to layers that take it.
    """
    net = Network(build_layers([spec], X.shape[1:], np.float64), np.float64)
    net.initialize(np.random.RandomState(seed))
    layer = net.layers[0]
    R = np.random.RandomState(seed + 1).randn(*((X.shape[0],) + layer.output_shape))
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    kwargs = dict(mask=mask)
    if training:
        kwargs["training"] = True
    if weigh_statistics:
        kwargs["sample_weight"] = sample_weight

    def loss():
        out = layer.forward(X, **kwargs)
        return float(np.sum(w * np.sum((R * out).reshape(len(X), -1), axis=1)))

    layer.forward(X, **{**kwargs, "training": True})
    dX = layer.backward(R, GradientContext(sample_weight, 1.0, np.float64),
                        need_input_grad=True)
    assert_allclose(dX * (w.reshape((-1,) + (1,) * (X.ndim - 1))),
                    numeric_grad(loss, X), rtol=1e-5, atol=1e-7,
                    err_msg="input gradient")
    for key, value in layer.params.items():
        assert_allclose(layer.grads[key], numeric_grad(loss, value), rtol=1e-5,
                        atol=1e-7, err_msg=f"gradient of {key}")
    return layer


def check_network_gradients(specs, X, side_inputs=None, sample_weight=None,
                            training=False):
    """Parameter gradients (and, with one input, the input's) of
    L = sum_i w_i sum(R_i * net(X)_i) against central differences.

    With side inputs, X is ``(main_shape, flat_rows)``. With ``training`` the
    loss is taken from the training pass (batch statistics; dropout draws the
    same mask on every call from a fresh generator)."""
    if side_inputs:
        input_shape, X = X
    else:
        input_shape = X.shape[1:]
    net = initialized_network(specs, input_shape, side_inputs=side_inputs)
    R = np.random.RandomState(1).randn(*((len(X),) + net.output_shape))
    w = np.ones(len(X)) if sample_weight is None else sample_weight

    def loss():
        out = net.forward(X, training=training, rng=np.random.default_rng(0),
                          sample_weight=sample_weight)
        for layer in net.all_layers:
            layer.clear()
        return float(np.sum(w * np.sum((R * out).reshape(len(X), -1), axis=1)))

    net.forward(X, training=True, rng=np.random.default_rng(0),
                sample_weight=sample_weight)
    context = GradientContext(sample_weight, 1.0, np.float64)
    dX = backward_chain(net.layers, R, context, need_input_grad=not side_inputs)
    assert_allclose(net.grads, numeric_grad(loss, net.params), rtol=1e-5, atol=1e-7,
                    err_msg="parameter gradients")
    if not side_inputs:
        assert_allclose(dX * w.reshape((-1,) + (1,) * (X.ndim - 1)),
                        numeric_grad(loss, X), rtol=1e-5, atol=1e-7,
                        err_msg="input gradient")
    return net
