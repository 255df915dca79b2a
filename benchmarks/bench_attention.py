"""skdl vs PyTorch (CPU) on a small Transformer encoder: training and inference samples/s.

encoder: random sequences of 64 steps x 64 features, two encoder blocks
(4 heads of 16, feed-forward 128, relu, post-norm, no dropout: PyTorch's
``nn.TransformerEncoderLayer(64, 4, 128, dropout=0, batch_first=True)``),
the mean over the steps -> 10 classes, batch 64, Adam, float32, at 1 and 2
threads. When PyTorch is importable the same model runs in it, in the same
process, and the ratios (skdl / PyTorch, above 1: skdl faster) are printed,
then each library's speed-up from 1 to 2 threads. ``--busy`` runs the table
again while another process keeps one core busy (``while True: pass``), the
normal case on a user's machine.

    python benchmarks/bench_attention.py [--repeats 3] [--samples 1024] [--busy] [--profile]
"""
import argparse
import subprocess
import sys
import time

import numpy as np

from _versus_torch import compare, have_torch, profile, skdl_epoch, torch_epoch
from skdl import Dense, GlobalAvgPool1D, NNClassifier, TransformerEncoderBlock

STEPS, FEATURES, HEADS, FF, BLOCKS, CLASSES, BATCH = 64, 64, 4, 128, 2, 10, 64
MODELS = ("encoder",)


def data(n):
    rng = np.random.RandomState(0)
    return (rng.randn(n, STEPS, FEATURES).astype(np.float32),
            rng.randint(0, CLASSES, n))


def skdl_times(X, y):
    blocks = [TransformerEncoderBlock(HEADS, FEATURES // HEADS, FF) for _ in range(BLOCKS)]
    clf = NNClassifier(blocks + [GlobalAvgPool1D(), Dense(CLASSES)], batch_size=BATCH,
                       max_iter=1, random_state=0, dtype="float32")
    return skdl_epoch(clf, X, y)


def torch_times(X, y):
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(FEATURES, HEADS, FF, dropout=0.0,
                                                     batch_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, BLOCKS,
                                                       enable_nested_tensor=False)
            self.out = torch.nn.Linear(FEATURES, CLASSES)

        def forward(self, x):
            return self.out(self.encoder(x).mean(dim=1))

    return torch_epoch(Net(), X, y, BATCH)


def table(X, y, repeats, with_torch):
    speeds = compare(MODELS, lambda m: lambda: skdl_times(X, y),
                     lambda m: lambda: torch_times(X, y), dict.fromkeys(MODELS, len(X)),
                     repeats, 8, with_torch=with_torch)
    for name, by_threads in speeds.items():
        print(f"{name}: skdl training 1 -> 2 threads {by_threads[2] / by_threads[1]:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--busy", action="store_true",
                        help="also run the table while another process keeps a core busy")
    parser.add_argument("--profile", action="store_true",
                        help="print where skdl's time goes (1 thread) and stop")
    args = parser.parse_args()
    X, y = data(args.samples)
    if args.profile:
        profile(lambda: skdl_times(X, y))
        return
    with_torch = have_torch()
    print(f"quiet: {args.samples} samples of {STEPS} x {FEATURES}, {BLOCKS} blocks")
    table(X, y, args.repeats, with_torch)
    if args.busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)  # past the interpreter's start-up, spinning
        try:
            print("\none core busy (another process spinning):")
            table(X, y, args.repeats, with_torch)
        finally:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
