"""data_format of Conv1D and the 1-D pools: channels-last sequences
(steps, features), the default that follows the layer before, masks, and
models written before data_format existed."""
import json
import pickle
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from _fd import check_layer
from skdl import (
    LSTM,
    AvgPool1D,
    BatchNormalization,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    Masking,
    MaxPool1D,
    NNClassifier,
    Pathways,
    PReLU,
    Reshape,
    load,
    save,
)
from skdl._network import Network, build_layers
from skdl._persistence import METADATA_MEMBER
from skdl.layers.conv import window_mask

ONE_D = [Conv1D, MaxPool1D, AvgPool1D, GlobalMaxPool1D, GlobalAvgPool1D]


def _spec(cls, **params):
    return cls(4, 3, **params) if cls is Conv1D else cls(**params)


def _network(specs, sample_shape, seed=0):
    net = Network(build_layers(specs, sample_shape, np.float64), np.float64)
    net.initialize(np.random.RandomState(seed))
    return net


# -- gradients ------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    dict(kernel_size=3),
    dict(kernel_size=2, strides=2, padding="same", activation="relu"),
    dict(kernel_size=3, padding=[(2, 1)], dilation=2, activation="tanh"),
])
def test_conv1d_channels_last_gradients(params):
    X = np.random.RandomState(0).randn(3, 7, 2)  # (n, steps, features)
    layer = check_layer(Conv1D(4, data_format="channels_last", **params), X)
    assert layer.output_shape[1] == 4  # (out_steps, filters)


def test_conv1d_channels_last_one_feature_gradients():
    X = np.random.RandomState(1).randn(3, 6)  # (steps,): one feature
    layer = check_layer(Conv1D(2, 3, data_format="channels_last"), X)
    assert layer.output_shape == (4, 2)


@pytest.mark.parametrize("cls", [MaxPool1D, AvgPool1D])
@pytest.mark.parametrize("params", [dict(pool_size=2), dict(pool_size=3, strides=1,
                                                            padding="same")])
def test_pool1d_channels_last_gradients(cls, params):
    X = np.random.RandomState(2).randn(3, 7, 2)
    layer = check_layer(cls(data_format="channels_last", **params), X)
    assert layer.output_shape[1] == 2  # (out_steps, features)


# -- channels-last is channels-first on the transposed sample ---------------------
@pytest.mark.parametrize("specs", [
    lambda fmt: [Conv1D(3, 3, strides=2, padding="same", activation="relu",
                        data_format=fmt)],
    lambda fmt: [MaxPool1D(3, 2, padding="same", data_format=fmt)],
    lambda fmt: [AvgPool1D(2, data_format=fmt)],
    lambda fmt: [Conv1D(3, 2, data_format=fmt), MaxPool1D(2, data_format=fmt),
                 GlobalMaxPool1D(data_format=fmt)],
])
def test_channels_last_is_the_transposed_channels_first(specs):
    X = np.random.RandomState(3).randn(4, 9, 2)
    last = _network(specs("channels_last"), (9, 2))
    first = _network(specs("channels_first"), (2, 9))
    Y_last = last.forward(X)
    Y_first = first.forward(np.ascontiguousarray(X.transpose(0, 2, 1)))
    if Y_first.ndim == 3:
        Y_first = Y_first.transpose(0, 2, 1)
    assert_array_equal(Y_last, Y_first)  # the same kernels on the same values
    assert_array_equal(X, np.random.RandomState(3).randn(4, 9, 2))  # not mutated


# -- the default: the layout of the layer before -----------------------------------
@pytest.mark.parametrize("before, sample_shape", [
    ([Embedding(20, 5)], (12,)),
    ([Embedding(20, 5, mask_zero=True), Dropout(0.5)], (12,)),
    ([Embedding(20, 5), Dense(5)], (12,)),  # Dense acts on each step
    ([Masking()], (12, 5)),
    ([LSTM(5, return_sequences=True)], (12, 3)),
    ([Embedding(20, 5), Conv1D(5, 1)], (12,)),  # a channels-last Conv1D's output
    ([Embedding(20, 5), Pathways([[Dense(5)], []], merge="add")], (12,)),
])
@pytest.mark.parametrize("cls", ONE_D)
def test_default_reads_sequences_channels_last(before, sample_shape, cls):
    layers = build_layers(before + [_spec(cls)], sample_shape, np.float64)
    layer = layers[-1]
    assert layer.input_shape == (12, 5)
    expected = {Conv1D: (10, 4), MaxPool1D: (6, 5), AvgPool1D: (6, 5),
                GlobalMaxPool1D: (5,), GlobalAvgPool1D: (5,)}[cls]
    assert layer.output_shape == expected  # along the 12 steps, never the 5 features
    if cls is Conv1D:
        assert layer.param_shapes["kernel"] == (4, 5, 3)


