"""Network: layer building and naming, the flat buffers, weights, pickling,
bound training passes."""
import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skdl import (
    Activation,
    AvgPool2D,
    BatchNormalization,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    LastStep,
    LayerNormalization,
    MaxPool1D,
    MaxPool2D,
    MergeInput,
    MultiHeadAttention,
    PositionalEmbedding,
    Reshape,
    TransformerEncoderBlock,
)
from skdl._network import MAX_BOUND_PASSES, build_layers

from _networks import initialized_network as _network


def test_generated_names_and_shapes():
    layers = build_layers(
        [Dense(4), Dense(3, name="mine"), Activation("relu"), Dense(2), Reshape((2, 1)),
         Flatten(), Dropout(0.5)], (6,), np.float32)
    assert [layer.name for layer in layers] == [
        "dense", "mine", "activation", "dense_1", "reshape", "flatten", "dropout"]
    assert [layer.output_shape for layer in layers] == [
        (4,), (3,), (3,), (2,), (2, 1), (2,), (2,)]


def test_taken_names_are_avoided():
    layers = build_layers([Dense(2)], (3,), np.float32, taken_names=["dense"])
    assert layers[0].name == "dense_1"


def test_layer_spec_errors():
    with pytest.raises(ValueError, match="Two layers are named 'x'"):
        build_layers([Dense(2, name="x"), Dense(2, name="x")], (3,), np.float32)
    with pytest.raises(TypeError, match=r"layers\[1\] must be a layer spec"):
        build_layers([Dense(2), "relu"], (3,), np.float32)
    with pytest.raises(ValueError, match="does not fit 5 values"):
        build_layers([Reshape((2, -1))], (5,), np.float32)


def test_parameters_are_views_of_one_buffer():
    net = _network([Dense(4, activation="tanh"), Dense(3, use_bias=False)], (6,))
    sizes = [6 * 4, 4, 4 * 3]
    assert net.params.size == net.grads.size == sum(sizes)
    offset = 0
    for layer in net.layers:
        for key, value in layer.params.items():
            assert np.shares_memory(value, net.params)
            assert np.shares_memory(layer.grads[key], net.grads)
            assert_array_equal(value.ravel(), net.params[offset:offset + value.size])
            offset += value.size
    assert "bias" not in net.layers[1].params
    net.params[:] = 1.0
    assert (net.layers[0].params["kernel"] == 1.0).all()


def test_backward_fills_the_gradient_buffer_and_clears_caches():
    net = _network([Dense(5, activation="relu"), Dense(2)], (6,))
    X = np.random.RandomState(1).randn(7, 6)
    out = net.forward(X, training=True)
    net.grads[:] = np.nan
    net.backward(np.ones_like(out), None, 1.0, np.float64)
    assert np.isfinite(net.grads).all()
    assert all(layer._cache is None for layer in net.layers)


def test_forward_without_training_keeps_nothing():
    net = _network([Dense(5, activation="relu"), Dropout(0.5)], (6,))
    X = np.random.RandomState(1).randn(7, 6)
    assert_array_equal(net.forward(X), net.forward(X))
    assert all(layer._cache is None for layer in net.layers)


def test_weights_roundtrip_and_validation():
    net = _network([Dense(4), Dense(2)], (6,))
    other = _network([Dense(4), Dense(2)], (6,), seed=1)
    other.set_weights(net.get_weights())
    assert_array_equal(other.params, net.params)
    with pytest.raises(TypeError, match="weights must be a dict"):
        net.set_weights([1, 2])
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"expected \(4, 2\)"):
        net.set_weights({"dense": {"kernel": np.zeros((6, 4))},
                         "dense_1": {"kernel": np.zeros((2, 2))}})
    assert_array_equal(net.params, before)  # the valid first entry was not written


def test_pickle_rebinds_views():
    net = _network([Dense(4, activation="relu"), Dense(2)], (6,))
    X = np.random.RandomState(2).randn(5, 6)
    loaded = pickle.loads(pickle.dumps(net))
    assert_array_equal(loaded.forward(X), net.forward(X))
    loaded.params[:] = 0.0
    assert (loaded.layers[0].params["kernel"] == 0).all()
    assert loaded.grads.shape == net.grads.shape




def test_network_without_buffers():
    net = _network([Dense(4), Dense(2)], (6,))
    assert net.buffers.shape == (0,) and net.buffers.dtype == net.params.dtype
    assert sorted(net.get_weights()) == ["dense", "dense_1"]
    assert sorted(net.get_weights()["dense"]) == ["bias", "kernel"]


def test_snapshot_and_restore_parameters():
    net = _network([Dense(4), Dense(2)], (6,))
    X = np.random.RandomState(3).randn(5, 6)
    expected = net.forward(X)
    snap = net.snapshot()
    net.params[:] = 0.0
    net.restore(snap)
    assert_array_equal(net.forward(X), expected)
    net.params[:] = 1.0  # the snapshot is a copy, not a view
    net.restore(snap)
    assert_array_equal(net.forward(X), expected)
    with pytest.raises(ValueError, match="another network"):
        net.restore(_network([Dense(3)], (6,)).snapshot())


