"""Callbacks for the ``callbacks`` parameter of the estimators.

A callback is an object with any of the hooks below; ``fit`` calls them in
the order of the list. They complement scikit-learn's own callback API
(``est.set_callbacks(ProgressBar())`` from ``sklearn.callback``, where the
installed scikit-learn has it), which skdl's estimators also support.

Hooks (all optional; ``epoch`` counts from 1 over the estimator's life, as
``n_iter_``)::

    on_fit_begin(estimator)
    on_epoch_begin(estimator, epoch)
    on_batch_end(estimator, epoch, batch, loss)     # batch from 1, mean loss
    on_epoch_end(estimator, epoch, record) -> bool  # True stops training
    on_fit_end(estimator)

``record`` is the epoch's entry of ``estimator.history_``: a dict with
``epoch``, ``train_loss``, ``val_loss`` and ``val_score`` (None without a
validation set), ``learning_rate`` and ``duration`` (seconds).

Callbacks keep what they learn during a fit as attributes ending in ``_``
(e.g. ``Checkpoint.path_``); ``clone`` gives each fit of a search its own
copy.
"""
import math
import os
import tempfile

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "LambdaCallback",
           "LearningRateScheduler"]

MONITORED = ("train_loss", "val_loss", "val_score")


class Callback(BaseEstimator):
    """Base class of skdl callbacks: every hook does nothing."""

    def on_fit_begin(self, estimator):
        """Called once at the start of ``fit`` / ``partial_fit``.

        Parameters
        ----------
        estimator : NNClassifier or NNRegressor
            The estimator being fitted.
        """

    def on_epoch_begin(self, estimator, epoch):
        """Called before each epoch.

        Parameters
        ----------
        estimator : NNClassifier or NNRegressor
            The estimator being fitted.
        epoch : int
            The epoch about to run, from 1 over the estimator's life.
        """

    def on_batch_end(self, estimator, epoch, batch, loss):
        """Called after each optimizer step.

        Parameters
        ----------
        estimator : NNClassifier or NNRegressor
            The estimator being fitted.
        epoch : int
            The current epoch, from 1.
        batch : int
            The batch just trained on, from 1 in each epoch.
        loss : float
            The batch's (weighted) mean loss, penalties included.
        """

    def on_epoch_end(self, estimator, epoch, record):
        """Called after each epoch.

        Parameters
        ----------
        estimator : NNClassifier or NNRegressor
            The estimator being fitted.
        epoch : int
            The epoch just run, from 1.
        record : dict
            The epoch's entry of ``estimator.history_``.

        Returns
        -------
        bool
            True stops training.
        """
        return False

    def on_fit_end(self, estimator):
        """Called once at the end of ``fit`` (also after a stop or an interrupt).

        Parameters
        ----------
        estimator : NNClassifier or NNRegressor
            The estimator fitted.
        """


class _Monitor:
    """Tracks the best value of one history key: lower is better for losses,
    higher for scores."""

    def __init__(self, monitor, tol):
        if monitor not in MONITORED:
            raise ValueError(f"monitor must be one of {MONITORED}, got {monitor!r}.")
        self.monitor = monitor
        self.sign = -1.0 if monitor == "val_score" else 1.0
        self.tol = tol
        self.best = math.inf

    def value(self, record):
        value = record[self.monitor]
        if value is None:
            raise ValueError(
                f"{self.monitor!r} is not computed in this fit: set early_stopping=True "
                "(which holds out validation_fraction of the data) or monitor "
                "'train_loss'."
            )
        return float(value)

    def improved(self, record):
        """Whether the record beats the best so far by more than tol (and update)."""
        value = self.sign * self.value(record)
        if value < self.best - self.tol:
            self.best = value
            return True
        return False


class EarlyStopping(Callback):
    """Stop when a monitored value has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : {'val_loss', 'val_score', 'train_loss'}, default='val_loss'
        History key; the validation values need ``early_stopping=True`` on
        the estimator (or another validation source).
    patience : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Minimum improvement that counts.
    restore_best_weights : bool, default=True
        At the end of ``fit``, go back to the weights of the best epoch.

    Attributes
    ----------
    best_epoch_ : int
    best_value_ : float
    stopped_epoch_ : int or None
        Epoch at which this callback stopped training, if it did.
    """

    def __init__(self, monitor="val_loss", patience=10, tol=1e-4,
                 restore_best_weights=True):
        self.monitor = monitor
        self.patience = patience
        self.tol = tol
        self.restore_best_weights = restore_best_weights

    def on_fit_begin(self, estimator):
        if int(self.patience) < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}.")
        self._monitor = _Monitor(self.monitor, float(self.tol))
        self._best_weights = None
        self._waited = 0
        self.best_epoch_ = None
        self.best_value_ = None
        self.stopped_epoch_ = None

    def on_epoch_end(self, estimator, epoch, record):
        if self._monitor.improved(record):
            self.best_epoch_ = epoch
            self.best_value_ = self._monitor.value(record)
            self._waited = 0
            if self.restore_best_weights:
                self._best_weights = estimator.network_.snapshot(self._best_weights)
            return False
        self._waited += 1
        if self._waited >= self.patience:
            self.stopped_epoch_ = epoch
            return True
        return False

    def on_fit_end(self, estimator):
        if self._best_weights is not None:
            estimator.network_.restore(self._best_weights)
        self._best_weights = None  # a copy of the model is not worth keeping


