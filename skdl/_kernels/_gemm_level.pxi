# Included by every module that compiles _rowgemm.h: the module's copy of the
# kernel reads and sets the process-wide version choice held by _openmp, so
# limiting the version here limits it in every module.
from ._openmp cimport gemm_choice
from ._rowgemm cimport skdl_gemm_current, skdl_gemm_limit, skdl_gemm_share

skdl_gemm_share(gemm_choice)


def gemm_level():
    """The version of the matrix kernel in use: 2 AVX-512, 1 AVX2+FMA, 0 baseline."""
    return skdl_gemm_current()


def limit_gemm_level(int level):
    """Use at most this version of the matrix kernel, in every kernel module:
    2 AVX-512, 1 AVX2+FMA, 0 baseline, -1 the best the CPU has. Returns the
    version now in use. For tests, which run every version the CPU supports."""
    return skdl_gemm_limit(level)
