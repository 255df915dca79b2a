"""Documented defaults against the documentation.

Every value here is a literal copied from the documentation (docs/estimators.md
"Estimators" and "Training", docs/layers.md) or from the public docstrings, never
read from skdl: a default changed in the code, or in a constant the code
reads (such as the activation slopes of skdl._ops), fails here. Each family
is checked twice: ``get_params()`` against the documented signature, and by
behaviour through the public API, so a constant used internally is caught
too.
"""
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning

from skdl import (
    LSTM,
    Activation,
    BatchNormalization,
    Conv1D,
    Conv2D,
    Dense,
    Embedding,
    GlobalMaxPool1D,
    LastStep,
    LayerNormalization,
    MaxPool1D,
    MaxPool2D,
    MultiHeadAttention,
    NNClassifier,
    NNRegressor,
    PositionalEmbedding,
    PReLU,
    TransformerEncoderBlock,
    _reference,
)
from skdl.callbacks import LambdaCallback
from skdl.optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, RMSprop
from skdl.regularizers import L1, L1L2, L2

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _regression(n_samples, n_features=3, random_state=0):
    """A small linear regression problem with a target of unit scale."""
    X, y = make_regression(n_samples, n_features, noise=1.0, random_state=random_state)
    return X, y / y.std()


def _weights_at_fit_begin(estimator, X, y):
    """Fit ``estimator`` and return (``get_weights()`` as its network was
    initialized, before any step; the estimator)."""
    initial = {}
    estimator.set_params(callbacks=[LambdaCallback(
        on_fit_begin=lambda est: initial.update(est.get_weights()))])
    return initial, estimator.fit(X, y)


def _batch_sizes(estimator, X, y):
    """The sizes of the batches of the first epoch, from ``t_`` after each."""
    seen = []
    estimator.set_params(max_iter=1, callbacks=[LambdaCallback(
        on_batch_end=lambda est, epoch, batch, loss: seen.append(est.t_))])
    estimator.fit(X, y)
    return np.diff([0] + seen).tolist()


# -- estimators (docs/estimators.md "Estimators") -------------------------------------------

ESTIMATOR_DEFAULTS = dict(
    layers=None, input_shape=None, optimizer="adam", learning_rate=0.001,
    lr_schedule=None, batch_size="auto", max_iter=200, l1=0.0, l2=0.0,
    early_stopping=False, validation_fraction=0.1, tol=1e-4, n_iter_no_change=10,
    final_epochs=0, shuffle=True, random_state=None, dtype="float32", callbacks=None,
    verbose=0, warm_start=False, augment=None)


def test_estimator_signatures():
    assert NNClassifier().get_params(deep=False) == dict(
        ESTIMATOR_DEFAULTS, loss="log_loss", class_weight=None)
    assert NNRegressor().get_params(deep=False) == dict(
        ESTIMATOR_DEFAULTS, loss="squared_error")


def test_default_network_is_one_dense_100_relu(digits):
    # README: "the default network (one hidden Dense(100) with relu ...)".
    X, y = digits
    clf = NNClassifier(max_iter=1, random_state=0).fit(X, y)
    weights = clf.get_weights()
    assert list(weights) == ["dense", "output"]
    kernel, bias = weights["dense"]["kernel"], weights["dense"]["bias"]
    assert kernel.shape == (64, 100) and bias.shape == (100,)
    Z = X @ kernel + bias
    assert (Z < 0).any()  # relu has something to cut
    assert_allclose(clf.activations(X, layer="dense"), np.maximum(Z, 0), rtol=1e-5,
                    atol=1e-6)
    assert clf.network_.params.dtype == np.float32  # dtype='float32'


def test_default_learning_rate_and_adam_first_step():
    # Adam's first step moves each weight by learning_rate * g / (|g| + 1e-8 /
    # sqrt(1 - 0.999)): by the learning rate itself where |g| >> 3e-7.
    X, y = _regression(50)
    initial, reg = _weights_at_fit_begin(
        NNRegressor([], dtype="float64", max_iter=1, random_state=0), X, y)
    assert reg.history_[0]["learning_rate"] == 0.001 and reg.learning_rate_ == 0.001
    moved = np.concatenate([np.abs(reg.get_weights()["output"][key]
                                   - initial["output"][key]).ravel()
                            for key in ("kernel", "bias")])
    assert_allclose(moved, 0.001, rtol=1e-5)


