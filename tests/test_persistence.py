"""skdl's safe model files: round trips that predict bit-identically, training
that goes on exactly as before, and refusal of damaged, tampered, newer and
unsafe files (nothing is imported or unpickled)."""
import hashlib
import io
import json
import os
import re
import sys
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from skdl import NNClassifier, NNRegressor, _persistence
from skdl._persistence import (
    METADATA_MEMBER,
    PIPELINE_CHECKSUMS,
    SUPPORTED_FORMAT_VERSION,
    _spec_classes,
    load,
    save,
)
from skdl._training import TrainingState
from skdl.augment import RandomShift
from skdl.callbacks import EarlyStopping, LambdaCallback
from skdl.layers import (
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool1D,
    HiddenBlock,
    LastStep,
    LayerNormalization,
    MaxPool2D,
    MergeInput,
    MultiHeadAttention,
    Pathways,
    PositionalEmbedding,
    TransformerEncoderBlock,
)
from skdl.optimizers import SGD, Adam
from skdl.regularizers import L2
from skdl.schedules import Cosine, EpochSchedule, PatienceAnnealer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ALLOWED = set(_spec_classes()) | {"skdl._estimators.NNClassifier",
                                  "skdl._estimators.NNRegressor"}


# -- helpers ------------------------------------------------------------------

def _data(n=40, features=6, seed=0):
    return np.random.RandomState(seed).rand(n, features).astype(np.float32)


def _images(n=40, seed=0):
    return np.random.RandomState(seed).rand(n, 1, 6, 6).astype(np.float32)


def _round_trip(est, tmp_path, name="model.skdl"):
    path = tmp_path / name
    save(est, path)
    return load(path)


def assert_same_value(a, b, where="value"):
    """Equal values of equal types, recursively (specs by their parameters,
    arrays by dtype and bits, nan equal to nan)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, BaseEstimator):
        assert_same_value(a.get_params(deep=False), b.get_params(deep=False), where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_value(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same_value(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif isinstance(a, np.random.RandomState):
        assert_same_value(a.get_state(legacy=False), b.get_state(legacy=False), where)
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, where
    else:
        assert a == b, where


def assert_same_model(original, loaded, X):
    """Same class, parameters and fitted state; bit-identical outputs."""
    assert type(loaded) is type(original)
    assert_same_value(original.get_params(deep=False), loaded.get_params(deep=False),
                      "params")
    for name in ("input_shape_", "n_features_in_", "n_outputs_", "classes_",
                 "feature_names_in_", "loss_", "loss_curve_", "n_iter_",
                 "t_", "best_loss_", "learning_rate_"):
        if hasattr(original, name):
            assert_same_value(getattr(original, name), getattr(loaded, name), name)
        else:
            assert not hasattr(loaded, name), name
    for field in TrainingState.SAVED:  # what the next fit carries on from
        assert_same_value(getattr(original._training_state, field),
                          getattr(loaded._training_state, field), f"training state {field}")
    # The records' durations are timings: equal after a round trip, not
    # after training both further.
    assert_same_value([{k: v for k, v in r.items() if k != "duration"}
                       for r in original.history_],
                      [{k: v for k, v in r.items() if k != "duration"}
                       for r in loaded.history_], "history_")
    assert_same_value(original.get_weights(), loaded.get_weights(), "weights")
    assert_same_value(original.predict(X), loaded.predict(X), "predict")
    if hasattr(original, "predict_proba"):
        assert_same_value(original.predict_proba(X), loaded.predict_proba(X), "proba")


def _contents(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_zip(path, contents, seal=True):
    """Write ``contents`` ({member: bytes}) as a zip file. A pipeline's file
    (with PIPELINE_CHECKSUMS) gets its checksums recomputed unless ``seal``
    is False, as one who edits it on purpose would: what is then refused is
    refused by the checks inside."""
    if seal and PIPELINE_CHECKSUMS in contents:
        contents = dict(contents, **{PIPELINE_CHECKSUMS: json.dumps(
            {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()
             if name != PIPELINE_CHECKSUMS}).encode()})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def _rewrite(path, edit=None, members=None, drop=()):
    """Rewrite a model file: ``edit(metadata)`` changes the metadata in
    place; ``members`` replaces or adds members; ``drop`` removes some."""
    contents = _contents(path)
    metadata = json.loads(contents[METADATA_MEMBER])
    if edit is not None:
        edit(metadata)
    contents[METADATA_MEMBER] = json.dumps(metadata).encode()
    contents.update(members or {})
    for name in drop:
        del contents[name]
    _write_zip(path, contents)


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _replace_array(path, name, array):
    """Put ``array`` in the file as ``name``, with matching metadata (so only
    the checks against the model can catch it)."""
    data = _npy(array)

    def edit(metadata):
        metadata["arrays"][name] = {"dtype": array.dtype.str, "shape": list(array.shape),
                                    "sha256": hashlib.sha256(data).hexdigest()}

    _rewrite(path, edit, members={f"arrays/{name}.npy": data})


def _params_array_name(path):
    metadata = json.loads(_contents(path)[METADATA_MEMBER])
    return metadata["fitted"]["network"]["params"]["array"]


def _specs_named(value):
    """Every class name a model file's JSON gives, wherever it is nested."""
    if isinstance(value, dict):
        found = [value["spec"]] if "spec" in value else []
        return found + [name for item in value.values() for name in _specs_named(item)]
    if isinstance(value, list):
        return [name for item in value for name in _specs_named(item)]
    return []


@pytest.fixture(scope="module")
def fitted_file(tmp_path_factory):
    """A small fitted classifier and its model file (copied by each test)."""
    X, y = _data(), np.arange(40) % 3
    clf = NNClassifier([Dense(8, activation="relu"), Dropout(0.2)], max_iter=3,
                       random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "model.skdl"
    save(clf, path)
    return clf, path.read_bytes()


@pytest.fixture
def model_file(fitted_file, tmp_path):
    clf, data = fitted_file
    path = tmp_path / "model.skdl"
    path.write_bytes(data)
    return clf, path


# -- round trips ------------------------------------------------------------------

def _targets(kind, n=40):
    rng = np.random.RandomState(1)
    if kind == "multiclass":
        return np.arange(n) % 3
    if kind == "binary":
        return np.arange(n) % 2
    if kind == "multilabel":
        return (rng.rand(n, 3) < 0.5).astype(int)
    if kind == "strings":
        return np.array(["cat", "dog", "eel"])[np.arange(n) % 3]
    if kind == "bools":
        return np.arange(n) % 2 == 0
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "strings",
                                  "bools"])
def test_classifier_round_trip_predicts_identically(kind, tmp_path):
    X, y = _data(), _targets(kind)
    clf = NNClassifier([Dense(8, activation="relu"), Dropout(0.2)], max_iter=3,
                       random_state=0).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert_same_model(clf, loaded, X)
    assert loaded._label_binarizer.y_type_ == clf._label_binarizer.y_type_
    assert loaded._label_binarizer.classes_ is loaded.classes_
    assert loaded.score(X, y) == clf.score(X, y)
    assert loaded.history_ == clf.history_


def test_class_weight_dict_with_int_keys(tmp_path):
    X, y = _data(), np.arange(40) % 2
    clf = NNClassifier([Dense(4)], class_weight={0: 1.0, 1: 2.5}, max_iter=2,
                       random_state=0).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert loaded.class_weight == {0: 1.0, 1: 2.5}
    assert all(type(key) is int for key in loaded.class_weight)
    assert_same_model(clf, loaded, X)


@pytest.mark.parametrize("y_shape", [(40,), (40, 2)])
def test_regressor_round_trip(y_shape, tmp_path):
    X = _data()
    y = np.random.RandomState(2).randn(*y_shape)
    reg = NNRegressor([Dense(8, activation="tanh")], max_iter=3, random_state=0,
                      dtype="float64").fit(X, y)
    loaded = _round_trip(reg, tmp_path)
    assert_same_model(reg, loaded, X)
    assert loaded.predict(X).shape == y_shape


def test_cnn_with_batch_normalization_buffers(tmp_path):
    X, y = _images(), np.arange(40) % 2
    clf = NNClassifier([Conv2D(3, 3, activation="relu"), BatchNormalization(),
                        MaxPool2D(2), Flatten(), Dense(6)],
                       max_iter=3, random_state=0).fit(X, y)
    moving_mean = clf.get_weights()["batch_normalization"]["moving_mean"]
    assert np.any(moving_mean != 0)  # the buffers were trained: the test can fail
    loaded = _round_trip(clf, tmp_path)
    assert_array_equal(loaded.network_.buffers, clf.network_.buffers)
    assert_same_model(clf, loaded, X)


def test_file_from_before_the_batch_norm_update_count(tmp_path):
    # Files written before BatchNormalization's n_updates buffer existed hold
    # the other buffers only: they load with the count at its cap (warmed-up
    # running statistics, the plain update), predict as before, train on.
    X, y = _images(), np.arange(40) % 2
    clf = NNClassifier([Conv2D(3, 3), BatchNormalization(name="bn1"), Flatten(),
                        HiddenBlock(4, batch_norm=True, name="h")],
                       max_iter=2, random_state=0).fit(X, y)
    path = tmp_path / "model.skdl"
    save(clf, path)
    name = json.loads(_contents(path)[METADATA_MEMBER])["fitted"]["network"]["buffers"][
        "array"]
    # Each layer's buffers: moving_mean, moving_variance, then n_updates.
    counts = [2 * 3, 2 * 3 + 1 + 2 * 4]
    assert clf.network_.buffers.size == counts[1] + 1
    _replace_array(path, name, np.delete(clf.network_.buffers, counts))
    loaded = load(path)
    assert_same_value(loaded.predict_proba(X), clf.predict_proba(X), "predict_proba")
    for layer in ("bn1", "h/batch_norm"):
        weights, before = loaded.get_weights()[layer], clf.get_weights()[layer]
        assert_array_equal(weights["n_updates"], [2**24])
        assert_array_equal(weights["moving_mean"], before["moving_mean"])
        assert_array_equal(weights["moving_variance"], before["moving_variance"])
    loaded.partial_fit(X, y)
    assert_array_equal(loaded.get_weights()["bn1"]["n_updates"], [2**24])
    # Any other size is refused as before.
    _replace_array(path, name, clf.network_.buffers[:-3])
    with pytest.raises(ValueError, match="does not fit the network"):
        load(path)


