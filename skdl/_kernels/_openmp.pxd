# OpenMP shim: compiles with and without OpenMP. Without it, the functions
# below are serial stand-ins and every prange runs on one thread.
cdef extern from *:
    """
    #ifdef _OPENMP
        #include <omp.h>
        #define SKDL_OPENMP_ENABLED 1
    #else
        #define SKDL_OPENMP_ENABLED 0
        static int omp_get_max_threads(void) { return 1; }
        static int omp_get_thread_num(void) { return 0; }
    #endif
    """
    bint SKDL_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
