"""ONNX export (skdl.onnx): onnxruntime's predictions of a converted model
equal skdl's, alone and inside scikit-learn pipelines; layers the export does
not convert are refused by name."""
import warnings

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
rt = pytest.importorskip("onnxruntime")

import skl2onnx  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import skdl.onnx  # noqa: E402, F401  (registers the converters)
from _examples import load_example  # noqa: E402
from _fresh import in_fresh_python  # noqa: E402
from skdl import (  # noqa: E402
    GRU,
    LSTM,
    Activation,
    AvgPool1D,
    AvgPool2D,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    ConvBlock2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    HiddenBlock,
    LastStep,
    LayerNormalization,
    MaxPool1D,
    Masking,
    MaxPool2D,
    MultiHeadAttention,
    NNClassifier,
    NNRegressor,
    Pathways,
    PositionalEmbedding,
    PReLU,
    Reshape,
    SimpleRNN,
    TransformerEncoderBlock,
)
from skdl import _ops  # noqa: E402
from skdl.layers import Layer  # noqa: E402

NO_ZIPMAP = {NNClassifier: {"zipmap": False}}


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs suffice
        return model.fit(X, y)


def _run(model, X, options=None, target_opset=None):
    """onnxruntime's outputs of ``model`` converted with skl2onnx.to_onnx."""
    onx = skl2onnx.to_onnx(model, X[:1], options=options, target_opset=target_opset)
    session = rt.InferenceSession(onx.SerializeToString(),
                                  providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def _assert_classifier_matches(model, X):
    labels, probabilities = _run(model, X, options=NO_ZIPMAP)
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("activation", sorted(_ops.ACTIVATIONS))
def test_every_activation_matches(digits, activation):
    X, y = digits
    X, y = X[:200], y[:200]
    alpha = {"leaky_relu": 0.2, "elu": 0.7}.get(activation)
    model = _fit(NNRegressor(layers=[Dense(12, activation=activation, alpha=alpha),
                                     Activation(activation, alpha=alpha)],
                             max_iter=3, random_state=0), X, np.c_[y, X[:, 20]])
    (predicted,) = _run(model, X)
    np.testing.assert_allclose(predicted, model.predict(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layers", [
    # dense: PReLU, dropout and batch normalization with running statistics
    [Dense(24, activation="relu"), BatchNormalization(), PReLU(), Dropout(0.3),
     HiddenBlock(16, batch_norm=True, dropout=0.2)],
    # images: convolutions with padding, strides and dilation, both pools
    [Reshape((1, 8, 8)), Conv2D(4, 3, padding="same", activation="elu"),
     BatchNormalization(), PReLU(), MaxPool2D(), Conv2D(3, 2, dilation=2),
     AvgPool2D(2, strides=1, padding=1), Flatten()],
    [Reshape((1, 8, 8)), ConvBlock2D(4, batch_norm=True), GlobalMaxPool2D()],
    [Reshape((1, 8, 8)), Conv2D(5, 3, strides=2), GlobalAvgPool2D()],
    # signals: channels-first and channels-last 1-D convolutions and pools
    [Reshape((4, 16)), Conv1D(6, 3, padding="same", activation="tanh"), PReLU(),
     MaxPool1D(2), Conv1D(4, 2, dilation=2, strides=2), GlobalMaxPool1D()],
    [Reshape((16, 4)), Conv1D(6, 3, data_format="channels_last", activation="softsign"),
     BatchNormalization(), AvgPool1D(2, padding=1, data_format="channels_last"),
     GlobalAvgPool1D(data_format="channels_last")],
    [Reshape((16, 4)), Conv1D(6, 3, data_format="channels_last"),
     GlobalMaxPool1D(data_format="channels_last")],
], ids=["dense", "conv2d", "conv_block", "global_avg2d", "conv1d", "conv1d_last",
        "global_max1d_last"])
def test_layer_families_match(digits, layers):
    X, y = digits
    model = _fit(NNClassifier(layers=layers, max_iter=3, random_state=0), X[:300], y[:300])
    _assert_classifier_matches(model, X[:300])


def test_binary_classifier_gives_both_probabilities_through_zipmap(digits):
    X, y = digits
    labels = np.where(y[:200] > 4, "high", "low")
    model = _fit(NNClassifier(layers=[Dense(8)], max_iter=5, random_state=0),
                 X[:200], labels)
    predicted, zipped = _run(model, X[:200])  # skl2onnx's default: a ZipMap
    np.testing.assert_array_equal(predicted, model.predict(X[:200]))
    as_array = np.array([[row[c] for c in model.classes_] for row in zipped])
    np.testing.assert_allclose(as_array, model.predict_proba(X[:200]), atol=1e-5)


def test_regressor_outputs_and_poisson_mean(digits):
    X, y = digits
    model = _fit(NNRegressor(layers=[Dense(8, activation="relu")], loss="poisson",
                             max_iter=5, random_state=0), X[:200], y[:200] + 1.0)
    (predicted,) = _run(model, X[:200])
    assert predicted.shape == (200, 1)
    np.testing.assert_allclose(predicted[:, 0], model.predict(X[:200]), rtol=1e-5)


def test_float64_model_runs_in_double(digits):
    X, y = digits
    X = X[:200].astype(np.float64)
    model = _fit(NNRegressor(layers=[Dense(8, activation="tanh"), BatchNormalization()],
                             dtype="float64", max_iter=3, random_state=0), X, y[:200])
    (predicted,) = _run(model, X)  # float64 rows: a graph in double
    assert predicted.dtype == np.float64
    np.testing.assert_allclose(predicted[:, 0], model.predict(X), rtol=1e-12, atol=1e-12)
    recurrent = _fit(NNRegressor(layers=[Reshape((8, 8)), Masking(), GRU(4)],
                                 dtype="float64", max_iter=3, random_state=0), X, y[:200])
    (predicted,) = _run(recurrent, X)  # the Scan's body in double too
    np.testing.assert_allclose(predicted[:, 0], recurrent.predict(X), rtol=1e-12, atol=1e-12)


def test_readme_minimal_example_pipeline():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    model = make_pipeline(
        StandardScaler(),
        NNClassifier(layers=[Dense(256, activation="relu"), Dropout(0.2),
                             Dense(128, activation="relu")],
                     batch_size=64, max_iter=5, random_state=0),
    )
    _fit(model, X_train, y_train)
    X_test = X_test.astype(np.float32)  # ONNX graphs take float32 by default
    _assert_classifier_matches(model, X_test)


def test_column_transformer_pipeline(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    prep = ColumnTransformer([("scaled", StandardScaler(), list(range(32))),
                              ("raw", "passthrough", list(range(32, 64)))])
    model = _fit(make_pipeline(prep, NNClassifier(layers=[Dense(16, activation="sigmoid")],
                                                  max_iter=5, random_state=0)), X, y)
    _assert_classifier_matches(model, X)


def _tokens(X):
    """Digits' pixels (in [0, 1]) as word ids 0-8: zeros (padding) in the
    middle of the rows as well as at their ends, so masks are more than right
    padding."""
    return np.round(X * 8).astype(np.float32)


@pytest.mark.parametrize("layers", [
    [Embedding(9, 4, mask_zero=True), GlobalAvgPool1D()],
    [Embedding(9, 4, mask_zero=True), GlobalMaxPool1D(), Dense(6)],
    [Embedding(9, 4), Flatten()],
    # the mask through a channels-last convolution and pool (windows over
    # padding are masked) into a recurrent layer
    [Embedding(9, 4, mask_zero=True), Conv1D(3, 3, padding="same"), MaxPool1D(2), GRU(3)],
], ids=["mask_zero_avg", "mask_zero_max", "no_mask", "mask_through_conv"])
def test_embedding_and_masks_match(digits, layers):
    X, y = digits
    X = _tokens(X[:200])
    model = _fit(NNClassifier(layers=layers, max_iter=3, random_state=0), X, y[:200])
    _assert_classifier_matches(model, X)


def test_masking_matches(digits):
    X, y = digits
    X = X[:200].reshape(-1, 8, 8).copy()
    X[::2, 3] = 0  # padded steps in the middle and at the end
    X[::3, 6:] = 0
    X = X.reshape(-1, 64)
    model = _fit(NNClassifier(layers=[Reshape((8, 8)), Masking(), LSTM(4, return_sequences=True),
                                      GlobalMaxPool1D()], max_iter=3, random_state=0),
                 X, y[:200])
    _assert_classifier_matches(model, X)


@pytest.mark.parametrize("cell", [SimpleRNN, GRU, LSTM], ids=["simple_rnn", "gru", "lstm"])
@pytest.mark.parametrize("options", [
    {}, {"go_backwards": True}, {"return_sequences": True},
    {"return_sequences": True, "go_backwards": True, "activation": "softsign"},
], ids=["last", "backwards", "sequences", "sequences_backwards"])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_recurrent_layers_match(digits, cell, options, masked):
    X, y = digits
    if cell is not SimpleRNN:
        options = {**options, "recurrent_activation": "elliot"} if options else options
    head = [Embedding(9, 3, mask_zero=True)] if masked else [Reshape((8, 8))]
    layers = head + [cell(5, **options)]
    if options.get("return_sequences"):
        layers.append(cell(3))  # reads the sequence and its mask
    X = _tokens(X[:200]) if masked else X[:200]
    model = _fit(NNClassifier(layers=layers, max_iter=3, random_state=0), X, y[:200])
    _assert_classifier_matches(model, X)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_matches(digits, merge_mode):
    X, y = digits
    X = _tokens(X[:200])
    model = _fit(NNClassifier(layers=[
        Embedding(9, 4, mask_zero=True),
        Bidirectional(GRU(3, return_sequences=True), merge_mode=merge_mode),
        Bidirectional(LSTM(3, go_backwards=True), merge_mode=merge_mode)],
        max_iter=3, random_state=0), X, y[:200])
    _assert_classifier_matches(model, X)


def test_initial_state_and_return_state_match(digits):
    X, y = digits
    X = X[:200]
    model = _fit(NNRegressor(layers=[
        Reshape((8, 8)), LSTM(4, return_state=True, name="encoder"), Dense(6),
        Reshape((2, 3)), LSTM(4, initial_state="encoder", return_sequences=True),
        Flatten(), Dense(3), Reshape((1, 3)), GRU(2, name="h"),
        Reshape((1, 2)), SimpleRNN(2, initial_state="h")], max_iter=3, random_state=0),
        X, y[:200])
    (predicted,) = _run(model, X.astype(np.float32))
    np.testing.assert_allclose(predicted[:, 0], model.predict(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("merge", ["concat", "add", "multiply", "average"])
def test_pathways_match(digits, merge):
    X, y = digits
    X = X[:200].astype(np.float32)
    branches = [[Dense(6, activation="tanh")], [Dense(6), PReLU()], [Dense(6)]]
    if merge != "concat":
        branches.append([])  # the input itself
    model = _fit(NNClassifier(layers=[Dense(6), Pathways(branches, merge=merge)],
                              max_iter=3, random_state=0), X, y[:200])
    _assert_classifier_matches(model, X)
    images = _fit(NNClassifier(layers=[Reshape((1, 8, 8)), Pathways(
        [[Conv2D(3, 1)], [Conv2D(3, 3, padding="same"), BatchNormalization()]],
        merge=merge), GlobalMaxPool2D()], max_iter=3, random_state=0), X, y[:200])
    _assert_classifier_matches(images, X)


def test_side_inputs_take_flat_rows(digits):
    # examples/digits_pathways.py's network: side inputs arrive as flat rows,
    # every input's columns side by side (as a ColumnTransformer gives them).
    X, y = digits
    X, y = X[:200] / 16, y[:200]
    size = np.c_[(X.reshape(-1, 8, 8) > 0).any(axis=2).sum(axis=1),
                 (X.reshape(-1, 8, 8) > 0).any(axis=1).sum(axis=1)].astype(float)
    model = load_example("digits_pathways").make_pipeline(max_iter=2)[-1]
    flat = np.c_[X, size].astype(np.float32)
    _fit(model, flat, y)
    _assert_classifier_matches(model, flat)


def test_multilabel_classifier_gives_label_indicators(digits):
    X, y = digits
    X = X[:200].astype(np.float32)
    model = _fit(NNClassifier(layers=[Dense(8)], max_iter=5, random_state=0),
                 X, np.c_[y[:200] > 4, y[:200] % 2 == 0, y[:200] == 3])
    labels, probabilities = _run(model, X, options=NO_ZIPMAP)
    assert labels.dtype == np.int64 and labels.shape == (200, 3)
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-5)
    _, zipped = _run(model, X)  # through ZipMap: a dict per row, label index keys
    as_array = np.array([[row[k] for k in range(3)] for row in zipped])
    np.testing.assert_allclose(as_array, model.predict_proba(X), atol=1e-5)


def test_text_lstm_and_text_cnn_examples(digits):
    # The examples' own models on their bundled texts, a few epochs.
    text_lstm = load_example("text_lstm")
    texts, labels = text_lstm.load_reviews()
    tokens = text_lstm.Tokens().fit(texts)
    X = tokens.transform(texts).astype(np.float32)
    model = _fit(text_lstm.make_model(tokens.size, max_iter=2), X, labels)
    _assert_classifier_matches(model, X)
    text_cnn = load_example("text_cnn")
    texts, labels = text_cnn.load_questions()
    texts, labels = texts[:300], labels[:300]
    tokens = text_cnn.Tokens().fit(texts)
    X = tokens.transform(texts).astype(np.float32)
    for make in (text_cnn.make_cnn, text_cnn.make_lstm):
        model = _fit(make(tokens.size, max_iter=1), X, labels)
        _assert_classifier_matches(model, X)


def test_chatbot_example_encoder_decoder():
    # examples/chatbot.py: an encoder LSTM's return_state starts the decoder
    # LSTM on the side input "answer"; both embeddings mask padding.
    chatbot = load_example("chatbot")
    rng = np.random.RandomState(0)
    question = rng.randint(0, 12, (150, 7)) * (np.arange(7) < rng.randint(2, 8, (150, 1)))
    answer = rng.randint(0, 12, (150, 5)) * (np.arange(5) < rng.randint(1, 6, (150, 1)))
    y = rng.randint(2, 12, 150)
    model = _fit(chatbot.make_model(12, 7, 5, units=8, max_iter=2),
                 {"question": question, "answer": answer}, y)
    flat = np.c_[question, answer].astype(np.float32)
    labels, probabilities = _run(model, flat, options=NO_ZIPMAP)
    np.testing.assert_array_equal(labels, model.predict(flat))
    np.testing.assert_allclose(probabilities, model.predict_proba(flat), atol=1e-5)


def _padded_tokens(n=80, steps=7, seed=0):
    """Word ids 1-5 with padding 0 at the ends, in the middle, and over the
    whole of sample 0 (whose queries then see no key at all)."""
    rng = np.random.RandomState(seed)
    X = rng.randint(1, 6, (n, steps)).astype(np.float32)
    X[rng.rand(n, steps) < 0.25] = 0
    X[::3, steps - 2:] = 0
    X[0] = 0
    X[1, :-1] = 0  # one word, at the end: causal queries before it see nothing
    return X


def _assert_regressor_matches(model, X, **convert):
    (predicted,) = _run(model, X, **convert)
    np.testing.assert_allclose(predicted, model.predict(X).reshape(len(X), -1),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layers", [
    # masked: 3 heads, key_dim != features // heads, value_dim != key_dim
    [Embedding(6, 6, mask_zero=True), MultiHeadAttention(3, key_dim=4, value_dim=5),
     Flatten()],
    [Embedding(6, 6, mask_zero=True), MultiHeadAttention(1, causal=True), Flatten()],
    [Embedding(6, 6, mask_zero=True),
     MultiHeadAttention(2, key_dim=3, value_dim=2, causal=True, use_bias=False),
     GlobalAvgPool1D()],
    [Embedding(6, 6), MultiHeadAttention(3, key_dim=2, value_dim=4, use_bias=False),
     Flatten()],
    [Embedding(6, 6), MultiHeadAttention(2, causal=True), Flatten()],
], ids=["masked_heads3", "masked_causal_heads1", "masked_causal_no_bias",
        "no_mask_no_bias", "causal"])
def test_multi_head_attention_matches(layers):
    X = _padded_tokens()
    y = np.c_[X.sum(axis=1), X[:, 0]]
    model = _fit(NNRegressor(layers=layers, max_iter=5, random_state=0), X, y)
    # every query of sample 0 sees no key: its outputs are the output bias
    attention = model.network_.layers[1]
    if attention.use_bias and any(isinstance(s, Embedding) and s.mask_zero for s in layers):
        step_outputs = attention.forward(np.zeros((1, 7, 6), np.float32),
                                         mask=np.zeros((1, 7), bool))
        np.testing.assert_array_equal(step_outputs[0, 0], attention.params["output_bias"])
    _assert_regressor_matches(model, X)


@pytest.mark.parametrize("layers", [
    [Embedding(6, 6, mask_zero=True), MultiHeadAttention(2, causal=True), LastStep()],
    [Embedding(6, 3, mask_zero=True), LastStep(), Dense(5, activation="tanh")],
    [Embedding(6, 6), MultiHeadAttention(2, causal=True), LastStep()],
], ids=["masked_causal", "masked_embedding", "no_mask"])
def test_last_step_matches(layers):
    # _padded_tokens holds left-aligned (padded at the end), right-aligned
    # (sample 1: one word at the end), all-padding (sample 0) and holed rows.
    X = _padded_tokens()
    y = X[np.arange(len(X)), np.maximum(np.count_nonzero(X, axis=1) - 1, 0)] > 2
    model = _fit(NNClassifier(layers=layers, max_iter=5, random_state=0), X, y)
    _assert_classifier_matches(model, X)


@pytest.mark.parametrize("options", [
    {}, {"center": False}, {"scale": False}, {"center": False, "scale": False}],
    ids=["both", "no_center", "no_scale", "neither"])
@pytest.mark.parametrize("target_opset", [None, 15], ids=["opset_latest", "opset15"])
def test_layer_normalization_matches(digits, options, target_opset):
    X, y = digits
    X = X[:200] * 4 - 1  # means and variances far from 0 and 1
    model = _fit(NNRegressor(layers=[
        Reshape((8, 8)), LayerNormalization(epsilon=0.1, **options), Flatten(), Dense(5),
        LayerNormalization(**options)],  # on flat samples too
        max_iter=3, random_state=0), X, np.c_[y[:200], X[:, 20]])
    onx = skl2onnx.to_onnx(model, X[:1], target_opset=target_opset)
    # ONNX's LayerNormalization from opset 17, before it MatMuls and Sqrt
    used = {node.op_type for node in onx.graph.node}
    assert ("LayerNormalization" in used) == (target_opset is None)
    _assert_regressor_matches(model, X, target_opset=target_opset)


@pytest.mark.parametrize("mode", ["learned", "sinusoidal"])
def test_positional_embedding_matches(mode):
    X = _padded_tokens()
    model = _fit(NNRegressor(layers=[Embedding(6, 6, mask_zero=True), PositionalEmbedding(mode),
                                     MultiHeadAttention(2), GlobalAvgPool1D()],
                             max_iter=3, random_state=0), X, X.sum(axis=1))
    _assert_regressor_matches(model, X)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_transformer_encoder_block_matches(norm_first, causal):
    # A text classifier: masked tokens, positions, two blocks (the second
    # with 3 heads of odd sizes), a masked mean over the steps.
    X = _padded_tokens(120)
    y = (X == 3).any(axis=1).astype(int) + (X[:, 0] > 2)
    model = _fit(NNClassifier(layers=[
        Embedding(6, 6, mask_zero=True), PositionalEmbedding(),
        TransformerEncoderBlock(2, ff_units=8, norm_first=norm_first, causal=causal,
                                name="enc1"),
        TransformerEncoderBlock(3, key_dim=3, value_dim=2, ff_units=5, activation="tanh",
                                norm_first=norm_first, causal=causal, use_bias=False,
                                name="enc2"),
        GlobalAvgPool1D()], max_iter=5, random_state=0), X, y)
    _assert_classifier_matches(model, X)


def test_transformer_encoder_block_in_pathways_and_pipeline(digits):
    X, y = digits
    X, y = X[:200] * 16, y[:200]  # raw pixels, scaled by the pipeline
    blocks = Pathways([[TransformerEncoderBlock(2, ff_units=8, name="post")],
                       [TransformerEncoderBlock(1, ff_units=8, norm_first=True,
                                                name="pre")],
                       [MultiHeadAttention(2, causal=True), LayerNormalization()], []],
                      merge="add")
    model = _fit(make_pipeline(StandardScaler(), NNClassifier(layers=[
        Reshape((8, 8)), PositionalEmbedding("sinusoidal"), blocks, GlobalMaxPool1D()],
        max_iter=3, random_state=0)), X, y)
    _assert_classifier_matches(model, X)
    # the blocks in Pathways over masked text: each branch sees the mask
    tokens = _padded_tokens(120)
    text = _fit(NNClassifier(layers=[
        Embedding(6, 4, mask_zero=True),
        Pathways([[TransformerEncoderBlock(2, name="a")],
                  [TransformerEncoderBlock(2, norm_first=True, name="b")]], merge="concat",
                 axis=-1),
        GlobalAvgPool1D()], max_iter=3, random_state=0), tokens, tokens[:, 0] > 2)
    _assert_classifier_matches(text, tokens)


def test_transformer_encoder_block_float64():
    X = _padded_tokens().astype(np.float64)
    model = _fit(NNRegressor(layers=[
        Embedding(6, 6, mask_zero=True), PositionalEmbedding("sinusoidal"),
        TransformerEncoderBlock(3, key_dim=4, value_dim=3, ff_units=8, causal=True),
        TransformerEncoderBlock(2, ff_units=8, norm_first=True), GlobalAvgPool1D()],
        dtype="float64", max_iter=3, random_state=0), X, X.sum(axis=1))
    (predicted,) = _run(model, X)  # float64 rows: a graph in double
    assert predicted.dtype == np.float64
    np.testing.assert_allclose(predicted[:, 0], model.predict(X), rtol=1e-12, atol=1e-12)



class _Doubling(Layer):
    """A layer defined outside skdl: the export cannot know its graph."""

    def forward(self, X, training=False, rng=None, mask=None):
        return X * 2

    def backward(self, dY, context, need_input_grad=True):
        return dY * 2


def test_unknown_layer_is_refused_by_name(digits):
    X, y = digits
    model = _fit(NNClassifier(layers=[Dense(4)], max_iter=1, random_state=0), X[:60], y[:60])
    model.network_.layers.insert(0, _Doubling("doubling", (64,), (64,), np.float32))
    with pytest.raises(ValueError, match=(
            r"skdl's ONNX export does not convert Doubling layers yet \('doubling'\); "
            "it converts skdl's own layers")):
        skl2onnx.to_onnx(model, X[:1].astype(np.float32))


def test_importing_skdl_does_not_import_onnx():
    code = "import sys, skdl; print('skl2onnx' in sys.modules or 'onnx' in sys.modules)"
    assert in_fresh_python(code).strip() == "False"
