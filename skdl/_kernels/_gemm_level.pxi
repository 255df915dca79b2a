# Included by every module that compiles _rowgemm.h: each has its own copy of
# the kernel's version choice, so each needs these to read and set it.


def gemm_level():
    """The version of the matrix kernel in use: 2 AVX-512, 1 AVX2+FMA, 0 baseline."""
    return skdl_gemm_current()


def limit_gemm_level(int level):
    """Use at most this version of the matrix kernel in this module: 2 AVX-512,
    1 AVX2+FMA, 0 baseline, -1 the best the CPU has. Returns the version now
    in use. For tests, which run every version the CPU supports."""
    return skdl_gemm_limit(level)
