"""Checks and conversions the ops share: float arrays, outputs written in
place, arrays a bound op keeps, sample weights, scalars, and window geometry
(strides, padding, output sizes).
"""
import functools
from typing import NamedTuple
import math
import numbers

import numpy as np


FLOAT_DTYPES = (np.float32, np.float64)


# Largest size or offset the kernels index with (a C int).
INT_MAX = 2**31 - 1


def _float_array(name, a, ndim=None, dtype=None):
    """C-contiguous float32/float64 array, or a clear error."""
    if type(a) is not np.ndarray:
        a = np.asarray(a)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}.")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but {dtype} is expected.")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}.")
    # ascontiguousarray copies only what is not C-contiguous (and makes 0-d 1-d).
    return a if a.flags.c_contiguous and a.ndim else np.ascontiguousarray(a)


def _bound(names, given, checked):
    """The checked arrays, which a bound op keeps: each must be the array
    given (a contiguous copy made by the checks would not see the values
    written into the original later), else a ValueError naming it."""
    for name, a, b in zip(names, given, checked):
        if a is not None and a is not b:
            raise ValueError(f"{name} must be a C-contiguous float32 or float64 ndarray "
                             "to bind an op to it (the op reads it at every call).")
    return checked


def _compressed_arrays(name, X, fmt):
    """(data, indices, indptr) of a scipy sparse ``X`` in ``fmt`` ('csr' or
    'csc'), float data and intp indices, checked so the kernels cannot read
    outside them; or a clear error."""
    X = X.asformat(fmt)
    if X.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {X.dtype}.")
    major, minor = X.shape if fmt == "csr" else X.shape[::-1]
    data = np.ascontiguousarray(X.data)
    indices = np.ascontiguousarray(X.indices, dtype=np.intp)
    indptr = np.ascontiguousarray(X.indptr, dtype=np.intp)
    if (indptr.shape != (major + 1,) or indptr[0] != 0 or indptr[-1] > data.size
            or indptr[-1] > indices.size or (np.diff(indptr) < 0).any()
            or (indices[:indptr[-1]].size
                and not 0 <= indices[:indptr[-1]].min() <= indices[:indptr[-1]].max()
                < minor)):
        raise ValueError(f"{name} is not a valid {fmt.upper()} matrix of shape "
                         f"{X.shape}: its index arrays point outside it.")
    if max(X.shape) > INT_MAX:
        raise ValueError(f"{name} has shape {X.shape}; the kernels take at most "
                         f"{INT_MAX} rows and columns.")
    return data, indices, indptr


def _weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = np.ascontiguousarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}.")
    return w


def _accumulation_dtype(accumulate_dtype, default):
    """The dtype sums over a batch run in: ``accumulate_dtype``, or ``default``
    for None; float32 or float64, or a ValueError."""
    acc = np.dtype(default if accumulate_dtype is None else accumulate_dtype)
    if acc not in FLOAT_DTYPES:
        raise ValueError(f"accumulate_dtype must be float32 or float64, got {acc}.")
    return acc


def _output(out, name, shape, dtype, inputs=()):
    """``out`` checked for an op to write into, or a new array; ``inputs`` are
    arrays the op reads while it writes, which ``out`` must not overlap."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a C-contiguous {dtype} array of shape {shape}, "
            f"got {out.dtype} {out.shape}."
        )
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only.")
    for a in inputs:
        if np.may_share_memory(out, a):
            raise ValueError(f"{name} overlaps an input of the operation.")
    return out


def _rows(a):
    """2-D view (rows, last axis) of an n-d array, for row-wise kernels."""
    if a.ndim == 0:
        raise ValueError("activations need at least a 1-D array.")
    return a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a


def _flat(a):
    """(n, C, prod(spatial)) view of a C-contiguous (n, C, *spatial) array:
    the conv and pool kernels take every sample's spatial axes flattened."""
    return a.reshape(a.shape[:2] + (-1,))


def _scalar(name, value, low=0.0, high=None, low_open=False, high_open=True):
    """``value`` as a float inside the interval, or a TypeError/ValueError."""
    if type(value) is not float:  # the usual case skips the slower ABC checks
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}.")
        value = float(value)
    above = value > low if low_open else value >= low
    below = high is None or (value < high if high_open else value <= high)
    if not (math.isfinite(value) and above and below):
        lower = f"{'(' if low_open else '['}{low}"
        upper = "inf)" if high is None else f"{high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {lower}, {upper}, got {value}.")
    return value


