"""The training loop (skdl/_training.py, skdl/callbacks.py): validation and
early stopping, history, class weights, the Hellinger loss, callbacks,
faults and interrupts, progress output."""
import io
import os
import pickle
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import r2_score, recall_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.utils.class_weight import compute_class_weight

from skdl import (
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    NNClassifier,
    NNRegressor,
    _network,
    _ops,
    _reference,
)
from skdl._network import TrainingPass
from skdl._training import EpochPrinter, StepThreads, validation_split
from skdl.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
)
from skdl.optimizers import SGD, Adam
from skdl.regularizers import L1L2
from skdl.schedules import Cosine, InverseTimeDecay, LinearWarmup, PatienceAnnealer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _small(**params):
    return NNClassifier([Dense(16, activation="relu")], random_state=0, **params)


# -- Hellinger loss --------------------------------------------------------------
@pytest.mark.parametrize("op", ["softmax_hellinger", "sigmoid_hellinger"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hellinger_matches_reference_and_finite_differences(op, dtype):
    rng = np.random.RandomState(0)
    Z = (rng.randn(6, 4) * 3).astype(dtype)
    Y = np.eye(4)[rng.randint(0, 4, 6)].astype(dtype)
    if op == "sigmoid_hellinger":
        Y = rng.uniform(size=(6, 4)).astype(dtype)
    loss, grad = getattr(_ops, op)(Z, Y)
    ref_loss, ref_grad = getattr(_reference, op)(Z, Y)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(loss, ref_loss, rtol=tol, atol=tol)
    assert_allclose(grad, ref_grad, rtol=tol, atol=tol)
    if dtype == np.float64:
        eps = 1e-6
        numeric = np.zeros_like(Z)
        for index in np.ndindex(Z.shape):
            Zp, Zm = Z.copy(), Z.copy()
            Zp[index] += eps
            Zm[index] -= eps
            numeric[index] = (getattr(_ops, op)(Zp, Y)[0][index[0]]
                              - getattr(_ops, op)(Zm, Y)[0][index[0]]) / (2 * eps)
        assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_hellinger_is_finite_for_extreme_logits():
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    Y = np.array([[0, 1, 0], [0, 1, 0]], dtype=np.float32)
    loss, grad = _ops.softmax_hellinger(Z, Y)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert_allclose(loss, [1.0, 0.0], atol=1e-6)  # wrong and right, with certainty


def test_hellinger_rejects_negative_targets():
    with pytest.raises(ValueError, match="non-negative targets"):
        _ops.softmax_hellinger(np.zeros((1, 2)), np.array([[-1.0, 2.0]]))


@pytest.mark.parametrize("labels", ["multiclass", "binary"])
def test_hellinger_classifier_learns(digits, labels):
    X, y = digits
    if labels == "binary":
        y = (y >= 5).astype(int)
    clf = _small(loss="hellinger", learning_rate=0.01, max_iter=30).fit(X[:1200], y[:1200])
    assert clf.score(X[1200:], y[1200:]) > 0.9
    assert_allclose(clf.predict_proba(X[:5]).sum(axis=1), 1.0)


# -- validation, early stopping, history ---------------------------------------
def test_history_records_every_epoch(digits):
    X, y = digits
    clf = _small(max_iter=4, learning_rate=0.01, early_stopping=True,
                 n_iter_no_change=10).fit(X, y)
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3, 4]
    assert set(clf.history_[0]) == {"epoch", "train_loss", "val_loss", "val_score",
                                    "learning_rate", "duration"}
    assert [r["train_loss"] for r in clf.history_] == clf.loss_curve_
    assert [r["val_score"] for r in clf.history_] == clf.validation_scores_
    assert all(r["learning_rate"] == 0.01 and r["duration"] > 0 for r in clf.history_)
    assert clf.best_loss_ == min(r["val_loss"] for r in clf.history_)


def test_early_stopping_holds_out_a_seeded_fraction(digits):
    X, y = digits
    seen = {}

    def record(estimator, epoch, record_):
        seen.setdefault("n", estimator.t_)

    clf = _small(max_iter=1, early_stopping=True, validation_fraction=0.2,
                 callbacks=[LambdaCallback(on_epoch_end=record)]).fit(X, y)
    # 20% held out: the epoch trained on the other 80% only.
    assert seen["n"] == len(y) - int(np.ceil(0.2 * len(y)))
    again = _small(max_iter=1, early_stopping=True, validation_fraction=0.2).fit(X, y)
    assert clf.validation_scores_ == again.validation_scores_


def test_validation_split_keeps_rows_weights_and_class_proportions(digits):
    X, y = digits
    Y = np.eye(10)[y]
    index = np.arange(len(y), dtype=np.float64)  # as weights: where each row came from
    (rows_t, Y_t, y_t, w_t), (X_v, Y_v, y_v, w_v) = validation_split(
        X, Y, y, index, 0.2, stratify=True, random_state=np.random.RandomState(0))
    assert len(y_v) == int(np.ceil(0.2 * len(y)))
    assert_array_equal(np.sort(np.concatenate([w_t, w_v])), index)
    # The training part comes as its rows of X (X is not copied), in order.
    assert_array_equal(rows_t, w_t.astype(int))
    assert_array_equal(X_v, X[w_v.astype(int)])
    for Yp, yp, wp in ((Y_t, y_t, w_t), (Y_v, y_v, w_v)):
        rows = wp.astype(int)
        assert_array_equal(Yp, Y[rows])
        assert_array_equal(yp, y[rows])
    # Every class holds out a fifth of its samples, to within one.
    assert np.abs(np.bincount(y_v, minlength=10) - 0.2 * np.bincount(y)).max() <= 1
    again = validation_split(X, Y, y, index, 0.2, stratify=True,
                             random_state=np.random.RandomState(0))
    assert_array_equal(again[1][3], w_v)


def test_stratified_split_needs_two_samples_per_class():
    X = np.random.RandomState(0).randn(20, 3)
    y = np.array([0] * 19 + [1])
    with pytest.raises(ValueError, match="stratified validation set"):
        _small(max_iter=1, early_stopping=True).fit(X, y)


def test_early_stopping_restores_the_best_epoch():
    X, y = make_classification(300, 20, n_informative=5, flip_y=0.3, random_state=0)
    # A big network on noisy labels: the validation loss turns up after a while.
    clf = NNClassifier([Dense(256, activation="relu"), Dense(256, activation="relu")],
                       learning_rate=0.01, max_iter=200, early_stopping=True,
                       n_iter_no_change=5, validation_fraction=0.3, random_state=0)
    snapshots = []
    clf.set_params(callbacks=[LambdaCallback(
        on_epoch_end=lambda est, epoch, rec: snapshots.append(
            (rec["val_loss"], est.network_.params.copy())))])
    clf.fit(X, y)
    assert clf.n_iter_ < 200  # stopped early
    losses = [loss for loss, _ in snapshots]
    best = int(np.argmin(losses))
    assert best < len(losses) - 1
    assert_array_equal(clf.network_.params, snapshots[best][1])
    assert clf.best_loss_ == losses[best]
    assert clf.best_validation_score_ == clf.validation_scores_[best]


def test_final_epochs_train_on_all_samples(digits):
    X, y = digits
    seen = []
    clf = _small(max_iter=2, early_stopping=True, final_epochs=2,
                 callbacks=[LambdaCallback(on_batch_end=lambda e, ep, b, l: seen.append(
                     (ep, e.t_)))])
    clf.fit(X, y)
    assert clf.n_iter_ == 4
    per_epoch = {}
    for epoch, t in seen:
        per_epoch[epoch] = t
    n_val = int(np.ceil(0.1 * len(y)))
    assert per_epoch[2] - per_epoch[1] == len(y) - n_val
    assert per_epoch[4] - per_epoch[3] == len(y)


@pytest.mark.parametrize("Estimator", [NNClassifier, NNRegressor])
def test_final_epochs_without_early_stopping_is_refused(digits, Estimator):
    # They would silently never run: pydnn users set them on their own.
    X, y = digits
    est = Estimator([Dense(4)], max_iter=1, final_epochs=3)
    message = ("final_epochs=3 trains on all the samples after early stopping, but "
               "early_stopping=False: set early_stopping=True or final_epochs=0.")
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(X, y)
    with pytest.raises(ValueError, match=re.escape(message)):
        est.partial_fit(X, y, **({"classes": np.unique(y)}
                                 if Estimator is NNClassifier else {}))
    assert not hasattr(est, "network_")  # refused before any training
    est.set_params(early_stopping=True).fit(X, y)
    assert est.n_iter_ == 1 + 3


def test_regressor_validation_score_is_r2(monkeypatch):
    import skdl._estimators

    X, y = make_regression(400, 5, noise=1.0, random_state=0)
    y = y / y.std()
    splits = []

    def recorded_split(*args, **kwargs):  # the estimator's split, as it made it
        splits.append(validation_split(*args, **kwargs))
        return splits[-1]

    monkeypatch.setattr(skdl._estimators, "validation_split", recorded_split)
    reg = NNRegressor([Dense(32, activation="relu")], learning_rate=0.01, max_iter=30,
                      early_stopping=True, random_state=0).fit(X, y)
    assert len(reg.validation_scores_) == reg.n_iter_
    # The model keeps the best epoch's weights; their score is R² on the
    # held-out samples.
    (_, (X_val, _, y_val, _)), = splits
    assert len(y_val) == 40
    assert reg.best_validation_score_ == r2_score(y_val, reg.predict(X_val))
    assert reg.best_validation_score_ > 0.8


# -- learning-rate schedules through the estimator ------------------------------
def test_lr_schedule_sets_each_epochs_rate(digits):
    X, y = digits
    clf = _small(max_iter=4, learning_rate=0.1, optimizer="sgd",
                 lr_schedule=InverseTimeDecay(decay=0.5, min_rate=0.04)).fit(X, y)
    rates = [record["learning_rate"] for record in clf.history_]
    assert_allclose(rates, [max(0.04, 0.1 / (1 + 0.5 * (e - 1))) for e in (1, 2, 3, 4)])
    assert clf.learning_rate_ == rates[-1]

    clf = _small(max_iter=5, learning_rate=0.01, lr_schedule="cosine").fit(X, y)
    rates = [record["learning_rate"] for record in clf.history_]
    assert_allclose(rates, [0.01 * (1 + np.cos(np.pi * (e - 1) / 5)) / 2 for e in range(1, 6)])

    clf = _small(max_iter=4, learning_rate=0.01,
                 lr_schedule=LinearWarmup(epochs=2, then="constant")).fit(X, y)
    assert_allclose([r["learning_rate"] for r in clf.history_], [0.005, 0.01, 0.01, 0.01])


def test_warm_started_fit_restarts_the_schedule(digits):
    X, y = digits
    clf = _small(max_iter=2, learning_rate=0.1, lr_schedule=InverseTimeDecay(decay=1.0))
    clf.fit(X, y).set_params(warm_start=True).fit(X, y)
    assert clf.n_iter_ == 4
    assert_allclose([r["learning_rate"] for r in clf.history_], [0.1, 0.05, 0.1, 0.05])


def test_partial_fit_continues_the_schedule(digits):
    X, y = digits
    clf = _small(learning_rate=0.1, lr_schedule=InverseTimeDecay(decay=1.0))
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.arange(10))
    assert_allclose([r["learning_rate"] for r in clf.history_], [0.1, 0.05, 0.1 / 3])


