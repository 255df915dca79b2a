"""Load the scripts in examples/ (not a package) for the tests that run them."""
import importlib.util
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    """The module examples/<name>.py, imported by path.

    As with ``python examples/<name>.py``, the examples folder is on
    ``sys.path`` while it is imported, so its own imports of the shared helpers
    (``import _text``) work.
    """
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module
