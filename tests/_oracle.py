"""A training oracle: what ``fit``, ``partial_fit`` and ``warm_start`` must do,
re-derived in plain numpy from the documented semantics (docs/estimators.md,
"Estimators" and "Training", the docstrings of the estimators, optimizers, schedules and
layers), so that tests can hold skdl's training to it weight for weight.

None of skdl's training code runs here: no TrainingRun, no Optimizer.step,
no skdl._ops, no Network.forward or backward, no skdl._losses. The loop, the
batching and its normalisation, the sample and class weights, the losses,
the dense layers and activations, batch normalization, the penalties, the
clipping, every update rule and the schedules are written out below. skdl
supplies only

- the initial weights: its layers drawn from the estimator's RandomState, as
  ``fit`` draws them (:func:`initial_network`);
- the numpy twins in :mod:`skdl._reference` of the convolution, max pooling
  and the recurrent cells (forward and backward; held to finite differences
  in test_ops and test_recurrent).

The oracle consumes the RandomState in the order ``fit`` does: the weights,
then one draw seeding dropout, one seeding the validation split, then one
permutation per epoch when shuffling.
"""
import math

import numpy as np
from scipy.special import expit, logsumexp, softmax
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from skdl import _reference as twins
from skdl._network import Network, build_layers
from skdl.layers import (
    GRU,
    LSTM,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
)
from skdl._optimizers import OPTIMIZERS
from skdl.optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, RMSprop
from skdl.schedules import Constant, Cosine, EpochSchedule, InverseTimeDecay, LinearWarmup

# Parameters the penalties and the weight decay act on ("kernels only").
KERNELS = ("kernel", "recurrent_kernel")
# Estimator parameters the oracle does not model, with the value it needs.
UNMODELLED = {"input_shape": None, "callbacks": None, "augment": None, "dtype": "float64"}


# -- activations and losses --------------------------------------------------------
def activate(name, Z):
    """``name`` applied to pre-activations Z (None is linear)."""
    if name in (None, "linear"):
        return Z
    if name == "relu":
        return np.maximum(Z, 0.0)
    if name == "tanh":
        return np.tanh(Z)
    if name == "sigmoid":
        return expit(Z)
    raise ValueError(f"The oracle has no activation {name!r}.")


def activation_slope(name, A):
    """The derivative of ``name`` at the point whose output is A."""
    if name in (None, "linear"):
        return np.ones_like(A)
    if name == "relu":
        return (A > 0).astype(A.dtype)
    if name == "tanh":
        return 1.0 - A**2
    if name == "sigmoid":
        return A * (1.0 - A)
    raise ValueError(f"The oracle has no activation {name!r}.")


def softmax_log_loss(Z, Y):
    """Categorical cross-entropy of softmax(Z): per-sample loss (n,) and its
    gradient on the logits (n, k)."""
    return logsumexp(Z, axis=1) - (Z * Y).sum(axis=1), softmax(Z, axis=1) - Y


def sigmoid_log_loss(Z, Y):
    """Binary cross-entropy of sigmoid(Z), summed over the outputs."""
    return (np.logaddexp(0.0, Z) - Z * Y).sum(axis=1), expit(Z) - Y


def squared_error(Z, Y):
    """Half the squared error, averaged over a sample's outputs."""
    k = Z.shape[1]
    return 0.5 * ((Z - Y) ** 2).sum(axis=1) / k, (Z - Y) / k


# -- layers ------------------------------------------------------------------------
# Each op has ``forward(p, X, training, stat_weight) -> output`` and
# ``backward(p, dY) -> (dX, {parameter: gradient})``, where ``p`` is the
# layer's entry of the weights (updated in place for running statistics),
# ``stat_weight`` the batch's sample weights (None: all equal) and ``dY`` the
# gradient of the whole step's objective, weights and normalisation already
# in: parameter gradients are plain sums over the batch.
class DenseOp:
    """``activation(X @ kernel + bias)`` on flat samples."""

    def __init__(self, spec, layer):
        self.activation = spec.activation
        if len(layer.input_shape) != 1:
            raise ValueError("The oracle's Dense takes flat samples only.")

    def forward(self, p, X, training, stat_weight):
        A = activate(self.activation, X @ p["kernel"] + p.get("bias", 0.0))
        self.cache = (X, A)
        return A

    def backward(self, p, dA):
        X, A = self.cache
        dZ = dA * activation_slope(self.activation, A)
        grads = {"kernel": X.T @ dZ}
        if "bias" in p:
            grads["bias"] = dZ.sum(axis=0)
        return dZ @ p["kernel"].T, grads


