"""Learning-rate schedules as clone-safe specs, with their run state kept apart.

A schedule spec (:class:`Constant`, :class:`InverseTimeDecay`,
:class:`EpochSchedule`, :class:`PatienceAnnealer`, :class:`ReduceOnPlateau`,
:class:`Cosine`, :class:`LinearWarmup`) holds hyper-parameters only, so it can
be cloned, pickled and searched by name (``lr_schedule__factor`` in
``GridSearchCV``). A fit calls :meth:`LearningRateSchedule.start` once, which
validates the spec and returns a fresh :class:`ScheduleRun`; the run holds
everything that changes during training (the current rate, counters, the best
loss) and the spec is never written to.

The estimator's loop is::

    run = schedule.start(learning_rate, max_epochs)
    for epoch in range(1, max_epochs + 1):
        train_one_epoch(rate=run.rate)
        action = run.epoch_end(epoch, train_loss, val_loss)  # val_loss may be None
        if action == "rollback":
            restore_best_weights()  # of the monitored loss: val_loss if given
        elif action == "rollback_train":
            restore_best_training_weights()
        elif action == "stop":
            break

The annealers descend from pydnn's ``LearningRateDecay``,
``LearningRateSchedule`` and its patience-based annealer (which could roll the
network back to its best weights); :class:`ReduceOnPlateau`, :class:`Cosine`
and :class:`LinearWarmup` follow Keras and PyTorch. Epochs count from 1
everywhere.
"""
import math
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from numbers import Integral, Real

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "Constant",
    "Cosine",
    "EpochSchedule",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "LinearWarmup",
    "PatienceAnnealer",
    "ReduceOnPlateau",
    "ScheduleRun",
    "resolve_schedule",
]

# Names accepted by resolve_schedule (and by LinearWarmup's ``then``); the
# registry itself is filled in below, once the classes exist.
_SCHEDULE_NAMES = ("constant", "inverse_time", "patience", "plateau", "cosine")


class ScheduleRun:
    """The state of one schedule over one fit.

    Created by :meth:`LearningRateSchedule.start`; never by the user.

    Parameters
    ----------
    rate : float
        Learning rate of the first epoch.

    Attributes
    ----------
    rate : float
        Learning rate to use for the next epoch (read it before each epoch).
    epoch : int
        Number of epochs reported so far through :meth:`epoch_end`.
    needs_validation : bool
        Whether the run needs a validation loss every epoch (the estimator
        raises a ``ValueError`` before training when the fit has none).
    needs_train_best : bool
        Whether the run may return ``"rollback_train"`` (the estimator then
        keeps the weights of the lowest training loss besides those of the
        lowest validation loss).
    """

    def __init__(self, rate):
        self.rate = float(rate)
        self.epoch = 0

    # Class attributes, so runs pickled before they existed still answer.
    needs_validation = False
    needs_train_best = False

    def epoch_end(self, epoch, loss, val_loss=None):
        """Report the losses of the epoch just finished.

        Parameters
        ----------
        epoch : int
            The epoch just finished, counting from 1; epochs must be reported
            in order, each once.
        loss : float
            The training loss of that epoch.
        val_loss : float or None, default=None
            The validation loss of that epoch, None when the fit holds out no
            validation set. A schedule that watches one loss (all but
            :class:`PatienceAnnealer` with ``monitor`` other than ``'auto'``)
            watches ``val_loss`` when it is given, else ``loss``: the
            *monitored* loss.

        Returns
        -------
        action : {None, "rollback", "rollback_train", "stop"}
            ``None``: carry on at :attr:`rate`. ``"rollback"``: restore the
            weights of the epoch with the lowest monitored loss so far (the
            earliest of equal ones), then continue at the new :attr:`rate`.
            ``"rollback_train"``: the same with the lowest training loss
            (only when ``val_loss`` is given and the run's
            :attr:`needs_train_best`). ``"stop"``: end training.
        """
        # An out-of-order epoch means the caller and the run disagree about
        # where training is; every epoch-based formula would then be wrong.
        if isinstance(epoch, bool) or not isinstance(epoch, Integral):
            raise TypeError(f"epoch must be an int, got {epoch!r}.")
        if epoch != self.epoch + 1:
            raise ValueError(
                f"{type(self).__name__}.epoch_end expected epoch {self.epoch + 1} "
                f"(epochs count from 1 and are reported in order), got {epoch}."
            )
        self.epoch = int(epoch)
        return self._report(self.epoch, float(loss),
                            None if val_loss is None else float(val_loss))

    def _report(self, epoch, loss, val_loss):
        """The action after ``epoch``, given both losses; the schedules that
        watch one loss get the monitored one through :meth:`_advance`."""
        return self._advance(epoch, loss if val_loss is None else val_loss)

    def _advance(self, epoch, loss):
        """Update :attr:`rate` after ``epoch``; return the action (constant here)."""
        return None

    def __repr__(self):
        return f"{type(self).__name__}(epoch={self.epoch}, rate={self.rate!r})"


