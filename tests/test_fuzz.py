"""Fuzzing: estimator inputs and layer geometries drawn by hypothesis.

Every case either works, with a result that passes sanity checks (the shape
the layer reports, finite values, probabilities that sum to one, labels among
``classes_``), or raises a clear ValueError or TypeError (scikit-learn's
InvalidParameterError is a ValueError) with a message. Any other exception, a
NaN or infinite output, a crash or a hang fails. Where the answer is plain
from the documented behaviour (valid geometry, a NaN in X, a y of the wrong
length), the test also requires that the case works, or that it raises.

Estimator inputs, convolution and pooling geometry and pathways are drawn
valid by construction, so every example reaches the check of its values
against a plain-numpy reference; a separate, smaller test of each breaks one
thing at a time (a fault per parametrization) and requires an error that
names it.

Few examples, tiny shapes and one or two epochs keep the file fast. To fuzz
deeper: ``SKDL_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py
--hypothesis-profile=explore`` draws more, and new, examples.
"""
import faulthandler
import functools
import os
import re
import sys
from collections import namedtuple
from numbers import Integral

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from threadpoolctl import ThreadpoolController

from skdl import (
    GRU,
    LSTM,
    Activation,
    AvgPool1D,
    AvgPool2D,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    LayerNormalization,
    Masking,
    MaxPool1D,
    MaxPool2D,
    MergeInput,
    MultiHeadAttention,
    NNClassifier,
    NNRegressor,
    Pathways,
    PositionalEmbedding,
    Reshape,
    SimpleRNN,
    TransformerEncoderBlock,
    _ops,
    _reference,
)
from skdl._network import build_layers
from skdl.layers._base import GradientContext, backward_chain, forward_chain

from _networks import initialized_network as network

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Errors a bad input may raise; anything else is a bug.
CLEAR_ERRORS = (ValueError, TypeError)
# A hang inside a kernel cannot be interrupted from Python: an example that
# runs this long dumps every thread's stack and ends the run instead of
# stalling CI.
HANG_SECONDS = 120
FLOATS = [np.float32, np.float64]
# Mostly one thread: on a busy machine every parallel region of a tiny batch
# waits for a descheduled thread, which makes two threads many times slower.
THREADS = st.sampled_from([1, 1, 1, 2])
CONTROLLER = ThreadpoolController()
# Where a hang is reported (see _terminal_stderr).
HANG_REPORT = {"file": sys.__stderr__}


def _examples(default):
    """max_examples: ``default``, or SKDL_FUZZ_EXAMPLES to fuzz deeper."""
    return int(os.environ.get("SKDL_FUZZ_EXAMPLES", "0")) or default


@pytest.fixture(autouse=True, scope="module")
def _terminal_stderr(request):
    # The duplicate of the terminal's stderr that pytest's faulthandler plugin
    # keeps: the captured one would be lost when the process exits.
    try:
        from _pytest.faulthandler import fault_handler_stderr_fd_key

        HANG_REPORT["file"] = request.config.stash[fault_handler_stderr_fd_key]
    except (ImportError, KeyError):
        pass
    yield
    HANG_REPORT["file"] = sys.__stderr__


