"""Recurrent layers, embeddings and masks: ops against numpy, finite
differences, masks both ways, thread identity, estimators."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from _examples import load_example
import _networks
from _fd import check_layer, check_network_gradients, numeric_grad
from _threads import one_thread, two_threads
from skdl import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Embedding,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    Masking,
    MergeInput,
    NNClassifier,
    NNRegressor,
    Pathways,
    SimpleRNN,
    _ops,
    _reference,
)
from skdl._network import Network, build_layers

CELLS = [("simple", 1), ("gru", 3), ("lstm", 4)]
SPECS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}


def _weights(rng, cell, G, k, u, dtype=np.float64):
    W = (rng.randn(k, G * u) * 0.5).astype(dtype)
    U = (rng.randn(u, G * u) * 0.5).astype(dtype)
    b = (rng.randn(G * u) * 0.1).astype(dtype)
    bh = (rng.randn(G * u) * 0.1).astype(dtype) if cell == "gru" else None
    return W, U, b, bh


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell, G", CELLS)
@pytest.mark.parametrize("masked", [False, True])
def test_forward_matches_reference(cell, G, masked, dtype):
    rng = np.random.RandomState(0)
    n, T, k, u = 7, 6, 3, 5
    X = rng.randn(n, T, k).astype(dtype)
    W, U, b, bh = _weights(rng, cell, G, k, u, dtype)
    mask = rng.rand(n, T) > 0.3 if masked else None
    got = _ops.recurrent_forward(cell, X, W, U, b, bh, mask)
    ref = _reference.recurrent_forward(cell, X, W, U, b, bh, mask)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for name in ("H", "C", "gates", "extra"):
        if getattr(ref, name) is not None:
            assert_allclose(getattr(got, name), getattr(ref, name), **tol, err_msg=name)


@pytest.mark.parametrize("cell, G", CELLS)
def test_masked_steps_keep_the_state(cell, G):
    rng = np.random.RandomState(1)
    X = rng.randn(2, 5, 3)
    W, U, b, bh = _weights(rng, cell, G, 3, 4)
    mask = np.array([[1, 1, 0, 0, 1], [0, 0, 0, 0, 0]], bool)
    H = _ops.recurrent_forward(cell, X, W, U, b, bh, mask).H
    assert_array_equal(H[0, 3], H[0, 2])
    assert_array_equal(H[0, 4], H[0, 2])
    assert not np.array_equal(H[0, 5], H[0, 4])
    assert_array_equal(H[1], 0)  # nothing read: the initial state throughout
    # Masking a step is the same as leaving it out of the sequence.
    short = _ops.recurrent_forward(cell, X[:1, [0, 1, 4]], W, U, b, bh).H
    assert_allclose(H[0, -1], short[0, -1], rtol=1e-12)


@pytest.mark.parametrize("cell, G", CELLS)
@pytest.mark.parametrize("masked", [False, True])
def test_backward_matches_finite_differences(cell, G, masked):
    rng = np.random.RandomState(2)
    n, T, k, u = 3, 4, 2, 3
    X = rng.randn(n, T, k)
    W, U, b, bh = _weights(rng, cell, G, k, u)
    mask = rng.rand(n, T) > 0.3 if masked else None
    R = rng.randn(n, T, u)

    def loss():
        return float((R * _ops.recurrent_forward(cell, X, W, U, b, bh, mask).H[:, 1:]).sum())

    state = _ops.recurrent_forward(cell, X, W, U, b, bh, mask)
    dX, dW, dU, db, dbh = _ops.recurrent_backward(cell, R, X, W, U, state)
    for got, value in [(dX, X), (dW, W), (dU, U), (db, b)] + ([(dbh, bh)] if bh is not None else []):
        assert_allclose(got, numeric_grad(loss, value), rtol=1e-6, atol=1e-8)


LAYER_CASES = [
    SimpleRNN(3),
    SimpleRNN(3, activation="relu", return_sequences=True),
    GRU(3),
    GRU(2, return_sequences=True, go_backwards=True),
    GRU(3, use_bias=False),
    LSTM(3),
    LSTM(2, return_sequences=True),
    LSTM(3, go_backwards=True, recurrent_activation="tanh"),
    Bidirectional(GRU(2, return_sequences=True)),
    Bidirectional(LSTM(2), merge_mode="sum"),
    Bidirectional(SimpleRNN(2, return_sequences=True), merge_mode="mul"),
    Bidirectional(GRU(2), merge_mode="ave"),
]


@pytest.mark.parametrize("spec", LAYER_CASES, ids=repr)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_layer_gradients(spec, masked, batch):
    rng = np.random.RandomState(3)
    X = rng.randn(batch, 4, 2)
    mask = None
    if masked:
        mask = rng.rand(batch, 4) > 0.4
        mask[0] = [True, False, True, False]
    check_layer(spec, X, mask=mask, sample_weight=rng.uniform(0.5, 2, batch))


def test_single_feature_sequences_and_length_one():
    check_layer(GRU(2, return_sequences=True), np.random.RandomState(4).randn(3, 5))
    check_layer(LSTM(2), np.random.RandomState(5).randn(2, 1, 3))


@settings(max_examples=15, deadline=None)
@given(cell=st.sampled_from(["simple", "gru", "lstm"]), n=st.integers(1, 5),
       T=st.integers(1, 5), k=st.integers(1, 3), u=st.integers(1, 4),
       masked=st.booleans(), seed=st.integers(0, 2**16))
def test_shapes_fuzzed(cell, n, T, k, u, masked, seed):
    rng = np.random.RandomState(seed)
    G = dict(CELLS)[cell]
    X = rng.randn(n, T, k)
    W, U, b, bh = _weights(rng, cell, G, k, u)
    mask = None
    if masked:
        mask = rng.rand(n, T) > 0.5
        mask[0] = False  # a sequence with every step masked
    got = _ops.recurrent_forward(cell, X, W, U, b, bh, mask)
    ref = _reference.recurrent_forward(cell, X, W, U, b, bh, mask)
    assert_allclose(got.H, ref.H, rtol=1e-12, atol=1e-13)
    dX, dW, dU, db, dbh = _ops.recurrent_backward(cell, rng.randn(n, T, u), X, W, U, got)
    assert np.isfinite(dX).all() and np.isfinite(dW).all() and np.isfinite(dU).all()
    if masked:
        assert_array_equal(got.H[0], 0)
        assert_array_equal(dX[0], 0)  # a fully masked sequence gets no gradient


def _run(cell, threads):
    rng = np.random.RandomState(6)
    G = dict(CELLS)[cell]
    X = rng.randn(40, 7, 5).astype(np.float32)
    W, U, b, bh = _weights(rng, cell, G, 5, 9, np.float32)
    mask = rng.rand(40, 7) > 0.2
    with threads():
        state = _ops.recurrent_forward(cell, X, W, U, b, bh, mask)
        grads = _ops.recurrent_backward(cell, rng.randn(40, 7, 9).astype(np.float32),
                                        X, W, U, state, rng.uniform(0, 2, 40), 0.1)
    return [state.H] + list(grads)


@pytest.mark.parametrize("cell", ["simple", "gru", "lstm"])
def test_one_and_two_threads_agree_bit_for_bit(cell):
    for a, b in zip(_run(cell, one_thread), _run(cell, two_threads)):
        assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["simple", "gru", "lstm"])
def test_samples_do_not_depend_on_their_batch(cell):
    rng = np.random.RandomState(7)
    G = dict(CELLS)[cell]
    X = rng.randn(30, 6, 4).astype(np.float32)
    W, U, b, bh = _weights(rng, cell, G, 4, 8, np.float32)
    whole = _ops.recurrent_forward(cell, X, W, U, b, bh).H
    for rows in [np.arange(3), rng.permutation(30), np.array([29])]:
        assert_array_equal(_ops.recurrent_forward(cell, X[rows], W, U, b, bh).H, whole[rows])


def test_go_backwards_reads_the_sequence_reversed():
    X = np.random.RandomState(8).randn(4, 5, 2)
    net = Network(build_layers([GRU(3, return_sequences=True)], (5, 2), np.float64), np.float64)
    back = Network(build_layers([GRU(3, return_sequences=True, go_backwards=True)], (5, 2),
                                np.float64), np.float64)
    net.initialize(np.random.RandomState(0))
    back.initialize(np.random.RandomState(0))
    assert_allclose(back.forward(X), net.forward(X[:, ::-1]), rtol=1e-12)


def test_bidirectional_concatenates_both_directions():
    X = np.random.RandomState(9).randn(3, 4, 2)
    net = Network(build_layers([Bidirectional(LSTM(2, return_sequences=True))], (4, 2),
                               np.float64), np.float64)
    net.initialize(np.random.RandomState(0))
    layer = net.layers[0]
    Y = net.forward(X)
    assert Y.shape == (3, 4, 4)
    assert sorted(layer.params) == ["backward_bias", "backward_kernel",
                                    "backward_recurrent_kernel", "forward_bias",
                                    "forward_kernel", "forward_recurrent_kernel"]
    forward = _ops.recurrent_forward("lstm", X, layer.params["forward_kernel"],
                                     layer.params["forward_recurrent_kernel"],
                                     layer.params["forward_bias"]).H[:, 1:]
    backward = _ops.recurrent_forward("lstm", np.ascontiguousarray(X[:, ::-1]),
                                      layer.params["backward_kernel"],
                                      layer.params["backward_recurrent_kernel"],
                                      layer.params["backward_bias"]).H[:, 1:]
    assert_allclose(Y[..., :2], forward, rtol=1e-12)
    assert_allclose(Y[..., 2:], backward[:, ::-1], rtol=1e-12)  # back in time order


def test_weight_layouts_and_forget_bias():
    net = Network(build_layers([LSTM(3, return_sequences=True), GRU(2), SimpleRNN(4)],
                               (6, 5), np.float64), np.float64)
    net.initialize(np.random.RandomState(0))
    lstm, gru, rnn = net.layers
    assert lstm.params["kernel"].shape == (5, 12)
    assert lstm.params["recurrent_kernel"].shape == (3, 12)
    assert_array_equal(lstm.params["bias"], [0] * 3 + [1] * 3 + [0] * 6)
    assert gru.params["kernel"].shape == (3, 6)
    assert gru.params["recurrent_bias"].shape == (6,)
    # GRU(2) gives (2,) per sample: read as 2 steps of one feature.
    assert rnn.params["kernel"].shape == (1, 4)
    assert rnn.params["recurrent_kernel"].shape == (4, 4)


def test_masks_flow_from_embedding_and_masking():
    tokens = np.array([[3, 1, 0, 0], [2, 0, 0, 0]], float)
    specs = [Embedding(5, 3, mask_zero=True), GRU(2, return_sequences=True),
             GlobalAvgPool1D(data_format="channels_last")]
    net = Network(build_layers(specs, (4,), np.float64), np.float64)
    net.initialize(np.random.RandomState(0))
    Y = net.forward(tokens)
    trimmed = Network(build_layers(specs, (2,), np.float64), np.float64)
    trimmed.set_weights(net.get_weights())
    # Padding neither changes the state nor counts in the mean.
    assert_allclose(Y[0], trimmed.forward(tokens[:1, :2])[0], rtol=1e-12)
    one = Network(build_layers(specs, (1,), np.float64), np.float64)
    one.set_weights(net.get_weights())
    assert_allclose(Y[1], one.forward(tokens[1:, :1])[0], rtol=1e-12)
    values = np.random.RandomState(1).randn(2, 4, 3)
    values[0, 2:] = -1.0
    masked = Network(build_layers([Masking(-1.0), LSTM(2)], (4, 3), np.float64), np.float64)
    masked.initialize(np.random.RandomState(0))
    plain = Network(build_layers([LSTM(2)], (2, 3), np.float64), np.float64)
    plain.params[:] = masked.params  # Masking has no weights: the same LSTM
    assert_allclose(masked.forward(values)[0], plain.forward(values[:1, :2])[0], rtol=1e-12)


def test_masked_gradients_through_a_network():
    rng = np.random.RandomState(10)
    tokens = rng.randint(1, 6, (3, 5)).astype(float)
    tokens[0, 3:] = 0
    tokens[2, :] = 0
    net = Network(build_layers([Embedding(6, 2, mask_zero=True), LSTM(2, return_sequences=True),
                                GlobalMaxPool1D(data_format="channels_last")], (5,),
                               np.float64), np.float64)
    net.initialize(rng)
    R = rng.randn(3, 2)

    def loss():
        return float((R * net.forward(tokens)).sum())

    net.forward(tokens, training=True)
    net.backward(R, None, 1.0, np.float64)
    assert_allclose(net.grads, numeric_grad(loss, net.params), rtol=1e-6, atol=1e-8)
    emb = net.layers[0].grads["embeddings"]
    assert_array_equal(emb[0], 0)  # padding's vector gets no gradient


@pytest.mark.parametrize("kind", [GlobalAvgPool1D, GlobalMaxPool1D])
def test_sequence_pooling_gradients_with_masks(kind):
    rng = np.random.RandomState(11)
    X = rng.randn(3, 4, 2)
    mask = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
    layer = check_layer(kind(data_format="channels_last"), X, mask=mask)
    Y = layer.forward(X, mask=mask)
    assert_array_equal(Y[1], 0)  # nothing left to pool
    expected = X[0, [0, 1, 3]].mean(0) if kind is GlobalAvgPool1D else X[0, [0, 1, 3]].max(0)
    assert_allclose(Y[0], expected, rtol=1e-12)


def test_embedding_lookup_gradient_and_options():
    rng = np.random.RandomState(12)
    table = rng.randn(4, 3)
    net = Network(build_layers([Embedding(4, 3, weights=table)], (5,), np.float64), np.float64)
    net.initialize(rng)
    tokens = np.array([[0, 1, 1, 3, 2], [3, 3, 3, 3, 3]], float)
    assert_array_equal(net.forward(tokens), table[tokens.astype(int)])
    R = rng.randn(2, 5, 3)
    w = np.array([2.0, 0.5])
    net.forward(tokens, training=True)
    net.backward(R, w, 0.1, np.float64)
    expected = np.zeros_like(table)
    np.add.at(expected, tokens.astype(int).ravel(), (R * w[:, None, None]).reshape(-1, 3))
    assert_allclose(net.layers[0].grads["embeddings"], 0.1 * expected, rtol=1e-12)
    frozen = Network(build_layers([Embedding(4, 3, trainable=False)], (5,), np.float64),
                     np.float64)
    frozen.initialize(rng)
    frozen.forward(tokens, training=True)
    frozen.backward(R, None, 1.0, np.float64)
    assert_array_equal(frozen.grads, 0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("tokens, message", [
    (np.array([[0, 4]]), r"must be in \[0, 4\)"),
    (np.array([[-1, 2]]), r"must be in \[0, 4\)"),
    (np.array([[0.5, 2]]), "whole numbers"),
])
def test_bad_token_indices_are_clear_errors(tokens, message):
    clf = NNClassifier([Embedding(4, 2)], max_iter=2, random_state=0)
    with pytest.raises(ValueError, match=message):
        clf.fit(np.vstack([tokens, [[1, 1]]]).astype(float), [0, 1])
    good = NNClassifier([Embedding(4, 2)], max_iter=2, random_state=0).fit(
        np.array([[1, 2], [3, 0]], float), [0, 1])
    with pytest.raises(ValueError, match=message):
        good.predict(tokens.astype(float))


@pytest.mark.parametrize("spec, input_shape, message", [
    (GRU(2), (2, 3, 4), r"sequences of shape \(steps, features\)"),
    (Embedding(3, 2), (4, 2), r"expects \(steps,\) token indices"),
    (Embedding(3, 2, weights=np.ones((2, 2))), (4,), r"weights has shape \(2, 2\)"),
    (GRU(2, recurrent_activation="relu"), (3, 1), "recurrent_activation"),
    (LSTM(0), (3, 1), "units"),
])
def test_bad_layer_setup(spec, input_shape, message):
    with pytest.raises(ValueError, match=message):
        build_layers([spec], input_shape, np.float64)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_learn_sequences():
    rng = np.random.RandomState(13)
    X = rng.randn(300, 8)
    y = X[:, :4].sum(axis=1)
    for spec in [SimpleRNN(8), GRU(8), LSTM(8)]:
        reg = NNRegressor([spec], input_shape=(-1, 1), learning_rate=0.01, max_iter=80,
                          random_state=0).fit(X, y)
        assert reg.score(X, y) > 0.8, spec
    tokens = rng.randint(1, 10, (200, 6)).astype(float)
    tokens[::2, 3:] = 0  # padded, shorter sequences
    labels = (tokens == 3).any(axis=1).astype(int)
    clf = NNClassifier([Embedding(10, 6, mask_zero=True), Bidirectional(LSTM(6))],
                       learning_rate=0.01, max_iter=80, random_state=0).fit(tokens, labels)
    assert clf.score(tokens, labels) > 0.95
    # Prediction does not depend on the batch a sample comes in.
    assert_array_equal(clf.predict_proba(tokens[:7]), clf.predict_proba(tokens)[:7])


def test_gradient_context_weights_every_step_of_a_sample():
    # A recurrent layer's weight gradient sums over samples and steps; a
    # sample weight of 2 must count like the sample twice.
    rng = np.random.RandomState(14)
    X = rng.randn(2, 3, 2)
    net = Network(build_layers([GRU(2)], (3, 2), np.float64), np.float64)
    net.initialize(rng)
    R = rng.randn(2, 2)
    net.forward(X, training=True)
    net.backward(R, np.array([2.0, 1.0]), 1.0, np.float64)
    weighted = net.grads.copy()
    net.forward(X[[0, 0, 1]], training=True)
    net.backward(R[[0, 0, 1]], None, 1.0, np.float64)
    assert_allclose(weighted, net.grads, rtol=1e-12)


@pytest.mark.parametrize("cell, G", CELLS)
@pytest.mark.parametrize("T", [1, 2, 5])
def test_inference_keeps_less_and_computes_the_same(cell, G, T):
    rng = np.random.RandomState(15)
    X = rng.randn(4, T, 3)
    W, U, b, bh = _weights(rng, cell, G, 3, 4)
    mask = rng.rand(4, T) > 0.3
    full = _ops.recurrent_forward(cell, X, W, U, b, bh, mask).H
    states = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, keep="states")
    assert_array_equal(states.H, full)
    if cell != "simple":
        assert states.gates.shape[1] == 1
    last = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, keep="last").H
    assert last.shape == (4, 2, 4)
    assert_array_equal(last[:, T % 2], full[:, T])
    with pytest.raises(ValueError, match="keep must be"):
        _ops.recurrent_forward(cell, X, W, U, b, bh, keep="some")


def test_inference_in_blocks_matches_training_forward():
    # Inference runs in blocks of 256 rows; the rows must not notice.
    rng = np.random.RandomState(16)
    X = rng.randn(600, 3, 2).astype(np.float32)
    for spec in [LSTM(3), GRU(2, return_sequences=True)]:
        net = Network(build_layers([spec], (3, 2), np.float32), np.float32)
        net.initialize(rng)
        assert_array_equal(net.forward(X), net.forward(X, training=True))
        assert_array_equal(net.forward(X[300:301]), net.forward(X)[300:301])


def test_digits_read_as_sequences_example():
    make_model = load_example("digits_sequence").make_model
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16, y, test_size=0.25, stratify=y, random_state=0)
    assert make_model().fit(X_train, y_train).score(X_test, y_test) >= 0.97


def test_text_example_lstm_reads_word_order():
    example = load_example("text_lstm")
    texts, labels = example.load_reviews()
    assert len(texts) == 4000 and set(labels) == {0, 1}
    train_texts, test_texts, y_train, y_test = train_test_split(
        texts, labels, test_size=0.25, stratify=labels, random_state=0)
    tokens = example.Tokens().fit(train_texts)
    X_train, X_test = tokens.transform(train_texts), tokens.transform(test_texts)
    assert (X_train == 0).any()  # padded: the mask matters
    model = example.make_model(len(tokens.ids) + 2).fit(X_train, y_train)
    # Negations and "but" defeat a bag of words (about 57%); the LSTM reads them.
    assert model.score(X_test, y_test) >= 0.95


@pytest.mark.parametrize("cell, G", CELLS)
def test_last_step_gradient_alone_equals_a_padded_sequence_gradient(cell, G):
    rng = np.random.RandomState(18)
    X = rng.randn(4, 5, 3)
    W, U, b, bh = _weights(rng, cell, G, 3, 2)
    mask = rng.rand(4, 5) > 0.3
    state = _ops.recurrent_forward(cell, X, W, U, b, bh, mask)
    last = rng.randn(4, 1, 2)
    padded = np.zeros((4, 5, 2))
    padded[:, -1:] = last
    for a, b_ in zip(_ops.recurrent_backward(cell, last, X, W, U, state),
                     _ops.recurrent_backward(cell, padded, X, W, U, state)):
        assert_array_equal(a, b_)
    with pytest.raises(ValueError, match=r"dY must have shape \(4, 5, 2\) or \(4, 1, 2\)"):
        _ops.recurrent_backward(cell, np.zeros((4, 2, 2)), X, W, U, state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell, G", CELLS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("last_only", [False, True])
def test_backward_matches_reference(cell, G, masked, last_only, dtype):
    rng = np.random.RandomState(19)
    n, T, k, u = 6, 5, 3, 4
    X = rng.randn(n, T, k).astype(dtype)
    W, U, b, bh = _weights(rng, cell, G, k, u, dtype)
    mask = rng.rand(n, T) > 0.3 if masked else None
    dY = rng.randn(n, 1 if last_only else T, u).astype(dtype)
    w = rng.uniform(0.5, 2, n)
    state = _ops.recurrent_forward(cell, X, W, U, b, bh, mask)
    got = _ops.recurrent_backward(cell, dY, X, W, U, state, w, 0.3)
    ref = _reference.recurrent_backward(cell, dY, X, W, U, state, w, 0.3)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    for name, a, r in zip(["dX", "dW", "dU", "db", "dbh"], got, ref):
        assert_allclose(a, r, **tol, err_msg=name)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_recurrent_models_pickle_and_predict_identically(tmp_path):
    import joblib

    rng = np.random.RandomState(20)
    tokens = rng.randint(0, 9, (40, 6)).astype(float)
    labels = rng.randint(0, 2, 40)
    clf = NNClassifier([Embedding(9, 4, mask_zero=True),
                        Bidirectional(GRU(3, return_sequences=True)),
                        GlobalAvgPool1D(data_format="channels_last")],
                       max_iter=3, random_state=0).fit(tokens, labels)
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    assert_array_equal(loaded.predict_proba(tokens), clf.predict_proba(tokens))


def test_embedding_gradient_checks_its_accumulation_dtype():
    indices = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match="accumulate_dtype must be float32 or float64"):
        _ops.embedding_backward(indices, np.ones((2, 3, 4)), 5, accumulate_dtype=np.int32)


# -- initial states (h0, c0) and their gradients ---------------------------------
def _initial_case(rng, cell, G, n=3, T=4, k=2, u=3, masked=False):
    X = rng.randn(n, T, k)
    W, U, b, bh = _weights(rng, cell, G, k, u)
    h0 = rng.randn(n, u)
    c0 = rng.randn(n, u) if cell == "lstm" else None
    mask = None
    if masked:
        mask = rng.rand(n, T) > 0.3
        mask[0] = False  # a sequence with no step at all: its state is h0
    return X, W, U, b, bh, h0, c0, mask


@pytest.mark.parametrize("cell, G", CELLS)
@pytest.mark.parametrize("masked", [False, True])
def test_initial_state_forward_matches_reference(cell, G, masked):
    rng = np.random.RandomState(20)
    X, W, U, b, bh, h0, c0, mask = _initial_case(rng, cell, G, n=5, T=6, masked=masked)
    got = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, h0=h0, c0=c0)
    ref = _reference.recurrent_forward(cell, X, W, U, b, bh, mask, h0=h0, c0=c0)
    assert_array_equal(got.H[:, 0], h0)
    for name in ("H", "C", "gates", "extra"):
        if getattr(ref, name) is not None:
            assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-12,
                            atol=1e-13, err_msg=name)
    if masked:
        assert_array_equal(got.H[0, -1], h0[0])  # nothing read: h0 throughout
    # Inference keeping only the last state starts from h0 too.
    last = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, keep="last", h0=h0, c0=c0)
    assert_array_equal(last.H[:, X.shape[1] % 2], got.H[:, -1])
    # The state really matters: from zeros the result differs.
    assert not np.allclose(_ops.recurrent_forward(cell, X, W, U, b, bh, mask).H[:, -1],
                           got.H[:, -1])


@pytest.mark.parametrize("cell, G", CELLS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("last_only", [False, True])
def test_initial_state_gradients_match_finite_differences(cell, G, masked, last_only):
    rng = np.random.RandomState(21)
    X, W, U, b, bh, h0, c0, mask = _initial_case(rng, cell, G, masked=masked)
    n, T, u = X.shape[0], X.shape[1], U.shape[0]
    R = rng.randn(n, 1 if last_only else T, u)
    # An LSTM's final cell state as an output too (an encoder's return_state).
    Rc = rng.randn(n, u) if cell == "lstm" else None

    def loss():
        state = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, h0=h0, c0=c0)
        out = state.H[:, -1:] if last_only else state.H[:, 1:]
        return float((R * out).sum() + (0 if Rc is None else (Rc * state.C[:, -1]).sum()))

    state = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, h0=h0, c0=c0)
    got = _ops.recurrent_backward(cell, R, X, W, U, state, dc_last=Rc, state_grads=True)
    ref_state = _reference.recurrent_forward(cell, X, W, U, b, bh, mask, h0=h0, c0=c0)
    ref = _reference.recurrent_backward(cell, R, X, W, U, ref_state, dc_last=Rc,
                                        state_grads=True)
    dX, dW, dU, db, dbh, dh0, dc0 = got
    checks = [(dX, X), (dW, W), (dU, U), (db, b), (dh0, h0)]
    checks += [(dbh, bh)] if bh is not None else []
    checks += [(dc0, c0)] if c0 is not None else []
    for grad, value in checks:
        assert_allclose(grad, numeric_grad(loss, value), rtol=1e-6, atol=1e-8)
    for grad, expected in zip(got, ref):
        if expected is None:
            assert grad is None
        else:
            assert_allclose(grad, expected, rtol=1e-10, atol=1e-12)
    if masked:
        # A sequence with no step passes its output gradient straight to h0.
        assert_allclose(dh0[0], R[0].sum(axis=0))


@pytest.mark.parametrize("cell, G", CELLS)
def test_zero_initial_state_is_bit_identical_to_none(cell, G):
    rng = np.random.RandomState(22)
    X, W, U, b, bh, h0, c0, mask = _initial_case(rng, cell, G, n=9, T=5, masked=True)
    X, W, U = (a.astype(np.float32) for a in (X, W, U))
    b = b.astype(np.float32)
    bh = None if bh is None else bh.astype(np.float32)
    zeros = np.zeros((9, U.shape[0]), np.float32)
    plain = _ops.recurrent_forward(cell, X, W, U, b, bh, mask)
    given_ = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, h0=zeros,
                                    c0=zeros if cell == "lstm" else None)
    assert_array_equal(plain.H, given_.H)
    R = rng.randn(9, 5, U.shape[0]).astype(np.float32)
    for a, b_ in zip(_ops.recurrent_backward(cell, R, X, W, U, plain),
                     _ops.recurrent_backward(cell, R, X, W, U, given_, state_grads=True)):
        assert_array_equal(a, b_)


@pytest.mark.parametrize("cell, G", CELLS)
def test_initial_state_same_on_one_and_two_threads(cell, G):
    rng = np.random.RandomState(23)
    X, W, U, b, bh, h0, c0, mask = _initial_case(rng, cell, G, n=40, T=7, k=5, u=9,
                                                 masked=True)
    R = rng.randn(40, 7, 9)
    results = []
    for threads in (one_thread, two_threads):
        with threads():
            state = _ops.recurrent_forward(cell, X, W, U, b, bh, mask, h0=h0, c0=c0)
            results.append((state.H.copy(),) + _ops.recurrent_backward(
                cell, R, X, W, U, state, state_grads=True))
    for a, b_ in zip(*results):
        if a is not None:
            assert_array_equal(a, b_)


def test_initial_state_errors():
    rng = np.random.RandomState(24)
    X, W, U, b, bh, h0, c0, mask = _initial_case(rng, "gru", 3)
    with pytest.raises(ValueError, match=r"h0 must have shape \(3, 3\).*got \(3, 2\)"):
        _ops.recurrent_forward("gru", X, W, U, b, bh, h0=h0[:, :2])
    with pytest.raises(ValueError, match="c0 is a cell state, and the gru cell has none"):
        _ops.recurrent_forward("gru", X, W, U, b, bh, h0=h0, c0=h0)
    state = _ops.recurrent_forward("gru", X, W, U, b, bh)
    with pytest.raises(ValueError, match="dc_last is a cell state"):
        _ops.recurrent_backward("gru", rng.randn(3, 4, 3), X, W, U, state, dc_last=h0)
    X, W, U, b, bh, h0, c0, mask = _initial_case(rng, "lstm", 4)
    with pytest.raises(ValueError, match=r"c0 must have shape \(3, 3\)"):
        _ops.recurrent_forward("lstm", X, W, U, b, bh, h0=h0, c0=c0[:2])


# -- initial_state: one layer's output as a recurrent layer's initial state -------
def _seq2seq(encoder, decoder, rest=()):
    """An encoder on the main input, a decoder on the side input 'answer'
    starting from the encoder's output, their outputs concatenated."""
    layers = decoder if isinstance(decoder, list) else [decoder]
    return [encoder, MergeInput("answer", layers=layers), *rest]


