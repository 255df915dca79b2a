"""Optimizers as clone-safe specs, with their state kept apart.

A spec (:class:`SGD`, :class:`Adam`, ...) holds hyper-parameters only, so
``optimizer__beta1``-style names work in ``set_params`` and ``GridSearchCV``.
``init_state`` returns the arrays a run needs (velocity, moments) and ``step``
applies one update to the flat parameter buffer through one fused kernel pass
(:mod:`skdl._ops`).

Every optimizer shares three parameters:

- ``weight_decay``: decoupled weight decay (Loshchilov & Hutter), ``p -=
  learning_rate * weight_decay * p`` where the step's ``decay_mask`` is 1,
  applied beside the optimizer's own update, as PyTorch's ``AdamW`` does. This
  is not an L2 penalty added to the gradient (which adaptive methods would
  rescale); the estimators' L1/L2 penalties are that.
- ``clipvalue``: each gradient element is first clamped to ``[-clipvalue,
  clipvalue]``;
- ``clipnorm``: then the whole gradient is rescaled so its global L2 norm (over
  every parameter, computed in float64) is at most ``clipnorm``.

The order is value clip, then norm clip: the gradient a step uses is
``s * clip(g, -clipvalue, clipvalue)`` with ``s = min(1, clipnorm /
||clip(g, -clipvalue, clipvalue)||)``, so it satisfies both limits. Both are
folded into the update kernel; the caller's gradient buffer is not modified.
"""
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from . import _ops

_UNIT = Interval(Real, 0, 1, closed="left")
_POSITIVE = Interval(Real, 0, None, closed="neither")


