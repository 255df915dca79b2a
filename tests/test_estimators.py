"""NNClassifier / NNRegressor behaviour beyond scikit-learn's generic checks."""
import io
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from _threads import one_thread, two_threads
from skdl import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    HiddenBlock,
    MultiHeadAttention,
    NNClassifier,
    NNRegressor,
    Reshape,
)
from skdl.callbacks import LambdaCallback
from skdl.optimizers import SGD, Adam

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _numpy_forward(weights, X, activations):
    """Forward pass written from get_weights(): the documented layouts."""
    out = X
    for (name, params), act in zip(weights.items(), activations):
        out = out @ params["kernel"] + params.get("bias", 0.0)
        out = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
               None: lambda z: z}[act](out)
    return out


def test_demo_reaches_97_percent():
    from skdl.demo import run

    accuracy, _ = run(random_state=0, compare=False, file=io.StringIO())
    assert accuracy >= 0.97


def test_weights_layout_matches_documented_forward(digits):
    X, y = digits
    clf = NNClassifier([Dense(16, activation="relu"), Dense(8, activation="tanh")],
                       max_iter=3, random_state=0, dtype="float64").fit(X, y)
    w = clf.get_weights()
    assert list(w) == ["dense", "dense_1", "output"]
    assert w["dense"]["kernel"].shape == (64, 16)
    assert w["output"]["kernel"].shape == (8, 10)
    logits = _numpy_forward(w, X.astype(np.float64), ["relu", "tanh", None])
    proba = np.exp(logits - logits.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    assert_allclose(clf.predict_proba(X), proba, rtol=1e-10, atol=1e-12)


def test_same_model_with_one_and_two_threads(digits):
    X, y = digits
    models = []
    for threads in (one_thread, two_threads):
        with threads():
            models.append(NNClassifier(
                [Dense(300, activation="relu"), Dropout(0.3), Dense(70)],
                batch_size=150, max_iter=3, random_state=7).fit(X, y))
    w1, w2 = (m.get_weights() for m in models)
    for layer in w1:
        for key in w1[layer]:
            assert_array_equal(w1[layer][key], w2[layer][key])


def test_regressor_same_model_with_one_and_two_threads():
    X, y = make_regression(500, 40, n_targets=3, random_state=0)
    preds = []
    for threads in (one_thread, two_threads):
        with threads():
            # 17603 weights: two chunks of the optimizer's update.
            reg = NNRegressor([Dense(400, activation="tanh")], max_iter=4,
                              random_state=0).fit(X, y / 100)
            preds.append(reg.predict(X))
    assert_array_equal(preds[0], preds[1])


def test_random_state_controls_the_model(digits):
    X, y = digits
    a = NNClassifier(max_iter=2, random_state=0).fit(X, y).predict_proba(X)
    b = NNClassifier(max_iter=2, random_state=0).fit(X, y).predict_proba(X)
    c = NNClassifier(max_iter=2, random_state=1).fit(X, y).predict_proba(X)
    assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_modify_inputs(digits):
    X, y = digits
    X, y, w = X.copy(), y.copy(), np.linspace(0.5, 2, len(y))
    X0, y0, w0 = X.copy(), y.copy(), w.copy()
    NNClassifier(max_iter=2, random_state=0).fit(X, y, sample_weight=w)
    NNClassifier(max_iter=2, random_state=0, dtype="float64").fit(X, y, sample_weight=w)
    assert_array_equal(X, X0)
    assert_array_equal(y, y0)
    assert_array_equal(w, w0)


def test_predict_is_batch_independent(digits):
    X, y = digits
    clf = NNClassifier([Dense(50, activation="relu"), Dropout(0.5)], max_iter=2,
                       random_state=0).fit(X, y)
    whole = clf.predict_proba(X)
    parts = np.vstack([clf.predict_proba(X[i:i + 37]) for i in range(0, len(X), 37)])
    assert_array_equal(whole, parts)
    order = np.random.RandomState(0).permutation(len(X))
    assert_array_equal(clf.predict_proba(X[order]), whole[order])
    # Dropout is off at prediction time: two calls agree.
    assert_array_equal(clf.predict_proba(X), whole)


def test_predict_proba_and_log_proba(digits):
    X, y = digits
    clf = NNClassifier(max_iter=3, random_state=0).fit(X, y)
    P = clf.predict_proba(X)
    assert P.dtype == np.float64 and P.shape == (len(X), 10)
    assert_allclose(P.sum(1), 1.0, rtol=1e-12)
    assert_allclose(np.exp(clf.predict_log_proba(X)), P, rtol=1e-10)
    assert_array_equal(clf.predict(X), clf.classes_[P.argmax(1)])


def test_binary_and_string_labels(digits):
    X, y = digits
    labels = np.where(y % 2 == 0, "even", "odd")
    clf = NNClassifier(max_iter=20, random_state=0).fit(X, labels)
    assert clf.n_outputs_ == 1
    P = clf.predict_proba(X)
    assert P.shape == (len(X), 2)
    assert_allclose(P.sum(1), 1.0)
    assert_array_equal(clf.predict(X), clf.classes_[P.argmax(1)])
    assert clf.score(X, labels) > 0.9
    assert_allclose(np.exp(clf.predict_log_proba(X)), P, rtol=1e-10)
    # One sigmoid unit gives the probability of the second class.
    logits = _numpy_forward(clf.get_weights(), X.astype(np.float64), ["relu", None])
    assert logits.shape == (len(X), 1)
    assert_allclose(P[:, 1], expit(logits[:, 0]), rtol=1e-5, atol=1e-6)


def test_multilabel():
    X, y = make_classification(300, 20, random_state=0)
    Y = np.column_stack([y, 1 - y, X[:, 0] > 0])
    clf = NNClassifier(max_iter=50, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape
    P = clf.predict_proba(X)
    # A sigmoid per label; a label is predicted where its probability passes 0.5.
    logits = _numpy_forward(clf.get_weights(), X, ["relu", None])
    assert_allclose(P, expit(logits), rtol=1e-5, atol=1e-6)
    assert_array_equal(clf.predict(X), (P > 0.5).astype(Y.dtype))
    assert (clf.predict(X) == Y).mean() > 0.9


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="at least 2 classes.*only one class"):
        NNClassifier().fit(np.ones((5, 2)), [3] * 5)


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "poisson"])
def test_regression_losses_learn(loss):
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (400, 3))
    y = np.exp(0.5 * X[:, 0] - X[:, 1]) if loss == "poisson" else X @ [1.0, -2.0, 0.5]
    reg = NNRegressor([Dense(32, activation="tanh")], loss=loss, learning_rate=0.01,
                      max_iter=150, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.9
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]
    assert reg.predict(X).dtype == np.float64


