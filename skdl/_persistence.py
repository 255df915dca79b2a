"""A safe model file format: :func:`save` and :func:`load`.

A model file is a zip archive of two kinds of members:

- ``skdl-model.json``: the metadata, ``{"format": "skdl-model",
  "format_version": 1, "skdl_version": ..., "estimator": ..., "fitted": ...,
  "arrays": {name: {"dtype": ..., "shape": [...], "sha256": ...}}}``;
- ``arrays/<name>.npy``: every array, written and read by numpy with
  ``allow_pickle=False``.

Values are encoded in the JSON as follows: ``None``, bools, ints, floats (nan
and infinities included) and strings as they are; a list as a JSON list; a
tuple as ``{"tuple": [...]}``; a dict as ``{"dict": [[key, value], ...]}``; an
array as ``{"array": name}``; a numpy scalar as ``{"scalar": value, "dtype":
"float32"}``; a ``numpy.random.RandomState`` as ``{"random_state": ["MT19937",
{"array": name}, pos, has_gauss, cached_gaussian]}``; a PCG64
``numpy.random.Generator`` as ``{"generator": <its bit generator's state>}``;
and a spec (a layer, optimizer, schedule, regularizer, augmenter or callback
of skdl's own) as ``{"spec": "<module>.<qualname>", "params": {name:
value}}``. The estimator itself is a spec of ``NNClassifier`` or
``NNRegressor``.

Other scikit-learn estimators holding skdl's (a ``Pipeline``...) are saved
with ``skops.io``, each skdl estimator in them as a model file of this format
(see skdl/_skops.py).

Loading runs no code the file chooses: a spec names a class that is looked
up in a fixed allowlist of skdl's own classes (nothing is imported by name)
and is built by its ``__init__``, which only stores its arguments. The
fitted network is rebuilt by the estimator's own code from those
parameters, and the file's weights are copied into it after checks of their
dtype, shape and values.
"""
import contextlib
import functools
import hashlib
import inspect
import io
import json
import math
import os
import re
import types
import uuid
import zipfile
import zlib
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import InvalidParameterError

from . import augment, callbacks, layers, optimizers, regularizers, schedules
from ._estimators import NNClassifier, NNRegressor
from ._training import TrainingState
from ._version import __version__

__all__ = ["SUPPORTED_FORMAT_VERSION", "load", "save"]

# The newest layout of the model file this skdl reads (and the one it
# writes). Raise it when an older skdl could no longer read what this one
# writes; files of a newer format are then refused with a clear message.
SUPPORTED_FORMAT_VERSION = 1
FORMAT = "skdl-model"
METADATA_MEMBER = "skdl-model.json"
# The member naming a skops file (what save writes for a Pipeline...).
SKOPS_SCHEMA = "schema.json"
# The SHA-256 of every other member of a pipeline's file: skops keeps no
# checksums of its own, so an edited scaler's mean_ would load as edited.
PIPELINE_CHECKSUMS = "skdl-checksums.json"
ARRAY_PREFIX = "arrays/"
# Limits on what load reads: the metadata, and an .npy member beyond the
# bytes its declared dtype and shape need (numpy refuses headers longer
# than 10000 bytes).
MAX_METADATA_BYTES = 64 * 2**20
NPY_HEADER_BYTES = 16 * 2**10
MAX_ARRAY_NDIM = 32

# The modules whose spec classes a model file may name.
_SPEC_MODULES = (layers, optimizers, schedules, regularizers, augment, callbacks)
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}\Z")
# Booleans, signed and unsigned ints, float32/float64, unicode strings.
_ARRAY_DTYPE = re.compile(r"[<>|](b1|[iu][1248]|f[48]|U[0-9]{1,9})\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SCALAR_DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8",
                            "uint16", "uint32", "uint64", "float32", "float64"})
_METADATA_KEYS = frozenset({"format", "format_version", "skdl_version", "estimator",
                            "fitted", "arrays"})
# What reading a damaged or crafted archive can raise (RuntimeError: an
# encrypted member; NotImplementedError: an unknown compression).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError,
               NotImplementedError, zlib.error)
_TRUSTED_ONLY = "pickle or joblib can save it (for loading from trusted sources only)"
# Marks a fitted ``_random_state`` that is the ``random_state`` parameter
# itself (a RandomState instance), as fit leaves it.
_SAME_AS_PARAMETER = "random_state"


def _class_key(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


_ESTIMATORS = types.MappingProxyType(
    {_class_key(cls): cls for cls in (NNClassifier, NNRegressor)})


@functools.cache
def _spec_classes():
    """The spec classes a model file may name: those skdl's spec modules
    define or export that are scikit-learn estimators of skdl's own (not
    abstract), by ``"<module>.<qualname>"``."""
    found = {}
    for module in _SPEC_MODULES:
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseEstimator)
                    and value.__module__.startswith("skdl.")
                    and not inspect.isabstract(value)):
                found[_class_key(value)] = value
    return types.MappingProxyType(found)


# -- small helpers ------------------------------------------------------------

