"""How many threads an op's work pays for, and the per-Python-thread cap the
training loop sets (see docs/architecture.md, "Threads").
"""
import threading


from .._kernels._openmp import effective_n_threads


# -- how many threads an op's work pays for ------------------------------------
# Work is counted in multiply-adds; an elementwise pass (activation, loss,
# optimizer, normalization, pooling) counts ELEMENT_WORK per element. Both are
# measured by benchmarks/bench_grain.py on a quiet 2-core x86-64. Timed alone,
# an op gains from a second thread from about 0.6-8 million multiply-adds in
# the products (2 million in the median) and 16-64 thousand elements in the
# elementwise passes, whose memory-bound loops scale better than the
# products' FMA-bound ones. Within a training step the other thread is still
# awake from the op before, so whole fits gain from smaller work:
# bench_grain.py's second table fits networks at several thresholds, and
# with 2 * 250,000 the CNNs of bench_cnn.py and bench_load.py fit 1.07-1.33x
# faster on two threads than on one (2 million: 0.98-1.05x), while the demo's
# dense net, whose ops stay below it, is unchanged (lower thresholds made it
# 4-11% slower). Below two threads' worth the op runs on the calling thread
# without a parallel region. Under load, the short spin of the idle OpenMP
# threads (skdl._kernels) and the per-step choice of skdl._training.StepThreads
# keep the threads from waiting on each other.
ELEMENT_WORK = 64


MIN_WORK_PER_THREAD = 250_000


def threads_for(work):
    """Threads an op should use for ``work`` multiply-adds.

    One per ``MIN_WORK_PER_THREAD`` of work, at most
    :func:`effective_n_threads`; small work gets 1, which runs the kernel's
    parallel region on the calling thread alone (no other thread is woken or
    waited for). The kernels cut their work into fixed chunks, so results do
    not depend on the count.

    Parameters
    ----------
    work : int
        Estimated cost of the op in multiply-adds (``ELEMENT_WORK`` per
        element for elementwise passes).

    Returns
    -------
    n_threads : int >= 1
    """
    if work < 2 * MIN_WORK_PER_THREAD:
        return 1  # without asking OpenMP: the common case for small networks
    n_threads = min(effective_n_threads(), int(work) // MIN_WORK_PER_THREAD)
    cap = getattr(_thread_cap, "value", None)
    return n_threads if cap is None else min(n_threads, cap)


# A cap on the threads of the ops this Python thread calls (the training loop
# sets it per step, see skdl._training.StepThreads); other Python threads,
# predicting at the same time, keep theirs.
_thread_cap = threading.local()


class at_most_threads:
    """Ops called by this Python thread in the block use at most ``n_threads``
    (None: no cap). Results do not depend on it; only the time does.

    A class rather than a generator-based context manager: the training loop
    enters it at every step.

    Parameters
    ----------
    n_threads : int >= 1 or None
    """

    __slots__ = ("n_threads", "previous")

    def __init__(self, n_threads):
        self.n_threads = n_threads

    def __enter__(self):
        self.previous = getattr(_thread_cap, "value", None)
        _thread_cap.value = self.n_threads

    def __exit__(self, *exc):
        _thread_cap.value = self.previous
