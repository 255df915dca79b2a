"""LayerNormalization, MultiHeadAttention, PositionalEmbedding and
TransformerEncoderBlock: values against numpy written here, gradients against
finite differences in float64, masks, errors, estimators and threads."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import GridSearchCV

from _fd import check_layer, check_network_gradients, numeric_grad
from _networks import initialized_network
from _threads import one_thread, two_threads
from skdl import (
    Dense,
    Embedding,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    LayerNormalization,
    MultiHeadAttention,
    NNClassifier,
    NNRegressor,
    Pathways,
    PositionalEmbedding,
    Reshape,
    TransformerEncoderBlock,
)
from skdl.layers._base import GradientContext, backward_chain


# -- numpy written from the docstrings --------------------------------------------

def _layer_norm(X, gamma, beta, epsilon):
    mean = X.mean(axis=-1, keepdims=True)
    var = ((X - mean) ** 2).mean(axis=-1, keepdims=True)
    return gamma * (X - mean) / np.sqrt(var + epsilon) + beta


def _softmax_rows(S, visible):
    S = np.where(visible, S, -np.inf)
    out = np.zeros_like(S)
    for index in np.ndindex(S.shape[:-1]):
        row = S[index]
        if np.isfinite(row).any():
            e = np.exp(row - row[np.isfinite(row)].max())
            out[index] = e / e.sum()
    return out


def _attention(X, p, mask=None, causal=False):
    """Self-attention of X (n, T, F) with the Keras-layout parameters ``p``."""
    n, T, F = X.shape
    H, dk = p["query_kernel"].shape[1:]
    q = np.einsum("ntf,fhd->nhtd", X, p["query_kernel"]) + p.get(
        "query_bias", np.zeros((H, dk)))[None, :, None]
    k = np.einsum("ntf,fhd->nhtd", X, p["key_kernel"]) + p.get(
        "key_bias", np.zeros((H, dk)))[None, :, None]
    v = np.einsum("ntf,fhd->nhtd", X, p["value_kernel"]) + p.get(
        "value_bias", np.zeros(p["value_kernel"].shape[1:]))[None, :, None]
    S = np.einsum("nhqd,nhkd->nhqk", q, k) / np.sqrt(dk)
    visible = np.ones((n, 1, T, T), bool)
    if mask is not None:
        visible &= mask[:, None, None, :]
    if causal:
        visible &= np.tril(np.ones((T, T), bool))
    P = _softmax_rows(S, np.broadcast_to(visible, S.shape))
    O = np.einsum("nhqk,nhkd->nhqd", P, v)
    return np.einsum("nhtd,hdf->ntf", O, p["output_kernel"]) + p.get("output_bias", 0.0)


def _away_from_zero(X):
    return np.where(np.abs(X) < 0.1, 0.1, X)


def _param_gradients(specs, X, sample_weight=None, training=False):
    """Parameter gradients of L = sum_i w_i sum(R_i * net(X)_i) against
    central differences, for networks whose input has no gradient (token
    indices)."""
    net = initialized_network(specs, X.shape[1:])
    R = np.random.RandomState(1).randn(*((len(X),) + net.output_shape))
    w = np.ones(len(X)) if sample_weight is None else sample_weight

    def loss():
        out = net.forward(X, training=training, rng=np.random.default_rng(0),
                          sample_weight=sample_weight)
        return float(np.sum(w * np.sum((R * out).reshape(len(X), -1), axis=1)))

    net.forward(X, training=True, rng=np.random.default_rng(0), sample_weight=sample_weight)
    backward_chain(net.layers, R, GradientContext(sample_weight, 1.0, np.float64),
                   need_input_grad=False)
    assert_allclose(net.grads, numeric_grad(loss, net.params), rtol=1e-5, atol=1e-7)
    return net


TOKENS = np.array([[3, 1, 4, 0, 0], [2, 2, 5, 1, 6], [4, 0, 0, 0, 0], [1, 6, 2, 3, 0]])


# -- LayerNormalization -------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 6), (3, 5, 4)])
@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False),
                                           (False, False)])
def test_layer_normalization_values_and_gradients(shape, center, scale):
    rng = np.random.RandomState(0)
    X = rng.randn(*shape) * 3 + 1
    spec = LayerNormalization(epsilon=0.01, center=center, scale=scale)
    w = rng.uniform(0.5, 2.0, shape[0])
    layer = check_layer(spec, X, sample_weight=w)
    assert set(layer.params) == {key for key, on in (("gamma", scale), ("beta", center)) if on}
    gamma = rng.randn(shape[-1])
    beta = rng.randn(shape[-1])
    if scale:
        layer.params["gamma"][...] = gamma
    if center:
        layer.params["beta"][...] = beta
    X_before = X.copy()
    assert_allclose(layer.forward(X),
                    _layer_norm(X, gamma if scale else 1.0, beta if center else 0.0, 0.01),
                    rtol=1e-12, atol=1e-12)
    assert_array_equal(X, X_before)  # the input is not changed


def test_layer_normalization_starts_as_plain_normalization_and_keeps_masks():
    net = initialized_network([Embedding(7, 4, mask_zero=True), LayerNormalization()],
                              (5,))
    norm = net.layers[1]
    assert_array_equal(norm.params["gamma"], np.ones(4))
    assert_array_equal(norm.params["beta"], np.zeros(4))
    assert norm.epsilon == 1e-3
    assert norm.compute_mask(None, TOKENS != 0) is not None
    Y = net.forward(TOKENS)
    assert_allclose(Y.mean(axis=-1), 0.0, atol=1e-12)


# -- MultiHeadAttention ---------------------------------------------------------------

MHA_CASES = [
    dict(num_heads=1),
    dict(num_heads=2),
    dict(num_heads=3, key_dim=2),                    # key_dim != features // heads
    dict(num_heads=2, key_dim=3, value_dim=5),       # value_dim != key_dim
    dict(num_heads=2, use_bias=False),
    dict(num_heads=2, causal=True),
    dict(num_heads=1, key_dim=4, causal=True, use_bias=False),
]


@pytest.mark.parametrize("kwargs", MHA_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_attention_values_and_gradients(kwargs, masked):
    rng = np.random.RandomState(2)
    X = rng.randn(3, 5, 6)
    mask = TOKENS[:3] != 0 if masked else None
    layer = check_layer(MultiHeadAttention(**kwargs), X, mask=mask,
                        sample_weight=np.array([0.5, 2.0, 1.0]))
    # Random biases too, so that the reference sees every parameter.
    for value in layer.params.values():
        value[...] = rng.randn(*value.shape)
    expected = _attention(X, layer.params, mask, kwargs.get("causal", False))
    assert_allclose(layer.forward(X, mask=mask), expected, rtol=1e-12, atol=1e-12)


def test_multi_head_attention_parameter_layout_and_defaults():
    net = initialized_network([MultiHeadAttention(2, value_dim=3)], (5, 8))
    layer = net.layers[0]
    assert {key: value.shape for key, value in layer.params.items()} == {
        "query_kernel": (8, 2, 4), "query_bias": (2, 4),
        "key_kernel": (8, 2, 4), "key_bias": (2, 4),
        "value_kernel": (8, 2, 3), "value_bias": (2, 3),
        "output_kernel": (2, 3, 8), "output_bias": (8,)}
    assert set(layer.weight_penalties) == {"query_kernel", "key_kernel", "value_kernel",
                                           "output_kernel"}
    for key in ("query_bias", "key_bias", "value_bias", "output_bias"):
        assert_array_equal(layer.params[key], 0.0)
    # Glorot uniform over the 2-D view (8, 2 * 4): limit sqrt(6 / (8 + 8)).
    assert np.abs(layer.params["query_kernel"]).max() <= np.sqrt(6 / 16)
    assert np.abs(layer.params["query_kernel"]).max() > 0.8 * np.sqrt(6 / 16)
    spec = MultiHeadAttention(2)
    assert (spec.key_dim, spec.value_dim, spec.dropout, spec.use_bias, spec.causal) == \
        (None, None, 0.0, True, False)


def test_causal_attention_does_not_see_later_steps():
    rng = np.random.RandomState(3)
    net = initialized_network([MultiHeadAttention(2, causal=True)], (6, 4))
    X = rng.randn(2, 6, 4)
    changed = X.copy()
    changed[:, 4:] = rng.randn(2, 2, 4)
    assert_allclose(net.forward(changed)[:, :4], net.forward(X)[:, :4], rtol=1e-13)
    assert not np.allclose(net.forward(changed)[:, 4:], net.forward(X)[:, 4:])


def test_padded_keys_do_not_change_the_other_steps():
    rng = np.random.RandomState(4)
    net = initialized_network([MultiHeadAttention(2)], (5, 4))
    X = rng.randn(4, 5, 4)
    mask = TOKENS != 0
    changed = np.where(mask[:, :, None], X, rng.randn(4, 5, 4))
    assert_allclose(net.layers[0].forward(changed, mask=mask)[mask],
                    net.layers[0].forward(X, mask=mask)[mask], rtol=1e-13)


def test_attention_dropout_trains_and_predicts_without_it():
    rng = np.random.RandomState(5)
    X = rng.randn(3, 4, 6)
    check_network_gradients([MultiHeadAttention(2, dropout=0.4)], X, training=True)
    net = initialized_network([MultiHeadAttention(2, dropout=0.4)], (4, 6))
    plain = initialized_network([MultiHeadAttention(2)], (4, 6))
    assert_allclose(net.forward(X), plain.forward(X), rtol=1e-14)
    trained = net.forward(X, training=True, rng=np.random.default_rng(0))
    assert not np.allclose(trained, plain.forward(X))
    with pytest.raises(ValueError, match="needs a random generator"):
        net.forward(X, training=True)


# -- PositionalEmbedding ----------------------------------------------------------------

def test_sinusoidal_positions_are_vaswani_s_table():
    net = initialized_network([PositionalEmbedding("sinusoidal")], (7, 6))
    layer = net.layers[0]
    assert layer.params == {}
    X = np.random.RandomState(6).randn(2, 7, 6)
    table = np.empty((7, 6))
    for pos in range(7):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            table[pos, 2 * i], table[pos, 2 * i + 1] = np.sin(angle), np.cos(angle)
    assert_allclose(net.forward(X), X + table, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", ["learned", "sinusoidal"])
def test_positional_embedding_gradients(mode):
    X = np.random.RandomState(7).randn(3, 4, 5)
    layer = check_layer(PositionalEmbedding(mode), X,
                        sample_weight=np.array([1.0, 0.0, 3.0]))
    if mode == "learned":
        assert layer.params["embeddings"].shape == (4, 5)
        assert_allclose(layer.forward(X), X + layer.params["embeddings"])
        # Glorot uniform, keras_hub's default: limit sqrt(6 / (4 + 5)).
        assert 0 < np.abs(layer.params["embeddings"]).max() <= np.sqrt(6 / 9)


# -- TransformerEncoderBlock ----------------------------------------------------------

def _torch_like_block(X, net, name, norm_first, mask=None, epsilon=1e-5):
    """The block computed from its parts' weights with the numpy above."""
    w = net.get_weights()

    def norm(part, Z):
        return _layer_norm(Z, w[f"{name}/{part}"]["gamma"], w[f"{name}/{part}"]["beta"],
                           epsilon)

    def ff(Z):
        h = np.maximum(Z @ w[f"{name}/linear1"]["kernel"] + w[f"{name}/linear1"]["bias"], 0)
        return h @ w[f"{name}/linear2"]["kernel"] + w[f"{name}/linear2"]["bias"]

    def att(Z):
        return _attention(Z, w[f"{name}/attention"], mask)

    if norm_first:
        X = X + att(norm("norm1", X))
        return X + ff(norm("norm2", X))
    X = norm("norm1", X + att(X))
    return norm("norm2", X + ff(X))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_values_names_and_gradients(norm_first):
    rng = np.random.RandomState(8)
    X = rng.randn(3, 5, 4)
    spec = TransformerEncoderBlock(2, ff_units=6, norm_first=norm_first, name="enc")
    net = initialized_network([spec], (5, 4))
    assert [layer.name for layer in net.layers[0].sublayers()] == (
        ["enc/norm1", "enc/attention", "enc/norm2", "enc/linear1", "enc/linear2"]
        if norm_first else
        ["enc/attention", "enc/norm1", "enc/linear1", "enc/linear2", "enc/norm2"])
    net.params[...] = rng.randn(net.params.size) * 0.5
    mask = TOKENS[:3] != 0
    for m in (None, mask):
        assert_allclose(net.layers[0].forward(X, mask=m),
                        _torch_like_block(X, net, "enc", norm_first, m), rtol=1e-11,
                        atol=1e-12)
    check_layer(spec, X, sample_weight=np.array([2.0, 0.5, 1.0]), mask=mask)
    check_layer(TransformerEncoderBlock(1, key_dim=3, value_dim=2, ff_units=3,
                                        norm_first=norm_first, causal=True,
                                        activation="tanh", use_bias=False), X)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_dropout_gradients(norm_first):
    X = np.random.RandomState(9).randn(2, 4, 4)
    net = check_network_gradients(
        [TransformerEncoderBlock(2, ff_units=5, dropout=0.3, norm_first=norm_first,
                                 name="b")], X, training=True)
    names = [layer.name for layer in net.layers[0].sublayers()]
    assert {"b/dropout1", "b/dropout", "b/dropout2"} <= set(names)
    assert net.layers[0].sublayers()[names.index("b/attention")].dropout == 0.3


