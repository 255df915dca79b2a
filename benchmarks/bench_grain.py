"""When does a second thread pay? The measurement behind skdl._ops._threads's
``MIN_WORK_PER_THREAD`` and ``ELEMENT_WORK``.

For each op family and a range of sizes, times the op with one thread and
with two (forcing the count: the threshold is set to 1 while it runs), on a
quiet machine, best of interleaved repeats. The work column is the op's own
estimate, as ``skdl._ops._threads.threads_for`` receives it (multiply-adds;
``ELEMENT_WORK`` per element for elementwise passes). The crossover of a
family is the smallest work from which two threads are faster at every
larger size measured; two threads are used from ``2 * MIN_WORK_PER_THREAD``.

A second table fits whole networks (the demo's 64-100-10 dense net, 5
epochs; digits_cnn and the MNIST-1D CNN of bench_cnn.py and bench_load.py, one
epoch) at two threads for several values of ``MIN_WORK_PER_THREAD``, against
one thread. In a training step the second thread is still awake from the op
before, so whole steps gain from smaller work than an op timed alone: the
threshold is chosen from this table, and the per-op crossovers bound it from
above.

    python benchmarks/bench_grain.py [--fits-only]

Takes about 40 seconds. Run it alone: another busy process makes two threads
look far worse than they are on a quiet machine.
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from bench_cnn import data as cnn_data
from bench_cnn import skdl_model as cnn_model
from bench_load import mnist1d_data, mnist1d_skdl
from skdl import NNClassifier, _ops

rng = np.random.default_rng(0)


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _dense(n):
    X, W, b = _f32(n, 128), _f32(128, 128), _f32(128)
    return lambda: _ops.dense_forward(X, W, b, "relu")


def _weight_gradient(n):
    X, dY = _f32(n, 128), _f32(n, 128)
    return lambda: _ops.dense_param_grads(X, dY)


def _conv(n):
    X, K = _f32(n, 8, 16, 16), _f32(16, 8, 3, 3)
    return lambda: _ops.conv2d_forward(X, K, padding=((1, 1), (1, 1)))


def _activation(name):
    def make(n):
        X = _f32(n // 64, 64)
        return lambda: _ops.activation_forward(name, X)
    return make


def _loss(n):
    Z, Y = _f32(n // 10, 10), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n // 10)]
    return lambda: _ops.softmax_cross_entropy(Z, Y)


def _adam(n):
    p, g, m, v = _f32(n), _f32(n), np.zeros(n, np.float32), np.zeros(n, np.float32)
    return lambda: _ops.adam_update(p, g, m, v, 1e-6, 0.9, 0.999, 1e-8, 1)


def _batchnorm(n):
    X = _f32(n // 1024, 16, 64)
    return lambda: _ops.batchnorm_train_forward(X)


def _maxpool(n):
    X = _f32(n // 4096, 16, 16, 16)
    return lambda: _ops.maxpool2d_forward(X, 2)


# family -> (op on a size, sizes: rows, samples or elements)
FAMILIES = {
    "dense forward (n x 128 x 128)": (_dense, [8, 32, 64, 128, 256, 512, 1024]),
    "weight gradient (n x 128 x 128)": (_weight_gradient, [8, 32, 64, 128, 256, 512, 1024]),
    "conv 3x3 (n, 8, 16, 16) -> 16": (_conv, [1, 2, 4, 8, 16, 32, 64]),
    "tanh (elements)": (_activation("tanh"), [2048, 8192, 16384, 32768, 65536, 262144]),
    "relu (elements)": (_activation("relu"), [2048, 8192, 32768, 65536, 131072, 524288]),
    "softmax cross-entropy (elements)": (_loss, [640, 2560, 10240, 40960, 163840]),
    "adam (parameters)": (_adam, [4096, 16384, 32768, 65536, 262144, 1048576]),
    "batch norm (elements)": (_batchnorm, [4096, 16384, 65536, 262144, 1048576]),
    "max pool 2x2 (elements)": (_maxpool, [4096, 16384, 65536, 262144, 1048576]),
}


def _seconds(op, n_threads, reps):
    with threadpool_limits(n_threads):
        start = time.perf_counter()
        for _ in range(reps):
            op()
        return (time.perf_counter() - start) / reps


def measure(op, rounds=5, budget=0.004):
    """(one-thread, two-thread) seconds per call: best of interleaved rounds."""
    op()
    reps = max(3, int(budget / max(_seconds(op, 1, 3), 1e-7)))
    best = [np.inf, np.inf]
    for _ in range(rounds):
        for i, n_threads in enumerate((1, 2)):
            best[i] = min(best[i], _seconds(op, n_threads, reps))
    return best


def op_work(op):
    """The largest work estimate the op hands to ``_threads_for``."""
    seen = []
    helper = _ops._threads.threads_for

    def recording(work):
        seen.append(work)
        return helper(work)

    _ops._threads.threads_for = recording
    try:
        op()
    finally:
        _ops._threads.threads_for = helper
    return max(seen)


def _demo():
    X, y = load_digits(return_X_y=True)
    return (lambda: NNClassifier(batch_size=64, max_iter=5, n_iter_no_change=99,
                                 random_state=0), X / 16, y)


# network -> (() -> (estimator factory, X, y))
FITS = {
    "demo 64-100-10": _demo,
    "digits_cnn": lambda: (lambda: cnn_model("digits_cnn"), *cnn_data("digits_cnn")),
    "mnist1d_cnn": lambda: (mnist1d_skdl, *mnist1d_data()),
}
THRESHOLDS = [4_000_000, 1_000_000, 500_000, 250_000, 125_000, 30_000, 1]


def fit_table(rounds=5):
    """Best fit time of each network at one thread and, for every threshold
    of THRESHOLDS, at two; the rounds interleave every configuration."""
    warnings.simplefilter("ignore", ConvergenceWarning)
    saved = _ops._threads.MIN_WORK_PER_THREAD
    fits = {name: make() for name, make in FITS.items()}
    best = {}
    try:
        for _ in range(rounds):
            for config in [(1, None)] + [(2, v) for v in THRESHOLDS]:
                threads, value = config
                _ops._threads.MIN_WORK_PER_THREAD = saved if value is None else value
                with threadpool_limits(threads):
                    for name, (model, X, y) in fits.items():
                        start = time.perf_counter()
                        model().fit(X, y)
                        seconds = time.perf_counter() - start
                        best[name, config] = min(best.get((name, config), np.inf), seconds)
    finally:
        _ops._threads.MIN_WORK_PER_THREAD = saved
    print(f"\nfit seconds (best of {rounds}), 2 threads by MIN_WORK_PER_THREAD; "
          "x = 1-thread time / 2-thread time")
    print(f"{'network':16s} {'1 thread':>9s}" + "".join(f" {v:>12,d}" for v in THRESHOLDS))
    for name in fits:
        one = best[name, (1, None)]
        print(f"{name:16s} {one:9.4f}" + "".join(
            f" {best[name, (2, v)]:.4f} {one / best[name, (2, v)]:4.2f}x"
            for v in THRESHOLDS))
    print(f"skdl uses MIN_WORK_PER_THREAD = {saved:,d}")


def op_table():
    threshold = _ops._threads.MIN_WORK_PER_THREAD
    _ops._threads.MIN_WORK_PER_THREAD = 1  # every op asks for all the threads allowed
    crossovers = {}
    try:
        print(f"{'family':34s} {'size':>8s} {'work':>11s} {'1 thread':>10s} "
              f"{'2 threads':>10s} {'speed-up':>8s}")
        for family, (make, sizes) in FAMILIES.items():
            rows = []
            for size in sizes:
                op = make(size)
                one, two = measure(op)
                rows.append((op_work(op), one, two))
                print(f"{family:34s} {size:8d} {rows[-1][0]:11.3g} {one * 1e6:8.1f}us "
                      f"{two * 1e6:8.1f}us {one / two:8.2f}")
            paying = [work for i, (work, _, _) in enumerate(rows)
                      if all(one > two for _, one, two in rows[i:])]
            crossovers[family] = paying[0] if paying else None
    finally:
        _ops._threads.MIN_WORK_PER_THREAD = threshold
    print("\nsmallest work from which two threads are faster at every larger size:")
    for family, work in crossovers.items():
        print(f"  {family:34s} {'not reached' if work is None else f'{work:.3g}'}")
    print(f"\nskdl splits work from 2 * MIN_WORK_PER_THREAD = {2 * threshold:.3g} "
          f"(ELEMENT_WORK = {_ops._threads.ELEMENT_WORK} per element)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits-only", action="store_true",
                        help="only the table of whole fits")
    args = parser.parse_args()
    if not args.fits_only:
        op_table()
    fit_table()


if __name__ == "__main__":
    main()
