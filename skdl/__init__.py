"""skdl: deep learning for people who live in scikit-learn."""
from . import inspection, layers, optimizers, preprocessing, regularizers, schedules
from ._config import show_config
from ._estimators import NNClassifier, NNRegressor
from ._persistence import load, save
from ._version import __version__

# Every layer spec at the top level too (skdl.Dense is skdl.layers.Dense): a
# new layer is exported by listing it in skdl/layers/__init__.py alone.
from .layers import *  # noqa: E402,F401,F403

_LAYER_SPECS = [name for name in layers.__all__ if name not in ("Layer", "LayerSpec")]

__all__ = sorted(
    [
        "NNClassifier",
        "NNRegressor",
        "__version__",
        "inspection",
        "layers",
        "load",
        "optimizers",
        "preprocessing",
        "regularizers",
        "save",
        "schedules",
        "show_config",
    ]
    + _LAYER_SPECS
)