@pytest.mark.parametrize("n_samples, sizes", [(600, [256, 256, 88]), (100, [100])])
def test_batch_size_auto_is_min_256_n_samples(n_samples, sizes):
    X, y = _regression(n_samples)
    assert _batch_sizes(NNRegressor([], random_state=0), X, y) == sizes


def test_max_iter_is_200():
    X, y = _regression(20)
    reg = NNRegressor([], n_iter_no_change=1000, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=200 epochs"):
        reg.fit(X, y)
    assert reg.n_iter_ == 200


def _stopping_epoch(losses, tol, n_iter_no_change):
    """The epoch at which the documented rule stops training on ``losses``:
    the loss has not improved by ``tol`` for more than ``n_iter_no_change``
    epochs (None: not within these losses)."""
    best, count = np.inf, 0
    for epoch, loss in enumerate(losses, start=1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > n_iter_no_change:
            return epoch
    return None


def test_tol_and_n_iter_no_change_stop_training():
    # A loss curve whose improvements shrink through 1e-4 before epoch 200.
    X, y = _regression(300, n_features=5)
    reg = NNRegressor([], learning_rate=0.03, dtype="float64", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg.fit(X, y)
    curve = reg.loss_curve_
    assert reg.n_iter_ == _stopping_epoch(curve, tol=1e-4, n_iter_no_change=10)
    # The curve tells these values apart from their neighbours.
    for tol, patience in ((3e-4, 10), (3e-5, 10), (1e-4, 9), (1e-4, 11)):
        assert _stopping_epoch(curve, tol, patience) != reg.n_iter_


def test_validation_fraction_holds_out_a_tenth():
    X, y = _regression(200)
    sizes = _batch_sizes(NNRegressor([], early_stopping=True, random_state=0), X, y)
    assert sizes == [180]  # 20 of the 200 samples validate


# -- optimizers (docs/estimators.md "Training") ------------------------------------------------

OPTIMIZER_DEFAULTS = {
    SGD: dict(momentum=0.0, nesterov=False, initial_momentum=None, momentum_ramp_epochs=0,
              weight_decay=0.0),
    Adagrad: dict(epsilon=1e-7, initial_accumulator=0.1, weight_decay=0.0),
    RMSprop: dict(rho=0.9, epsilon=1e-7, momentum=0.0, weight_decay=0.0),
    Adadelta: dict(rho=0.95, epsilon=1e-6, weight_decay=0.0),
    Adam: dict(beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0),
    Adamax: dict(beta1=0.9, beta2=0.999, epsilon=1e-7, weight_decay=0.0),
    AdamW: dict(beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01),
}


@pytest.mark.parametrize("cls", OPTIMIZER_DEFAULTS, ids=lambda cls: cls.__name__)
def test_optimizer_signatures(cls):
    assert cls().get_params() == dict(OPTIMIZER_DEFAULTS[cls], clipnorm=None,
                                      clipvalue=None)


def _documented_rule(cls, n):
    """One step of ``cls``'s rule with the documented constants, as a function
    ``step(params, grads, learning_rate, t)`` updating ``params`` in place,
    with its state (in its documented starting values) kept inside."""
    zeros = [np.zeros(n) for _ in range(2)]
    if cls is SGD:  # momentum 0: plain gradient steps
        return lambda p, g, lr, t: _reference.sgd_update(p, g, None, lr)
    if cls is Adagrad:
        accumulator = np.full(n, 0.1)
        return lambda p, g, lr, t: _reference.adagrad_update(p, g, accumulator, lr, 1e-7)
    if cls is RMSprop:
        return lambda p, g, lr, t: _reference.rmsprop_update(p, g, zeros[0], None, lr,
                                                             0.9, 1e-7)
    if cls is Adadelta:
        return lambda p, g, lr, t: _reference.adadelta_update(p, g, *zeros, lr, 0.95, 1e-6)
    if cls is Adamax:
        return lambda p, g, lr, t: _reference.adamax_update(p, g, *zeros, lr, 0.9, 0.999,
                                                            1e-7, t)
    decay = 0.01 if cls is AdamW else 0.0
    return lambda p, g, lr, t: _reference.adam_update(p, g, *zeros, lr, 0.9, 0.999, 1e-8,
                                                      t, weight_decay=decay)


@pytest.mark.parametrize("cls", OPTIMIZER_DEFAULTS, ids=lambda cls: cls.__name__)
def test_default_optimizers_follow_their_documented_rules(cls):
    # Gradients from far below to far above each epsilon, so that every
    # constant moves the result; three steps, so the decay rates matter.
    rng = np.random.RandomState(0)
    scales = np.logspace(-10, 1, 12)
    params = rng.randn(12)
    expected = params.copy()
    optimizer = cls()
    state = optimizer.init_state(params)
    rule = _documented_rule(cls, params.size)
    for t in (1, 2, 3):
        grads = scales * rng.randn(12)
        optimizer.step(params, grads, state, 0.1, t)
        rule(expected, grads, 0.1, t)
        assert_allclose(params, expected, rtol=1e-12, atol=0)


# The optimizer names of docs/estimators.md "Training" and the specs they stand for.
NAMED_OPTIMIZERS = {
    "sgd": SGD(momentum=0.0),
    "momentum": SGD(momentum=0.9),
    "adagrad": Adagrad(epsilon=1e-7, initial_accumulator=0.1),
    "rmsprop": RMSprop(rho=0.9, epsilon=1e-7, momentum=0.0),
    "adadelta": Adadelta(rho=0.95, epsilon=1e-6),
    "adam": Adam(beta1=0.9, beta2=0.999, epsilon=1e-8),
    "adamax": Adamax(beta1=0.9, beta2=0.999, epsilon=1e-7),
    "adamw": AdamW(beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01),
}


@pytest.mark.parametrize("name", NAMED_OPTIMIZERS)
def test_optimizer_names_train_as_their_documented_specs(name):
    X, y = _regression(48)

    def fit(optimizer):
        return NNRegressor([Dense(4, activation="tanh")], optimizer=optimizer,
                           learning_rate=0.01, batch_size=16, max_iter=3,
                           random_state=0).fit(X, y)

    by_name, by_spec = fit(name), fit(NAMED_OPTIMIZERS[name])
    assert_array_equal(by_name.network_.params, by_spec.network_.params)
    assert not np.array_equal(by_name.network_.params, fit(SGD(momentum=0.5)).network_.params)


# -- activations (docs/layers.md "Activations"; Dense's and Activation's alpha) ----------

def _identity_layer_output(spec, X):
    """What the layer ``spec`` (named "layer", one unit per input feature)
    outputs for X once its kernel is the identity and its bias zero."""
    reg = NNRegressor([spec], dtype="float64", max_iter=1, random_state=0).fit(
        X, np.zeros(len(X)))
    kernel = reg.get_weights()["layer"]["kernel"]  # (n_in, units) or (F, C, k)
    identity = np.eye(kernel.shape[0]).reshape(kernel.shape)
    reg.set_weights({"layer": {"kernel": identity, "bias": np.zeros(kernel.shape[0])}})
    return reg.activations(X, layer="layer")


@pytest.mark.parametrize("spec", [
    Dense(4, activation="leaky_relu", name="layer"),
    Conv1D(1, 1, activation="leaky_relu", name="layer"),
], ids=["Dense", "Conv1D"])
def test_leaky_relu_slope_is_0_01(spec):
    X = np.random.RandomState(0).randn(30, 4)
    X = X[:, None, :] if isinstance(spec, Conv1D) else X  # one channel of 4 steps
    assert (X < 0).any()
    assert_allclose(_identity_layer_output(spec, X), np.where(X > 0, X, 0.01 * X),
                    rtol=1e-15, atol=0)


def test_elu_scale_is_1():
    X = np.random.RandomState(0).randn(30, 4)
    assert_allclose(_identity_layer_output(Dense(4, activation="elu", name="layer"), X),
                    np.where(X > 0, X, 1.0 * np.expm1(X)), rtol=1e-14, atol=0)
    reg = NNRegressor([Activation("elu", name="act")], dtype="float64", max_iter=1,
                      random_state=0).fit(X, np.zeros(30))
    assert_allclose(reg.activations(X, layer="act"), np.where(X > 0, X, np.expm1(X)),
                    rtol=1e-14, atol=0)


# -- layers (docs/layers.md) -----------------------------------------------------

@pytest.mark.parametrize("spec, params", [
    (Dense(3), dict(units=3, activation=None, alpha=None, use_bias=True,
                    kernel_initializer="glorot_uniform", bias_initializer="zeros",
                    kernel_regularizer=None, name=None)),
    (Activation("relu"), dict(activation="relu", alpha=None, name=None)),
    (BatchNormalization(), dict(axis=None, momentum=0.9, epsilon=1e-3, center=True,
                                scale=True, name=None)),
    (PReLU(), dict(alpha_initializer=0.25, axis=None, name=None)),
    (Conv2D(2, 3), dict(filters=2, kernel_size=3, strides=1, padding="valid", dilation=1,
                        activation=None, alpha=None, use_bias=True,
                        kernel_initializer="glorot_uniform", bias_initializer="zeros",
                        kernel_regularizer=None, name=None)),
    (MaxPool2D(), dict(pool_size=2, strides=None, padding="valid", name=None)),
    (Conv1D(2, 3), dict(filters=2, kernel_size=3, strides=1, padding="valid", dilation=1,
                        activation=None, alpha=None, use_bias=True,
                        kernel_initializer="glorot_uniform", bias_initializer="zeros",
                        kernel_regularizer=None, name=None, data_format=None)),
    (MaxPool1D(), dict(pool_size=2, strides=None, padding="valid", name=None,
                       data_format=None)),
    (GlobalMaxPool1D(), dict(data_format=None, name=None)),
    (LastStep(), dict(name=None)),
    (LSTM(3), dict(units=3, activation="tanh", recurrent_activation="sigmoid",
                   use_bias=True, return_sequences=False, go_backwards=False,
                   unit_forget_bias=True, kernel_initializer="glorot_uniform",
                   recurrent_initializer="orthogonal", bias_initializer="zeros",
                   kernel_regularizer=None, recurrent_regularizer=None,
                   initial_state=None, return_state=False, name=None)),
    (LayerNormalization(), dict(epsilon=1e-3, center=True, scale=True, name=None)),
    (MultiHeadAttention(2), dict(num_heads=2, key_dim=None, value_dim=None, dropout=0.0,
                                 use_bias=True, causal=False,
                                 kernel_initializer="glorot_uniform",
                                 bias_initializer="zeros", kernel_regularizer=None,
                                 name=None)),
    (PositionalEmbedding(), dict(mode="learned", initializer="glorot_uniform", name=None)),
    (TransformerEncoderBlock(2), dict(num_heads=2, key_dim=None, ff_units=None,
                                      dropout=0.0, norm_first=False, value_dim=None,
                                      activation="relu", epsilon=1e-5, use_bias=True,
                                      causal=False, name=None)),
], ids=lambda value: type(value).__name__ if not isinstance(value, dict) else "")
def test_layer_signatures(spec, params):
    assert spec.get_params(deep=False) == params


def test_batch_normalization_running_statistics_after_one_and_two_steps():
    # Bias-corrected averages (the docstring's Notes): after one batch, its
    # mean and biased variance, nothing of the start (0 and 1); after two, the
    # average weighting the newer batch by 1 and the older by momentum = 0.9.
    rng = np.random.RandomState(0)
    X = rng.randn(50, 3) * [1.0, 0.1, 5.0] + [0.0, 2.0, -1.0]
    reg = NNRegressor([BatchNormalization(name="bn")], dtype="float64", max_iter=1,
                      random_state=0).fit(X, rng.randn(50))
    bn = reg.get_weights()["bn"]
    assert_allclose(bn["moving_mean"], X.mean(axis=0), rtol=1e-12)
    assert_allclose(bn["moving_variance"], X.var(axis=0), rtol=1e-12)
    X2 = X * 2 + 1
    reg.partial_fit(X2, rng.randn(50))
    bn = reg.get_weights()["bn"]
    assert_allclose(bn["moving_mean"], (0.9 * X.mean(axis=0) + X2.mean(axis=0)) / 1.9,
                    rtol=1e-12)
    assert_allclose(bn["moving_variance"], (0.9 * X.var(axis=0) + X2.var(axis=0)) / 1.9,
                    rtol=1e-12)
    assert_array_equal(bn["n_updates"], [2])


def test_batch_normalization_epsilon_is_1e_3():
    rng = np.random.RandomState(0)
    X = rng.randn(20, 3)
    reg = NNRegressor([BatchNormalization(name="bn")], dtype="float64", max_iter=1,
                      random_state=0).fit(X, rng.randn(20))
    # With a running variance of 0, predictions divide by sqrt(epsilon).
    reg.set_weights({"bn": {"moving_variance": np.zeros(3)}})
    bn = reg.get_weights()["bn"]
    expected = bn["gamma"] * (X - bn["moving_mean"]) / np.sqrt(1e-3) + bn["beta"]
    assert_allclose(reg.activations(X, layer="bn"), expected, rtol=1e-12)


def test_layer_norm_epsilons_and_attention_sizes():
    # LayerNormalization: Keras' 1e-3; the encoder block's: PyTorch's 1e-5. A
    # constant row has variance 0, so it comes out as (x - mean) / sqrt(eps) = 0
    # and a row of two values +-1 as +-1 / sqrt(1 + eps).
    X = np.array([[[1.0, -1.0], [3.0, 3.0]]])
    reg = NNRegressor([LayerNormalization(name="n")], input_shape=(2, 2), dtype="float64",
                      max_iter=1, random_state=0).fit(X.reshape(1, -1), [0.0])
    reg.set_weights({"n": {"gamma": np.ones(2), "beta": np.zeros(2)}})
    assert_allclose(reg.activations(X.reshape(1, -1), layer="n"),
                    [[[1 / np.sqrt(1 + 1e-3), -1 / np.sqrt(1 + 1e-3)], [0, 0]]], rtol=1e-12)
    reg = NNRegressor([TransformerEncoderBlock(2, name="enc")], input_shape=(2, 4),
                      dtype="float64", max_iter=1, random_state=0).fit(np.ones((2, 8)),
                                                                       [0.0, 1.0])
    weights = reg.get_weights()
    assert weights["enc/linear1"]["kernel"].shape == (4, 16)  # ff_units: 4 * features
    assert weights["enc/attention"]["query_kernel"].shape == (4, 2, 2)  # key_dim: F // H
    assert weights["enc/attention"]["value_kernel"].shape == (4, 2, 2)  # value_dim: key_dim
    assert reg.network_.find_layer("enc/norm1").epsilon == 1e-5


def test_default_initializers(digits):
    # Dense: kernel glorot_uniform, U(-limit, limit) with limit = sqrt(6 /
    # (fan_in + fan_out)); bias zeros. PReLU: every slope 0.25.
    X, y = digits
    initial, _ = _weights_at_fit_begin(
        NNClassifier([Dense(300, name="dense"), PReLU(name="prelu")], dtype="float64",
                     max_iter=1, random_state=0), X, y)
    kernel = initial["dense"]["kernel"]
    limit = np.sqrt(6 / (64 + 300))
    assert limit * 0.99 < np.abs(kernel).max() <= limit
    assert_allclose(kernel.var(), limit ** 2 / 3, rtol=0.05)
    assert_array_equal(initial["dense"]["bias"], 0)
    assert_array_equal(initial["prelu"]["alpha"], 0.25)


def test_lstm_default_initializers():
    # unit_forget_bias=True: the forget gate's bias (gates i, f, g, o) starts
    # at 1, the others at 0; the recurrent kernel is orthogonal.
    units = 6
    X = np.random.RandomState(0).randn(10, 4, 3)
    initial, _ = _weights_at_fit_begin(
        NNRegressor([LSTM(units, name="lstm")], dtype="float64", max_iter=1,
                    random_state=0), X, np.zeros(10))
    bias = initial["lstm"]["bias"].reshape(4, units)
    assert_array_equal(bias, [[0] * units, [1] * units, [0] * units, [0] * units])
    U = initial["lstm"]["recurrent_kernel"]
    assert U.shape == (units, 4 * units)
    assert_allclose(U @ U.T, np.eye(units), atol=1e-12)


def test_conv_and_pool_geometry_defaults():
    # Conv2D: strides 1, 'valid', dilation 1 -> (H - k + 1, W - k + 1);
    # MaxPool2D: a pool of 2 and strides equal to the pool.
    X = np.arange(2 * 36, dtype=np.float64).reshape(2, 1, 6, 6)
    reg = NNRegressor([Conv2D(1, 3, name="conv"), MaxPool2D(name="pool")],
                      dtype="float64", max_iter=1, random_state=0).fit(X, np.zeros(2))
    reg.set_weights({"conv": {"kernel": np.full((1, 1, 3, 3), 1 / 9), "bias": [0.0]}})
    means = np.mean([X[:, :, i:i + 4, j:j + 4] for i in range(3) for j in range(3)],
                    axis=0)
    assert_allclose(reg.activations(X, layer="conv"), means, rtol=1e-12)
    pooled = means.reshape(2, 1, 2, 2, 2, 2).max(axis=(3, 5))
    assert_allclose(reg.activations(X, layer="pool"), pooled, rtol=1e-12)


def test_1d_data_format_default_follows_the_layer_before():
    # docs/layers.md: data_format=None is channels-first on a network's input
    # (C, L) and channels-last after Embedding (steps, features).
    X = np.arange(2 * 12, dtype=np.float64).reshape(2, 3, 4)
    reg = NNRegressor([Conv1D(1, 2, name="conv"), MaxPool1D(name="pool")],
                      dtype="float64", max_iter=1, random_state=0).fit(X, np.zeros(2))
    assert reg.network_.find_layer("conv").param_shapes["kernel"] == (1, 3, 2)
    assert reg.activations(X, layer="pool").shape == (2, 1, 1)
    tokens = np.arange(2 * 6, dtype=np.float64).reshape(2, 6)
    reg = NNRegressor([Embedding(12, 3), Conv1D(4, 2, name="conv"),
                       MaxPool1D(name="pool"), GlobalMaxPool1D(name="global")],
                      dtype="float64", max_iter=1, random_state=0).fit(tokens, np.zeros(2))
    assert reg.network_.find_layer("conv").param_shapes["kernel"] == (4, 3, 2)
    assert reg.activations(tokens, layer="pool").shape == (2, 2, 4)  # (steps, filters)
    assert reg.activations(tokens, layer="global").shape == (2, 4)


# -- regularizers (their docstrings) ----------------------------------------------

def test_regularizer_defaults():
    w = np.array([[0.5, -2.0], [3.0, 0.0]])
    assert L1().get_params() == dict(l1=0.01) and L2().get_params() == dict(l2=0.01)
    assert L1L2().get_params() == dict(l1=0.0, l2=0.0)
    assert L1().penalty(w) == pytest.approx(0.01 * 5.5, rel=1e-15)
    assert L2().penalty(w) == pytest.approx(0.01 * 13.25, rel=1e-15)
    assert L1L2().penalty(w) == 0.0


def test_the_documentation_states_these_defaults():
    # The literals above are the documentation's: a change there must come here too.
    root = Path(__file__).resolve().parents[1]
    pages = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    readme = " ".join(page.read_text(encoding="utf-8") for page in pages)
    readme = " ".join(readme.split())  # line breaks are not part of the text
    for documented in [
        "learning_rate=0.001", "batch_size='auto'", "max_iter=200", "tol=1e-4",
        "n_iter_no_change=10", "validation_fraction=0.1", "`'auto'` is `min(256, n_samples)`",
        "one hidden `Dense(100)` with relu", "`'momentum'` (0.9)",
        "`SGD(momentum=0.0,", "`Adagrad(epsilon=1e-7, initial_accumulator=0.1)`",
        "`RMSprop(rho=0.9, epsilon=1e-7, momentum=0.0)`", "`Adadelta(rho=0.95, epsilon=1e-6)`",
        "`Adam(beta1=0.9, beta2=0.999, epsilon=1e-8)`",
        "`Adamax(beta1=0.9, beta2=0.999, epsilon=1e-7)`", "weight_decay=0.01)`",
        "`leaky_relu` (`alpha`, default 0.01)", "`elu` (`alpha`, default 1)",
        "BatchNormalization(axis=None, momentum=0.9, epsilon=1e-3,",
        "PReLU(alpha_initializer=0.25", "unit_forget_bias=True",
        "kernel_initializer='glorot_uniform', bias_initializer='zeros'",
        "MaxPool2D(pool_size=2, strides=None, padding='valid')",
        "use_bias=True, ..., data_format=None)`",
        "`MaxPool1D(..., data_format=None)`", "`GlobalMaxPool1D(data_format=None)`",
        "The default, `data_format=None`, follows the layer before",
        "`LayerNormalization(epsilon=1e-3, center=True, scale=True)`",
        "`MultiHeadAttention(num_heads, key_dim=None, value_dim=None, dropout=0.0, "
        "use_bias=True, causal=False, ...)`",
        "`PositionalEmbedding(mode='learned', initializer='glorot_uniform')`",
        "`TransformerEncoderBlock(num_heads, key_dim=None, ff_units=None, dropout=0.0, "
        "norm_first=False, value_dim=None, activation='relu', epsilon=1e-5, ...)`",
    ]:
        assert documented in readme, documented
    assert re.search(r"Conv2D\(filters, kernel_size, strides=1, padding='valid', "
                     r"dilation=1, activation=None, use_bias=True", readme)
