"""The kernels' record of the threads that ran them, and the two-thread guard
of tests/_threads.py built on it."""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from _threads import one_thread, two_threads
from skdl import _ops
from skdl._kernels import _openmp

KERNEL_SOURCES = Path(__file__).resolve().parents[1] / "skdl" / "_kernels"


def _dense_inputs(n):
    rng = np.random.RandomState(0)
    return (rng.randn(n, 50).astype(np.float32), rng.randn(50, 40).astype(np.float32))


def test_one_thread_is_recorded_as_one():
    X, W = _dense_inputs(300)
    with one_thread():
        _openmp.reset_threads_seen()
        _ops.dense_forward(X, W, None, "relu")
        assert _openmp.threads_seen() == {"rowwise_gemm": 1}
    _openmp.reset_threads_seen()
    assert _openmp.threads_seen() == {}


def test_two_threads_with_work_to_split_are_recorded_as_two():
    X, W = _dense_inputs(300)
    with two_threads():
        _ops.dense_forward(X, W, None, "relu")
        _ops.regression_loss("huber", X, X)
    assert _openmp.threads_seen() == {"rowwise_gemm": 2, "regression_loss": 2}


def test_two_threads_fails_a_block_where_a_kernel_ran_on_one_thread():
    X, W = _dense_inputs(300)
    # One row is one panel of the product, and one row of the loss: one
    # thread runs each.
    with pytest.raises(AssertionError, match=r"ran on one thread only: rowwise_gemm\. "
                       "Give them work enough to split"):
        with two_threads():
            _ops.dense_forward(X[:1], W, None, "relu")
    # The message names the kernel that did not split, not those that did.
    with pytest.raises(AssertionError, match=r"one thread only: regression_loss\. Give"):
        with two_threads():
            _ops.dense_forward(X, W, None, "relu")
            _ops.regression_loss("huber", X[:1], X[:1])
    with two_threads(one_thread_ok=("regression_loss",)):
        _ops.dense_forward(X, W, None, "relu")
        _ops.regression_loss("huber", X[:1], X[:1])
    with pytest.raises(AssertionError, match="no kernel ran inside two_threads"):
        with two_threads():
            pass


# -- the work threshold: small work on the calling thread ------------------------

def test_small_work_runs_on_one_thread_and_large_work_on_two():
    # The README demo's first layer: a batch of 64 digits through 64 -> 100.
    X, W = np.ones((64, 64), np.float32), np.ones((64, 100), np.float32)
    with threadpool_limits(2):
        _openmp.reset_threads_seen()
        _ops.dense_forward(X, W, None, "relu")
        _ops.activation_forward("tanh", X)
        assert _openmp.threads_seen() == {"rowwise_gemm": 1, "activation_forward": 1}
    big_X, big_W = _dense_inputs(2 * _ops._threads.MIN_WORK_PER_THREAD // (50 * 40) + 1)
    with two_threads(split_small_work=False):
        _ops.dense_forward(big_X, big_W, None, "relu")
    assert _openmp.threads_seen() == {"rowwise_gemm": 2}


def test_threads_for_gives_one_thread_per_min_work_up_to_the_limit():
    least = _ops._threads.MIN_WORK_PER_THREAD
    with threadpool_limits(2):
        allowed = _openmp.effective_n_threads()
        assert [_ops._threads.threads_for(w) for w in (0, 1, 2 * least - 1)] == [1, 1, 1]
        assert _ops._threads.threads_for(2 * least) == min(2, allowed)
        assert _ops._threads.threads_for(1000 * least) == allowed
    with threadpool_limits(1):
        assert _ops._threads.threads_for(1000 * least) == 1


def test_at_most_threads_caps_the_ops_of_this_python_thread_only():
    big_X, big_W = _dense_inputs(2 * _ops._threads.MIN_WORK_PER_THREAD // (50 * 40) + 1)
    with two_threads(split_small_work=False):
        with _ops.at_most_threads(1):
            _ops.dense_forward(big_X, big_W, None, "relu")
            assert _openmp.threads_seen() == {"rowwise_gemm": 1}
            # Another Python thread (a predict running beside the fit) keeps its count.
            with ThreadPoolExecutor(1) as pool:
                assert pool.submit(_ops._threads.threads_for, 1000 * _ops._threads.MIN_WORK_PER_THREAD
                                   ).result() == 2
        _ops.dense_forward(big_X, big_W, None, "relu")  # the cap is gone again
    assert _openmp.threads_seen() == {"rowwise_gemm": 2}


def _parallel_loops(source):
    """(function, kernel its first body line notes or None) for each prange of
    a kernel module's ``source``."""
    loops, function = [], None
    lines = source.splitlines()
    for i, line in enumerate(lines):
        defined = re.match(r"(?:def|cdef|cpdef) .*?(\w+)\(", line)
        if defined:
            function = defined.group(1)
        if re.match(r"\s*for \w+ in prange\(", line):
            noted = re.match(r"\s*note_thread\((\w+), t\)$", lines[i + 1])
            loops.append((function, noted.group(1) if noted else None))
    return loops


@pytest.mark.skipif(not KERNEL_SOURCES.joinpath("_dense.pyx").exists(),
                    reason="the kernels' .pyx sources are not beside the tests")
def test_every_parallel_loop_notes_its_threads_under_its_kernels_name():
    loops = []
    for path in sorted(KERNEL_SOURCES.glob("_*.pyx")):
        loops += _parallel_loops(path.read_text())
    for function, noted in loops:
        assert noted == function.upper(), (
            f"the first line of each prange body in {function} must be "
            f"note_thread({function.upper()}, t)")
    assert {noted for _, noted in loops} == {kernel.name for kernel in _openmp.Kernel}


# -- a thread test on one CPU ----------------------------------------------------

_ONE_CPU_PYTEST = (
    "import os, sys, pytest\n"
    "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)


def _thread_test_on_one_cpu(tmp_path, ci):
    """Run a real one-against-two-threads test in a child bound to one CPU,
    as ``taskset -c 0`` would; returns (exit code, output)."""
    test = Path(__file__).with_name("test_pooling.py")
    env = {key: value for key, value in os.environ.items()
           if key not in ("CI", "OMP_NUM_THREADS")}  # OMP_NUM_THREADS lifts the CPU cap
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    if ci:
        env["CI"] = "true"
    result = subprocess.run(
        [sys.executable, "-c", _ONE_CPU_PYTEST, "-q", "-rsf", "-p", "no:cacheprovider",
         "-p", "no:randomly", f"{test}::test_one_and_two_threads_agree"],
        capture_output=True, text=True, env=env, timeout=300,
        cwd=tmp_path)  # not the checkout: its skdl may be unbuilt
    return result.returncode, result.stdout + result.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                    reason="needs os.sched_setaffinity (Linux) to bind a process to one CPU")
@pytest.mark.skipif(not _openmp.openmp_enabled(),
                    reason="built without OpenMP: one thread on any number of CPUs")
def test_a_thread_test_on_one_cpu_skips_locally_and_fails_under_ci(tmp_path):
    code, out = _thread_test_on_one_cpu(tmp_path, ci=False)
    assert code == 0 and "1 skipped" in out, out
    assert re.search(r"SKIPPED .*needs two OpenMP threads, but this process may use 1 CPU, "
                     r"so skdl runs 1 thread", out), out
    code, out = _thread_test_on_one_cpu(tmp_path, ci=True)
    assert code == 1 and "1 failed" in out, out
    assert re.search(r"FAILED .*CI runs the thread tests on two threads, but this process "
                     r"may use 1 CPU", out), out
