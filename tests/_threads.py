"""One thread against two, in tests that cannot pass on one thread unnoticed.

skdl caps its OpenMP thread count by the CPUs the process may use, so on one
CPU ``threadpool_limits(2)`` runs every kernel on one thread and a test that
compares one thread with two compares one with one, and passes whatever the
kernels do with threads. :class:`two_threads` skips such a test with the reason
(fails it under CI, which has two CPUs) and, after the block, asserts from the
kernels' own record (``_openmp.threads_seen``) that each kernel that ran in it
split its work over two threads.

skdl runs work too small to pay for a second thread on one thread
(``skdl._ops._threads.MIN_WORK_PER_THREAD``); inside :class:`two_threads` every op
splits whatever work it has (unless ``split_small_work=False``), so the
identity tests keep their small, fast inputs and still compare the kernels'
one-thread and two-thread results. The threshold has tests of its own.
"""
import os

import pytest
from joblib import cpu_count
from threadpoolctl import threadpool_limits

from skdl import _ops
from skdl._kernels import _openmp


def _in_ci():
    """CI sets CI=true; so do most CI services."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _why_not_two_threads():
    """Why kernels started now would not run two threads, or None."""
    n_threads = _openmp.effective_n_threads()
    if n_threads >= 2:
        return None
    if not _openmp.openmp_enabled():
        return "skdl was built without OpenMP"
    if _openmp.forked_after_threads():
        return "this process was forked after running threads, so skdl runs one thread"
    return (f"this process may use {cpu_count()} CPU, so skdl runs {n_threads} thread "
            "under threadpool_limits(2)")


def one_thread():
    """``threadpool_limits(1)``, to pair with :class:`two_threads` in
    ``for threads in (one_thread, two_threads): with threads(): ...``."""
    return threadpool_limits(1)


class two_threads:
    """Context manager: run the block with two threads, and check two ran.

    Where the kernels would run fewer than two threads (one usable CPU, a
    build without OpenMP, a forked child), the test is skipped with the
    reason, or fails when the ``CI`` environment variable is set: CI has two
    CPUs, and a thread test skipped there proves nothing. A platform without
    OpenMP (``SKDL_SKIP_OPENMP_CHECK=1``, as in ``test_build``) skips in CI too.

    Parameters
    ----------
    one_thread_ok : iterable of str
        Kernels (function names, as in ``_openmp.threads_seen()``) allowed to
        run on one thread in the block: their work is too small to split, and
        the test is not about them.
    split_small_work : bool
        True (the default) sets ``_ops._threads.MIN_WORK_PER_THREAD`` to 1 in the block,
        so ops split work of any size; False keeps skdl's threshold (for tests
        of the threshold itself).

    Raises
    ------
    AssertionError
        On leaving the block, when no kernel ran in it, or when a kernel not in
        ``one_thread_ok`` ran on one thread only: the test then compared one
        thread with one for that kernel, and must give it work enough to split.
    """

    def __init__(self, one_thread_ok=(), split_small_work=True):
        self.one_thread_ok = frozenset(one_thread_ok)
        self.split_small_work = split_small_work

    def __enter__(self):
        __tracebackhide__ = True  # a skip or failure points at the test's line
        self._limits = threadpool_limits(2)
        reason = _why_not_two_threads()
        if reason:
            self._limits.restore_original_limits()
            no_openmp_allowed = (not _openmp.openmp_enabled()
                                 and os.environ.get("SKDL_SKIP_OPENMP_CHECK") == "1")
            if _in_ci() and not no_openmp_allowed:
                pytest.fail(f"CI runs the thread tests on two threads, but {reason}")
            pytest.skip(f"needs two OpenMP threads, but {reason}")
        self._min_work = _ops._threads.MIN_WORK_PER_THREAD
        if self.split_small_work:
            _ops._threads.MIN_WORK_PER_THREAD = 1
        _openmp.reset_threads_seen()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        __tracebackhide__ = True
        self._limits.restore_original_limits()
        _ops._threads.MIN_WORK_PER_THREAD = self._min_work
        if exc_type is not None:
            return False
        seen = _openmp.threads_seen()
        assert seen, "no kernel ran inside two_threads()"
        single = sorted(name for name, n in seen.items()
                        if n < 2 and name not in self.one_thread_ok)
        assert not single, (
            f"under two_threads() these kernels ran on one thread only: {', '.join(single)}. "
            "Give them work enough to split, or the test compares one thread with one.")
        return False
