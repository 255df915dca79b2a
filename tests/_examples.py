"""Load the scripts in examples/ (not a package) for the tests that run them."""
import importlib.util
from pathlib import Path


def load_example(name):
    """The module examples/<name>.py, imported by path."""
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