def _short(value, limit=80):
    """``repr(value)``, cut to ``limit`` characters (values from a file)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _join(path, name):
    return f"{path}.{name}" if path else name


def _is_int(value):
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _as_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or an os.PathLike, got "
                        f"{type(path).__name__}.")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must name a file with a str, got {path!r}.")
    return path


def _malformed(where, value):
    return ValueError(f"Malformed model file: {where} has an invalid encoding "
                      f"{_short(value)}.")


def _check_keys(value, keys, where):
    """``value`` as a dict with exactly ``keys``, else a ValueError."""
    if type(value) is not dict or set(value) != set(keys):
        raise ValueError(
            f"Malformed model file: {where} must be an object with the keys "
            f"{sorted(keys)}, got {_short(value)}."
        )
    return value


def _unsupported(path, value, reason):
    kind = type(value)
    return TypeError(
        f"{path} is a {kind.__module__}.{kind.__qualname__}, which skdl's safe model "
        f"format cannot store: {reason}; {_TRUSTED_ONLY}."
    )


# -- encoding -------------------------------------------------------------------

class _Writer:
    """Encodes values as the file's JSON, collecting the arrays to store.

    Attributes
    ----------
    arrays : dict of str to ndarray
        By the name the JSON refers to them with; an array object met twice
        is stored once.
    """

    def __init__(self):
        self.arrays = {}
        self._names = {}

    def encode(self, value, path):
        """The JSON encoding of ``value``; ``path`` names it in errors."""
        if isinstance(value, np.ndarray):
            if type(value) not in (np.ndarray, np.memmap):  # a matrix, a masked array
                raise _unsupported(path, value, "arrays must be plain numpy arrays")
            return {"array": self.add_array(value, path)}
        if isinstance(value, np.generic):  # before float: np.float64 is a float
            if value.dtype.name not in _SCALAR_DTYPES:
                raise _unsupported(path, value, "numpy scalars must be booleans, "
                                   "integers, float32 or float64")
            return {"scalar": value.item(), "dtype": value.dtype.name}
        if value is None or type(value) in (bool, int, float, str):
            return value
        if type(value) is list:
            return [self.encode(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if type(value) is tuple:
            return {"tuple": [self.encode(item, f"{path}[{i}]")
                              for i, item in enumerate(value)]}
        if type(value) is dict:
            return {"dict": [[self.encode(key, f"{path} (a key)"),
                              self.encode(item, f"{path}[{key!r}]")]
                             for key, item in value.items()]}
        if type(value) is np.random.RandomState:
            return {"random_state": self._random_state(value, path)}
        if type(value) is np.random.Generator:
            state = value.bit_generator.state
            if state.get("bit_generator") != "PCG64":
                raise _unsupported(path, value, "only generators over PCG64 are stored")
            return {"generator": state}
        if isinstance(value, BaseEstimator):
            return self.spec(value, path, _spec_classes())
        raise _unsupported(path, value, "it stores plain values, arrays and skdl's "
                           "own specs only")

    def spec(self, obj, path, allowed):
        """``{"spec": class, "params": ...}`` for an object of a class in ``allowed``."""
        key = _class_key(type(obj))
        if allowed.get(key) is not type(obj):
            raise _unsupported(path or "the estimator", obj,
                               "it is not one of skdl's own classes")
        return {"spec": key,
                "params": {name: self.encode(value, _join(path, name))
                           for name, value in obj.get_params(deep=False).items()}}

    def add_array(self, array, path):
        """Register ``array`` for storage; its name in the file."""
        if id(array) in self._names:
            return self._names[id(array)]
        if not _ARRAY_DTYPE.match(array.dtype.str):
            raise TypeError(
                f"{path} is an array of dtype {array.dtype}; skdl's safe model format "
                "stores arrays of booleans, integers, float32, float64 and strings "
                f"only (an object array would need pickle); {_TRUSTED_ONLY}."
            )
        # layers[0].weights -> layers.0.weights; _optimizer_state['m'] -> _optimizer_state.m
        base = re.sub(r"[^A-Za-z0-9_.\-]", "",
                      path.replace("[", ".").replace("]", "")).strip(".")[:100] or "array"
        name, count = base, 1
        while name in self.arrays:
            count += 1
            name = f"{base}_{count}"
        self.arrays[name] = array  # keeps it alive, so its id stays its own
        self._names[id(array)] = name
        return name

    def _random_state(self, value, path):
        state = value.get_state(legacy=True)
        if not isinstance(state, tuple):
            raise _unsupported(path, value, "only RandomStates over MT19937 are stored")
        kind, keys, pos, has_gauss, cached_gaussian = state
        return [kind, {"array": self.add_array(keys, f"{path}.keys")}, int(pos),
                int(has_gauss), float(cached_gaussian)]


# -- decoding -------------------------------------------------------------------

# The keys of each tagged JSON object, and the _Reader method that decodes it.
_TAGS = types.MappingProxyType({
    frozenset({"tuple"}): "_tuple",
    frozenset({"dict"}): "_dict",
    frozenset({"array"}): "array_ref",
    frozenset({"scalar", "dtype"}): "_scalar",
    frozenset({"spec", "params"}): "_nested_spec",
    frozenset({"random_state"}): "_random_state",
    frozenset({"generator"}): "_generator",
})


class _Reader:
    """Decodes the file's JSON into values, from the arrays read and checked.

    Parameters
    ----------
    arrays : dict of str to ndarray

    Attributes
    ----------
    used : set of str
        Names of the arrays the decoded values refer to.
    """

    def __init__(self, arrays):
        self.arrays = arrays
        self.used = set()

    def decode(self, value, path):
        """The value the JSON ``value`` encodes; ``path`` names it in errors."""
        if value is None or type(value) in (bool, int, float, str):
            return value
        if type(value) is list:
            return [self.decode(item, f"{path}[{i}]") for i, item in enumerate(value)]
        method = _TAGS.get(frozenset(value)) if type(value) is dict else None
        if method is None:
            raise _malformed(path, value)
        return getattr(self, method)(value, path)

    def array_ref(self, value, path):
        """The array ``{"array": name}`` refers to."""
        name = _check_keys(value, {"array"}, path)["array"]
        if type(name) is not str or name not in self.arrays:
            raise ValueError(f"Malformed model file: {path} refers to the array "
                             f"{_short(name)}, which the file does not declare.")
        self.used.add(name)
        return self.arrays[name]

    def spec(self, value, path, allowed):
        """An object of a class in ``allowed``, built from its decoded parameters."""
        _check_keys(value, {"spec", "params"}, path or "the estimator")
        name, params = value["spec"], value["params"]
        cls = allowed.get(name) if type(name) is str else None
        if cls is None:
            raise ValueError(
                f"The model file names the class {_short(name)} at "
                f"{path or 'the estimator'}, which is not allowed: a model file can "
                "only name skdl's NNClassifier, NNRegressor and skdl's own layer, "
                "optimizer, schedule, regularizer, augmenter and callback specs."
            )
        if type(params) is not dict:
            raise _malformed(f"the parameters of {path or 'the estimator'}", params)
        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise ValueError(f"The model file gives {name} (at {path or 'the estimator'})"
                             f" parameters it does not have: {_short(unknown)}.")
        decoded = {key: self.decode(item, _join(path, key)) for key, item in params.items()}
        # Parameters added since older files were written, with the value
        # those files meant (a Conv1D's data_format: channels-first).
        for key, value in getattr(cls, "_missing_params", {}).items():
            decoded.setdefault(key, value)
        try:
            return cls(**decoded)
        except TypeError as error:  # e.g. a required parameter left out
            raise ValueError(f"The model file's parameters for {name} (at "
                             f"{path or 'the estimator'}) do not fit it: {error}") from None

    def _nested_spec(self, value, path):
        return self.spec(value, path, _spec_classes())

    def _tuple(self, value, path):
        items = value["tuple"]
        if type(items) is not list:
            raise _malformed(path, value)
        return tuple(self.decode(item, f"{path}[{i}]") for i, item in enumerate(items))

    def _dict(self, value, path):
        pairs = value["dict"]
        if type(pairs) is not list:
            raise _malformed(path, value)
        decoded = {}
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                raise _malformed(path, pair)
            key = self.decode(pair[0], f"{path} (a key)")
            try:
                hash(key)
            except TypeError:
                raise _malformed(f"{path} (a key)", pair[0]) from None
            if key in decoded:
                raise ValueError(f"Malformed model file: {path} has the key "
                                 f"{_short(key)} twice.")
            decoded[key] = self.decode(pair[1], f"{path}[{key!r}]")
        return decoded

    def _scalar(self, value, path):
        dtype, item = value["dtype"], value["scalar"]
        if dtype not in _SCALAR_DTYPES:
            raise _malformed(path, value)
        kind = np.dtype(dtype).kind
        fits = (type(item) is bool if kind == "b" else
                type(item) is int if kind in "iu" else type(item) in (int, float))
        if not fits:
            raise _malformed(path, value)
        try:
            return np.dtype(dtype).type(item)
        except OverflowError:
            raise _malformed(path, value) from None

    def _random_state(self, value, path):
        state = value["random_state"]
        if type(state) is not list or len(state) != 5 or state[0] != "MT19937":
            raise _malformed(path, value)
        keys = self.array_ref(state[1], f"{path}.keys")
        pos, has_gauss, cached_gaussian = state[2:]
        if not (keys.dtype == np.uint32 and keys.shape == (624,) and _is_int(pos)
                and 0 <= pos <= 624 and _is_int(has_gauss) and has_gauss in (0, 1)
                and _is_real(cached_gaussian)):
            raise _malformed(path, value)
        random_state = np.random.RandomState()
        random_state.set_state(("MT19937", keys, pos, has_gauss, float(cached_gaussian)))
        return random_state

    def _generator(self, value, path):
        state = value["generator"]
        try:
            _check_keys(state, {"bit_generator", "state", "has_uint32", "uinteger"}, path)
            _check_keys(state["state"], {"state", "inc"}, path)
        except ValueError:
            raise _malformed(path, value) from None
        counters = state["state"]
        if not (state["bit_generator"] == "PCG64"
                and all(_is_int(v) and 0 <= v < 2**128 for v in counters.values())
                and _is_int(state["has_uint32"]) and state["has_uint32"] in (0, 1)
                and _is_int(state["uinteger"]) and 0 <= state["uinteger"] < 2**32):
            raise _malformed(path, value)
        generator = np.random.Generator(np.random.PCG64())
        generator.bit_generator.state = state
        return generator


# -- fitted attributes ------------------------------------------------------------

def _expect(condition, name, expected, value):
    if not condition:
        raise ValueError(f"The fitted attribute {name} must be {expected}, got "
                         f"{_short(value)}.")
    return value


def _count(minimum):
    def check(value, name):
        return _expect(_is_int(value) and value >= minimum, name,
                       f"an int >= {minimum}", value)
    return check


def _real(value, name):
    return _expect(_is_real(value), name, "a number", value)


def _real_or_none(value, name):
    return _expect(value is None or _is_real(value), name, "a number or None", value)


def _reals(value, name):
    return _expect(type(value) is list and all(map(_is_real, value)), name,
                   "a list of numbers", value)


def _history(value, name):
    return _expect(
        type(value) is list and all(
            type(record) is dict
            and all(type(key) is str and (item is None or _is_real(item))
                    for key, item in record.items())
            for record in value),
        name, "a list of dicts of numbers", value)


def _shape(value):
    return (type(value) is tuple and len(value) > 0
            and all(_is_int(d) and d > 0 for d in value))


def _sample_shape(value, name):
    return _expect(
        _shape(value) or (type(value) is dict and len(value) > 0 and all(
            type(key) is str and _shape(shape) for key, shape in value.items())),
        name, "a tuple of positive ints or a dict of them by input name", value)


def _labels(value, name):
    return _expect(isinstance(value, np.ndarray) and value.ndim == 1 and value.size > 0,
                   name, "a non-empty 1-D array", value)


def _strings(value, name):
    return _expect(isinstance(value, np.ndarray) and value.ndim == 1
                   and value.dtype.kind == "U", name, "a 1-D array of str", value)


def _array_dict(value, name):
    return _expect(type(value) is dict and all(
        type(key) is str and isinstance(item, np.ndarray) for key, item in value.items()),
        name, "a dict of arrays by name", value)


def _generator(value, name):
    return _expect(type(value) is np.random.Generator, name, "a numpy Generator", value)


def _random_state_attribute(value, name):
    return _expect(type(value) is np.random.RandomState
                   or (type(value) is str and value == _SAME_AS_PARAMETER),
                   name, "a numpy RandomState", value)


_BINARIZER_TYPES = ("binary", "multiclass", "multilabel-indicator")


def _binarizer_state(value, name):
    _check_keys(value, {"y_type_", "sparse_input_", "neg_label", "pos_label",
                        "sparse_output"}, name)
    return _expect(
        type(value["y_type_"]) is str and value["y_type_"] in _BINARIZER_TYPES
        and type(value["sparse_input_"]) is bool and type(value["sparse_output"]) is bool
        and _is_int(value["neg_label"]) and _is_int(value["pos_label"])
        and value["neg_label"] < value["pos_label"],
        name, f"the state of a LabelBinarizer with y_type_ in {_BINARIZER_TYPES}", value)


# Attribute name: (check, required). A check takes (value, name) and returns
# the value or raises ValueError. Required ones are set from the first fit on;
# the others only once an epoch has run or when the data made them.
_COMMON_FITTED = {
    "input_shape_": (_sample_shape, True),
    "n_features_in_": (_count(1), True),
    "feature_names_in_": (_strings, False),
    "n_outputs_": (_count(1), True),
    "loss_": (_real, False),
    "loss_curve_": (_reals, True),
    "validation_scores_": (_reals, True),
    "best_loss_": (_real, True),
    "best_validation_score_": (_real_or_none, True),
    "history_": (_history, True),
    "learning_rate_": (_real, False),
    "n_iter_": (_count(0), True),
    "t_": (_count(0), True),
}
# Each field of TrainingState.SAVED: (check, required). The file stores them
# as fitted attributes named "_" + field (the estimator's own attributes
# before TrainingState existed, so older files load unchanged); a field
# missing here fails at import.
_STATE_CHECKS = {
    "random_state": (_random_state_attribute, True),
    "dropout_rng": (_generator, True),
    "augment_rng": (_generator, False),
    "optimizer_state": (_array_dict, True),
    "n_steps": (_count(0), True),
    "no_improvement_count": (_count(0), True),
}
_STATE_FITTED = {"_" + field: _STATE_CHECKS[field] for field in TrainingState.SAVED}
_OWN_FITTED = {
    NNClassifier: {"classes_": (_labels, True),
                   "_label_binarizer": (_binarizer_state, True)},
    NNRegressor: {"_y_ndim": (_count(1), True)},
}
# Attributes that may be object arrays (of one of these Python types).
_OBJECT_ARRAYS = ("classes_", "feature_names_in_")
_OBJECT_ITEM_TYPES = (str, int, float, bool)


def _fitted_schema(cls):
    return {**_COMMON_FITTED, **_OWN_FITTED[cls], **_STATE_FITTED}


_ABSENT = object()


def _fitted_value(est, name):
    """The fitted attribute ``name`` of ``est``, its training state's fields
    included; _ABSENT when it has none (an unset optional field is None)."""
    if name in _STATE_FITTED:
        state = getattr(est, "_training_state", None)
        value = _ABSENT if state is None else getattr(state, name[1:])
        return _ABSENT if value is None and not _STATE_FITTED[name][1] else value
    return getattr(est, name, _ABSENT)


def _plain_array(array, name):
    """An object array of labels as an array of str, int, float or bool,
    which ``.astype(object)`` turns back into the same Python values."""
    items = array.tolist()
    kinds = {type(item) for item in items}
    if len(kinds) != 1 or not kinds <= set(_OBJECT_ITEM_TYPES):
        raise TypeError(
            f"{name} is an object array of {sorted(k.__name__ for k in kinds)}; skdl's "
            "safe model format stores object arrays of one type among str, int, float "
            f"and bool only; {_TRUSTED_ONLY}."
        )
    return np.array(items)


def _fitted_state(est):
    """The fitted attributes as plain values (before encoding), and the names
    of those that were object arrays."""
    values, object_arrays = {}, []
    for name, (check, required) in _fitted_schema(type(est)).items():
        value = _fitted_value(est, name)
        if value is _ABSENT:
            if required:
                raise ValueError(f"This {type(est).__name__} has a network_ but no "
                                 f"{name}; fit it again before saving it.")
            continue
        if name == "_label_binarizer":
            if not np.array_equal(value.classes_, est.classes_):
                raise ValueError("The label binarizer's classes differ from classes_; "
                                 "fit the estimator again before saving it.")
            value = {key: getattr(value, key) for key in
                     ("y_type_", "sparse_input_", "neg_label", "pos_label",
                      "sparse_output")}
        elif name == "_random_state" and value is est.random_state:
            value = _SAME_AS_PARAMETER
        elif name in _OBJECT_ARRAYS and value.dtype == object:
            value = _plain_array(value, name)
            object_arrays.append(name)
        values[name] = check(value, name)
    return values, object_arrays


def _encode_fitted(est, writer):
    values, object_arrays = _fitted_state(est)
    return {
        "attributes": {name: writer.encode(value, name) for name, value in values.items()},
        "object_arrays": object_arrays,
        "network": {key: writer.encode(getattr(est.network_, key), f"network_.{key}")
                    for key in ("params", "buffers")},
    }


def _decode_fitted(est, fitted, reader):
    """The fitted attributes of ``fitted`` decoded and checked, one by one."""
    _check_keys(fitted, {"attributes", "object_arrays", "network"}, "fitted")
    attributes, object_arrays = fitted["attributes"], fitted["object_arrays"]
    schema = _fitted_schema(type(est))
    if type(attributes) is not dict:
        raise _malformed("fitted.attributes", attributes)
    unknown = sorted(set(attributes) - set(schema))
    missing = sorted(name for name, (_, required) in schema.items()
                     if required and name not in attributes)
    if unknown or missing:
        raise ValueError(
            f"The model file's fitted {type(est).__name__} has unknown attributes "
            f"{_short(unknown)} or lacks {missing}."
        )
    values = {name: schema[name][0](reader.decode(value, name), name)
              for name, value in attributes.items()}
    if (type(object_arrays) is not list
            or not all(name in _OBJECT_ARRAYS and name in values for name in object_arrays)):
        raise _malformed("fitted.object_arrays", object_arrays)
    for name in set(object_arrays):
        values[name] = values[name].astype(object)
    return values


def _check_outputs(est, values):
    """The fitted attributes agree with each other about the outputs."""
    n_outputs = values["n_outputs_"]
    names = values.get("feature_names_in_")
    if names is not None and len(names) != values["n_features_in_"]:
        raise ValueError(f"The model file has {len(names)} feature_names_in_ for "
                         f"n_features_in_={values['n_features_in_']}.")
    if isinstance(est, NNRegressor):
        if values["_y_ndim"] not in (1, 2) or (values["_y_ndim"] == 1 and n_outputs != 1):
            raise ValueError(f"The model file's regressor has _y_ndim="
                             f"{_short(values['_y_ndim'])} and n_outputs_={n_outputs}.")
        return
    classes, y_type = values["classes_"], values["_label_binarizer"]["y_type_"]
    if not np.array_equal(np.unique(classes), classes):
        raise ValueError("The model file's classes_ are not sorted and unique.")
    if y_type == "binary":
        fits = len(classes) == 2 and n_outputs == 1
    else:
        fits = n_outputs == len(classes) and (y_type != "multiclass" or len(classes) >= 2)
    if not fits:
        raise ValueError(
            f"The model file's classifier has {len(classes)} classes of type {y_type!r} "
            f"but n_outputs_={n_outputs}; {y_type!r} targets need "
            + ("2 classes and 1 output." if y_type == "binary"
               else "one output per class.")
        )


def _restore_network(est, network, reader):
    """The network the estimator's own code builds, holding the file's weights."""
    _check_keys(network, {"params", "buffers"}, "fitted.network")
    saved = {key: reader.array_ref(network[key], f"network_.{key}")
             for key in ("params", "buffers")}
    try:
        # Not initialized: a file declaring huge layers costs address space
        # only, until the size check below refuses it.
        built = est._build_network(est.n_outputs_, initialize=False)
    except InvalidParameterError:
        raise
    except (ValueError, TypeError) as error:
        raise ValueError(f"The model file's layers do not build a network for "
                         f"input_shape_={est.input_shape_}: {error}") from error
    if built.output_shape != (est.n_outputs_,):
        raise ValueError(f"The rebuilt network has outputs {built.output_shape}, but "
                         f"the model file's n_outputs_ is {est.n_outputs_}.")
    saved["buffers"] = _with_late_buffers(saved["buffers"], built)
    for key, value in saved.items():
        _check_fits(value, getattr(built, key), f"network_.{key}")
        getattr(built, key)[...] = value
    for layer in built.all_layers:
        for key, value in {**layer.params, **layer.buffers}.items():
            layer.validate_weight(key, value)
    for key, value in est._training_state.optimizer_state.items():
        _check_fits(value, built.params, f"_optimizer_state[{key!r}]")
    return built


def _with_late_buffers(saved, built):
    """The file's buffers, completed when the file predates some of the
    built layers' buffers (``Layer.late_buffers``, e.g. batch normalization's
    ``n_updates``): laid out without those, they get their default values.
    Any other mismatch is left for the caller's check to refuse."""
    late = [(layer.late_buffers[key], int(np.prod(shape)))
            if key in layer.late_buffers else (None, int(np.prod(shape)))
            for layer in built.all_layers for key, shape in layer.buffer_shapes.items()]
    old_size = sum(size for default, size in late if default is None)
    if (saved.shape == built.buffers.shape or saved.shape != (old_size,)
            or saved.dtype != built.buffers.dtype):
        return saved
    full = np.empty_like(built.buffers)
    start = old = 0
    for default, size in late:  # the order of Network._bind
        if default is None:
            full[start:start + size] = saved[old:old + size]
            old += size
        else:
            full[start:start + size] = default
        start += size
    return full


