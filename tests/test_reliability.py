"""Reliability of fitted models: pickles across processes and thread counts,
threads and fork, invariance to batch composition, numerical safety and
memory."""
import gc
import os
import pickle
import subprocess
import sys
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from _threads import one_thread, two_threads
from skdl import (
    GRU,
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    MaxPool2D,
    NNClassifier,
    NNRegressor,
    Pathways,
)
from skdl._estimators import PICKLE_FORMAT
from skdl._kernels import _openmp

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _models():
    """A dense, a convolutional, a recurrent and a branching classifier."""
    return {
        "dense": NNClassifier([Dense(37, activation="relu"), Dense(13)],
                              max_iter=2, random_state=0),
        "conv": NNClassifier([Conv2D(5, 3, padding="same", activation="relu"),
                              MaxPool2D(2), BatchNormalization(), Conv2D(7, 3),
                              Flatten()], input_shape=(1, 8, 8), max_iter=2,
                             random_state=0),
        "recurrent": NNClassifier([GRU(9, return_sequences=True),
                                   Bidirectional(LSTM(5))], input_shape=(8, 8),
                                  max_iter=2, random_state=0),
        "pathways": NNClassifier([Pathways([[Dense(8, activation="tanh")], [], [Dense(3)]]),
                                  Dense(16, activation="relu")], max_iter=2,
                                 random_state=0),
    }


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    with threadpool_limits(limits=2, user_api="openmp"):
        return {name: model.fit(X, y) for name, model in _models().items()}


MODEL_NAMES = list(_models())
# Kernels given too little work by these small models to split over two
# threads in training: under 16384 weights (one optimizer chunk), layers of at
# most 64 units (one bias-sum block), recurrent steps of under 8192 values.
# test_ops and test_optimizers hold them to one thread against two.
SMALL_MODEL_KERNELS = ("activation_backward", "update", "weighted_column_sum")


# -- pickles ---------------------------------------------------------------------

_CHILD = """
import sys, joblib, numpy as np
from skdl._kernels._openmp import effective_n_threads
model = joblib.load(sys.argv[1], mmap_mode=sys.argv[3] or None)
X = np.load(sys.argv[2])
assert effective_n_threads() == 1, effective_n_threads()
np.save(sys.argv[2] + ".out.npy", model.predict_proba(X))
"""


@pytest.mark.parametrize("mmap_mode", ["", "r"])
def test_pickled_model_predicts_identically_in_another_process_and_thread_count(
        fitted, digits, tmp_path, mmap_mode):
    X, _ = digits
    for name, model in fitted.items():
        path = tmp_path / f"{name}.joblib"
        joblib.dump(model, path)
        np.save(tmp_path / "X.npy", X)
        with two_threads():
            expected = model.predict_proba(X)
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(sys.path)}
        subprocess.run([sys.executable, "-c", _CHILD, str(path), str(tmp_path / "X.npy"),
                        mmap_mode], check=True, env=env, timeout=120,
                       cwd=tmp_path)  # not the checkout: its skdl may be unbuilt
        assert_array_equal(np.load(tmp_path / "X.npy.out.npy"), expected, err_msg=name)


def test_model_loaded_read_only_can_train_again(fitted, digits, tmp_path):
    X, y = digits
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["conv"], path)
    loaded = joblib.load(path, mmap_mode="r")
    assert not loaded.network_.params.flags.writeable
    proba = loaded.predict_proba(X)
    again = pickle.loads(pickle.dumps(fitted["conv"]))
    loaded.partial_fit(X, y)
    again.partial_fit(X, y)
    assert_array_equal(loaded.network_.params, again.network_.params)
    assert not np.array_equal(loaded.predict_proba(X), proba)


def test_pickles_carry_a_format_version(fitted):
    state = fitted["dense"].__getstate__()
    assert state["_skdl_pickle_format"] == PICKLE_FORMAT
    # What a future skdl with another layout would write.
    model = NNClassifier.__new__(NNClassifier)
    state["_skdl_pickle_format"] = PICKLE_FORMAT + 98
    with pytest.raises(ValueError, match=rf"pickle format {PICKLE_FORMAT + 98}; this "
                       rf"skdl .* reads format {PICKLE_FORMAT} and older"):
        model.__setstate__(state)
    assert not hasattr(model, "network_")
    # A pickle from before the version existed loads as format 1.
    del state["_skdl_pickle_format"]
    model.__setstate__(state)
    assert_array_equal(model.network_.params, fitted["dense"].network_.params)