def test_recurrent_model_with_masked_embedding(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randint(1, 20, size=(40, 7))
    X[::2, 4:] = 0  # padding
    y = np.arange(40) % 2
    clf = NNClassifier([Embedding(20, 4, mask_zero=True),
                        Bidirectional(LSTM(5)), Dense(4)],
                       max_iter=2, random_state=0).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert isinstance(loaded.layers[1].layer, LSTM)
    assert_same_model(clf, loaded, X)


@pytest.mark.parametrize("how", ["skdl", "pickle", "joblib"])
def test_transformer_model(how, tmp_path):
    import pickle

    import joblib

    rng = np.random.RandomState(0)
    X = rng.randint(1, 20, size=(40, 7))
    X[::2, 4:] = 0  # padding
    y = np.arange(40) % 3
    clf = NNClassifier([Embedding(20, 8, mask_zero=True), PositionalEmbedding(),
                        TransformerEncoderBlock(2, ff_units=8, dropout=0.1, name="enc1"),
                        PositionalEmbedding("sinusoidal"),
                        MultiHeadAttention(2, causal=True, use_bias=False),
                        LayerNormalization(), GlobalAvgPool1D()],
                       max_iter=2, random_state=0).fit(X, y)
    if how == "skdl":
        loaded = _round_trip(clf, tmp_path)
        assert isinstance(loaded.layers[2], TransformerEncoderBlock)
    elif how == "pickle":
        loaded = pickle.loads(pickle.dumps(clf))
    else:
        joblib.dump(clf, tmp_path / "model.joblib")
        loaded = joblib.load(tmp_path / "model.joblib")
    assert_same_model(clf, loaded, X)
    assert {"enc1/attention", "enc1/norm1", "enc1/linear1", "enc1/linear2",
            "enc1/norm2"} <= set(loaded.get_weights())
    # Training goes on as it would have (dropout draws included).
    assert_array_equal(loaded.partial_fit(X, y).predict_proba(X),
                       clf.partial_fit(X, y).predict_proba(X))


def test_causal_model_read_off_the_last_step(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randint(1, 9, size=(30, 6))
    X[::2, :3] = 0  # padded in front
    X[1::4, 4:] = 0  # padded at the end
    clf = NNClassifier([Embedding(9, 8, mask_zero=True),
                        MultiHeadAttention(2, causal=True), LastStep(name="last")],
                       max_iter=2, random_state=0).fit(X, X[:, -1] % 2)
    loaded = _round_trip(clf, tmp_path)
    assert isinstance(loaded.layers[2], LastStep) and loaded.layers[2].name == "last"
    assert_same_model(clf, loaded, X)


def _graph_regressor(**params):
    return NNRegressor(
        [Pathways([[Conv2D(3, 1, activation="relu", name="narrow")],
                   [Conv2D(3, 3, padding="same", name="wide")]], name="split"),
         Flatten(), MergeInput("meta", layers=[Dense(3, name="meta_dense")]),
         HiddenBlock(8, name="hidden")],
        input_shape={"image": (2, 4, 4), "meta": (3,)}, random_state=0, **params)


def test_pathways_and_side_inputs(tmp_path):
    rng = np.random.RandomState(0)
    image, meta = rng.rand(30, 2, 4, 4), rng.rand(30, 3)
    X = {"image": image, "meta": meta}
    reg = _graph_regressor(max_iter=2).fit(X, rng.rand(30))
    loaded = _round_trip(reg, tmp_path)
    assert loaded.input_shape_ == {"image": (2, 4, 4), "meta": (3,)}
    assert list(loaded.input_shape_) == ["image", "meta"]
    assert isinstance(loaded.layers[0].branches[1][0], Conv2D)
    assert_same_model(reg, loaded, np.hstack([image.reshape(30, -1), meta]))
    assert_array_equal(loaded.predict(X), reg.predict(X))


def test_specs_as_parameters(tmp_path):
    X, y = _images().reshape(40, -1), np.arange(40) % 2
    clf = NNClassifier(
        [Conv2D(2, 3, kernel_regularizer=L2(0.02)), Flatten(),
         Dense(4, kernel_regularizer=L2(0.01))],
        input_shape=(1, 6, 6), optimizer=Adam(beta1=0.8, clipnorm=1.0),
        lr_schedule=Cosine(min_rate=1e-4, epochs=5), augment=[RandomShift(1)],
        callbacks=[EarlyStopping(monitor="train_loss", patience=3)],
        max_iter=3, random_state=0).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert type(loaded.optimizer) is Adam and loaded.optimizer.beta1 == 0.8
    assert type(loaded.lr_schedule) is Cosine and loaded.lr_schedule.epochs == 5
    assert type(loaded.layers[2].kernel_regularizer) is L2
    assert loaded.layers[2].kernel_regularizer.l2 == 0.01
    assert type(loaded.augment[0]) is RandomShift
    assert type(loaded.callbacks[0]) is EarlyStopping
    assert loaded.optimizer is not clf.optimizer
    assert_same_model(clf, loaded, X)


def test_patience_annealer_options(tmp_path):
    X, y = _images().reshape(40, -1), np.arange(40) % 2
    annealer = PatienceAnnealer(patience=2, rollback="train", tol=0.01,
                                monitor="both", tol_mode="rel")
    clf = NNClassifier([Dense(4)], lr_schedule=annealer, early_stopping=True,
                       max_iter=3, random_state=0).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert type(loaded.lr_schedule) is PatienceAnnealer
    assert loaded.lr_schedule.get_params() == annealer.get_params()
    assert loaded.lr_schedule.rollback == "train" and loaded.lr_schedule.tol_mode == "rel"
    assert_same_model(clf, loaded, X)
    # The schedule starts afresh (skdl.save keeps no run) and it needs the
    # validation set that partial_fit does not hold out.
    with pytest.raises(ValueError, match="partial_fit holds out no validation set"):
        loaded.partial_fit(X, y)
    loaded.fit(X, y)
    assert loaded._training_state.schedule_run.epoch == 3


def test_epoch_schedule_with_int_keys_and_tuples(tmp_path):
    est = NNRegressor([Dense(3)], input_shape=(2, 3), lr_schedule=EpochSchedule(
        {1: 0.1, 5: 0.01}), optimizer=SGD(momentum=0.9))
    loaded = _round_trip(est, tmp_path)
    assert loaded.lr_schedule.schedule == {1: 0.1, 5: 0.01}
    assert loaded.input_shape == (2, 3)
    assert_same_value(est.get_params(deep=False), loaded.get_params(deep=False))


@pytest.mark.parametrize("fit", [False, True])
def test_embedding_weights_array(fit, tmp_path):
    weights = np.random.RandomState(0).randn(10, 3).astype(np.float32)
    clf = NNClassifier([Embedding(10, 3, weights=weights, trainable=False), Flatten()],
                       max_iter=2, random_state=0)
    X = np.random.RandomState(1).randint(0, 10, size=(30, 4))
    if fit:
        clf.fit(X, np.arange(30) % 2)
    loaded = _round_trip(clf, tmp_path)
    assert_same_value(weights, loaded.layers[0].weights)
    if fit:
        assert_same_model(clf, loaded, X)


def test_unfitted_estimator(tmp_path):
    est = NNClassifier([Dense(5), Dropout(0.1)], optimizer=Adam(beta2=0.99), max_iter=7,
                       class_weight={"a": 2.0}, random_state=3)
    path = tmp_path / "model.skdl"
    save(est, path)
    assert json.loads(_contents(path)[METADATA_MEMBER])["fitted"] is None
    loaded = load(path)
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    assert_same_value(est.get_params(deep=False), loaded.get_params(deep=False))


def test_random_state_instance_stays_the_fitted_generator(tmp_path):
    X, y = _data(), np.random.RandomState(0).rand(40)
    reg = NNRegressor([Dense(3)], max_iter=2, random_state=np.random.RandomState(5))
    reg.fit(X, y)
    assert reg._training_state.random_state is reg.random_state
    loaded = _round_trip(reg, tmp_path)
    assert loaded._training_state.random_state is loaded.random_state
    assert_same_model(reg, loaded, X)


@pytest.mark.parametrize("make", [
    lambda: NNClassifier([Conv2D(2, 3), BatchNormalization(), Flatten(), Dense(8),
                          Dropout(0.3)], input_shape=(1, 6, 6), augment=[RandomShift(1)],
                         optimizer=Adam(beta1=0.8), max_iter=2, random_state=0),
    lambda: NNClassifier([Dense(8), Dropout(0.5)], optimizer=SGD(momentum=0.9),
                         max_iter=2, random_state=1),
], ids=["cnn-adam-augment", "dense-momentum"])
def test_training_goes_on_as_before(make, tmp_path):
    X, y = _images().reshape(40, -1), np.arange(40) % 3
    clf = make().fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    for _ in range(2):
        clf.partial_fit(X, y)
        loaded.partial_fit(X, y)
    assert_same_model(clf, loaded, X)
    # The check can fail: a generator or an optimizer state not restored
    # gives other weights.
    for name, value in [("dropout_rng", np.random.default_rng(7)),
                        ("optimizer_state", None)]:
        other = load(tmp_path / "model.skdl")
        if value is None:
            value = {key: np.zeros_like(state)
                     for key, state in other._training_state.optimizer_state.items()}
        setattr(other._training_state, name, value)
        other.partial_fit(X, y)
        other.partial_fit(X, y)
        assert not np.array_equal(other.network_.params, clf.network_.params), name


def test_feature_names_from_a_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data(), columns=[f"f{i}" for i in range(6)])
    y = pd.Series(np.array(["no", "yes"], dtype=object)[np.arange(40) % 2])
    clf = NNClassifier([Dense(4)], max_iter=2, random_state=0).fit(X, y)
    assert clf.feature_names_in_.dtype == object
    loaded = _round_trip(clf, tmp_path)
    assert loaded.feature_names_in_.dtype == object
    assert all(type(name) is str for name in loaded.feature_names_in_)
    assert_same_model(clf, loaded, X)
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(X.rename(columns={"f0": "other"}))


# -- the file holds no pickle and names only allowed classes ---------------------------

def test_file_holds_only_npy_arrays_and_allowlisted_classes(model_file):
    _, path = model_file
    contents = _contents(path)
    metadata = json.loads(contents[METADATA_MEMBER])
    assert metadata["format"] == "skdl-model"
    assert metadata["format_version"] == SUPPORTED_FORMAT_VERSION
    assert set(contents) == {METADATA_MEMBER} | {f"arrays/{name}.npy"
                                                 for name in metadata["arrays"]}
    for name, entry in metadata["arrays"].items():
        data = contents[f"arrays/{name}.npy"]
        array = np.load(io.BytesIO(data), allow_pickle=False)
        assert array.dtype != object
        assert array.dtype.str == entry["dtype"] and list(array.shape) == entry["shape"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    named = _specs_named(metadata)
    assert "skdl._estimators.NNClassifier" in named and "skdl.layers.core.Dense" in named
    assert set(named) <= ALLOWED


def test_allowlist_is_skdl_specs_only():
    classes = _spec_classes()
    assert "skdl.layers.core.Dense" in classes and "skdl.optimizers.Adam" not in classes
    assert classes["skdl._optimizers.Adam"] is Adam
    for key, cls in classes.items():
        assert key == f"{cls.__module__}.{cls.__qualname__}"
        assert cls.__module__.startswith("skdl.") and issubclass(cls, BaseEstimator)
    assert not any(cls.__name__ in ("NNClassifier", "NNRegressor", "LayerSpec")
                   for cls in classes.values())


def test_same_model_gives_the_same_bytes(tmp_path, fitted_file):
    clf, data = fitted_file
    save(clf, tmp_path / "again.skdl")
    assert (tmp_path / "again.skdl").read_bytes() == data


# -- what save refuses ---------------------------------------------------------------------

class MyDense(Dense):
    pass


class MyClassifier(NNClassifier):
    pass


class FakeDense(Dense):
    """Claims to be skdl's Dense."""


FakeDense.__module__, FakeDense.__qualname__ = "skdl.layers.core", "Dense"


@pytest.mark.parametrize("est, match", [
    (NNClassifier(callbacks=[LambdaCallback(on_epoch_end=lambda *a: False)]),
     r"callbacks\[0\]\.on_epoch_end is a builtins\.function"),
    (NNClassifier([Dense(3), MyDense(2)]),
     r"layers\[1\] is a .*MyDense, .*not one of skdl's own classes"),
    (NNClassifier([FakeDense(2)]),
     r"layers\[0\] is a skdl\.layers\.core\.Dense, .*not one of skdl's own classes"),
    (NNClassifier([Embedding(4, 2, weights=np.empty((4, 2), dtype=object))]),
     r"layers\[0\]\.weights is an array of dtype object"),
    (NNClassifier([Embedding(4, 2, weights=np.ma.zeros((4, 2)))]),
     r"layers\[0\]\.weights is a numpy\.ma\..*MaskedArray"),
    (NNClassifier(optimizer=Adam(beta1=np.float16(0.9))), r"optimizer\.beta1"),
    (NNRegressor(input_shape=np.int64), r"input_shape is a builtins\.type"),
    (MyClassifier(), r"NNClassifier, an NNRegressor or a scikit-learn estimator "
     r"holding them .*, got .*MyClassifier: .*not a subclass"),
])
def test_save_refuses_what_the_format_cannot_hold(est, match, tmp_path):
    path = tmp_path / "model.skdl"
    path.write_bytes(b"the previous file")
    with pytest.raises(TypeError, match=match) as info:
        save(est, path)
    assert "pickle or joblib" in str(info.value)
    # Nothing written: the old file is intact and no partial file is left.
    assert path.read_bytes() == b"the previous file"
    assert os.listdir(tmp_path) == ["model.skdl"]


def test_save_refuses_a_path_of_the_wrong_type(fitted_file):
    with pytest.raises(TypeError, match="path must be a str or an os.PathLike"):
        save(fitted_file[0], 3)


# -- what load refuses -----------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"", np.random.RandomState(0).bytes(1000), b"PK\x03\x04 not really a zip"],
    ids=["empty", "random", "zip-magic"])
def test_not_a_model_file(content, tmp_path):
    path = tmp_path / "model.skdl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not an skdl model file or is damaged"):
        load(path)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file(keep, model_file):
    _, path = model_file
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match="is not an skdl model file or is damaged"):
        load(path)