# -- convolution and pooling ---------------------------------------------------
# Names of the spatial axes, for the ops' messages (arrays are channels first).
_AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_SIDES = {1: ("(before, after)",), 2: ("(top, bottom)", "(left, right)"),
          3: ("(front, back)", "(top, bottom)", "(left, right)")}

# Largest number of spatial axes the kernels take (skdl_window in _window.h).
MAX_RANK = 3


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _axis_ints(name, value, rank, layer):
    """``rank`` positive ints (one per spatial axis) from one int or a
    sequence of ``rank`` ints, or a ValueError worded for a layer's argument
    (``layer``) or an op's."""
    values = (value,) * rank if _is_int(value) else tuple(
        value if isinstance(value, (tuple, list, np.ndarray)) else (value,))
    if len(values) != rank or not all(_is_int(v) and v >= 1 for v in values):
        if layer:
            raise ValueError(f"{name} must be a positive int or {rank} positive ints, "
                             f"got {value!r}.")
        raise ValueError(f"{name} must be positive ints ({', '.join(_AXES[rank])}), "
                         f"got {value!r}.")
    return tuple(int(v) for v in values)


def _padding_pairs(padding, rank):
    """An op's padding: one (before, after) pair of non-negative ints per axis."""
    form = f"({', '.join(_SIDES[rank])}{',' if rank == 1 else ''})"
    try:
        pairs = tuple((int(before), int(after)) for before, after in padding)
    except (TypeError, ValueError):
        pairs = ()
    if len(pairs) != rank:
        raise ValueError(f"padding must be {form}, got {padding!r}.") from None
    if min(min(pair) for pair in pairs) < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}.")
    return pairs


