"""Weight initializers."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

from skdl._initializers import INITIALIZERS, initialize


@pytest.mark.parametrize("name", INITIALIZERS)
def test_shape_dtype_and_reproducibility(name):
    a = initialize(name, (30, 20), np.random.RandomState(0), np.float32)
    b = initialize(name, (30, 20), np.random.RandomState(0), np.float32)
    assert a.shape == (30, 20) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, variance", [
    ("glorot_uniform", 2 / (400 + 300)), ("glorot_normal", 2 / (400 + 300)),
    ("he_uniform", 2 / 400), ("he_normal", 2 / 400),
    ("lecun_uniform", 1 / 400), ("lecun_normal", 1 / 400),
])
def test_variance_scaling(name, variance):
    w = initialize(name, (400, 300), np.random.RandomState(0), np.float64)
    assert_allclose(w.var(), variance, rtol=0.03)
    assert abs(w.mean()) < 0.01 * np.sqrt(variance) * 10
    if name.endswith("uniform"):
        assert np.abs(w).max() <= np.sqrt(3 * variance)


def test_constant_and_orthogonal():
    assert (initialize("zeros", (3,), None, np.float32) == 0).all()
    assert (initialize("ones", (2, 2), None, np.float32) == 1).all()
    for shape in [(5, 8), (8, 5)]:
        q = initialize("orthogonal", shape, np.random.RandomState(0), np.float64)
        small = min(shape)
        gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
        assert_allclose(gram, np.eye(small), atol=1e-12)


def test_convolution_kernel_fans():
    # (out_channels, in_channels, kh, kw): fans multiply by the window.
    w = initialize("he_normal", (64, 32, 3, 3), np.random.RandomState(0), np.float64)
    assert_allclose(w.var(), 2 / (32 * 9), rtol=0.05)


def test_unknown_name():
    with pytest.raises(ValueError, match="Unknown initializer 'glorot_cauchy'"):
        initialize("glorot_cauchy", (2, 2), np.random.RandomState(0), np.float32)


def test_orthogonal_init_leaves_blas_threads_alone():
    # The QR runs on one BLAS thread (more would leave OpenBLAS's workers
    # spinning on the cores training needs next) and the limit is restored.
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        q = initialize("orthogonal", (6, 18), np.random.RandomState(0), np.float64)
        assert blas_threads() == before
    assert_allclose(q @ q.T, np.eye(6), atol=1e-12)
