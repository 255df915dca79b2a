"""What the benchmarks share: timing skdl and PyTorch on the same data in one
process, best of several interleaved runs, and printing the table."""
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits


def have_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def skdl_epoch(clf, X, y):
    """(train, inference) seconds: ``fit`` for one epoch, then ``predict_proba``."""
    start = time.perf_counter()
    clf.fit(X, y)
    train = time.perf_counter() - start
    start = time.perf_counter()
    clf.predict_proba(X)
    return train, time.perf_counter() - start


def torch_epoch(model, X, y, batch, lr=1e-3, epochs=1):
    """(train, inference) seconds of ``epochs`` shuffled epochs of Adam with
    cross-entropy, then softmax probabilities in chunks of 4096 rows."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    start = time.perf_counter()
    for _ in range(epochs):
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


def _limits(threads, torch):
    """threadpool_limits(threads), also applied to PyTorch's own pool."""
    limits = threadpool_limits(threads)
    if torch:
        import torch as torch_module

        torch_module.set_num_threads(threads)
    return limits


def best_interleaved(runs, repeats, threads, torch=False):
    """Fastest (train, inference) of each of ``runs`` over ``repeats`` rounds,
    each round calling every run once, one after the other.

    On a shared machine speed drifts by up to 2x over seconds; alternating
    the runs lets each see the same slow and fast spells, so their ratio is
    steadier than from back-to-back blocks of runs.
    """
    with _limits(threads, torch):
        for run in runs:  # warm-up
            run()
        results = [[run() for run in runs] for _ in range(repeats)]
    return [(min(r[i][0] for r in results), min(r[i][1] for r in results))
            for i in range(len(runs))]


def profile(run):
    """Print where ``run()`` spends its time, at one thread."""
    import cProfile
    import pstats

    with threadpool_limits(1):
        run()
        prof = cProfile.Profile()
        prof.enable()
        run()
        prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


def compare(models, skdl_run, torch_run, n_samples, repeats, width, with_torch=None):
    """Print samples/s for each model at 1 and 2 threads, with PyTorch's and
    the ratios when it is importable.

    Parameters
    ----------
    models : iterable of str
    skdl_run, torch_run : callables name -> (() -> (train, inference) seconds)
    n_samples : dict of name -> int, samples per epoch
    repeats : int
    width : int, width of the model column
    with_torch : bool, optional, default: whether PyTorch is importable

    Returns
    -------
    dict of name -> {threads: skdl training samples/s}
    """
    warnings.simplefilter("ignore", ConvergenceWarning)
    if with_torch is None:
        with_torch = have_torch()
    print(f"{'model':>{width}} {'threads':>7} {'skdl train/s':>13} {'skdl infer/s':>13}"
          + (f" {'torch train/s':>14} {'torch infer/s':>14} {'train x':>8} {'infer x':>8}"
             if with_torch else ""))
    speeds = {}
    for name in models:
        speeds[name] = {}
        n = n_samples[name]
        for threads in (1, 2):
            runs = [skdl_run(name)] + ([torch_run(name)] if with_torch else [])
            (train, infer), *torch_times = best_interleaved(runs, repeats, threads,
                                                            torch=with_torch)
            speeds[name][threads] = n / train
            line = f"{name:>{width}} {threads:>7} {n / train:>13.0f} {n / infer:>13.0f}"
            if with_torch:
                (t_train, t_infer), = torch_times
                line += (f" {n / t_train:>14.0f} {n / t_infer:>14.0f}"
                         f" {t_train / train:>7.2f}x {t_infer / infer:>7.2f}x")
            print(line)
    return speeds