def fuzzed(test):
    """Run each example of ``test`` with as many OpenMP threads as its
    ``threads`` argument, and end the run if it hangs."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True,
                                          file=HANG_REPORT["file"])
        try:
            with CONTROLLER.limit(limits=kwargs["threads"], user_api="openmp"):
                return test(*args, **kwargs)
        finally:
            faulthandler.cancel_dump_traceback_later()
    return run


def attempt(f, *args, **kwargs):
    """``(f(...), None)``, or ``(None, error)`` when it raised a clear error.

    Any other exception propagates and fails the test; an error without a
    message fails here.
    """
    try:
        return f(*args, **kwargs), None
    except CLEAR_ERRORS as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None, exc


def check_outcome(error, must_raise, must_work, case, message=None):
    """The outcome the documentation promises, where it is plain; a refusal
    must say ``message`` (a regular expression) when given."""
    if must_raise:
        assert error is not None, f"accepted an invalid case: {case}"
        assert message is None or re.search(message, str(error)), (
            f"unclear error {error!r}: {case}")
    if must_work:
        assert error is None, f"refused a valid case ({error!r}): {case}"


def assert_finite(a, what="output"):
    a = np.asarray(a)
    assert a.dtype.kind == "f", f"{what} has dtype {a.dtype}"
    assert np.isfinite(a).all(), f"{what} holds NaN or infinity"


def tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10,
                                                                     atol=1e-12)


def run_network(net, X, dtype):
    """Inference and a training step; checks shapes and finiteness, returns
    the inference output."""
    Y = net.forward(X)
    assert Y.shape == (len(X),) + net.output_shape
    assert Y.dtype == dtype
    assert_finite(Y)
    trained = net.forward(X, training=True, rng=np.random.default_rng(0))
    assert trained.shape == Y.shape
    assert_finite(trained, "training output")
    dY = np.random.RandomState(1).randn(*Y.shape).astype(dtype)
    dX = backward_chain(net.layers, dY, GradientContext(None, 1.0, dtype),
                        need_input_grad=True)
    assert dX.shape == X.shape
    assert_finite(dX, "input gradient")
    net.forward(X, training=True, rng=np.random.default_rng(0))
    net.backward(dY, None, 1.0 / len(X), dtype)
    assert_finite(net.grads, "parameter gradients")
    return Y


def check_predictions(est, X, classifier=False):
    """Sanity of predict (and predict_proba) on X (an array or a dict of
    arrays by input name)."""
    n = len(next(iter(X.values()))) if isinstance(X, dict) else len(X)
    P = est.predict(X)
    assert P.shape[0] == n
    if not classifier:
        assert_finite(P, "predictions")
        return P
    assert np.isin(P, est.classes_).all()
    proba = est.predict_proba(X)
    assert proba.shape == (n, len(est.classes_))
    assert_finite(proba, "probabilities")
    assert (proba >= 0).all() and (proba <= 1).all()
    if P.ndim == 1:  # one label per sample (not multilabel)
        assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
        assert_array_equal(P, est.classes_[proba.argmax(axis=1)])
    return P


# -- estimator inputs ------------------------------------------------------------

# Numeric X dtypes scikit-learn takes; object arrays hold numbers.
X_DTYPES = ["float16", "float32", "float64", "int8", "int64", "bool", "object"]
# Hidden layers by name; the reference forward pass below knows them.
HIDDEN = {"dense": lambda: [Dense(3, activation="tanh", name="hidden")],
          "none": lambda: [], "flatten": lambda: [Flatten()],
          "normalized": lambda: [BatchNormalization(name="norm"), Dense(3, name="hidden"),
                                 Dropout(0.5)]}


def _cast(values, dtype):
    if dtype in ("int8", "int64"):
        return np.round(values * 3).astype(dtype)
    if dtype == "bool":
        return values > 0
    if dtype == "object":
        return values.astype(object)  # numbers in an object array
    if dtype == "complex":
        return values + 0.5j
    return values.astype(dtype)


@st.composite
def estimator_cases(draw, classifier=None, early_stopping=None):
    """A fit that must work, by construction: a dict of the estimator's
    parameters (``kind``, ``hidden``, ``input_shape``, ``net_dtype``,
    ``early_stopping``, ``seed``) and the data (``values``, float samples
    of shape (n, *sample), stored as ``dtype``; ``y``; ``weights``).
    ``classifier`` and ``early_stopping`` are drawn unless given.

    Early stopping holds out half of at least 4 samples, of 2 classes for a
    single-label classifier, so both parts hold every class and some weight.
    """
    classifier = draw(st.booleans()) if classifier is None else classifier
    early_stopping = draw(st.booleans()) if early_stopping is None else early_stopping
    n = draw(st.sampled_from([4, 6, 8] if early_stopping else [1, 2, 3, 5, 7]))
    n = max(n, 2) if classifier else n  # two classes need two samples
    rank = draw(st.sampled_from([1, 1, 2, 3]))
    sample = tuple(draw(st.lists(st.sampled_from([1, 3, 5] if rank == 1 else [1, 2, 3]),
                                 min_size=rank, max_size=rank)))
    shape_choices = ["none", "exact", "minus_one"] + (["leading_one"] if rank == 1 else [])
    input_shape = {"none": None, "exact": sample, "minus_one": (-1,) + sample[1:],
                   "leading_one": (1,) + sample}[draw(st.sampled_from(shape_choices))]
    seed = draw(st.integers(0, 2**16))
    rng = np.random.RandomState(seed)
    targets = draw(st.sampled_from(["numbers", "strings", "2d"]))
    if classifier and targets == "2d":  # a label indicator matrix
        y = rng.randint(2, size=(n, 2))
    elif classifier:
        n_classes = 2 if early_stopping else draw(st.integers(2, min(n, 3)))
        y = rng.permutation(np.arange(n) % n_classes)
        y = np.array(["cat", "dog", "emu"])[y] if targets == "strings" else y
    else:
        y = rng.randn(n, 2) if targets == "2d" else rng.randn(n)
    weights = draw(st.sampled_from([None, "some", "some_zero"]))
    weights = {None: None, "some": rng.uniform(0.5, 2, n),
               "some_zero": np.r_[0.0, np.ones(n - 1)] if n > 1 else np.ones(1)}[weights]
    return dict(kind=NNClassifier if classifier else NNRegressor,
                hidden=draw(st.sampled_from(sorted(HIDDEN))), input_shape=input_shape,
                net_dtype=draw(st.sampled_from(["float32", "float64"])),
                early_stopping=early_stopping, seed=seed, values=rng.randn(n, *sample),
                dtype=draw(st.sampled_from(X_DTYPES)), y=y, weights=weights)


def make_fit(case):
    """The estimator of ``case`` and the arguments of its fit: (est, X, y, w)."""
    est = case["kind"](HIDDEN[case["hidden"]](), input_shape=case["input_shape"],
                       max_iter=2, dtype=case["net_dtype"],
                       early_stopping=case["early_stopping"], validation_fraction=0.5,
                       random_state=case["seed"])
    return est, _cast(case["values"], case["dtype"]), case["y"], case["weights"]


def reference_outputs(est, X):
    """The network's outputs (before softmax or sigmoid) computed from
    ``get_weights()`` by the documented layouts: samples reshaped to
    ``input_shape_``, Dense on the last axis, BatchNormalization per entry of
    axis 1 by its running statistics (epsilon 1e-3), flattened before the
    output layer."""
    activations = {spec.name: getattr(spec, "activation", None) for spec in est.layers}
    A = np.asarray(X, dtype=np.float64).reshape((len(X),) + est.input_shape_)
    for name, params in est.get_weights().items():
        if "moving_mean" in params:
            per_channel = (1, -1) + (1,) * (A.ndim - 2)
            scale = params["gamma"] / np.sqrt(params["moving_variance"] + 1e-3)
            A = ((A - params["moving_mean"].reshape(per_channel)) * scale.reshape(per_channel)
                 + params["beta"].reshape(per_channel))
            continue
        if name == "output":
            A = A.reshape(len(A), -1)
        A = A @ params["kernel"] + params["bias"]
        A = np.tanh(A) if activations.get(name) == "tanh" else A
    return A


@settings(max_examples=_examples(100), deadline=None)
@given(case=estimator_cases(), threads=THREADS)
@fuzzed
def test_estimator_inputs(case, threads):
    est, X, y, weights = make_fit(case)
    _, error = attempt(est.fit, X, y, sample_weight=weights)
    check_outcome(error, must_raise=False, must_work=True, case=case)
    classifier = case["kind"] is NNClassifier
    P = check_predictions(est, X, classifier)
    assert P.shape[1:] == y.shape[1:]
    # One sample predicts as in the batch, and X as its float64 copy.
    assert_array_equal(check_predictions(est, X[:1], classifier), P[:1])
    X64 = np.asarray(X, dtype=np.float64)
    assert_array_equal(est.predict(X64), P)
    # Samples of another shape are refused.
    sample = case["values"].shape[1:]
    _, error = attempt(est.predict, np.zeros((1,) + sample[:-1] + (sample[-1] + 1,)))
    assert isinstance(error, ValueError), "predicted on samples of another shape"
    # The values are those of the documented forward pass.
    Z = reference_outputs(est, X64)
    tol = tolerance(np.dtype(case["net_dtype"]))
    if not classifier:
        assert_allclose(P, Z.reshape(P.shape), **tol)
        return
    proba = est.predict_proba(X)
    assert_array_equal(est.predict_proba(X64), proba)
    if y.ndim == 2 or len(est.classes_) == 2:  # a sigmoid per label or for class 1
        assert_allclose(proba[:, -Z.shape[1]:], 1 / (1 + np.exp(-Z)), **tol)
    else:
        softmax = np.exp(Z - Z.max(axis=1, keepdims=True))
        assert_allclose(proba, softmax / softmax.sum(axis=1, keepdims=True), **tol)


# What the error says when one thing about a valid fit is wrong.
INPUT_FAULTS = {
    "flat_X": r"Expected 2D array, got 1D array",
    "no_samples": r"0 sample\(s\)",
    "empty_axis": r"0 feature\(s\)|at least one input feature",
    "complex": r"Complex data not supported",
    "nan": r"Input X contains NaN",
    "infinity": r"Input X contains infinity",
    "input_shape": r"input_shape",
    "y_length": r"inconsistent numbers of samples",
    "one_class": r"at least 2 classes, but the data contains only one class",
    "weight_length": r"sample_weight\.shape == ",
    "negative_weights": r"Negative values in data passed to `sample_weight`",
    "zero_weights": r"Sample weights must contain at least one non-zero number",
    "weightless_part": r"left only samples of weight 0 in the (training|validation) part",
}


def with_fault(case, fault, draw):
    """``case`` with one thing made wrong (see INPUT_FAULTS)."""
    case = dict(case)
    values, n = case["values"], len(case["values"])
    sample = values.shape[1:]
    if fault == "flat_X":
        case.update(values=values.reshape(n, -1)[:, 0], input_shape=None)
    elif fault == "no_samples":
        weights = case["weights"]
        case.update(values=values[:0], y=case["y"][:0],
                    weights=None if weights is None else weights[:0])
    elif fault == "empty_axis":
        axis = draw(st.integers(1, len(sample)))
        case.update(values=np.take(values, [], axis=axis), input_shape=None)
    elif fault == "complex":
        case.update(dtype="complex")
    elif fault in ("nan", "infinity"):
        values = values.copy()
        values.flat[draw(st.integers(0, values.size - 1))] = (
            np.nan if fault == "nan" else draw(st.sampled_from([np.inf, -np.inf])))
        dtype = case["dtype"] if case["dtype"] in ("float16", "float32", "float64",
                                                   "object") else "float64"
        case.update(values=values, dtype=dtype)
    elif fault == "input_shape":
        bad = [sample[:-1] + (sample[-1] + 1,), (0,) + sample, (-1, -1)]
        if len(sample) > 1:
            bad.append((1,) + sample)  # fits flat samples only
        if sample != sample[::-1]:
            bad.append(sample[::-1])
        case.update(input_shape=draw(st.sampled_from(bad)))
    elif fault == "y_length":
        y = case["y"]
        case.update(y=y[:-1] if draw(st.booleans()) else np.concatenate([y, y[:1]]))
    elif fault == "one_class":
        case.update(y=np.full(n, draw(st.sampled_from([1, "emu"]))))
    elif fault == "weight_length":
        # Not empty: scikit-learn calls an empty one "0 sample(s)", without its name.
        case.update(weights=np.ones(n + 1 if n == 1 or draw(st.booleans()) else n - 1))
    elif fault == "negative_weights":
        case.update(weights=-np.ones(n))
    elif fault == "zero_weights":
        case.update(weights=np.zeros(n))
    else:  # weightless_part: one sample has weight, so one part has none
        case.update(weights=np.eye(n)[draw(st.integers(0, n - 1))])
    return case


@pytest.mark.parametrize("fault", INPUT_FAULTS)
@settings(max_examples=_examples(4), deadline=None)
@given(data=st.data(), threads=THREADS)
@fuzzed
def test_estimator_refuses_bad_inputs(fault, data, threads):
    case = data.draw(estimator_cases(classifier=True if fault == "one_class" else None,
                                     early_stopping=fault == "weightless_part" or None))
    case = with_fault(case, fault, data.draw)
    est, X, y, weights = make_fit(case)
    _, error = attempt(est.fit, X, y, sample_weight=weights)
    check_outcome(error, must_raise=True, must_work=False, case=case,
                  message=INPUT_FAULTS[fault])


# -- convolution and pooling geometry -----------------------------------------------

def _axis_values(value, rank):
    """``value`` as ``rank`` positive ints, or None when it is not valid."""
    values = (value,) * rank if isinstance(value, Integral) else tuple(value)
    if len(values) != rank or not all(isinstance(v, Integral) and v >= 1
                                      for v in values):
        return None
    return values


def _pads(padding, rank):
    """(before, after) per axis for int paddings, 'valid' or 'same' (as the
    string), or None when not valid."""
    if isinstance(padding, str):
        return padding if padding == "same" else ((0, 0),) * rank
    entries = (padding,) * rank if isinstance(padding, Integral) else padding
    if len(entries) != rank:
        return None
    pairs = tuple((e, e) if isinstance(e, Integral) else e for e in entries)
    return pairs if all(min(p) >= 0 for p in pairs) else None


def expected_window_output(sizes, window, strides, padding, dilation, pool):
    """Output sizes by the documented rules, or None when the geometry is
    invalid: 'same' keeps ceil(size / stride) positions; otherwise
    floor((size + pads - span) / stride) + 1 positions, none of them if the
    span exceeds the padded input; a pool's padding is smaller than the pool."""
    rank = len(sizes)
    window, strides = _axis_values(window, rank), _axis_values(strides, rank)
    dilation = _axis_values(dilation, rank)
    pads = _pads(padding, rank)
    if None in (window, strides, dilation) or pads is None:
        return None
    if pads == "same":
        return tuple(-(-size // s) for size, s in zip(sizes, strides))
    out = []
    for size, k, s, d, (before, after) in zip(sizes, window, strides, dilation, pads):
        span = (k - 1) * d + 1
        if span > size + before + after or (pool and max(before, after) >= k):
            return None
        out.append((size + before + after - span) // s + 1)
    return tuple(out)


# A window geometry as a layer takes it: window, strides, dilation and padding
# each an int for every axis or one entry per axis; padding also 'valid',
# 'same' or (before, after) pairs; strides None (a pool's: its size).
WindowGeometry = namedtuple("WindowGeometry",
                            "rank sizes window strides dilation padding")


def _entries(draw, values, rank):
    """``rank`` ints from ``values`` and their form for a layer: one int for
    every axis, or a tuple."""
    if draw(st.booleans()):
        value = draw(values)
        return (value,) * rank, value
    entries = tuple(draw(values) for _ in range(rank))
    return entries, entries


@st.composite
def window_geometries(draw, pool=False):
    """A geometry that works, by construction: per axis a window of 1 to 4,
    a stride of 1 to 3, a dilation of 1 to 3 (a pool's is 1), padding of 0
    to 2 on each side (a pool's smaller than its window), and an input size
    that leaves 1 to 3 output positions (any size with 'same')."""
    rank = draw(st.sampled_from([1, 2]))
    window, window_arg = _entries(draw, st.integers(1, 4), rank)
    strides, strides_arg = _entries(draw, st.integers(1, 3), rank)
    if pool and draw(st.booleans()):
        strides, strides_arg = window, None
    dilation, dilation_arg = ((1,) * rank, 1) if pool else _entries(
        draw, st.integers(1, 3), rank)
    kind = draw(st.sampled_from(["valid", "same", "int", "per_axis", "pairs"]))
    if kind == "same":
        sizes = tuple(draw(st.integers(1, 7)) for _ in range(rank))
        return WindowGeometry(rank, sizes, window_arg, strides_arg, dilation_arg, "same")
    sides = [st.integers(0, min(2, k - 1) if pool else 2) for k in window]
    if kind == "valid":
        pads, padding = ((0, 0),) * rank, "valid"
    elif kind == "int":
        padding = draw(st.integers(0, min(2, min(window) - 1) if pool else 2))
        pads = ((padding, padding),) * rank
    elif kind == "per_axis":
        padding = tuple(draw(side) for side in sides)
        pads = tuple((p, p) for p in padding)
    else:
        pads = padding = tuple((draw(side), draw(side)) for side in sides)
    sizes = []
    for k, s, d, (before, after) in zip(window, strides, dilation, pads):
        span = (k - 1) * d + 1
        positions, extra = draw(st.integers(1, 3)), draw(st.integers(0, s - 1))
        sizes.append(max(1, (positions - 1) * s + span + extra - before - after))
    return WindowGeometry(rank, tuple(sizes), window_arg, strides_arg, dilation_arg,
                          padding)


def _window_layer(g, pool=None, filters=2, activation=None):
    """The layer spec of geometry ``g``: a convolution of ``filters``, or
    a pool (``pool`` "max" or "avg")."""
    if pool is None:
        return (Conv2D if g.rank == 2 else Conv1D)(
            filters, g.window, strides=g.strides, padding=g.padding, dilation=g.dilation,
            activation=activation)
    return POOLS[g.rank, pool](g.window, strides=g.strides, padding=g.padding)


@settings(max_examples=_examples(90), deadline=None)
@given(geometry=window_geometries(), channels=st.sampled_from([1, 2, 3, 16]),
       channel_axis=st.booleans(), filters=st.integers(1, 3), n=st.integers(1, 3),
       activation=st.sampled_from([None, "relu", "tanh", "sigmoid", "softmax"]),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16), threads=THREADS)
# Softmax over each channel's plane, as documented and as the numpy twin and
# the layer's backward pass compute it, with fewer and with 16 channels.
@example(geometry=WindowGeometry(1, (1,), 1, 1, 1, "valid"), channels=1,
         channel_axis=False, filters=1, n=2, activation="softmax", dtype=np.float64,
         seed=0, threads=1)
@example(geometry=WindowGeometry(2, (2, 2), 1, 1, 1, "valid"), channels=16,
         channel_axis=True, filters=2, n=1, activation="softmax", dtype=np.float64,
         seed=0, threads=1)
@fuzzed
def test_conv_geometry(geometry, channels, channel_axis, filters, n, activation, dtype,
                       seed, threads):
    g = geometry
    channels = channels if channel_axis else 1
    input_shape = ((channels,) if channel_axis else ()) + g.sizes
    spec = _window_layer(g, filters=filters, activation=activation)
    expected = expected_window_output(g.sizes, g.window, g.strides, g.padding, g.dilation,
                                      pool=False)
    assert expected is not None and min(expected) >= 1, g  # valid by construction
    net, error = attempt(network, [spec], input_shape, dtype, seed)
    check_outcome(error, False, True, spec)
    layer = net.layers[0]
    assert layer.output_shape == (filters,) + expected
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    # The values are those of the plain-numpy convolution.
    K = layer.params["kernel"].reshape((filters, channels) + layer.kernel_hw)
    window = layer.window
    ref = _reference.conv2d_forward(X.reshape((n,) + layer.planes), K,
                                    layer.params["bias"], activation=activation,
                                    strides=window.strides, padding=window.padding,
                                    dilation=window.dilation)
    assert_allclose(Y.reshape(ref.shape), ref, **tolerance(dtype))


POOLS = {(1, "max"): MaxPool1D, (1, "avg"): AvgPool1D, (2, "max"): MaxPool2D,
         (2, "avg"): AvgPool2D}


@settings(max_examples=_examples(90), deadline=None)
@given(geometry=window_geometries(pool=True), kind=st.sampled_from(["max", "avg"]),
       channels=st.integers(1, 3), channel_axis=st.booleans(), n=st.integers(1, 3),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16), threads=THREADS)
@fuzzed
def test_pool_geometry(geometry, kind, channels, channel_axis, n, dtype, seed, threads):
    g = geometry
    channels = channels if channel_axis else 1
    input_shape = ((channels,) if channel_axis else ()) + g.sizes
    spec = _window_layer(g, kind)
    expected = expected_window_output(g.sizes, g.window,
                                      g.window if g.strides is None else g.strides,
                                      g.padding, 1, pool=True)
    assert expected is not None and min(expected) >= 1, g  # valid by construction
    net, error = attempt(network, [spec], input_shape, dtype, seed)
    check_outcome(error, False, True, spec)
    layer = net.layers[0]
    assert layer.output_shape == input_shape[:-g.rank] + expected
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    window = layer.window
    ref = getattr(_reference, f"{kind}pool2d_forward")(
        X.reshape((n,) + layer.planes), window.size, strides=window.strides,
        padding=window.padding)
    ref = ref[0] if kind == "max" else ref
    assert_allclose(Y.reshape(ref.shape), ref, **tolerance(dtype))


# What the error says when one thing about a working geometry is wrong.
GEOMETRY_FAULTS = {
    "window": r"kernel_size|pool_size",
    "strides": r"strides",
    "dilation": r"dilation",
    "padding": r"padding",
    "length": r"kernel_size|pool_size|strides|dilation|padding",
    "span": r"spans \d+ positions .* but the padded input has only",
    "pool_padding": r"padding .* must be smaller than the pool size",
}


def broken_geometry(g, fault, pool, draw):
    """``g`` with one thing made wrong (see GEOMETRY_FAULTS)."""
    bad = draw(st.sampled_from([0, -1]))
    if fault in ("window", "strides", "dilation"):
        good = getattr(g, fault)
        value = bad if draw(st.booleans()) else (
            (bad,) + tuple(_axis_values(good if good is not None else g.window, g.rank))[1:])
        return g._replace(**{fault: value})
    if fault == "padding":
        return g._replace(padding=draw(st.sampled_from(
            [-1, (-1,) * g.rank, ((0, -1),) * g.rank, "full"])))
    if fault == "length":
        name = draw(st.sampled_from(["window", "strides", "padding"]
                                    + ([] if pool else ["dilation"])))
        return g._replace(**{name: (1,) * (g.rank + 1)})
    window = list(_axis_values(g.window, g.rank))
    if fault == "span":  # the first axis's window outgrows its input
        dilation = _axis_values(g.dilation, g.rank)[0]
        window[0] = max(window[0], 2)
        sizes = ((window[0] - 1) * dilation,) + g.sizes[1:]
        return g._replace(sizes=sizes, window=tuple(window), padding="valid")
    # pool_padding: as wide as the pool on the first axis
    pads = ((window[0], 0),) + ((0, 0),) * (g.rank - 1)
    return g._replace(padding=pads, sizes=tuple(s + w for s, w in zip(g.sizes, window)))


@pytest.mark.parametrize("layer, fault", [
    (layer, fault) for layer in (None, "max", "avg") for fault in GEOMETRY_FAULTS
    if (fault != "dilation" or layer is None) and (fault != "pool_padding" or layer)])
@settings(max_examples=_examples(3), deadline=None)
@given(data=st.data())
def test_window_geometry_errors(layer, fault, data):
    g = broken_geometry(data.draw(window_geometries(pool=layer is not None)), fault,
                        layer is not None, data.draw)
    spec, error = attempt(_window_layer, g, layer)
    if error is None:  # refused when the network is built
        _, error = attempt(network, [spec], (1,) + g.sizes)
    check_outcome(error, True, False, g, message=GEOMETRY_FAULTS[fault])


GLOBAL_POOLS = [GlobalMaxPool1D, GlobalAvgPool1D, GlobalMaxPool2D, GlobalAvgPool2D]


@settings(max_examples=_examples(30), deadline=None)
@given(spec_type=st.sampled_from(GLOBAL_POOLS), channels_last=st.booleans(),
       input_shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple),
       n=st.integers(1, 3), dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16),
       threads=THREADS)
