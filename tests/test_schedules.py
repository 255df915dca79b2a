"""Learning-rate schedules: formulas, scripted plateaus, hand-over, clone safety."""
import doctest
import math
import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skdl import schedules
from skdl.optimizers import SGD
from skdl.schedules import (
    Constant,
    Cosine,
    EpochSchedule,
    InverseTimeDecay,
    LearningRateSchedule,
    LinearWarmup,
    PatienceAnnealer,
    ReduceOnPlateau,
    ScheduleRun,
    resolve_schedule,
)


def drive(schedule, learning_rate, losses, max_epochs=None):
    """Rates used by each epoch and the action returned after it, up to a stop."""
    run = schedule.start(learning_rate, len(losses) if max_epochs is None else max_epochs)
    rates, actions = [], []
    for epoch, loss in enumerate(losses, start=1):
        rates.append(run.rate)
        actions.append(run.epoch_end(epoch, loss))
        if actions[-1] == "stop":
            break
    return rates, actions


def spec_params(spec):
    """get_params with nested specs replaced by (class, their params), comparable by ==."""
    return {
        name: (type(value), spec_params(value)) if isinstance(value, BaseEstimator)
        else value
        for name, value in spec.get_params(deep=False).items()
    }


FLAT = [1.0] * 12


# -- formulas ---------------------------------------------------------------------

def test_constant():
    rates, actions = drive(Constant(), 0.03, [3.0, 2.0, 5.0, 1.0])
    assert rates == [0.03] * 4
    assert actions == [None] * 4


def test_inverse_time_decay_formula():
    rates, actions = drive(InverseTimeDecay(decay=1.0), 1.0, [1.0] * 4)
    assert rates == [1.0, 1 / 2, 1 / 3, 1 / 4]
    assert actions == [None] * 4

    base, decay = 0.5, 0.1
    rates, _ = drive(InverseTimeDecay(decay=decay), base, FLAT)
    assert rates == [base / (1 + decay * (e - 1)) for e in range(1, 13)]


def test_inverse_time_decay_floor():
    rates, _ = drive(InverseTimeDecay(decay=1.0, min_rate=0.3), 1.0, [1.0] * 6)
    assert rates == [1.0, 0.5, 1 / 3, 0.3, 0.3, 0.3]
    # decay=0 keeps the base rate
    rates, _ = drive(InverseTimeDecay(decay=0.0), 0.2, [1.0] * 3)
    assert rates == [0.2] * 3


def test_epoch_schedule():
    # Entries in any order; each holds until the next one.
    table = {6: 0.001, 1: 0.1, 3: 0.01}
    rates, actions = drive(EpochSchedule(table), 1.0, [1.0] * 7)
    assert rates == [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001]
    assert actions == [None] * 7


def test_epoch_schedule_without_first_epoch_starts_at_base():
    rates, _ = drive(EpochSchedule({3: 0.01, 100: 1e-5}), 0.5, [1.0] * 5)
    assert rates == [0.5, 0.5, 0.01, 0.01, 0.01]


def test_epoch_schedule_run_keeps_its_own_copy():
    table = {2: 0.01}
    run = EpochSchedule(table).start(0.1, 5)
    table[2] = 7.0
    run.epoch_end(1, 1.0)
    assert run.rate == 0.01


def test_cosine_formula():
    base, low, T = 0.1, 0.01, 10
    rates, actions = drive(Cosine(min_rate=low), base, [1.0] * T)
    expected = [low + (base - low) * (1 + math.cos(math.pi * (e - 1) / T)) / 2
                for e in range(1, T + 1)]
    assert rates == pytest.approx(expected, rel=1e-13, abs=0)
    assert actions == [None] * T
    assert rates[0] == base
    assert rates[5] == pytest.approx((base + low) / 2, rel=1e-13)  # e - 1 = T / 2
    assert rates[-1] > low  # no epoch of the fit is spent at min_rate


def test_cosine_explicit_length_then_holds_min_rate():
    rates, _ = drive(Cosine(min_rate=0.25, epochs=4), 1.0, [1.0] * 7)
    expected = [0.25 + 0.75 * (1 + math.cos(math.pi * (e - 1) / 4)) / 2 for e in (1, 2, 3, 4)]
    assert rates[:4] == pytest.approx(expected, rel=1e-13, abs=0)
    assert rates[4:] == [0.25, 0.25, 0.25]
    # min_rate=0 reaches exactly 0 after T epochs
    rates, _ = drive(Cosine(epochs=2), 1.0, [1.0] * 3)
    assert rates == pytest.approx([1.0, 0.5, 0.0], rel=1e-13, abs=1e-15)


