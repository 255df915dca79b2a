"""Thread-count and build introspection for the OpenMP kernels, and the
record of which OpenMP threads ran each kernel's work."""
import os

from joblib import cpu_count
from libc.string cimport memset

from ._openmp cimport SKDL_OPENMP_ENABLED, omp_get_max_threads

# Read once: cgroup quotas and the affinity mask do not change while a process
# runs, and OpenMP itself reads OMP_NUM_THREADS only at start-up (later
# changes go through omp_set_num_threads, which omp_get_max_threads sees).
_CPU_COUNT = cpu_count()
_OMP_NUM_THREADS_SET = bool(os.environ.get("OMP_NUM_THREADS"))

cdef extern from *:
    """
    #ifndef SKDL_COMPILE_ARGS
        #define SKDL_COMPILE_ARGS ""
    #endif
    #ifndef SKDL_LINK_ARGS
        #define SKDL_LINK_ARGS ""
    #endif
    """
    const char* SKDL_COMPILE_ARGS
    const char* SKDL_LINK_ARGS


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP."""
    return bool(SKDL_OPENMP_ENABLED)


def compile_args():
    """Return the compile and link arguments the kernels were built with."""
    return (SKDL_COMPILE_ARGS.decode(), SKDL_LINK_ARGS.decode())


# GNU libgomp keeps its worker threads in a pool that a child made by
# fork() inherits without the threads: the child's first parallel region
# waits for them forever. So once this process has asked for more than one
# thread, a forked child runs every kernel on one thread (a region of one
# thread never touches the pool). Children started by spawn or forkserver
# (joblib's default loky backend among them) are new processes, unaffected.
_threads_used = False
_forked_after_threads = False


def _after_fork_in_child():
    global _forked_after_threads
    if _threads_used:
        _forked_after_threads = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked_after_threads():
    """True in a process forked after its parent ran multi-threaded kernels:
    there skdl uses one thread (see :func:`effective_n_threads`)."""
    return _forked_after_threads


def effective_n_threads():
    """Number of OpenMP threads a kernel started now would use.

    Read at every call, as scikit-learn does: ``omp_get_max_threads()`` follows
    ``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits`` and joblib's
    per-worker limits. Unless ``OMP_NUM_THREADS`` asks for more explicitly, the
    count is capped by the CPUs this process may use, so two cores never get
    four threads. In a child forked after this process used several threads
    it is 1, which keeps GNU libgomp from hanging there.
    """
    global _threads_used
    if not SKDL_OPENMP_ENABLED or _forked_after_threads:
        return 1
    cdef int n_threads = omp_get_max_threads()
    if not _OMP_NUM_THREADS_SET:
        n_threads = min(n_threads, _CPU_COUNT)
    if n_threads > 1:
        _threads_used = True
    return max(1, n_threads)


# -- the threads that ran each kernel ----------------------------------------
# Tests that compare one thread with two must know that two really ran: the
# thread count is capped by the CPUs this process may use, so on one CPU
# "two threads" silently means one.

cdef unsigned long long _thread_masks[64]
thread_masks = _thread_masks

cdef int _gemm_choice[2]
_gemm_choice[0] = -1
_gemm_choice[1] = -1
gemm_choice = _gemm_choice
if len(Kernel) > 64:
    raise ImportError(f"{len(Kernel)} kernels do not fit the 64 thread masks")


def threads_seen():
    """The OpenMP threads that ran each kernel since :func:`reset_threads_seen`.

    Returns
    -------
    dict
        Name of the kernel function (``"rowwise_gemm"``, ``"update"``, ...)
        -> number of distinct OpenMP thread numbers that ran iterations of its
        parallel loops, for each kernel that ran any.
    """
    cdef int k
    cdef unsigned long long mask
    seen = {}
    for kernel in Kernel:
        k = kernel
        mask = thread_masks[k]
        if mask:
            seen[kernel.name.lower()] = bin(mask).count("1")
    return seen


def reset_threads_seen():
    """Forget the threads recorded so far (call it while no kernel runs)."""
    memset(_thread_masks, 0, sizeof(_thread_masks))
