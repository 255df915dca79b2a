"""Optimizer specs for the ``optimizer`` parameter of the estimators."""
from ._optimizers import SGD, Adam, Optimizer

__all__ = ["Adam", "Optimizer", "SGD"]