class LearningRateSchedule(BaseEstimator, metaclass=ABCMeta):
    """Base class of learning-rate schedule specs.

    Subclasses declare ``_parameter_constraints`` and implement ``_start``.
    """

    _parameter_constraints: dict = {}

    def validate(self):
        """Check the hyper-parameters; raise ``InvalidParameterError`` if wrong."""
        validate_parameter_constraints(
            self._parameter_constraints, self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def start(self, learning_rate, max_epochs):
        """Validate the parameters and start a run.

        Parameters
        ----------
        learning_rate : float > 0
            The estimator's learning rate (the base rate of the schedule).
        max_epochs : int >= 1
            The most epochs this fit will run.

        Returns
        -------
        run : ScheduleRun
            Fresh run state; the spec itself is left unchanged.
        """
        if (isinstance(learning_rate, bool) or not isinstance(learning_rate, Real)
                or not math.isfinite(learning_rate) or learning_rate <= 0):
            raise ValueError(
                f"learning_rate must be a finite float > 0, got {learning_rate!r}."
            )
        if (isinstance(max_epochs, bool) or not isinstance(max_epochs, Integral)
                or max_epochs < 1):
            raise ValueError(f"max_epochs must be an int >= 1, got {max_epochs!r}.")
        self.validate()
        return self._start(float(learning_rate), int(max_epochs))

    @abstractmethod
    def _start(self, learning_rate, max_epochs):
        """The run of this schedule for a validated rate and epoch count."""

    def _check_min_rate(self, learning_rate):
        # A floor above the base rate would make a decaying schedule rise.
        if self.min_rate > learning_rate:
            raise ValueError(
                f"{type(self).__name__}: min_rate={self.min_rate!r} is larger than "
                f"the learning rate {learning_rate!r}; lower min_rate or raise "
                "learning_rate."
            )


# -- Constant -----------------------------------------------------------------

class Constant(LearningRateSchedule):
    """The base learning rate for every epoch.

    Examples
    --------
    >>> run = Constant().start(0.01, max_epochs=3)
    >>> run.rate, run.epoch_end(1, 0.5), run.rate
    (0.01, None, 0.01)
    """

    def __init__(self):
        pass

    def _start(self, learning_rate, max_epochs):
        return ScheduleRun(learning_rate)


# -- InverseTimeDecay -----------------------------------------------------------

class InverseTimeDecay(LearningRateSchedule):
    """Inverse-time decay with a floor (pydnn's ``LearningRateDecay``).

    Epoch ``e`` (counting from 1) trains at::

        rate(e) = max(min_rate, learning_rate / (1 + decay * (e - 1)))

    so epoch 1 uses the base rate, epoch 2 ``learning_rate / (1 + decay)``,
    and so on.

    Parameters
    ----------
    decay : float >= 0, default=0.01
        Decay per epoch; 0 keeps the rate constant.
    min_rate : float >= 0, default=0.0
        Floor of the rate; must not exceed the learning rate.

    Notes
    -----
    pydnn stopped decaying at the last rate above its minimum; here the rate
    is clipped to ``min_rate`` exactly, so the floor is the value given.

    Examples
    --------
    >>> run = InverseTimeDecay(decay=1.0).start(1.0, max_epochs=3)
    >>> rates = [run.rate]
    >>> for e in (1, 2):
    ...     _ = run.epoch_end(e, 0.0)
    ...     rates.append(run.rate)
    >>> rates
    [1.0, 0.5, 0.3333333333333333]
    """

    _parameter_constraints = {
        "decay": [Interval(Real, 0, None, closed="left")],
        "min_rate": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, decay=0.01, min_rate=0.0):
        self.decay = decay
        self.min_rate = min_rate

    def _start(self, learning_rate, max_epochs):
        self._check_min_rate(learning_rate)
        return _InverseTimeRun(learning_rate, float(self.decay), float(self.min_rate))


class _InverseTimeRun(ScheduleRun):
    def __init__(self, base, decay, min_rate):
        super().__init__(base)
        self._base, self._decay, self._min_rate = base, decay, min_rate

    def _advance(self, epoch, loss):
        # The next epoch is epoch + 1, hence (e - 1) = epoch in the formula.
        self.rate = max(self._min_rate, self._base / (1.0 + self._decay * epoch))
        return None


# -- EpochSchedule ------------------------------------------------------------

class EpochSchedule(LearningRateSchedule):
    """An explicit ``{epoch: rate}`` table (pydnn's ``LearningRateSchedule``).

    Each entry sets the rate from its epoch on, until the next entry. Epochs
    before the first entry use the estimator's learning rate, so without an
    entry for epoch 1 the schedule starts at the base rate.

    Parameters
    ----------
    schedule : dict of int -> float
        Keys are epochs (int >= 1, counting from 1), values are learning rates
        (finite floats > 0). Entries past the fit's last epoch are never used.

    Notes
    -----
    pydnn counted its epochs from 0 and required an entry for the first epoch;
    here ``{1: 0.1, 201: 0.01}`` is pydnn's ``((0, .1), (200, .01))``.

    Examples
    --------
    >>> run = EpochSchedule({3: 0.01}).start(0.1, max_epochs=4)
    >>> rates = [run.rate]
    >>> for e in (1, 2, 3):
    ...     _ = run.epoch_end(e, 0.0)
    ...     rates.append(run.rate)
    >>> rates
    [0.1, 0.1, 0.01, 0.01]
    """

    _parameter_constraints = {"schedule": [Mapping]}

    def __init__(self, schedule):
        self.schedule = schedule

    def validate(self):
        super().validate()
        if len(self.schedule) == 0:
            raise ValueError(
                "EpochSchedule: schedule is empty; give at least one {epoch: rate} "
                "entry (or use Constant())."
            )
        for epoch, rate in self.schedule.items():
            if (isinstance(epoch, bool) or not isinstance(epoch, Integral)
                    or epoch < 1):
                raise ValueError(
                    f"EpochSchedule: keys must be epochs (int >= 1, counting from 1), "
                    f"got {epoch!r}."
                )
            if (isinstance(rate, bool) or not isinstance(rate, Real)
                    or not math.isfinite(rate) or rate <= 0):
                raise ValueError(
                    f"EpochSchedule: the rate for epoch {epoch} must be a finite "
                    f"float > 0, got {rate!r}."
                )

    def _start(self, learning_rate, max_epochs):
        # A sorted private copy: the user's dict may be changed after start().
        table = {int(e): float(r) for e, r in self.schedule.items()}
        return _EpochRun(learning_rate, table)


class _EpochRun(ScheduleRun):
    def __init__(self, base, table):
        super().__init__(table.get(1, base))
        self._table = table

    def _advance(self, epoch, loss):
        # Keep the current rate unless an entry starts at the next epoch.
        self.rate = self._table.get(epoch + 1, self.rate)
        return None


# -- PatienceAnnealer -----------------------------------------------------------

class PatienceAnnealer(LearningRateSchedule):
    """Anneal when the loss stops improving; roll back; stop at a minimum rate.

    pydnn's patience-based annealer. An epoch *improves* a watched loss when
    that loss is lower than ``reference - tol`` (``tol_mode='abs'``) or
    ``reference * (1 - tol)`` (``tol_mode='rel'``), where ``reference`` is
    the loss of the last epoch that improved it (``inf`` at first, so epoch
    1 always improves). Which losses are watched is ``monitor``'s choice;
    with ``'both'`` an epoch that improves either one resets the count.
    After ``patience`` consecutive epochs without improvement:

    - if ``rate * factor < min_rate``, :meth:`ScheduleRun.epoch_end` returns
      ``"stop"`` (the rate is left as it was);
    - otherwise the rate becomes ``rate * factor``, the count starts again,
      and the estimator rolls the network back as ``rollback`` says (to the
      weights of the epoch with the lowest validation or training loss so
      far, the earliest of equal ones), then continues at the lower rate.

    Parameters
    ----------
    patience : int >= 1, default=5
        Epochs without improvement before the rate is lowered.
    factor : float in (0, 1), default=0.5
        Multiplier of the rate at each annealing step.
    min_rate : float >= 0, default=1e-6
        Training stops when the next annealing step would go below it; must not
        exceed the learning rate.
    rollback : bool or {'train', 'validation'}, default=True
        What to restore at each annealing step. True: the weights of the
        lowest validation loss when the fit holds out a validation set
        (``early_stopping=True``), else of the lowest training loss.
        ``'train'``: of the lowest training loss, always. ``'validation'``:
        of the lowest validation loss (the fit must have a validation set).
        False: keep the current weights.
    tol : float >= 0, default=0.0
        Smallest decrease of a watched loss that counts as an improvement:
        absolute, or a fraction of the reference (then < 1).
    monitor : {'auto', 'train', 'validation', 'both'}, default='auto'
        The losses watched. ``'auto'``: the validation loss when the fit
        holds out a validation set, else the training loss (the choice of
        every other schedule). ``'train'``: the training loss, even with a
        validation set. ``'validation'`` and ``'both'`` need a validation
        set (``early_stopping=True`` in ``fit``; ``partial_fit`` holds out
        none): a fit without one raises a ``ValueError`` before training.
    tol_mode : {'abs', 'rel'}, default='abs'
        Whether ``tol`` is a loss difference or a fraction of the reference
        loss (as PyTorch's ``ReduceLROnPlateau(threshold_mode=...)``; a
        fraction suits losses that are never negative, as skdl's are).

    Notes
    -----
    pydnn divided the rate by 10, judged improvement by a ratio of the best
    loss, watched the training and the validation loss and waited
    ``patience + 1`` epochs; here the factor is a parameter, ``tol`` is
    absolute unless ``tol_mode='rel'``, one loss is watched unless
    ``monitor='both'``, and ``patience`` epochs is exactly ``patience`` (as
    in Keras). The run's ``best_epoch`` and ``best_loss`` name the epoch a
    ``"rollback"`` refers to (the strictly lowest monitored loss reported to
    the run: the validation loss when given), ``best_train_epoch`` and
    ``best_train_loss`` the one of a ``"rollback_train"``.

    Examples
    --------
    Both losses watched, improvements of more than 1%: epoch 2 improves the
    training loss only; epoch 3 lowers it by less than 1% (no improvement,
    yet the lowest training loss so far) and epoch 4 improves neither, so
    the rate halves after epoch 4 and the weights of epoch 3 return.

    >>> spec = PatienceAnnealer(patience=2, monitor="both", tol=0.01,
    ...                         tol_mode="rel", rollback="train")
    >>> run = spec.start(0.1, max_epochs=10)
    >>> run.epoch_end(1, 1.0, val_loss=1.0), run.epoch_end(2, 0.9, val_loss=1.2)
    (None, None)
    >>> run.epoch_end(3, 0.895, val_loss=1.0), run.epoch_end(4, 0.95, val_loss=0.995)
    (None, 'rollback_train')
    >>> run.rate, run.best_train_epoch
    (0.05, 3)
    """

    _parameter_constraints = {
        "patience": [Interval(Integral, 1, None, closed="left")],
        "factor": [Interval(Real, 0, 1, closed="neither")],
        "min_rate": [Interval(Real, 0, None, closed="left")],
        "rollback": ["boolean", StrOptions({"train", "validation"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "monitor": [StrOptions({"auto", "train", "validation", "both"})],
        "tol_mode": [StrOptions({"abs", "rel"})],
    }

    def __init__(self, patience=5, factor=0.5, min_rate=1e-6, rollback=True, tol=0.0,
                 monitor="auto", tol_mode="abs"):
        self.patience = patience
        self.factor = factor
        self.min_rate = min_rate
        self.rollback = rollback
        self.tol = tol
        self.monitor = monitor
        self.tol_mode = tol_mode

    def validate(self):
        super().validate()
        # reference * (1 - tol) <= 0 would make every loss but a negative one
        # (and inf * 0 = nan the first) fail to improve: nothing would count.
        if self.tol_mode == "rel" and self.tol >= 1:
            raise ValueError(
                f"PatienceAnnealer: with tol_mode='rel', tol is a fraction of the "
                f"best loss and must be < 1, got tol={self.tol!r}."
            )

    def _start(self, learning_rate, max_epochs):
        self._check_min_rate(learning_rate)
        # bool() only for True/False: 'train' and 'validation' stay names.
        rollback = (self.rollback if isinstance(self.rollback, str)
                    else bool(self.rollback))
        return _PatienceRun(learning_rate, int(self.patience), float(self.factor),
                            float(self.min_rate), rollback, float(self.tol),
                            self.monitor, self.tol_mode == "rel")


class _PatienceRun(ScheduleRun):
    def __init__(self, base, patience, factor, min_rate, rollback, tol,
                 monitor="auto", relative=False):
        super().__init__(base)
        self._patience, self._factor, self._min_rate = patience, factor, min_rate
        self._rollback, self._tol = rollback, tol
        self._monitor, self._relative = monitor, relative
        # Two kinds of best, as in pydnn: the lowest losses (what a rollback
        # restores) and the references that patience is measured against
        # (moved only by an improvement beyond tol), one per watched loss.
        self.best_loss = math.inf
        self.best_epoch = 0
        self.best_train_loss = math.inf
        self.best_train_epoch = 0
        self._reference = math.inf  # monitor='auto': the monitored loss's
        self._train_reference = math.inf
        self._val_reference = math.inf
        self._wait = 0

    def __setstate__(self, state):
        # A run pickled before monitor, tol_mode and rollback targets existed
        # carries on as it would have: it watched the monitored loss.
        defaults = dict(_monitor="auto", _relative=False, best_train_loss=math.inf,
                        best_train_epoch=0, _train_reference=math.inf,
                        _val_reference=math.inf)
        self.__dict__.update({**defaults, **state})

    @property
    def needs_validation(self):
        return self._monitor in ("validation", "both") or self._rollback == "validation"

    @property
    def needs_train_best(self):
        return self._rollback == "train"

    def _improves(self, loss, reference):
        bound = reference * (1.0 - self._tol) if self._relative else reference - self._tol
        return loss < bound

    def _report(self, epoch, loss, val_loss):
        if val_loss is None and self.needs_validation:
            raise ValueError(
                f"PatienceAnnealer(monitor={self._monitor!r}, rollback="
                f"{self._rollback!r}) needs the validation loss of every epoch, "
                f"but epoch {epoch} was reported without one."
            )
        monitored = loss if val_loss is None else val_loss
        if monitored < self.best_loss:
            self.best_loss, self.best_epoch = monitored, epoch
        if loss < self.best_train_loss:
            self.best_train_loss, self.best_train_epoch = loss, epoch
        improved = False
        if self._monitor == "auto":
            if self._improves(monitored, self._reference):
                self._reference, improved = monitored, True
        else:
            # With 'both' each loss moves its own reference, either resets the count.
            if self._monitor in ("train", "both") and self._improves(
                    loss, self._train_reference):
                self._train_reference, improved = loss, True
            if self._monitor in ("validation", "both") and self._improves(
                    val_loss, self._val_reference):
                self._val_reference, improved = val_loss, True
        if improved:
            self._wait = 0
            return None
        self._wait += 1
        if self._wait < self._patience:
            return None
        new_rate = self.rate * self._factor
        if new_rate < self._min_rate:
            return "stop"
        self.rate = new_rate
        self._wait = 0
        if not self._rollback:
            return None
        # Without a validation loss the monitored loss is the training loss.
        return ("rollback_train" if self._rollback == "train" and val_loss is not None
                else "rollback")


# -- ReduceOnPlateau ------------------------------------------------------------

class ReduceOnPlateau(LearningRateSchedule):
    """Lower the rate when the loss plateaus (Keras/PyTorch ``ReduceLROnPlateau``).

    An epoch *improves* when its loss is lower than ``best - tol``, where
    ``best`` is the loss of the last improving epoch (``inf`` at first).
    After ``patience`` consecutive epochs without improvement the rate becomes
    ``max(rate * factor, min_rate)`` and the count starts again. The
    ``cooldown`` epochs right after a reduction are not counted (an
    improvement during them still moves ``best``). It never asks for a
    rollback and never stops training.

    Parameters
    ----------
    factor : float in (0, 1), default=0.1
        Multiplier of the rate at each reduction.
    patience : int >= 1, default=10
        Epochs without improvement before the rate is lowered.
    min_rate : float >= 0, default=0.0
        Floor of the rate; must not exceed the learning rate.
    cooldown : int >= 0, default=0
        Epochs after a reduction during which epochs without improvement are
        not counted.
    tol : float >= 0, default=1e-4
        Smallest decrease of the loss that counts as an improvement.

    Notes
    -----
    ``patience`` counts as in Keras (reduce after ``patience`` epochs without
    improvement; PyTorch waits one more), ``tol`` is absolute (Keras'
    ``min_delta``; PyTorch's ``threshold_mode='abs'``), and ``cooldown``
    skips exactly ``cooldown`` epochs, as in PyTorch.
    """

    _parameter_constraints = {
        "factor": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "min_rate": [Interval(Real, 0, None, closed="left")],
        "cooldown": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, factor=0.1, patience=10, min_rate=0.0, cooldown=0, tol=1e-4):
        self.factor = factor
        self.patience = patience
        self.min_rate = min_rate
        self.cooldown = cooldown
        self.tol = tol

    def _start(self, learning_rate, max_epochs):
        self._check_min_rate(learning_rate)
        return _PlateauRun(learning_rate, float(self.factor), int(self.patience),
                           float(self.min_rate), int(self.cooldown), float(self.tol))


class _PlateauRun(ScheduleRun):
    def __init__(self, base, factor, patience, min_rate, cooldown, tol):
        super().__init__(base)
        self._factor, self._patience, self._min_rate = factor, patience, min_rate
        self._cooldown, self._tol = cooldown, tol
        self.best_loss = math.inf
        self._wait = 0
        self._cooldown_left = 0

    def _advance(self, epoch, loss):
        improved = loss < self.best_loss - self._tol
        if improved:
            self.best_loss = loss
        if self._cooldown_left > 0:
            # Not counted (the wait is already 0 from the reduction).
            self._cooldown_left -= 1
            return None
        if improved:
            self._wait = 0
            return None
        self._wait += 1
        if self._wait >= self._patience:
            self.rate = max(self.rate * self._factor, self._min_rate)
            self._wait = 0
            self._cooldown_left = self._cooldown
        return None


# -- Cosine ---------------------------------------------------------------------

class Cosine(LearningRateSchedule):
    """Cosine annealing from the base rate to ``min_rate``.

    With ``T = epochs`` (or the fit's ``max_epochs`` when ``epochs`` is None),
    epoch ``e`` (counting from 1) trains at::

        rate(e) = min_rate + (learning_rate - min_rate)
                  * (1 + cos(pi * min(e - 1, T) / T)) / 2

    Epoch 1 uses the base rate, epoch ``T`` is the last one above
    ``min_rate``, and every epoch after ``T`` uses ``min_rate`` (as
    PyTorch's ``CosineAnnealingLR`` stepped once per epoch, without restarts),
    so no epoch of a full ``T``-epoch fit is spent at a rate of 0.

    Parameters
    ----------
    min_rate : float >= 0, default=0.0
        Rate reached after ``T`` epochs; must not exceed the learning rate.
    epochs : int >= 1 or None, default=None
        Length ``T`` of the annealing; None uses the fit's ``max_epochs``.

    Examples
    --------
    >>> run = Cosine().start(1.0, max_epochs=2)
    >>> rates = [run.rate]
    >>> _ = run.epoch_end(1, 0.0); rates.append(run.rate)
    >>> _ = run.epoch_end(2, 0.0); rates.append(run.rate)
    >>> [round(r, 12) for r in rates]
    [1.0, 0.5, 0.0]
    """

    _parameter_constraints = {
        "min_rate": [Interval(Real, 0, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, min_rate=0.0, epochs=None):
        self.min_rate = min_rate
        self.epochs = epochs

    def _start(self, learning_rate, max_epochs):
        self._check_min_rate(learning_rate)
        length = max_epochs if self.epochs is None else int(self.epochs)
        return _CosineRun(learning_rate, float(self.min_rate), length)


class _CosineRun(ScheduleRun):
    def __init__(self, base, min_rate, length):
        super().__init__(base)
        self._base, self._min_rate, self._length = base, min_rate, length

    def _advance(self, epoch, loss):
        # The next epoch is epoch + 1, hence (e - 1) = epoch in the formula.
        progress = min(epoch, self._length) / self._length
        self.rate = self._min_rate + (self._base - self._min_rate) * (
            1.0 + math.cos(math.pi * progress)) / 2.0
        return None


# -- LinearWarmup ---------------------------------------------------------------

class LinearWarmup(LearningRateSchedule):
    """Ramp the rate up linearly, then hand over to another schedule.

    Epoch ``e`` in ``1 .. epochs`` trains at ``learning_rate * e / epochs``
    (so the last warm-up epoch reaches the base rate). From epoch
    ``epochs + 1`` on, the rate, rollbacks and stops come from ``then``,
    started with the same learning rate and ``max_epochs - epochs`` epochs;
    its epochs count from the end of the warm-up (fit epoch ``epochs + k`` is
    its epoch ``k``) and it sees only the losses of those epochs.

    Parameters
    ----------
    epochs : int >= 1, default=5
        Length of the warm-up.
    then : LearningRateSchedule, str or None, default=None
        Schedule after the warm-up; a name accepted by
        :func:`resolve_schedule`, or None for the constant base rate. Its
        parameters are searchable as ``then__<name>``.

    Notes
    -----
    A fit of ``max_epochs <= epochs`` never leaves the warm-up (and never
    reaches the base rate when ``max_epochs < epochs``); ``then`` is still
    validated, and started with 1 epoch.

    Examples
    --------
    >>> run = LinearWarmup(epochs=4).start(1.0, max_epochs=6)
    >>> rates = [run.rate]
    >>> for e in range(1, 6):
    ...     _ = run.epoch_end(e, 0.0)
    ...     rates.append(run.rate)
    >>> rates
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """

    _parameter_constraints = {
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "then": [LearningRateSchedule, StrOptions(set(_SCHEDULE_NAMES)), None],
    }

    def __init__(self, epochs=5, then=None):
        self.epochs = epochs
        self.then = then

    def validate(self):
        super().validate()
        if isinstance(self.then, LearningRateSchedule):
            self.then.validate()

    def _start(self, learning_rate, max_epochs):
        warmup = int(self.epochs)
        # Started now, so a bad `then` fails at the start of the fit.
        after = resolve_schedule(self.then).start(learning_rate,
                                                  max(1, max_epochs - warmup))
        return _WarmupRun(learning_rate, warmup, after)


class _WarmupRun(ScheduleRun):
    def __init__(self, base, warmup, after):
        super().__init__(base / warmup)
        self._base, self._warmup, self._after = base, warmup, after

    # The training loop asks the run that decides after the warm-up.
    @property
    def needs_validation(self):
        return self._after.needs_validation

    @property
    def needs_train_best(self):
        return self._after.needs_train_best

    def _report(self, epoch, loss, val_loss):
        if epoch < self._warmup:
            self.rate = self._base * (epoch + 1) / self._warmup
            return None
        if epoch == self._warmup:
            # The warm-up is over; `then`'s first epoch is next.
            self.rate = self._after.rate
            return None
        action = self._after.epoch_end(epoch - self._warmup, loss, val_loss)
        self.rate = self._after.rate
        return action


# -- resolver -------------------------------------------------------------------

# Name -> spec class, in the order of _SCHEDULE_NAMES.
SCHEDULES = dict(zip(_SCHEDULE_NAMES,
                     (Constant, InverseTimeDecay, PatienceAnnealer, ReduceOnPlateau, Cosine)))


def resolve_schedule(value):
    """Schedule spec from None, a name or a spec.

    Parameters
    ----------
    value : None, str or LearningRateSchedule
        None or ``'constant'``: :class:`Constant`; ``'inverse_time'``,
        ``'patience'``, ``'plateau'``, ``'cosine'``: that schedule with its
        default parameters; a :class:`LearningRateSchedule`: validated and
        returned as it is (not copied, not changed).

    Returns
    -------
    schedule : LearningRateSchedule

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything else that is not a schedule.
    InvalidParameterError
        For a schedule with invalid parameters.
    """
    if value is None:
        return Constant()
    if isinstance(value, str):
        if value not in SCHEDULES:
            raise ValueError(
                f"Unknown learning-rate schedule {value!r}; expected None, one of "
                f"{list(_SCHEDULE_NAMES)}, or an instance of a "
                "skdl.schedules.LearningRateSchedule subclass (Constant, "
                "InverseTimeDecay, EpochSchedule, PatienceAnnealer, "
                "ReduceOnPlateau, Cosine, LinearWarmup)."
            )
        return SCHEDULES[value]()
    if not isinstance(value, LearningRateSchedule):
        raise TypeError(
            "A learning-rate schedule must be None, one of "
            f"{list(_SCHEDULE_NAMES)} or a skdl.schedules.LearningRateSchedule "
            f"instance, got {value!r} of type {type(value).__name__}."
        )
    value.validate()
    return value
