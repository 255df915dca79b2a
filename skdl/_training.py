"""Pieces of the training loop that are not the estimator's own state: the
validation split, the per-epoch printout, and the bridge to scikit-learn's
callback API."""
import copy
import math
import sys
import time
import warnings
from collections import deque

import numpy as np
from scipy.sparse import issparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from . import _ops
from .augment import apply_augmenters
from .callbacks import call

try:  # scikit-learn >= 1.9
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # pragma: no cover - older scikit-learn
    class CallbackSupportMixin:
        """Stand-in where scikit-learn has no callback API."""


SCALE_ADVICE = "Scale the features (e.g. with StandardScaler)"


def feature_limit(dtype):
    """Largest feature magnitude a network in ``dtype`` trains on safely.

    Training squares values (Adam's second moments, the squared error), which
    overflow above sqrt(max) of the dtype (1.8e19 in float32), and sums them
    over features, samples and layers: 1e-4 of that leaves the margin
    (1.8e15 in float32, 1.3e150 in float64).
    """
    return float(np.sqrt(np.finfo(dtype).max)) * 1e-4


def too_large_features(X, dtype):
    """A sentence naming X's largest feature magnitude when it is above
    :func:`feature_limit` of ``dtype`` and still representable in it (values
    that are not are refused where X is cast), else None.

    Parameters
    ----------
    X : ndarray of shape (n, ...) or CSR matrix of shape (n, n_features)
    dtype : numpy dtype the network computes in
    """
    values = X.data if issparse(X) else X
    if values.size == 0:
        return None
    # max and min, not abs: no temporary array the size of X.
    largest = float(max(values.max(), -values.min()))
    if not feature_limit(dtype) < largest <= float(np.finfo(dtype).max):
        return None
    dtype = np.dtype(dtype)
    fix = (f"{SCALE_ADVICE}." if dtype == np.float64
           else f"{SCALE_ADVICE} or use dtype='float64'.")
    return (f"X has features as large as {largest:.3g}, too large for a network in "
            f"{dtype} (above about {feature_limit(dtype):.1e} the sums and squares "
            f"of training overflow {dtype}'s largest value, {np.finfo(dtype).max:.3g}, "
            f"and the model learns nothing useful). {fix}")


def validation_split(X, Y, y, sample_weight, fraction, stratify, random_state):
    """Hold out ``fraction`` of the samples, stratified by ``y`` when asked.

    Only the held-out samples of X are copied: the training part is given as
    its rows of X, from which the training loop gathers each batch, so X may
    be a memory-mapped array larger than memory.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, ...)
    Y : ndarray of shape (n, n_outputs), the encoded targets
    y : ndarray of shape (n,) or (n, n_outputs), the targets as given
    sample_weight : ndarray of shape (n,) or None
    fraction : float in (0, 1)
    stratify : bool
    random_state : numpy.random.RandomState

    Returns
    -------
    train : tuple (rows, Y, y, sample_weight)
        The training part: ``rows``, ndarray of int of shape (n_train,),
        the training samples' rows of X in increasing order, then their
        targets and weights.
    validation : tuple (X, Y, y, sample_weight)
        The held-out samples (copies), in increasing order of their rows.
    """
    n = X.shape[0]
    n_val = int(np.ceil(fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(
            f"validation_fraction={fraction} of {n} samples leaves "
            f"{n - n_val} to train on and {n_val} to validate on; both need at least one."
        )
    index = np.arange(n)
    seed = random_state.randint(np.iinfo(np.int32).max)
    try:
        train, val = train_test_split(index, test_size=n_val, random_state=seed,
                                      stratify=y if stratify else None)
    except ValueError as error:
        raise ValueError(
            f"Cannot hold out a stratified validation set ({error}) Lower "
            "validation_fraction, add samples of the rare classes, or set "
            "early_stopping=False."
        ) from None
    train, val = np.sort(train), np.sort(val)
    weights = (None, None) if sample_weight is None else (sample_weight[train],
                                                          sample_weight[val])
    for part, what in zip(weights, ("training", "validation")):
        # A part of total weight 0 would make its mean loss 0 / 0.
        if part is not None and not part.sum() > 0:
            raise ValueError(
                f"The validation split left only samples of weight 0 in the {what} "
                "part; both parts need some weight. Give more samples a non-zero "
                "weight, change validation_fraction or random_state, or set "
                "early_stopping=False."
            )
    return ((train, Y[train], y[train], weights[0]),
            (X[val], Y[val], y[val], weights[1]))


def _shows_carriage_returns(stream):
    """Whether ``stream`` displays a line rewritten with carriage returns: a
    terminal, or a Jupyter cell (ipykernel's streams are no tty but redraw the
    line, as Keras also assumes). Pipes, files and log handlers would keep
    every redraw."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False
    return type(stream).__module__.startswith("ipykernel")


class EpochPrinter:
    """``verbose=1``: a table row per epoch; ``verbose=2``: also a progress bar
    within each epoch (rewritten in place with carriage returns), drawn only
    on a stream that shows it as one line (a terminal or a notebook); piped or
    logged output gets the table rows alone, one line per epoch."""

    COLUMNS = ("epoch", "train loss", "valid loss", "valid score", "lr", "time")
    BAR_WIDTH = 30

    def __init__(self, verbose, stream=None):
        self.verbose = int(verbose)
        self.stream = sys.stdout if stream is None else stream
        self.header_done = False
        self.draw_bar = self.verbose >= 2 and _shows_carriage_returns(self.stream)

    def batch(self, batch, n_batches):
        if not self.draw_bar:
            return
        done = int(self.BAR_WIDTH * batch / n_batches)
        bar = "=" * done + "." * (self.BAR_WIDTH - done)
        self.stream.write(f"\r[{bar}] {batch}/{n_batches}")
        if batch == n_batches:
            self.stream.write("\r" + " " * (self.BAR_WIDTH + 24) + "\r")
        self.stream.flush()

    def epoch(self, record):
        if self.verbose < 1:
            return
        if not self.header_done:
            self.stream.write("".join(f"{c:>13}" for c in self.COLUMNS) + "\n")
            self.header_done = True

        def number(value, fmt):
            return f"{'-':>13}" if value is None else f"{value:>13{fmt}}"

        self.stream.write(
            f"{record['epoch']:>13d}" + number(record["train_loss"], ".6f")
            + number(record["val_loss"], ".6f") + number(record["val_score"], ".4f")
            + number(record["learning_rate"], ".3g") + number(record["duration"], ".2f")
            + "\n")
        self.stream.flush()

    def message(self, text):
        if self.verbose >= 1:
            self.stream.write(text + "\n")
            self.stream.flush()


class SklearnCallbacks:
    """Calls the callbacks set with ``set_callbacks`` (scikit-learn's API):
    fit is the root task and each epoch a subtask. Does nothing when none are
    set or scikit-learn has no callback API."""

    def __init__(self, estimator, max_epochs, X, y, sample_weight):
        self.estimator = estimator
        self.active = bool(getattr(estimator, "_skl_callbacks", None)) or hasattr(
            estimator, "_parent_callback_ctx")
        self.data = dict(X=X, y=y, metadata=(
            {} if sample_weight is None else {"sample_weight": sample_weight}))
        self.epoch_context = None
        if self.active:
            self.context = estimator._init_callback_context(max_subtasks=max_epochs)
            self.context.call_on_fit_task_begin(estimator=estimator, **self.data)

    def epoch_begin(self):
        if self.active:
            self.epoch_context = self.context.subcontext(task_name="epoch")
            self.epoch_context.call_on_fit_task_begin(estimator=self.estimator,
                                                      **self.data)

    def epoch_end(self):
        """True if a callback asks to stop."""
        if not self.active or self.epoch_context is None:
            return False
        context, self.epoch_context = self.epoch_context, None
        return context.call_on_fit_task_end(
            estimator=self.estimator, reconstruction_attributes=self._frozen_network,
            **self.data)

    def _frozen_network(self):
        # Evaluated only when a callback asks for `fitted_estimator`: the copy
        # keeps this epoch's weights while training goes on.
        return {"network_": copy.deepcopy(self.estimator.network_)}

    def end(self):
        if self.active:
            if self.epoch_context is not None:  # an epoch cut short (interrupt)
                self.epoch_context.call_on_fit_task_end(estimator=self.estimator)
                self.epoch_context = None
            self.context.call_on_fit_task_end(estimator=self.estimator,
                                              reconstruction_attributes={}, **self.data)


class StepThreads:
    """Chooses, step by step, between the default thread count and one thread.

    Another busy process (a second fit, a notebook, a test suite) can make a
    step on two threads several times slower than on one: OpenMP's barriers
    wait for a thread that the busy process keeps off its core. So now and
    then one full-batch step runs with the other choice (a probe), and when
    it took less than ``1 - MARGIN`` of the mean time of the recent steps
    (the slowest left out), that choice stays. The mean, not the median:
    under load most steps on two threads are as fast as ever and some wait
    for milliseconds. The first step (which allocates) runs on one thread and
    is not timed: on a loaded machine a step on two threads can take a
    hundred times as long as on one (every parallel region waits for a
    descheduled thread), which on a short fit would cost more than the fit.
    The first probe comes ``FIRST_PROBE`` steps later, then every
    ``INTERVAL``; a probe that loses doubles the interval (up to
    ``MAX_INTERVAL``) and, when it lost by much, puts the next one off until
    the steps since have taken ``1 / PROBE_SHARE`` times what it lost, so
    probing never costs more than that share of the time. Two steps in the
    window that stall (``STALL`` times the fastest) bring the next probe
    forward. Results do not depend on the thread count, only the time does.

    Parameters
    ----------
    active : bool
        False when only one thread is available anyway: nothing to choose.
    """

    FIRST_PROBE = 1
    INTERVAL = 16
    MAX_INTERVAL = 256
    WINDOW = 16
    MARGIN = 0.1
    STALL = 4
    PROBE_SHARE = 0.05

    def __init__(self, active):
        self.active = active
        self.single = False  # the current choice: one thread
        self.recent = deque(maxlen=self.WINDOW)  # seconds per sample, current choice
        self.interval = self.INTERVAL
        self.countdown = self.FIRST_PROBE
        self.probing = False
        self.warming_up = True  # the first step allocates and touches memory

    def cap(self, full_batch):
        """The thread cap for the next step (None: the default count)."""
        if self.warming_up and self.active and full_batch:
            return 1
        self.probing = (self.active and full_batch and self.countdown <= 0
                        and len(self.recent) >= 1)
        return 1 if self.single != self.probing else None

    def record(self, seconds_per_sample, full_batch):
        """The time of the step just run (only full batches are compared)."""
        if not self.active or not full_batch:
            return
        if self.warming_up:  # slower than any other: it would flatter a probe
            self.warming_up = False
            return
        if not self.probing:
            self.recent.append(seconds_per_sample)
            fastest = min(self.recent)
            stalls = sum(seconds > self.STALL * fastest for seconds in self.recent)
            # One slow step happens on a quiet machine too (a page fault, the
            # garbage collector); two in the window are the sign of load.
            self.countdown = 0 if stalls >= 2 else self.countdown - 1
            return
        self.probing = False
        # The largest time left out, for the same reason.
        typical = (min(self.recent) if len(self.recent) < 3 else
                   (sum(self.recent) - max(self.recent)) / (len(self.recent) - 1))
        if seconds_per_sample < (1 - self.MARGIN) * typical:
            self.single = not self.single
            self.recent.clear()
            self.recent.append(seconds_per_sample)
            self.interval = self.INTERVAL
            self.countdown = self.interval
            return
        self.interval = min(2 * self.interval, self.MAX_INTERVAL)
        lost = (seconds_per_sample - typical) / typical  # in typical steps
        self.countdown = max(self.interval, math.ceil(lost / self.PROBE_SHARE))


class TrainingState:
    """What a fit leaves for the next one (``partial_fit``, ``warm_start``)
    besides the network's weights and the public fitted attributes.

    The estimator owns one (``_training_state``, made by its first fit) and
    hands it to each :class:`TrainingRun`; pickle, joblib and ``skdl.save``
    keep the fields listed in :attr:`SAVED` (``skdl.save`` under the names
    ``'_' + field``), so a loaded model trains on exactly as the original.

    Parameters
    ----------
    random_state : numpy.random.RandomState
        The fit's source of randomness: initial weights, the validation
        split, the shuffling, and the seeds of the generators below.

    Attributes
    ----------
    random_state : numpy.random.RandomState
    dropout_rng : numpy.random.Generator or None
        Dropout's draws; seeded from ``random_state`` once the network is
        built.
    augment_rng : numpy.random.Generator or None
        The augmenters' draws; None until a fit augments.
    optimizer_state : dict of str to ndarray of shape (n_params,)
        The optimizer's moments or accumulators.
    n_steps : int
        Optimizer steps so far (Adam's bias correction counts them).
    no_improvement_count : int
        Epochs in a row whose monitored loss did not improve by ``tol``.
    schedule_run : skdl.schedules.ScheduleRun or None
        The learning-rate schedule's progress; kept by pickle and joblib,
        not by ``skdl.save`` (a model loaded from its file starts the
        schedule afresh).
    """

    SAVED = ("random_state", "dropout_rng", "augment_rng", "optimizer_state", "n_steps",
             "no_improvement_count")

    def __init__(self, random_state):
        self.random_state = random_state
        self.dropout_rng = None
        self.augment_rng = None
        self.optimizer_state = {}
        self.n_steps = 0
        self.no_improvement_count = 0
        self.schedule_run = None

    @classmethod
    def from_attributes(cls, attributes):
        """The state of an estimator pickled before this class existed, from
        its attributes ``'_' + field`` (removed from ``attributes``)."""
        state = cls(attributes.pop("_random_state"))
        for field in cls.SAVED[1:]:
            setattr(state, field, attributes.pop("_" + field, getattr(state, field)))
        state.schedule_run = attributes.pop("_schedule_run", None)
        return state


class TrainingRun:
    """One call of ``fit`` or ``partial_fit``: epochs of mini-batch steps over
    the training part of the data, with the validation set, the history, the
    learning-rate schedule, the callbacks, and the handling of faults and
    interrupts.

    Parameters
    ----------
    estimator : BaseNN
        Holds the network, the optimizer and the fitted attributes this run
        updates.
    state : TrainingState
        The estimator's training state, which this run carries on.
    X : ndarray of shape (n_rows, *input_shape), the network's input
        Batches are gathered from it step by step (never copied whole), so it
        may be a memory-mapped array.
    Y : ndarray of shape (n, n_outputs), the encoded targets
    sample_weight : ndarray of shape (n,) or None
    accumulate : numpy dtype of the sums over a batch
    validation : tuple (X, Y, y, sample_weight) or None
    callbacks : list of skdl callbacks
    rows : ndarray of int of shape (n,) or None, default=None
        The rows of X to train on, in increasing order (the training part
        of a validation split, see :func:`validation_split`); None trains
        on all of X (then n = n_rows).
    """

    def __init__(self, estimator, state, X, Y, sample_weight, accumulate, validation,
                 callbacks, rows=None):
        self.estimator = estimator
        self.state = state
        self.network = estimator.network_
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.rows = rows
        self.accumulate = accumulate
        self.validation = validation
        self.callbacks = callbacks
        self.printer = EpochPrinter(estimator.verbose)
        self.backup = None        # the weights after the last completed step
        self.previous = None      # the weights a step before (their loss was finite)
        self.best = None          # the weights of the best epoch so far
        self.best_monitored = np.inf
        self.best_train = None    # the weights of the lowest training loss, when a
        self.best_train_loss = np.inf  # schedule may ask for them (rollback_train)
        self.step_open = False    # a step has started and not finished
        self.interrupted = False
        l1_coef, l2_coef = self.network.penalty_coefficients(estimator.l1, estimator.l2)
        self.penalty = ((l1_coef, l2_coef) if l1_coef.any() or l2_coef.any() else None)
        self.decay_mask = self.network.decay_mask()
        self.step_threads = StepThreads(active=_ops.effective_n_threads() > 1)

    # -- epochs ---------------------------------------------------------------
    def epochs(self, max_epochs, incremental, sklearn_callbacks):
        """Run up to ``max_epochs`` epochs; stop on convergence (not when
        ``incremental``), a callback, the schedule, or an interrupt."""
        est = self.estimator
        for _ in range(max_epochs):
            epoch = est.n_iter_ + 1
            try:
                stop = self._epoch_with_hooks(epoch, sklearn_callbacks, incremental)
            except KeyboardInterrupt:
                self._interrupt(epoch)
                break
            if stop:
                break
        else:
            if not incremental:
                warnings.warn(
                    f"{type(est).__name__}: max_iter={est.max_iter} epochs were run "
                    "and the training loss has not converged yet; consider raising "
                    "max_iter.", ConvergenceWarning,
                )
        if (self.validation is not None and self.best is not None and not incremental
                and not self.interrupted):
            # Early stopping ends with the weights of the best validation epoch.
            self.network.restore(self.best)

    def final_epochs(self, n_epochs):
        """pydnn's final epochs: after early stopping, train on the training
        and validation samples together for a few more epochs."""
        _, Y_val, _, w_val = self.validation
        # The held-out rows of X, in the order the split gave them; the
        # training rows first as before, and X itself is still not copied.
        held_out = np.ones(self.X.shape[0], dtype=bool)
        held_out[self.rows] = False
        self.rows = np.concatenate([self.rows, np.flatnonzero(held_out)])
        self.Y = np.concatenate([self.Y, Y_val])
        if self.sample_weight is not None:
            self.sample_weight = np.concatenate([self.sample_weight, w_val])
        self.validation = None
        self.printer.message(f"Training {n_epochs} final epochs on all the samples.")
        for _ in range(n_epochs):
            epoch = self.estimator.n_iter_ + 1
            try:
                self._run_epoch(epoch)
            except KeyboardInterrupt:
                self._interrupt(epoch)
                return

    def _epoch_with_hooks(self, epoch, sklearn_callbacks, incremental):
        est = self.estimator
        est.learning_rate_ = self.state.schedule_run.rate
        call(self.callbacks, "on_epoch_begin", est, epoch)
        sklearn_callbacks.epoch_begin()
        record = self._run_epoch(epoch)
        monitored = record["train_loss"] if record["val_loss"] is None else record["val_loss"]
        if monitored < self.best_monitored:
            self.best_monitored = monitored
            self.best = self.network.snapshot(self.best)
            est.best_validation_score_ = record["val_score"]
        schedule = self.state.schedule_run
        # Without validation the monitored loss is the training loss: self.best.
        if (schedule.needs_train_best and record["val_loss"] is not None
                and record["train_loss"] < self.best_train_loss):
            self.best_train_loss = record["train_loss"]
            self.best_train = self.network.snapshot(self.best_train)
        self.printer.epoch(record)
        stop = call(self.callbacks, "on_epoch_end", est, epoch, record)
        stop = sklearn_callbacks.epoch_end() or stop
        # The schedule counts the epochs of its own run (a warm-started fit starts anew).
        action = schedule.epoch_end(schedule.epoch + 1, record["train_loss"],
                                    record["val_loss"])
        best = {"rollback": self.best, "rollback_train": self.best_train}.get(action)
        if best is not None:
            self.network.restore(best)
            self._forget_steps()
            self.state.optimizer_state = est._optimizer.init_state(self.network.params)
        elif action == "stop":
            self.printer.message("The learning-rate schedule ended training.")
            stop = True
        if not incremental and est._converged(monitored, self.state):
            what = "validation" if record["val_loss"] is not None else "training"
            self.printer.message(
                f"The {what} loss did not improve more than tol={est.tol} for "
                f"{est.n_iter_no_change} consecutive epochs. Stopping.")
            stop = True
        return stop

    def _run_epoch(self, epoch):
        """Train one epoch, evaluate, and append the epoch's history record."""
        est = self.estimator
        started = time.perf_counter()
        train_loss = self._train_epoch(epoch)
        est.n_iter_ += 1
        val_loss = val_score = None
        if self.validation is not None:
            val_loss, val_score = self._evaluate()
            est.validation_scores_.append(val_score)
        est.loss_ = train_loss
        est.loss_curve_.append(train_loss)
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                  "val_score": val_score, "learning_rate": est.learning_rate_,
                  "duration": time.perf_counter() - started}
        est.history_.append(record)
        return record

    # -- steps ----------------------------------------------------------------
    def _train_epoch(self, epoch):
        """Mean training loss (with the penalty) over one pass of the data."""
        est, network = self.estimator, self.network
        X, Y, w, chosen = self.X, self.Y, self.sample_weight, self.rows
        n = Y.shape[0]
        batch_size = est._batch_size(n)
        n_batches = -(-n // batch_size)
        total_weight = float(n) if w is None else float(w.sum())
        order = self.state.random_state.permutation(n) if est.shuffle else None
        epoch_loss = 0.0
        for b, start in enumerate(range(0, n, batch_size), start=1):
            rows = (order[start:start + batch_size] if order is not None
                    else slice(start, start + batch_size))
            # One batch read from X at a time (a memory-mapped X stays on disk).
            Xb = X[rows] if chosen is None else X[chosen[rows]]
            Yb = Y[rows]
            if est._augmenters:
                Xb = self._augmented(Xb)
            wb = None if w is None else w[rows]
            batch_weight = float(Xb.shape[0]) if wb is None else float(wb.sum())
            self.previous, self.backup = self.backup, self.previous
            self.backup = network.snapshot(self.backup)
            self.step_open = True
            full_batch = Xb.shape[0] == batch_size
            started = time.perf_counter()
            with _ops.at_most_threads(self.step_threads.cap(full_batch)):
                batch_loss, penalty = self._step(Xb, Yb, wb, total_weight, n, epoch, b)
            self.step_threads.record((time.perf_counter() - started) / Xb.shape[0],
                                     full_batch)
            self.step_open = False
            est.t_ += Xb.shape[0]
            epoch_loss += batch_loss + penalty * batch_weight
            self.printer.batch(b, n_batches)
            call(self.callbacks, "on_batch_end", est, epoch, b,
                 (batch_loss / batch_weight + penalty) if batch_weight > 0 else penalty)
        return epoch_loss / total_weight if total_weight > 0 else 0.0

    def _step(self, Xb, Yb, wb, total_weight, n, epoch, b):
        """One optimizer step on a batch: (its weighted loss sum, the penalty)."""
        est, network = self.estimator, self.network
        bound = None if issparse(Xb) else network.training_pass(
            Xb.shape[0], wb is not None, self.accumulate)
        if bound is None:
            outputs = network.forward(Xb, training=True, rng=self.state.dropout_rng,
                                      sample_weight=wb)
        else:
            outputs = bound.forward(Xb, wb, self.state.dropout_rng)
        losses, grad = est._loss_fn(outputs, Yb)
        batch_loss = float(losses.sum() if wb is None else wb @ losses)
        if not np.isfinite(batch_loss):
            # The weights in place produced it: go back one more step.
            self._fault(f"The training loss became {batch_loss}", epoch, b,
                        self.previous)
        # Weighted mean over the batch, normalised by the batch's share of
        # the total weight so batches with little weight take small steps.
        scale = 1.0 / (total_weight * (Xb.shape[0] / n))
        if bound is None:
            network.backward(grad, wb, scale, self.accumulate)
        else:
            bound.backward(grad, scale)
        penalty = 0.0
        if self.penalty is not None:
            penalty = _ops.add_penalty(network.params, network.grads, *self.penalty)
        state = self.state
        state.n_steps += 1
        finite = est._optimizer.step(network.params, network.grads,
                                     state.optimizer_state, est.learning_rate_,
                                     state.n_steps, epoch, self.decay_mask)
        if not finite:
            self._fault("The update made weights NaN or infinite", epoch, b,
                        self.backup)
        return batch_loss, penalty

    def _augmented(self, Xb):
        """The batch after the estimator's augmenters (a new array); with
        side inputs, only the main input's columns change."""
        est = self.estimator
        shapes = self.network.input_shapes
        if shapes is None:
            return apply_augmenters(est._augmenters, Xb, self.state.augment_rng)
        main_shape = next(iter(shapes.values()))
        size = int(np.prod(main_shape))
        out = Xb.copy()
        main = Xb[:, :size].reshape((Xb.shape[0],) + main_shape)
        out[:, :size] = apply_augmenters(est._augmenters, main,
                                         self.state.augment_rng).reshape(
            Xb.shape[0], size)
        return out

    def _evaluate(self):
        """(loss, score) on the validation samples, weighted as the training."""
        est = self.estimator
        X, Y, y, w = self.validation
        outputs = est._forward_in_chunks(X)
        losses, _ = est._loss_fn(outputs, Y)
        loss = float(losses.mean() if w is None else (w @ losses) / w.sum())
        return loss, float(est._validation_score(outputs, y, w))

    # -- faults -----------------------------------------------------------------
    def _forget_steps(self):
        """The weights changed outside a step (a rollback): the backups are stale."""
        self.backup = self.previous = None

    def _fault(self, what, epoch, batch, last_good):
        """Back to the last weights that gave a finite loss (``last_good``, or
        those at the start of this step), then a clear error."""
        est = self.estimator
        self.network.restore(self.backup if last_good is None else last_good)
        self.step_open = False
        # The moments may hold the non-finite values too: start them afresh.
        self.state.optimizer_state = est._optimizer.init_state(self.network.params)
        # Features too large for the dtype are the cause, not the learning rate.
        scale = too_large_features(self.X, est.dtype)
        advice = scale if scale is not None else (
            f"Lower the learning rate (it is {est.learning_rate_:g}) or clip the "
            "gradients, e.g. optimizer=Adam(clipnorm=1.0).")
        raise ValueError(
            f"{what} in epoch {epoch}, batch {batch}. The model keeps the last "
            f"weights that gave a finite loss. {advice}"
        )

    def _interrupt(self, epoch):
        """KeyboardInterrupt: keep the weights of the last completed step."""
        if self.step_open:  # the backup holds the start of the open step
            self.network.restore(self.backup)
            self.step_open = False
        self.interrupted = True
        warnings.warn(
            f"Training was interrupted during epoch {epoch}; the model keeps the "
            f"weights of its last completed step ({self.estimator.n_iter_} full "
            "epochs).", UserWarning,
        )
