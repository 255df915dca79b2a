"""skdl's training, step for step, against the plain-numpy oracle of
tests/_oracle.py: after several epochs every weight (batch normalization's
running statistics included), the loss curve, the rates and the counters
must be the oracle's.

Both sides compute in float64, so they differ only by the order of their
sums: ~1e-15 relative after a handful of steps, ~1e-12 after twenty steps at
a large learning rate. rtol=1e-9 leaves room for that and for nothing else:
Adam's bias correction at the wrong step, a dropped sample weight or a
gradient scaled by the wrong batch size moves the weights by far more.
"""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from _oracle import TrainingOracle
from skdl import NNClassifier, NNRegressor
from skdl.layers import GRU, LSTM, BatchNormalization, Conv2D, Dense, Flatten, MaxPool2D
from skdl.optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, RMSprop
from skdl.schedules import Cosine, EpochSchedule, InverseTimeDecay, LinearWarmup

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RTOL, ATOL = 1e-9, 1e-12
_rng = np.random.RandomState(0)
# 30 samples in batches of 8: three full batches and one of 6, whose step
# must be scaled by its own size.
X_FLAT = _rng.randn(30, 5)
Y_THREE = _rng.randint(0, 3, 30)
# Imbalanced, so that 'balanced' class weights are far from 1.
Y_SKEWED = np.array([0] * 18 + [1] * 8 + [2] * 4)[_rng.permutation(30)]
WEIGHTS = _rng.uniform(0.2, 2.0, 30)
X_IMAGES = _rng.randn(30, 1, 6, 6)
X_SEQUENCES = _rng.randn(30, 5, 3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batches of 8 samples: on a busy machine OpenMP's barriers cost far
    more than the arithmetic. Results are bit-identical at any thread count
    (README, "Determinism"), so this changes the time only."""
    with threadpool_limits(1):
        yield


def classifier(layers=None, **params):
    """A small float64 classifier seeded for the oracle; ``params`` override."""
    settings = dict(layers=[Dense(6, activation="tanh")] if layers is None else layers,
                    optimizer=Adam(), learning_rate=0.01, batch_size=8, max_iter=4,
                    dtype="float64", random_state=0)
    return NNClassifier(**{**settings, **params})


def fit_both(estimator, *calls):
    """Make the same calls ``(method, args, kwargs)`` (fit, partial_fit,
    set_params) on the estimator and on an oracle of its parameters; return
    both."""
    oracle = TrainingOracle(clone(estimator))
    for method, args, kwargs in calls:
        getattr(estimator, method)(*args, **kwargs)
        getattr(oracle, method)(*args, **kwargs)
    return estimator, oracle


def fit_call(X, y, **kwargs):
    return ("fit", (X, y), kwargs)


def assert_trained_as_oracle(estimator, oracle):
    """Every weight, the loss curve, the rates and counters agree, and the
    weights did move (so agreement is not that of two idle fits)."""
    weights = estimator.get_weights()
    assert weights.keys() == oracle.weights.keys()
    for layer, entries in oracle.weights.items():
        assert weights[layer].keys() == entries.keys(), layer
        for key, expected in entries.items():
            assert_allclose(weights[layer][key], expected, rtol=RTOL, atol=ATOL,
                            err_msg=f"{layer}/{key}")
    assert_allclose(estimator.loss_curve_, oracle.loss_curve, rtol=RTOL)
    assert_allclose([r["learning_rate"] for r in estimator.history_],
                    oracle.learning_rates, rtol=RTOL)
    assert (estimator.n_iter_, estimator.t_) == (oracle.n_iter, oracle.t)
    moved = max(np.abs(oracle.weights[layer][key] - initial).max()
                for layer, entries in oracle.initial_weights.items()
                for key, initial in entries.items())
    assert moved > 1e-3


def assert_weights_differ(oracle, other):
    """The option under test changed the training (not a no-op on this data)."""
    assert any(not np.allclose(value, other.weights[layer][key], rtol=1e-6, atol=1e-9)
               for layer, entries in oracle.weights.items()
               for key, value in entries.items())


@pytest.mark.parametrize("optimizer, learning_rate", [
    (SGD(), 0.1),
    (SGD(momentum=0.9), 0.1),
    (SGD(momentum=0.9, nesterov=True), 0.1),
    (SGD(momentum=0.9, initial_momentum=0.5, momentum_ramp_epochs=3), 0.1),
    (Adagrad(), 0.1),
    (RMSprop(), 0.01),
    (RMSprop(momentum=0.5), 0.01),
    (Adadelta(), 1.0),
    (Adam(), 0.01),
    (Adamax(), 0.01),
    (AdamW(weight_decay=0.5), 0.01),
    (SGD(momentum=0.9, weight_decay=0.5), 0.1),
    ("nesterov", 0.1),
], ids=lambda p: repr(p) if not isinstance(p, float) else None)
def test_every_optimizer_trains_as_documented(optimizer, learning_rate):
    est, oracle = fit_both(classifier(optimizer=optimizer, learning_rate=learning_rate),
                           fit_call(X_FLAT, Y_THREE))
    assert_trained_as_oracle(est, oracle)


@pytest.mark.parametrize("layers, X", [
    ([Dense(8, activation="relu"), Dense(5, activation="sigmoid")], X_FLAT),
    ([Dense(8, use_bias=False), BatchNormalization(momentum=0.8),
      Dense(5, activation="relu")], X_FLAT),
    ([Conv2D(3, 3, activation="relu"), MaxPool2D(2), Flatten()], X_IMAGES),
    ([Conv2D(3, 3, use_bias=False), BatchNormalization(momentum=0.8), MaxPool2D(2),
      Flatten()],
     X_IMAGES),
    ([LSTM(4)], X_SEQUENCES),
    ([GRU(4)], X_SEQUENCES),
], ids=["dense", "dense-batchnorm", "conv-pool", "conv-batchnorm-pool", "lstm", "gru"])
def test_networks_train_as_documented(layers, X):
    # Weighted, so batch normalization's statistics are weighted too. The
    # layers before it have no bias, as usual: its gradient would be exactly
    # 0, and Adam would blow the rounding noise up to steps of lr * noise /
    # epsilon, which neither side computes the same.
    est, oracle = fit_both(classifier(layers, max_iter=3),
                           fit_call(X, Y_THREE, sample_weight=WEIGHTS))
    assert_trained_as_oracle(est, oracle)


@pytest.mark.parametrize("y", [Y_THREE % 2, np.stack([Y_THREE % 2, Y_THREE > 0], 1)],
                         ids=["binary", "multilabel"])
def test_sigmoid_outputs_train_as_documented(y):
    est, oracle = fit_both(classifier(), fit_call(X_FLAT, y))
    assert_trained_as_oracle(est, oracle)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_come_in_order_or_in_the_seeded_permutation(shuffle):
    est, oracle = fit_both(classifier(optimizer=SGD(momentum=0.9), learning_rate=0.1,
                                      shuffle=shuffle), fit_call(X_FLAT, Y_THREE))
    assert_trained_as_oracle(est, oracle)


@pytest.mark.parametrize("sample_weight, class_weight", [
    (WEIGHTS, None),
    (None, {0: 0.5, 2: 3.0}),
    (None, "balanced"),
    (WEIGHTS, {0: 0.5, 2: 3.0}),
    (WEIGHTS, "balanced"),
], ids=["sample", "class-dict", "balanced", "sample-and-dict", "sample-and-balanced"])
@pytest.mark.parametrize("optimizer", [SGD(momentum=0.9), Adam()], ids=repr)
def test_sample_and_class_weights_multiply(sample_weight, class_weight, optimizer):
    est, oracle = fit_both(
        classifier(optimizer=optimizer, learning_rate=0.05, class_weight=class_weight),
        fit_call(X_FLAT, Y_SKEWED, sample_weight=sample_weight))
    assert_trained_as_oracle(est, oracle)


@pytest.mark.parametrize("l1, l2", [(0.05, 0.0), (0.0, 0.05), (0.02, 0.05)])
def test_penalties_on_the_kernels(l1, l2):
    layers = [Dense(6, activation="tanh"), BatchNormalization(momentum=0.8)]
    est, oracle = fit_both(classifier(layers, l1=l1, l2=l2), fit_call(X_FLAT, Y_THREE))
    assert_trained_as_oracle(est, oracle)
    assert_weights_differ(oracle, TrainingOracle(classifier(layers)).fit(X_FLAT, Y_THREE))


@pytest.mark.parametrize("clip", [dict(clipvalue=0.02), dict(clipnorm=0.05),
                                  dict(clipvalue=0.02, clipnorm=0.03)], ids=str)
def test_gradient_clipping(clip):
    est, oracle = fit_both(
        classifier(optimizer=SGD(momentum=0.5, **clip), learning_rate=0.5),
        fit_call(X_FLAT, Y_THREE, sample_weight=WEIGHTS))
    assert_trained_as_oracle(est, oracle)
    unclipped = classifier(optimizer=SGD(momentum=0.5), learning_rate=0.5)
    assert_weights_differ(oracle, TrainingOracle(unclipped).fit(X_FLAT, Y_THREE,
                                                                sample_weight=WEIGHTS))


@pytest.mark.parametrize("schedule", [
    InverseTimeDecay(decay=0.5),
    EpochSchedule({2: 0.05, 4: 0.01}),
    Cosine(min_rate=0.001),
    Cosine(epochs=2),
    LinearWarmup(epochs=2, then=InverseTimeDecay(decay=0.3)),
    LinearWarmup(epochs=2, then=Cosine()),
], ids=repr)
def test_learning_rate_schedules_set_each_epochs_rate(schedule):
    est, oracle = fit_both(classifier(optimizer=SGD(momentum=0.9), learning_rate=0.1,
                                      lr_schedule=schedule, max_iter=5),
                           fit_call(X_FLAT, Y_THREE))
    assert_trained_as_oracle(est, oracle)
    assert len(set(oracle.learning_rates)) > 1


# The SGD ramp reads the epoch, Adam the step, both across calls.
CONTINUING = [Adam(), SGD(momentum=0.9, initial_momentum=0.1, momentum_ramp_epochs=4)]


@pytest.mark.parametrize("optimizer", CONTINUING, ids=repr)
@pytest.mark.parametrize("first", ["partial_fit", "fit"])
def test_partial_fit_continues_steps_epochs_and_schedule(optimizer, first):
    est = classifier(optimizer=optimizer, learning_rate=0.05, max_iter=3,
                     lr_schedule=InverseTimeDecay(decay=0.5))
    start = (("partial_fit", (X_FLAT, Y_THREE), dict(classes=[0, 1, 2]))
             if first == "partial_fit" else fit_call(X_FLAT, Y_THREE))
    halves = [("partial_fit", (X_FLAT[rows], Y_THREE[rows]),
               dict(sample_weight=WEIGHTS[rows])) for rows in (slice(0, 17), slice(17, 30))]
    est, oracle = fit_both(est, start, *halves, *halves)
    assert_trained_as_oracle(est, oracle)


@pytest.mark.parametrize("optimizer", CONTINUING, ids=repr)
def test_warm_start_continues_steps_and_epochs_and_restarts_the_schedule(optimizer):
    est = classifier(optimizer=optimizer, learning_rate=0.05, max_iter=3,
                     lr_schedule=Cosine(min_rate=0.005))
    est, oracle = fit_both(
        est, fit_call(X_FLAT, Y_THREE),
        ("set_params", (), dict(warm_start=True, max_iter=2)),
        fit_call(X_FLAT[::-1], Y_THREE[::-1], sample_weight=WEIGHTS))
    assert_trained_as_oracle(est, oracle)
    assert oracle.learning_rates[3] == oracle.learning_rates[0]


@pytest.mark.parametrize("estimator, y", [
    (classifier([Dense(6, activation="tanh"), BatchNormalization(momentum=0.8)],
                class_weight="balanced"), Y_SKEWED),
    (NNRegressor([Dense(6, activation="tanh")], batch_size=8, dtype="float64",
                 random_state=0), X_FLAT[:, :2] ** 2),
], ids=["classifier", "regressor"])
@pytest.mark.parametrize("final_epochs", [0, 2])
def test_early_stopping_keeps_the_best_epoch(estimator, y, final_epochs):
    # A large rate: the validation loss soon rises, and stops the fit.
    estimator = clone(estimator).set_params(
        optimizer=SGD(momentum=0.5), learning_rate=1.0, max_iter=30, early_stopping=True,
        validation_fraction=0.3, tol=0.0, n_iter_no_change=2, final_epochs=final_epochs)
    est, oracle = fit_both(estimator, fit_call(X_FLAT, y, sample_weight=WEIGHTS))
    assert_trained_as_oracle(est, oracle)
    epochs_before_the_final = oracle.n_iter - final_epochs
    assert est.n_iter_ < 30 and oracle.best_epoch < epochs_before_the_final


@pytest.mark.parametrize("y", [X_FLAT[:, 0] - X_FLAT[:, 1] ** 2,
                               np.stack([X_FLAT[:, 0], X_FLAT[:, 2] * X_FLAT[:, 3]], 1)],
                         ids=["one-target", "two-targets"])
def test_regressor_trains_as_documented(y):
    est = NNRegressor([Dense(6, activation="tanh")], optimizer=Adam(), learning_rate=0.01,
                      batch_size=8, max_iter=4, dtype="float64", random_state=0)
    est, oracle = fit_both(est, fit_call(X_FLAT, y, sample_weight=WEIGHTS))
    assert_trained_as_oracle(est, oracle)
