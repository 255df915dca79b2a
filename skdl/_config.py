"""Build and runtime introspection: :func:`show_config`."""
import sys

from ._kernels import OPENMP_WAIT, _openmp
from ._version import __version__

# Versions of the matrix kernel (skdl/_kernels/_rowgemm.h), by level.
GEMM_LEVELS = {0: "baseline", 1: "AVX2+FMA", 2: "AVX-512"}


def config():
    """What was built and what a kernel would use now, as a dict."""
    from threadpoolctl import ThreadpoolController

    from ._kernels import _dense

    compile_args, link_args = _openmp.compile_args()
    # skdl's kernels call no BLAS; numpy's is listed for the user's own code.
    blas = [
        {key: info.get(key) for key in ("internal_api", "version", "num_threads",
                                        "architecture", "filepath")}
        for info in ThreadpoolController().info() if info["user_api"] == "blas"
    ]
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "openmp": _openmp.openmp_enabled(),
        "threads": _openmp.effective_n_threads(),
        "openmp_wait": OPENMP_WAIT,
        "matrix_kernel": GEMM_LEVELS[_dense.gemm_level()],
        "blas": blas,
        "compile_args": compile_args,
        "link_args": link_args,
    }


def show_config(file=None):
    """Print skdl's version, OpenMP status, thread count, matrix kernel and flags.

    Parameters
    ----------
    file : file-like, default=sys.stdout
    """
    cfg = config()
    lines = [
        f"skdl {cfg['version']} (Python {cfg['python']})",
        f"OpenMP enabled:    {cfg['openmp']}",
        f"OpenMP threads:    {cfg['threads']} (read now; follows OMP_NUM_THREADS "
        "and threadpoolctl)",
        f"OpenMP idle wait:  {cfg['openmp_wait']}",
    ]
    lines.append(f"Matrix kernel:     skdl's own, {cfg['matrix_kernel']} version")
    for blas in cfg["blas"]:
        lines.append(
            "BLAS (not used):   "
            f"{blas['internal_api']} {blas['version']}, {blas['architecture']}, "
            f"{blas['num_threads']} threads, {blas['filepath']}"
        )
    lines.append(f"Compile flags:     {cfg['compile_args']}")
    lines.append(f"Link flags:        {cfg['link_args'] or '(none)'}")
    print("\n".join(lines), file=file or sys.stdout)
