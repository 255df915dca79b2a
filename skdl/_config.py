"""Build and runtime introspection: :func:`show_config`."""
import os
import sys

from ._kernels import _openmp
from ._version import __version__


def config():
    """What was built and what a kernel would use now, as a dict."""
    from threadpoolctl import ThreadpoolController

    compile_args, link_args = _openmp.compile_args()
    import scipy

    # The kernels call BLAS through scipy.linalg.cython_blas: prefer the
    # library scipy's wheel ships; otherwise list every BLAS loaded.
    scipy_libs = os.path.dirname(scipy.__file__) + ".libs"
    loaded = [info for info in ThreadpoolController().info() if info["user_api"] == "blas"]
    blas = [
        {key: info.get(key) for key in ("internal_api", "version", "num_threads",
                                        "threading_layer", "architecture", "filepath")}
        for info in ([i for i in loaded if i["filepath"].startswith(scipy_libs)] or loaded)
    ]
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "openmp": _openmp.openmp_enabled(),
        "threads": _openmp.effective_n_threads(),
        "blas": blas,
        "compile_args": compile_args,
        "link_args": link_args,
    }


def show_config(file=None):
    """Print skdl's version, OpenMP status, thread count, BLAS and build flags.

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
    ]
    for blas in cfg["blas"] or [{}]:
        lines.append(
            "BLAS (kernels):    "
            + (f"{blas['internal_api']} {blas['version']}, {blas['threading_layer']}, "
               f"{blas['architecture']}, {blas['num_threads']} threads, {blas['filepath']}"
               if blas else "scipy.linalg.cython_blas (library not identified)")
        )
    lines.append(f"Compile flags:     {cfg['compile_args']}")
    lines.append(f"Link flags:        {cfg['link_args'] or '(none)'}")
    print("\n".join(lines), file=file or sys.stdout)
