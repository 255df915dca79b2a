"""Two builds of skdl side by side: did a change make a model train or predict slower?

Each source tree must have its kernels built in place (``python setup.py
build_ext --inplace``). Every workload runs in a fresh process per build, the
builds alternating within each round, and keeps the best of its rounds; the
table gives old / new time (above 1: the new build is faster). The models are
those of the other scripts here (the demo net of bench_load.py, the CNNs of
bench_cnn.py and bench_load.py, the recurrent nets of bench_rnn.py), read from
this directory for both builds.

    python benchmarks/bench_builds.py OLD_TREE [NEW_TREE] [--rounds 3]
        [--workloads demo digits_cnn ...] [--threads 1 2]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (what to import and build, in the child; the arrays X, y and a model).
WORKLOADS = {
    "demo": "from bench_load import digits_fit; fit = digits_fit('skdl', 30)",
    "digits_cnn": "import bench_cnn as b; X, y = b.data('digits_cnn'); "
                  "model = b.skdl_model('digits_cnn').set_params(max_iter=5)",
    "mnist_cnn": "import bench_cnn as b; X, y = b.data('mnist_cnn'); "
                 "model = b.skdl_model('mnist_cnn')",
    "mnist1d_cnn": "import bench_load as b; X, y = b.mnist1d_data(); "
                   "model = b.mnist1d_skdl().set_params(max_iter=3)",
    "lstm": "import bench_rnn as b; from skdl import LSTM, NNClassifier; X, y = b.data(512); "
            "model = NNClassifier([LSTM(b.UNITS)], batch_size=b.BATCH, max_iter=1, "
            "random_state=0)",
    "gru": "import bench_rnn as b; from skdl import GRU, NNClassifier; X, y = b.data(512); "
           "model = NNClassifier([GRU(b.UNITS)], batch_size=b.BATCH, max_iter=1, "
           "random_state=0)",
}

CHILD = """
import json, warnings
warnings.simplefilter("ignore")
from threadpoolctl import threadpool_limits
from _versus_torch import skdl_epoch
{setup}
with threadpool_limits({threads}):
    best = None
    for _ in range({repeats}):
        if "fit" in globals():
            times = (fit()[0], 0.0)
        else:
            times = skdl_epoch(model, X, y)
        best = times if best is None else tuple(map(min, best, times))
print(json.dumps(best))
"""


def child_times(tree, workload, threads, repeats):
    """(train, inference) seconds of ``workload`` with the skdl of ``tree``,
    best of ``repeats`` in one fresh process (the first run included: a
    warm-up is one of the repeats)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(tree), HERE]))
    code = CHILD.format(setup=WORKLOADS[workload], threads=threads, repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=HERE, check=True,
                         capture_output=True, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new", nargs="?", default=os.path.dirname(HERE))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per process, the best kept (the first warms up)")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS),
                        choices=list(WORKLOADS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    trees = {"old": args.old, "new": args.new}
    print(f"old: {os.path.abspath(args.old)}\nnew: {os.path.abspath(args.new)}\n")
    print("| workload | threads | train old / new | predict old / new |")
    print("| --- | --- | --- | --- |")
    for workload in args.workloads:
        for threads in args.threads:
            best = {}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    times = child_times(tree, workload, threads, args.repeats)
                    best[name] = tuple(map(min, best.get(name, times), times))
            (old_t, old_p), (new_t, new_p) = best["old"], best["new"]
            predict = f"{old_p / new_p:.3f}x" if new_p else ""
            print(f"| {workload} | {threads} | {old_t / new_t:.3f}x "
                  f"({old_t:.3f} / {new_t:.3f} s) | {predict} |", flush=True)


if __name__ == "__main__":
    main()
