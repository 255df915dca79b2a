"""Layer specs for the ``layers`` parameter of the estimators."""
from ._base import Layer, LayerSpec
from .conv import Conv1D, Conv2D
from .core import Activation, Dense, Dropout, Flatten, Reshape
from .pooling import (
    AvgPool1D,
    AvgPool2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    MaxPool1D,
    MaxPool2D,
)

__all__ = [
    "Activation",
    "AvgPool1D",
    "AvgPool2D",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "Layer",
    "LayerSpec",
    "MaxPool1D",
    "MaxPool2D",
    "Reshape",
]