def test_poisson_rejects_negative_targets():
    with pytest.raises(ValueError, match="negative"):
        NNRegressor(loss="poisson").fit(np.ones((4, 2)), [1, 2, -1, 0])


def test_regressor_output_shape_follows_y():
    X, y = make_regression(60, 4, random_state=0)
    assert NNRegressor(max_iter=2).fit(X, y).predict(X).shape == (60,)
    assert NNRegressor(max_iter=2).fit(X, y[:, None]).predict(X).shape == (60, 1)
    Y = np.column_stack([y, -y])
    reg = NNRegressor(max_iter=2).fit(X, Y)
    assert reg.n_outputs_ == 2
    # One linear output unit per target.
    assert_allclose(reg.predict(X), _numpy_forward(reg.get_weights(), X, ["relu", None]),
                    rtol=1e-5, atol=1e-5)


def test_input_shape_and_nd_input(digits):
    X, y = digits
    flat = NNClassifier([Reshape((8, 8)), Dense(6, activation="relu")],
                        max_iter=2, random_state=0).fit(X, y)
    shaped = NNClassifier([Dense(6, activation="relu")], input_shape=(8, -1),
                          max_iter=2, random_state=0).fit(X, y)
    images = NNClassifier([Dense(6, activation="relu")], max_iter=2,
                          random_state=0).fit(X.reshape(-1, 8, 8), y)
    assert shaped.input_shape_ == images.input_shape_ == (8, 8)
    # Dense acts on the last axis; a Flatten is added before the output layer.
    assert shaped.network_.layers[-2].name == "output_flatten"
    assert_array_equal(shaped.predict_proba(X), images.predict_proba(X.reshape(-1, 8, 8)))
    assert_array_equal(shaped.get_weights()["dense"]["kernel"],
                       flat.get_weights()["dense"]["kernel"])
    with pytest.raises(ValueError, match=r"samples of shape \(4, 16\)"):
        images.predict(X.reshape(-1, 4, 16))


