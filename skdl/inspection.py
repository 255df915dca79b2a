"""Looking inside fitted networks: hidden activations as features, and the
mistakes of a classifier (pydnn's confusion matrix with the list of errors)."""
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.metrics import confusion_matrix
from sklearn.utils import Bunch
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d


class LayerActivations(TransformerMixin, BaseEstimator):
    """Transformer whose output is a hidden layer of a network trained on X, y.

    ``fit`` trains a clone of ``estimator``; ``transform`` returns the
    outputs of ``layer`` (see ``NNClassifier.activations``), flattened per
    sample, so the network becomes a feature extractor inside a
    ``Pipeline``. To use an already fitted network without training it
    again, wrap it in ``sklearn.frozen.FrozenEstimator``.

    Parameters
    ----------
    estimator : NNClassifier or NNRegressor
    layer : str or None, default=None
        Name of the layer; None is the last hidden layer.
    flatten : bool, default=True
        Return ``(n_samples, n_values)``; False keeps the layer's output
        shape ``(n_samples, *shape)``.

    Attributes
    ----------
    estimator_ : NNClassifier or NNRegressor
        The fitted network.
    n_features_in_ : int
    n_features_out_ : int
        Values per sample of the output (with ``flatten``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skdl import Dense, NNClassifier
    >>> from skdl.inspection import LayerActivations
    >>> X, y = load_digits(return_X_y=True)
    >>> net = NNClassifier([Dense(16, activation='relu', name='features')],
    ...                    max_iter=5, random_state=0)
    >>> pipe = make_pipeline(LayerActivations(net, layer='features'),
    ...                      LogisticRegression(max_iter=500)).fit(X / 16, y)
    >>> pipe[0].transform(X[:2] / 16).shape
    (2, 16)
    """

    def __init__(self, estimator, layer=None, flatten=True):
        self.estimator = estimator
        self.layer = layer
        self.flatten = flatten

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator`` on X and y.

        Parameters
        ----------
        X : array-like, as the estimator takes it
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        **fit_params : dict
            Passed to the estimator's ``fit`` (e.g. ``sample_weight``).

        Returns
        -------
        self
        """
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        # Fails here, not at transform time, when the layer does not exist.
        name = (self.estimator_._last_hidden_layer() if self.layer is None
                else self.layer)
        shape = self.estimator_.network_.find_layer(name).output_shape
        self.n_features_out_ = int(np.prod(shape))
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def transform(self, X):
        """The layer's outputs for X.

        Parameters
        ----------
        X : array-like, as the estimator takes it

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_) or (n_samples, *shape)
        """
        check_is_fitted(self)
        A = self.estimator_.activations(X, layer=self.layer)
        return A.reshape(A.shape[0], -1) if self.flatten else A

    def get_feature_names_out(self, input_features=None):
        """Names ``<layer>0``, ``<layer>1``... of the output values.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored: the names depend on the layer only (accepted for
            scikit-learn's transformer API).

        Returns
        -------
        ndarray of str of shape (n_features_out_,)
        """
        check_is_fitted(self)
        name = (self.estimator_._last_hidden_layer() if self.layer is None
                else self.layer).replace("/", "_")
        return np.asarray([f"{name}{i}" for i in range(self.n_features_out_)],
                          dtype=object)


def mistakes(classifier, X, y, normalize=None):
    """The confusion matrix of a fitted classifier and the samples it gets wrong.

    pydnn printed the confusion matrix with the list of mistakes after
    training; this returns both, for a look at the hard samples.

    Parameters
    ----------
    classifier : fitted classifier
        Any scikit-learn classifier with ``predict`` and ``classes_``.
    X : array-like, as the classifier takes it
    y : array-like of shape (n_samples,)
        The true labels (single-label targets only).
    normalize : {'true', 'pred', 'all'} or None, default=None
        Passed to :func:`sklearn.metrics.confusion_matrix`.

    Returns
    -------
    result : sklearn.utils.Bunch
        confusion_matrix : ndarray of shape (n_classes, n_classes)
            Rows are true labels and columns predicted ones, in the order of
            ``labels`` (scikit-learn's ``confusion_matrix``).
        labels : ndarray of shape (n_classes,)
            The classifier's ``classes_``.
        indices : ndarray of int of shape (n_mistakes,)
            Positions in X of the misclassified samples, in order.
        actual, predicted : ndarrays of shape (n_mistakes,)
            Their true and predicted labels.
        accuracy : float
            Fraction of samples classified correctly.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdl import NNClassifier
    >>> from skdl.inspection import mistakes
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NNClassifier(max_iter=3, random_state=0).fit(X / 16, y)
    >>> result = mistakes(clf, X / 16, y)
    >>> result.confusion_matrix.shape
    (10, 10)
    """
    check_is_fitted(classifier, "classes_")
    y = np.asarray(y)
    kind = type_of_target(y)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"mistakes takes single-label targets (binary or multiclass), got "
            f"{kind!r}; for multilabel targets compare the columns of predict "
            "one by one."
        )
    y = column_or_1d(y)
    predicted = np.asarray(classifier.predict(X))
    if predicted.shape != y.shape:
        raise ValueError(f"y has shape {y.shape} but the classifier predicts "
                         f"{predicted.shape} for X.")
    labels = classifier.classes_
    wrong = np.flatnonzero(predicted != y)
    return Bunch(
        confusion_matrix=confusion_matrix(y, predicted, labels=labels,
                                          normalize=normalize),
        labels=labels,
        indices=wrong,
        actual=y[wrong],
        predicted=predicted[wrong],
        accuracy=float(1.0 - wrong.size / y.size) if y.size else float("nan"),
    )