# -- patience annealer ------------------------------------------------------------

PATIENCE_LOSSES = [1.0, 0.9, 0.95, 0.92, 0.8, 0.85, 0.85, 0.7, 0.9, 0.9, 0.9, 0.9]


def test_patience_annealer_rollback_and_stop():
    spec = PatienceAnnealer(patience=2, factor=0.5, min_rate=0.25)
    run = spec.start(1.0, 20)
    rates, actions, best = [], [], []
    for epoch, loss in enumerate(PATIENCE_LOSSES, start=1):
        rates.append(run.rate)
        actions.append(run.epoch_end(epoch, loss))
        best.append(run.best_epoch)
        if actions[-1] == "stop":
            break
    # 2 epochs without improvement -> halve and roll back; the third time the
    # rate would drop to 0.125 < min_rate, so stop instead.
    assert rates == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert actions == [None, None, None, "rollback", None, None, "rollback",
                       None, None, "stop"]
    assert best == [1, 2, 2, 2, 5, 5, 5, 8, 8, 8]
    assert run.rate == 0.25  # a stop leaves the rate as it was


def test_patience_annealer_without_rollback():
    rates, actions = drive(PatienceAnnealer(patience=2, factor=0.5, min_rate=0.25,
                                            rollback=False), 1.0, PATIENCE_LOSSES)
    assert rates == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert actions == [None] * 9 + ["stop"]


def test_patience_annealer_tol_and_two_bests():
    # 0.96 is the lowest loss (what a rollback restores) but not an improvement
    # by more than tol=0.05 over 1.0, so patience keeps counting against 1.0.
    run = PatienceAnnealer(patience=2, factor=0.5, tol=0.05).start(1.0, 10)
    assert run.epoch_end(1, 1.0) is None
    assert run.epoch_end(2, 0.96) is None
    assert run.epoch_end(3, 0.97) == "rollback"
    assert (run.best_epoch, run.best_loss, run.rate) == (2, 0.96, 0.5)
    assert run.epoch_end(4, 0.94) is None  # < 1.0 - 0.05: improves, count restarts
    assert run.epoch_end(5, 0.90) is None  # not < 0.94 - 0.05: first bad epoch
    assert run.epoch_end(6, 0.90) == "rollback"
    # a tie is no new best: the earlier epoch's weights are restored
    assert (run.best_epoch, run.rate) == (5, 0.25)


def test_patience_annealer_stops_at_first_step_below_min_rate():
    rates, actions = drive(PatienceAnnealer(patience=1), 1e-6, [1.0, 1.0])
    assert rates == [1e-6, 1e-6]
    assert actions == [None, "stop"]


def drive_both(schedule, learning_rate, losses):
    """As drive, for (training loss, validation loss) pairs: rates, actions."""
    run = schedule.start(learning_rate, len(losses))
    rates, actions = [], []
    for epoch, (loss, val_loss) in enumerate(losses, start=1):
        rates.append(run.rate)
        actions.append(run.epoch_end(epoch, loss, val_loss))
        if actions[-1] == "stop":
            break
    return run, rates, actions


# Training loss falls throughout; validation loss falls, then rises (overfitting).
OVERFIT = [(1.0, 1.0), (0.8, 0.9), (0.7, 0.95), (0.6, 0.97), (0.55, 0.99),
           (0.5, 0.99), (0.45, 1.0)]


def test_patience_annealer_auto_watches_validation_when_given():
    # As monitor='validation': epochs 3 and 4 do not improve on 0.9.
    for monitor in ("auto", "validation"):
        run, rates, actions = drive_both(PatienceAnnealer(patience=2, monitor=monitor),
                                         1.0, OVERFIT)
        assert rates == [1, 1, 1, 1, 0.5, 0.5, 0.25]
        assert actions == [None, None, None, "rollback", None, "rollback", None]
        # rollback=True restores the lowest validation loss: epoch 2.
        assert (run.best_epoch, run.best_loss) == (2, 0.9)