def _seq2seq_data(rng, n=4, T1=3, T2=4, k=2, tokens=False):
    if tokens:
        main = rng.randint(1, 6, (n, T1)).astype(float)
        side = rng.randint(1, 6, (n, T2)).astype(float)
        side[0] = 0        # an empty answer: the decoder's output is its h0
        side[1, 2:] = 0    # a padded one
        return (T1,), np.hstack([main, side]), {"answer": (T2,)}
    return ((T1, k), np.hstack([rng.randn(n, T1 * k), rng.randn(n, T2 * k)]),
            {"answer": (T2, k)})


@pytest.mark.parametrize("encoder, decoder", [
    (SimpleRNN(3, name="enc"), SimpleRNN(3, initial_state="enc")),
    (GRU(3, name="enc"),
     [GRU(3, initial_state="enc", return_sequences=True), GlobalAvgPool1D()]),
    (LSTM(3, name="enc"), LSTM(3, initial_state="enc")),  # h only, c0 = 0
    (LSTM(3, return_state=True, name="enc"), LSTM(3, initial_state="enc")),
    (LSTM(3, return_state=True, name="enc"),
     LSTM(3, initial_state="enc", go_backwards=True, return_state=True)),
    (GRU(3, name="enc"), LSTM(3, initial_state="enc")),  # a GRU's h for an LSTM
], ids=["simple", "gru-sequences", "lstm-h", "lstm-hc", "lstm-backwards", "gru-to-lstm"])
def test_state_passing_gradients_reach_the_encoder(encoder, decoder):
    rng = np.random.RandomState(30)
    shape, flat, side = _seq2seq_data(rng)
    net = check_network_gradients(_seq2seq(encoder, decoder), (shape, flat), side)
    enc = net.find_layer("enc")
    assert np.abs(enc.grads["recurrent_kernel"]).max() > 1e-3  # reached through h0