def _check_fits(saved, target, name):
    """The array ``saved`` from the file can take the place of ``target``."""
    if saved.dtype != target.dtype or saved.shape != target.shape:
        raise ValueError(
            f"The model file's array {name} ({saved.dtype}, shape {saved.shape}) does "
            f"not fit the network its layers build ({target.dtype}, shape "
            f"{target.shape})."
        )
    if not np.isfinite(saved).all():
        raise ValueError(f"The model file's array {name} contains NaN or infinity.")


def _restore_fitted(est, fitted, reader):
    """Set the fitted state of ``fitted`` on the unfitted ``est``."""
    values = _decode_fitted(est, fitted, reader)
    _check_outputs(est, values)
    binarizer = values.pop("_label_binarizer", None)
    if type(values["_random_state"]) is str:  # _SAME_AS_PARAMETER
        if type(est.random_state) is not np.random.RandomState:
            raise ValueError("The model file's _random_state refers to the random_state "
                             "parameter, which is not a RandomState.")
        values["_random_state"] = est.random_state
    state = TrainingState(values.pop("_random_state"))
    for name in list(values):
        if name in _STATE_FITTED:
            setattr(state, name[1:], values.pop(name))
    est._training_state = state
    for name, value in values.items():
        setattr(est, name, value)
    if binarizer is not None:
        est._label_binarizer = LabelBinarizer(
            neg_label=binarizer["neg_label"], pos_label=binarizer["pos_label"],
            sparse_output=binarizer["sparse_output"])
        est._label_binarizer.classes_ = est.classes_
        est._label_binarizer.y_type_ = binarizer["y_type_"]
        est._label_binarizer.sparse_input_ = binarizer["sparse_input_"]
    est.network_ = _restore_network(est, fitted["network"], reader)
    est._loss_fn = est._make_loss()