class Conv2DOp:
    """A 'valid' convolution (the twin's) and the spec's activation."""

    def __init__(self, spec, layer):
        if spec.padding != "valid" or spec.dilation != 1:
            raise ValueError("The oracle's Conv2D has padding='valid', dilation=1 only.")
        self.activation, self.strides = spec.activation, spec.strides

    def forward(self, p, X, training, stat_weight):
        Z = twins.conv2d_forward(X, p["kernel"], p.get("bias"), strides=self.strides)
        A = activate(self.activation, Z)
        self.cache = (X, A)
        return A

    def backward(self, p, dA):
        X, A = self.cache
        dZ = dA * activation_slope(self.activation, A)
        K = p["kernel"]
        dK, db = twins.conv2d_backward_params(X, dZ, kernel_hw=K.shape[2:],
                                              strides=self.strides)
        grads = {"kernel": dK}
        if "bias" in p:
            grads["bias"] = db
        return twins.conv2d_backward_input(dZ, K, X.shape[2:], strides=self.strides), grads


class MaxPool2DOp:
    """Maximum over 'valid' windows (the twin's)."""

    def __init__(self, spec, layer):
        if spec.padding != "valid":
            raise ValueError("The oracle's MaxPool2D has padding='valid' only.")
        self.pool_size, self.strides = spec.pool_size, spec.strides

    def forward(self, p, X, training, stat_weight):
        Y, argmax = twins.maxpool2d_forward(X, self.pool_size, self.strides)
        self.cache = (argmax, X.shape[2:])
        return Y

    def backward(self, p, dY):
        argmax, input_hw = self.cache
        return twins.maxpool2d_backward(dY, argmax, input_hw), {}


class FlattenOp:
    def __init__(self, spec, layer):
        pass

    def forward(self, p, X, training, stat_weight):
        self.shape = X.shape
        return X.reshape(X.shape[0], -1)

    def backward(self, p, dY):
        return dY.reshape(self.shape), {}


class BatchNormOp:
    """Batch normalization over axis 1, as its docstring states: while
    training, each channel is normalized by the batch's mean and biased
    variance over samples and positions, weighted by the sample weights (all
    equal without them); the running statistics are the moving averages of
    the batches' ones from zero, divided by ``1 - momentum**t`` after t
    batches (kept as ``moving_*`` and ``n_updates``); at inference the running
    statistics normalize."""

    def __init__(self, spec, layer):
        if layer.position != 0:  # the channel is the sample's first axis
            raise ValueError("The oracle's BatchNormalization has axis=1 only.")
        self.momentum, self.epsilon = spec.momentum, spec.epsilon

    def forward(self, p, X, training, stat_weight):
        n, C = X.shape[:2]
        x = X.reshape(n, C, -1)
        gamma = p.get("gamma", np.ones(C))[:, None]
        beta = p.get("beta", np.zeros(C))[:, None]
        if not training:
            xhat = ((x - p["moving_mean"][:, None])
                    / np.sqrt(p["moving_variance"][:, None] + self.epsilon))
            return (gamma * xhat + beta).reshape(X.shape)
        w = np.ones(n) if stat_weight is None else stat_weight
        # Each value's share of the statistics: its sample's weight, spread
        # over the channel's positions.
        share = w[:, None, None] / (w.sum() * x.shape[2])
        mean = (share * x).sum(axis=(0, 2))
        variance = (share * (x - mean[:, None]) ** 2).sum(axis=(0, 2))
        inv_std = 1.0 / np.sqrt(variance + self.epsilon)
        xhat = (x - mean[:, None]) * inv_std[:, None]
        m, t = self.momentum, p["n_updates"][0]
        for key, batch in (("moving_mean", mean), ("moving_variance", variance)):
            average = p[key] * (1.0 - m**t)  # the uncorrected moving average
            p[key][...] = (m * average + (1.0 - m) * batch) / (1.0 - m ** (t + 1))
        p["n_updates"][0] = t + 1
        self.cache = (xhat, inv_std, share, X.shape)
        return (gamma * xhat + beta).reshape(X.shape)

    def backward(self, p, dY):
        xhat, inv_std, share, shape = self.cache
        g = dY.reshape(xhat.shape)
        grads = {}
        if "gamma" in p:
            grads["gamma"] = (g * xhat).sum(axis=(0, 2))
        if "beta" in p:
            grads["beta"] = g.sum(axis=(0, 2))
        d_xhat = g * p.get("gamma", np.ones(g.shape[1]))[:, None]
        # Through xhat directly, and through the batch mean and variance,
        # which every value moves by its share.
        dx = inv_std[:, None] * (
            d_xhat - share * (d_xhat.sum(axis=(0, 2))[:, None]
                              + xhat * (d_xhat * xhat).sum(axis=(0, 2))[:, None]))
        return dx.reshape(shape), grads