def test_encoder_block_defaults_follow_pytorch():
    spec = TransformerEncoderBlock(4)
    assert (spec.key_dim, spec.ff_units, spec.dropout, spec.norm_first, spec.epsilon,
            spec.activation) == (None, None, 0.0, False, 1e-5, "relu")
    net = initialized_network([spec], (3, 8))
    layers = {layer.name: layer for layer in net.layers[0].sublayers()}
    name = net.layers[0].name
    assert layers[f"{name}/linear1"].units == 32  # 4 * features
    assert layers[f"{name}/attention"].key_dim == 2  # features // heads
    assert layers[f"{name}/norm1"].epsilon == 1e-5


def test_masked_network_parameter_gradients():
    _param_gradients([Embedding(7, 4, mask_zero=True), PositionalEmbedding(),
                      MultiHeadAttention(2, causal=True), LayerNormalization(),
                      TransformerEncoderBlock(2, ff_units=3, norm_first=True),
                      GlobalAvgPool1D()], TOKENS,
                     sample_weight=np.array([1.0, 0.5, 2.0, 0.0]))


# -- inside networks and estimators ------------------------------------------------------

@pytest.mark.parametrize("pool", [GlobalAvgPool1D, GlobalMaxPool1D])
def test_padding_more_steps_gives_the_same_prediction(pool):
    def specs():
        return [Embedding(7, 4, mask_zero=True), PositionalEmbedding("sinusoidal"),
                TransformerEncoderBlock(2, ff_units=5, name="enc"),
                MultiHeadAttention(2, name="att"), LayerNormalization(), pool(),
                Dense(3)]

    short = initialized_network(specs(), (5,))
    long = initialized_network(specs(), (9,), seed=1)
    long.set_weights(short.get_weights())
    padded = np.pad(TOKENS, ((0, 0), (0, 4)))
    assert_allclose(long.forward(padded), short.forward(TOKENS), rtol=1e-12, atol=1e-13)


