"""skdl: deep learning for people who live in scikit-learn."""
from . import layers, optimizers
from ._config import show_config
from ._estimators import NNClassifier, NNRegressor
from ._version import __version__
from .layers import (
    Activation,
    AvgPool1D,
    AvgPool2D,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    MaxPool1D,
    MaxPool2D,
    Reshape,
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
    "MaxPool1D",
    "MaxPool2D",
    "NNClassifier",
    "NNRegressor",
    "Reshape",
    "__version__",
    "layers",
    "optimizers",
    "show_config",
]