def test_patience_annealer_monitor_train_ignores_validation():
    run, rates, actions = drive_both(PatienceAnnealer(patience=2, monitor="train"),
                                     1.0, OVERFIT)
    assert rates == [1.0] * 7
    assert actions == [None] * 7
    # Without monitor='train' a training loss alone is what 'auto' watches.
    assert drive(PatienceAnnealer(patience=2), 1.0, [t for t, _ in OVERFIT]) == (
        [1.0] * 7, [None] * 7)


def test_patience_annealer_monitor_both_either_resets():
    losses = [(1.0, 1.0), (0.9, 1.1), (0.95, 1.05), (0.92, 0.95),  # 2: train, 4: val
              (0.93, 0.97), (0.91, 0.96), (0.8, 0.99), (0.85, 0.98)]
    run, rates, actions = drive_both(PatienceAnnealer(patience=2, monitor="both"),
                                     1.0, losses)
    # Epoch 3 improves neither, epoch 4 the validation loss (0.95 < 1.0);
    # epochs 5 and 6 neither (0.93, 0.91 > 0.9; 0.97, 0.96 > 0.95): anneal.
    assert rates == [1, 1, 1, 1, 1, 1, 0.5, 0.5]
    assert actions == [None] * 5 + ["rollback", None, None]
    # Each alone would have annealed earlier.
    assert drive_both(PatienceAnnealer(patience=2, monitor="train"), 1.0,
                      losses)[2][:4] == [None, None, None, "rollback"]
    assert drive_both(PatienceAnnealer(patience=2, monitor="validation"), 1.0,
                      losses)[2][:3] == [None, None, "rollback"]


def test_patience_annealer_relative_tol():
    # From 2.0, tol=0.1 needs a loss below 1.9 (abs) or below 1.8 (rel).
    losses = [2.0, 1.85, 1.85]
    assert drive(PatienceAnnealer(patience=2, tol=0.1), 1.0, losses)[1] == [None] * 3
    assert drive(PatienceAnnealer(patience=2, tol=0.1, tol_mode="rel"), 1.0,
                 losses)[1] == [None, None, "rollback"]
    # The bound itself is no improvement: 1.0 * (1 - 0.1) == 0.9 exactly.
    run = PatienceAnnealer(patience=1, tol=0.1, tol_mode="rel").start(1.0, 5)
    assert run.epoch_end(1, 1.0) is None
    assert run.epoch_end(2, 0.9) == "rollback"
    assert run.epoch_end(3, 0.8999) is None
    assert run.rate == 0.5
    # 'rel' in monitor='both' applies to each loss against its own reference.
    run, rates, actions = drive_both(
        PatienceAnnealer(patience=1, tol=0.5, tol_mode="rel", monitor="both"), 1.0,
        [(4.0, 8.0), (1.9, 5.0), (1.0, 3.9), (0.96, 3.0)])
    assert actions == [None, None, None, "rollback"]


def test_patience_annealer_rollback_targets():
    # Training loss falls throughout; validation loss lowest at epoch 2.
    kinds = {True: "rollback", "validation": "rollback", "train": "rollback_train",
             False: None}
    for rollback, action in kinds.items():
        run, _, actions = drive_both(PatienceAnnealer(patience=2, rollback=rollback),
                                     1.0, OVERFIT[:4])
        assert actions == [None, None, None, action]
        assert (run.best_epoch, run.best_train_epoch) == (2, 4)
        assert run.needs_train_best == (rollback == "train")
        assert run.needs_validation == (rollback == "validation")
    # Without a validation loss the lowest training loss is the monitored one.
    assert drive(PatienceAnnealer(patience=1, rollback="train"), 1.0,
                 [1.0, 1.0])[1] == [None, "rollback"]


def test_patience_annealer_needs_validation():
    for params in (dict(monitor="validation"), dict(monitor="both"),
                   dict(rollback="validation")):
        spec = PatienceAnnealer(**params)
        run = spec.start(1.0, 5)
        assert run.needs_validation
        assert LinearWarmup(epochs=1, then=spec).start(1.0, 5).needs_validation
        with pytest.raises(ValueError, match="needs the validation loss of every "
                           "epoch, but epoch 1 was reported without one"):
            run.epoch_end(1, 0.5)
    for params in (dict(), dict(monitor="train"), dict(rollback="train")):
        assert not PatienceAnnealer(**params).start(1.0, 5).needs_validation
    assert not LinearWarmup(then=PatienceAnnealer()).start(1.0, 5).needs_train_best
    assert LinearWarmup(then=PatienceAnnealer(rollback="train")).start(
        1.0, 5).needs_train_best