@fuzzed
def test_global_pool_shapes(spec_type, channels_last, input_shape, n, dtype, seed,
                            threads):
    one_d = spec_type in (GlobalMaxPool1D, GlobalAvgPool1D)
    spec = spec_type(data_format="channels_last") if one_d and channels_last \
        else spec_type()
    rank = 1 if one_d else 2
    net, error = attempt(network, [spec], input_shape, dtype, seed)
    check_outcome(error, len(input_shape) not in (rank, rank + 1),
                  len(input_shape) in (rank, rank + 1), spec)
    if error is not None:
        return
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    reduce = np.max if "Max" in spec_type.__name__ else np.mean
    if one_d and channels_last:  # over the steps: the first axis of a sample
        ref = reduce(X.reshape(n, input_shape[0], -1), axis=1)
    else:  # over the positions of each channel
        channels = input_shape[0] if len(input_shape) == rank + 1 else 1
        ref = reduce(X.reshape(n, channels, -1), axis=2)
    assert_allclose(Y, ref, **tolerance(dtype))


@settings(max_examples=_examples(25), deadline=None)
@given(rank=st.sampled_from([1, 2]), size=st.integers(1, 6), kernel=st.integers(1, 4),
       strides=st.integers(1, 3), padding=st.sampled_from(["valid", "same", 0, 1, 2]),
       pool=st.integers(1, 3), n=st.integers(2, 4), seed=st.integers(0, 2**16),
       threads=THREADS)