def test_corrupted_member_fails_its_crc(model_file):
    _, path = model_file
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(METADATA_MEMBER)
    data = bytearray(path.read_bytes())
    # Flip a byte inside the metadata member's compressed data.
    start = info.header_offset + 30 + len(info.filename)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not an skdl model file"):
        load(path)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing.skdl")


def test_zip_without_metadata(tmp_path):
    path = tmp_path / "model.skdl"
    _write_zip(path, {"readme.txt": b"hello"})
    with pytest.raises(ValueError, match="not an skdl model file: it has no "
                       "skdl-model.json"):
        load(path)


def _set(*keys, value):
    """An edit of the metadata that sets metadata[k1][k2]... to value."""
    def edit(metadata):
        target = metadata
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def test_newer_format_version(model_file):
    _, path = model_file
    _rewrite(path, lambda m: m.update(format_version=99, skdl_version="9.9.9",
                                      new_things={}))
    with pytest.raises(ValueError, match=r"written by skdl '9\.9\.9' in model format 99; "
                       r"this skdl \(.*\) reads format 1 and older\. Upgrade skdl"):
        load(path)


@pytest.mark.parametrize("edit, match", [
    (_set("format", value="other"), "not an skdl model file"),
    (_set("format_version", value="1"), "not an skdl model file"),
    (lambda m: m.pop("fitted"), "must be an object with the keys"),
    (lambda m: m.update(extra=1), "must be an object with the keys"),
    (_set("estimator", "params", "max_iter", value=-1), "max_iter"),
    (_set("estimator", "params", "shuffle", value="yes"), "shuffle"),
    (_set("estimator", "params", "no_such_parameter", value=1),
     r"parameters it does not have: \['no_such_parameter'\]"),
    (_set("estimator", "params", "input_shape", value={"bogus": 1}), "invalid encoding"),
    (_set("estimator", "params", "input_shape", value={"tuple": 3}), "invalid encoding"),
    (_set("estimator", "params", "class_weight", value={"dict": [[[1], 2.0]]}),
     "invalid encoding"),
    (_set("estimator", "params", "learning_rate",
          value={"scalar": "0.1", "dtype": "float32"}), "invalid encoding"),
    (_set("estimator", "params", "learning_rate",
          value={"scalar": 0.1, "dtype": "object"}), "invalid encoding"),
    (_set("estimator", "params", "layers", 0, "params", value={}),
     "do not fit it: .*missing 1 required positional argument: 'units'"),
    (_set("estimator", "params", "layers", 0, "params", "units", value=-3), "units"),
    (_set("estimator", "params", "layers", 0, "params", "units", value=9),
     "does not fit the network"),
    (_set("fitted", "attributes", "n_outputs_", value="x"), "n_outputs_ must be an int"),
    (_set("fitted", "attributes", "n_outputs_", value=2),
     "3 classes of type 'multiclass' but n_outputs_=2"),
    (_set("fitted", "attributes", "input_shape_", value={"tuple": [5]}),
     "does not fit the network"),
    (_set("fitted", "attributes", "input_shape_", value={"tuple": [0]}),
     "input_shape_ must be a tuple of positive ints"),
    (_set("fitted", "attributes", "history_", value=[{"dict": [["epoch", "one"]]}]),
     "history_ must be a list of dicts"),
    (_set("fitted", "attributes", "_label_binarizer", "dict", 0, 1, value="weird"),
     "_label_binarizer must be the state of a LabelBinarizer"),
    (_set("fitted", "attributes", "_dropout_rng", "generator", "bit_generator",
          value="MT19937"), "_dropout_rng has an invalid encoding"),
    (_set("fitted", "attributes", "_random_state", value=None),
     "_random_state must be a numpy RandomState"),
    (_set("fitted", "attributes", "classes_", value={"array": "nowhere"}),
     "refers to the array 'nowhere', which the file does not declare"),
    (lambda m: m["fitted"]["attributes"].pop("_dropout_rng"), r"lacks \['_dropout_rng'\]"),
    (_set("fitted", "attributes", "weights_", value=1), r"unknown attributes \['weights_'\]"),
    (_set("fitted", "object_arrays", value=["n_outputs_"]), "invalid encoding"),
    (_set("arrays", "classes_", "dtype", value="|O"), "may not hold"),
    (_set("arrays", "classes_", "shape", value=[4]), "declares int64 of shape"),
    (_set("arrays", "../../etc/passwd", value={}), "declares an array named"),
])
def test_malformed_or_inconsistent_metadata(edit, match, model_file):
    _, path = model_file
    _rewrite(path, edit)
    with pytest.raises(ValueError, match=match):
        load(path)


