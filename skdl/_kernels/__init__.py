"""Compiled Cython kernels. Only :mod:`skdl._ops` imports from here.

Between two parallel regions, libgomp's idle threads spin GOMP_SPINCOUNT
times (300,000 by default, a few milliseconds) before they sleep. On a quiet
machine that saves waking them for the next region; when another process
keeps a core busy, the spinning thread spends its share of that core, the
scheduler then lets it wait a whole time slice before it runs again, and
every parallel region waits for it: a training step of a small CNN took 100x
its time. skdl therefore loads libgomp with GOMP_SPINCOUNT=10000 (about a
tenth of a millisecond here, longer than the gap between two ops of a step):
on the machine of benchmarks/bench_load.py a CNN fit beside another fit, or
with a core busy, took 1.1x its quiet one-thread time instead of 1.5-3.7x,
and its quiet two-thread time did not change (1,000 or a passive wait policy
lost the second thread's gain; 50,000 took 1.5x under load).

libgomp reads its environment once, when it is loaded, so the variable is set
only for that moment and then removed: child processes and the rest of the
process see the environment as it was. A user's own GOMP_SPINCOUNT or
OMP_WAIT_POLICY is kept, and a libgomp loaded before skdl (by PyTorch, say)
keeps its settings. :data:`OPENMP_WAIT` says which happened.
"""
import os
import sys

SPIN_COUNT = 10_000


def _libgomp_loaded():
    """Whether the libgomp the kernels link (soname libgomp.so.1, which
    PyTorch's copy shares; scikit-learn's has a name of its own) is loaded."""
    import ctypes

    try:
        ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD)
    except OSError:
        return False
    return True


def _load_kernels():
    """Import the kernel that links libgomp, with skdl's spin count unless
    the user chose one or it cannot apply; return how OpenMP's idle threads
    wait."""
    own = {name: os.environ[name] for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
           if name in os.environ}
    linux = sys.platform == "linux"  # elsewhere: another runtime (libomp, vcomp)
    loaded = linux and not own and _libgomp_loaded()
    spin = linux and not own and not loaded
    if spin:
        os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    try:
        from . import _openmp  # noqa: F401
    finally:
        if spin:
            del os.environ["GOMP_SPINCOUNT"]
    if spin:
        return f"GOMP_SPINCOUNT={SPIN_COUNT} (set by skdl while loading libgomp)"
    if own:
        return "yours: " + ", ".join(f"{k}={v}" for k, v in own.items())
    return ("the OpenMP runtime's default (it was loaded before skdl)" if loaded
            else "the OpenMP runtime's default")


# How OpenMP's idle threads wait between parallel regions, as skdl found it.
OPENMP_WAIT = _load_kernels()
