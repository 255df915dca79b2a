"""skdl vs PyTorch (CPU) on two small CNNs: training and inference samples/s.

digits_cnn: scikit-learn's 1x8x8 digits; Conv2D 16 3x3 same, relu, MaxPool 2,
Conv2D 32 3x3 same, relu, MaxPool 2, Dense 128 relu, 10 classes, batch 64.
mnist_cnn: random 1x28x28 images; Conv2D 32 3x3 valid, relu, MaxPool 2,
Conv2D 64 3x3 valid, relu, MaxPool 2, Dense 128 relu, 10 classes, batch 128.
Both Adam, float32, at 1 and 2 threads. When PyTorch is importable the same
models run in it, in the same process, and the ratios are printed.

    python benchmarks/bench_cnn.py [--repeats 3] [--profile]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

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
    clf = skdl_model(name)
    start = time.perf_counter()
    clf.fit(X, y)
    train = time.perf_counter() - start
    start = time.perf_counter()
    clf.predict_proba(X)
    return train, time.perf_counter() - start


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
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    start = time.perf_counter()
    perm = torch.randperm(len(X))
    for i in range(0, len(X), batch):
        idx = perm[i:i + batch]
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
    parser.add_argument("--profile", action="store_true",
                        help="print where skdl's time goes (1 thread) and stop")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    print(f"{'model':>10} {'threads':>7} {'skdl train/s':>13} {'skdl infer/s':>13}"
          + (f" {'torch train/s':>14} {'torch infer/s':>14} {'train x':>8} {'infer x':>8}"
             if have_torch else ""))
    for name in MODELS:
        X, y = data(name)
        if args.profile:
            profile(name, X, y)
            continue
        own = {}
        for threads in (1, 2):
            train, infer = best(skdl_times, name, X, y, args.repeats, threads)
            own[threads] = len(X) / train
            line = f"{name:>10} {threads:>7} {len(X) / train:>13.0f} {len(X) / infer:>13.0f}"
            if have_torch:
                t_train, t_infer = best(torch_times, name, X, y, args.repeats, threads)
                line += (f" {len(X) / t_train:>14.0f} {len(X) / t_infer:>14.0f}"
                         f" {t_train / train:>7.2f}x {t_infer / infer:>7.2f}x")
            print(line)
        print(f"{name:>10} skdl 1 -> 2 threads training speed-up: "
              f"{own[2] / own[1]:.2f}x")


if __name__ == "__main__":
    main()