def test_patience_annealer_rolls_back_to_the_best_epoch_and_stops(digits):
    X, y = digits
    weights_at = {}

    def at_end(estimator, epoch, record):
        weights_at[epoch] = estimator.network_.params.copy()

    def at_begin(estimator, epoch):
        weights_at["start", epoch] = estimator.network_.params.copy()

    # A rate high enough that the training loss goes up now and then.
    annealer = PatienceAnnealer(patience=2, factor=0.5, min_rate=0.05)
    clf = _small(max_iter=40, learning_rate=1.0, optimizer="momentum",
                 lr_schedule=annealer, n_iter_no_change=100,
                 callbacks=[LambdaCallback(on_epoch_end=at_end,
                                           on_epoch_begin=at_begin)]).fit(X, y)
    losses = [r["train_loss"] for r in clf.history_]
    rates = [r["learning_rate"] for r in clf.history_]
    annealed = [e for e in range(1, clf.n_iter_) if rates[e] < rates[e - 1]]
    assert len(annealed) >= 3
    rolled_back_further = 0
    for epoch in annealed:
        best = int(np.argmin(losses[:epoch])) + 1
        assert_array_equal(weights_at["start", epoch + 1], weights_at[best])
        rolled_back_further += best < epoch
    assert rolled_back_further >= 1
    # The next annealing step would have gone below min_rate: training stopped.
    assert clf.n_iter_ < 40 and min(rates) * 0.5 < 0.05 <= min(rates)


