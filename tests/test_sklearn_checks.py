"""scikit-learn's own estimator checks, with nothing expected to fail (one
pending integration, below)."""
import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdl import (
    GRU,
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    Dense,
    Flatten,
    GlobalMaxPool1D,
    MaxPool1D,
    MaxPool2D,
    NNClassifier,
    NNRegressor,
    PReLU,
)
from skdl._network import Network

ESTIMATORS = [
    NNClassifier(),
    NNRegressor(),
    # Deeper, other activations, SGD with Nesterov momentum, float64.
    NNClassifier(layers=[Dense(32, activation="tanh"), Dense(16, activation="elu")],
                 optimizer="nesterov", learning_rate=0.01, dtype="float64"),
    NNRegressor(layers=[Dense(32, activation="softplus"), Dense(8, activation="leaky_relu")],
                loss="huber", optimizer="momentum", learning_rate=0.01),
    # Convolutional: flat features read as a one-channel signal or image.
    NNClassifier(layers=[Conv1D(4, 3, padding="same"), Flatten(), Dense(8)],
                 input_shape=(1, -1)),
    NNRegressor(layers=[Conv1D(6, 3, padding="same", activation="relu"),
                        MaxPool1D(2, strides=1, padding="same"), Flatten()],
                input_shape=(1, -1)),
    NNClassifier(layers=[Conv2D(4, (2, 3), padding="same", activation="tanh"),
                         MaxPool2D(2, padding="same"), Flatten()],
                 input_shape=(1, -1, 1)),
    # Recurrent: flat features read as a sequence of one feature per step.
    NNRegressor(layers=[GRU(4)], input_shape=(-1, 1), learning_rate=0.01),
    NNClassifier(layers=[Bidirectional(LSTM(3, return_sequences=True)),
                         GlobalMaxPool1D(data_format="channels_last")],
                 input_shape=(-1, 1)),
    # Batch statistics and learned slopes, on dense features and on channels.
    NNClassifier(layers=[Dense(16), BatchNormalization(), PReLU()]),
    NNRegressor(layers=[Conv1D(4, 3, padding="same"), BatchNormalization(momentum=0.9),
                        PReLU(), Flatten()], input_shape=(1, -1)),
]


def _forward_gets_sample_weights():
    """Whether the estimator's training loop hands each batch's sample weights
    to ``Network.forward``, found by watching one small fit."""
    seen = []
    original = Network.forward

    def spy(self, X, training=False, rng=None, sample_weight=None):
        if training:
            seen.append(sample_weight is not None)
        return original(self, X, training=training, rng=rng, sample_weight=sample_weight)

    Network.forward = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            NNRegressor(layers=[], max_iter=1).fit(np.ones((4, 2)), np.arange(4.0),
                                                   sample_weight=[1.0, 2.0, 1.0, 2.0])
    finally:
        Network.forward = original
    return bool(seen) and all(seen)


# Batch normalization weighs its batch statistics by the sample weights it is
# given (so weight k equals k copies, exactly). Until the estimator passes them
# to Network.forward (a one-line change in BaseNN._run_epochs, part of the
# training-loop work of issue 5), the statistics weigh every sample equally
# and fitting with integer weights differs from fitting repeated samples.
# Once it does, this list is empty and the check runs as any other.
_BATCH_WEIGHTS_PENDING = None if _forward_gets_sample_weights() else {
    "check_sample_weight_equivalence_on_dense_data":
        "the estimator does not pass batch sample weights to Network.forward yet",
}


def _expected_failures(estimator):
    if _BATCH_WEIGHTS_PENDING and any(isinstance(spec, BatchNormalization)
                                      for spec in estimator.layers or ()):
        return _BATCH_WEIGHTS_PENDING
    return {}


# Small check data and the default max_iter leave some fits unconverged; the
# warning says so and is not what these checks test.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