# -- the archive --------------------------------------------------------------------

def _zip_member(name):
    """A member header with a fixed date: the same model gives the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_archive(file, metadata, arrays):
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        table = {}
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            data = buffer.getvalue()
            archive.writestr(_zip_member(f"{ARRAY_PREFIX}{name}.npy"), data)
            table[name] = {"dtype": array.dtype.str, "shape": list(array.shape),
                           "sha256": hashlib.sha256(data).hexdigest()}
        metadata = {**metadata, "arrays": table}
        archive.writestr(_zip_member(METADATA_MEMBER),
                         json.dumps(metadata, indent=1).encode("utf-8"))


def _replace_atomically(path, write):
    """Call ``write(file)`` on a new file beside ``path``, then move it to
    ``path``: a failure leaves ``path`` as it was and no partial file."""
    directory, base = os.path.split(os.path.abspath(path))
    partial = os.path.join(directory, f".{base}.{uuid.uuid4().hex}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    handle = os.open(partial, flags, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def _damaged(path, error):
    return ValueError(f"{path!r} is not an skdl model file or is damaged: {error}")


def _read_member(archive, info, limit, path):
    """The bytes of one member, refusing more than ``limit`` of them."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{path!r}: the member {info.filename!r} uses an unsupported "
                         "compression method; skdl writes deflated members.")
    if info.file_size > limit:
        raise ValueError(
            f"{path!r}: the member {info.filename!r} holds more than the {limit} bytes "
            "its declared content needs; the file is damaged or crafted (a zip bomb?).")
    try:
        with archive.open(info) as member:
            # zipfile never returns more than the member's declared size.
            return member.read(limit)
    except _ZIP_ERRORS as error:
        raise _damaged(path, error) from None


def _unique_keys(pairs):
    """``json.loads`` hook: refuse objects that give a key twice."""
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in an object")
        result[key] = value
    return result


def _parse_metadata(data, path):
    try:
        metadata = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ValueError(f"{path!r} is not an skdl model file: its metadata is not "
                         f"valid JSON ({error}).") from None
    if type(metadata) is not dict or metadata.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not an skdl model file: its metadata does not "
                         f"declare the format {FORMAT!r}.")
    version = metadata.get("format_version")
    if not _is_int(version) or version < 1:
        raise ValueError(f"{path!r} is not an skdl model file: its format_version is "
                         f"{_short(version)}.")
    if version > SUPPORTED_FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written by skdl {_short(metadata.get('skdl_version'))} in "
            f"model format {version}; this skdl ({__version__}) reads format "
            f"{SUPPORTED_FORMAT_VERSION} and older. Upgrade skdl to load it."
        )
    _check_keys(metadata, _METADATA_KEYS, "the metadata")
    if (type(metadata["skdl_version"]) is not str or type(metadata["arrays"]) is not dict
            or type(metadata["estimator"]) is not dict
            or type(metadata["fitted"]) not in (dict, type(None))):
        raise ValueError(f"{path!r} is not an skdl model file: its metadata has "
                         "entries of the wrong types.")
    return metadata