def test_snapshot_into_an_earlier_one_reuses_its_arrays():
    net = _network([Dense(4), Dense(2)], (6,))
    snap = net.snapshot()
    arrays = snap.params, snap.buffers
    net.params[:] = 2.0
    assert net.snapshot(into=snap) is snap
    assert snap.params is arrays[0] and snap.buffers is arrays[1]
    assert_array_equal(snap.params, 2.0)
    with pytest.raises(ValueError, match="another network"):
        net.snapshot(into=_network([Dense(3)], (6,)).snapshot())
    with pytest.raises(TypeError, match="must come from Network.snapshot"):
        net.snapshot(into=net.params)


def test_sample_weight_reaches_only_layers_that_take_it():
    net = _network([Dense(4), Dropout(0.5), Dense(2)], (6,))
    X = np.random.RandomState(4).randn(5, 6)
    # Layers that do not weigh the batch never see it (no keyword error).
    net.forward(X, training=True, rng=np.random.default_rng(0), sample_weight=np.ones(5))
    assert_array_equal(net.forward(X, sample_weight=np.arange(5.0)), net.forward(X))


@pytest.mark.parametrize("spec, shape, message", [
    ("conv", (1, 4, 4), r"Conv2D 'conv' on samples of shape \(1, 4, 4\): The kernel spans "
     r"5 positions \(size 5, dilation 1\) but the padded input has only 4"),
    ("conv1d", (2, 3), r"Conv1D 'conv1d' on samples of shape \(2, 3\): The kernel spans "
     r"5 positions"),
    ("pool", (1, 3, 3), r"MaxPool2D 'max_pool2d' on samples of shape \(1, 3, 3\): The "
     r"pool spans 4 positions"),
    ("negative", (1, 4, 4), r"Conv2D 'conv2d' on samples of shape \(1, 4, 4\): padding "
     r"must hold non-negative ints"),
    ("nested", (1, 4, 4), r"Conv2D 'inner' on samples of shape \(1, 4, 4\): The kernel "
     r"spans 6 positions"),
])
def test_a_geometry_that_cannot_work_names_its_layer(spec, shape, message):
    from skdl import Conv1D, Conv2D, MaxPool2D, Pathways

    spec = {"conv": Conv2D(2, 5, name="conv"), "conv1d": Conv1D(2, 5),
            "pool": MaxPool2D(4), "negative": Conv2D(2, 3, padding=-1),
            "nested": Pathways([[], [Conv2D(1, 6, name="inner")]])}[spec]
    with pytest.raises(ValueError, match=message):
        build_layers([spec], shape, np.float32)


# -- bound training passes ------------------------------------------------------
BOUND_NETWORKS = {
    "dense": ([Dense(7, activation="tanh"), Dense(5, activation="relu"), Dense(3)], (6,)),
    "dense_softmax_hidden": ([Dense(4, activation="softmax"), Dense(3, use_bias=False)],
                             (6,)),
    "cnn": ([Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(2),
             Conv2D(4, (2, 3), strides=(1, 2), dilation=(2, 1), activation="elu"),
             Flatten(), Dense(5, activation="sigmoid"), Dense(3)], (2, 9, 10)),
    "pool_first": ([MaxPool2D(3, strides=2, padding="same"), Conv2D(2, 2), Flatten(),
                    Dense(3)], (1, 7, 7)),
    "conv1d": ([Conv1D(3, 3, strides=2, padding=[(2, 1)], activation="leaky_relu",
                       alpha=0.2), MaxPool1D(2, strides=1), GlobalMaxPool1D(), Dense(3)],
               (2, 12)),
    "dense_on_steps": ([Dense(4, activation="relu"), Flatten(), Dense(3)], (5, 6)),
    "dropout": ([Dropout(0.3), Dense(7, activation="relu"), Dropout(0.5), Dense(3),
                 Dropout(0.0)], (6,)),
    "layer_norm": ([Dense(5), LayerNormalization(), PositionalEmbedding(),
                    LayerNormalization(center=False), Dense(3)], (1, 6)),
    "attention": ([MultiHeadAttention(2, dropout=0.2), LayerNormalization(),
                   MultiHeadAttention(3, key_dim=2, value_dim=3, causal=True,
                                      use_bias=False), Flatten(), Dense(3)], (4, 6)),
    "encoder": ([PositionalEmbedding(), TransformerEncoderBlock(2, ff_units=5, dropout=0.1),
                 TransformerEncoderBlock(2, ff_units=5, norm_first=True, causal=True),
                 PositionalEmbedding("sinusoidal"), Flatten(), Dense(3)], (4, 6)),
    "encoder_first": ([TransformerEncoderBlock(1, ff_units=3, norm_first=True, dropout=0.1),
                       TransformerEncoderBlock(2, ff_units=3), Flatten(), Dense(3)], (3, 4)),
    # Pooled over the steps: the mean, and the maximum (its first maximum).
    "encoder_avg_pool": ([TransformerEncoderBlock(2, ff_units=5), GlobalAvgPool1D(),
                          Dense(3)], (4, 6)),
    "encoder_max_pool": ([MultiHeadAttention(2), GlobalMaxPool1D(), Dense(3)], (4, 6)),
    # The last step (a causal language model's readout), and as a first layer.
    "encoder_last_step": ([MultiHeadAttention(2, causal=True), LastStep(), Dense(3)],
                          (4, 6)),
    "last_step_first": ([LastStep(), Dense(3)], (4, 6)),
}
# Layers on each step of a sequence: weighted batches take the general path.
STEP_NETWORKS = {"dense_on_steps", "attention", "encoder", "encoder_first",
                 "encoder_avg_pool", "encoder_max_pool", "encoder_last_step"}