def _attributes(obj):
    """``obj``'s attributes, with copies of its arrays' contents."""
    return {key: (value, np.array(value, copy=True) if isinstance(value, np.ndarray)
                  else None) for key, value in vars(obj).items()}


def _assert_attributes_unchanged(obj, before, where):
    after = vars(obj)
    assert list(after) == list(before), f"{where}: attributes added or removed"
    for key, (value, contents) in before.items():
        assert after[key] is value, f"{where}.{key} was replaced"
        if contents is not None:
            assert_array_equal(after[key], contents, err_msg=f"{where}.{key}")


@pytest.mark.parametrize("fitted_model", [False, True])
@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickling_leaves_the_live_model_unchanged(fitted, fitted_model, dump, tmp_path):
    # Saving a model must not add the pickle's format tags (or anything else)
    # to the model in use, nor to its network and layers.
    model = fitted["conv"] if fitted_model else _models()["conv"]
    parts = {"model": model}
    if fitted_model:
        parts["network_"] = model.network_
        parts.update({f"layer {layer.name}": layer
                      for layer in model.network_.all_layers})
    before = {where: _attributes(part) for where, part in parts.items()}
    if dump == "pickle":
        pickle.dumps(model)
    else:
        joblib.dump(model, tmp_path / "model.joblib")
    for where, part in parts.items():
        _assert_attributes_unchanged(part, before[where], where)
    assert "_skdl_pickle_format" not in vars(model)


@pytest.mark.parametrize("name", ["dense", "cnn"])
def test_a_format_1_pickle_loads_and_trains_on_as_it_would_have(name):
    """Pickles written before the training state was one object and before
    layers kept checked windows (pickle format 1; made by
    tests/data/make_format1_pickle.py) load, predict what they predicted,
    and two more partial_fit calls give the weights they gave in the skdl
    that wrote them."""
    with open(Path(__file__).parent / "data" / "format1_classifier.pkl", "rb") as file:
        fixture = pickle.load(file)[name]
    clf = pickle.loads(fixture["pickle"])
    state = clf._training_state
    assert state.n_steps == 15 and set(state.optimizer_state) == {"m", "v"}
    assert (state.augment_rng is not None) == (name == "dense")
    X, y = load_digits(return_X_y=True)
    X, y = (X[:300] / 16).astype(np.float32), y[:300]
    assert_array_equal(clf.predict_proba(X), fixture["predict_proba"])
    for _ in range(2):
        clf.partial_fit(X, y)
    assert clf._training_state.n_steps == fixture["n_steps_after"]
    assert_array_equal(clf.network_.params, fixture["params_after_two_partial_fits"])
    # And it pickles again in today's format.
    again = pickle.loads(pickle.dumps(clf))
    assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again._training_state.n_steps == clf._training_state.n_steps


# -- threads -----------------------------------------------------------------------

@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predict_from_four_threads_at_once(fitted, digits, name):
    X, _ = digits
    model = fitted[name]
    expected = model.predict_proba(X)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: model.predict_proba(X), range(8)))
    for result in results:
        assert_array_equal(result, expected)


def test_threadpool_limits_one_means_one_thread(digits):
    X, y = digits
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _openmp.effective_n_threads() == 1
        one = _models()["conv"].fit(X, y)
    with two_threads(one_thread_ok=SMALL_MODEL_KERNELS):
        two = _models()["conv"].fit(X, y)
    assert_array_equal(one.network_.params, two.network_.params)


@pytest.mark.parametrize("name", ["conv", "recurrent", "pathways"])
def test_same_seed_same_weights_with_one_and_two_threads(digits, name):
    X, y = digits
    with one_thread():
        one = _models()[name].fit(X[:600], y[:600])
    with two_threads(one_thread_ok=SMALL_MODEL_KERNELS):
        two = _models()[name].fit(X[:600], y[:600])
    assert_array_equal(one.network_.params, two.network_.params)
    assert_array_equal(one.network_.buffers, two.network_.buffers)


# -- fork --------------------------------------------------------------------------

