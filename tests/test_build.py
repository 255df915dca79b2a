"""The build: OpenMP present, flags as promised, show_config, thread count,
how libgomp is loaded."""
import io
import os
import sys

import pytest
from threadpoolctl import threadpool_limits

import skdl
from _fresh import in_fresh_python
from skdl._kernels import _openmp


@pytest.mark.skipif(os.environ.get("SKDL_SKIP_OPENMP_CHECK") == "1",
                    reason="SKDL_SKIP_OPENMP_CHECK=1: platform without OpenMP")
def test_built_with_openmp():
    assert _openmp.openmp_enabled(), (
        "skdl was built without OpenMP: the kernels run on one thread. Install a "
        "compiler with OpenMP support (e.g. gcc) and rebuild, or set "
        "SKDL_SKIP_OPENMP_CHECK=1 on a platform that has none."
    )
    compile_args, link_args = _openmp.compile_args()
    assert "-fopenmp" in compile_args.split() or "/openmp" in compile_args.split()


def test_optimization_flags():
    compile_args = _openmp.compile_args()[0].split()
    assert "-O3" in compile_args or "/O2" in compile_args
    assert "-ffast-math" not in compile_args
    assert not any(a.startswith("-march") for a in compile_args)


def test_thread_count_is_read_at_call_time():
    with threadpool_limits(1):
        assert _openmp.effective_n_threads() == 1
    if _openmp.openmp_enabled():
        with threadpool_limits(2):
            assert _openmp.effective_n_threads() == min(2, os.cpu_count())


def test_show_config():
    out = io.StringIO()
    skdl.show_config(file=out)
    text = out.getvalue()
    assert f"skdl {skdl.__version__}" in text
    assert f"OpenMP enabled:    {_openmp.openmp_enabled()}" in text
    for field in ("OpenMP threads:", "OpenMP idle wait:", "Matrix kernel:",
                  "Compile flags:"):
        assert field in text
    with threadpool_limits(1):
        assert skdl._config.config()["threads"] == 1


def test_kernels_call_no_blas():
    """No BLAS call can sit inside an OpenMP region and oversubscribe the
    cores: the kernels link no BLAS and fitting leaves BLAS's threads as set."""
    from pathlib import Path

    from threadpoolctl import threadpool_info

    sources = Path(__file__).resolve().parents[1] / "skdl" / "_kernels"
    pyx = sorted(sources.glob("*.pyx")) + sorted(sources.glob("*.pxd"))
    assert len(pyx) > 5
    for path in pyx:
        assert "cython_blas" not in path.read_text(), path.name
    import numpy as np

    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
    X = np.random.RandomState(0).rand(64, 16)
    skdl.NNClassifier([skdl.Conv1D(4, 3), skdl.Flatten()], input_shape=(1, -1),
                      max_iter=2).fit(X, np.arange(64) % 2)
    assert [(i["filepath"], i["num_threads"]) for i in threadpool_info()] == before


DISPLAY_ENV = """
import ctypes, os, subprocess, sys
{before}
import skdl
print("wait:", skdl._config.config()["openmp_wait"])
print("environ:", os.environ.get("GOMP_SPINCOUNT"))
print("child:", subprocess.run([sys.executable, "-c",
      "import os; print(os.environ.get('GOMP_SPINCOUNT'))"],
      capture_output=True, text=True).stdout.strip())
sys.stdout.flush()
gomp = ctypes.CDLL("libgomp.so.1")
if hasattr(gomp, "omp_display_env"):
    gomp.omp_display_env(1)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _openmp.openmp_enabled(),
                    reason="GOMP_SPINCOUNT is libgomp's (Linux builds with OpenMP)")
def test_libgomp_is_loaded_with_a_short_spin_that_leaves_the_environment_alone():
    out = in_fresh_python(DISPLAY_ENV.format(before=""))
    assert "wait: GOMP_SPINCOUNT=10000 (set by skdl" in out
    # Removed again: neither this process nor its children see it...
    assert "environ: None" in out and "child: None" in out
    # ...but libgomp read it (its own report, where it has one).
    if "OPENMP DISPLAY ENVIRONMENT" in out:
        assert "GOMP_SPINCOUNT = '10000'" in out


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _openmp.openmp_enabled(),
                    reason="GOMP_SPINCOUNT is libgomp's (Linux builds with OpenMP)")
def test_a_users_spin_count_or_an_earlier_libgomp_is_kept():
    out = in_fresh_python(DISPLAY_ENV.format(before=""), GOMP_SPINCOUNT="123")
    assert "wait: yours: GOMP_SPINCOUNT=123" in out
    assert "environ: 123" in out and "child: 123" in out
    if "OPENMP DISPLAY ENVIRONMENT" in out:
        assert "GOMP_SPINCOUNT = '123'" in out
    out = in_fresh_python(DISPLAY_ENV.format(before="ctypes.CDLL('libgomp.so.1')"))
    assert "wait: the OpenMP runtime's default (it was loaded before skdl)" in out
    assert "environ: None" in out
    if "OPENMP DISPLAY ENVIRONMENT" in out:
        assert "GOMP_SPINCOUNT = '10000'" not in out