class RecurrentOp:
    """LSTM or GRU on (n, steps, features), the last step's state out (the
    twins' cells)."""

    def __init__(self, spec, layer):
        if spec.return_sequences or spec.go_backwards:
            raise ValueError("The oracle's recurrent layers return the last state, "
                             "reading forwards, only.")
        self.cell = "lstm" if isinstance(spec, LSTM) else "gru"
        self.activations = dict(activation=spec.activation,
                                recurrent_activation=spec.recurrent_activation)

    def forward(self, p, X, training, stat_weight):
        state = twins.recurrent_forward(self.cell, X, p["kernel"], p["recurrent_kernel"],
                                        p.get("bias"), p.get("recurrent_bias"),
                                        **self.activations)
        self.cache = (X, state)
        return state.H[:, -1]

    def backward(self, p, dY):
        X, state = self.cache
        dX, dW, dU, db, dbh = twins.recurrent_backward(
            self.cell, dY[:, None, :], X, p["kernel"], p["recurrent_kernel"], state,
            **self.activations)
        grads = {"kernel": dW, "recurrent_kernel": dU}
        if "bias" in p:
            grads["bias"] = db
        if "recurrent_bias" in p:
            grads["recurrent_bias"] = dbh
        return dX, grads


OPS = {Dense: DenseOp, Conv2D: Conv2DOp, MaxPool2D: MaxPool2DOp, Flatten: FlattenOp,
       BatchNormalization: BatchNormOp, LSTM: RecurrentOp, GRU: RecurrentOp}


def initial_network(specs, sample_shape, n_outputs, random_state):
    """The layers ``fit`` builds (``specs``, then the output head) and their
    initial weights, drawn from ``random_state`` as ``fit`` draws them.

    Parameters
    ----------
    specs : list of layer specs
        The estimator's hidden layers.
    sample_shape : tuple of int
    n_outputs : int
    random_state : numpy.random.RandomState
        Advanced past the draws of the weights.

    Returns
    -------
    ops : list of (name, op)
        Each layer's name (as in ``get_weights``) and its oracle op.
    weights : dict
        ``{layer_name: {name: ndarray}}``, float64, as ``get_weights`` has them.
    """
    hidden = build_layers(specs, sample_shape, np.float64)
    shape = hidden[-1].output_shape if hidden else sample_shape
    head = ([Flatten(name="output_flatten")] if len(shape) > 1 else []) + [
        Dense(n_outputs, name="output")]
    all_specs = list(specs) + head
    layers = build_layers(all_specs, sample_shape, np.float64)
    network = Network(layers, np.float64)
    network.initialize(random_state)
    ops = []
    for spec, layer in zip(all_specs, layers):
        if type(spec) not in OPS:
            raise ValueError(f"The oracle has no {type(spec).__name__} layer.")
        if getattr(spec, "kernel_regularizer", None) is not None:
            raise ValueError("The oracle applies the estimator's l1 and l2 only.")
        ops.append((layer.name, OPS[type(spec)](spec, layer)))
    return ops, network.get_weights()


# -- optimizers and schedules ------------------------------------------------------
def momentum_of_epoch(spec, epoch):
    """SGD's momentum in ``epoch``: from ``initial_momentum`` in epoch 1 up
    linearly to ``momentum``, reached at epoch ``1 + momentum_ramp_epochs``."""
    if spec.initial_momentum is None or spec.momentum_ramp_epochs == 0:
        return spec.momentum
    progress = min(1.0, (epoch - 1) / spec.momentum_ramp_epochs)
    return spec.initial_momentum + progress * (spec.momentum - spec.initial_momentum)