def _bound_and_general(name, dtype, weighted, n=9, seed=0):
    """Two identical networks and the first's bound pass for batches of n."""
    specs, shape = BOUND_NETWORKS[name]
    general = _network(specs, shape, dtype)
    bound_net = _network(specs, shape, dtype)
    bound = bound_net.training_pass(n, weighted, dtype)
    return general, bound_net, bound


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, weighted", [
    (name, weighted) for name in sorted(BOUND_NETWORKS) for weighted in (False, True)
    # weighted steps of a sequence take the general path (tested below)
    if not (name in STEP_NETWORKS and weighted)])
def test_bound_pass_equals_the_layers_pass_bit_for_bit(name, dtype, weighted):
    n = 9
    general, bound_net, bound = _bound_and_general(name, dtype, weighted, n)
    assert bound is not None
    rng = np.random.RandomState(1)
    shape = (n,) + general.input_shape
    # Dropout's draws: the same generator state on both paths.
    general_draws, bound_draws = np.random.default_rng(5), np.random.default_rng(5)
    for step in range(3):  # new data, weights, parameters and draws at every step
        X = rng.standard_normal(shape).astype(dtype)
        w = rng.uniform(0.1, 3, n) if weighted else None
        dZ = rng.standard_normal((n,) + general.output_shape).astype(dtype)
        Z = general.forward(X, training=True, rng=general_draws, sample_weight=w)
        assert_array_equal(bound.forward(X.reshape(n, -1), w, bound_draws), Z)
        general.backward(dZ, w, 0.37, dtype)
        bound.backward(dZ, 0.37)
        assert_array_equal(bound_net.grads, general.grads)
        assert np.abs(general.grads).sum() > 0
        new = general.params - 0.1 * general.grads
        general.params[...] = new
        bound_net.params[...] = new  # as the optimizer does: in place


def test_layers_that_do_not_bind_keep_the_general_path():
    assert _network([Dense(3), BatchNormalization(), Dense(2)], (4,)).training_pass(
        8, False, np.float64) is None
    assert _network([Conv2D(2, 3, activation="softmax"), Flatten(), Dense(2)],
                    (1, 5, 5)).training_pass(8, False, np.float64) is None
    assert _network([AvgPool2D(2), Flatten(), Dense(2)], (1, 4, 4)).training_pass(
        8, False, np.float64) is None
    steps = _network(BOUND_NETWORKS["dense_on_steps"][0], (5, 6))
    assert steps.training_pass(8, True, np.float64) is None  # row weights per step
    assert steps.training_pass(8, False, np.float64) is not None
    for name in ("attention", "encoder"):
        specs, shape = BOUND_NETWORKS[name]
        assert _network(specs, shape).training_pass(8, True, np.float64) is None
    side = _network([MergeInput("extra"), Dense(2)], (3,), side_inputs={"extra": (2,)})
    assert side.training_pass(8, False, np.float64) is None


def test_bound_passes_are_kept_per_batch_shape_and_released():
    net = _network([Dense(3), Dense(2)], (4,))
    first = net.training_pass(8, False, np.float64)
    assert net.training_pass(8, False, np.float64) is first
    assert net.training_pass(5, False, np.float64) is not first
    assert net.training_pass(8, True, np.float64) is not first
    for n in range(1, 10):  # at most MAX_BOUND_PASSES are kept
        net.training_pass(n, False, np.float64)
    assert len(net._passes) == MAX_BOUND_PASSES
    state = pickle.loads(pickle.dumps(net)).__dict__
    assert "_passes" not in state
    net.release_scratch()
    assert net.training_pass(8, False, np.float64) is not first


def test_bound_pass_refuses_a_batch_of_another_dtype():
    net = _network([Dense(3)], (4,), np.float32)
    bound = net.training_pass(2, False, np.float32)
    with pytest.raises(TypeError, match="Cannot cast"):
        bound.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reshape"):
        bound.forward(np.zeros((3, 4), np.float32))