@fuzzed
def test_conv_geometry_in_an_estimator(rank, size, kernel, strides, padding, pool, n,
                                       seed, threads):
    conv_type, pool_type = (Conv2D, MaxPool2D) if rank == 2 else (Conv1D, AvgPool1D)
    input_shape = (1,) + (size,) * rank
    clf = NNClassifier([conv_type(2, kernel, strides=strides, padding=padding,
                                  activation="relu"), pool_type(pool)],
                       input_shape=input_shape, max_iter=1, random_state=seed)
    rng = np.random.RandomState(seed)
    X = rng.randn(n, size ** rank)
    y = np.arange(n) % 2
    conv_out = expected_window_output((size,) * rank, kernel, strides, padding, 1,
                                      pool=False)
    valid = conv_out is not None and min(conv_out) >= pool
    _, error = attempt(clf.fit, X, y)
    check_outcome(error, not valid, valid, clf)
    if error is None:
        check_predictions(clf, X[:1], classifier=True)


# -- recurrent layers and masks -------------------------------------------------------

CELLS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}
VOCABULARY = 5


@settings(max_examples=_examples(100), deadline=None)
@given(cell=st.sampled_from(sorted(CELLS)), units=st.integers(1, 3),
       return_sequences=st.booleans(), go_backwards=st.booleans(),
       bidirectional=st.sampled_from([None, None, "concat", "sum", "mul", "ave"]),
       steps=st.integers(1, 6), features=st.integers(1, 3), n=st.integers(1, 4),
       source=st.sampled_from(["floats", "flat_floats", "embedding", "masking"]),
       bad_token=st.sampled_from([None, None, "too_large", "negative", "fraction"]),
       after=st.sampled_from([None, "dense", "flatten", "avg", "max"]),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16), threads=THREADS)
