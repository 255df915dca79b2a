"""Fuzzing: estimator inputs and layer geometries drawn by hypothesis.

Every case either works, with a result that passes sanity checks (the shape
the layer reports, finite values, probabilities that sum to one, labels among
``classes_``), or raises a clear ValueError or TypeError (scikit-learn's
InvalidParameterError is a ValueError) with a message. Any other exception, a
NaN or infinite output, a crash or a hang fails. Where the answer is plain
from the documented behaviour (valid geometry, a NaN in X, a y of the wrong
length), the test also requires that the case works, or that it raises.

Few examples, tiny shapes and one or two epochs keep the file fast. To fuzz
deeper: ``SKDL_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py
--hypothesis-profile=explore`` draws more, and new, examples.
"""
import faulthandler
import functools
import os
import sys
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
    Masking,
    MaxPool1D,
    MaxPool2D,
    MergeInput,
    NNClassifier,
    NNRegressor,
    Pathways,
    Reshape,
    SimpleRNN,
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


def check_outcome(error, must_raise, must_work, case):
    """The outcome the documentation promises, where it is plain."""
    if must_raise:
        assert error is not None, f"accepted an invalid case: {case}"
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

X_DTYPES = ["float16", "float32", "float64", "int8", "int64", "bool", "object",
            "complex"]


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


def _input_shape(choice, sample):
    """An input_shape for samples of shape ``sample`` and whether it fits."""
    if choice == "none":
        return None, True
    if choice == "exact":
        return tuple(sample), True
    if choice == "minus_one":
        return (-1,) + tuple(sample[1:]), True
    if choice == "leading_one":  # (f,) -> (1, f): fits flat X only
        return (1,) + tuple(sample), len(sample) == 1
    if choice == "reversed":
        return tuple(reversed(sample)), tuple(reversed(sample)) == tuple(sample)
    if choice == "one_more":
        return tuple(sample[:-1]) + (sample[-1] + 1,), False
    if choice == "zero":
        return (0,) + tuple(sample), False
    return (-1, -1), False  # two unknowns


@settings(max_examples=_examples(150), deadline=None)
@given(classifier=st.booleans(), n=st.sampled_from([0, 1, 2, 3, 5, 7]),
       layout=st.sampled_from(["1d", "2d", "2d", "3d", "4d"]),
       n_features=st.sampled_from([0, 1, 3, 5]),
       axes=st.lists(st.sampled_from([0, 1, 2, 3]), min_size=3, max_size=3),
       dtype=st.sampled_from(X_DTYPES),
       special=st.sampled_from([None, None, np.nan, np.inf, -np.inf]),
       shape_choice=st.sampled_from(["none", "exact", "minus_one", "leading_one",
                                     "reversed", "one_more", "zero", "two_unknowns"]),
       y_choice=st.sampled_from(["ok", "ok", "short", "long", "one_class", "strings",
                                 "2d"]),
       weight_choice=st.sampled_from([None, "ok", "short", "negative", "zeros",
                                      "some_zero"]),
       layers=st.sampled_from(["dense", "none", "flatten", "normalized"]),
       early_stopping=st.booleans(), net_dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16), threads=THREADS)
# Early stopping that holds out only samples of weight 0, and one that keeps
# only samples of weight 0 for training.
@example(classifier=False, n=5, layout="2d", n_features=3, axes=[1, 1, 1],
         dtype="float64", special=None, shape_choice="none", y_choice="ok",
         weight_choice="some_zero", layers="dense", early_stopping=True,
         net_dtype="float64", seed=0, threads=1)
@example(classifier=False, n=2, layout="2d", n_features=1, axes=[1, 1, 1],
         dtype="float64", special=None, shape_choice="none", y_choice="ok",
         weight_choice="some_zero", layers="dense", early_stopping=True,
         net_dtype="float64", seed=0, threads=1)
