"""skdl vs PyTorch (CPU) on recurrent classifiers: training and inference samples/s.

lstm / gru: random sequences of 50 steps x 64 features, one layer of 128 units,
its last state -> 10 classes, batch 64, Adam, float32, at 1 and 2 threads.
When PyTorch is importable the same models run in it, in the same process,
and the ratios (skdl / PyTorch, above 1: skdl faster) are printed.

    python benchmarks/bench_rnn.py [--repeats 3] [--samples 1024] [--profile]
"""
import argparse

import numpy as np

from _versus_torch import compare, profile, skdl_epoch, torch_epoch
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
    return skdl_epoch(clf, X, y)


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

    return torch_epoch(Net(), X, y, BATCH)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--profile", action="store_true",
                        help="print where skdl's time goes (1 thread) and stop")
    args = parser.parse_args()
    X, y = data(args.samples)
    if args.profile:
        for name in SPECS:
            profile(lambda: skdl_times(name, X, y))
        return
    compare(SPECS, lambda m: lambda: skdl_times(m, X, y),
            lambda m: lambda: torch_times(m, X, y), dict.fromkeys(SPECS, len(X)),
            args.repeats, 6)


if __name__ == "__main__":
    main()