@pytest.mark.parametrize("input_shape, message", [
    ((3, -1), "does not fit 64 values per sample: 64 is not a multiple of 3"),
    ((2, 3), "holds 6 values per sample, but the input has 64"),
    ((-1, -1), "at most one -1"),
    ((0, 64), "positive sizes"),
])
def test_bad_input_shape(digits, input_shape, message):
    X, y = digits
    with pytest.raises(ValueError, match=re.escape(message)):
        NNClassifier(input_shape=input_shape, max_iter=1).fit(X, y)


def test_input_shape_of_wrong_type(digits):
    X, y = digits
    with pytest.raises(TypeError, match="input_shape must be a non-empty tuple of ints"):
        NNClassifier(input_shape=(8.0, 8), max_iter=1).fit(X, y)


@pytest.mark.parametrize("bad, error, message", [
    (np.nan, ValueError, "Input X contains NaN"),
    (np.inf, ValueError, "Input X contains infinity"),
])
def test_non_finite_input(bad, error, message):
    X = np.ones((10, 3))
    X[2, 1] = bad
    with pytest.raises(error, match=message):
        NNRegressor().fit(X, np.arange(10.0))


def test_bad_data_messages(digits):
    X, y = digits
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        NNClassifier().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="0 sample"):
        NNClassifier().fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        NNRegressor().fit(X[:10] + 1j, np.arange(10.0))
    clf = NNClassifier(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 63 features, but NNClassifier is "
                                         "expecting 64 features as input"):
        clf.predict(X[:, :63])
    with pytest.raises(ValueError, match="too large for float32"):
        NNRegressor(max_iter=1).fit(np.full((4, 2), 1e39), np.ones(4))


@pytest.mark.parametrize("params, error, message", [
    (dict(learning_rate=-1.0), InvalidParameterError, "learning_rate"),
    (dict(dtype="float16"), InvalidParameterError, "dtype"),
    (dict(batch_size=0), InvalidParameterError, "batch_size"),
    (dict(optimizer="lbfgs"), InvalidParameterError, "optimizer"),
    (dict(max_iter=0), InvalidParameterError, "max_iter"),
    (dict(layers=[Dense(0)]), InvalidParameterError, "units"),
    (dict(layers=[Dense(4, activation="swish")]), InvalidParameterError, "activation"),
    (dict(layers=[Dropout(1.0)]), InvalidParameterError, "rate"),
    (dict(layers=[5]), TypeError, r"layers\[0\] must be a layer spec"),
    (dict(layers=[Dense(3, name="a"), Dense(3, name="a")]), ValueError, "named 'a'"),
    (dict(optimizer=Adam(beta1=1.5)), InvalidParameterError, "beta1"),
])
def test_invalid_hyper_parameters(params, error, message):
    X, y = make_classification(30, 4, random_state=0)
    with pytest.raises(error, match=message):
        NNClassifier(**params).fit(X, y)


def test_batch_size_larger_than_data_warns():
    X, y = make_classification(30, 4, random_state=0)
    with pytest.warns(UserWarning, match="batch_size=100 larger than the number of samples"):
        NNClassifier(batch_size=100, max_iter=1).fit(X, y)


