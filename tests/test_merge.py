"""Pathways and side inputs: shapes, values, gradients, errors, and a
multi-branch network with a side input inside a Pipeline."""
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skdl import NNClassifier, NNRegressor
from skdl._network import build_layers, layer_names
from skdl.layers import (
    LSTM,
    AvgPool2D,
    BatchNormalization,
    Conv1D,
    Conv2D,
    ConvBlock2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    HiddenBlock,
    MaxPool2D,
    MergeInput,
    Pathways,
)

from _fd import check_network_gradients
from _networks import initialized_network as _network


# -- shapes and values ------------------------------------------------------------

@pytest.mark.parametrize("merge, expected", [
    ("concat", lambda a, b: np.concatenate([a, b], axis=1)),
    ("add", lambda a, b: a + b),
    ("multiply", lambda a, b: a * b),
    ("average", lambda a, b: (a + b) / 2),
])
def test_merges_match_numpy(merge, expected):
    X = np.random.RandomState(0).randn(3, 2, 5, 5)
    net = _network([Pathways([[Conv2D(3, 3, padding="same", name="a")],
                              [Conv2D(3, 1, name="b")]], merge=merge)], X.shape[1:])
    a = net.layer_output(X, "a")
    b = net.layer_output(X, "b")
    assert_allclose(net.forward(X), expected(a, b), rtol=1e-12)
    assert net.output_shape == ((6, 5, 5) if merge == "concat" else (3, 5, 5))


def test_identity_branch_makes_a_residual_block():
    X = np.random.RandomState(0).randn(4, 3, 6, 6)
    net = _network([Pathways([[], [Conv2D(3, 3, padding="same", name="c")]],
                             merge="add")], X.shape[1:])
    assert_allclose(net.forward(X), X + net.layer_output(X, "c"), rtol=1e-12)


def test_three_branches_and_concat_along_last_axis_of_sequences():
    X = np.random.RandomState(0).randn(2, 7, 4)
    net = _network([Pathways([[Dense(2)], [Dense(3)], []], axis=-1)], X.shape[1:])
    assert net.output_shape == (7, 9)
    assert_allclose(net.forward(X)[..., 5:], X)


def test_nested_pathways_and_unique_generated_names():
    specs = [Conv2D(2, 3, padding="same"),
             Pathways([[Conv2D(2, 1)],
                       [Pathways([[Conv2D(2, 1)], [MaxPool2D(3, strides=1,
                                                             padding="same")]])]]),
             Flatten(), Dense(3)]
    names = list(layer_names(specs))
    assert names == ["conv2d", "pathways", "conv2d_1", "pathways_1", "conv2d_2",
                     "max_pool2d", "flatten", "dense"]
    net = _network(specs, (1, 5, 5))
    assert [layer.name for layer in net.all_layers] == names
    assert net.output_shape == (3,)
    assert set(net.get_weights()) == {"conv2d", "conv2d_1", "conv2d_2", "dense"}


def test_merge_input_concatenates_the_side_input_after_its_layers():
    X_main = np.random.RandomState(0).randn(5, 1, 4, 4)
    X_side = np.random.RandomState(1).randn(5, 2)
    flat = np.hstack([X_main.reshape(5, -1), X_side])
    net = _network([Flatten(), MergeInput("size", layers=[Dense(3, name="side")])],
                   (1, 4, 4), side_inputs={"size": (2,)})
    out = net.forward(flat)
    assert out.shape == (5, 19)
    assert_allclose(out[:, :16], X_main.reshape(5, -1))
    kernel, bias = net.get_weights()["side"].values()
    assert_allclose(out[:, 16:], X_side @ kernel + bias, rtol=1e-12)
    # Without layers the side input joins as it is.
    bare = _network([Flatten(), MergeInput("size")], (1, 4, 4), side_inputs={"size": (2,)})
    assert_allclose(bare.forward(flat), flat)


# -- gradients --------------------------------------------------------------------

@pytest.mark.parametrize("merge", ["concat", "add", "multiply", "average"])
def test_gradients_through_branches(merge):
    X = np.random.RandomState(0).randn(3, 2, 4, 4)
    specs = [Pathways([[Conv2D(2, 3, padding="same", activation="tanh")],
                       [Conv2D(2, 1), AvgPool2D(3, strides=1, padding="same")],
                       []], merge=merge),
             Flatten(), Dense(2)]
    check_network_gradients(specs, X, sample_weight=np.array([1.0, 0.5, 2.0]))