@pytest.mark.parametrize("rollback", ["train", "validation"])
def test_patience_annealer_rolls_back_to_the_best_training_or_validation_epoch(
        digits, rollback):
    X, y = digits
    weights_at = {}

    def at_end(estimator, epoch, record):
        weights_at[epoch] = estimator.network_.params.copy()

    def at_begin(estimator, epoch):
        weights_at["start", epoch] = estimator.network_.params.copy()

    annealer = PatienceAnnealer(patience=2, min_rate=0.01, monitor="both",
                                rollback=rollback)
    clf = _small(max_iter=30, learning_rate=1.0, optimizer="momentum",
                 early_stopping=True, n_iter_no_change=100, lr_schedule=annealer,
                 callbacks=[LambdaCallback(on_epoch_end=at_end,
                                           on_epoch_begin=at_begin)]).fit(X, y)
    train = [r["train_loss"] for r in clf.history_]
    val = [r["val_loss"] for r in clf.history_]
    rates = [r["learning_rate"] for r in clf.history_]
    annealed = [e for e in range(1, clf.n_iter_) if rates[e] < rates[e - 1]]
    assert len(annealed) >= 2
    targets_differ = 0
    for epoch in annealed:
        best_train = int(np.argmin(train[:epoch])) + 1
        best_val = int(np.argmin(val[:epoch])) + 1
        restored = best_train if rollback == "train" else best_val
        assert_array_equal(weights_at["start", epoch + 1], weights_at[restored])
        targets_differ += best_train != best_val
    # At least one annealing step where the two choices are different weights.
    assert targets_differ >= 1


@pytest.mark.parametrize("params", [dict(monitor="validation"), dict(monitor="both"),
                                    dict(rollback="validation")])
def test_patience_annealer_without_validation_set_raises_before_training(
        digits, params):
    X, y = digits
    annealer = PatienceAnnealer(**params)
    clf = _small(max_iter=2, lr_schedule=annealer)
    with pytest.raises(ValueError, match=r"needs the validation loss .* this fit "
                       r"holds out no validation set \(early_stopping=False\)\. Fit "
                       "with early_stopping=True"):
        clf.fit(X, y)
    assert not hasattr(clf, "network_")  # nothing was built or trained
    with pytest.raises(ValueError, match="partial_fit holds out no validation set"):
        clf.partial_fit(X, y, classes=np.arange(10))
    assert not hasattr(clf, "network_")
    # Fitted with a validation set, then continued without one.
    clf.set_params(early_stopping=True).fit(X, y)
    weights = clf.network_.params.copy()
    with pytest.raises(ValueError, match="partial_fit holds out no validation set"):
        clf.partial_fit(X, y)
    assert_array_equal(clf.network_.params, weights)
    assert clf.n_iter_ == 2
    # Inside a warm-up too.
    with pytest.raises(ValueError, match="needs the validation loss"):
        _small(max_iter=2, lr_schedule=LinearWarmup(then=annealer)).fit(X, y)


def test_patience_annealer_progress_survives_pickle(digits):
    X, y = digits[0][:300], digits[1][:300]
    annealer = PatienceAnnealer(patience=1, factor=0.5, monitor="train", tol=0.2,
                                tol_mode="rel", rollback="train")
    clf = _small(learning_rate=0.1, lr_schedule=annealer)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.arange(10))
    copy = pickle.loads(pickle.dumps(clf))
    run = copy._training_state.schedule_run
    assert run is not clf._training_state.schedule_run
    assert vars(run) == vars(clf._training_state.schedule_run)
    for est in (clf, copy):
        for _ in range(3):
            est.partial_fit(X, y)
    rates = [r["learning_rate"] for r in clf.history_]
    assert rates == [r["learning_rate"] for r in copy.history_]
    assert min(rates) < 0.1  # the relative tol made it anneal
    assert_array_equal(copy.network_.params, clf.network_.params)


def test_lr_schedule_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match="lr_schedule"):
        _small(lr_schedule="exponential").fit(X, y)
    with pytest.raises(ValueError, match="min_rate"):
        _small(learning_rate=0.001, lr_schedule=Cosine(min_rate=0.1)).fit(X, y)


# -- penalties through the estimator ------------------------------------------------
def _penalized_loss_gap(X, y, **penalties):
    """loss_ with the penalties minus loss_ without, for (practically) unchanged
    weights, and the model's weights by layer (hidden, out and the output
    layer the estimator adds)."""
    def fit(**params):
        return NNClassifier([Dense(16, activation="relu", name="hidden"),
                             Dense(8, kernel_regularizer=params.pop("out_reg", None),
                                   name="out")],
                            optimizer="sgd", learning_rate=1e-12, max_iter=1,
                            random_state=0, dtype="float64", **params).fit(X, y)
    plain, penalized = fit(), fit(**penalties)
    weights = plain.get_weights()
    assert len(weights) == 3
    return penalized.loss_ - plain.loss_, weights


