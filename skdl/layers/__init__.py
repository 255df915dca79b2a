"""Layer specs for the ``layers`` parameter of the estimators."""
from ._base import Layer, LayerSpec
from .core import Activation, Dense, Dropout, Flatten, Reshape

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Layer", "LayerSpec", "Reshape"]