@fuzzed
def test_estimator_inputs(classifier, n, layout, n_features, axes, dtype, special,
                          shape_choice, y_choice, weight_choice, layers, early_stopping,
                          net_dtype, seed, threads):
    rng = np.random.RandomState(seed)
    sample = {"1d": (), "2d": (n_features,), "3d": tuple(axes[:2]),
              "4d": tuple(axes)}[layout]
    values = rng.randn(n, *sample)
    has_special = special is not None and values.size > 0 and dtype not in (
        "int8", "int64", "bool")
    if has_special:
        values.flat[rng.randint(values.size)] = special
    X = _cast(values, dtype)
    input_shape, shape_fits = _input_shape(shape_choice, sample or (1,))

    length = {"short": n - 1, "long": n + 1}.get(y_choice, n)
    length = max(length, 0)
    if classifier:
        y = rng.randint(3, size=length)
        if y_choice == "one_class":
            y[:] = 1
        elif y_choice == "strings":
            y = np.array(["cat", "dog", "emu"])[y]
        elif y_choice == "2d":  # multilabel indicator
            y = rng.randint(2, size=(length, 2))
    else:
        y = rng.randn(length, 2) if y_choice == "2d" else rng.randn(length)
    weights = {None: None, "ok": rng.uniform(0.5, 2, n), "short": np.ones(max(n - 1, 0)),
               "negative": -np.ones(n), "zeros": np.zeros(n),
               "some_zero": np.r_[0.0, np.ones(max(n - 1, 0))]}[weight_choice]
    hidden = {"dense": [Dense(3, activation="tanh")], "none": [], "flatten": [Flatten()],
              "normalized": [BatchNormalization(), Dense(3), Dropout(0.5)]}[layers]
    kind = NNClassifier if classifier else NNRegressor
    est = kind(hidden, input_shape=input_shape, max_iter=2, dtype=net_dtype,
               early_stopping=early_stopping, random_state=seed)

    one_class = classifier and y.ndim == 1 and len(np.unique(y)) < 2
    x_bad = (layout == "1d" or n == 0 or 0 in sample or dtype == "complex"
             or has_special or not shape_fits)
    y_bad = length != n or one_class
    weights_bad = weight_choice in ("short", "negative", "zeros") or (
        weight_choice == "some_zero" and n == 1)
    case = dict(X=X, y=y, sample_weight=weights, input_shape=input_shape)
    _, error = attempt(est.fit, X, y, sample_weight=weights)
    valid = not (x_bad or y_bad or weights_bad)
    check_outcome(error, must_raise=not valid, must_work=valid and not early_stopping,
                  case=case)
    if error is not None:
        if valid:  # early stopping may refuse to split off too few samples
            assert "validation" in str(error), f"unclear error {error!r}: {case}"
        return

    for rows in (X[:1], X):  # one sample, then all of them
        P = check_predictions(est, rows, classifier)
        assert P.shape[1:] == y.shape[1:]
    # Samples of another shape are refused.
    other = np.zeros((1,) + sample[:-1] + (sample[-1] + 1,))
    _, error = attempt(est.predict, other)
    assert isinstance(error, ValueError), "predicted on samples of another shape"


# -- convolution and pooling geometry -----------------------------------------------

def per_axis(values):
    """An int for every axis, or a sequence of ints (one per axis, or of a
    wrong length for 1-D or 2-D layers)."""
    return st.one_of(values, st.lists(values, min_size=1, max_size=3).map(tuple))


SIDES = st.integers(-1, 3)
PADDINGS = st.one_of(st.sampled_from(["valid", "same"]), SIDES, st.lists(
    st.one_of(SIDES, st.tuples(SIDES, SIDES)), min_size=1, max_size=3).map(tuple))
SIZES = st.lists(st.sampled_from([1, 1, 2, 3, 4, 5, 7]), min_size=2, max_size=2)


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


@settings(max_examples=_examples(120), deadline=None)
@given(rank=st.sampled_from([1, 2]), channels=st.sampled_from([1, 2, 3, 16]),
       channel_axis=st.booleans(), sizes=SIZES, filters=st.integers(1, 3),
       kernel=per_axis(st.integers(-1, 5)), strides=per_axis(st.integers(-1, 4)),
       dilation=per_axis(st.integers(0, 3)), padding=PADDINGS, n=st.integers(1, 3),
       activation=st.sampled_from([None, "relu", "tanh", "sigmoid", "softmax"]),
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16), threads=THREADS)
# Softmax over each channel's plane, as documented and as the numpy twin and
# the layer's backward pass compute it, with fewer and with 16 channels.
@example(rank=1, channels=1, channel_axis=False, sizes=[1, 1], filters=1, kernel=1,
         strides=1, dilation=1, padding="valid", n=2, activation="softmax",
         dtype=np.float64, seed=0, threads=1)
@example(rank=2, channels=16, channel_axis=True, sizes=[2, 2], filters=2, kernel=1,
         strides=1, dilation=1, padding="valid", n=1, activation="softmax",
         dtype=np.float64, seed=0, threads=1)