@fuzzed
def test_recurrent_layers_and_masks(cell, units, return_sequences, go_backwards,
                                    bidirectional, steps, features, n, source, bad_token,
                                    after, dtype, seed, threads):
    rng = np.random.RandomState(seed)
    recurrent = CELLS[cell](units, return_sequences=return_sequences,
                            go_backwards=go_backwards)
    if bidirectional:
        recurrent = Bidirectional(recurrent, merge_mode=bidirectional, name="rnn")
    else:
        recurrent.set_params(name="rnn")
    specs, padded_rows = [recurrent], []
    if source == "embedding":
        X = rng.randint(VOCABULARY, size=(n, steps)).astype(dtype)
        X[rng.rand(n, steps) < 0.3] = 0
        X[0] = 0  # a sequence of padding only
        padded_rows = [i for i in range(n) if not X[i].any()]
        if bad_token:
            X.flat[rng.randint(X.size)] = {"too_large": VOCABULARY, "negative": -1,
                                           "fraction": 1.5}[bad_token]
        specs.insert(0, Embedding(VOCABULARY, features, mask_zero=True))
    elif source == "flat_floats":
        X = rng.randn(n, steps).astype(dtype)
    else:
        X = rng.randn(n, steps, features).astype(dtype)
        if source == "masking":
            X[rng.rand(n, steps) < 0.3] = 0
            X[0] = 0
            padded_rows = [i for i in range(n) if not X[i].any()]
            specs.insert(0, Masking(0.0))
    if after == "dense":
        specs.append(Dense(2))
    elif after == "flatten":
        specs.append(Flatten())
    elif after:
        pool = GlobalAvgPool1D if after == "avg" else GlobalMaxPool1D
        specs.append(pool(data_format="channels_last"))
    invalid_tokens = source == "embedding" and bad_token is not None

    net = network(specs, X.shape[1:], dtype, seed)
    assert net.find_layer("rnn").output_shape == (
        ((steps,) if return_sequences else ())
        + (units * (2 if bidirectional == "concat" else 1),))
    _, error = attempt(run_network, net, X, dtype)
    check_outcome(error, invalid_tokens, not invalid_tokens, specs)
    if error is not None:
        return
    # A sequence with every step masked keeps the initial state: zeros.
    states = net.layer_output(X, "rnn")
    assert_finite(states)
    assert_array_equal(states[padded_rows], 0)