def _text(n=48, steps=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randint(1, 9, size=(n, steps))
    lengths = rng.randint(2, steps + 1, size=n)
    X[np.arange(steps) >= lengths[:, None]] = 0
    y = (X == 3).any(axis=1).astype(int)
    return X, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_train_and_search_blocks_by_name():
    X, y = _text(80)
    clf = NNClassifier([Embedding(9, 8, mask_zero=True), PositionalEmbedding(),
                        TransformerEncoderBlock(2, ff_units=16, name="enc1"),
                        GlobalMaxPool1D()],
                       max_iter=60, learning_rate=0.01, random_state=0)
    assert clf.get_params()["layers__enc1__num_heads"] == 2
    search = GridSearchCV(clf, {"layers__enc1__num_heads": [1, 2]}, cv=2).fit(X, y)
    assert search.best_params_["layers__enc1__num_heads"] in (1, 2)
    assert clf.fit(X, y).score(X, y) > 0.9
    reg = NNRegressor([Reshape((4, 2)), Pathways([[MultiHeadAttention(1)],
                                                  [LayerNormalization()],
                                                  [TransformerEncoderBlock(1, name="b")]],
                                                 axis=-1),
                       GlobalAvgPool1D()], max_iter=3, random_state=0)
    reg.fit(np.random.RandomState(0).randn(20, 8), np.arange(20.0))
    assert reg.predict(np.zeros((2, 8))).shape == (2,)
    assert reg.network_.find_layer("b/attention").output_shape == (4, 2)
    assert reg.get_params()["layers__b__num_heads"] == 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_and_two_threads_fit_the_same_model():
    X, y = _text(64, steps=8)
    models = []
    # As test_reliability's small models: these kernels' work is too small
    # to split here; test_ops and test_optimizers hold them to two threads.
    small = ("activation_backward", "update", "weighted_column_sum", "residual_add")
    for threads in (one_thread, lambda: two_threads(one_thread_ok=small)):
        with threads():
            clf = NNClassifier([Embedding(9, 8, mask_zero=True), PositionalEmbedding(),
                                TransformerEncoderBlock(2, ff_units=16, dropout=0.1),
                                GlobalAvgPool1D()], max_iter=2, batch_size=32,
                               random_state=0).fit(X, y)
            models.append(clf)
    assert_array_equal(models[0].network_.params, models[1].network_.params)
    assert_array_equal(models[0].predict_proba(X), models[1].predict_proba(X))


# -- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("specs, shape, match", [
    ([MultiHeadAttention(2)], (8,), r"MultiHeadAttention 'multi_head_attention' reads "
                                    r"sequences of shape \(steps, features\), got samples "
                                    r"of shape \(8,\)"),
    ([MultiHeadAttention(2)], (2, 3, 4), "reads sequences"),
    ([MultiHeadAttention(4)], (5, 3), r"key_dim=None is features // num_heads = 3 // 4 = 0"),
    ([PositionalEmbedding()], (6,), "PositionalEmbedding 'positional_embedding' reads"),
    ([TransformerEncoderBlock(2, name="enc")], (2, 2, 2),
     "TransformerEncoderBlock 'enc' reads sequences"),
    ([TransformerEncoderBlock(3)], (4, 2),
     r"TransformerEncoderBlock 'transformer_encoder_block': key_dim=None is features // "
     r"num_heads = 2 // 3 = 0"),
])
def test_bad_input_shapes_name_the_layer(specs, shape, match):
    with pytest.raises(ValueError, match=match):
        initialized_network(specs, shape)