def _array_table(table, path):
    """The declared arrays: name -> (dtype, shape, sha256), checked."""
    checked = {}
    for name, entry in table.items():
        if not _ARRAY_NAME.match(name):
            raise ValueError(f"{path!r} declares an array named {_short(name)}; array "
                             "names are 1 to 128 letters, digits, '_', '.' and '-'.")
        where = f"the metadata of array {name!r}"
        _check_keys(entry, {"dtype", "shape", "sha256"}, where)
        dtype, shape, digest = entry["dtype"], entry["shape"], entry["sha256"]
        if type(dtype) is not str or not _ARRAY_DTYPE.match(dtype):
            raise ValueError(
                f"{path!r}: array {name!r} has dtype {_short(dtype)}, which a model file "
                "may not hold: only booleans, integers, float32, float64 and unicode "
                "strings are allowed."
            )
        if (type(shape) is not list or len(shape) > MAX_ARRAY_NDIM
                or not all(_is_int(d) and d >= 0 for d in shape)):
            raise _malformed(f"the shape of array {name!r}", shape)
        if type(digest) is not str or not _SHA256.match(digest):
            raise _malformed(f"the sha256 of array {name!r}", digest)
        checked[name] = (np.dtype(dtype), tuple(shape), digest)
    return checked


def _read_array(archive, info, name, declared, path):
    """One array, read without pickle and checked against its metadata."""
    dtype, shape, digest = declared
    data = _read_member(archive, info, dtype.itemsize * math.prod(shape)
                        + NPY_HEADER_BYTES, path)
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"{path!r}: array {name!r} does not match its sha256 checksum; "
                         "the file was modified or damaged.")
    try:
        array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path!r}: array {name!r} is not a valid .npy array without "
                         f"pickle: {error}") from None
    if array.dtype != dtype or array.shape != shape:
        raise ValueError(f"{path!r}: array {name!r} holds {array.dtype} of shape "
                         f"{array.shape}, but the metadata declares {dtype} of shape "
                         f"{shape}.")
    return array


def _read_archive(file, path):
    """The checked metadata and the arrays of a model file."""
    try:
        archive = zipfile.ZipFile(file)
    except _ZIP_ERRORS as error:
        raise _damaged(path, error) from None
    with archive:
        names = archive.namelist()
        if len(set(names)) != len(names):
            raise ValueError(f"{path!r}: the archive holds a member twice.")
        members = {info.filename: info for info in archive.infolist()}
        if METADATA_MEMBER not in members:
            raise ValueError(f"{path!r} is not an skdl model file: it has no "
                             f"{METADATA_MEMBER}.")
        metadata = _parse_metadata(
            _read_member(archive, members[METADATA_MEMBER], MAX_METADATA_BYTES, path),
            path)
        table = _array_table(metadata["arrays"], path)
        member_of = {name: f"{ARRAY_PREFIX}{name}.npy" for name in table}
        unexpected = sorted(set(members) - {METADATA_MEMBER, *member_of.values()})
        missing = sorted(name for name, member in member_of.items()
                         if member not in members)
        if unexpected or missing:
            raise ValueError(f"{path!r}: the archive has unexpected members "
                             f"{_short(unexpected)} or lacks the arrays {missing}.")
        arrays = {name: _read_array(archive, members[member_of[name]], name,
                                    table[name], path)
                  for name in table}
    return metadata, arrays


# -- public functions ------------------------------------------------------------------

def save(estimator, path):
    """Save an estimator, or a pipeline holding skdl's, to a file that loads
    without running code.

    The file is a zip archive of a JSON description (the estimator's class
    and parameters, and its fitted attributes) and of numpy ``.npy`` arrays
    written with ``allow_pickle=False`` (the weights, the optimizer's state,
    the random generators' keys). It is written next to ``path`` and moved
    there when complete, so a failed save leaves no partial file.

    Only what the format can describe is saved: plain values (None, bool,
    int, float, str, lists, tuples, dicts), numpy arrays of booleans,
    integers, floats and strings, numpy scalars and random generators, and
    skdl's own specs (layers, optimizers, schedules, regularizers,
    augmenters, callbacks). A parameter holding anything else (a function,
    as in ``LambdaCallback``, an instance of a class of your own, a subclass
    of an skdl spec) raises ``TypeError``; pickle or joblib can save such
    models, for loading from trusted sources only.

    Any other scikit-learn estimator (a ``Pipeline``, a
    ``ColumnTransformer``, a ``FeatureUnion``, a search's
    ``best_estimator_``) is written with ``skops.io.dump`` (skops must be
    installed), each NNClassifier or NNRegressor inside it as one member
    holding its model file in the format above, with its SHA-256 in skops'
    schema. :func:`load` reads it back with ``skops.io.load``, which
    refuses any type other than scikit-learn's estimators, numpy's, and
    skdl's two.

    Parameters
    ----------
    estimator : NNClassifier, NNRegressor or scikit-learn estimator
        Fitted or not; an unfitted one loads as an unfitted estimator with
        the same parameters. Not a subclass of NNClassifier or NNRegressor:
        the file names one of these two classes.
    path : str or os.PathLike
        The file to write (replaced if it exists).

    Raises
    ------
    TypeError
        If the estimator is a subclass of ``NNClassifier`` or
        ``NNRegressor`` or is not a scikit-learn estimator, or a parameter
        or fitted attribute holds a value the format cannot store (the
        message names where; skops' ``UnsupportedTypeException``, a
        ``TypeError``, for a scikit-learn part it cannot store).
    ImportError
        If a scikit-learn estimator is given and skops is not installed.
    ValueError
        If a fitted estimator lacks part of its fitted state.

    See Also
    --------
    load : Read the estimator back.

    Notes
    -----
    scikit-learn callbacks set with ``set_callbacks`` are not saved.
    """
    kind = type(estimator)
    if kind not in (NNClassifier, NNRegressor) and (
            isinstance(estimator, (NNClassifier, NNRegressor))
            or not isinstance(estimator, BaseEstimator)):
        raise TypeError(
            f"save takes an NNClassifier, an NNRegressor or a scikit-learn estimator "
            f"holding them (a Pipeline...), got {kind.__module__}.{kind.__qualname__}: "
            f"a model file names skdl's two classes, not a subclass; {_TRUSTED_ONLY}."
        )
    path = _as_path(path)
    if kind in (NNClassifier, NNRegressor):
        _replace_atomically(path, functools.partial(_write_model, estimator))
    else:
        sio = _skops_io("save a " + kind.__qualname__)
        _replace_atomically(path, functools.partial(_write_pipeline, sio, estimator))


def _write_pipeline(sio, estimator, file):
    """Write ``estimator`` with ``skops.io.dump``, plus the checksums of its
    members (PIPELINE_CHECKSUMS), to the binary ``file``."""
    buffer = io.BytesIO()
    sio.dump(estimator, buffer)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(PIPELINE_CHECKSUMS, json.dumps(_member_digests(archive)))
    file.write(buffer.getvalue())


def _member_digests(archive, skip=(PIPELINE_CHECKSUMS,)):
    """{member name: SHA-256 of its bytes} of a zip archive."""
    return {name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist() if name not in skip}


def _check_pipeline_members(archive, path):
    """Check a pipeline's file against its checksums, or a ValueError."""
    try:
        recorded = json.loads(archive.read(PIPELINE_CHECKSUMS))
    except KeyError:
        raise ValueError(
            f"{path!r} is a skops file that skdl.save did not write (it has no "
            f"{PIPELINE_CHECKSUMS}); load it with skops.io.load if you trust it.") from None
    except ValueError as error:
        raise _damaged(path, error) from None
    names = archive.namelist()
    if len(names) != len(set(names)) or recorded != _member_digests(archive):
        raise ValueError(f"{path!r} does not match its checksums: the file was modified "
                         "or damaged.")


def _write_model(estimator, file):
    """Write ``estimator`` (an NNClassifier or NNRegressor) as a model file
    to the binary ``file``."""
    writer = _Writer()
    metadata = {
        "format": FORMAT,
        "format_version": SUPPORTED_FORMAT_VERSION,
        "skdl_version": __version__,
        "estimator": writer.spec(estimator, "", _ESTIMATORS),
        "fitted": (_encode_fitted(estimator, writer) if hasattr(estimator, "network_")
                   else None),
    }
    _write_archive(file, metadata, writer.arrays)


def load(path):
    """Load an estimator or pipeline saved by :func:`save`, without running
    code from the file.

    What is safe: the file can only name ``NNClassifier``, ``NNRegressor``
    and skdl's own spec classes from a fixed allowlist (nothing is imported
    by a name the file gives); those are built by their ``__init__``, which
    only stores its arguments. Arrays are read without pickle. The network
    is rebuilt by the estimator's own code from the loaded parameters, as a
    fit builds it, and the file's weights go into it only if their dtype
    and shape fit it and they are finite. The parameters are validated as a
    fit validates them, and every part of the file is checked (structure,
    types, checksums, the fitted attributes against each other) before the
    estimator is returned; a file that fails any check raises and returns
    nothing.

    What stays trusted: pickle and joblib run code named by the file while
    loading; use them only for files from trusted sources, and this format
    for the others. A loaded model still does what its parameters say when
    it is used: it allocates the network its layers describe (so a file can
    ask for a large one), and a ``Checkpoint`` callback writes its files to
    its ``directory`` during a later fit. Look at ``get_params()`` before
    fitting a model from an untrusted source.

    Training can go on with ``partial_fit`` (or ``fit`` with
    ``warm_start=True``) as it would have on the saved estimator: the
    weights, the optimizer's state, the counters and the random generators
    are restored. The learning-rate schedule's run is not saved: a
    ``partial_fit`` after loading starts ``lr_schedule`` afresh (a constant
    rate, the default, is unaffected).

    A file :func:`save` wrote for a pipeline (a skops file) is checked
    against the SHA-256 that :func:`save` recorded of each of its members,
    then loaded by ``skops.io.load`` with its default trusted types (scikit-learn's
    estimators, numpy's, and skdl's NNClassifier and NNRegressor), which
    refuses a file naming any other type before building anything; each
    skdl estimator in it is checked against its SHA-256 and loaded as
    above.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    estimator : NNClassifier, NNRegressor or scikit-learn estimator
        Fitted if it was saved fitted; it predicts bit-identically to the
        saved one.

    Raises
    ------
    ValueError
        If the file is not an skdl model file, is damaged or was modified
        (checksums), was written in a newer format (the message says which
        skdl wrote it), names a class that is not allowed, or holds
        parameters or fitted attributes that are malformed, inconsistent or
        do not fit the network the parameters build. Invalid
        hyper-parameters raise scikit-learn's ``InvalidParameterError``, a
        ``ValueError``.
    TypeError
        skops' ``UntrustedTypesFoundException`` (a ``TypeError``), naming
        them, if a pipeline's file names types it does not trust.
    OSError
        If the file cannot be opened (``FileNotFoundError``...).
    ImportError
        If the file is a pipeline's and skops is not installed.

    See Also
    --------
    save : Write a model file.
    """
    path = _as_path(path)
    with open(path, "rb") as file:
        try:
            with zipfile.ZipFile(file) as archive:
                names = set(archive.namelist())
        except _ZIP_ERRORS as error:
            raise _damaged(path, error) from None
        if SKOPS_SCHEMA in names and METADATA_MEMBER not in names:
            file.seek(0)
            with zipfile.ZipFile(file) as archive:
                _check_pipeline_members(archive, path)
            file.seek(0)
            # skops trusts scikit-learn's estimators and skdl's two (see
            # skdl/_skops.py) and refuses a file naming any other type.
            return _skops_io("load a pipeline").load(file)
        file.seek(0)
        return _read_model(file, path)


def _skops_io(what):
    """``skops.io``, with skdl's estimators registered as its own types."""
    try:
        import skops.io
    except ImportError:
        raise ImportError(f"skdl needs skops to {what} (skdl stores the scikit-learn "
                          "parts with skops.io): pip install skops.") from None
    from . import _skops  # noqa: F401  (registers skdl's types with skops)
    return skops.io


def _read_model(file, path):
    """The estimator in the model file open as the binary ``file``; ``path``
    names the file in errors."""
    metadata, arrays = _read_archive(file, path)
    reader = _Reader(arrays)
    try:
        estimator = reader.spec(metadata["estimator"], "", _ESTIMATORS)
        estimator._validate_params()
        if metadata["fitted"] is not None:
            _restore_fitted(estimator, metadata["fitted"], reader)
    except RecursionError:
        raise ValueError(f"{path!r}: the model file's values are nested too "
                         "deeply.") from None
    unused = sorted(set(arrays) - reader.used)
    if unused:
        raise ValueError(f"{path!r}: the model file declares arrays nothing refers "
                         f"to: {_short(unused)}.")
    return estimator
