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
from _fresh import in_fresh_python  # noqa: E402
from skdl import (  # noqa: E402
    LSTM,
    Activation,
    AvgPool1D,
    AvgPool2D,
    BatchNormalization,
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
    MaxPool1D,
    MaxPool2D,
    MergeInput,
    NNClassifier,
    NNRegressor,
    PReLU,
    Reshape,
)
from skdl import _ops  # noqa: E402

NO_ZIPMAP = {NNClassifier: {"zipmap": False}}


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs suffice
        return model.fit(X, y)


def _run(model, X, options=None):
    """onnxruntime's outputs of ``model`` converted with skl2onnx.to_onnx."""
    onx = skl2onnx.to_onnx(model, X[:1], options=options)
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


@pytest.mark.parametrize("layers, kind, name", [
    ([Reshape((8, 8)), LSTM(4)], "LSTM", "lstm"),
    ([Reshape((64,)), Embedding(17, 4, name="words"), Flatten()], "Embedding", "words"),
])
def test_unsupported_layer_is_refused_by_name(digits, layers, kind, name):
    X, y = digits
    model = _fit(NNClassifier(layers=layers, max_iter=1, random_state=0),
                 np.round(X[:60] * 16) if kind == "Embedding" else X[:60], y[:60])
    with pytest.raises(ValueError, match=(
            rf"skdl's ONNX export does not convert {kind} layers yet \('{name}'\)")):
        skl2onnx.to_onnx(model, X[:1])


def test_side_inputs_and_multilabel_are_refused(digits):
    X, y = digits
    side = NNClassifier(layers=[Flatten(), MergeInput("size"), Dense(4)],
                        input_shape={"main": (64,), "size": (2,)}, max_iter=1)
    _fit(side, {"main": X[:60], "size": X[:60, :2]}, y[:60])
    with pytest.raises(ValueError, match="does not convert models with side inputs"):
        skl2onnx.to_onnx(side, np.c_[X[:1], X[:1, :2]])
    multilabel = _fit(NNClassifier(layers=[Dense(4)], max_iter=1),
                      X[:60], np.c_[y[:60] > 4, y[:60] % 2 == 0])
    with pytest.raises(ValueError, match="does not convert multilabel classifiers"):
        skl2onnx.to_onnx(multilabel, X[:1])


def test_importing_skdl_does_not_import_onnx():
    code = "import sys, skdl; print('skl2onnx' in sys.modules or 'onnx' in sys.modules)"
    assert in_fresh_python(code).strip() == "False"