def test_l1_l2_are_added_to_the_loss_over_kernels_only(digits):
    X, y = digits
    gap, weights = _penalized_loss_gap(X, y, l1=0.01, l2=0.1)
    kernels = np.concatenate([w["kernel"].ravel() for w in weights.values()])
    assert_allclose(gap, 0.01 * np.abs(kernels).sum() + 0.1 * (kernels ** 2).sum(),
                    rtol=1e-6)
    # A layer's own regularizer replaces the estimator's for that layer.
    gap, weights = _penalized_loss_gap(X, y, l2=0.1, out_reg=L1L2(l2=0.5))
    expected = sum((0.5 if name == "out" else 0.1) * (w["kernel"] ** 2).sum()
                   for name, w in weights.items())
    assert_allclose(gap, expected, rtol=1e-6)


def test_l2_shrinks_the_kernels(digits):
    X, y = digits
    norms = [np.linalg.norm(_small(max_iter=20, l2=l2).fit(X, y)
                            .get_weights()["dense"]["kernel"]) for l2 in (0.0, 0.03)]
    assert norms[1] < 0.6 * norms[0]


# -- class and sample weights ---------------------------------------------------
def test_balanced_class_weights_are_sklearns():
    # 'balanced' weighs each sample of class c by scikit-learn's
    # compute_class_weight: n_samples / (n_classes * count(c)).
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], [120, 60, 20])
    X = rng.randn(200, 4) + y[:, None]
    weights = compute_class_weight("balanced", classes=np.arange(3), y=y)[y]
    initial = {}
    clf = NNClassifier([], class_weight="balanced", dtype="float64", max_iter=1,
                       random_state=0, callbacks=[LambdaCallback(
                           on_fit_begin=lambda est: initial.update(est.get_weights()))])
    clf.fit(X, y)
    # One batch: the epoch's loss is the weighted mean cross-entropy at the
    # initial weights.
    Z = X @ initial["output"]["kernel"] + initial["output"]["bias"]
    losses = logsumexp(Z, axis=1) - Z[np.arange(len(y)), y]
    assert_allclose(clf.loss_, weights @ losses / weights.sum(), rtol=1e-12)
    assert not np.isclose(clf.loss_, losses.mean(), rtol=1e-3)
    # Over epochs of several batches, multiplied into sample_weight.
    sample_weight = rng.uniform(0.5, 2.0, len(y))
    balanced = _small(class_weight="balanced", batch_size=64, max_iter=3).fit(
        X, y, sample_weight=sample_weight)
    weighted = _small(batch_size=64, max_iter=3).fit(X, y,
                                                     sample_weight=sample_weight * weights)
    assert_array_equal(balanced.network_.params, weighted.network_.params)