def test_warmup_passes_both_losses_on():
    then = PatienceAnnealer(patience=1, monitor="validation", rollback="train")
    run, rates, actions = drive_both(LinearWarmup(epochs=1, then=then), 1.0,
                                     [(9.0, 9.0)] + OVERFIT[:3])
    assert actions == [None, None, None, "rollback_train"]
    assert rates == [1.0, 1.0, 1.0, 1.0]
    assert run.rate == 0.5


def test_patience_run_pickled_before_the_new_options_carries_on():
    # A run of the earlier class had no monitor, tol_mode or training best.
    run = PatienceAnnealer(patience=2, tol=0.05).start(1.0, 10)
    run.epoch_end(1, 1.0)
    run.epoch_end(2, 0.96)
    for name in ("_monitor", "_relative", "best_train_loss", "best_train_epoch",
                 "_train_reference", "_val_reference"):
        del run.__dict__[name]
    old = pickle.loads(pickle.dumps(run))
    assert old.epoch_end(3, 0.97) == "rollback"
    assert (old.best_epoch, old.rate, old.needs_validation) == (2, 0.5, False)


# -- reduce on plateau ------------------------------------------------------------

def test_plateau_patience():
    rates, actions = drive(ReduceOnPlateau(factor=0.5, patience=2), 1.0, [1.0] * 8)
    assert rates == [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert actions == [None] * 8


def test_plateau_cooldown():
    rates, actions = drive(ReduceOnPlateau(factor=0.5, patience=2, cooldown=2), 1.0,
                           [1.0] * 8)
    # reduced after epoch 3; epochs 4 and 5 are cooldown; 6 and 7 count again
    assert rates == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert actions == [None] * 8


def test_plateau_improvement_during_cooldown_moves_best():
    # Epoch 4 improves during the cooldown; epochs 5 and 6 are then measured
    # against 0.5, not 1.0.
    rates, _ = drive(ReduceOnPlateau(factor=0.5, patience=2, cooldown=1, tol=0.0), 1.0,
                     [1.0, 1.0, 1.0, 0.5, 0.75, 0.75, 0.75])
    assert rates == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_plateau_tol_and_reference():
    # Decreases of 0.125 are below tol=0.25, but the reference only moves on an
    # improvement, so they add up: 1.625 < 2.0 - 0.25 improves.
    spec = ReduceOnPlateau(factor=0.5, patience=3, tol=0.25)
    rates, _ = drive(spec, 1.0, [2.0, 1.875, 1.75, 1.625, 1.625, 1.625, 1.625, 1.0])
    assert rates == [1, 1, 1, 1, 1, 1, 1, 0.5]
    rates, _ = drive(ReduceOnPlateau(factor=0.5, patience=2, tol=0.25), 1.0,
                     [2.0, 1.875, 1.75, 1.625])
    assert rates == [1, 1, 1, 0.5]


def test_plateau_floor_and_never_stops():
    rates, actions = drive(ReduceOnPlateau(factor=0.1, patience=1, min_rate=0.05), 1.0,
                           [1.0] * 5)
    assert rates == pytest.approx([1.0, 1.0, 0.1, 0.05, 0.05], rel=1e-15)
    assert rates[3:] == [0.05, 0.05]
    assert actions == [None] * 5


# -- linear warm-up -----------------------------------------------------------------

def test_warmup_then_constant():
    rates, actions = drive(LinearWarmup(epochs=4), 2.0, [1.0] * 6)
    assert rates == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert actions == [None] * 6
    rates, _ = drive(LinearWarmup(epochs=3, then="constant"), 0.3, [1.0] * 4)
    assert rates == [0.3 * 1 / 3, 0.3 * 2 / 3, 0.3, 0.3]


def test_warmup_hands_over_with_epochs_counted_from_its_end():
    then = EpochSchedule({1: 1.0, 3: 0.1})
    rates, _ = drive(LinearWarmup(epochs=2, then=then), 4.0, [1.0] * 6)
    assert rates == [2.0, 4.0, 1.0, 1.0, 0.1, 0.1]


def test_warmup_then_cosine_uses_remaining_epochs():
    rates, _ = drive(LinearWarmup(epochs=2, then="cosine"), 1.0, [1.0] * 6)
    T = 4
    expected = [0.5, 1.0] + [(1 + math.cos(math.pi * (k - 1) / T)) / 2
                             for k in range(1, T + 1)]
    assert rates == pytest.approx(expected, rel=1e-13, abs=1e-15)


def test_warmup_then_patience_sees_only_later_losses():
    # Rising losses during the warm-up would trip patience=1; they are not
    # reported to `then`, whose actions pass through unchanged.
    then = PatienceAnnealer(patience=1, factor=0.5, min_rate=0.4)
    rates, actions = drive(LinearWarmup(epochs=2, then=then), 1.0,
                           [5.0, 6.0, 1.0, 2.0, 3.0, 4.0])
    assert rates == [0.5, 1.0, 1.0, 1.0, 0.5]
    assert actions == [None, None, None, "rollback", "stop"]


def test_warmup_longer_than_fit():
    rates, _ = drive(LinearWarmup(epochs=5, then=Cosine()), 1.0, [1.0] * 3)
    assert rates == [0.2, 0.4, 0.6]
    assert rates == [1.0 * e / 5 for e in (1, 2, 3)]


# -- spec vs run state ----------------------------------------------------------------

ALL_SPECS = [
    Constant(),
    InverseTimeDecay(decay=0.5, min_rate=0.01),
    EpochSchedule({1: 0.5, 4: 0.05}),
    PatienceAnnealer(patience=2, factor=0.5, min_rate=0.01, rollback=False, tol=0.01),
    ReduceOnPlateau(factor=0.5, patience=2, min_rate=0.01, cooldown=1, tol=0.01),
    Cosine(min_rate=0.01, epochs=6),
    LinearWarmup(epochs=3, then=PatienceAnnealer(patience=1, min_rate=0.01)),
    PatienceAnnealer(patience=1, min_rate=0.01, rollback="train", tol=0.05,
                     monitor="train", tol_mode="rel"),
]
SPEC_IDS = [type(s).__name__ for s in ALL_SPECS]
SPEC_IDS[-1] = "PatienceAnnealerRelative"
SCRIPT = [1.0, 0.8, 0.9, 0.9, 0.7, 0.75, 0.75, 0.75, 0.6, 0.6]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=SPEC_IDS)
def test_run_leaves_spec_unchanged(spec):
    before = spec_params(spec)
    attributes = set(vars(spec))
    cloned = clone(spec)
    assert spec_params(cloned) == before
    drive(spec, 1.0, SCRIPT)
    assert spec_params(spec) == before
    assert set(vars(spec)) == attributes  # no state written to the spec
    assert spec_params(cloned) == before


