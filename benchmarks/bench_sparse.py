"""skdl on sparse input (bag-of-words-like CSR) vs MLPClassifier and dense input.

One epoch of Adam over 10,000 documents of 20,000 features (50 drawn per
row from a Zipf-like popularity, repeats summed: about 41 stored values,
0.21% dense), a 20000-64-2 relu network, batch 128, float32, at 1 and 2
threads: skdl on the CSR matrix (its first Dense layer multiplies through the
stored values), scikit-learn's MLPClassifier on the same matrix, and skdl on
``X.toarray()`` (800 MB) for the cost of densifying. Prints samples per
second and each one's time over skdl-sparse's, the best of several rounds in
which every contender runs once (as bench_cnn.py does). Run from a checkout
with skdl installed:

    python benchmarks/bench_sparse.py [--repeats 3] [--torch]

``--torch`` adds PyTorch (if installed): each batch converted to a sparse
COO tensor and multiplied with ``torch.sparse.mm``; for reference only.
"""
import argparse
import time
import warnings

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from _versus_torch import best_interleaved
from skdl import Dense, NNClassifier

N_SAMPLES, N_FEATURES, PER_ROW, HIDDEN, BATCH = 10_000, 20_000, 50, 64, 128


def data():
    """CSR float32 counts-like X and labels of a sparse linear rule."""
    rng = np.random.RandomState(0)
    # Zipf-like column popularity, as words have.
    popularity = 1.0 / np.arange(1, N_FEATURES + 1)
    popularity /= popularity.sum()
    rows = np.repeat(np.arange(N_SAMPLES), PER_ROW)
    cols = rng.choice(N_FEATURES, size=rows.size, p=popularity)
    X = sparse.csr_matrix((rng.rand(rows.size).astype(np.float32), (rows, cols)),
                          shape=(N_SAMPLES, N_FEATURES))
    X.sum_duplicates()
    y = (X @ rng.randn(N_FEATURES) > 0).astype(int)
    return X, y


def skdl_epoch(X, y):
    clf = NNClassifier([Dense(HIDDEN, activation="relu")], batch_size=BATCH,
                       max_iter=1, random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def mlp_epoch(X, y):
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), batch_size=BATCH, max_iter=1,
                        random_state=0)
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def torch_epoch(X, y):
    import torch

    torch.manual_seed(0)
    W1 = torch.nn.Parameter(torch.randn(N_FEATURES, HIDDEN) * 0.01)
    b1 = torch.nn.Parameter(torch.zeros(HIDDEN))
    head = torch.nn.Linear(HIDDEN, 2)
    opt = torch.optim.Adam([W1, b1, *head.parameters()], lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    yt = torch.from_numpy(y)
    start = time.perf_counter()
    order = np.random.RandomState(0).permutation(N_SAMPLES)
    for i in range(0, N_SAMPLES, BATCH):
        rows = order[i:i + BATCH]
        batch = X[rows].tocoo()
        Xb = torch.sparse_coo_tensor(np.vstack([batch.row, batch.col]),
                                     torch.from_numpy(batch.data), batch.shape,
                                     check_invariants=False)  # scipy's are valid
        opt.zero_grad()
        hidden = torch.relu(torch.sparse.mm(Xb, W1) + b1)
        loss = loss_fn(head(hidden), yt[rows])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = data()
    dense = X.toarray()
    contenders = [("skdl sparse", skdl_epoch, X), ("MLPClassifier", mlp_epoch, X),
                  ("skdl dense", skdl_epoch, dense)]
    if args.torch:  # fails here, before the runs, without PyTorch
        import torch  # noqa: F401

        contenders.append(("PyTorch sparse", torch_epoch, X))
    print(f"{N_FEATURES}-{HIDDEN}-2 relu, adam, batch {BATCH}, one epoch of "
          f"{N_SAMPLES} samples with {X.nnz / N_SAMPLES:.0f} stored values each "
          f"({X.nnz / np.prod(X.shape):.2%} dense), best of {args.repeats}")
    print(f"{'threads':>7} {'library':>15} {'seconds':>8} {'samples/s':>10} "
          f"{'time / skdl sparse':>19}")
    for threads in (1, 2):
        runs = [lambda fn=fn, data_=data_: (fn(data_, y), 0.0)
                for _, fn, data_ in contenders]
        best = best_interleaved(runs, args.repeats, threads, torch=args.torch)
        times = {name: train for (name, _, _), (train, _) in zip(contenders, best)}
        for name, seconds in times.items():
            print(f"{threads:>7} {name:>15} {seconds:>8.3f} {N_SAMPLES / seconds:>10.0f} "
                  f"{seconds / times['skdl sparse']:>18.2f}x")


if __name__ == "__main__":
    main()