def test_state_passing_gradients_with_masks_and_embeddings():
    rng = np.random.RandomState(31)
    shape, flat, side = _seq2seq_data(rng, tokens=True)
    specs = [Embedding(6, 3, mask_zero=True), LSTM(3, return_state=True, name="enc"),
             MergeInput("answer", layers=[Embedding(6, 3, mask_zero=True),
                                          LSTM(3, initial_state="enc", name="dec")]),
             Dense(2, activation="tanh")]
    net = check_network_gradients(specs, (shape, flat), side)
    # The empty answer: the decoder carries the encoder's h (its first half).
    state = net.layer_output(flat, "enc")
    assert_array_equal(net.layer_output(flat, "dec")[0], state[0, :3])


def test_state_passing_in_pathways_checks_input_gradients():
    # Later branches run backward first, so the second branch's gradient for
    # the first branch's output is in before that branch runs backward.
    rng = np.random.RandomState(32)
    X = rng.randn(4, 5, 2)
    specs = [Pathways([[GRU(3, name="enc")],
                       [GRU(3, initial_state="enc", go_backwards=True)],
                       [Dense(2), LSTM(3, initial_state="enc", return_sequences=True),
                        GlobalAvgPool1D()]], axis=-1),
             Dense(2)]
    check_network_gradients(specs, X)