def _layer_padding(padding, sizes, windows, strides, dilations):
    """A layer's padding as one (before, after) pair per axis.

    ``'valid'`` adds none; ``'same'`` adds what keeps ``ceil(size / stride)``
    outputs, the odd one after (as TensorFlow and Keras); an int pads every
    side by it; a sequence gives one int (both sides) or one (before, after)
    pair per axis.
    """
    rank = len(sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * rank
        if padding == "same":
            pairs = []
            for size, k, s, d in zip(sizes, windows, strides, dilations):
                total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding must be 'valid', 'same' or ints, got {padding!r}.")
    if _is_int(padding):
        padding = (padding,) * rank
    padding = tuple(padding)
    if len(padding) != rank:
        raise ValueError(f"padding needs one entry per spatial axis ({rank}), got "
                         f"{padding!r}.")
    pairs = []
    for p in padding:
        pair = (p, p) if _is_int(p) else tuple(p) if isinstance(p, (tuple, list)) else ()
        if len(pair) != 2 or not all(_is_int(v) and v >= 0 for v in pair):
            raise ValueError(f"padding must hold non-negative ints or (before, after) "
                             f"pairs of them, got {padding!r}.")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def window_output_size(size, window, stride, pad_total, dilation=1, what="kernel"):
    """Number of window positions along one axis, or a ValueError.

    Parameters
    ----------
    size : int, input length along the axis
    window : int, kernel or pool size
    stride, pad_total, dilation : int

    Returns
    -------
    int
    """
    if max(size + pad_total, stride, dilation) > INT_MAX:
        # The kernels index with C ints: larger values would wrap around.
        raise ValueError(
            f"The {what}'s geometry is too large: the padded input ({size} + "
            f"padding {pad_total}), the stride ({stride}) and the dilation "
            f"({dilation}) must each be at most {INT_MAX}."
        )
    span = (window - 1) * dilation + 1
    if span > size + pad_total:
        raise ValueError(
            f"The {what} spans {span} positions (size {window}, dilation {dilation}) "
            f"but the padded input has only {size + pad_total} ({size} + padding "
            f"{pad_total})."
        )
    return (size + pad_total - span) // stride + 1


class Window(NamedTuple):
    """Where a sliding window (a convolution's kernel, a pool) goes over
    inputs of 1, 2 or 3 spatial axes, checked once: layers build one when they
    are built, and the conv and pool ops take it (``window=``) instead of
    parsing strides, padding and dilation again at every call. Every field
    holds one entry per spatial axis, in the arrays' order (depth, height,
    width; a signal's length alone).

    Attributes
    ----------
    in_shape : tuple of int
        The input's spatial shape (each channel's).
    size : tuple of int
        The window's extent on each axis (kernel or pool size).
    strides, dilation : tuple of int
    padding : tuple of (int, int)
        (before, after) zeros on each axis.
    out_shape : tuple of int
        Window positions along each axis.
    """

    in_shape: tuple
    size: tuple
    strides: tuple
    padding: tuple
    dilation: tuple
    out_shape: tuple

    @property
    def rank(self):
        """Number of spatial axes."""
        return len(self.size)

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _checked(in_shape, size, strides, padding, dilation, what, layer):
        rank = len(in_shape)
        if not 1 <= rank <= MAX_RANK:
            raise ValueError(f"A {what} window has 1 to {MAX_RANK} spatial axes, got an "
                             f"input of spatial shape {in_shape}.")
        size = _axis_ints(f"{what}_size", size, rank, layer)
        strides = size if strides is None else _axis_ints("strides", strides, rank, layer)
        dilation = _axis_ints("dilation", dilation, rank, layer)
        in_shape = tuple(int(v) for v in in_shape)
        padding = (_layer_padding(padding, in_shape, size, strides, dilation) if layer
                   else _padding_pairs(padding, rank))
        if what == "pool" and any(max(pair) >= k for pair, k in zip(padding, size)):
            raise ValueError(
                f"padding {padding} must be smaller than the pool size {size}: a "
                "window would hold only padding."
            )
        out_shape = tuple(window_output_size(n, k, s, sum(p), d, what=what) for n, k, s, p, d
                          in zip(in_shape, size, strides, padding, dilation))
        return Window(in_shape, size, strides, padding, dilation, out_shape)

    @classmethod
    def of(cls, in_shape, size, strides=1, padding=None, dilation=1, what="kernel",
           layer=False):
        """The checked window, or a ValueError.

        Parameters
        ----------
        in_shape : tuple of int
            The input's spatial shape; its length is the window's rank (1-3).
        size, strides, dilation : int or tuple of int
            One int for every axis, or one per axis; ``strides=None`` is
            ``size`` (a pool's default).
        padding : None, int, str or sequence
            None adds none. An op's: one (before, after) pair per axis. A
            layer's (``layer=True``): also 'valid', 'same', one int for every
            side, or one int or pair per axis.
        what : {'kernel', 'pool'}
            What the messages call the window (``kernel_size``,
            ``pool_size``); a pool's padding must be smaller than it.
        layer : bool
            Parse the layers' forms and word errors for their arguments.

        Returns
        -------
        Window
        """
        if padding is None:
            padding = ((0, 0),) * len(in_shape)
        try:
            return cls._checked(tuple(in_shape), size, strides, padding, dilation, what,
                                layer)
        except TypeError as exc:  # an unhashable argument, e.g. a list
            if "unhashable" not in str(exc):
                raise
            return cls._checked.__wrapped__(tuple(in_shape), size, strides, padding,
                                            dilation, what, layer)

    def fits(self, in_shape, size):
        """This window, after checking it is one for inputs of spatial shape
        ``in_shape`` and a ``size`` window (a ValueError otherwise)."""
        if tuple(in_shape) != self.in_shape or tuple(size) != self.size:
            raise ValueError(f"The window was checked for inputs of spatial shape "
                             f"{self.in_shape} and a {self.size} window, not "
                             f"{tuple(in_shape)} and {tuple(size)}.")
        return self

    def kernel_args(self):
        """The geometry as the kernels' ``skdl_window`` takes it (_window.h):
        rank, then input, output, window size, strides, leading padding and
        dilation, each right-aligned in 3 entries (the axes a rank-1 or -2
        window lacks lead with one position, no padding)."""
        return _kernel_args(self)


@functools.lru_cache(maxsize=256)
def _kernel_args(window):
    # Memoized: an op that is not bound asks for it at every call.
    lead = MAX_RANK - window.rank

    def three(values, fill=1):
        return (fill,) * lead + tuple(values)
    return ((window.rank,) + three(window.in_shape) + three(window.out_shape)
            + three(window.size) + three(window.strides)
            + three((before for before, _ in window.padding), 0) + three(window.dilation))
