"""skdl: deep learning for people who live in scikit-learn."""
from . import layers, optimizers
from ._config import show_config
from ._estimators import NNClassifier, NNRegressor
from ._version import __version__
from .layers import Activation, Dense, Dropout, Flatten, Reshape

__all__ = [
    "Activation",
    "Dense",
    "Dropout",
    "Flatten",
    "NNClassifier",
    "NNRegressor",
    "Reshape",
    "__version__",
    "layers",
    "optimizers",
    "show_config",
]