def test_convergence_warning_and_stopping(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        NNClassifier(max_iter=2).fit(X, y)
    clf = NNClassifier(max_iter=500, tol=10.0, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    # tol larger than any improvement: the first epoch sets the best loss, and
    # training stops once n_iter_no_change epochs have been exceeded.
    assert clf.n_iter_ == 4
    assert len(clf.loss_curve_) == 4 and clf.loss_ == clf.loss_curve_[-1]


@pytest.mark.parametrize("fit_labels, later_labels", [
    ([0, 1, 2, 1, 0, 2], [2, 2, 0]),              # multiclass ints
    ([5, 9, 9, 5], [9, 5, 5]),                    # binary: one column for 9
    ([-1.0, 3.0, 7.0, 3.0], [7.0, -1.0]),          # integral floats
    ([True, False, True], [False, False]),         # booleans
    (["b", "a", "c", "a"], ["c", "a"]),            # strings: LabelBinarizer itself
])
def test_targets_encoded_as_label_binarizer(fit_labels, later_labels):
    # Numeric labels take a faster encoding than LabelBinarizer.transform;
    # the rows must be the same, also for a later partial_fit batch.
    clf = NNClassifier(layers=[Dense(3)])
    Y = clf._validate_targets(np.array(fit_labels), first=True)
    binarizer = LabelBinarizer().fit(fit_labels)
    assert Y.dtype == np.dtype(clf.dtype)
    assert_array_equal(Y, binarizer.transform(fit_labels))
    assert_array_equal(clf._validate_targets(np.array(later_labels), first=False),
                       binarizer.transform(later_labels))
    if not isinstance(fit_labels[0], (bool, str)):
        with pytest.raises(ValueError, match=r"y contains labels \[4(\.0)?, 11(\.0)?\] not among"):
            clf._validate_targets(np.array(later_labels + [11, 4, 11]), first=False)


def test_partial_fit_classifier(digits):
    X, y = digits
    clf = NNClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X[:100], y[:100])
    with pytest.raises(ValueError, match=r"y contains labels \[9\] not among the classes"):
        NNClassifier().partial_fit(X[:100], np.minimum(y[:100], 9), classes=np.arange(9))
    clf.partial_fit(X[:100], y[:100], classes=np.arange(10))
    clf.partial_fit(X[100:], y[100:])
    assert clf.n_iter_ == 2 and clf.t_ == len(X)
    with pytest.raises(ValueError, match=r"y contains labels \[11\]"):
        clf.partial_fit(X[:3], [1, 2, 11])
    # A first call on one batch equals fit with max_iter=1 (same seed, same data).
    one = NNClassifier(random_state=0, max_iter=1, shuffle=True).fit(X, y)
    inc = NNClassifier(random_state=0).partial_fit(X, y, classes=np.unique(y))
    assert_array_equal(one.predict_proba(X), inc.predict_proba(X))


def test_partial_fit_regressor():
    X, y = make_regression(100, 4, random_state=0)
    reg = NNRegressor(random_state=0)
    losses = [reg.partial_fit(X, y / 100).loss_ for _ in range(20)]
    assert losses[-1] < losses[0]
    # Each call is one more epoch of the same training: 20 calls on the same
    # data give the model of a fit of 20 epochs.
    fitted = NNRegressor(random_state=0, max_iter=20, n_iter_no_change=20).fit(X, y / 100)
    assert fitted.n_iter_ == reg.n_iter_ == 20
    assert_array_equal(reg.network_.params, fitted.network_.params)
    assert losses == fitted.loss_curve_
    with pytest.raises(ValueError, match="X has 3 features"):
        reg.partial_fit(X[:, :3], y)


def test_warm_start_continues(digits):
    # Two warm-started fits of 3 epochs give the model of one fit of 6: the
    # second starts from the weights the first ended with, and the optimizer's
    # moments, the step count and the random generators (shuffling, dropout)
    # carry on too.
    X, y = digits
    layers = [Dense(32, activation="relu"), Dropout(0.2)]
    starts = []
    record_start = LambdaCallback(
        on_fit_begin=lambda est: starts.append(est.network_.params.copy()))
    warm = NNClassifier(layers, max_iter=3, warm_start=True, random_state=0,
                        callbacks=[record_start]).fit(X, y)
    after_first = warm.network_.params.copy()
    warm.fit(X, y)
    assert_array_equal(starts[1], after_first)
    once = NNClassifier(layers, max_iter=6, random_state=0).fit(X, y)
    assert warm.n_iter_ == once.n_iter_ == 6 and warm.t_ == once.t_
    assert warm.loss_curve_ == once.loss_curve_
    assert_array_equal(warm.network_.params, once.network_.params)
    # Without warm_start a second fit starts afresh: the same model again.
    cold = NNClassifier(layers, max_iter=3, random_state=0, callbacks=[record_start])
    first = cold.fit(X, y).network_.params.copy()
    cold.fit(X, y)
    assert cold.n_iter_ == 3
    assert_array_equal(starts[3], starts[2])
    assert_array_equal(cold.network_.params, first)


def test_get_and_set_weights(digits):
    X, y = digits
    clf = NNClassifier([Dense(12, activation="relu")], max_iter=2, random_state=0).fit(X, y)
    w = clf.get_weights()
    w["dense"]["kernel"][:] = 0  # a copy: the model is unchanged
    assert np.abs(clf.get_weights()["dense"]["kernel"]).sum() > 0
    other = NNClassifier([Dense(12, activation="relu")], max_iter=1, random_state=5).fit(X, y)
    other.set_weights(clf.get_weights())
    assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match="No layer with parameters is named 'nope'"):
        other.set_weights({"nope": {}})
    with pytest.raises(ValueError, match=r"has shape \(3, 3\), expected \(64, 12\)"):
        other.set_weights({"dense": {"kernel": np.zeros((3, 3))}, "output": {}})
    with pytest.raises(ValueError, match="NaN"):
        other.set_weights({"dense": {"bias": np.full(12, np.nan)}})
    with pytest.raises(ValueError, match="has no parameter 'gamma'"):
        other.set_weights({"dense": {"gamma": np.zeros(12)}})
    # Failed calls wrote nothing.
    assert_array_equal(other.predict_proba(X), clf.predict_proba(X))