def rule_increment(spec, g, state, lr, step, epoch):
    """The change the optimizer's own rule makes to a parameter (weight decay
    apart), from its clipped gradient ``g``; ``state`` (a dict of arrays, empty
    at first) is updated."""
    zeros = np.zeros_like(g)
    if isinstance(spec, SGD):
        mu = momentum_of_epoch(spec, epoch)
        velocity = mu * state.get("velocity", zeros) - lr * g
        state["velocity"] = velocity
        return mu * velocity - lr * g if spec.nesterov else velocity
    if isinstance(spec, Adagrad):
        acc = state.get("acc", np.full_like(g, spec.initial_accumulator)) + g**2
        state["acc"] = acc
        return -lr * g / (np.sqrt(acc) + spec.epsilon)
    if isinstance(spec, RMSprop):
        mean_square = spec.rho * state.get("ms", zeros) + (1 - spec.rho) * g**2
        state["ms"] = mean_square
        increment = lr * g / (np.sqrt(mean_square) + spec.epsilon)
        if spec.momentum > 0:
            increment = spec.momentum * state.get("velocity", zeros) + increment
            state["velocity"] = increment
        return -increment
    if isinstance(spec, Adadelta):
        eg = spec.rho * state.get("eg", zeros) + (1 - spec.rho) * g**2
        ed = state.get("ed", zeros)
        delta = np.sqrt(ed + spec.epsilon) / np.sqrt(eg + spec.epsilon) * g
        state["eg"], state["ed"] = eg, spec.rho * ed + (1 - spec.rho) * delta**2
        return -lr * delta
    if isinstance(spec, Adam):  # AdamW too
        m = spec.beta1 * state.get("m", zeros) + (1 - spec.beta1) * g
        v = spec.beta2 * state.get("v", zeros) + (1 - spec.beta2) * g**2
        state["m"], state["v"] = m, v
        # The bias corrections folded into the rate, epsilon added to sqrt(v).
        lr_t = lr * math.sqrt(1 - spec.beta2**step) / (1 - spec.beta1**step)
        return -lr_t * m / (np.sqrt(v) + spec.epsilon)
    if isinstance(spec, Adamax):
        m = spec.beta1 * state.get("m", zeros) + (1 - spec.beta1) * g
        u = np.maximum(spec.beta2 * state.get("u", zeros), np.abs(g))
        state["m"], state["u"] = m, u
        return -lr / (1 - spec.beta1**step) * m / (u + spec.epsilon)
    raise ValueError(f"The oracle has no optimizer {type(spec).__name__}.")


def scheduled_rate(schedule, base, max_epochs, epoch):
    """The rate of epoch ``epoch`` (from 1) of a schedule's run, by the
    formulas of the schedules' docstrings."""
    if schedule is None or schedule == "constant" or isinstance(schedule, Constant):
        return base
    if isinstance(schedule, InverseTimeDecay):
        return max(schedule.min_rate, base / (1.0 + schedule.decay * (epoch - 1)))
    if isinstance(schedule, EpochSchedule):
        started = [e for e in schedule.schedule if e <= epoch]
        return schedule.schedule[max(started)] if started else base
    if isinstance(schedule, Cosine):
        length = max_epochs if schedule.epochs is None else schedule.epochs
        return schedule.min_rate + (base - schedule.min_rate) * (
            1.0 + math.cos(math.pi * min(epoch - 1, length) / length)) / 2.0
    if isinstance(schedule, LinearWarmup):
        if epoch <= schedule.epochs:
            return base * epoch / schedule.epochs
        return scheduled_rate(schedule.then, base, max(1, max_epochs - schedule.epochs),
                              epoch - schedule.epochs)
    raise ValueError(f"The oracle has no schedule {schedule!r}.")


