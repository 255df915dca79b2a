"""Optimizer specs for the ``optimizer`` parameter of the estimators.

Each is a clone-safe spec whose parameters are searchable by name
(``optimizer__beta1``); the names ``'sgd'``, ``'momentum'``, ``'nesterov'``,
``'adagrad'``, ``'rmsprop'``, ``'adadelta'``, ``'adam'``, ``'adamax'`` and
``'adamw'`` give them with their defaults. All share ``weight_decay``
(decoupled), ``clipvalue`` and ``clipnorm`` (value clip first, then norm clip).
"""
from ._optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Optimizer,
    RMSprop,
)

__all__ = ["Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Optimizer", "RMSprop",
           "SGD"]