@pytest.mark.parametrize("before, sample_shape", [
    ([], (5, 12)),                                   # the first layer: a (C, L) signal
    ([Conv1D(5, 1)], (2, 12)),                       # after a channels-first Conv1D
    ([LSTM(60), Reshape((5, 12))], (4, 3)),          # the last state, reshaped
    ([Embedding(20, 5), LSTM(5, return_sequences=True), Flatten(), Dense(60),
      Reshape((5, 12))], (12,)),                     # flattened: no longer steps
])
@pytest.mark.parametrize("cls", [Conv1D, MaxPool1D, GlobalMaxPool1D])
def test_default_reads_signals_channels_first(before, sample_shape, cls):
    layers = build_layers(before + [_spec(cls)], sample_shape, np.float64)
    expected = {Conv1D: (4, 10), MaxPool1D: (5, 6), GlobalMaxPool1D: (5,)}[cls]
    assert layers[-1].output_shape == expected  # (C, L) = (5, 12), as before


def test_first_layer_default_is_bit_identical_to_channels_first():
    X = np.random.RandomState(4).randn(6, 3, 11).astype(np.float32)
    y = np.arange(6) % 2

    def fit(fmt):
        specs = [Conv1D(4, 3, activation="relu", data_format=fmt),
                 MaxPool1D(2, data_format=fmt), GlobalAvgPool1D(data_format=fmt)]
        return NNClassifier(specs, max_iter=3, batch_size=3, random_state=0).fit(X, y)

    default, explicit = fit(None), fit("channels_first")
    for layer, weights in explicit.get_weights().items():
        for key, value in weights.items():
            assert_array_equal(default.get_weights()[layer][key], value)
    assert_array_equal(default.predict_proba(X), explicit.predict_proba(X))


def test_explicit_data_format_overrides_the_default():
    layers = build_layers([Embedding(20, 5), Conv1D(4, 3, data_format="channels_first")],
                          (12,), np.float64)
    assert layers[1].param_shapes["kernel"] == (4, 12, 3)  # the user's choice
    layers = build_layers([Conv1D(4, 3, data_format="channels_last")], (12, 5),
                          np.float64)
    assert layers[0].output_shape == (10, 4)


@pytest.mark.parametrize("before, sample_shape, channels", [
    ([Embedding(20, 5)], (12,), 5),                            # per embedding dimension
    ([Embedding(20, 5), Conv1D(4, 3)], (12,), 4),              # per filter of the steps
    ([LSTM(6, return_sequences=True), Dropout(0.1)], (12, 3), 6),
    ([], (7,), 7),                                             # flat features
    ([Conv1D(4, 3)], (2, 12), 4),                              # channels of a (C, L) signal
    ([Embedding(20, 5), Flatten()], (12,), 60),                # no longer steps
])
@pytest.mark.parametrize("cls", [BatchNormalization, PReLU])
def test_per_channel_layers_follow_the_layer_before(before, sample_shape, channels, cls):
    # Statistics (and slopes) per feature of a sequence's steps, never per step.
    layers = build_layers(before + [cls()], sample_shape, np.float64)
    assert layers[-1].channels == channels


@pytest.mark.parametrize("cls", [BatchNormalization, PReLU])
def test_per_channel_layers_explicit_axis_wins(cls):
    layers = build_layers([Embedding(20, 5), cls(axis=1)], (12,), np.float64)
    assert layers[-1].channels == 12  # the user's choice: one per step


def test_batch_norm_on_sequences_uses_each_features_statistics():
    X = np.random.RandomState(0).randn(8, 12, 5) * np.arange(1, 6) + np.arange(5)
    net = _network([Masking(mask_value=1e9), BatchNormalization(center=False,
                                                               scale=False)], (12, 5))
    Y = net.forward(X, training=True)
    flat = X.reshape(-1, 5)
    assert_allclose(Y.reshape(-1, 5), (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3),
                    rtol=1e-12)


# -- masks ----------------------------------------------------------------------------
def test_window_mask_keeps_windows_of_kept_steps_only():
    from skdl._ops import Window

    mask = np.array([[True, True, True, True, False, False],
                     [True, False, False, False, False, False]])
    valid = Window.of((6,), 3, 1, "valid", layer=True)
    assert_array_equal(window_mask(mask, valid), [[True, True, False, False],
                                                  [False, False, False, False]])
    # taps t*2-1, t*2+1, t*2+3 for t = 0, 1: the tap -1 is zero padding
    padded = Window.of((6,), 3, 2, [(1, 1)], 2, layer=True)
    assert_array_equal(window_mask(mask, padded), [[True, False], [False, False]])


