"""Hidden activations as a Pipeline step, and the mistakes of a classifier."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from skdl import Conv2D, ConvBlock2D, Dense, Flatten, NNClassifier
from skdl.inspection import LayerActivations, mistakes

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_layer_activations_in_a_pipeline(digits):
    X, y = digits
    net = NNClassifier([ConvBlock2D(4, name="block"), Flatten(),
                        Dense(12, activation="relu", name="features")],
                       input_shape=(1, 8, 8), learning_rate=0.01, max_iter=10,
                       random_state=0)
    pipe = make_pipeline(LayerActivations(net, layer="features"),
                         LogisticRegression(max_iter=1000)).fit(X, y)
    step = pipe[0]
    assert step.n_features_out_ == 12 and step.n_features_in_ == 64
    assert_array_equal(step.transform(X), step.estimator_.activations(X, "features"))
    assert pipe.score(X, y) > 0.9
    # The user's estimator is not fitted: the step trains a clone.
    assert not hasattr(net, "network_")
    assert list(step.get_feature_names_out()[:2]) == ["features0", "features1"]
    # Nested block parts, unflattened.
    unflat = LayerActivations(net, layer="block/pool", flatten=False).fit(X, y)
    pooled = unflat.transform(X[:3])
    assert pooled.shape == (3, 4, 4, 4)  # 4 channels of 8x8 pooled to 4x4
    assert_array_equal(pooled, unflat.estimator_.activations(X[:3], "block/pool"))
    assert unflat.get_feature_names_out()[0] == "block_pool0"


def test_layer_activations_of_a_frozen_fitted_network(digits):
    X, y = digits
    net = NNClassifier([Dense(6, activation="tanh", name="h")], max_iter=2,
                       random_state=0).fit(X, y)
    step = LayerActivations(FrozenEstimator(net), layer="h").fit(X, y)
    assert_array_equal(step.transform(X), net.activations(X, "h"))


def test_layer_activations_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match="No layer is named 'nope'"):
        LayerActivations(NNClassifier([Dense(4)], max_iter=1), layer="nope").fit(X, y)
    with pytest.raises(Exception, match="not fitted"):
        LayerActivations(NNClassifier()).transform(X)


def test_mistakes_lists_the_misclassified_samples(digits):
    X, y = digits
    clf = NNClassifier([Conv2D(4, 3), Flatten()], input_shape=(1, 8, 8), max_iter=2,
                       random_state=0).fit(X, y)
    result = mistakes(clf, X, y)
    predicted = clf.predict(X)
    assert_array_equal(result.confusion_matrix, confusion_matrix(y, predicted))
    assert_array_equal(result.indices, np.flatnonzero(predicted != y))
    assert_array_equal(result.actual, y[result.indices])
    assert_array_equal(result.predicted, predicted[result.indices])
    assert result.indices.size > 0  # two epochs leave mistakes to list
    assert result.accuracy == pytest.approx(clf.score(X, y))
    # The off-diagonal of the matrix counts exactly the listed mistakes.
    cm = result.confusion_matrix
    assert cm.sum() - np.trace(cm) == result.indices.size
    assert_allclose(mistakes(clf, X, y, normalize="true").confusion_matrix.sum(axis=1), 1)


def test_mistakes_with_string_labels_and_any_classifier(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])[y]
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, names)
    result = mistakes(tree, X, names)
    predicted = tree.predict(X)
    assert list(result.labels) == sorted(set(names))
    assert_array_equal(result.indices, np.flatnonzero(predicted != names))
    assert_array_equal(result.actual, names[result.indices])
    assert_array_equal(result.predicted, predicted[result.indices])
    assert_array_equal(result.confusion_matrix,
                       confusion_matrix(names, predicted, labels=result.labels))


def test_mistakes_rejects_multilabel_targets(digits):
    X, y = digits
    Y = np.c_[y % 2, y > 4].astype(int)
    clf = NNClassifier(max_iter=1).fit(X, Y)
    with pytest.raises(ValueError, match="single-label targets"):
        mistakes(clf, X, Y)