@pytest.mark.parametrize("spec, match", [
    (MultiHeadAttention(0), "num_heads"),
    (MultiHeadAttention(2, key_dim=0), "key_dim"),
    (MultiHeadAttention(2, dropout=1.0), "dropout"),
    (MultiHeadAttention(2, causal="yes"), "causal"),
    (LayerNormalization(epsilon=0), "epsilon"),
    (PositionalEmbedding("rotary"), "mode"),
    (TransformerEncoderBlock(2, ff_units=0), "ff_units"),
    (TransformerEncoderBlock(2, activation="gelu"), "activation"),
])
def test_bad_hyper_parameters_are_refused(spec, match):
    with pytest.raises(ValueError, match=f"'{match}' parameter of {type(spec).__name__}"):
        NNRegressor([spec, GlobalAvgPool1D()], input_shape=(3, 4), max_iter=1).fit(
            np.zeros((4, 12)), np.zeros(4))


@pytest.mark.parametrize("spec", [
    MultiHeadAttention(2, dropout=0.2), PositionalEmbedding(), LayerNormalization(),
    TransformerEncoderBlock(2, ff_units=3, dropout=0.2),
    TransformerEncoderBlock(2, ff_units=3, norm_first=True)])
def test_inputs_and_output_gradients_are_left_unchanged(spec):
    rng = np.random.RandomState(10)
    net = initialized_network([spec], (5, 4))
    X, dY = rng.randn(4, 5, 4), rng.randn(4, 5, 4)
    X_before, dY_before = X.copy(), dY.copy()
    net.forward(X, training=True, rng=np.random.default_rng(0))
    backward_chain(net.layers, dY, GradientContext(None, 1.0, np.float64))
    assert_array_equal(X, X_before)
    assert_array_equal(dY, dY_before)