@pytest.mark.parametrize("cell, G", CELLS)
def test_state_passing_matches_the_op_with_h0(cell, G):
    rng = np.random.RandomState(33)
    shape, flat, side = _seq2seq_data(rng, n=300)  # more than one inference block
    encoder = SPECS[cell](4, name="enc", **({"return_state": True} if cell == "lstm" else {}))
    decoder = SPECS[cell](4, initial_state="enc", name="dec", return_sequences=True)
    net = _networks.initialized_network(_seq2seq(encoder, [decoder, GlobalAvgPool1D()]),
                                        shape, side_inputs=side)
    state = net.layer_output(flat, "enc")
    dec = net.find_layer("dec")
    answer = flat[:, 6:].reshape(300, 4, 2)
    h0, c0 = (state[:, :4], state[:, 4:]) if cell == "lstm" else (state, None)
    expected = _reference.recurrent_forward(
        cell, answer, dec.params["kernel"], dec.params["recurrent_kernel"],
        dec.params.get("bias"), dec.params.get("recurrent_bias"), h0=h0, c0=c0).H[:, 1:]
    assert_allclose(net.layer_output(flat, "dec"), expected, rtol=1e-10, atol=1e-12)
    # Training and inference passes agree.
    assert_allclose(net.forward(flat, training=True), net.forward(flat), rtol=1e-12)
    if cell == "lstm":
        enc = net.find_layer("enc")
        main = flat[:, :6].reshape(300, 3, 2)
        ref = _reference.recurrent_forward("lstm", main, enc.params["kernel"],
                                           enc.params["recurrent_kernel"], enc.params["bias"])
        assert_allclose(state, np.hstack([ref.H[:, -1], ref.C[:, -1]]), rtol=1e-10)


