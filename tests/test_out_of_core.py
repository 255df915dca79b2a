"""Training on data larger than memory: a memory-mapped X is read one batch
at a time (fit, partial_fit, early stopping's split, prediction), and
dask-ml's Incremental trains block by block exactly as partial_fit does."""
import tracemalloc
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skdl import Dense, NNClassifier, NNRegressor

N_SAMPLES, N_FEATURES = 50_000, 256  # 51 MB in float32
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def memmapped(tmp_path_factory):
    """(path, y) of a float32 .npy file of 51 MB, written in slices."""
    path = tmp_path_factory.mktemp("data") / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(N_SAMPLES, N_FEATURES))
    rng = np.random.RandomState(0)
    for start in range(0, N_SAMPLES, 10_000):
        X[start:start + 10_000] = rng.rand(10_000, N_FEATURES)
    X.flush()
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    del X
    return path, y


def _peak_bytes(call):
    """The most memory numpy and Python held at once during ``call()``."""
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _small(**params):
    return NNClassifier([Dense(8)], max_iter=1, batch_size=256, random_state=0,
                        **params)


@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_and_partial_fit_on_a_memmap_read_one_batch_at_a_time(memmapped, shuffle):
    path, y = memmapped
    X = np.load(path, mmap_mode="r")
    clf = _small(shuffle=shuffle)
    assert _peak_bytes(lambda: clf.fit(X, y)) < 0.25 * X.nbytes
    assert _peak_bytes(lambda: clf.partial_fit(X, y)) < 0.25 * X.nbytes
    assert _peak_bytes(lambda: clf.predict_proba(X)) < 0.25 * X.nbytes
    assert clf.n_iter_ == 2 and clf.t_ == 2 * N_SAMPLES
    # The same model as from the array in memory: nothing but the copy differs.
    in_memory = _small(shuffle=shuffle).fit(np.array(X), y).partial_fit(np.array(X), y)
    assert_array_equal(clf.network_.params, in_memory.network_.params)


def test_early_stopping_on_a_memmap_copies_only_the_held_out_samples(memmapped):
    path, y = memmapped
    X = np.load(path, mmap_mode="r")
    clf = _small(early_stopping=True, validation_fraction=0.1, final_epochs=1)
    # The held-out tenth is copied (it is scored every epoch), the rest is not.
    assert _peak_bytes(lambda: clf.fit(X, y)) < (0.1 + 0.25) * X.nbytes
    in_memory = clone(clf).fit(np.array(X), y)
    assert_array_equal(clf.network_.params, in_memory.network_.params)
    assert clf.validation_scores_ == in_memory.validation_scores_


def test_a_float64_memmap_is_not_copied_when_dtype_is_float64(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64,
                                  shape=(20_000, 256))  # 41 MB
    X[:] = np.random.RandomState(0).rand(20_000, 256)
    y = X[:, 0] - X[:, 1]
    reg = NNRegressor([Dense(8)], max_iter=1, batch_size=256, random_state=0,
                      dtype="float64")
    assert _peak_bytes(lambda: reg.fit(X, y)) < 0.25 * X.nbytes
    assert _peak_bytes(lambda: reg.partial_fit(X, y)) < 0.25 * X.nbytes


def test_a_dtype_mismatch_converts_the_whole_memmap(tmp_path):
    # float64 data for a float32 network: converted once, a copy of X in float32
    # (documented in docs/scaling.md); store the data in the model's dtype.
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64,
                                  shape=(10_000, 256))  # 20 MB
    X[:] = np.random.RandomState(0).rand(10_000, 256)
    y = X[:, 0] - X[:, 1]
    reg = NNRegressor([Dense(8)], max_iter=1, batch_size=256, random_state=0)
    assert _peak_bytes(lambda: reg.fit(X, y)) >= 0.5 * X.nbytes


def test_dask_ml_incremental_equals_partial_fit_on_the_blocks_in_order():
    dask_ml = pytest.importorskip("dask_ml", reason="dask-ml is not installed")
    from dask_ml.wrappers import Incremental
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")

    rng = np.random.RandomState(0)
    X = rng.rand(300, 6).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    clf = NNClassifier([Dense(8)], batch_size=32, random_state=0)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        incremental = Incremental(clone(clf), shuffle_blocks=False).fit(
            da.from_array(X, chunks=100), da.from_array(y, chunks=100), classes=[0, 1])
        predicted = incremental.predict(da.from_array(X, chunks=100)).compute()
    reference = clone(clf)
    for start in range(0, 300, 100):
        reference.partial_fit(X[start:start + 100], y[start:start + 100],
                              classes=[0, 1])
    assert dask_ml.__version__
    assert incremental.estimator_.t_ == reference.t_ == 300
    assert_array_equal(incremental.estimator_.network_.params, reference.network_.params)
    assert_array_equal(predicted, reference.predict(X))