def test_invalid_hyper_parameters_raise_invalid_parameter_error(model_file):
    _, path = model_file
    _rewrite(path, _set("estimator", "params", "dtype", value="float16"))
    with pytest.raises(InvalidParameterError, match="dtype"):
        load(path)


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen",
                                  "antigravity.geohash", "skdl_nowhere.Thing",
                                  "sklearn.preprocessing.StandardScaler",
                                  "skdl._estimators.BaseNN", "skdl.layers._base.LayerSpec"])
@pytest.mark.parametrize("where", ["estimator", "layer", "optimizer"])
def test_classes_outside_the_allowlist_are_refused_without_import(name, where,
                                                                   model_file):
    _, path = model_file

    def edit(metadata):
        estimator = metadata["estimator"]
        if where == "estimator":
            estimator["spec"] = name
        elif where == "layer":
            estimator["params"]["layers"][0]["spec"] = name
        else:
            estimator["params"]["optimizer"] = {"spec": name, "params": {}}

    _rewrite(path, edit)
    before = set(sys.modules)
    with pytest.raises(ValueError, match=f"names the class '{name}'.*which is not "
                       "allowed"):
        load(path)
    assert set(sys.modules) == before


def test_tampered_array_fails_its_checksum(model_file):
    clf, path = model_file
    name = _params_array_name(path)
    _rewrite(path, members={f"arrays/{name}.npy": _npy(clf.network_.params + 1)})
    with pytest.raises(ValueError, match=f"array '{name}' does not match its sha256"):
        load(path)


