"""Thread-count and build introspection for the OpenMP kernels."""
import os

from joblib import cpu_count

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


def effective_n_threads():
    """Number of OpenMP threads a kernel started now would use.

    Read at every call, as scikit-learn does: ``omp_get_max_threads()`` follows
    ``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits`` and joblib's
    per-worker limits. Unless ``OMP_NUM_THREADS`` asks for more explicitly, the
    count is capped by the CPUs this process may use, so two cores never get
    four threads.
    """
    if not SKDL_OPENMP_ENABLED:
        return 1
    cdef int max_n_threads = omp_get_max_threads()
    if _OMP_NUM_THREADS_SET:
        return max(1, max_n_threads)
    return max(1, min(max_n_threads, _CPU_COUNT))
