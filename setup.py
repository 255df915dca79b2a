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

# Every skdl/_kernels/_*.pyx is an extension module: a new kernel family is
# one new .pyx file.
KERNELS = sorted(os.path.basename(path)[:-len(".pyx")]
                 for path in glob.glob(os.path.join("skdl", "_kernels", "_*.pyx")))
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


# Where a hot loop lands in the module decides its speed on Intel CPUs from
# Skylake to Cascade Lake (the Xeons of many clouds): a jump that crosses or
# ends on a 32-byte boundary runs from the legacy decoders (the JCC
# erratum's microcode fix), and a loop split across 32-byte lines takes an
# extra fetch per trip. An unrelated edit moved the Conv1D unfolding loops
# and made a MNIST-1D step 7-9% slower. Loops aligned to 32 bytes and jumps
# kept off the boundaries (binutils >= 2.34) stay fast whatever lands before
# them. Each flag is used only when the compiler accepts it.
PLACEMENT_FLAGS = ["-falign-loops=32", "-Wa,-mbranches-within-32B-boundaries"]
PLAIN_PROBE = "int main(void) { return 0; }\n"


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def openmp_flags(compiler_type):
    if compiler_type == "msvc":
        return ["/openmp"], []
    return ["-fopenmp"], ["-fopenmp"]


class BuildExtWithOpenMP(build_ext):
    """build_ext that probes OpenMP with the compiler it is about to use."""

    def _probe(self, compile_flags, link_flags, code=OPENMP_PROBE):
        """True when ``code`` compiles and links with these flags."""
        tmp = tempfile.mkdtemp(prefix="skdl-probe-")
        try:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as f:
                f.write(code)
            objects = self.compiler.compile(
                [source], output_dir=tmp, extra_postargs=compile_flags
            )
            self.compiler.link_executable(
                objects, "probe", output_dir=tmp, extra_postargs=link_flags
            )
            return True
        except Exception as exc:  # any compile or link failure: not supported
            self._probe_error = exc
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build_extensions(self):
        compile_flags, link_flags = openmp_flags(self.compiler.compiler_type)
        if self._probe(compile_flags, link_flags):
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
            base += [flag for flag in PLACEMENT_FLAGS if self._probe([flag], [], PLAIN_PROBE)]
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