class Checkpoint(Callback):
    """Save the weights of the best epoch so far to a file of its own.

    Each fit creates a new file (``tempfile.mkstemp`` in ``directory``), so
    fits running in parallel, e.g. in a ``GridSearchCV`` with ``n_jobs``,
    never write to the same path. The file is a ``.npz`` of arrays (no pickle)
    keyed ``"<layer>/<param>"``; load it with :meth:`load_weights`.

    Parameters
    ----------
    directory : str or None, default=None
        Where to create the file; None is the system's temporary directory.
    monitor : {'val_loss', 'val_score', 'train_loss'}, default='val_loss'
    tol : float, default=0.0

    Attributes
    ----------
    path_ : str
        The file of the last fit.
    best_epoch_ : int or None
    """

    def __init__(self, directory=None, monitor="val_loss", tol=0.0):
        self.directory = directory
        self.monitor = monitor
        self.tol = tol

    def on_fit_begin(self, estimator):
        self._monitor = _Monitor(self.monitor, float(self.tol))
        handle, self.path_ = tempfile.mkstemp(prefix="skdl-checkpoint-", suffix=".npz",
                                              dir=self.directory)
        os.close(handle)
        self.best_epoch_ = None

    def on_epoch_end(self, estimator, epoch, record):
        if self._monitor.improved(record):
            self.best_epoch_ = epoch
            arrays = {f"{layer}/{key}": value
                      for layer, params in estimator.network_.get_weights().items()
                      for key, value in params.items()}
            # Written beside the target and renamed: a reader never sees half a file.
            partial = self.path_ + ".partial.npz"
            np.savez(partial, **arrays)
            os.replace(partial, self.path_)
        return False

    def load_weights(self):
        """The saved weights as ``{layer: {param: array}}``, the format of
        ``set_weights``."""
        weights = {}
        with np.load(self.path_, allow_pickle=False) as data:
            for name in data.files:
                layer, _, key = name.rpartition("/")
                weights.setdefault(layer, {})[key] = data[name]
        return weights


class LearningRateScheduler(Callback):
    """Set the learning rate of each epoch from a function.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, rate) -> new rate``, called before each epoch with
        the rate the estimator would use. (For the built-in schedules use the
        estimator's ``lr_schedule`` parameter.)
    """

    def __init__(self, schedule):
        self.schedule = schedule

    def on_epoch_begin(self, estimator, epoch):
        rate = float(self.schedule(epoch, estimator.learning_rate_))
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"The schedule gave learning rate {rate} for epoch {epoch}; "
                             "it must be a positive number.")
        estimator.learning_rate_ = rate


class LambdaCallback(Callback):
    """A callback made of plain functions with the hooks' signatures.

    Parameters
    ----------
    on_fit_begin, on_epoch_begin, on_batch_end, on_epoch_end, on_fit_end : callable or None
        ``on_epoch_end`` may return True to stop training.
    """

    def __init__(self, on_fit_begin=None, on_epoch_begin=None, on_batch_end=None,
                 on_epoch_end=None, on_fit_end=None):
        self.on_fit_begin = on_fit_begin
        self.on_epoch_begin = on_epoch_begin
        self.on_batch_end = on_batch_end
        self.on_epoch_end = on_epoch_end
        self.on_fit_end = on_fit_end


HOOKS = ("on_fit_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_fit_end")


def check_callbacks(callbacks):
    """The list of callbacks, or a TypeError naming the first that has no hook."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {callbacks!r}.")
    for position, callback in enumerate(callbacks):
        if not any(callable(getattr(callback, hook, None)) for hook in HOOKS):
            raise TypeError(
                f"callbacks[{position}] ({callback!r}) has none of the hooks {HOOKS}."
            )
    return list(callbacks)


def call(callbacks, hook, *args):
    """Call ``hook`` on every callback that defines it; True if any asked to stop."""
    stop = False
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if callable(method):
            stop |= bool(method(*args))
    return stop
