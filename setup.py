"""Build the Cython kernels.

The OpenMP flag is added only when a probe program compiles and links with
the real compiler; otherwise the kernels build serial with a warning, and
``SKDL_FAIL_NO_OPENMP=1`` turns that fallback into an error.
``SKDL_CYTHON_DEBUG=1`` builds with bounds and wraparound checks on.
"""
import glob
import os
import shutil
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["_openmp", "_dense", "_activations", "_loss", "_optim", "_conv", "_pool",
           "_recurrent", "_norm"]
# The headers, .pxd and .pxi files the kernels share: editing one rebuilds
# every kernel (Cython tracks only the headers named in `cdef extern from`).
SHARED_SOURCES = sorted(
    path for pattern in ("*.h", "*.pxd", "*.pxi")
    for path in glob.glob(os.path.join("skdl", "_kernels", pattern))
)
OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 && omp_get_max_threads() > 0 ? 0 : 1;
    }
    """
)


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def openmp_flags(compiler_type):
    if compiler_type == "msvc":
        return ["/openmp"], []
    return ["-fopenmp"], ["-fopenmp"]


class BuildExtWithOpenMP(build_ext):
    """build_ext that probes OpenMP with the compiler it is about to use."""

    def _probe_openmp(self, compile_flags, link_flags):
        tmp = tempfile.mkdtemp(prefix="skdl-openmp-")
        try:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as f:
                f.write(OPENMP_PROBE)
            objects = self.compiler.compile(
                [source], output_dir=tmp, extra_postargs=compile_flags
            )
            self.compiler.link_executable(
                objects, "probe", output_dir=tmp, extra_postargs=link_flags
            )
            return True
        except Exception as exc:  # any compile or link failure means no OpenMP
            self._probe_error = exc
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build_extensions(self):
        compile_flags, link_flags = openmp_flags(self.compiler.compiler_type)
        if self._probe_openmp(compile_flags, link_flags):
            extra_compile, extra_link = compile_flags, link_flags
        else:
            message = (
                "skdl: the compiler cannot build OpenMP programs "
                f"({getattr(self, '_probe_error', 'unknown error')}); "
                "building the kernels serial (one thread)."
            )
            if _truthy("SKDL_FAIL_NO_OPENMP"):
                raise RuntimeError(message + " SKDL_FAIL_NO_OPENMP is set.")
            warnings.warn(message)
            extra_compile, extra_link = [], []
        if self.compiler.compiler_type == "msvc":
            base = ["/O2"]
        else:
            # errno from sqrt is never read; without it the loops vectorize.
            base = ["-O3", "-fno-math-errno"]
        for ext in self.extensions:
            compile_args = base + extra_compile
            ext.extra_compile_args = compile_args
            ext.extra_link_args = list(extra_link)
            ext.define_macros = [
                ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
                ("SKDL_COMPILE_ARGS", '"%s"' % " ".join(compile_args)),
                ("SKDL_LINK_ARGS", '"%s"' % " ".join(extra_link)),
            ]
        super().build_extensions()


def extensions():
    debug = _truthy("SKDL_CYTHON_DEBUG")
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "cdivision": not debug,
        "embedsignature": True,
    }
    exts = [
        Extension(
            f"skdl._kernels.{name}",
            [os.path.join("skdl", "_kernels", f"{name}.pyx")],
            include_dirs=[np.get_include(), os.path.join("skdl", "_kernels")],
            depends=SHARED_SOURCES,
        )
        for name in KERNELS
    ]
    return cythonize(exts, compiler_directives=directives, force=debug)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
