"""Run code in a new Python interpreter that imports the skdl the tests import."""
import os
import subprocess
import sys
from pathlib import Path

import skdl


def in_fresh_python(code, **env):
    """stdout + stderr of ``code`` run by a new interpreter that imports the
    skdl these tests import (a checkout or an installed copy), with ``env``
    added to the environment (and skdl's OpenMP wait settings removed)."""
    root = str(Path(skdl.__file__).resolve().parents[1])
    full_env = {key: value for key, value in os.environ.items()
                if key not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    full_env.update(env, PYTHONPATH=root)
    # Run from there too: `python -c` puts its working directory first on
    # sys.path, where a checkout without built kernels would shadow skdl.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr
