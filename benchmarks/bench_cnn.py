"""skdl vs PyTorch (CPU) on two small CNNs: training and inference samples/s.

digits_cnn: scikit-learn's 1x8x8 digits; Conv2D 16 3x3 same, relu, MaxPool 2,
Conv2D 32 3x3 same, relu, MaxPool 2, Dense 128 relu, 10 classes, batch 64.
mnist_cnn: random 1x28x28 images; Conv2D 32 3x3 valid, relu, MaxPool 2,
Conv2D 64 3x3 valid, relu, MaxPool 2, Dense 128 relu, 10 classes, batch 128.
Both Adam, float32, at 1 and 2 threads. When PyTorch is importable the same
models run in it, in the same process, and the ratios are printed.

    python benchmarks/bench_cnn.py [--repeats 5] [--profile] [--models digits_cnn ...]
"""
import argparse

import numpy as np
from sklearn.datasets import load_digits

from _versus_torch import compare, profile, skdl_epoch, torch_epoch
from skdl import Conv2D, Dense, Flatten, MaxPool2D, NNClassifier

MODELS = {
    # name: (input (C, H, W), conv padding, filters, batch, train samples)
    "digits_cnn": ((1, 8, 8), "same", (16, 32), 64, 1792),
    "mnist_cnn": ((1, 28, 28), "valid", (32, 64), 128, 2048),
}


def data(name):
    shape, _, _, _, n = MODELS[name]
    if name == "digits_cnn":
        X, y = load_digits(return_X_y=True)
        X = (X[:n] / 16).reshape((-1,) + shape).astype(np.float32)
        return X, y[:n]
    rng = np.random.RandomState(0)
    return rng.rand(n, *shape).astype(np.float32), rng.randint(0, 10, n)


def skdl_model(name):
    _, padding, (f1, f2), batch, _ = MODELS[name]
    return NNClassifier(
        layers=[Conv2D(f1, 3, padding=padding, activation="relu"), MaxPool2D(2),
                Conv2D(f2, 3, padding=padding, activation="relu"), MaxPool2D(2),
                Flatten(), Dense(128, activation="relu")],
        batch_size=batch, max_iter=1, shuffle=True, random_state=0, dtype="float32")


def skdl_times(name, X, y):
    return skdl_epoch(skdl_model(name), X, y)


def torch_times(name, X, y):
    import torch

    shape, padding, (f1, f2), batch, _ = MODELS[name]
    pad = 1 if padding == "same" else 0
    torch.manual_seed(0)
    side = shape[1]
    for _ in range(2):
        side = (side + 2 * pad - 2) // 2
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, f1, 3, padding=pad), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(f1, f2, 3, padding=pad), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(f2 * side * side, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    return torch_epoch(model, X, y, batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true",
                        help="print where skdl's time goes (1 thread) and stop")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS),
                        help="which models to time (default: all)")
    args = parser.parse_args()
    datasets = {name: data(name) for name in args.models}
    if args.profile:
        for name, (X, y) in datasets.items():
            profile(lambda: skdl_times(name, X, y))
        return
    speeds = compare(args.models, lambda m: lambda: skdl_times(m, *datasets[m]),
                     lambda m: lambda: torch_times(m, *datasets[m]),
                     {m: len(datasets[m][0]) for m in args.models}, args.repeats, 10)
    for name, own in speeds.items():
        print(f"{name:>10} skdl 1 -> 2 threads training speed-up: {own[2] / own[1]:.2f}x")


if __name__ == "__main__":
    main()