def _predict_in_fork(model, X, path, timeout=60):
    """Predictions from a child made by os.fork (written to ``path``); None if
    the child hangs."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, just the model
        code = 1
        try:
            np.save(path, model.predict_proba(X))
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return np.load(path)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_model_works_in_a_child_forked_after_a_threaded_fit(fitted, digits, tmp_path):
    X, _ = digits
    for name in ("conv", "recurrent"):
        # The fixture fitted with two threads: GNU libgomp's pool exists.
        proba = _predict_in_fork(fitted[name], X, tmp_path / f"{name}.npy")
        assert proba is not None, f"{name}: the forked child hung"
        assert_array_equal(proba, fitted[name].predict_proba(X))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_multiprocessing_fork_pool(fitted, digits):
    import multiprocessing

    X, _ = digits
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(fitted["conv"].predict_proba, (X,))
        assert_array_equal(result.get(timeout=60), fitted["conv"].predict_proba(X))


# -- invariance and inputs ----------------------------------------------------------

@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predictions_do_not_depend_on_batch_composition(fitted, digits, name):
    X, _ = digits
    model = fitted[name]
    P = model.predict_proba(X)
    for start, stop in [(0, 1), (5, 12), (100, 133), (3, 1797), (1000, 1797)]:
        assert_array_equal(model.predict_proba(X[start:stop]), P[start:stop])
    order = np.random.RandomState(0).permutation(len(X))
    assert_array_equal(model.predict_proba(X[order]), P[order])


@pytest.mark.parametrize("make, X_kind", [
    (lambda: NNClassifier([Dense(8)], max_iter=2, early_stopping=True,
                          class_weight="balanced", random_state=0), "float32"),
    (lambda: NNClassifier([Conv2D(3, 3), Flatten()], input_shape=(1, 8, 8),
                          max_iter=2, shuffle=False, random_state=0), "float32"),
    (lambda: NNClassifier([GRU(4)], input_shape=(8, 8), max_iter=1, random_state=0),
     "fortran"),
    (lambda: NNRegressor([Dense(8), BatchNormalization()], max_iter=2,
                         random_state=0), "float64"),
])
def test_fit_never_mutates_its_inputs(digits, make, X_kind):
    X, y = digits
    X = {"float32": X, "float64": X.astype(np.float64),
         "fortran": np.asfortranarray(X)}[X_kind]
    weight = np.linspace(0.5, 2.0, len(X))
    copies = X.copy(), y.copy(), weight.copy()
    model = make()
    target = y if isinstance(model, NNClassifier) else y.astype(float)
    model.fit(X, target, sample_weight=weight)
    model.partial_fit(X, target) if isinstance(model, NNRegressor) else None
    for given, copy in zip((X, y, weight), copies):
        assert_array_equal(given, copy)


def test_embedding_model_predicts_identically_after_pickle():
    rng = np.random.RandomState(0)
    tokens = rng.randint(0, 20, (60, 7))
    tokens[::3, 4:] = 0
    model = NNClassifier([Embedding(20, 4, mask_zero=True), LSTM(3)], max_iter=2,
                         random_state=0).fit(tokens, tokens[:, 0] % 2)
    assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(tokens),
                       model.predict_proba(tokens))


# -- numerical safety ---------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2, 5])
def test_extreme_logits_give_finite_losses_and_probabilities(n_classes):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3).astype(np.float32)
    y = np.arange(40) % n_classes
    clf = NNClassifier([], max_iter=1, random_state=0).fit(X, y)
    out = clf.get_weights()["output"]
    # Logits of about +-1e4 in float32.
    clf.set_weights({"output": {"kernel": np.sign(out["kernel"]) * 3e3,
                                "bias": np.zeros_like(out["bias"])}})
    logits = clf.network_.forward(X)
    assert np.abs(logits).max() > 1e4
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    Y = clf._one_hot(y)
    losses, grad = clf._loss_fn(logits, Y)
    assert np.isfinite(losses).all() and np.isfinite(grad).all()
    assert losses.max() > 1e3  # the wrong, confident ones cost that much
    assert np.isfinite(clf.predict_log_proba(X)).all()


@pytest.mark.filterwarnings("ignore:X has features as large as")
def test_huge_inputs_give_an_error_or_finite_predictions_never_nan(digits):
    X, y = digits
    clf = NNClassifier([Dense(16, activation="relu"), Dense(16, activation="relu")],
                       max_iter=2, random_state=0).fit(X, y)
    for scale in (1e30, 1e34, 1e38):
        try:
            proba = clf.predict_proba(X.astype(np.float64) * scale)
        except ValueError as error:
            assert "Scale the features" in str(error)
        else:
            assert np.isfinite(proba).all()
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    # Weights that make float32 overflow inside the network: an error.
    first = clf.get_weights()["dense"]
    clf.set_weights({"dense": {"kernel": first["kernel"] * 1e3}})
    with pytest.raises(ValueError, match=r"outputs overflowed to infinity or NaN for "
                       r"\d+ sample\(s\) .* Scale the features"):
        clf.predict(X.astype(np.float64) * 1e38)
    with pytest.raises(ValueError, match="too large for float32"):
        clf.predict(X.astype(np.float64) * 1e300)
    # Training on huge inputs: a clear error, or finite weights.
    model = NNClassifier([Dense(16, activation="relu")], max_iter=2, random_state=0)
    try:
        model.fit(X.astype(np.float64) * 1e38, y)
    except ValueError as error:
        assert "became" in str(error) or "overflowed" in str(error)
    assert np.isfinite(model.network_.params).all()


def _scale_warnings(caught):
    return [str(w.message) for w in caught if "too large for a network" in str(w.message)]


def test_features_too_large_for_float32_are_warned_about_with_the_scale_advice(digits):
    # Features of 1e30 trained silently to garbage (loss_ 8e29, accuracy 0.17);
    # a regressor stopped with "Lower the learning rate", which cannot help.
    X, y = digits  # features in [0, 1]
    X, y = X[:300], y[:300]
    advice = (r"X has features as large as 1e\+30, too large for a network in "
              r"float32 \(above about 1\.8e\+15 .*\)\. Scale the features \(e\.g\. "
              r"with StandardScaler\) or use dtype='float64'\.$")
    clf = NNClassifier([Dense(16, activation="relu")], max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match=advice):
        clf.fit(X * 1e30, y)
    with pytest.warns(UserWarning, match=advice):
        clf.partial_fit(X * 1e30, y)
    with pytest.warns(UserWarning, match=advice):
        clf.predict(X * 1e30)
    # Where training overflows, the error gives the same advice, not the rate.
    reg = NNRegressor([Dense(16, activation="relu")], max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match=advice), pytest.raises(
            ValueError, match=r"weights that gave a finite loss\. X has features as "
            r"large as 1e\+30, .* Scale the features") as error:
        reg.fit(X * 1e30, y.astype(float))
    assert "learning rate" not in str(error.value)
    # Sparse X: its stored values are the features.
    with pytest.warns(UserWarning, match="as large as 1e\\+30"):
        NNClassifier([Dense(4)], max_iter=1, random_state=0).fit(
            sp.csr_matrix(X * -1e30), y)
    # float64 holds them, and up to about 1.3e150 trains on them.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf64 = NNClassifier([Dense(16)], max_iter=1, random_state=0,
                             dtype="float64").fit(X * 1e30, y)
        NNClassifier([Dense(16)], max_iter=1, random_state=0).fit(X * 1e15, y)
    assert _scale_warnings(caught) == []
    with pytest.warns(UserWarning, match=r"float64 .*\. Scale the features \(e\.g\. "
                      r"with StandardScaler\)\.$"):
        clf64.predict(X.astype(np.float64) * 1e200)
    # Beyond float32's range: refused, as before, and not warned about too.
    with warnings.catch_warnings(record=True) as caught, pytest.raises(
            ValueError, match="too large for float32"):
        warnings.simplefilter("always")
        clf.predict(X.astype(np.float64) * 1e300)
    assert _scale_warnings(caught) == []


# -- memory -------------------------------------------------------------------------

def test_memory_is_flat_over_many_fit_predict_cycles(digits):
    X, y = digits
    X, y = X[:200], y[:200]
    model = NNClassifier([Conv2D(4, 3), Flatten(), Dense(8)], input_shape=(1, 8, 8),
                         max_iter=1, random_state=0)

    def cycles(n):
        for _ in range(n):
            model.fit(X, y)
            model.predict_proba(X)

    cycles(10)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cycles(100)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # A leak of one batch's arrays per cycle would be several MB.
    assert after - before < 1_000_000, f"grew by {after - before} bytes"


def test_predict_peak_memory_does_not_grow_with_n_samples():
    rng = np.random.RandomState(0)
    model = NNClassifier([Conv2D(32, 3, padding="same"), Flatten()],
                         input_shape=(1, 8, 8), max_iter=1, random_state=0)
    model.fit(rng.rand(64, 64).astype(np.float32), np.arange(64) % 3)

    def peak(n):
        X = rng.rand(n, 64).astype(np.float32)
        gc.collect()
        tracemalloc.start()
        try:
            model.predict_proba(X)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(8192), peak(32768)
    # 24576 more samples: their probabilities (3 float64 each) and logits, but
    # not their activations (32 * 64 float32 = 8 KiB a sample, 192 MiB in all).
    per_sample_output = 3 * 8 + 3 * 4 + 8
    assert large - small < 24576 * per_sample_output * 2, (small, large)
