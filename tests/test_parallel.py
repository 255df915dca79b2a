"""Searches over skdl estimators in parallel: joblib's process workers on one
machine, and a real dask.distributed cluster through joblib's dask backend."""
import os

import joblib
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.model_selection import (GridSearchCV, KFold, RandomizedSearchCV,
                                     StratifiedKFold, cross_val_score)

from skdl import Conv2D, Dense, Flatten, MaxPool2D, NNClassifier
from skdl._ops import effective_n_threads


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16, y[:240]


def _cnn(**params):
    params = {"input_shape": (1, 8, 8), "max_iter": 3, "batch_size": 32,
              "random_state": 0, **params}
    return NNClassifier([Conv2D(4, 3, padding="same", name="conv"), MaxPool2D(2),
                         Flatten(), Dense(16, name="hidden")], **params)


GRID = {"layers__conv__filters": [2, 4], "learning_rate": [3e-3, 1e-2]}


def _threads_in_worker(estimator, X, y):
    """A 'score': the OpenMP threads skdl's kernels use where it runs."""
    return effective_n_threads()


def _same_search_results(a, b):
    for key in ("mean_test_score", "split0_test_score", "split1_test_score",
                "rank_test_score"):
        assert_array_equal(a.cv_results_[key], b.cv_results_[key], err_msg=key)
    assert a.best_params_ == b.best_params_
    assert_array_equal(a.best_estimator_.network_.params, b.best_estimator_.network_.params)


# -- one machine -----------------------------------------------------------------

@pytest.fixture
def default_threads(monkeypatch):
    # joblib gives each worker cpu_count // n_jobs threads unless the user
    # chose a count for every process (OMP_NUM_THREADS).
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_grid_search_with_two_processes_equals_one(digits, default_threads):
    X, y = digits
    serial = GridSearchCV(_cnn(), GRID, cv=StratifiedKFold(2)).fit(X, y)
    parallel = GridSearchCV(_cnn(), GRID, cv=StratifiedKFold(2), n_jobs=2).fit(X, y)
    _same_search_results(serial, parallel)
    assert serial.best_score_ > 0.3  # it learned: ten classes, three epochs


def test_randomized_search_and_cross_val_score_with_two_processes_equal_one(
        digits, default_threads):
    X, y = digits
    distributions = {"layers__hidden__units": [8, 16, 32], "batch_size": [16, 32]}
    runs = [RandomizedSearchCV(_cnn(), distributions, n_iter=3, cv=KFold(2),
                               random_state=0, n_jobs=n_jobs).fit(X, y)
            for n_jobs in (1, 2)]
    _same_search_results(*runs)
    assert_array_equal(cross_val_score(_cnn(), X, y, cv=3),
                       cross_val_score(_cnn(), X, y, cv=3, n_jobs=2))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_each_worker_uses_cpu_count_over_n_jobs_threads(digits, default_threads, n_jobs):
    X, y = digits
    threads = cross_val_score(_cnn(max_iter=1), X, y, cv=2, n_jobs=n_jobs,
                              scoring=_threads_in_worker)
    # Capped by this process's CPUs (skdl never runs more threads than CPUs).
    cpus = min(joblib.cpu_count(), len(os.sched_getaffinity(0)))
    expected = cpus if n_jobs == 1 else max(joblib.cpu_count() // n_jobs, 1)
    assert_array_equal(threads, [min(expected, cpus)] * 2)


# -- a dask.distributed cluster ------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    # Two worker processes, as a real cluster has; no dashboard (no port to bind).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def test_grid_search_on_a_dask_cluster_equals_a_local_run(digits, dask_client):
    X, y = digits
    local = GridSearchCV(_cnn(), GRID, cv=StratifiedKFold(2)).fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(_cnn(), GRID, cv=StratifiedKFold(2), n_jobs=-1).fit(X, y)
        threads = cross_val_score(_cnn(max_iter=1), X, y, cv=2,
                                  scoring=_threads_in_worker, n_jobs=-1)
    _same_search_results(local, remote)
    # The fits ran in the cluster's worker processes: dask starts them with
    # OMP_NUM_THREADS=1, so each uses one thread and they share the cores.
    workers = dask_client.run(os.getpid)
    assert len(workers) == 2 and os.getpid() not in workers.values()
    assert_array_equal(threads, [1, 1])
    logs = dask_client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sum(logs.values()) >= len(local.cv_results_["params"]) * 2
