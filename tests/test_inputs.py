"""What X may be: pandas DataFrames, scipy sparse matrices, lists, int and
object arrays; and sample_weight routed through Pipeline and GridSearchCV."""
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skdl import Conv2D, Dense, Flatten, NNClassifier, NNRegressor
from skdl.augment import GaussianNoise


@pytest.fixture(scope="module")
def tabular():
    X, y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    return X, y


def _model(**params):
    params = {"layers": [Dense(8)], "max_iter": 4, "random_state": 0, **params}
    return NNClassifier(**params)


# -- pandas ----------------------------------------------------------------------

def test_dataframe_sets_feature_names_and_predicts_like_its_array(tabular):
    X, y = tabular
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    from_frame = _model().fit(frame, pd.Series(y, name="label"))
    from_array = _model().fit(X, y)
    assert_array_equal(from_frame.feature_names_in_, frame.columns)
    assert not hasattr(from_array, "feature_names_in_")
    assert_array_equal(from_frame.predict_proba(frame), from_array.predict_proba(X))


def test_mismatched_column_names_get_scikit_learns_warnings_and_errors(tabular):
    X, y = tabular
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    model = _model().fit(frame, y)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but "
                                         "NNClassifier was fitted with feature names"):
        model.predict(X)
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        model.predict(frame.rename(columns={"f0": "other"}))
    with pytest.raises(ValueError, match="must be in the same order"):
        model.predict(frame[frame.columns[::-1]])
    unnamed = _model().fit(X, y)
    with pytest.warns(UserWarning, match="X has feature names, but NNClassifier was "
                                         "fitted without feature names"):
        unnamed.predict(frame)


def test_dataframe_of_pixels_feeds_a_cnn_with_input_shape():
    X, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[:150] / 16, columns=[f"pixel_{i}" for i in range(64)])
    model = NNClassifier([Conv2D(4, 3), Flatten()], input_shape=(1, 8, 8), max_iter=2,
                         random_state=0).fit(frame, y[:150])
    assert model.feature_names_in_[-1] == "pixel_63"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no feature names: tested above
        from_array = model.predict_proba(X[:150] / 16)
    assert_array_equal(model.predict_proba(frame), from_array)


def test_pipeline_with_a_pandas_column_transformer():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"size": rng.rand(80) * 100, "weight": rng.rand(80),
                          "colour": rng.choice(["red", "green", "blue"], 80)})
    y = frame["size"] / 50 + (frame["colour"] == "red")
    prepare = ColumnTransformer([("num", StandardScaler(), ["size", "weight"]),
                                 ("cat", OneHotEncoder(sparse_output=False), ["colour"])])
    prepare.set_output(transform="pandas")
    pipe = make_pipeline(prepare, NNRegressor([Dense(8)], max_iter=5, random_state=0))
    pipe.fit(frame, y)
    regressor = pipe[-1]
    assert list(regressor.feature_names_in_) == [
        "num__size", "num__weight", "cat__colour_blue", "cat__colour_green",
        "cat__colour_red"]
    assert pipe.predict(frame).shape == (80,)
    assert np.isfinite(pipe.predict(frame)).all()


# -- lists, ints, objects ------------------------------------------------------------

@pytest.mark.parametrize("convert", [
    lambda X: X.tolist(),
    lambda X: X.astype(object),
], ids=["list", "object"])
def test_lists_and_object_arrays_train_like_the_float_array(tabular, convert):
    X, y = tabular
    reference = _model().fit(X, y)
    model = _model().fit(convert(X), list(y))
    assert_array_equal(model.predict_proba(convert(X)), reference.predict_proba(X))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, bool])
def test_integer_and_boolean_features_are_taken_as_floats(tabular, dtype):
    X, y = tabular
    Xi = (np.abs(X) * 10).astype(dtype)
    model = _model().fit(Xi, y)
    assert_array_equal(model.predict_proba(Xi), model.predict_proba(Xi.astype(np.float64)))


def test_non_numeric_objects_are_refused(tabular):
    X, y = tabular
    Xo = X.astype(object)
    Xo[3, 2] = "seven"
    with pytest.raises(ValueError, match="could not convert string to float: 'seven'"):
        _model().fit(Xo, y)


# -- sparse ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sparse_data():
    X, y = make_classification(200, 40, n_informative=10, random_state=1)
    X[np.abs(X) < 1.2] = 0  # about three quarters zeros
    return X, y


@pytest.mark.parametrize("fmt, container", [("csr", "matrix"), ("csc", "matrix"),
                                             ("coo", "matrix"), ("csr", "array")])