def test_gradients_through_nested_pathways_and_blocks():
    X = np.random.RandomState(0).randn(3, 1, 5, 5)
    specs = [ConvBlock2D(2, pool=None, activation="tanh"),
             Pathways([[], [Pathways([[Conv2D(2, 1)], [Conv2D(2, 3, padding="same")]],
                                     merge="average")]], merge="multiply"),
             Flatten(), HiddenBlock(3, activation="tanh")]
    check_network_gradients(specs, X)


def test_gradients_through_a_side_input_with_layers():
    rng = np.random.RandomState(0)
    flat = np.hstack([rng.randn(4, 2 * 3 * 3), rng.randn(4, 3)])
    specs = [Conv2D(2, 2, activation="tanh"), Flatten(),
             MergeInput("extra", layers=[Dense(2, activation="tanh")]), Dense(2)]
    check_network_gradients(specs, ((2, 3, 3), flat), side_inputs={"extra": (3,)})


def test_gradients_with_batch_statistics_inside_branches():
    X = np.random.RandomState(0).randn(4, 2, 3, 3)
    specs = [Pathways([[BatchNormalization()], [Conv2D(2, 1)]], merge="add"),
             Flatten(), Dense(2)]
    check_network_gradients(specs, X, training=True,
                            sample_weight=np.array([1.0, 2.0, 0.0, 1.0]))


def test_dropout_inside_a_branch_acts_only_while_training():
    X = np.ones((50, 20))
    net = _network([Pathways([[Dropout(0.5)], []], merge="add")], (20,))
    assert_allclose(net.forward(X), 2 * X)
    trained = net.forward(X, training=True, rng=np.random.default_rng(0))
    assert set(np.unique(trained)) == {1.0, 3.0}


def test_mask_passes_through_pathways_of_per_step_layers():
    X = np.array([[3, 1, 0, 0], [2, 2, 2, 0]])
    net = _network([Embedding(5, 3, mask_zero=True),
                    Pathways([[Dense(2)], [Dense(2)]], axis=-1),
                    LSTM(2)], (4,))
    lstm = net.layers[-1]
    out = net.forward(X)
    # The masked steps do not change the last state: padding more gives the same.
    longer = _network([Embedding(5, 3, mask_zero=True),
                       Pathways([[Dense(2)], [Dense(2)]], axis=-1), LSTM(2)], (6,))
    longer.params[...] = net.params
    assert_allclose(longer.forward(np.pad(X, ((0, 0), (0, 2)))), out, rtol=1e-12)
    assert net.layers[1].passes_mask and lstm.output_shape == (2,)


# -- errors -------------------------------------------------------------------------

@pytest.mark.parametrize("specs, error, match", [
    ([Pathways([[Dense(2)]])], ValueError, "at least two branches"),
    ([Pathways([[Dense(2)], Dense(3)])], TypeError, r"branches\[1\] must be a list"),
    ([Pathways([[Dense(2)], [Dense(3)]], merge="add")], ValueError,
     r"cannot add outputs of shapes \[\(2,\), \(3,\)\]"),
    ([Pathways([[Dense(2)], [Dense(2)]], merge="max")], ValueError, "merge"),
    ([Pathways([[Dense(2)], [Dense(2)]], axis=3)], ValueError, "axis=3 is not an axis"),
    ([Pathways([[Dense(2)], [Dense(2)]], axis=0)], ValueError, "0 is the batch"),
    ([Pathways([[Dense(2)], [Dense(2, name="d")], [Dense(2, name="d")]])], ValueError,
     "Two layers are named 'd'"),
    ([Pathways([[Dense(2)], ["dense"]])], TypeError,
     r"Pathways 'pathways' branches\[1\]\[0\] must be a layer spec"),
    ([MergeInput("size")], ValueError, "declare them with a dict input_shape"),
])
def test_bad_pathways_raise_clear_errors(specs, error, match):
    with pytest.raises(error, match=match):
        build_layers(specs, (4,), np.float64)


def test_concat_of_mismatched_shapes_names_them():
    with pytest.raises(ValueError, match=r"cannot concatenate outputs of shapes "
                       r"\[\(2, 4, 4\), \(2, 2, 2\)\] along axis 1"):
        build_layers([Pathways([[Conv2D(2, 1)], [Conv2D(2, 1), MaxPool2D(2)]])],
                     (1, 4, 4), np.float64)
    with pytest.raises(ValueError, match="different numbers of axes"):
        build_layers([Flatten(), MergeInput("meta")], (1, 4, 4), np.float64,
                     side_inputs={"meta": (2, 3)})


