"""Optimizers as clone-safe specs, with their state kept apart.

A spec (:class:`SGD`, :class:`Adam`) holds hyper-parameters only, so
``optimizer__momentum``-style names work in ``set_params`` and
``GridSearchCV``. ``init_state`` returns the arrays a run needs (velocity,
moments) and ``step`` applies one update to the flat parameter buffer
through a fused kernel.
"""
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from . import _ops


class Optimizer(BaseEstimator):
    """Base class of optimizer specs."""

    _parameter_constraints: dict = {}

    def validate(self):
        validate_parameter_constraints(
            self._parameter_constraints, self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def init_state(self, params):
        """State arrays for a run over the flat buffer ``params``."""
        return {}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Parameters
    ----------
    momentum : float in [0, 1), default=0.0
    nesterov : bool, default=False
        Use Nesterov's momentum (needs ``momentum > 0`` to matter).
    """

    _parameter_constraints = {
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
    }

    def __init__(self, momentum=0.0, nesterov=False):
        self.momentum = momentum
        self.nesterov = nesterov

    def init_state(self, params):
        return {"velocity": np.zeros_like(params)}

    def step(self, params, grads, state, learning_rate, t):
        _ops.sgd_update(params, grads, state["velocity"], learning_rate,
                        self.momentum, self.nesterov)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014).

    Parameters
    ----------
    beta1 : float in [0, 1), default=0.9
    beta2 : float in [0, 1), default=0.999
    epsilon : float > 0, default=1e-8
    """

    _parameter_constraints = {
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "beta2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def init_state(self, params):
        return {"m": np.zeros_like(params), "v": np.zeros_like(params)}

    def step(self, params, grads, state, learning_rate, t):
        _ops.adam_update(params, grads, state["m"], state["v"], learning_rate,
                         self.beta1, self.beta2, self.epsilon, t)


OPTIMIZERS = {
    "sgd": lambda: SGD(),
    "momentum": lambda: SGD(momentum=0.9),
    "nesterov": lambda: SGD(momentum=0.9, nesterov=True),
    "adam": lambda: Adam(),
}


def resolve_optimizer(optimizer):
    """Optimizer spec from a name or a spec (validated; the input is not changed)."""
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"Unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)} "
                "or an instance of skdl.optimizers.SGD / Adam."
            )
        return OPTIMIZERS[optimizer]()
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be a name or an skdl optimizer, got {optimizer!r}."
        )
    optimizer.validate()
    return optimizer
