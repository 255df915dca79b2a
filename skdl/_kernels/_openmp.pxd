# OpenMP shim: compiles with and without OpenMP. Without it, the functions
# below are serial stand-ins and every prange runs on one thread.
cdef extern from *:
    """
    #ifdef _OPENMP
        #include <omp.h>
        #define SKDL_OPENMP_ENABLED 1
    #else
        #define SKDL_OPENMP_ENABLED 0
        static inline int omp_get_max_threads(void) { return 1; }
        static inline int omp_get_thread_num(void) { return 0; }
    #endif
    """
    bint SKDL_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil


# The kernels, each named after its function in skdl/_kernels: every prange
# body calls note_thread(ITS_NAME, t) so tests can tell which threads ran it.
cpdef enum Kernel:
    ACTIVATION_FORWARD
    ACTIVATION_BACKWARD
    CONV2D_FORWARD
    CONV2D_BACKWARD_INPUT
    CONV2D_BACKWARD_PARAMS
    ROWWISE_GEMM
    GEMM_TN
    WEIGHTED_COLUMN_SUM
    CSR_ROWS_PRODUCT
    CSC_WEIGHT_GRADIENT
    SOFTMAX_CROSS_ENTROPY
    SIGMOID_CROSS_ENTROPY
    SOFTMAX_HELLINGER
    SIGMOID_HELLINGER
    REGRESSION_LOSS
    CHANNEL_MOMENTS
    BATCHNORM_NORMALIZE
    CHANNEL_AFFINE
    BATCHNORM_GRAD_SUMS
    BATCHNORM_INPUT_GRAD
    PRELU_FORWARD
    PRELU_BACKWARD
    UPDATE
    SUM_OF_SQUARES
    ADD_PENALTY
    MAXPOOL2D_FORWARD
    MAXPOOL2D_BACKWARD
    AVGPOOL2D_FORWARD
    AVGPOOL2D_BACKWARD
    RECURRENT_FORWARD
    RECURRENT_BACKWARD
    LAYER_NORM_FORWARD
    LAYER_NORM_BACKWARD
    ATTENTION_FORWARD
    ATTENTION_BACKWARD
    RESIDUAL_ADD


cdef extern from *:
    """
    /* Atomic: threads of several teams (Python threads calling kernels at
       once) may set bits of the same word together. */
    static inline void skdl_atomic_or(unsigned long long *word, unsigned long long bits) {
    #ifdef _OPENMP
        #pragma omp atomic
    #endif
        *word |= bits;
    }
    """
    void skdl_atomic_or(unsigned long long* word, unsigned long long bits) noexcept nogil

# Bit t of thread_masks[k]: OpenMP thread number t ran iterations of kernel k
# (numbers from 63 on share bit 63). One array, in _openmp, for all modules.
cdef unsigned long long* thread_masks


cdef inline void note_thread(Kernel kernel, int thread) noexcept nogil:
    """Record that OpenMP thread number ``thread`` runs an iteration of ``kernel``.

    Called at the top of every prange body, with the thread number ``t`` read
    once per parallel block (``threadid()`` costs a call; a call per iteration
    showed on loops over short rows). Kernels declare ``cdef int t = 0``:
    Cython makes ``t`` firstprivate, and an undefined copy warns. The plain read comes first: once the bit
    is set, which is nearly always, the cost is a read of a cache line the
    threads share, never a write that would bounce it between them.
    """
    cdef unsigned long long bit = (<unsigned long long> 1) << min(thread, 63)
    if not (thread_masks[<int> kernel] & bit):
        skdl_atomic_or(&thread_masks[<int> kernel], bit)

# The matrix kernel's version choice for the process (see _rowgemm.h): [0]
# what the CPU supports, [1] a lower version asked for by the tests; -1 until
# known. Every module compiling _rowgemm.h reads and sets this one pair.
cdef int* gemm_choice
