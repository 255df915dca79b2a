"""Test-suite settings and shared fixtures."""
import numpy as np
import pytest
from hypothesis import settings
from sklearn.datasets import load_digits

from skdl._kernels import _conv

# Shape fuzzing draws the same examples on every run (seeded by each test), so
# a failure in CI reproduces anywhere; `pytest --hypothesis-profile=explore`
# draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits as float32 pixels in [0, 1] and labels (a fresh
    copy for each test module)."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(params=["channels_last", "planes"])
def unfolding(request):
    """Each way the convolution kernels unfold an input (chosen by its channel
    count): the tests of both layouts run with each."""
    default = _conv.patch_rows_min_channels()
    _conv.patch_rows_min_channels(1 if request.param == "channels_last" else 2**30)
    try:
        yield request.param
    finally:
        _conv.patch_rows_min_channels(default)
