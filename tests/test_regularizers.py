"""Regularizer specs, which parameters are weights, and the network's
per-parameter penalty coefficients and weight-decay mask."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skdl import (
    GRU,
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    PReLU,
    SimpleRNN,
    regularizers,
)
from skdl._network import build_layers
from skdl.regularizers import L1, L2, L1L2

from _networks import initialized_network


def _network(specs, input_shape, dtype=np.float32):
    """These tests run in float32 unless they say otherwise."""
    return initialized_network(specs, input_shape, dtype)


def _slice(net, view):
    """The flat-buffer range a parameter view occupies."""
    start = (view.ctypes.data - net.params.ctypes.data) // net.params.itemsize
    return slice(start, start + view.size)


def test_specs_coefficients_and_penalty():
    assert L1L2().coefficients() == (0.0, 0.0)
    assert L1L2(l1=0.1, l2=0.2).coefficients() == (0.1, 0.2)
    assert L1().coefficients() == (0.01, 0.0)
    assert L2(0.5).coefficients() == (0.0, 0.5)
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert L1L2(0.1, 0.2).penalty(w) == pytest.approx(0.1 * 3.5 + 0.2 * 5.25)
    with pytest.raises(InvalidParameterError, match="l2"):
        L1L2(l2=-1.0).coefficients()
    with pytest.raises(InvalidParameterError, match="l1"):
        L1(l1="big").coefficients()


def test_regularizer_is_searchable_through_the_layer_spec():
    spec = Dense(4, kernel_regularizer=L1L2(l2=0.1))
    params = spec.get_params(deep=True)
    assert params["kernel_regularizer__l2"] == 0.1
    spec.set_params(kernel_regularizer__l2=0.3, kernel_regularizer__l1=0.05)
    assert spec.kernel_regularizer.coefficients() == (0.05, 0.3)
    copy = clone(spec)
    assert copy.kernel_regularizer is not spec.kernel_regularizer
    assert copy.kernel_regularizer.get_params() == {"l1": 0.05, "l2": 0.3}
    assert regularizers.L1L2 is L1L2


def test_fitted_layer_keeps_numbers_not_the_spec():
    reg = L2(0.1)
    net = _network([Dense(3, kernel_regularizer=reg)], (4,))
    reg.set_params(l2=5.0)
    assert net.layers[0].weight_penalties == {"kernel": (0.0, 0.1)}


@pytest.mark.parametrize("spec", [
    Dense(3, kernel_regularizer="l2"), Conv1D(2, 2, kernel_regularizer=0.1),
    GRU(2, kernel_regularizer=L2), LSTM(2, recurrent_regularizer="l1"),
    Embedding(5, 2, kernel_regularizer={"l2": 0.1})])
def test_bad_regularizer_is_rejected(spec):
    shape = (4,) if isinstance(spec, Embedding) else (3, 4)
    with pytest.raises(InvalidParameterError, match="regularizer"):
        build_layers([spec], shape, np.float32)


def test_negative_coefficient_is_rejected_at_build():
    with pytest.raises(InvalidParameterError, match="l2"):
        build_layers([Dense(2, kernel_regularizer=L1L2(l2=-0.1))], (3,), np.float32)


def test_which_parameters_are_weights():
    net = _network([
        Embedding(7, 3, kernel_regularizer=L1(0.2)),
        Bidirectional(GRU(2, return_sequences=True, kernel_regularizer=L2(0.3))),
        LSTM(2, return_sequences=True, recurrent_regularizer=L1L2(0.4, 0.5)),
        SimpleRNN(2, return_sequences=True),
        BatchNormalization(axis=-1), PReLU(axis=-1),
        Conv1D(3, 2, kernel_regularizer=L2(0.6)), Flatten(),
        Dense(2), BatchNormalization(), PReLU()], (5,))
    penalties = {layer.name: layer.weight_penalties for layer in net.layers}
    assert penalties == {
        "embedding": {"embeddings": (0.2, 0.0)},
        "bidirectional": {"forward_kernel": (0.0, 0.3), "forward_recurrent_kernel": (0.0, 0.3),
                          "backward_kernel": (0.0, 0.3),
                          "backward_recurrent_kernel": (0.0, 0.3)},
        "lstm": {"kernel": None, "recurrent_kernel": (0.4, 0.5)},
        "simple_rnn": {"kernel": None, "recurrent_kernel": None},
        "batch_normalization": {}, "prelu": {},
        "conv1d": {"kernel": (0.0, 0.6)}, "flatten": {},
        "dense": {"kernel": None}, "batch_normalization_1": {}, "prelu_1": {},
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_penalty_coefficients_and_decay_mask_layout(dtype):
    net = _network([
        Conv2D(3, 2, kernel_regularizer=L1L2(0.1, 0.2)), BatchNormalization(), PReLU(),
        Flatten(), Dense(4, kernel_regularizer=L2(0.5)), BatchNormalization(), PReLU(),
        Dense(3, use_bias=False), Dense(2)], (2, 4, 4), dtype=dtype)
    l1, l2 = net.penalty_coefficients(l1=0.01, l2=0.02)
    mask = net.decay_mask()
    for array in (l1, l2, mask):
        assert array.shape == net.params.shape and array.dtype == net.params.dtype
        assert not np.shares_memory(array, net.params)
    expected = {  # (layer, param): (l1, l2) on weights, None elsewhere
        ("conv2d", "kernel"): (0.1, 0.2), ("conv2d", "bias"): None,
        ("batch_normalization", "gamma"): None, ("batch_normalization", "beta"): None,
        ("prelu", "alpha"): None,
        ("dense", "kernel"): (0.0, 0.5), ("dense", "bias"): None,
        ("batch_normalization_1", "gamma"): None, ("batch_normalization_1", "beta"): None,
        ("prelu_1", "alpha"): None,
        ("dense_1", "kernel"): (0.01, 0.02),
        ("dense_2", "kernel"): (0.01, 0.02), ("dense_2", "bias"): None,
    }
    seen = np.zeros(net.params.size, bool)
    found = {}
    for layer in net.layers:
        for key, view in layer.params.items():
            where = _slice(net, view)
            assert not seen[where].any()
            seen[where] = True
            coefs = expected[(layer.name, key)]
            found[(layer.name, key)] = coefs
            if coefs is None:
                assert not l1[where].any() and not l2[where].any() and not mask[where].any()
            else:
                assert_array_equal(l1[where], dtype(coefs[0]))
                assert_array_equal(l2[where], dtype(coefs[1]))
                assert_array_equal(mask[where], 1.0)
    assert seen.all() and found.keys() == expected.keys()
    # Without global coefficients only the layers' own remain.
    l1, l2 = net.penalty_coefficients()
    assert not l1[_slice(net, net.layers[-1].params["kernel"])].any()
    assert l2[_slice(net, net.layers[0].params["kernel"])].min() == dtype(0.2)


def test_frozen_embedding_is_neither_penalized_nor_decayed():
    net = _network([Embedding(6, 2, trainable=False, kernel_regularizer=L2(1.0)),
                    Flatten(), Dense(2)], (3,))
    l1, l2 = net.penalty_coefficients(0.5, 0.5)
    table = _slice(net, net.layers[0].params["embeddings"])
    assert not l2[table].any() and not l1[table].any() and not net.decay_mask()[table].any()
    assert net.decay_mask().sum() == 3 * 2 * 2


def test_penalty_coefficients_reject_bad_values():
    net = _network([Dense(2)], (3,))
    for l1, l2 in ((-1.0, 0.0), (0.0, np.nan), (np.inf, 0.0)):
        with pytest.raises(ValueError, match="non-negative"):
            net.penalty_coefficients(l1, l2)


def test_network_without_weights():
    net = _network([BatchNormalization(), PReLU()], (3,))
    assert net.params.size == 9  # gamma, beta, alpha
    assert not net.decay_mask().any()
    assert not any(a.any() for a in net.penalty_coefficients(1.0, 1.0))