@pytest.mark.parametrize("change, match", [
    (lambda p: p[:-1], "does not fit the network"),
    (lambda p: p.astype(np.float64), "does not fit the network"),
    (lambda p: p.reshape(1, -1), "does not fit the network"),
    (lambda p: np.full_like(p, np.nan), "contains NaN or infinity"),
], ids=["shorter", "float64", "2-D", "nan"])
def test_weights_that_do_not_fit_the_network(change, match, model_file):
    clf, path = model_file
    _replace_array(path, _params_array_name(path), change(clf.network_.params))
    with pytest.raises(ValueError, match=match):
        load(path)


def test_negative_moving_variance_is_refused(tmp_path):
    clf = NNClassifier([BatchNormalization()], max_iter=1, random_state=0)
    clf.fit(_data(), np.arange(40) % 2)
    path = tmp_path / "model.skdl"
    save(clf, path)
    metadata = json.loads(_contents(path)[METADATA_MEMBER])
    buffers = -np.ones_like(clf.network_.buffers)
    _replace_array(path, metadata["fitted"]["network"]["buffers"]["array"], buffers)
    with pytest.raises(ValueError, match="moving_variance must be non-negative"):
        load(path)


def test_optimizer_state_must_fit_the_parameters(model_file):
    clf, path = model_file
    _replace_array(path, "_optimizer_state.m", clf._training_state.optimizer_state["m"][:3])
    with pytest.raises(ValueError, match=r"_optimizer_state\['m'\].*does not fit"):
        load(path)


def test_object_array_member_is_refused(model_file):
    # A member holding a pickled object array, declared as a unicode array.
    _, path = model_file
    buffer = io.BytesIO()
    np.save(buffer, np.array(["a", "b", "c"], dtype=object), allow_pickle=True)
    data = buffer.getvalue()

    def edit(metadata):
        metadata["arrays"]["classes_"] = {"dtype": "<U1", "shape": [3],
                                         "sha256": hashlib.sha256(data).hexdigest()}

    _rewrite(path, edit, members={"arrays/classes_.npy": data})
    with pytest.raises(ValueError, match="not a valid .npy array without pickle"):
        load(path)


def test_unexpected_missing_and_unused_members(model_file):
    _, path = model_file
    original = path.read_bytes()
    _rewrite(path, members={"arrays/extra.npy": _npy(np.zeros(2))})
    with pytest.raises(ValueError, match=r"unexpected members \['arrays/extra.npy'\]"):
        load(path)
    path.write_bytes(original)
    _rewrite(path, drop=["arrays/classes_.npy"])
    with pytest.raises(ValueError, match=r"lacks the arrays \['classes_'\]"):
        load(path)
    path.write_bytes(original)
    _replace_array(path, "spare", np.zeros(2))
    with pytest.raises(ValueError, match=r"arrays nothing refers to: \['spare'\]"):
        load(path)


def test_member_larger_than_its_declared_array_is_refused(model_file):
    _, path = model_file
    # Valid .npy bytes followed by 1 MB of zeros: deflates to almost nothing.
    data = _contents(path)["arrays/classes_.npy"] + bytes(2**20)
    _rewrite(path, members={"arrays/classes_.npy": data})
    with pytest.raises(ValueError, match="more than the .* bytes its declared content "
                       "needs"):
        load(path)


def test_metadata_size_is_capped(model_file, monkeypatch):
    _, path = model_file
    monkeypatch.setattr(_persistence, "MAX_METADATA_BYTES", 1000)
    with pytest.raises(ValueError, match="skdl-model.json' holds more than the 1000 bytes"):
        load(path)


@pytest.mark.parametrize("depth", [600, 5000])
def test_deeply_nested_values_are_refused(depth, model_file):
    _, path = model_file
    _rewrite(path, _set("estimator", "params", "layers", value="NESTED"))
    contents = _contents(path)
    contents[METADATA_MEMBER] = contents[METADATA_MEMBER].replace(
        b'"NESTED"', b"[" * depth + b"]" * depth)
    _write_zip(path, contents)
    with pytest.raises(ValueError, match="nested too deeply|not valid JSON"):
        load(path)


def test_duplicate_json_keys_are_refused(model_file):
    _, path = model_file
    contents = _contents(path)
    text = contents[METADATA_MEMBER].decode()
    contents[METADATA_MEMBER] = text.replace('"max_iter": 3', '"max_iter": 3, '
                                             '"max_iter": 4').encode()
    assert contents[METADATA_MEMBER].decode() != text
    _write_zip(path, contents)
    with pytest.raises(ValueError, match="'max_iter' appears twice"):
        load(path)