@pytest.mark.parametrize("spec", ALL_SPECS, ids=SPEC_IDS)
def test_runs_are_independent(spec):
    alone = drive(spec, 1.0, SCRIPT)
    first, second = spec.start(1.0, len(SCRIPT)), spec.start(1.0, len(SCRIPT))
    assert first is not second
    rates = []
    for epoch, loss in enumerate(SCRIPT, start=1):
        rates.append(first.rate)
        # Advance the other run with different losses in between.
        second.epoch_end(epoch, 10.0 - epoch)
        if first.epoch_end(epoch, loss) == "stop":
            break
    assert rates == alone[0]
    # A run pickled half-way carries on where it was.
    run = spec.start(1.0, len(SCRIPT))
    for epoch, loss in enumerate(SCRIPT[:5], start=1):
        run.epoch_end(epoch, loss)
    copy = pickle.loads(pickle.dumps(run))
    for epoch, loss in enumerate(SCRIPT[5:], start=6):
        assert copy.epoch_end(epoch, loss) == run.epoch_end(epoch, loss)
        assert copy.rate == run.rate


def test_clone_copies_nested_schedule():
    spec = LinearWarmup(epochs=2, then=PatienceAnnealer(patience=3))
    cloned = clone(spec)
    assert cloned.then is not spec.then
    assert spec_params(cloned) == spec_params(spec)
    cloned.set_params(then__patience=7)
    assert spec.then.patience == 3


def test_warmup_nested_params():
    spec = LinearWarmup(epochs=2, then=ReduceOnPlateau(factor=0.5, patience=1))
    params = spec.get_params(deep=True)
    assert params["then__factor"] == 0.5
    assert params["then__patience"] == 1
    assert params["epochs"] == 2
    assert spec.set_params(then__factor=0.25, epochs=1) is spec
    assert spec.then.factor == 0.25
    rates, _ = drive(spec, 1.0, [1.0] * 4)
    assert rates == [1.0, 1.0, 1.0, 0.25]  # 1 warm-up epoch at base, then plateau
    spec.set_params(then__patience=0)
    with pytest.raises(InvalidParameterError, match="patience"):
        spec.start(1.0, 4)