@settings(max_examples=_examples(20), deadline=None)
@given(cell=st.sampled_from(sorted(CELLS)), return_sequences=st.booleans(),
       bidirectional=st.booleans(), steps=st.integers(1, 6), n=st.integers(2, 5),
       bad_token=st.sampled_from([None, None, "too_large", "negative", "fraction"]),
       seed=st.integers(0, 2**16), threads=THREADS)
@fuzzed
def test_recurrent_estimator_on_padded_tokens(cell, return_sequences, bidirectional,
                                              steps, n, bad_token, seed, threads):
    rng = np.random.RandomState(seed)
    recurrent = CELLS[cell](2, return_sequences=return_sequences)
    if bidirectional:
        recurrent = Bidirectional(recurrent)
    X = rng.randint(VOCABULARY, size=(n, steps)).astype(float)
    X[0] = 0  # padding only
    if bad_token:
        X.flat[rng.randint(X.size)] = {"too_large": VOCABULARY, "negative": -1,
                                       "fraction": 0.5}[bad_token]
    y = np.arange(n) % 2
    clf = NNClassifier([Embedding(VOCABULARY, 3, mask_zero=True), recurrent],
                       max_iter=2, random_state=seed)
    _, error = attempt(clf.fit, X, y)
    check_outcome(error, bad_token is not None, bad_token is None, X)
    if error is None:
        check_predictions(clf, X[:1], classifier=True)
        check_predictions(clf, np.zeros((1, steps)), classifier=True)


# -- attention -------------------------------------------------------------------------

@settings(max_examples=_examples(60), deadline=None)
@given(steps=st.integers(1, 6), features=st.integers(1, 6), heads=st.integers(1, 3),
       key_dim=st.sampled_from([None, None, 1, 2, 5]),
       value_dim=st.sampled_from([None, None, 1, 3]), causal=st.booleans(),
       layer=st.sampled_from(["attention", "block", "block_norm_first"]),
       positions=st.sampled_from([None, "learned", "sinusoidal"]),
       source=st.sampled_from(["floats", "embedding", "masking"]),
       after=st.sampled_from([None, "norm", "avg", "max"]), n=st.integers(1, 4),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16), threads=THREADS)
@fuzzed
def test_attention_shapes_and_masks(steps, features, heads, key_dim, value_dim, causal,
                                    layer, positions, source, after, n, dtype, seed,
                                    threads):
    rng = np.random.RandomState(seed)
    if layer == "attention":
        main = MultiHeadAttention(heads, key_dim, value_dim, causal=causal, name="att")
    else:
        main = TransformerEncoderBlock(heads, key_dim, ff_units=3, value_dim=value_dim,
                                       causal=causal, norm_first=layer.endswith("first"),
                                       name="att")
    specs, padded_rows = [main], []
    if positions:
        specs.insert(0, PositionalEmbedding(positions))
    if source == "embedding":
        X = rng.randint(VOCABULARY, size=(n, steps)).astype(dtype)
        X[0] = 0  # a sequence of padding only
        specs.insert(0, Embedding(VOCABULARY, features, mask_zero=True))
    else:
        X = rng.randn(n, steps, features).astype(dtype)
        if source == "masking":
            X[rng.rand(n, steps) < 0.3] = 0
            X[0] = 0
            specs.insert(0, Masking(0.0))
    if source != "floats":
        padded_rows = [i for i in range(n) if not X[i].any()]
    if after == "norm":
        specs.append(LayerNormalization())
    elif after:
        specs.append((GlobalAvgPool1D if after == "avg" else GlobalMaxPool1D)())
    no_key_dim = key_dim is None and features // heads == 0

    net, error = attempt(network, specs, X.shape[1:], dtype, seed)
    check_outcome(error, no_key_dim, not no_key_dim, specs,
                  message=r"'att'.*key_dim=None is features // num_heads")
    if error is not None:
        return
    assert net.find_layer("att").output_shape == (steps, features)
    assert net.output_shape == ((features,) if after in ("avg", "max")
                                else (steps, features))
    run_network(net, X, dtype)
    if layer == "attention" and padded_rows and after is None:
        # A query that sees no key weighs nothing: the output is the bias.
        bias = net.find_layer("att").params["output_bias"]
        assert_allclose(net.forward(X)[padded_rows], np.broadcast_to(
            bias, (len(padded_rows), steps, features)), **tolerance(dtype))


# -- pathways and side inputs --------------------------------------------------------

# Branches of k units: their layers, and the shape they output for samples of
# a shape (None where they do not apply), by the documented rules.
BRANCHES = [
    (lambda k: [], lambda shape, k: shape),
    (lambda k: [Dense(k)], lambda shape, k: shape[:-1] + (k,)),
    (lambda k: [Dense(k, activation="tanh"), Activation("sigmoid")],
     lambda shape, k: shape[:-1] + (k,)),
    (lambda k: [Flatten()], lambda shape, k: (int(np.prod(shape)),)),
    (lambda k: [Reshape((-1,))], lambda shape, k: (int(np.prod(shape)),)),
    (lambda k: [Conv1D(k, 1)],  # on (channels, length) or (length,)
     lambda shape, k: (k, shape[-1]) if len(shape) <= 2 else None),
    (lambda k: [MaxPool1D(1)], lambda shape, k: shape if len(shape) <= 2 else None),
    (lambda k: [Pathways([[], [Dense(k)]], merge="concat", axis=-1)],
     lambda shape, k: shape[:-1] + (shape[-1] + k,)),
]
MERGES = ["concat", "add", "multiply", "average"]


def _branch_output(branch, input_shape):
    """The output shape of ``branch`` ((index, units)) for ``input_shape``."""
    index, units = branch
    return BRANCHES[index][1](input_shape, units)


def _merged(outputs, merge, position):
    if merge == "concat":
        return np.concatenate(outputs, axis=position + 1)
    if merge == "multiply":
        return np.prod(outputs, axis=0)
    total = np.sum(outputs, axis=0)
    return total / len(outputs) if merge == "average" else total