@fuzzed
def test_conv_geometry(rank, channels, channel_axis, sizes, filters, kernel, strides,
                       dilation, padding, n, activation, dtype, seed, threads):
    spatial = tuple(sizes[:rank])
    channels = channels if channel_axis else 1
    input_shape = ((channels,) if channel_axis else ()) + spatial
    spec = (Conv2D if rank == 2 else Conv1D)(filters, kernel, strides=strides,
                                             padding=padding, dilation=dilation,
                                             activation=activation)
    expected = expected_window_output(spatial, kernel, strides, padding, dilation,
                                      pool=False)
    net, error = attempt(network, [spec], input_shape, dtype, seed)
    check_outcome(error, expected is None, expected is not None, spec)
    if error is not None:
        return
    layer = net.layers[0]
    assert layer.output_shape == (filters,) + expected
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    # The values are those of the plain-numpy convolution.
    K = layer.params["kernel"].reshape((filters, channels) + layer.kernel_hw)
    ref = _reference.conv2d_forward(X.reshape((n,) + layer.planes), K,
                                    layer.params["bias"], activation=activation,
                                    **layer.geometry)
    assert_allclose(Y.reshape(ref.shape), ref, **tolerance(dtype))


POOLS = {(1, "max"): MaxPool1D, (1, "avg"): AvgPool1D, (2, "max"): MaxPool2D,
         (2, "avg"): AvgPool2D}


@settings(max_examples=_examples(120), deadline=None)
@given(rank=st.sampled_from([1, 2]), kind=st.sampled_from(["max", "avg"]),
       channels=st.integers(1, 3), channel_axis=st.booleans(), sizes=SIZES,
       pool=per_axis(st.integers(-1, 5)),
       strides=st.one_of(st.none(), per_axis(st.integers(-1, 4))), padding=PADDINGS,
       n=st.integers(1, 3), dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16),
       threads=THREADS)
@fuzzed
def test_pool_geometry(rank, kind, channels, channel_axis, sizes, pool, strides, padding,
                       n, dtype, seed, threads):
    spatial = tuple(sizes[:rank])
    channels = channels if channel_axis else 1
    input_shape = ((channels,) if channel_axis else ()) + spatial
    spec = POOLS[rank, kind](pool, strides=strides, padding=padding)
    expected = expected_window_output(spatial, pool, pool if strides is None else strides,
                                      padding, 1, pool=True)
    net, error = attempt(network, [spec], input_shape, dtype, seed)
    check_outcome(error, expected is None, expected is not None, spec)
    if error is not None:
        return
    layer = net.layers[0]
    assert layer.output_shape == input_shape[:-rank] + expected
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    ref = getattr(_reference, f"{kind}pool2d_forward")(
        X.reshape((n,) + layer.planes), **layer.geometry)
    ref = ref[0] if kind == "max" else ref
    assert_allclose(Y.reshape(ref.shape), ref, **tolerance(dtype))


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


# -- pathways and side inputs --------------------------------------------------------

BRANCHES = [
    lambda k: [],
    lambda k: [Dense(k)],
    lambda k: [Dense(k, activation="tanh"), Activation("sigmoid")],
    lambda k: [Flatten()],
    lambda k: [Reshape((-1,))],
    lambda k: [Conv1D(k, 1)],
    lambda k: [MaxPool1D(1)],
    lambda k: [Pathways([[], [Dense(k)]], merge="concat", axis=-1)],
]
MERGES = ["concat", "add", "multiply", "average"]


def _merged(outputs, merge, position):
    if merge == "concat":
        return np.concatenate(outputs, axis=position + 1)
    if merge == "multiply":
        return np.prod(outputs, axis=0)
    total = np.sum(outputs, axis=0)
    return total / len(outputs) if merge == "average" else total


@settings(max_examples=_examples(80), deadline=None)
@given(branches=st.lists(st.tuples(st.integers(0, len(BRANCHES) - 1), st.integers(1, 3)),
                         min_size=0, max_size=3),
       merge=st.sampled_from(MERGES + ["max"]), axis=st.integers(-4, 4),
       input_shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
       n=st.integers(1, 3), dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**16),
       threads=THREADS)
@fuzzed
def test_pathways(branches, merge, axis, input_shape, n, dtype, seed, threads):
    spec = Pathways([BRANCHES[i](k) for i, k in branches], merge=merge, axis=axis)
    net, error = attempt(network, [spec], input_shape, dtype, seed)
    if len(branches) < 2 or merge == "max":
        assert error is not None, spec
    if error is not None:
        return
    X = np.random.RandomState(seed).randn(n, *input_shape).astype(dtype)
    Y = run_network(net, X, dtype)
    layer = net.layers[0]
    outputs = [forward_chain(layers, X)[0] for _, layers in layer.branches]
    assert_allclose(Y, _merged(outputs, merge, layer.position), **tolerance(dtype))


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