def test_unknown_and_unused_side_inputs():
    with pytest.raises(ValueError, match=r"merges the input 'sizes', but the network's "
                       r"side inputs are \['size'\]"):
        build_layers([MergeInput("sizes")], (4,), np.float64, side_inputs={"size": (2,)})
    with pytest.raises(ValueError, match=r"side inputs \['size'\] are declared in "
                       "input_shape but no layer merges them in"):
        build_layers([Dense(2)], (4,), np.float64, side_inputs={"size": (2,)})


def test_pathways_build_outside_a_network():
    layer = Pathways([[Conv1D(2, 3)], [Conv1D(3, 3)]]).build((1, 9), np.float64, "p")
    assert layer.output_shape == (5, 7)
    assert [sub.name for sub in layer.sublayers()] == ["conv1d", "conv1d_1"]


# -- estimators ------------------------------------------------------------------

def _digits_with_size():
    X, y = load_digits(return_X_y=True)
    # pydnn's side channel: something about the image the pixels lose, here
    # its total ink and the number of lit pixels.
    size = np.c_[X.sum(axis=1), (X > 0).sum(axis=1)]
    return np.c_[X, size], y


def _multi_branch_classifier(**params):
    return NNClassifier(
        layers=[ConvBlock2D(8, name="block1"),
                Pathways([[Conv2D(8, 1, activation="relu", name="narrow")],
                          [Conv2D(8, 3, padding="same", activation="relu",
                                  name="wide")]], name="inception"),
                Flatten(),
                MergeInput("size", layers=[Dense(4, activation="relu", name="size_dense")]),
                HiddenBlock(32, name="hidden")],
        input_shape={"image": (1, 8, 8), "size": (2,)}, random_state=0, **params)


def _column_transformer():
    return ColumnTransformer([
        ("image", FunctionTransformer(lambda X: X / 16), slice(0, 64)),
        ("size", StandardScaler(), slice(64, 66)),
    ])


def test_multi_branch_network_with_side_input_trains_in_a_pipeline():
    X, y = _digits_with_size()
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    pipe = make_pipeline(_column_transformer(), _multi_branch_classifier(max_iter=40))
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.95
    clf = pipe[-1]
    assert clf.input_shape_ == {"image": (1, 8, 8), "size": (2,)}
    # The same data as a dict of arrays by input name predicts the same.
    Xt = pipe[0].transform(X_test)
    as_dict = {"size": Xt[:, 64:], "image": Xt[:, :64].reshape(-1, 1, 8, 8)}
    assert_array_equal(clf.predict(as_dict), clf.predict(Xt))


def test_the_side_input_changes_the_prediction():
    X, y = _digits_with_size()
    clf = _multi_branch_classifier(max_iter=3).fit(_column_transformer().fit_transform(X), y)
    Xt = _column_transformer().fit_transform(X)[:20]
    moved = Xt.copy()
    moved[:, 64:] += 5.0
    assert not np.allclose(clf.predict_proba(Xt), clf.predict_proba(moved))


def test_dict_input_fits_like_flat_input():
    rng = np.random.RandomState(0)
    image, meta = rng.randn(40, 2, 3, 3), rng.randn(40, 3)
    y = rng.randn(40)
    layers = [Conv2D(2, 2), Flatten(), MergeInput("meta")]
    shapes = {"image": (2, 3, 3), "meta": (3,)}
    a = NNRegressor(layers, input_shape=shapes, max_iter=3, random_state=0)
    b = clone(a)
    a.fit({"image": image, "meta": meta}, y)
    b.fit(np.hstack([image.reshape(40, -1), meta]), y)
    assert_array_equal(a.predict({"image": image, "meta": meta}),
                       b.predict(np.hstack([image.reshape(40, -1), meta])))


@pytest.mark.parametrize("X, match", [
    ({"image": np.zeros((5, 2, 3, 3))}, r"X has the inputs \['image'\], but input_shape "
     r"declares \['image', 'meta'\]"),
    ({"image": np.zeros((5, 2, 3, 3)), "meta": np.zeros((5, 4))},
     r"X\['meta'\] has shape \(5, 4\); its samples must have shape \(3,\)"),
    ({"image": np.zeros((5, 2, 3, 3)), "meta": np.zeros((4, 3))},
     "different numbers of samples"),
    (np.zeros((5, 20)), r"take 21 features per sample side by side"),
    (np.zeros((5, 2, 3, 3)), r"take 21 features per sample side by side"),
])
def test_bad_multi_input_data(X, match):
    est = NNRegressor([Flatten(), MergeInput("meta")],
                      input_shape={"image": (2, 3, 3), "meta": (3,)}, max_iter=1)
    with pytest.raises(ValueError, match=match):
        est.fit(X, np.zeros(5))