# -- the estimator -------------------------------------------------------------------
class TrainingOracle:
    """What an unfitted NNClassifier or NNRegressor's ``fit``,
    ``partial_fit`` and warm-started ``fit`` must leave in its weights.

    Parameters
    ----------
    estimator : NNClassifier or NNRegressor
        Only its parameters are read (``get_params``): dtype='float64', an
        int random_state, no callbacks, augmenters or dropout, and the layers,
        optimizers and schedules this module models.

    Attributes
    ----------
    weights : dict
        ``{layer_name: {name: ndarray}}``, as ``get_weights()`` returns them.
    loss_curve : list of float
        The training loss of every epoch (weighted mean, penalty included).
    learning_rates : list of float
        The rate of every epoch.
    initial_weights : dict
        The weights the first ``fit`` (or ``partial_fit``) started from.
    n_iter, n_steps, t : int
        Epochs, optimizer steps and samples seen.
    best_epoch : int or None
        The epoch whose weights early stopping kept, in the last ``fit``.
    """

    def __init__(self, estimator):
        self.params = estimator.get_params(deep=False)
        for name, needed in UNMODELLED.items():
            if self.params[name] != needed:
                raise ValueError(f"The oracle needs {name}={needed!r}.")
        if not isinstance(self.params["random_state"], int):
            raise ValueError("The oracle needs an int random_state.")
        self.classifier = "class_weight" in self.params
        self.weights = None

    # -- the API ------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def set_params(self, **params):
        """Change estimator parameters between calls (``warm_start``, say)."""
        self.params.update(params)
        return self

    # -- one call -----------------------------------------------------------
    def _fit(self, X, y, sample_weight, incremental, classes=None):
        P = self.params
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        first = self.weights is None or (not incremental and not P["warm_start"])
        if first:
            self.random_state = np.random.RandomState(P["random_state"])
            self._set_up_targets(y, classes)
        Y = self._encode(y)
        weights = None if sample_weight is None else np.asarray(sample_weight, np.float64)
        class_weights = self._class_weights(y)
        if class_weights is not None:  # multiplied into sample_weight
            weights = class_weights if weights is None else weights * class_weights
        if first:
            self.ops, self.weights = initial_network(P["layers"], X.shape[1:],
                                                     Y.shape[1], self.random_state)
            self.initial_weights = self._copy_weights()
            self.random_state.randint(2**31)  # fit seeds dropout here
            self.optimizer_state = {}
            self.n_iter = self.n_steps = self.t = 0
            self.loss_curve, self.learning_rates = [], []
            self.best_loss, self.no_improvement = np.inf, 0
        if first or not incremental:
            self.schedule_epoch = 0  # a fit starts the schedule afresh
        self.optimizer = (OPTIMIZERS[P["optimizer"]]() if isinstance(P["optimizer"], str)
                          else P["optimizer"])
        validation = None
        if P["early_stopping"] and not incremental:
            (X, Y, weights), validation = self._split(X, Y, y, weights)
        self.best_epoch, best, best_loss = None, None, np.inf
        for _ in range(1 if incremental else P["max_iter"]):
            self.schedule_epoch += 1
            rate = scheduled_rate(P["lr_schedule"], P["learning_rate"], P["max_iter"],
                                  self.schedule_epoch)
            train_loss = self._epoch(X, Y, weights, rate)
            monitored = train_loss if validation is None else self._loss(*validation)
            if monitored < best_loss:
                best_loss, best = monitored, self._copy_weights()
                self.best_epoch = self.n_iter
            if not incremental and self._converged(monitored):
                break
        if validation is not None:
            self.weights = best  # early stopping keeps the best epoch
            if P["final_epochs"]:
                X_val, Y_val, w_val = validation
                X, Y = np.concatenate([X, X_val]), np.concatenate([Y, Y_val])
                if weights is not None:
                    weights = np.concatenate([weights, w_val])
                for _ in range(P["final_epochs"]):
                    self._epoch(X, Y, weights, rate)  # at the last epoch's rate
        return self

    def _converged(self, loss):
        """Stop once the loss has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs in a row (scikit-learn's MLP rule)."""
        if loss > self.best_loss - self.params["tol"]:
            self.no_improvement += 1
        else:
            self.no_improvement = 0
        self.best_loss = min(self.best_loss, loss)
        return self.no_improvement > self.params["n_iter_no_change"]

    # -- targets and weights ------------------------------------------------
    def _set_up_targets(self, y, classes):
        if not self.classifier:
            self.loss_fn = squared_error
            return
        if self.params["loss"] != "log_loss":
            raise ValueError("The oracle's classifier has loss='log_loss' only.")
        self.multilabel = y.ndim == 2
        self.classes = (np.arange(y.shape[1]) if self.multilabel
                        else np.unique(y if classes is None else classes))
        # Softmax over several classes; a sigmoid for two, or per label.
        self.loss_fn = (softmax_log_loss if len(self.classes) > 2 and not self.multilabel
                        else sigmoid_log_loss)

    def _encode(self, y):
        if not self.classifier or self.multilabel:
            return (y.reshape(-1, 1) if y.ndim == 1 else y).astype(np.float64)
        if len(self.classes) == 2:
            return (y == self.classes[1]).astype(np.float64)[:, None]
        return (y[:, None] == self.classes[None, :]).astype(np.float64)

    def _class_weights(self, y):
        class_weight = self.params.get("class_weight")
        if class_weight is None:
            return None
        if self.multilabel:
            raise ValueError("The oracle has class weights for single-label targets only.")
        if isinstance(class_weight, dict):
            return np.array([class_weight.get(label, 1.0) for label in y], np.float64)
        balanced = compute_class_weight("balanced", classes=np.unique(y), y=y)
        return balanced[np.searchsorted(np.unique(y), y)]

    def _split(self, X, Y, y, weights):
        """The held-out part: ``ceil(validation_fraction * n)`` samples by
        train_test_split, seeded from the estimator's RandomState and
        stratified for classifiers; both parts in the order of the data."""
        n = X.shape[0]
        seed = self.random_state.randint(np.iinfo(np.int32).max)
        train, val = train_test_split(
            np.arange(n), test_size=int(np.ceil(self.params["validation_fraction"] * n)),
            random_state=seed,
            stratify=y if self.classifier and not self.multilabel else None)
        train, val = np.sort(train), np.sort(val)
        part = (lambda rows: None) if weights is None else (lambda rows: weights[rows])
        return (X[train], Y[train], part(train)), (X[val], Y[val], part(val))

    # -- epochs and steps ---------------------------------------------------
    def _epoch(self, X, Y, weights, rate):
        """One pass in batches; returns the training loss of the epoch."""
        P = self.params
        n = X.shape[0]
        batch_size = min(256 if P["batch_size"] == "auto" else P["batch_size"], n)
        total_weight = n if weights is None else weights.sum()
        order = self.random_state.permutation(n) if P["shuffle"] else np.arange(n)
        self.n_iter += 1
        epoch_loss = 0.0
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            w = np.ones(len(rows)) if weights is None else weights[rows]
            Z = self._forward(X[rows], training=True,
                              stat_weight=None if weights is None else w)
            losses, dZ = self.loss_fn(Z, Y[rows])
            # A step descends the batch's mean loss with every sample weighted
            # relative to the training set's mean weight (so a batch of little
            # weight takes a small step), plus the penalty.
            relative = w / (total_weight / n)
            grads = self._backward(dZ * (relative / len(rows))[:, None])
            penalty = self._add_penalty(grads)
            self.n_steps += 1
            self._update(grads, rate)
            epoch_loss += w @ losses + penalty * w.sum()
            self.t += len(rows)
        self.loss_curve.append(epoch_loss / total_weight)
        self.learning_rates.append(rate)
        return self.loss_curve[-1]

    def _forward(self, X, training=False, stat_weight=None):
        for name, op in self.ops:
            X = op.forward(self.weights.get(name, {}), X, training, stat_weight)
        return X

    def _backward(self, dZ):
        grads = {}
        for name, op in reversed(self.ops):
            dZ, layer_grads = op.backward(self.weights.get(name, {}), dZ)
            grads.update({(name, key): g for key, g in layer_grads.items()})
        return grads

    def _loss(self, X, Y, weights):
        """The weighted mean loss at inference (the validation loss)."""
        losses, _ = self.loss_fn(self._forward(X), Y)
        return losses.mean() if weights is None else weights @ losses / weights.sum()

    def _add_penalty(self, grads):
        """``l1 * sum(|w|) + l2 * sum(w**2)`` over the kernels; its gradient
        joins ``grads``."""
        l1, l2 = self.params["l1"], self.params["l2"]
        penalty = 0.0
        for (name, key), g in grads.items():
            if key in KERNELS:
                w = self.weights[name][key]
                penalty += l1 * np.abs(w).sum() + l2 * (w**2).sum()
                g += l1 * np.sign(w) + 2.0 * l2 * w
        return penalty

    def _update(self, grads, rate):
        spec = self.optimizer
        if spec.clipvalue is not None:
            grads = {k: np.clip(g, -spec.clipvalue, spec.clipvalue) for k, g in grads.items()}
        if spec.clipnorm is not None:
            norm = math.sqrt(sum((g**2).sum() for g in grads.values()))
            if norm > spec.clipnorm:
                grads = {k: g * (spec.clipnorm / norm) for k, g in grads.items()}
        for (name, key), g in grads.items():
            w = self.weights[name][key]
            increment = rule_increment(spec, g, self.optimizer_state.setdefault(
                (name, key), {}), rate, self.n_steps, self.n_iter)
            # Decoupled weight decay, on the kernels only, from the weights
            # before this step.
            decay = rate * spec.weight_decay * w if key in KERNELS else 0.0
            w += increment - decay

    def _copy_weights(self):
        return {name: {key: value.copy() for key, value in entries.items()}
                for name, entries in self.weights.items()}