def test_grid_search_over_nested_schedule_parameter():
    class ScriptedFit(BaseEstimator):
        """Runs the schedule over flat losses; scores the final rate."""

        def __init__(self, lr_schedule=None):
            self.lr_schedule = lr_schedule

        def fit(self, X, y=None):
            run = resolve_schedule(self.lr_schedule).start(1.0, 6)
            for epoch in range(1, 7):
                run.epoch_end(epoch, 1.0)
            self.final_rate_ = run.rate
            return self

        def score(self, X, y=None):
            return -self.final_rate_

    spec = LinearWarmup(epochs=1, then=ReduceOnPlateau(factor=0.5, patience=2))
    search = GridSearchCV(ScriptedFit(lr_schedule=spec),
                          {"lr_schedule__then__factor": [0.25, 0.5]}, cv=2)
    search.fit(np.zeros((4, 1)))
    # 5 epochs after the warm-up at patience 2: two reductions.
    assert search.cv_results_["mean_test_score"].tolist() == [-0.25 ** 2, -0.5 ** 2]
    assert search.best_params_ == {"lr_schedule__then__factor": 0.25}
    assert search.best_estimator_.lr_schedule.then.factor == 0.25
    assert spec.then.factor == 0.5  # the user's spec is untouched


# -- validation ---------------------------------------------------------------------

@pytest.mark.parametrize("spec, name", [
    (InverseTimeDecay(decay=-0.1), "decay"),
    (InverseTimeDecay(min_rate=-1.0), "min_rate"),
    (InverseTimeDecay(decay=float("nan")), "decay"),
    (EpochSchedule([(1, 0.1)]), "schedule"),
    (PatienceAnnealer(patience=0), "patience"),
    (PatienceAnnealer(patience=1.5), "patience"),
    (PatienceAnnealer(factor=1.0), "factor"),
    (PatienceAnnealer(factor=0.0), "factor"),
    (PatienceAnnealer(rollback="yes"), "rollback"),
    (PatienceAnnealer(tol=-1e-3), "tol"),
    (PatienceAnnealer(rollback="best"), "rollback"),
    (PatienceAnnealer(monitor="val_loss"), "monitor"),
    (PatienceAnnealer(monitor=None), "monitor"),
    (PatienceAnnealer(tol_mode="relative"), "tol_mode"),
    (ReduceOnPlateau(factor=1.5), "factor"),
    (ReduceOnPlateau(cooldown=-1), "cooldown"),
    (ReduceOnPlateau(patience=0), "patience"),
    (Cosine(epochs=0), "epochs"),
    (Cosine(min_rate=float("inf")), "min_rate"),
    (LinearWarmup(epochs=0), "epochs"),
    (LinearWarmup(then="warmup"), "then"),
    (LinearWarmup(then=SGD()), "then"),
    (LinearWarmup(then=Cosine(epochs=0)), "epochs"),
])
def test_invalid_parameters(spec, name):
    with pytest.raises(InvalidParameterError, match=name):
        spec.start(1.0, 10)
    with pytest.raises(InvalidParameterError, match=name):
        resolve_schedule(spec)


@pytest.mark.parametrize("tol", [1.0, 2.5])
def test_relative_tol_below_one(tol):
    spec = PatienceAnnealer(tol=tol, tol_mode="rel")
    message = rf"tol_mode='rel', tol is a fraction .* must be < 1, got tol={tol}"
    with pytest.raises(ValueError, match=message):
        spec.start(1.0, 10)
    with pytest.raises(ValueError, match=message):
        LinearWarmup(then=spec).start(1.0, 10)
    PatienceAnnealer(tol=tol).start(1.0, 10)  # an absolute tol may be any size


@pytest.mark.parametrize("table, message", [
    ({}, "empty"),
    ({0: 0.1}, "keys must be epochs"),
    ({1.5: 0.1}, "keys must be epochs"),
    ({True: 0.1}, "keys must be epochs"),
    ({"1": 0.1}, "keys must be epochs"),
    ({2: 0.0}, "epoch 2 must be a finite float > 0"),
    ({2: -0.1}, "epoch 2 must be a finite float > 0"),
    ({2: float("nan")}, "epoch 2 must be a finite float > 0"),
    ({2: float("inf")}, "epoch 2 must be a finite float > 0"),
    ({2: "0.1"}, "epoch 2 must be a finite float > 0"),
])
def test_epoch_schedule_validation(table, message):
    with pytest.raises(ValueError, match=message):
        EpochSchedule(table).start(1.0, 10)