@pytest.mark.parametrize("specs, side, match", [
    ([LSTM(3, initial_state="enc")], None,
     r"LSTM 'lstm' takes its initial state from a layer named 'enc', but no layer of "
     r"that name comes before it in the network \(it is the first layer\)"),
    ([GRU(3, name="a"), MergeInput("answer", layers=[GRU(3, initial_state="b")])],
     {"answer": (4, 2)}, r"the layers before it are \['a'\]"),
    ([MergeInput("answer", layers=[GRU(3, initial_state="later")]), Dense(3, name="later")],
     {"answer": (4, 2)}, "no layer of that name comes before it"),
    ([GRU(3, name="enc"), MergeInput("answer", layers=[GRU(4, initial_state="enc")])],
     {"answer": (4, 2)},
     r"GRU 'gru' takes its initial state from 'enc', whose output per sample has shape "
     r"\(3,\); a GRU of 4 units needs \(4,\), one state"),
    ([LSTM(3, name="enc", return_sequences=True),
      MergeInput("answer", layers=[LSTM(3, initial_state="enc")])],
     {"answer": (4, 2)}, r"needs \(3,\) for h, or \(6,\) for h and c side by side"),
    ([LSTM(3, return_sequences=True, return_state=True)], None,
     "cannot both return_sequences and return_state"),
    ([GRU(3, name="enc"), Bidirectional(GRU(3, initial_state="enc"))], None,
     "Bidirectional 'bidirectional': its layer has initial_state='enc'"),
])
def test_initial_state_build_errors(specs, side, match):
    with pytest.raises(ValueError, match=match):
        build_layers(specs, (4, 2), np.float64, side_inputs=side)


