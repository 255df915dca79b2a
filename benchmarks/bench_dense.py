"""skdl vs scikit-learn's MLPClassifier on a dense 784-256-128-10 network.

One epoch of Adam over 12,800 random float32 samples, batch 128, at 1 and 2
threads; prints samples per second and the ratio. Run from a checkout with
skdl installed:

    python benchmarks/bench_dense.py [--repeats 5] [--torch]

``--torch`` adds PyTorch (if installed) with the same network and optimizer,
for reference only; skdl never depends on it.
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from skdl import Dense, NNClassifier

N_SAMPLES, N_FEATURES, N_CLASSES, BATCH = 12_800, 784, 10, 128


def data():
    rng = np.random.RandomState(0)
    X = rng.rand(N_SAMPLES, N_FEATURES).astype(np.float32)
    y = rng.randint(0, N_CLASSES, N_SAMPLES)
    return X, y


def skdl_epoch(X, y):
    clf = NNClassifier(
        layers=[Dense(256, activation="relu"), Dense(128, activation="relu")],
        optimizer="adam", batch_size=BATCH, max_iter=1, dtype="float32",
        random_state=0,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def mlp_epoch(X, y):
    clf = MLPClassifier(hidden_layer_sizes=(256, 128), solver="adam",
                        batch_size=BATCH, max_iter=1, random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def torch_epoch(X, y):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, N_CLASSES),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    start = time.perf_counter()
    perm = torch.randperm(N_SAMPLES)
    for i in range(0, N_SAMPLES, BATCH):
        idx = perm[i:i + BATCH]
        opt.zero_grad()
        loss = loss_fn(model(Xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def best_of(fn, X, y, repeats, threads):
    with threadpool_limits(threads):
        if fn is torch_epoch:
            import torch

            torch.set_num_threads(threads)
        fn(X, y)  # warm-up: imports, first-touch allocations
        return min(fn(X, y) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = data()
    contenders = [("skdl", skdl_epoch), ("MLPClassifier", mlp_epoch)]
    if args.torch:
        contenders.append(("PyTorch", torch_epoch))
    print(f"784-256-128-10 relu, adam, batch {BATCH}, float32, one epoch of "
          f"{N_SAMPLES} samples, best of {args.repeats}")
    print(f"{'threads':>7} {'library':>14} {'seconds':>8} {'samples/s':>10} "
          f"{'skdl speed-up':>14}")
    for threads in (1, 2):
        times = {name: best_of(fn, X, y, args.repeats, threads)
                 for name, fn in contenders}
        for name, seconds in times.items():
            print(f"{threads:>7} {name:>14} {seconds:>8.3f} "
                  f"{N_SAMPLES / seconds:>10.0f} {seconds / times['skdl']:>13.2f}x")


if __name__ == "__main__":
    main()