@pytest.mark.parametrize("spec", [
    InverseTimeDecay(min_rate=0.5), PatienceAnnealer(min_rate=0.5),
    ReduceOnPlateau(min_rate=0.5), Cosine(min_rate=0.5),
    LinearWarmup(then=Cosine(min_rate=0.5)),
], ids=lambda s: type(s).__name__)
def test_min_rate_above_learning_rate(spec):
    with pytest.raises(ValueError, match="min_rate=0.5 is larger than the learning rate"):
        spec.start(0.4, 10)
    spec.start(0.5, 10)  # equal is allowed


@pytest.mark.parametrize("learning_rate, max_epochs, message", [
    (0.0, 10, "learning_rate"), (-1.0, 10, "learning_rate"),
    (float("nan"), 10, "learning_rate"), (float("inf"), 10, "learning_rate"),
    ("0.1", 10, "learning_rate"), (0.1, 0, "max_epochs"), (0.1, 2.5, "max_epochs"),
    (0.1, True, "max_epochs"),
])
def test_start_arguments(learning_rate, max_epochs, message):
    with pytest.raises(ValueError, match=message):
        Constant().start(learning_rate, max_epochs)


def test_numpy_scalars_accepted():
    run = Cosine().start(np.float32(0.5), np.int64(4))
    assert type(run.rate) is float and run.rate == 0.5
    assert run.epoch_end(np.int64(1), np.float32(0.25)) is None
    assert run.epoch == 1 and type(run.epoch) is int


def test_epochs_reported_in_order():
    run = ReduceOnPlateau().start(0.1, 10)
    with pytest.raises(ValueError, match="expected epoch 1 .* got 0"):
        run.epoch_end(0, 1.0)
    run.epoch_end(1, 1.0)
    with pytest.raises(ValueError, match="expected epoch 2 .* got 1"):
        run.epoch_end(1, 1.0)
    with pytest.raises(ValueError, match="expected epoch 2 .* got 3"):
        run.epoch_end(3, 1.0)
    with pytest.raises(TypeError, match="epoch must be an int"):
        run.epoch_end(2.0, 1.0)


# -- resolver -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, cls, params", [
    (None, Constant, {}),
    ("constant", Constant, {}),
    ("inverse_time", InverseTimeDecay, dict(decay=0.01, min_rate=0.0)),
    ("patience", PatienceAnnealer,
     dict(patience=5, factor=0.5, min_rate=1e-6, rollback=True, tol=0.0,
          monitor="auto", tol_mode="abs")),
    ("plateau", ReduceOnPlateau,
     dict(factor=0.1, patience=10, min_rate=0.0, cooldown=0, tol=1e-4)),
    ("cosine", Cosine, dict(min_rate=0.0, epochs=None)),
])
def test_resolve_names(value, cls, params):
    spec = resolve_schedule(value)
    assert type(spec) is cls
    assert spec.get_params() == params


def test_resolve_instance_is_returned_unchanged():
    spec = LinearWarmup(epochs=2, then="plateau")
    before = spec_params(spec)
    assert resolve_schedule(spec) is spec
    assert spec_params(spec) == before
    run = spec.start(1.0, 5)
    assert isinstance(run, ScheduleRun)
    assert (run.rate, run.epoch) == (0.5, 0)


def test_resolve_errors_list_the_options():
    names = "['constant', 'inverse_time', 'patience', 'plateau', 'cosine']"
    with pytest.raises(ValueError, match="Unknown learning-rate schedule 'step'") as info:
        resolve_schedule("step")
    assert names in str(info.value)
    assert "EpochSchedule" in str(info.value) and "LinearWarmup" in str(info.value)
    for bad in (0.1, SGD(), PatienceAnnealer, {1: 0.1}):
        with pytest.raises(TypeError, match="must be None, one of") as info:
            resolve_schedule(bad)
        assert names in str(info.value)


def test_base_class_is_abstract():
    class Unfinished(LearningRateSchedule):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Unfinished()


def test_docstring_examples():
    result = doctest.testmod(schedules, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5
    assert result.failed == 0