def test_huge_declared_layers_cost_no_memory_before_refusal(model_file):
    import resource

    _, path = model_file
    _rewrite(path, _set("estimator", "params", "layers", 0, "params", "units",
                        value=300_000_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="does not fit the network"):
        load(path)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Initialized, the declared weights would take about 1.2 GB (twice with
    # the gradients); ru_maxrss is in KiB on Linux.
    assert after - before < 200_000


def test_skops_dump_of_a_bare_estimator_uses_skdls_node(tmp_path):
    """skops.io on an skdl estimator, once skdl registered its node (as
    save and load of a pipeline do): skdl's format inside, nothing to trust."""
    sio = pytest.importorskip("skops.io")
    from skdl import _skops

    X, y = _data(), np.arange(40) % 3
    clf = NNClassifier([Conv1D(3, 3, padding="same"), BatchNormalization(), Flatten()],
                       input_shape=(1, -1), max_iter=2, random_state=0).fit(X, y)
    path = tmp_path / "model.skops"
    sio.dump(clf, path)
    assert sio.get_untrusted_types(file=path) == []
    schema = json.loads(_contents(path)["schema.json"])
    assert schema["__loader__"] == _skops.LOADER
    assert_same_model(clf, sio.load(path, trusted=_skops.trusted_types()), X)
    # skdl.load reads the skops files skdl.save wrote, with their checksums.
    with pytest.raises(ValueError, match="is a skops file that skdl.save did not write "
                       r"\(it has no skdl-checksums.json\); load it with skops.io.load"):
        load(path)


# -- scikit-learn estimators holding skdl's (Pipeline...): skops with skdl's node ------

def _pipelines():
    """Fitted scikit-learn containers of skdl estimators and their inputs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    X = _images().reshape(40, -1)
    y = np.arange(40) % 3
    cnn = make_pipeline(StandardScaler(), NNClassifier(
        [Conv2D(2, 3, padding="same"), MaxPool2D(2), Flatten(), Dense(4)],
        input_shape=(1, 6, 6), max_iter=2, random_state=0)).fit(X, y)
    columns = make_pipeline(
        ColumnTransformer([("std", StandardScaler(), [0, 1, 2]),
                           ("minmax", MinMaxScaler(), slice(3, 36))]),
        NNRegressor([Dense(5)], max_iter=2, random_state=0)).fit(X, X[:, :2] + 1)
    union = make_pipeline(
        FeatureUnion([("std", StandardScaler()), ("pca", PCA(3, random_state=0))]),
        NNClassifier([Dense(5)], optimizer=Adam(), max_iter=2, random_state=0)).fit(X, y)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), NNClassifier([Dense(4)], max_iter=2,
                                                     random_state=0)),
        {"nnclassifier__l2": [0.0, 1e-2]}, cv=2).fit(X, y)
    return {"cnn": cnn, "column_transformer": columns, "feature_union": union,
            "grid_search_best": search.best_estimator_}, X


@pytest.fixture(scope="module")
def pipelines():
    pytest.importorskip("skops.io")
    return _pipelines()


@pytest.fixture
def pipeline_file(pipelines, tmp_path):
    models, X = pipelines
    path = tmp_path / "pipeline.skops"
    save(models["cnn"], path)
    return models["cnn"], X, path


@pytest.mark.parametrize("name", ["cnn", "column_transformer", "feature_union",
                                  "grid_search_best"])
def test_pipelines_round_trip_bit_identically(name, pipelines, tmp_path):
    sio = pytest.importorskip("skops.io")
    models, X = pipelines
    model = models[name]
    path = tmp_path / "pipeline.skops"
    save(model, path)
    # skops trusts scikit-learn's estimators and skdl's two by default: the
    # file asks the user to trust nothing.
    assert sio.get_untrusted_types(file=path) == []
    loaded = load(path)
    assert type(loaded) is type(model)
    method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
    expected = getattr(model, method)(X)
    got = getattr(loaded, method)(X)
    assert got.dtype == expected.dtype
    assert_array_equal(got, expected)
    # The skdl estimator went through skdl's own format: the same fitted state.
    assert_same_model(model[-1], loaded[-1], model[:-1].transform(X))
    # skops' own load reads the file too, with no trusted types given.
    assert_array_equal(getattr(sio.load(path), method)(X), expected)


def test_skdl_estimators_are_one_skdl_model_member(pipeline_file):
    _, _, path = pipeline_file
    contents = _contents(path)
    models = [name for name in contents if name.endswith(".skdl")]
    assert len(models) == 1
    # The member is a model file skdl.load reads on its own.
    model_path = path.parent / "inner.skdl"
    model_path.write_bytes(contents[models[0]])
    assert type(load(model_path)) is NNClassifier
    assert not any(b"skdl.layers" in data for name, data in contents.items()
                   if name == "schema.json")


def _schema_edit(path, edit, members=None):
    contents = _contents(path)
    schema = json.loads(contents["schema.json"])
    edit(schema)
    contents["schema.json"] = json.dumps(schema).encode()
    contents.update(members or {})
    _write_zip(path, contents)


def _skdl_node(schema):
    """The entry of the skdl estimator in a pipeline's skops schema."""
    steps = schema["content"]["content"]["steps"]["content"]
    return steps[-1]["content"][1]


def _edited_scaler_mean(path):
    """The file's members with the StandardScaler's mean_ changed (the array
    skops stores for it, a valid .npy of the same shape)."""
    contents = _contents(path)
    schema = json.loads(contents["schema.json"])
    found = []

    def visit(node):
        if isinstance(node, dict):
            if node.get("__class__") == "StandardScaler":
                found.append(node["content"]["content"]["mean_"]["file"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    (member,) = found
    mean = np.load(io.BytesIO(contents[member]))
    return dict(contents, **{member: _npy(mean + 1.0)})


def test_edited_scikit_learn_part_fails_the_files_checksums(pipeline_file, tmp_path):
    # skops keeps no checksums: without skdl's, the edited scaler would load.
    sio = pytest.importorskip("skops.io")
    model, X, path = pipeline_file
    _write_zip(path, _edited_scaler_mean(path), seal=False)
    edited = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert_array_equal(edited[0].mean_, model[0].mean_ + 1.0)
    with pytest.raises(ValueError, match="does not match its checksums: the file was "
                       "modified or damaged"):
        load(path)


@pytest.mark.parametrize("change", ["drop", "add"])
def test_dropped_or_added_member_fails_the_files_checksums(pipeline_file, change):
    _, _, path = pipeline_file
    contents = _contents(path)
    if change == "drop":
        del contents[next(name for name in contents if name.endswith(".npy"))]
    else:
        contents["extra.npy"] = _npy(np.zeros(3))
    _write_zip(path, contents, seal=False)
    with pytest.raises(ValueError, match="does not match its checksums"):
        load(path)


def test_file_without_its_checksums_is_refused(pipeline_file):
    _, _, path = pipeline_file
    contents = _contents(path)
    del contents[PIPELINE_CHECKSUMS]
    _write_zip(path, contents)
    with pytest.raises(ValueError, match="skdl.save did not write"):
        load(path)


def test_tampered_skdl_member_fails_its_checksum(pipeline_file):
    _, _, path = pipeline_file
    name = next(name for name in _contents(path) if name.endswith(".skdl"))
    data = bytearray(_contents(path)[name])
    data[len(data) // 2] ^= 1
    _schema_edit(path, lambda schema: None, {name: bytes(data)})
    with pytest.raises(ValueError, match=f"skdl model '{name}' does not match its "
                       "sha256 checksum; the file was modified or damaged"):
        load(path)


def test_swapped_skdl_member_must_be_the_class_the_schema_names(pipeline_file, tmp_path):
    _, X, path = pipeline_file
    other = tmp_path / "other.skdl"
    save(NNRegressor([Dense(2)], max_iter=1, random_state=0).fit(X, X[:, :2]), other)
    data = other.read_bytes()
    name = next(name for name in _contents(path) if name.endswith(".skdl"))

    def edit(schema):
        _skdl_node(schema)["sha256"] = hashlib.sha256(data).hexdigest()
    _schema_edit(path, edit, {name: data})
    with pytest.raises(ValueError, match="holds an NNRegressor, but the schema says "
                       "NNClassifier"):
        load(path)


def test_tampered_array_inside_the_skdl_member_is_refused(pipeline_file):
    """A modified weight with the outer checksum recomputed: skdl's own
    checksums refuse it."""
    _, _, path = pipeline_file
    name = next(name for name in _contents(path) if name.endswith(".skdl"))
    inner = path.parent / "inner.skdl"
    inner.write_bytes(_contents(path)[name])
    contents = _contents(inner)
    weights = next(member for member in contents if member.startswith("arrays/network"))
    contents[weights] = contents[weights][:-4] + b"\x00\x00\x80\x7f"
    _write_zip(inner, contents)
    data = inner.read_bytes()

    def edit(schema):
        _skdl_node(schema)["sha256"] = hashlib.sha256(data).hexdigest()
    _schema_edit(path, edit, {name: data})
    with pytest.raises(ValueError, match="does not match its sha256 checksum; the file "
                       "was modified or damaged"):
        load(path)


@pytest.mark.parametrize("module, cls, loader", [
    ("os", "system", "SkdlModelNode"),
    ("builtins", "eval", "ObjectNode"),
    ("pickle", "loads", "ObjectNode"),
    ("subprocess", "Popen", "ObjectNode"),
])
def test_foreign_types_injected_are_refused_before_any_code_runs(
        module, cls, loader, pipeline_file, monkeypatch):
    import skops.io.exceptions

    _, _, path = pipeline_file

    def edit(schema):
        node = _skdl_node(schema)
        if loader == "ObjectNode":
            node.clear()
            node.update({"__class__": cls, "__module__": module,
                         "__loader__": "ObjectNode"})
        else:
            node.update({"__class__": cls, "__module__": module})
    _schema_edit(path, edit)
    modules = set(sys.modules)
    monkeypatch.setattr(os, "system", lambda *a: pytest.fail("os.system was called"))
    with pytest.raises(skops.io.exceptions.UntrustedTypesFoundException,
                       match=f"{module}.{cls}"):
        load(path)
    assert set(sys.modules) == modules  # nothing imported by a name from the file


@pytest.mark.parametrize("field, value, match", [
    ("file", "../../etc/passwd", "names the member '../../etc/passwd'"),
    ("file", "123.skdl", "lacks the skdl model '123.skdl'"),
    ("sha256", "not hex", "invalid sha256 'not hex'"),
])
def test_malformed_skdl_node_is_refused(field, value, match, pipeline_file):
    _, _, path = pipeline_file
    _schema_edit(path, lambda schema: _skdl_node(schema).update({field: value}))
    with pytest.raises(ValueError, match=re.escape(match)):
        load(path)


@pytest.mark.parametrize("make, match", [
    (lambda: NNClassifier(callbacks=[LambdaCallback(on_epoch_end=lambda *a: False)]),
     r"callbacks\[0\]\.on_epoch_end is a builtins\.function"),
    (lambda: NNClassifier([type("MyDense", (Dense,), {})(2)]),
     r"layers\[0\] is a .*MyDense, .*not one of skdl's own classes"),
])
def test_pipeline_with_what_the_format_cannot_hold_is_refused(make, match, tmp_path):
    pytest.importorskip("skops.io")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    path = tmp_path / "pipeline.skops"
    path.write_bytes(b"the previous file")
    with pytest.raises(TypeError, match=match):
        save(make_pipeline(StandardScaler(), make()), path)
    assert path.read_bytes() == b"the previous file"
    assert os.listdir(tmp_path) == ["pipeline.skops"]


def test_save_refuses_what_is_not_an_estimator(tmp_path):
    with pytest.raises(TypeError, match="save takes an NNClassifier, an NNRegressor or "
                       "a scikit-learn estimator holding them .*, got builtins.dict"):
        save({"model": NNClassifier()}, tmp_path / "model.skdl")
    assert os.listdir(tmp_path) == []


def test_pipelines_need_skops(monkeypatch, tmp_path):
    from sklearn.pipeline import make_pipeline

    monkeypatch.setitem(sys.modules, "skops.io", None)  # import skops.io fails
    with pytest.raises(ImportError, match="skdl needs skops to save a Pipeline .*"
                       "pip install skops"):
        save(make_pipeline(NNClassifier()), tmp_path / "pipeline.skops")


def test_skdl_node_builds_only_skdls_two_classes_even_if_told_to_trust_more(
        pipeline_file):
    """A user passing a foreign type as trusted to skops still gets no
    import of it from skdl's node: the class comes from skdl's own table."""
    sio = pytest.importorskip("skops.io")
    _, _, path = pipeline_file
    _schema_edit(path, lambda schema: _skdl_node(schema).update(
        {"__class__": "system", "__module__": "os"}))
    modules = set(sys.modules)
    with pytest.raises(ValueError, match="names os.system for an skdl model; only "
                       "NNClassifier and NNRegressor are allowed"):
        sio.load(path, trusted=["os.system"])
    assert set(sys.modules) == modules
