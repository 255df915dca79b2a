"""The public API's docstrings follow numpydoc: every public class, function
and method has one, and its Parameters section documents exactly the
arguments of its signature."""
import inspect

import pytest

import skdl
import skdl.augment
import skdl.callbacks
import skdl.inspection
import skdl.optimizers
import skdl.plot
import skdl.preprocessing
import skdl.regularizers
import skdl.schedules

validate = pytest.importorskip("numpydoc.validate").validate

MODULES = [skdl, skdl.augment, skdl.callbacks, skdl.inspection, skdl.optimizers,
           skdl.plot, skdl.preprocessing, skdl.regularizers, skdl.schedules]
try:  # needs the onnx extra (part of the test extra)
    import skdl.onnx
    MODULES.append(skdl.onnx)
except ImportError:
    pass
# GL08: no docstring; PR01: a parameter left out; PR02: a documented name
# that is no parameter (also what an unindented paragraph inside Parameters
# turns into).
CHECKS = ("GL08", "PR01", "PR02")


def _inherits_doc(cls, attr, member):
    """Whether ``member`` overrides a documented method of a base class
    without a docstring of its own (``help`` shows the base's then)."""
    return member.__doc__ is None and any(
        getattr(vars(base).get(attr), "__doc__", None) for base in cls.__mro__[1:])


def _public_api():
    names = set()
    for module in MODULES:
        exported = getattr(module, "__all__", None) or [
            name for name in dir(module) if not name.startswith("_")]
        for name in exported:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not obj.__module__.startswith("skdl"):
                continue  # re-exported from elsewhere
            names.add(f"{obj.__module__}.{obj.__qualname__}")
            # Methods under the skdl class that defines them (fit: BaseNN).
            for cls in obj.__mro__ if inspect.isclass(obj) else ():
                if not cls.__module__.startswith("skdl"):
                    continue
                for attr, member in vars(cls).items():
                    if (not attr.startswith("_") and inspect.isfunction(member)
                            and not _inherits_doc(cls, attr, member)):
                        names.add(f"{cls.__module__}.{cls.__qualname__}.{attr}")
    return sorted(names)


PUBLIC = _public_api()


def test_the_public_api_is_found():
    assert len(PUBLIC) > 100
    assert "skdl._estimators.BaseNN.fit" in PUBLIC
    assert "skdl.plot.plot_conv_filters" in PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_documents_exactly_the_parameters(name):
    errors = [f"{code}: {message}" for code, message in validate(name)["errors"]
              if code in CHECKS]
    assert not errors, "\n".join(errors)