def test_global_pool_after_masked_conv_ignores_windows_of_padding():
    # The same sentences with and without trailing padding give the same
    # features: windows reading padding are masked out before the pool.
    specs = [Embedding(10, 3, mask_zero=True), Conv1D(4, 2, activation="tanh"),
             MaxPool1D(2, strides=1), GlobalMaxPool1D()]
    tokens = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]], dtype=float)
    padded = np.hstack([tokens, np.zeros((2, 4))])
    short = _network(specs, (5,))
    long = _network(specs, (9,))
    long.set_weights(short.get_weights())
    assert_allclose(long.forward(padded), short.forward(tokens), rtol=1e-12)


def test_masked_conv_gradients():
    X = np.random.RandomState(5).randn(3, 6, 2)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1] * 6], dtype=bool)
    check_layer(Conv1D(2, 3, data_format="channels_last"), X, mask=mask)
    check_layer(GlobalMaxPool1D(data_format="channels_last"), X, mask=mask)


def test_channels_first_conv_ends_the_mask():
    layers = build_layers([Embedding(10, 3, mask_zero=True),
                           Conv1D(4, 2, data_format="channels_first")], (5,), np.float64)
    assert layers[1].compute_mask(None, np.ones((2, 5), bool)) is None


# -- errors, parameters ------------------------------------------------------------------
@pytest.mark.parametrize("cls", ONE_D)
def test_bad_data_format_is_a_parameter_error(cls):
    with pytest.raises(InvalidParameterError, match="data_format"):
        build_layers([_spec(cls, data_format="channel_last")], (5, 3), np.float64)


@pytest.mark.parametrize("cls", [Conv1D, MaxPool1D, AvgPool1D])
def test_channels_last_needs_steps_and_features(cls):
    with pytest.raises(ValueError, match=r"data_format='channels_last' takes samples of "
                       r"shape \(steps, features\) or \(steps,\), got \(2, 5, 3\)"):
        build_layers([_spec(cls, data_format="channels_last")], (2, 5, 3), np.float64)


@pytest.mark.parametrize("cls", ONE_D)
def test_data_format_is_a_searchable_parameter(cls):
    spec = _spec(cls)
    assert spec.get_params()["data_format"] is None
    assert clone(spec.set_params(data_format="channels_last")).data_format == \
        "channels_last"
    est = NNClassifier([Embedding(20, 3), _spec(cls, name="layer")])
    est.set_params(layers__layer__data_format="channels_first")
    assert clone(est).get_params()["layers__layer__data_format"] == "channels_first"


@pytest.mark.parametrize("cls", ONE_D)
def test_specs_pickled_before_data_format_are_channels_first(cls):
    spec = _spec(cls)
    del spec.data_format  # as a spec pickled before the parameter existed
    assert pickle.loads(pickle.dumps(spec)).data_format == "channels_first"


def test_model_files_before_data_format_load_channels_first(tmp_path):
    # A Conv1D after an Embedding convolved over the embedding's axis before
    # data_format existed; a file of then, without the key, still means that.
    X = np.random.RandomState(6).randint(1, 20, (12, 6)).astype(float)
    y = np.arange(12) % 2
    est = NNClassifier([Embedding(20, 4), Conv1D(3, 2, data_format="channels_first"),
                        Flatten(), Dense(2)], max_iter=2, random_state=0).fit(X, y)
    path = tmp_path / "old.skdl"
    save(est, path)
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(contents[METADATA_MEMBER])
    dropped = []

    def drop(node):
        if isinstance(node, dict):
            if str(node.get("spec", "")).endswith("Conv1D"):
                dropped.append(node["params"].pop("data_format"))
            for value in node.values():
                drop(value)
        elif isinstance(node, list):
            for value in node:
                drop(value)

    drop(metadata)
    assert dropped  # the file did hold the parameter
    contents[METADATA_MEMBER] = json.dumps(metadata).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    loaded = load(path)
    assert loaded.layers[1].data_format == "channels_first"
    assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_conv_block_1d_after_a_sequence_normalizes_each_filter():
    from skdl import ConvBlock1D

    X = np.random.RandomState(7).randint(1, 20, (6, 10)).astype(float)
    net = _network([Embedding(20, 3), ConvBlock1D(4, batch_norm=True)], (10,))
    block = net.layers[1]
    assert block.output_shape == (5, 4)  # (out_steps, filters)
    assert block.layers[1].param_shapes["gamma"] == (4,)  # one per filter
    Y = net.forward(X, training=True)
    assert Y.shape == (6, 5, 4)