def test_sparse_input_trains_like_its_dense_copy(sparse_data, fmt, container):
    X, y = sparse_data
    Xs = (sparse.csr_matrix if container == "matrix" else sparse.csr_array)(X).asformat(fmt)
    params = dict(layers=[Dense(16, activation="tanh")], max_iter=8, dtype="float64",
                  early_stopping=True, validation_fraction=0.2)
    model = _model(**params).fit(Xs, y)
    dense = _model(**params).fit(X, y)
    # The sparse product sums the same terms in another order: equal to rounding.
    assert_allclose(model.network_.params, dense.network_.params, rtol=1e-9, atol=1e-12)
    assert_allclose(model.predict_proba(Xs), dense.predict_proba(X), rtol=1e-9, atol=1e-12)
    # A sparse model takes dense X too, and the other way round.
    assert_allclose(model.predict_proba(X), model.predict_proba(Xs), rtol=1e-12, atol=1e-14)
    assert_allclose(dense.predict_proba(Xs), dense.predict_proba(X), rtol=1e-12, atol=1e-14)


def test_sparse_input_to_a_network_without_hidden_layers_and_partial_fit(sparse_data):
    X, y = sparse_data
    Xs = sparse.csr_matrix(X)
    model = NNRegressor([], random_state=0)
    for _ in range(3):
        model.partial_fit(Xs, y.astype(float))
    dense = NNRegressor([], random_state=0)
    for _ in range(3):
        dense.partial_fit(X, y.astype(float))
    assert_allclose(model.predict(Xs), dense.predict(X), rtol=1e-5, atol=1e-6)


def test_sparse_input_is_never_made_dense():
    # 2,000 x 500,000 would be 8 GB dense; the model's own arrays take ~8 MB.
    rng = np.random.RandomState(0)
    n, k = 2000, 500_000
    rows = np.repeat(np.arange(n), 5)
    cols = rng.randint(0, k, size=rows.size)
    X = sparse.csr_matrix((rng.rand(rows.size), (rows, cols)), shape=(n, k))
    y = rng.randint(0, 2, n)
    model = NNClassifier([Dense(2)], max_iter=1, batch_size=500, random_state=0)
    tracemalloc.start()
    try:
        model.fit(X, y)
        model.predict(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("model, reason", [
    (NNClassifier([Conv2D(2, 3)], input_shape=(1, 5, 8)),
     "takes samples of shape \\(1, 5, 8\\)"),
    (NNClassifier([Flatten(), Dense(3)]), "starts with Flatten"),
    (NNClassifier([Dense(3)], input_shape=(5, 8)), "takes samples of shape \\(5, 8\\)"),
    (NNClassifier([Dense(3)], input_shape={"a": (30,), "b": (10,)}), "several inputs"),
])
def test_sparse_input_to_other_first_layers_is_refused_with_the_reason(
        sparse_data, model, reason):
    X, y = sparse_data
    assert model.__sklearn_tags__().input_tags.sparse is False
    with pytest.raises(TypeError, match="Sparse X is accepted only by a network whose "
                                        f"first layer is a Dense layer.*{reason}"):
        model.set_params(max_iter=1).fit(sparse.csr_matrix(X), y)
    assert not hasattr(model, "network_")


def test_sparse_input_to_a_dense_fitted_cnn_is_refused_at_predict(sparse_data):
    X, y = load_digits(return_X_y=True)
    model = NNClassifier([Conv2D(2, 3), Flatten()], input_shape=(1, 8, 8), max_iter=1,
                         random_state=0).fit(X[:50], y[:50])
    with pytest.raises(TypeError, match="takes samples of shape \\(1, 8, 8\\)"):
        model.predict(sparse.csr_matrix(X[:5]))


def test_sparse_input_cannot_be_augmented(sparse_data):
    X, y = sparse_data
    model = _model(augment=[GaussianNoise(0.1)])
    assert model.__sklearn_tags__().input_tags.sparse is True
    with pytest.raises(TypeError, match="sparse X cannot be augmented"):
        model.fit(sparse.csr_matrix(X), y)
    model.fit(X, y)  # dense: augmented; the next epochs cannot be with sparse X
    with pytest.raises(TypeError, match="sparse X cannot be augmented"):
        model.partial_fit(sparse.csr_matrix(X), y)
    # Prediction never augments: sparse X is fine there.
    assert_allclose(model.predict_proba(sparse.csr_matrix(X)), model.predict_proba(X),
                    rtol=1e-5, atol=1e-6)


# -- metadata routing ------------------------------------------------------------------

@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def test_sample_weight_reaches_skdl_through_a_pipeline(routing, tabular):
    X, y = tabular
    w = np.random.RandomState(0).randint(0, 3, len(y)).astype(float)
    pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                         _model().set_fit_request(sample_weight=True))
    pipe.fit(X, y, sample_weight=w)
    direct = _model().fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    unweighted = _model().fit(StandardScaler().fit_transform(X), y)
    assert_array_equal(pipe[-1].network_.params, direct.network_.params)
    assert not np.array_equal(pipe[-1].network_.params, unweighted.network_.params)