@st.composite
def mergeable_pathways(draw):
    """Pathways that merge, by construction: (branches as (index, units)
    pairs, merge, axis, input_shape). The other branches end in the first
    one's shape, or for 'concat' differ from it only along the axis."""
    input_shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    usable = [(i, k) for i in range(len(BRANCHES)) for k in (1, 2, 3)
              if _branch_output((i, k), input_shape) is not None]
    first = draw(st.sampled_from(usable))
    shape = _branch_output(first, input_shape)
    merge = draw(st.sampled_from(MERGES))
    if merge == "concat":
        position = draw(st.integers(0, len(shape) - 1))
        axis = draw(st.sampled_from([position + 1, position - len(shape)]))
        keep = [i for i in range(len(shape)) if i != position]

        def fits(other):
            return (len(other) == len(shape)
                    and all(other[i] == shape[i] for i in keep))
    else:
        axis = draw(st.integers(-4, 4))  # only concatenation reads it

        def fits(other):
            return other == shape
    others = [branch for branch in usable if fits(_branch_output(branch, input_shape))]
    branches = draw(st.permutations(
        [first] + draw(st.lists(st.sampled_from(others), min_size=1, max_size=2))))
    return branches, merge, axis, input_shape


@settings(max_examples=_examples(60), deadline=None)
@given(pathways=mergeable_pathways(), n=st.integers(1, 3), dtype=st.sampled_from(FLOATS),
       seed=st.integers(0, 2**16), threads=THREADS)
@fuzzed
def test_pathways(pathways, n, dtype, seed, threads):
    branches, merge, axis, input_shape = pathways
    spec = Pathways([BRANCHES[i][0](k) for i, k in branches], merge=merge, axis=axis)
    net, error = attempt(network, [spec], input_shape, dtype, seed)
    check_outcome(error, False, True, spec)
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    layer = net.layers[0]
    outputs = [forward_chain(layers, X)[0] for _, layers in layer.branches]
    assert [o.shape[1:] for o in outputs] == [_branch_output(b, input_shape)
                                               for b in branches]
    assert_allclose(Y, _merged(outputs, merge, layer.position), **tolerance(dtype))


# What the error says when one thing about mergeable pathways is wrong.
PATHWAY_FAULTS = {
    "one_branch": r"needs at least two branches, got [01]",
    "merge": r"'merge' parameter of Pathways",
    "axis": r"axis=-?\d+ is not an axis of the outputs to concatenate",
    "shapes": r"cannot (add|multiply|average|concatenate) outputs of shapes",
}


@pytest.mark.parametrize("fault", PATHWAY_FAULTS)
@settings(max_examples=_examples(5), deadline=None)
@given(pathways=mergeable_pathways(), data=st.data())
def test_pathways_errors(fault, pathways, data):
    branches, merge, axis, input_shape = pathways
    branches = [BRANCHES[i][0](k) for i, k in branches]
    if fault == "one_branch":
        branches = branches[:data.draw(st.integers(0, 1))]
    elif fault == "merge":
        merge = data.draw(st.sampled_from(["max", "sum", "concatenate"]))
    elif fault == "axis":  # the batch axis, or beyond the axes of the outputs
        rank = len(input_shape)
        merge, branches = "concat", [[], []]
        axis = data.draw(st.sampled_from([0, rank + 1, -rank - 1]))
    else:  # one more branch of another shape: a wider last axis, or one axis less
        wider = [Dense(input_shape[-1] + 1)] if merge != "concat" else (
            [Flatten()] if len(input_shape) > 1 else [Conv1D(1, 1)])
        branches = [[], wider]
        axis = -1
    spec = Pathways(branches, merge=merge, axis=axis)
    _, error = attempt(network, [spec], input_shape)
    check_outcome(error, True, False, spec, message=PATHWAY_FAULTS[fault])


@settings(max_examples=_examples(40), deadline=None)
@given(main=st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple),
       side=st.lists(st.integers(0, 3), min_size=1, max_size=2).map(tuple),
       side_layers=st.sampled_from([None, "dense", "flatten"]),
       flatten_main=st.booleans(), merge=st.sampled_from(MERGES),
       axis=st.integers(-3, 3), input_name=st.sampled_from(["side", "side", "other"]),
       as_dict=st.booleans(), n=st.integers(1, 4), seed=st.integers(0, 2**16),
       threads=THREADS)
@fuzzed
def test_merge_input(main, side, side_layers, flatten_main, merge, axis, input_name,
                     as_dict, n, seed, threads):
    rng = np.random.RandomState(seed)
    layers = {None: None, "dense": [Dense(2)], "flatten": [Flatten()]}[side_layers]
    specs = ([Flatten()] if flatten_main else []) + [
        MergeInput(input_name, layers=layers, merge=merge, axis=axis)]
    reg = NNRegressor(specs, input_shape={"main": main, "side": side}, max_iter=1,
                      random_state=seed)
    parts = {"main": rng.randn(n, *main), "side": rng.randn(n, *side)}
    X = parts if as_dict else np.hstack([p.reshape(n, -1) for p in parts.values()])
    _, error = attempt(reg.fit, X, rng.randn(n))
    if 0 in side or input_name != "side":
        assert error is not None, specs
    if error is not None:
        return
    one = {k: v[:1] for k, v in parts.items()} if as_dict else X[:1]
    assert reg.predict(one).shape == (1,)
    check_predictions(reg, X)


# -- dense layers and single samples -------------------------------------------------

@settings(max_examples=_examples(40), deadline=None)
@given(units=st.integers(1, 4),
       input_shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       activation=st.sampled_from([None, "relu", "tanh", "sigmoid", "softmax", "elu"]),
       use_bias=st.booleans(), n=st.integers(1, 3), dtype=st.sampled_from(FLOATS),
       seed=st.integers(0, 2**16), threads=THREADS)
@fuzzed
def test_dense_layer(units, input_shape, activation, use_bias, n, dtype, seed, threads):
    net = network([Dense(units, activation=activation, use_bias=use_bias)], input_shape,
                  dtype, seed)
    assert net.output_shape == input_shape[:-1] + (units,)
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    layer = net.layers[0]
    Z = X.astype(np.float64) @ layer.params["kernel"].astype(np.float64)
    if use_bias:
        Z = Z + layer.params["bias"]
    ref = {None: Z, "relu": np.maximum(Z, 0), "tanh": np.tanh(Z),
           "sigmoid": 1 / (1 + np.exp(-Z)), "elu": np.where(Z > 0, Z, np.expm1(Z)),
           "softmax": np.exp(Z - Z.max(axis=-1, keepdims=True))}[activation]
    if activation == "softmax":
        ref = ref / ref.sum(axis=-1, keepdims=True)
    assert_allclose(Y, ref, **tolerance(dtype))


@settings(max_examples=_examples(25), deadline=None)
@given(classifier=st.booleans(), net_dtype=st.sampled_from(["float32", "float64"]),
       x_dtype=st.sampled_from(FLOATS), n=st.integers(2, 7),
       n_features=st.sampled_from([1, 2, 3, 5]), n_classes=st.integers(2, 4),
       seed=st.integers(0, 2**16), threads=THREADS)