def test_balanced_class_weight_raises_minority_recall():
    X, y = make_classification(3000, 10, weights=[0.95, 0.05], class_sep=0.3,
                               random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    recall = {}
    for class_weight in (None, "balanced"):
        clf = _small(max_iter=40, learning_rate=0.01, class_weight=class_weight)
        clf.fit(X_train, y_train)
        recall[class_weight] = recall_score(y_test, clf.predict(X_test))
    # Measured: 0.05 without weights, 0.7 with.
    assert recall["balanced"] > recall[None] + 0.4


def test_class_weight_dict_equals_sample_weight(digits):
    X, y = digits
    weights = {c: 1.0 + c for c in range(10)}
    a = _small(max_iter=3, class_weight=weights).fit(X, y)
    b = _small(max_iter=3).fit(X, y, sample_weight=np.array([weights[c] for c in y]))
    assert_array_equal(a.network_.params, b.network_.params)


def test_class_weight_applies_to_validation(digits):
    X, y = digits
    weights = {c: (10.0 if c == 0 else 1.0) for c in range(10)}
    a = _small(max_iter=2, early_stopping=True, class_weight=weights).fit(X, y)
    b = _small(max_iter=2, early_stopping=True).fit(
        X, y, sample_weight=np.array([weights[c] for c in y]))
    assert a.validation_scores_ == b.validation_scores_
    assert a.history_[-1]["val_loss"] == b.history_[-1]["val_loss"]


def test_class_weight_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match="not classes"):
        _small(max_iter=1, class_weight={11: 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="not supported by partial_fit"):
        _small(class_weight="balanced").partial_fit(X, y, classes=np.arange(10))


# -- callbacks ------------------------------------------------------------------
class Recorder(Callback):
    def __init__(self):
        pass

    def on_fit_begin(self, estimator):
        self.calls_ = ["fit_begin"]

    def on_epoch_begin(self, estimator, epoch):
        self.calls_.append(f"epoch_begin {epoch}")

    def on_batch_end(self, estimator, epoch, batch, loss):
        self.calls_.append(f"batch {epoch}.{batch}")

    def on_epoch_end(self, estimator, epoch, record):
        self.calls_.append(f"epoch_end {epoch}")
        return False

    def on_fit_end(self, estimator):
        self.calls_.append("fit_end")


def test_callback_hooks_in_order():
    X, y = make_classification(100, 4, random_state=0)
    recorder = Recorder()
    _small(max_iter=2, batch_size=50, callbacks=[recorder]).fit(X, y)
    assert recorder.calls_ == ["fit_begin", "epoch_begin 1", "batch 1.1", "batch 1.2",
                               "epoch_end 1", "epoch_begin 2", "batch 2.1", "batch 2.2",
                               "epoch_end 2", "fit_end"]


def test_callback_can_stop_and_bad_callbacks_are_rejected(digits):
    X, y = digits
    clf = _small(max_iter=50, callbacks=[LambdaCallback(
        on_epoch_end=lambda est, epoch, rec: epoch == 3)]).fit(X, y)
    assert clf.n_iter_ == 3
    with pytest.raises(TypeError, match="has none of the hooks"):
        _small(max_iter=1, callbacks=[object()]).fit(X, y)


def test_early_stopping_callback_on_training_loss(digits):
    X, y = digits
    stopper = EarlyStopping(monitor="train_loss", patience=2, tol=10.0)
    clf = _small(max_iter=50, callbacks=[stopper]).fit(X, y)
    assert clf.n_iter_ == 3 and stopper.stopped_epoch_ == 3 and stopper.best_epoch_ == 1
    with pytest.raises(ValueError, match="'val_loss' is not computed"):
        _small(max_iter=2, callbacks=[EarlyStopping()]).fit(X, y)


def test_learning_rate_scheduler_callback(digits):
    X, y = digits
    clf = _small(max_iter=3, learning_rate=0.1, callbacks=[
        LearningRateScheduler(lambda epoch, rate: rate / 2)]).fit(X, y)
    assert [r["learning_rate"] for r in clf.history_] == [0.05, 0.05, 0.05]
    with pytest.raises(ValueError, match="positive number"):
        _small(max_iter=1, callbacks=[LearningRateScheduler(lambda e, r: -1)]).fit(X, y)


def test_checkpoint_keeps_the_best_epoch_and_loads(tmp_path, digits):
    X, y = digits
    weights_at = {}
    checkpoint = Checkpoint(directory=tmp_path, monitor="val_score")
    record = LambdaCallback(
        on_epoch_end=lambda est, epoch, rec: weights_at.update({epoch: est.get_weights()}))
    clf = _small(max_iter=6, learning_rate=0.01, early_stopping=True, n_iter_no_change=50,
                 callbacks=[checkpoint, record]).fit(X, y)
    best = int(np.argmax(clf.validation_scores_)) + 1  # the first of equal scores
    assert checkpoint.best_epoch_ == best
    assert os.path.dirname(checkpoint.path_) == str(tmp_path)
    saved = checkpoint.load_weights()
    assert set(saved) == set(weights_at[best])
    for layer, params in weights_at[best].items():
        for name, value in params.items():
            assert_array_equal(saved[layer][name], value)
    # What set_weights takes: the checkpoint gives back the best epoch's model.
    clf.set_weights(saved)
    assert clf.score(X, y) > 0.8


def test_parallel_checkpoints_do_not_collide(tmp_path, digits):
    X, y = digits
    template = _small(max_iter=2, callbacks=[Checkpoint(directory=tmp_path,
                                                        monitor="train_loss")])
    estimators = [clone(template).set_params(random_state=seed) for seed in range(4)]
    with ThreadPoolExecutor(2) as pool:
        fitted = list(pool.map(lambda est: est.fit(X, y), estimators))
    paths = [est.callbacks[0].path_ for est in fitted]
    assert len(set(paths)) == 4
    for est in fitted:
        weights = est.callbacks[0].load_weights()
        assert_array_equal(weights["dense"]["kernel"], est.get_weights()["dense"]["kernel"])


def test_checkpoints_of_a_search_in_two_processes_do_not_collide(tmp_path, digits):
    X, y = digits
    search = GridSearchCV(
        _small(max_iter=2, callbacks=[Checkpoint(directory=tmp_path, monitor="train_loss")]),
        {"learning_rate": [0.01, 0.001]}, cv=2, n_jobs=2).fit(X, y)
    files = sorted(tmp_path.iterdir())
    # 2 candidates x 2 folds in the workers, and the refit here: a file each,
    # none overwritten by another fit (each holds a different model).
    assert len(files) == 5 and not any("partial" in f.name for f in files)
    kernels = [np.load(f, allow_pickle=False)["dense/kernel"] for f in files]
    assert len({k.tobytes() for k in kernels}) == 5
    refit_path = search.best_estimator_.callbacks[0].path_
    assert_array_equal(np.load(refit_path)["dense/kernel"],
                       search.best_estimator_.get_weights()["dense"]["kernel"])


class _SklearnCallback:
    """The hooks of scikit-learn's FitCallback protocol, doing nothing."""

    def setup(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass


def test_sklearn_callback_api_gets_an_epoch_task_each_epoch(digits):
    sk_callback = pytest.importorskip("sklearn.callback")
    X, y = digits

    class Counting(_SklearnCallback):
        def setup(self, estimator, context):
            self.tasks = []

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            self.tasks.append((context.task_name, fitted_estimator is not None
                               and fitted_estimator.predict(X[:2]).shape == (2,)))
            return context.task_name == "epoch" and len(self.tasks) == 2

    assert isinstance(Counting(), sk_callback.FitCallback)
    counting = Counting()
    clf = _small(max_iter=10).set_callbacks(counting).fit(X, y)
    assert clf.n_iter_ == 2  # the callback stopped it
    assert counting.tasks == [("epoch", True), ("epoch", True), ("fit", True)]


def test_scoring_monitor_scores_every_epoch_on_the_fit_data(digits):
    sk_callback = pytest.importorskip("sklearn.callback")
    X, y = digits
    monitor = sk_callback.ScoringMonitor(scoring="accuracy")
    clf = _small(max_iter=3, early_stopping=True).set_callbacks(monitor).fit(X, y)
    rows = monitor.get_logs().data
    epochs = [row["accuracy"] for row in rows if row["task_name"] == "epoch"]
    assert len(epochs) == 3 and epochs[0] < epochs[-1]
    # Scored on all of X as given to fit, early stopping's hold-out included.
    (fit_row,) = [row for row in rows if row["task_name"] == "fit"]
    assert fit_row["accuracy"] == clf.score(X, y)


def test_fitted_estimator_of_an_epoch_keeps_that_epochs_weights(digits):
    pytest.importorskip("sklearn.callback")
    X, y = digits

    class Keep(_SklearnCallback):
        def setup(self, estimator, context):
            self.models = []

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            if context.task_name == "epoch":
                self.models.append(fitted_estimator)

    keep = Keep()
    clf = _small(max_iter=3).set_callbacks(keep).fit(X, y)
    probas = [model.predict_proba(X) for model in keep.models]
    assert not np.allclose(probas[0], probas[1])
    assert_array_equal(probas[-1], clf.predict_proba(X))


def test_callbacks_propagate_from_grid_search(digits):
    sk_callback = pytest.importorskip("sklearn.callback")
    from sklearn.callback._callback_context import get_context_path
    X, y = digits

    class TaskRecorder(_SklearnCallback):
        max_propagation_depth = None

        def __init__(self):
            self.tasks = []

        def on_fit_task_end(self, estimator, context):
            path = [c.estimator_name for c in get_context_path(context)]
            self.tasks.append((context.task_name, path[0], path[-1]))

    recorder = TaskRecorder()
    assert isinstance(recorder, sk_callback.AutoPropagatedCallback)
    GridSearchCV(_small(max_iter=2), {"learning_rate": [0.01, 0.001]},
                 cv=2).set_callbacks(recorder).fit(X, y)
    epochs = [task for task in recorder.tasks if task[0] == "epoch"]
    # (2 candidates x 2 folds + the refit) x 2 epochs, in GridSearchCV's tree.
    assert epochs == [("epoch", "GridSearchCV", "NNClassifier")] * 10


def test_progress_bar_follows_the_epochs(digits, capfd):
    sk_callback = pytest.importorskip("sklearn.callback")
    pytest.importorskip("rich")
    X, y = digits
    clf = _small(max_iter=3).set_callbacks(sk_callback.ProgressBar()).fit(X, y)
    assert clf.n_iter_ == 3
    out = capfd.readouterr().out
    assert "NNClassifier - fit" in out and "100%" in out


# -- faults and interrupts --------------------------------------------------------
def test_divergence_names_epoch_and_batch_and_keeps_finite_weights():
    X, y = make_regression(200, 5, random_state=0)
    reg = NNRegressor([Dense(16, activation="relu")], optimizer="sgd",
                      learning_rate=1e6, max_iter=20, batch_size=50, random_state=0)
    with pytest.raises(ValueError, match=r"in epoch \d+, batch \d+\..*last weights that "
                                         r"gave a finite loss.*learning rate.*clipnorm"):
        reg.fit(X, y)
    assert np.isfinite(reg.network_.params).all()
    assert np.isfinite(reg.predict(X)).all()


def test_clipping_avoids_the_divergence():
    X, y = make_regression(200, 5, random_state=0)  # targets of standard deviation 190

    def fit(optimizer):
        """The fitted model and how far each step moved its weights."""
        params = []

        def record(estimator, *args):
            params.append(estimator.network_.params.astype(np.float64))

        reg = NNRegressor([Dense(16, activation="relu")], optimizer=optimizer,
                          learning_rate=0.1, max_iter=5, random_state=0,
                          callbacks=[LambdaCallback(on_fit_begin=record,
                                                    on_batch_end=record)]).fit(X, y)
        return reg, np.linalg.norm(np.diff(params, axis=0), axis=1)

    unclipped, _ = fit(SGD())
    assert unclipped.loss_curve_[-1] > 1e6 * unclipped.loss_curve_[0]
    clipped, moves = fit(SGD(clipnorm=1.0))
    # Plain SGD moves the weights by the learning rate times the gradient,
    # clipped to a norm of 1 (these gradients are all larger): 0.1 a step.
    assert_allclose(moves, 0.1, rtol=1e-6)
    assert np.all(np.diff(clipped.loss_curve_) < 0)


def test_keyboard_interrupt_keeps_a_usable_model(digits):
    X, y = digits
    seen = {}

    def interrupt(estimator, epoch, batch, loss):
        if epoch == 2 and batch == 3:
            seen["params"] = estimator.network_.params.copy()
            raise KeyboardInterrupt

    clf = _small(max_iter=10, batch_size=100, learning_rate=0.01,
                 callbacks=[LambdaCallback(on_batch_end=interrupt)])
    with pytest.warns(UserWarning, match="interrupted during epoch 2.*last completed step"):
        clf.fit(X, y)
    assert clf.n_iter_ == 1 and clf.t_ == len(y) + 300
    # The weights of the step that completed just before the interrupt.
    assert_array_equal(clf.network_.params, seen["params"])
    assert clf.predict(X).shape == (len(y),)
    assert clf.score(X, y) > 0.5  # 1 epoch and 3 batches: far above chance (0.1)


def _batchnorm_net(**params):
    return NNClassifier([Dense(16), BatchNormalization(), Dense(8, activation="relu")],
                        random_state=0, **params)


def _assert_same_weights(network, snapshot):
    assert_array_equal(network.params, snapshot.params)
    assert_array_equal(network.buffers, snapshot.buffers)


def test_interrupt_mid_step_restores_the_step(digits):
    X, y = digits
    clf = _batchnorm_net(max_iter=1, batch_size=100).fit(X, y)
    before = clf.network_.snapshot()

    class Boom(Callback):
        def on_epoch_begin(self, estimator, epoch):
            original = estimator._loss_fn

            def failing(*args):
                estimator._loss_fn = original
                # The forward pass of this step has run and moved the
                # BatchNormalization statistics: they must be put back.
                raise KeyboardInterrupt

            estimator._loss_fn = failing

    clf.set_params(warm_start=True, callbacks=[Boom()])
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    _assert_same_weights(clf.network_, before)


def test_non_finite_loss_restores_batchnorm_statistics(digits):
    X, y = digits
    clf = _batchnorm_net(max_iter=1, dtype="float64", shuffle=False).fit(X, y)
    before = clf.network_.snapshot()
    X_bad = X.astype(np.float64)
    X_bad[5] = 1e308  # the first layer overflows in the first step of the next fit
    clf.set_params(warm_start=True)
    with pytest.raises(ValueError, match="epoch 2, batch 1"):
        clf.fit(X_bad, y)
    _assert_same_weights(clf.network_, before)
    assert np.isfinite(clf.predict_proba(X)).all()


# -- output --------------------------------------------------------------------------
def test_verbose_table_and_progress_bar(digits):
    X, y = digits
    out = io.StringIO()
    with redirect_stdout(out):
        _small(max_iter=2, verbose=1, early_stopping=True).fit(X, y)
    lines = out.getvalue().splitlines()
    assert re.match(r"\s+epoch\s+train loss\s+valid loss\s+valid score\s+lr\s+time", lines[0])
    assert re.match(r"\s+1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+0.001\s+[\d.]+", lines[1])
    assert len(lines) == 3
    out = io.StringIO()
    with redirect_stdout(out):
        _small(max_iter=2, verbose=True).fit(X, y)  # True is 1
    assert len(out.getvalue().splitlines()) == 3


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_2_draws_the_progress_bar_only_on_a_terminal(digits):
    X, y = digits
    terminal = _Terminal()
    with redirect_stdout(terminal):
        _small(max_iter=2, verbose=2, batch_size=500).fit(X, y)
    text = terminal.getvalue()
    assert "[" + "=" * 30 + "] 4/4" in text and "\r" in text
    assert text.count("] 1/4") == 2  # redrawn in each epoch
    # Piped output and logs: the table alone, a line per epoch, no redraws.
    piped = io.StringIO()  # isatty() is False, as for a pipe or a file
    with redirect_stdout(piped):
        _small(max_iter=2, verbose=2, batch_size=500).fit(X, y)
    text = piped.getvalue()
    assert "\r" not in text and "/4" not in text
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "epoch"
    assert [line.split()[0] for line in lines[1:]] == ["1", "2"]


def test_verbose_2_draws_the_progress_bar_in_a_notebook():
    # Jupyter's output streams are no tty but show a redrawn line as one.
    notebook = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})()
    for stream, drawn in ((notebook, True), (io.StringIO(), False), (object(), False)):
        printer = EpochPrinter(2, stream)
        assert printer.draw_bar is drawn
        if drawn:
            printer.batch(2, 4)
            assert stream.getvalue() == "\r[" + "=" * 15 + "." * 15 + "] 2/4"