def test_dtype_float64(digits):
    X, y = digits
    clf = NNClassifier(max_iter=2, dtype="float64", random_state=0).fit(X, y)
    assert clf.network_.params.dtype == np.float64
    assert clf.get_weights()["output"]["kernel"].dtype == np.float64


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_joblib_roundtrip_predicts_identically(tmp_path, digits, mmap_mode):
    X, y = digits
    clf = NNClassifier([Dense(20, activation="tanh"), Dropout(0.1)], max_iter=3,
                       random_state=0).fit(X, y)
    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    loaded = joblib.load(path, mmap_mode=mmap_mode)
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X),
                       clf.predict_proba(X))


def test_loaded_model_keeps_training(digits):
    X, y = digits
    clf = NNClassifier(max_iter=2, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    loaded.partial_fit(X, y)
    clf.partial_fit(X, y)
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # Parameters are views into the flat buffer again after loading.
    layer = loaded.network_.layers[0]
    assert np.shares_memory(layer.params["kernel"], loaded.network_.params)


def test_pipeline_grid_search_and_clone(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), NNClassifier(max_iter=20, random_state=0))
    grid = GridSearchCV(pipe, {
        "nnclassifier__learning_rate": [1e-3, 1e-2],
        "nnclassifier__layers": [[Dense(16, activation="relu")],
                                 [Dense(32, activation="tanh"), Dropout(0.2)]],
        "nnclassifier__optimizer": ["adam", SGD(momentum=0.9, nesterov=True)],
    }, cv=2)
    grid.fit(X[:600], y[:600])
    assert grid.best_score_ > 0.8
    assert len(grid.cv_results_["params"]) == 8
    est = NNClassifier(layers=[Dense(4, name="h")], optimizer=Adam(beta1=0.8))
    est.set_params(optimizer__beta1=0.7)
    twin = clone(est)
    assert twin.optimizer.beta1 == 0.7 and twin.optimizer is not est.optimizer
    assert twin.layers[0].name == "h" and twin.layers[0] is not est.layers[0]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam",
                                       SGD(momentum=0.5), Adam(beta2=0.99)])
