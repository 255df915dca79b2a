"""Weight initializers by name, drawn from a seeded ``numpy.random.RandomState``."""
import numpy as np

INITIALIZERS = (
    "zeros",
    "ones",
    "uniform",
    "normal",
    "orthogonal",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
)


def _fans(shape):
    """(fan_in, fan_out) for a kernel whose first axis is the input axis.

    Dense kernels are (n_in, n_out). Kernels with more axes (n_out, n_in, *k)
    are read as convolution kernels: the fans are multiplied by the window.
    """
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


_BLAS_CONTROLLER = None


def _one_blas_thread():
    """Hold numpy's BLAS to one thread for a small factorization.

    With more, OpenBLAS wakes its worker threads, which then spin for a
    while and take cores from the training that follows.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()  # scanning the libraries is slow
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def initialize(name, shape, rng, dtype):
    """Draw an array of the given shape.

    Parameters
    ----------
    name : str
        One of :data:`INITIALIZERS`. ``uniform`` is U(-0.05, 0.05), ``normal``
        is N(0, 0.05**2); the Glorot, He and LeCun variants scale by the fans.
    shape : tuple of int
    rng : numpy.random.RandomState
    dtype : numpy dtype

    Returns
    -------
    ndarray of the given shape and dtype
    """
    shape = tuple(int(s) for s in shape)
    if name == "zeros":
        return np.zeros(shape, dtype)
    if name == "ones":
        return np.ones(shape, dtype)
    if name == "uniform":
        return rng.uniform(-0.05, 0.05, size=shape).astype(dtype)
    if name == "normal":
        return rng.normal(0.0, 0.05, size=shape).astype(dtype)
    if name == "orthogonal":
        rows, cols = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        with _one_blas_thread():
            q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # unique, uniformly distributed
        q = q if rows >= cols else q.T
        return q.reshape(shape).astype(dtype)
    fan_in, fan_out = _fans(shape)
    scales = {
        "glorot": 2.0 / (fan_in + fan_out),
        "he": 2.0 / fan_in,
        "lecun": 1.0 / fan_in,
    }
    family, _, kind = name.partition("_")
    if family not in scales or kind not in ("uniform", "normal"):
        raise ValueError(
            f"Unknown initializer {name!r}; expected one of {list(INITIALIZERS)}."
        )
    variance = scales[family]
    if kind == "uniform":
        limit = np.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    return rng.normal(0.0, np.sqrt(variance), size=shape).astype(dtype)
