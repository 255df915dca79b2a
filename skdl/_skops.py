"""skdl's estimators as first-class types of ``skops.io``.

``skops.io.dump`` saves a scikit-learn ``Pipeline``, ``ColumnTransformer``,
``FeatureUnion``, a search's ``best_estimator_``... without pickle, and
``skops.io.load`` loads it back after checking that the file only names
types it trusts. Out of the box skops would store an ``NNClassifier`` by its
``__dict__``, naming every runtime class of skdl (layers, the network, the
optimizer's state...) as types the user has to trust by hand.

This module registers a skops node for ``NNClassifier`` and ``NNRegressor``
instead: the estimator is written as one member of the skops archive holding
skdl's own safe model file (:func:`skdl.save`'s format), with its SHA-256 in
skops' schema, and loaded by :func:`skdl.load`'s reader, which runs no code
the file names and rebuilds the network with skdl's own code. The two
classes are trusted by default, as skops trusts scikit-learn's estimators,
so ``skops.io.load(path)`` loads a pipeline of scikit-learn transformers and
skdl estimators with no ``trusted`` argument, and still refuses any other
type (``os.system``, a class of your own...) the file names.

It is imported by :func:`skdl.save` and :func:`skdl.load` when they store a
scikit-learn estimator holding skdl's (importing skops imports all of
scikit-learn, too slow for every ``import skdl``); importing it registers
the node with skops for the rest of the process.
"""
import hashlib
import io
import re

from skops.io import _audit, _utils

from ._estimators import NNClassifier, NNRegressor
from ._persistence import _read_model, _write_model

__all__ = ["LOADER", "trusted_types"]

# The name skops' schema gives the node, and the extension of the member.
LOADER = "SkdlModelNode"
_SUFFIX = ".skdl"
_CLASSES = {cls.__name__: cls for cls in (NNClassifier, NNRegressor)}
_MODULE = "skdl._estimators"
_MEMBER = re.compile(r"[0-9]{1,40}\.skdl\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


def trusted_types():
    """The types of skdl that a skops file may hold, by their full names.

    ``skops.io.load`` trusts them by default once skdl is imported; pass
    them as its ``trusted`` argument to say so explicitly, or compare them
    with ``skops.io.get_untrusted_types`` (which lists none of them).

    Returns
    -------
    names : list of str
        ``["skdl._estimators.NNClassifier", "skdl._estimators.NNRegressor"]``.
    """
    return [f"{_MODULE}.{name}" for name in _CLASSES]


def _get_state(obj, save_context):
    """skops' state of an NNClassifier or NNRegressor: skdl's model file,
    written as a member of the skops archive."""
    buffer = io.BytesIO()
    # A subclass raises skdl.save's TypeError here: its file names the base class.
    _write_model(obj, buffer)
    data = buffer.getvalue()
    # id() names the member as skops names its .npy members; memoize keeps the
    # object alive while saving, so the id stays its own.
    name = f"{save_context.memoize(obj)}{_SUFFIX}"
    if name not in save_context.zip_file.namelist():
        save_context.zip_file.writestr(name, data)
    return {
        "__class__": type(obj).__name__,
        "__module__": _MODULE,
        "__loader__": LOADER,
        "file": name,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


class SkdlModelNode(_audit.Node):
    """A skops node holding an skdl model file.

    Parameters
    ----------
    state : dict
        The node's entry in skops' schema: ``__class__`` (``"NNClassifier"``
        or ``"NNRegressor"``), ``__module__``, ``file`` (the archive member)
        and ``sha256`` (of that member).
    load_context : skops.io._utils.LoadContext
    trusted : list of str or type, optional
        Types trusted besides the defaults, as ``skops.io.load`` takes them.
    """

    def __init__(self, state, load_context, trusted=None):
        super().__init__(state, load_context, trusted)
        self.trusted = self._get_trusted(trusted, trusted_types())
        name, digest = state.get("file"), state.get("sha256")
        if type(name) is not str or not _MEMBER.match(name):
            raise ValueError(f"Malformed skops file: an skdl model names the member "
                             f"{name!r}; skdl writes '<digits>{_SUFFIX}'.")
        if type(digest) is not str or not _SHA256.match(digest):
            raise ValueError(f"Malformed skops file: the skdl model {name!r} has an "
                             f"invalid sha256 {digest!r}.")
        if name not in load_context.src.namelist():
            raise ValueError(f"Malformed skops file: it lacks the skdl model {name!r} "
                             "its schema names.")
        self.name = name
        # Read now, as skops reads its arrays: nothing is built before the audit.
        self.data = load_context.src.read(name)
        if hashlib.sha256(self.data).hexdigest() != digest:
            raise ValueError(f"The skops file's skdl model {name!r} does not match its "
                             "sha256 checksum; the file was modified or damaged.")
        self.children = {}

    def _construct(self):
        # The class comes from skdl's own table, never from an import of a
        # name the file gives; the audit has already refused any other name.
        expected = _CLASSES.get(self.class_name)
        if self.module_name != _MODULE or expected is None:
            raise ValueError(f"The skops file names {self.module_name}.{self.class_name} "
                             "for an skdl model; only NNClassifier and NNRegressor are "
                             "allowed.")
        estimator = _read_model(io.BytesIO(self.data), f"skops member {self.name}")
        if type(estimator) is not expected:
            raise ValueError(
                f"The skops file's skdl model {self.name!r} holds an "
                f"{type(estimator).__name__}, but the schema says {self.class_name}.")
        return estimator


def _register():
    """Make skops use this module's state and node for skdl's estimators."""
    for cls in _CLASSES.values():
        _utils._get_state.register(cls)(_get_state)
    from skops.io._protocol import PROTOCOL
    _audit.NODE_TYPE_MAPPING[(LOADER, PROTOCOL)] = SkdlModelNode


_register()