class Optimizer(BaseEstimator, metaclass=ABCMeta):
    """Base class of optimizer specs.

    Subclasses list every parameter in ``__init__`` (those of their rule and
    the common ``weight_decay``, ``clipnorm`` and ``clipvalue``) and implement
    ``_state_fill`` and ``_update``.
    """

    _parameter_constraints: dict = {
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "clipnorm": [_POSITIVE, None],
        "clipvalue": [_POSITIVE, None],
    }

    def validate(self):
        """Check the parameters (``InvalidParameterError`` naming the bad one)."""
        validate_parameter_constraints(
            self._parameter_constraints, self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def _state_fill(self):
        """Name -> initial value of each state array this spec's steps use."""
        return {}

    def init_state(self, params):
        """State arrays for a run over the flat buffer ``params``.

        Parameters
        ----------
        params : ndarray of shape (n_params,)

        Returns
        -------
        state : dict of str -> ndarray of shape (n_params,), params' dtype
        """
        return {name: np.full_like(params, value)
                for name, value in self._state_fill().items()}

    def _state(self, state, params):
        # Arrays a step needs but ``state`` lacks are created at their initial
        # value: a warm start whose spec changed (say momentum set from 0 to
        # 0.9 between partial_fit calls) then starts that buffer afresh.
        for name, value in self._state_fill().items():
            if name not in state:
                state[name] = np.full_like(params, value)
        return state

    def step(self, params, grads, state, learning_rate, step, epoch=1,
             decay_mask=None):
        """Apply one update to ``params`` (and ``state``) in place.

        Parameters
        ----------
        params : ndarray of shape (n_params,), float32 or float64
            The flat parameter buffer, updated in place.
        grads : ndarray of shape (n_params,), params' dtype
            Its gradient; only read (clipping is folded into the update).
        state : dict
            From :meth:`init_state`; its arrays are updated in place.
        learning_rate : float >= 0
        step : int >= 1
            The number of this update in the run (Adam's bias correction).
        epoch : int >= 1, default=1
            The epoch this update belongs to (SGD's momentum ramp).
        decay_mask : ndarray of shape (n_params,) or None, default=None
            1.0 where ``weight_decay`` applies and 0.0 elsewhere (biases, say);
            None applies it everywhere.

        Returns
        -------
        finite : bool
            True when every updated parameter is finite.
        """
        common = dict(weight_decay=self.weight_decay, decay_mask=decay_mask,
                      clipnorm=self.clipnorm, clipvalue=self.clipvalue)
        state = self._state(state, params)
        return bool(self._update(params, grads, state, learning_rate, step, epoch,
                                 common))

    @abstractmethod
    def _update(self, params, grads, state, learning_rate, step, epoch, common):
        """Run the rule's op on the flat buffers; return its finiteness flag."""


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``velocity = mu * velocity - learning_rate * g``, then ``p += velocity``,
    or with Nesterov ``p += mu * velocity - learning_rate * g``.

    The momentum ``mu`` can ramp up over the first epochs, as pydnn's
    ``Momentum`` rule does: with ``initial_momentum`` set, epoch 1 uses it, and
    ``mu`` grows linearly to ``momentum``, reached at epoch
    ``1 + momentum_ramp_epochs`` and kept from then on.

    Parameters
    ----------
    momentum : float in [0, 1), default=0.0
    nesterov : bool, default=False
        Use Nesterov's momentum (needs a momentum > 0 to matter).
    initial_momentum : float in [0, 1) or None, default=None
        The momentum of the first epoch; None for no ramp.
    momentum_ramp_epochs : int >= 0, default=0
        Epochs over which the momentum goes from ``initial_momentum`` to
        ``momentum`` (0: no ramp, ``momentum`` from the start).
    weight_decay : float >= 0, default=0.0
        Decoupled weight decay (see :mod:`skdl.optimizers`).
    clipnorm : float > 0 or None, default=None
        Largest global L2 norm of the gradient, after ``clipvalue``.
    clipvalue : float > 0 or None, default=None
        Largest absolute value of each gradient element.
    """

    _parameter_constraints = {
        **Optimizer._parameter_constraints,
        "momentum": [_UNIT],
        "nesterov": ["boolean"],
        "initial_momentum": [_UNIT, None],
        "momentum_ramp_epochs": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, momentum=0.0, nesterov=False, initial_momentum=None,
                 momentum_ramp_epochs=0, *, weight_decay=0.0, clipnorm=None,
                 clipvalue=None):
        self.momentum = momentum
        self.nesterov = nesterov
        self.initial_momentum = initial_momentum
        self.momentum_ramp_epochs = momentum_ramp_epochs
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue

    def momentum_at(self, epoch):
        """The momentum used in ``epoch`` (counted from 1).

        Parameters
        ----------
        epoch : int >= 1

        Returns
        -------
        momentum : float
        """
        if epoch < 1:
            raise ValueError(f"epoch counts from 1, got {epoch}.")
        if self.initial_momentum is None or epoch > self.momentum_ramp_epochs:
            return float(self.momentum)
        start = float(self.initial_momentum)
        return start + (epoch - 1) / self.momentum_ramp_epochs * (self.momentum - start)

    def _uses_velocity(self):
        return self.momentum > 0 or self.initial_momentum is not None

    def _state_fill(self):
        # Plain SGD keeps no velocity: its kernel reads and writes one array less.
        return {"velocity": 0.0} if self._uses_velocity() else {}

    def _update(self, params, grads, state, learning_rate, step, epoch, common):
        velocity = state["velocity"] if self._uses_velocity() else None
        return _ops.sgd_update(params, grads, velocity, learning_rate,
                               self.momentum_at(epoch), self.nesterov, **common)


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011).

    ``acc += g**2``; ``p -= learning_rate * g / (sqrt(acc) + epsilon)``. Each
    parameter's step shrinks with its accumulated squared gradients.

    Parameters
    ----------
    epsilon : float > 0, default=1e-7
    initial_accumulator : float >= 0, default=0.1
        Starting value of the accumulator (Keras's default), which keeps the
        first steps from being ``learning_rate * sign(g)``.
    weight_decay : float >= 0, default=0.0
    clipnorm, clipvalue : float > 0 or None, default=None
        See :class:`SGD`.
    """

    _parameter_constraints = {
        **Optimizer._parameter_constraints,
        "epsilon": [_POSITIVE],
        "initial_accumulator": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, epsilon=1e-7, initial_accumulator=0.1, *, weight_decay=0.0,
                 clipnorm=None, clipvalue=None):
        self.epsilon = epsilon
        self.initial_accumulator = initial_accumulator
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue

    def _state_fill(self):
        return {"accumulator": self.initial_accumulator}

    def _update(self, params, grads, state, learning_rate, step, epoch, common):
        return _ops.adagrad_update(params, grads, state["accumulator"], learning_rate,
                                   self.epsilon, **common)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton, 2012), with optional momentum.

    ``ms = rho * ms + (1 - rho) * g**2``; ``inc = learning_rate * g /
    (sqrt(ms) + epsilon)``; ``p -= inc``, or with momentum ``velocity =
    momentum * velocity + inc; p -= velocity``. Epsilon is added after the
    square root, as in PyTorch.

    Parameters
    ----------
    rho : float in [0, 1), default=0.9
        Decay of the running mean of squared gradients.
    epsilon : float > 0, default=1e-7
    momentum : float in [0, 1), default=0.0
    weight_decay : float >= 0, default=0.0
    clipnorm, clipvalue : float > 0 or None, default=None
        See :class:`SGD`.
    """

    _parameter_constraints = {
        **Optimizer._parameter_constraints,
        "rho": [_UNIT],
        "epsilon": [_POSITIVE],
        "momentum": [_UNIT],
    }

    def __init__(self, rho=0.9, epsilon=1e-7, momentum=0.0, *, weight_decay=0.0,
                 clipnorm=None, clipvalue=None):
        self.rho = rho
        self.epsilon = epsilon
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue

    def _state_fill(self):
        fill = {"mean_square": 0.0}
        if self.momentum > 0:
            fill["velocity"] = 0.0
        return fill

    def _update(self, params, grads, state, learning_rate, step, epoch, common):
        return _ops.rmsprop_update(params, grads, state["mean_square"],
                                   state.get("velocity"), learning_rate, self.rho,
                                   self.epsilon, self.momentum, **common)


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012).

    ``Eg = rho * Eg + (1 - rho) * g**2``; ``d = sqrt(Ed + epsilon) / sqrt(Eg +
    epsilon) * g``; ``Ed = rho * Ed + (1 - rho) * d**2``; ``p -= learning_rate
    * d``. Zeiler's rule has no learning rate: the ratio of running averages
    sets the step's scale, so use ``learning_rate=1.0`` on the estimator (its
    default of 0.001, meant for Adam, makes Adadelta crawl).

    Parameters
    ----------
    rho : float in [0, 1), default=0.95
    epsilon : float > 0, default=1e-6
        Also sets the size of the first steps (about ``sqrt(epsilon)``).
    weight_decay : float >= 0, default=0.0
    clipnorm, clipvalue : float > 0 or None, default=None
        See :class:`SGD`.
    """

    _parameter_constraints = {
        **Optimizer._parameter_constraints,
        "rho": [_UNIT],
        "epsilon": [_POSITIVE],
    }

    def __init__(self, rho=0.95, epsilon=1e-6, *, weight_decay=0.0, clipnorm=None,
                 clipvalue=None):
        self.rho = rho
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue

    def _state_fill(self):
        return {"mean_square_grad": 0.0, "mean_square_delta": 0.0}

    def _update(self, params, grads, state, learning_rate, step, epoch, common):
        return _ops.adadelta_update(params, grads, state["mean_square_grad"],
                                    state["mean_square_delta"], learning_rate,
                                    self.rho, self.epsilon, **common)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014).

    ``m = beta1 * m + (1 - beta1) * g``; ``v = beta2 * v + (1 - beta2) *
    g**2``; ``p -= lr_t * m / (sqrt(v) + epsilon)`` with the bias corrections
    folded into ``lr_t = learning_rate * sqrt(1 - beta2**t) / (1 - beta1**t)``
    (scikit-learn's MLP does the same). With ``weight_decay > 0`` this is
    AdamW: the decay is decoupled.

    Parameters
    ----------
    beta1 : float in [0, 1), default=0.9
    beta2 : float in [0, 1), default=0.999
    epsilon : float > 0, default=1e-8
    weight_decay : float >= 0, default=0.0
    clipnorm, clipvalue : float > 0 or None, default=None
        See :class:`SGD`.
    """

    _parameter_constraints = {
        **Optimizer._parameter_constraints,
        "beta1": [_UNIT],
        "beta2": [_UNIT],
        "epsilon": [_POSITIVE],
    }

    def __init__(self, beta1=0.9, beta2=0.999, epsilon=1e-8, *, weight_decay=0.0,
                 clipnorm=None, clipvalue=None):
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue

    def _state_fill(self):
        return {"m": 0.0, "v": 0.0}

    def _update(self, params, grads, state, learning_rate, step, epoch, common):
        return _ops.adam_update(params, grads, state["m"], state["v"], learning_rate,
                                self.beta1, self.beta2, self.epsilon, step, **common)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    The same update as :class:`Adam` with ``weight_decay`` on by default:
    ``p -= learning_rate * weight_decay * p`` where the decay mask is 1, apart
    from Adam's adaptive step (so the decay is not rescaled by ``sqrt(v)``).

    Parameters
    ----------
    beta1 : float in [0, 1), default=0.9
    beta2 : float in [0, 1), default=0.999
    epsilon : float > 0, default=1e-8
    weight_decay : float >= 0, default=0.01
    clipnorm, clipvalue : float > 0 or None, default=None
        See :class:`SGD`.
    """

    def __init__(self, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01, *,
                 clipnorm=None, clipvalue=None):
        super().__init__(beta1=beta1, beta2=beta2, epsilon=epsilon,
                         weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue)


class Adamax(Optimizer):
    """Adamax, Adam with the infinity norm (Kingma & Ba, 2014, section 7.1).

    ``m = beta1 * m + (1 - beta1) * g``; ``u = max(beta2 * u, |g|)``; ``p -=
    learning_rate / (1 - beta1**t) * m / (u + epsilon)``.

    Parameters
    ----------
    beta1 : float in [0, 1), default=0.9
    beta2 : float in [0, 1), default=0.999
    epsilon : float > 0, default=1e-7
    weight_decay : float >= 0, default=0.0
    clipnorm, clipvalue : float > 0 or None, default=None
        See :class:`SGD`.
    """

    _parameter_constraints = {
        **Optimizer._parameter_constraints,
        "beta1": [_UNIT],
        "beta2": [_UNIT],
        "epsilon": [_POSITIVE],
    }

    def __init__(self, beta1=0.9, beta2=0.999, epsilon=1e-7, *, weight_decay=0.0,
                 clipnorm=None, clipvalue=None):
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue

    def _state_fill(self):
        return {"m": 0.0, "u": 0.0}

    def _update(self, params, grads, state, learning_rate, step, epoch, common):
        return _ops.adamax_update(params, grads, state["m"], state["u"], learning_rate,
                                  self.beta1, self.beta2, self.epsilon, step, **common)


# Names for the estimators' ``optimizer`` parameter, each with its defaults.
OPTIMIZERS = {
    "sgd": lambda: SGD(),
    "momentum": lambda: SGD(momentum=0.9),
    "nesterov": lambda: SGD(momentum=0.9, nesterov=True),
    "adagrad": lambda: Adagrad(),
    "rmsprop": lambda: RMSprop(),
    "adadelta": lambda: Adadelta(),
    "adam": lambda: Adam(),
    "adamax": lambda: Adamax(),
    "adamw": lambda: AdamW(),
}


def resolve_optimizer(optimizer):
    """Optimizer spec from a name or a spec (validated; the input is not changed).

    Parameters
    ----------
    optimizer : str or Optimizer

    Returns
    -------
    optimizer : Optimizer
    """
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"Unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)} "
                "or an instance of an skdl.optimizers class (SGD, Adagrad, RMSprop, "
                "Adadelta, Adam, Adamax, AdamW)."
            )
        return OPTIMIZERS[optimizer]()
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be a name or an skdl optimizer, got {optimizer!r}."
        )
    optimizer.validate()
    return optimizer