@fuzzed
def test_dense_estimator_predicts_single_samples(classifier, net_dtype, x_dtype, n,
                                                 n_features, n_classes, seed, threads):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, n_features).astype(x_dtype)
    if classifier:
        y = np.arange(n) % min(n_classes, n)
        est = NNClassifier([Dense(4, activation="relu")], max_iter=2, dtype=net_dtype,
                           random_state=seed).fit(X, y)
    else:
        y = rng.randn(n)
        est = NNRegressor([Dense(4, activation="relu")], max_iter=2, dtype=net_dtype,
                          random_state=seed).fit(X, y)
    together = check_predictions(est, X, classifier)
    for i in range(n):  # one sample at a time: as in the batch
        alone = check_predictions(est, X[i:i + 1], classifier)
        if classifier:
            assert_allclose(est.predict_proba(X[i:i + 1]), est.predict_proba(X)[i:i + 1],
                            rtol=1e-5, atol=1e-6)
        else:
            assert_allclose(alone, together[i:i + 1], rtol=1e-5, atol=1e-6)


# -- regression tests for what fuzzing found ---------------------------------------------

@pytest.mark.parametrize("padding", [(1.5, 1), (None, 1), (True, 1), ((1, 2, 3), 0),
                                     ((1, "a"), 0)])
def test_padding_entries_that_are_not_ints_are_clear_errors(padding):
    # A float or None entry raised "TypeError: 'float' object is not
    # iterable"; True was taken as a padding of 1.
    for spec in (Conv2D(2, 2, padding=padding), MaxPool2D(2, padding=padding)):
        with pytest.raises(ValueError, match="padding must hold non-negative ints"):
            build_layers([spec], (1, 4, 4), np.float64)


@pytest.mark.parametrize("geometry", [
    dict(strides=(1, 2**31 - 1), padding=((0, 0), (2**31 - 1, 2**31 - 1))),
    dict(strides=(1, 2**62)),
    dict(dilation=(1, 2**40)),
    dict(padding=((0, 0), (2**62, 0))),
])
def test_geometry_beyond_the_kernels_int_range_is_a_clear_error(geometry):
    # The kernels index with C ints: the first crashed (segmentation fault),
    # the next two raised an OverflowError, the last numpy's "maximum
    # allowed dimension exceeded".
    X, K = np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1))
    with pytest.raises(ValueError, match="too large"):
        _ops.conv2d_forward(X, K, **geometry)
    with pytest.raises(ValueError, match="too large"):
        build_layers([Conv2D(1, 1, **geometry)], (1, 3, 3), np.float64)


@pytest.mark.parametrize("spec_type", [MaxPool2D, AvgPool2D])
def test_pool_on_images_of_height_one_without_channel_axis(spec_type):
    # The layer took (1, W) for a signal and reported (1, OW) for an output
    # of height 2: the forward pass failed to reshape it.
    spec = spec_type((2, 1), strides=1, padding=((1, 1), (0, 0)))
    net = network([spec], (1, 3))
    assert net.output_shape == (2, 3)
    X = np.arange(6.0).reshape(2, 1, 3)
    Y = run_network(net, X, np.float64)
    assert_array_equal(Y, np.repeat(X, 2, axis=1))


@pytest.mark.parametrize("spec", [MaxPool1D(1, padding=1), AvgPool2D(2, padding=(0, 2)),
                                  MaxPool2D((3, 2), padding=((0, 0), (0, 2)))])
def test_pool_padding_as_large_as_the_pool_is_refused_at_build(spec):
    # Refused only when the first batch arrived before.
    with pytest.raises(ValueError, match="smaller than the pool size"):
        build_layers([spec], (1, 4, 4) if spec.rank == 2 else (1, 4), np.float64)


def test_pooling_beyond_the_kernels_int_range_is_a_clear_error():
    # Silently wrong maxima and means before: the window ends wrapped around.
    X = np.arange(3.0).reshape(1, 1, 1, 3)
    big = 2**31 - 1
    geometry = dict(pool_size=(1, big), strides=(1, big),
                    padding=((0, 0), (big - 1, big - 1)))
    with pytest.raises(ValueError, match="too large"):
        _ops.maxpool2d_forward(X, **geometry)
    with pytest.raises(ValueError, match="too large"):
        _ops.avgpool2d_forward(X, **geometry)
    # Just inside the range the windows are right.
    pad = 2**30 - 2
    Y = _ops.avgpool2d_forward(X, (1, pad + 1), strides=(1, 2**30),
                               padding=((0, 0), (pad, pad)))
    assert_array_equal(Y.ravel(), [0.0, 2.0])


@pytest.mark.parametrize("spec, input_shape", [
    (Dense(2), (3, 0)),
    (Conv2D(2, 1), (0, 3, 3)),
    (Conv1D(2, 1), (0, 3)),
    (MaxPool2D(1), (0, 2, 2)),
    (LSTM(2), (3, 0)),
    (Bidirectional(GRU(2)), (3, 0)),
])
def test_samples_with_an_empty_axis_are_clear_errors(spec, input_shape):
    # ZeroDivisionError from the initializers before.
    with pytest.raises(ValueError, match="shape"):
        network([spec], input_shape)


@pytest.mark.parametrize("shape", [(4, 0, 3), (4, 3, 0), (4, 0, 3, 3)])
def test_estimator_refuses_nd_samples_with_an_empty_axis(shape):
    for layers in ([Dense(2)], [], [Conv2D(2, 1)] if len(shape) == 4 else []):
        clf = NNClassifier(layers, max_iter=1)
        with pytest.raises(ValueError):
            clf.fit(np.zeros(shape), [0, 1, 0, 1])


@pytest.mark.parametrize("token, message", [
    (4e20, r"must be in \[0, 5\)"),
    (2.0**63, r"must be in \[0, 5\)"),
    (-1e30, r"must be in \[0, 5\)"),
    (np.nan, "NaN or infinity"),
    (np.inf, "NaN or infinity"),
    (2.5, "whole numbers"),
])
def test_token_indices_beyond_int64_are_out_of_range(token, message):
    # Huge whole numbers were called "fractional" (the cast to int64 wrapped).
    X = np.array([[1.0, 2.0, token]])
    with pytest.raises(ValueError, match=message):
        _ops.embedding_indices(X, 5)
    with pytest.raises(ValueError, match=message):
        network([Embedding(5, 2)], (3,)).forward(X)
    big = np.array([[1, 2**64 - 1]], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"must be in \[0, 5\)"):
        _ops.embedding_indices(big, 5)