def test_initial_state_layer_alone_is_a_clear_error():
    with pytest.raises(ValueError, match="built within a network holding that layer"):
        LSTM(3, initial_state="enc").build((4, 2), np.float64, "dec")
    with pytest.raises(Exception, match="initial_state"):
        build_layers([GRU(3, initial_state=5)], (4, 2), np.float64)
    net = _networks.initialized_network(
        [GRU(3, name="enc"), MergeInput("answer", layers=[GRU(3, initial_state="enc",
                                                              name="dec")])],
        (4, 2), side_inputs={"answer": (4, 2)})
    with pytest.raises(ValueError, match="'enc', which has not run in this pass"):
        net.find_layer("dec").forward(np.zeros((1, 4, 2)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_state_passing_estimator_fits_clones_and_pickles(tmp_path):
    import joblib
    from sklearn.base import clone

    rng = np.random.RandomState(34)
    n = 60
    question = rng.randint(1, 5, (n, 4))
    answer = rng.randint(1, 5, (n, 3))
    y = (question[:, 0] + answer[:, -1]) % 3  # needs the question: the state
    est = NNClassifier(
        [Embedding(5, 4, mask_zero=True), LSTM(8, return_state=True, name="enc"),
         MergeInput("answer", merge="add", layers=[
             Embedding(5, 4, mask_zero=True), LSTM(8, initial_state="enc"),
             Dense(16)])],
        input_shape={"question": (4,), "answer": (3,)}, max_iter=60,
        learning_rate=0.02, random_state=0)
    X = {"question": question, "answer": answer}
    est.fit(X, y)
    assert est.score(X, y) > 0.9
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    assert_array_equal(joblib.load(path).predict_proba(X), est.predict_proba(X))
    assert clone(est).get_params()["layers"][1].return_state