def test_grid_search_over_training_parameters(digits):
    X, y = digits
    settings = dict(max_iter=3, learning_rate=0.01, batch_size=32)
    search = GridSearchCV(_small(**settings), {"l2": [0.0, 0.01],
                                               "optimizer": [Adam(), SGD(momentum=0.9)]},
                          cv=2).fit(X, y)
    # Each candidate scores as the estimator with its parameters does.
    expected = [cross_val_score(_small(**settings, **params), X, y, cv=2).mean()
                for params in search.cv_results_["params"]]
    assert_array_equal(search.cv_results_["mean_test_score"], expected)
    assert len(set(expected)) == 4


# -- augmentation ------------------------------------------------------------------

class _Recorder:
    """Records the batches an augmenter sees (the augmenter adds 1)."""

    def __init__(self):
        self.shapes = []


def _recording_augmenter(recorder):
    from skdl.augment import Augmenter

    class AddOne(Augmenter):
        def __init__(self, log=None):
            self.log = log

        def _apply(self, X, rng):
            self.log.shapes.append(X.shape)
            return X + 1

    return AddOne(recorder)


def test_augmentation_runs_on_training_batches_only(digits):
    X, y = digits
    log = _Recorder()
    clf = NNClassifier([Dense(8)], batch_size=100, max_iter=2, early_stopping=True,
                       validation_fraction=0.2, augment=_recording_augmenter(log),
                       random_state=0).fit(X, y)
    n_train = len(X) - int(np.ceil(0.2 * len(X)))
    per_epoch = [100] * (n_train // 100) + ([n_train % 100] if n_train % 100 else [])
    assert [s[0] for s in log.shapes] == per_epoch * 2
    assert all(s[1:] == (64,) for s in log.shapes)
    log.shapes.clear()
    clf.predict(X), clf.predict_proba(X), clf.score(X, y), clf.activations(X)
    assert log.shapes == []


def test_augmentation_changes_training_and_is_reproducible(digits):
    from skdl.augment import GaussianNoise, RandomShift

    X, y = digits
    X_before = X.copy()
    params = dict(input_shape=(1, 8, 8), max_iter=2, random_state=0)
    plain = NNClassifier([Dense(8)], **params).fit(X, y)
    augment = [RandomShift(1), GaussianNoise(0.05)]
    a = NNClassifier([Dense(8)], augment=augment, **params).fit(X, y)
    b = NNClassifier([Dense(8)], augment=clone(augment), **params).fit(X, y)
    assert_array_equal(a.network_.params, b.network_.params)
    assert not np.allclose(a.network_.params, plain.network_.params)
    assert_array_equal(X, X_before)


def test_augmentation_acts_on_the_main_input_only():
    from skdl import Flatten, MergeInput

    log = _Recorder()
    rng = np.random.RandomState(0)
    X = rng.rand(30, 2 * 4 * 4 + 3)
    est = NNRegressor([Flatten(), MergeInput("meta")], max_iter=1, batch_size=30,
                      input_shape={"image": (2, 4, 4), "meta": (3,)},
                      augment=_recording_augmenter(log), shuffle=False, random_state=0)
    seen = {}

    def keep_batch(network_forward):
        def forward(Xb, **kwargs):
            seen.setdefault("X", Xb.copy())
            return network_forward(Xb, **kwargs)
        return forward

    est.fit(X, rng.rand(30))
    assert log.shapes == [(30, 2, 4, 4)]
    # Refit with the network's forward watched: image columns +1, meta unchanged.
    est.set_params(warm_start=True)
    est.network_.forward = keep_batch(est.network_.forward)
    est.fit(X, rng.rand(30))
    assert_allclose(seen["X"][:, :32], X[:, :32] + 1, rtol=1e-6)
    assert_allclose(seen["X"][:, 32:], X[:, 32:], rtol=1e-6)


def test_bad_augment_parameters(digits):
    from skdl.augment import RandomRotation90

    X, y = digits
    with pytest.raises(TypeError, match=r"augment\[1\] must be an Augmenter"):
        NNClassifier(max_iter=1, augment=[RandomRotation90(), "flip"]).fit(X, y)
    with pytest.raises(ValueError, match=r"RandomRotation90 cannot act on samples of "
                       r"shape \(1, 4, 16\)"):
        NNClassifier(max_iter=1, input_shape=(1, 4, 16),
                     augment=RandomRotation90()).fit(X, y)


@pytest.mark.parametrize("weights", [[0, 1], [1, 0]])
def test_early_stopping_split_without_weight_in_a_part_is_refused(weights):
    # Two samples: one trains and one validates; one of them weighs nothing.
    with pytest.raises(ValueError, match="only samples of weight 0 in the "
                       "(training|validation) part"):
        NNRegressor([Dense(3)], early_stopping=True, random_state=0).fit(
            [[1.0], [2.0]], [0.5, -1.0], sample_weight=weights)


# -- one thread or the default, step by step ---------------------------------------

def _choices(step_threads, timings, n_steps=300):
    """Run ``step_threads`` over full-batch steps whose time depends on the
    cap: ``timings(cap, step)`` -> seconds per sample; returns the caps used."""
    caps = []
    for step in range(n_steps):
        cap = step_threads.cap(full_batch=True)
        caps.append(cap)
        step_threads.record(timings(cap, step), full_batch=True)
    return caps


def test_step_threads_keep_the_default_on_a_quiet_machine():
    chooser = StepThreads(active=True)
    # Two threads: 1.0 per step; one thread: 1.3. Probes lose, and come ever rarer.
    caps = _choices(chooser, lambda cap, step: 1.3 if cap == 1 else 1.0)
    assert caps[0] == 1  # the warm-up step, on one thread and not counted
    probes = [i for i, cap in enumerate(caps) if cap == 1][1:]
    assert probes[0] == 1 + StepThreads.FIRST_PROBE
    assert not chooser.single and caps[-1] is None
    # Each losing probe doubles the interval: 32, 64, 128 steps between them.
    interval = StepThreads.INTERVAL
    assert np.diff(probes).tolist() == [2 * interval + 1, 4 * interval + 1,
                                        8 * interval + 1]


def test_step_threads_move_to_one_thread_when_two_stall_and_back_when_quiet():
    chooser = StepThreads(active=True)

    def loaded_until_100(cap, step):
        if cap == 1:
            return 1.2
        # Under load two threads are mostly as fast, but every third step stalls.
        return (6.0 if step % 3 == 0 else 1.0) if step < 100 else 1.0

    caps = _choices(chooser, loaded_until_100)
    single = [cap == 1 for cap in caps]
    # One thread from the first stalls on, but for the rare probes of two...
    assert all(single[10:20]) and sum(not s for s in single[10:100]) <= 4
    # ...and back to two threads once the load is gone, but for probes of one.
    assert not single[-1] and sum(single[-150:]) <= 2


def test_step_threads_leave_a_far_slower_choice_for_long():
    chooser = StepThreads(active=True)
    # A loaded machine where two threads take 100 times as long as one (every
    # parallel region waits for a descheduled thread): after the first timed
    # step, one thread for good; the probe of two threads that loses by 99
    # steps' time comes back only after 99 / PROBE_SHARE steps.
    caps = _choices(chooser, lambda cap, step: 1.0 if cap == 1 else 100.0, n_steps=3000)
    two = [i for i, cap in enumerate(caps) if cap is None]
    assert two[0] == 1 and caps[2] == 1  # the probe of one thread wins at once
    probe = two[1]
    assert probe == 3 + StepThreads.INTERVAL
    assert two[2] - probe >= 99 / StepThreads.PROBE_SHARE
    # Probing took at most about PROBE_SHARE of the time after the first steps.
    spent = sum(100.0 if cap is None else 1.0 for cap in caps[2:])
    assert spent <= (1 + 1.5 * StepThreads.PROBE_SHARE) * len(caps[2:]) + 100


def test_step_threads_ignore_short_batches_and_single_cpus():
    idle = StepThreads(active=False)
    for _ in range(50):
        assert idle.cap(full_batch=True) is None
        idle.record(100.0, full_batch=True)
    chooser = StepThreads(active=True)
    for _ in range(50):
        assert chooser.cap(full_batch=False) is None
        chooser.record(100.0, full_batch=False)
    assert len(chooser.recent) == 0 and not chooser.single


@pytest.mark.parametrize("weighted", [False, True])
def test_fit_through_bound_passes_equals_the_layers_path(digits, monkeypatch, weighted):
    X, y = digits[0][:200], digits[1][:200]
    w = np.random.RandomState(0).uniform(0.2, 2, len(y)) if weighted else None
    bound = []
    bind = TrainingPass.bind

    def spy(*args):
        made = bind(*args)
        bound.append((args[1], made is not None))
        return made
    monkeypatch.setattr(TrainingPass, "bind", spy)

    def fit():
        clf = NNClassifier(
            layers=[Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2),
                    Flatten(), Dense(16, activation="tanh")],
            input_shape=(1, 8, 8), batch_size=64, max_iter=3, random_state=0,
            dtype="float32")
        return clf.fit(X, y, sample_weight=w)
    through_bound = fit()
    # 200 samples in batches of 64: three full ones and one of 8, both bound.
    assert bound == [(64, True), (8, True)]
    monkeypatch.setattr(_network, "USE_BOUND_PASSES", False)
    general = fit()
    assert len(bound) == 2
    assert through_bound.loss_curve_ == general.loss_curve_
    for layer, weights in general.get_weights().items():
        for key, value in weights.items():
            assert_array_equal(through_bound.get_weights()[layer][key], value)
