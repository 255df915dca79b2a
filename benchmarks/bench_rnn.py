"""skdl vs PyTorch (CPU) on recurrent classifiers: training and inference samples/s.

lstm / gru: random sequences of 50 steps x 64 features, one layer of 128 units,
its last state -> 10 classes, batch 64, Adam, float32, at 1 and 2 threads.
When PyTorch is importable the same models run in it, in the same process,
and the ratios (skdl / PyTorch, above 1: skdl faster) are printed.

    python benchmarks/bench_rnn.py [--repeats 3] [--samples 1024] [--profile]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from skdl import GRU, LSTM, NNClassifier

STEPS, FEATURES, UNITS, CLASSES, BATCH = 50, 64, 128, 10, 64
SPECS = {"lstm": LSTM, "gru": GRU}


def data(n):
    rng = np.random.RandomState(0)
    return (rng.randn(n, STEPS, FEATURES).astype(np.float32),
            rng.randint(0, CLASSES, n))


def skdl_times(name, X, y):
    clf = NNClassifier([SPECS[name](UNITS)], batch_size=BATCH, max_iter=1,
                       random_state=0, dtype="float32")
    start = time.perf_counter()
    clf.fit(X, y)
    train = time.perf_counter() - start
    start = time.perf_counter()
    clf.predict_proba(X)
    return train, time.perf_counter() - start


def torch_times(name, X, y):
    import torch

    torch.manual_seed(0)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[name]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cls(FEATURES, UNITS, batch_first=True)
            self.out = torch.nn.Linear(UNITS, CLASSES)

        def forward(self, x):
            return self.out(self.rnn(x)[0][:, -1])

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    start = time.perf_counter()
    perm = torch.randperm(len(X))
    for i in range(0, len(X), BATCH):
        idx = perm[i:i + BATCH]
        opt.zero_grad()
        loss_fn(model(Xt[idx]), yt[idx]).backward()
        opt.step()
    train = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(X), 4096):
            torch.softmax(model(Xt[i:i + 4096]), dim=1)
    return train, time.perf_counter() - start


def best(fn, name, X, y, repeats, threads):
    with threadpool_limits(threads):
        if fn is torch_times:
            import torch

            torch.set_num_threads(threads)
        fn(name, X, y)  # warm-up
        runs = [fn(name, X, y) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def profile(name, X, y):
    import cProfile
    import pstats

    with threadpool_limits(1):
        skdl_times(name, X, y)
        prof = cProfile.Profile()
        prof.enable()
        skdl_times(name, X, y)
        prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--profile", action="store_true",
                        help="print where skdl's time goes (1 thread) and stop")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    X, y = data(args.samples)
    print(f"{'model':>6} {'threads':>7} {'skdl train/s':>13} {'skdl infer/s':>13}"
          + (f" {'torch train/s':>14} {'torch infer/s':>14} {'train x':>8} {'infer x':>8}"
             if have_torch else ""))
    for name in SPECS:
        if args.profile:
            profile(name, X, y)
            continue
        for threads in (1, 2):
            train, infer = best(skdl_times, name, X, y, args.repeats, threads)
            line = f"{name:>6} {threads:>7} {len(X) / train:>13.0f} {len(X) / infer:>13.0f}"
            if have_torch:
                t_train, t_infer = best(torch_times, name, X, y, args.repeats, threads)
                line += (f" {len(X) / t_train:>14.0f} {len(X) / t_infer:>14.0f}"
                         f" {t_train / train:>7.2f}x {t_infer / infer:>7.2f}x")
            print(line)


if __name__ == "__main__":
    main()