def test_every_optimizer_trains(digits, optimizer):
    X, y = digits
    plain_sgd = optimizer == "sgd" or (isinstance(optimizer, SGD) and optimizer.momentum < 0.9)
    learning_rate = 0.1 if plain_sgd else 0.01
    clf = NNClassifier(optimizer=optimizer, learning_rate=learning_rate, batch_size=32,
                       max_iter=10, random_state=0).fit(X, y)
    assert clf.loss_curve_[-1] < 0.3 * clf.loss_curve_[0]
    assert clf.score(X, y) > 0.9


def test_layers_param_is_not_modified(digits):
    X, y = digits
    layers = [Dense(8, activation="relu"), Activation("tanh"), Flatten()]
    before = [layer.get_params() for layer in layers]
    NNClassifier(layers, max_iter=1).fit(X, y)
    assert [layer.get_params() for layer in layers] == before
    assert all(not hasattr(layer, "params") for layer in layers)


def test_dataframe_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    clf = NNClassifier(max_iter=1).fit(df, y)
    assert list(clf.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


def test_sample_weight_counts_like_repetition():
    X, y = make_classification(40, 5, random_state=0)
    w = np.random.RandomState(0).randint(0, 3, 40)
    weighted = NNClassifier(max_iter=30, random_state=0).fit(X, y, sample_weight=w)
    repeated = NNClassifier(max_iter=30, random_state=0).fit(np.repeat(X, w, 0),
                                                             np.repeat(y, w))
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                    rtol=1e-7, atol=1e-9)


def test_deep_params_list_every_layer_by_name():
    from skdl import MergeInput, Pathways

    est = NNRegressor([Dense(4, name="first"),
                       Pathways([[Dense(2)], [Dense(3, activation="tanh")]]),
                       MergeInput("meta", layers=[Dense(5)])])
    params = est.get_params(deep=True)
    layer_keys = [k for k in params if k.startswith("layers__") and k.count("__") == 1]
    assert layer_keys == ["layers__first", "layers__pathways", "layers__dense",
                          "layers__dense_1", "layers__merge_input", "layers__dense_2"]
    assert params["layers__dense_1__activation"] == "tanh"
    assert params["layers__dense_2__units"] == 5
    assert params["layers__pathways__merge"] == "concat"
    # Shallow parameters are what clone copies: no layer keys there.
    assert not any(k.startswith("layers__") for k in est.get_params(deep=False))


def test_set_params_by_layer_name_reaches_nested_layers():
    from skdl import MergeInput, Pathways

    inner = Dense(3, name="inner")
    est = NNRegressor([Pathways([[Dense(2)], [inner]]), MergeInput("m", layers=[Dense(5)])])
    assert est.set_params(layers__inner__units=7, learning_rate=0.1) is est
    assert inner.units == 7 and est.learning_rate == 0.1
    est.set_params(layers__dense_1__activation="relu")  # MergeInput's Dense
    assert est.layers[1].layers[0].activation == "relu"
    replacement = Dense(9, name="inner")
    est.set_params(layers__inner=replacement)
    assert est.layers[0].branches[1] == [replacement]
    with pytest.raises(ValueError, match=r"no layer is named 'conv9'; the layers are "
                       r"\['pathways', 'dense', 'inner', 'merge_input', 'dense_1'\]"):
        est.set_params(layers__conv9__filters=3)
    with pytest.raises(ValueError, match="Invalid parameter 'unit'"):
        est.set_params(layers__inner__unit=3)


def test_layer_names_with_double_underscores_are_matched_whole():
    est = NNRegressor([Dense(2, name="a__b"), Dense(3, name="a")])
    est.set_params(layers__a__b__units=4, layers__a__units=5)
    assert [spec.units for spec in est.layers] == [4, 5]