def test_dict_X_needs_a_dict_input_shape_and_valid_shapes():
    with pytest.raises(ValueError, match="input_shape is not a dict"):
        NNRegressor(max_iter=1).fit({"a": np.zeros((3, 2))}, np.zeros(3))
    with pytest.raises(ValueError, match=r"input_shape\['meta'\] must be a non-empty "
                       "tuple of positive ints"):
        NNRegressor(input_shape={"a": (2,), "meta": (0,)}, max_iter=1).fit(
            np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="empty dict"):
        NNRegressor(input_shape={}, max_iter=1).fit(np.zeros((3, 2)), np.zeros(3))


def test_layer_parameters_are_searchable_by_name():
    X, y = _digits_with_size()
    Xt = _column_transformer().fit_transform(X)[:300]
    search = GridSearchCV(_multi_branch_classifier(max_iter=2),
                          {"layers__wide__filters": [2, 5],
                           "layers__size_dense__units": [3]}, cv=2)
    search.fit(Xt, y[:300])
    kernels = [r for r in search.cv_results_["params"]]
    assert kernels == [{"layers__size_dense__units": 3, "layers__wide__filters": 2},
                       {"layers__size_dense__units": 3, "layers__wide__filters": 5}]
    best = search.best_estimator_
    wide = best.get_weights()["wide"]["kernel"]
    assert wide.shape[0] == search.best_params_["layers__wide__filters"]
    assert best.get_weights()["size_dense"]["kernel"].shape == (2, 3)
    # The searched estimator's own specs were not touched.
    assert search.estimator.layers[1].branches[1][0].filters == 8


def test_pathways_example_runs(capsys):
    from _examples import load_example

    example = load_example("digits_pathways")
    X, y = example.stretched_digits()
    assert X.shape == (1797, 66) and X[:, 64:].min() >= 1 and X[:, 64:].max() <= 8
    best, accuracy = example.main(max_iter=5, grid=((2, 4),))
    out = capsys.readouterr().out
    assert "MergeInput" in out and "confusion matrix" in out
    # Five epochs reach 95.1% on the hold-out quarter here (README: 98.0% after 60).
    assert accuracy >= 0.90
    assert f"{accuracy:.2%} hold-out accuracy" in out
    # The search's choice is the candidate it printed as best cross-validated.
    scores = dict(re.findall(r"'network__layers__wide__filters': (\d+)\}: ([\d.]+)% "
                             r"cross-validated", out))
    chosen = best.named_steps["network"].get_weights()["wide"]["kernel"].shape[0]
    assert sorted(scores) == ["2", "4"]
    assert chosen == int(max(scores, key=lambda filters: float(scores[filters])))


def test_fitted_graph_survives_joblib(tmp_path):
    import joblib

    X, y = _digits_with_size()
    Xt = _column_transformer().fit_transform(X)[:200]
    clf = _multi_branch_classifier(max_iter=1).fit(Xt, y[:200])
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert_array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))
    assert_array_equal(loaded.activations(Xt, "narrow"), clf.activations(Xt, "narrow"))
    # The loaded network's layers are views of its own buffer: training moves them.
    loaded.partial_fit(Xt, y[:200])
    assert not np.array_equal(loaded.get_weights()["wide"]["kernel"],
                              clf.get_weights()["wide"]["kernel"])


def test_activations_of_a_side_input_layer():
    X, y = _digits_with_size()
    Xt = _column_transformer().fit_transform(X)[:100]
    clf = _multi_branch_classifier(max_iter=1).fit(Xt, y[:100])
    w = clf.get_weights()["size_dense"]
    expected = np.maximum(Xt[:, 64:] @ w["kernel"] + w["bias"], 0)
    as_dict = {"image": Xt[:, :64], "size": Xt[:, 64:]}
    assert_allclose(clf.activations(as_dict, "size_dense"), expected, rtol=1e-5,
                    atol=1e-6)
    assert clf.activations(Xt, "inception").shape == (100, 16, 4, 4)