def test_sample_weight_reaches_skdl_through_grid_search(routing, tabular):
    X, y = tabular
    w = np.random.RandomState(1).randint(0, 3, len(y)).astype(float)
    model = _model().set_fit_request(sample_weight=True).set_score_request(
        sample_weight=True)
    search = GridSearchCV(model, {"layers__dense__units": [4, 8]}, cv=KFold(2),
                          refit=True).fit(X, y, sample_weight=w)
    best = search.best_params_["layers__dense__units"]
    direct = _model(layers=[Dense(best)]).fit(X, y, sample_weight=w)
    assert_array_equal(search.best_estimator_.network_.params, direct.network_.params)
    # The fold scores are weighted too: recompute one by hand.
    train, test = next(iter(KFold(2).split(X)))
    fold = _model(layers=[Dense(best)]).fit(X[train], y[train], sample_weight=w[train])
    index = search.cv_results_["params"].index(search.best_params_)
    assert search.cv_results_["split0_test_score"][index] == pytest.approx(
        fold.score(X[test], y[test], sample_weight=w[test]))


def test_unrequested_sample_weight_gets_scikit_learns_routing_error(routing, tabular):
    X, y = tabular
    pipe = Pipeline([("model", _model())])
    with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
        pipe.fit(X, y, sample_weight=np.ones(len(y)))


# -- flat rows or shaped samples ---------------------------------------------------------

def _cnn(**params):
    return NNClassifier([Conv2D(3, 3, name="conv"), Flatten()], max_iter=2,
                        random_state=0, **params)


@pytest.fixture(scope="module")
def cnns(digits):
    """The same CNN fitted on flat rows (with input_shape) and on images."""
    X, y = digits
    flat = _cnn(input_shape=(1, 8, 8)).fit(X[:200], y[:200])
    shaped = _cnn().fit(X[:200].reshape(-1, 1, 8, 8), y[:200])
    return flat, shaped


def test_either_layout_predicts_the_same_whichever_the_model_was_fitted_on(cnns, digits):
    X = digits[0][200:260]
    images = X.reshape(-1, 1, 8, 8)
    flat, shaped = cnns
    # The network sees the same samples either way, so the fits are one model.
    assert flat.n_features_in_ == 64 and shaped.n_features_in_ == 1
    assert_array_equal(flat.get_weights()["conv"]["kernel"],
                       shaped.get_weights()["conv"]["kernel"])
    expected = flat.predict_proba(X)
    for model in cnns:
        for given in (X, images, images.tolist()):
            assert_array_equal(model.predict_proba(given), expected)
            assert_array_equal(model.predict(given), flat.predict(X))
        assert_array_equal(model.activations(images, layer="conv"),
                           flat.activations(X, layer="conv"))
        assert model.score(images, digits[1][200:260]) == flat.score(X, digits[1][200:260])


def test_partial_fit_continues_on_either_layout(digits):
    X, y = digits[0][:120], digits[1][:120]
    continued = {}
    for name, given in (("flat", X), ("images", X.reshape(-1, 1, 8, 8))):
        model = _cnn(input_shape=(1, 8, 8)).fit(X, y)
        continued[name] = model.partial_fit(given, y).get_weights()["conv"]["kernel"]
    assert_array_equal(continued["flat"], continued["images"])


def test_a_sequence_model_takes_flat_rows_or_sequences(digits):
    from skdl import GRU
    X, y = digits[0][:150], digits[1][:150]
    model = NNClassifier([GRU(5)], max_iter=2, random_state=0).fit(X.reshape(-1, 8, 8), y)
    assert_array_equal(model.predict_proba(X), model.predict_proba(X.reshape(-1, 8, 8)))


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("given, message", [
    ((5, 63), r"X has 63 features, but NNClassifier is expecting 64 features as input: "
              r"flat rows of 64 features or samples of shape \(1, 8, 8\), the shape it "
              r"was fitted on\."),
    ((5, 1, 4, 16), r"X has samples of shape \(1, 4, 16\), but NNClassifier was fitted "
                    r"on samples of shape \(1, 8, 8\): give flat rows of 64 features or "
                    r"samples of shape \(1, 8, 8\)\."),
    ((5, 8, 8), r"X has samples of shape \(8, 8\), but NNClassifier was fitted on "
                r"samples of shape \(1, 8, 8\)"),
])
def test_neither_layout_names_both_and_what_was_given(cnns, which, given, message):
    model = cnns[which]
    for method in (model.predict, model.predict_proba, model.activations):
        with pytest.raises(ValueError, match=message):
            method(np.zeros(given))
    with pytest.raises(ValueError, match=message):
        model.partial_fit(np.zeros(given), np.zeros(given[0], dtype=int))


def test_flat_models_keep_scikit_learns_feature_count_message(tabular):
    X, y = tabular
    model = _model().fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but NNClassifier is "
                                         "expecting 6 features as input"):
        model.predict(X[:, :5])