def test_activations_of_hidden_layers(digits):
    X, y = digits
    clf = NNClassifier([Dense(16, activation="relu", name="h1"), Dropout(0.5),
                        Dense(8, activation="tanh", name="h2")],
                       max_iter=3, random_state=0).fit(X, y)
    weights = clf.get_weights()
    h1 = np.maximum(X @ weights["h1"]["kernel"] + weights["h1"]["bias"], 0)
    assert_allclose(clf.activations(X, layer="h1"), h1, rtol=1e-5, atol=1e-6)
    h2 = np.tanh(h1 @ weights["h2"]["kernel"] + weights["h2"]["bias"])
    # None is the last hidden layer; dropout is off at inference.
    assert_allclose(clf.activations(X), h2, rtol=1e-5, atol=1e-6)
    assert clf.activations(X).dtype == np.float32
    with pytest.raises(ValueError, match=r"No layer is named 'h3'; the layers are "
                       r"\['h1', 'dropout', 'h2', 'output'\]"):
        clf.activations(X, layer="h3")
    with pytest.raises(ValueError, match="no hidden layers"):
        NNClassifier([], max_iter=1).fit(X, y).activations(X)


def test_activations_are_computed_in_chunks(digits, monkeypatch):
    import skdl._estimators as estimators

    X, y = digits
    clf = NNClassifier([Dense(8, name="h")], max_iter=1, random_state=0).fit(X, y)
    whole = clf.activations(X, layer="h")
    monkeypatch.setattr(estimators, "PREDICT_CHUNK_ROWS", 100)
    assert_array_equal(clf.activations(X, layer="h"), whole)


def test_wide_layers_predict_in_smaller_chunks_with_the_same_results(monkeypatch):
    import skdl._estimators as estimators

    rng = np.random.RandomState(0)
    X, y = rng.randn(50, 6, 4), rng.randint(0, 3, 50)
    clf = NNClassifier([Dense(16), MultiHeadAttention(2), GlobalAvgPool1D()], max_iter=1,
                       random_state=0).fit(X, y)
    # The widest output is Dense's 6 x 16 values per sample.
    assert estimators.predict_chunk_size(clf.network_) == min(4096, 2**20 // 96)
    whole = clf.predict_proba(X)
    monkeypatch.setattr(estimators, "PREDICT_CHUNK_VALUES", 96 * 7)  # chunks of 7
    assert estimators.predict_chunk_size(clf.network_) == 7
    assert_array_equal(clf.predict_proba(X), whole)
    monkeypatch.setattr(estimators, "PREDICT_CHUNK_VALUES", 10)  # at least one sample
    assert estimators.predict_chunk_size(clf.network_) == 1
    assert_array_equal(clf.predict_proba(X), whole)


# -- NumpyDL habits that would fail silently (issue 21) ----------------------------
def _output_layer_warnings(record):
    return [str(w.message) for w in record
            if w.category is UserWarning and "adds the output layer" in str(w.message)]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("layers, target, expected", [
    ([Dense(16, activation="relu"), Dense(10, activation="softmax")], "digits",
     "'dense_1', has a softmax over 10 units"),
    ([Dense(16, activation="relu"), Dense(10), Activation("softmax")], "digits",
     "'activation', has a softmax over 10 units"),
    ([HiddenBlock(10, batch_norm=True, activation="softmax")], "digits",
     "'hidden_block/activation', has a softmax over 10 units"),
    ([Dense(16, activation="relu"), Dense(2, activation="softmax")], "binary",
     "'dense_1', has a softmax over 2 units"),
    ([Dense(16, activation="relu"), Dense(1, activation="sigmoid")], "binary",
     "'dense_1', has a sigmoid over 1 unit"),
    ([Dense(3, activation="sigmoid")], "regression", "'dense', has a sigmoid over 3 units"),
])
def test_an_output_layer_in_layers_is_warned_about(digits, layers, target, expected,
                                                   recwarn):
    # NumpyDL's models end in their output layer; skdl adds its own after it,
    # and this digits net then scores 0.41 after 20 epochs (without its last
    # layer: 0.87), silently.
    X, y = digits
    if target == "binary":
        est = NNClassifier(layers, max_iter=1, random_state=0)
        y = y % 2
    elif target == "regression":
        est = NNRegressor(layers, max_iter=1, random_state=0)
        y = np.c_[y, y % 2, y % 3].astype(float)
    else:
        est = NNClassifier(layers, max_iter=1, random_state=0)
    est.fit(X, y)
    activation = expected.split()[3]
    assert _output_layer_warnings(recwarn) == [
        f"The last layer of layers, {expected}, like an output layer; skdl adds the "
        "output layer itself (a Dense with the loss's own activation), so this one "
        f"squeezes the features through a {activation} before it. Remove it from "
        "layers, or give it another activation if it is meant as a hidden layer."]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("layers", [
    None,
    [Dense(16, activation="relu"), Dense(10, activation="relu")],  # 10 units, relu
    [Dense(16, activation="softmax")],                              # 16 units, softmax
    [Dense(10, activation="sigmoid"), Dropout(0.2), Dense(16, activation="relu")],
    [],
])
def test_ordinary_networks_are_not_warned_about(digits, layers, recwarn):
    X, y = digits
    NNClassifier(layers, max_iter=1, random_state=0).fit(X, y)
    NNClassifier(layers, max_iter=1, random_state=0).partial_fit(X, y, classes=np.arange(10))
    assert not [w for w in recwarn if w.category is UserWarning], [
        str(w.message) for w in recwarn]


@pytest.mark.parametrize("layer, name", [
    (Dense(4, activation="elliot", alpha=2.0), "Dense layer 'dense'"),
    (Activation("symmetric_elliot", alpha=0.5), "Activation layer 'activation'"),
])
def test_elliot_steepness_through_alpha_is_refused(digits, layer, name):
    # NumpyDL's Elliot(steepness) habit: skdl's Elliot functions take no alpha,
    # which was ignored before.
    X, y = digits
    activation = layer.activation
    message = (f"{name}: alpha={layer.alpha!r} has no effect with "
               f"activation={activation!r}; only 'leaky_relu' (its slope) and 'elu' "
               f"(its scale) take an alpha. skdl's {activation} has no steepness: the "
               "layer's weights learn any scale of its input (NumpyDL's steepness s is "
               "the kernel times s). Remove alpha.")
    with pytest.raises(ValueError, match=re.escape(message)):
        NNClassifier([Dense(4), layer] if isinstance(layer, Activation) else [layer],
                     max_iter=1).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_alpha_is_refused_where_no_activation_reads_it(digits):
    X, y = digits
    for layers, name in [([Dense(4, activation="relu", alpha=0.1)], "Dense layer 'dense'"),
                         ([Dense(4, alpha=0.1)], "Dense layer 'dense'"),
                         ([Conv2D(2, 3, activation="tanh", alpha=1.0), Flatten()],
                          "Conv2D layer 'conv2d'"),
                         ([HiddenBlock(4, batch_norm=True, activation="sigmoid", alpha=1.0)],
                          "Activation layer 'hidden_block/activation'")]:
        with pytest.raises(ValueError, match=re.escape(f"{name}: alpha=") + ".* Remove "
                           "alpha.$"):
            NNClassifier(layers, input_shape=(1, 8, 8), max_iter=1).fit(X, y)
    # The two that read it still do: leaky_relu's slope, elu's scale.
    for activation in ("leaky_relu", "elu"):
        clf = NNClassifier([Dense(4, activation=activation, alpha=0.5, name="h")],
                           max_iter=1, random_state=0).fit(X, y)
        weights = clf.get_weights()["h"]
        Z = X @ weights["kernel"] + weights["bias"]
        expected = (np.where(Z > 0, Z, 0.5 * Z) if activation == "leaky_relu"
                    else np.where(Z > 0, Z, 0.5 * np.expm1(np.minimum(Z, 0))))
        assert_allclose(clf.activations(X, layer="h"), expected, rtol=1e-5, atol=1e-6)
