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
def _pairs(name, value):
    """Two ints (height, width) from an int or a pair, all >= 1."""
    values = (value, value) if np.isscalar(value) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1
                                   for v in values):
        raise ValueError(f"{name} must be positive ints (height, width), got {value!r}.")
    return tuple(int(v) for v in values)


def _padding_pairs(padding):
    """((top, bottom), (left, right)) of non-negative ints."""
    try:
        (top, bottom), (left, right) = padding
        pads = tuple(int(v) for v in (top, bottom, left, right))
    except (TypeError, ValueError):
        raise ValueError(
            f"padding must be ((top, bottom), (left, right)), got {padding!r}."
        ) from None
    if min(pads) < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}.")
    return (pads[0], pads[1]), (pads[2], pads[3])


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
    """Where a sliding window (a convolution's kernel, a pool) goes over 2-D
    planes, checked once: layers build one when they are built, and the conv
    and pool ops take it (``window=``) instead of parsing strides, padding and
    dilation again at every call.

    Attributes
    ----------
    in_hw : (int, int)
        The input planes' height and width.
    size : (int, int)
        The window's height and width (kernel or pool size).
    strides, dilation : (int, int)
    padding : ((int, int), (int, int))
        ((top, bottom), (left, right)) zeros around the input.
    out_hw : (int, int)
        Window positions along each axis.
    """

    in_hw: tuple
    size: tuple
    strides: tuple
    padding: tuple
    dilation: tuple
    out_hw: tuple

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _checked(in_hw, size, strides, padding, dilation, what):
        size, strides = _pairs(f"{what}_size", size), _pairs("strides", strides)
        dilation = _pairs("dilation", dilation)
        padding = _padding_pairs(padding)
        if what == "pool" and (max(padding[0]) >= size[0] or max(padding[1]) >= size[1]):
            raise ValueError(
                f"padding {padding} must be smaller than the pool size {size}: a "
                "window would hold only padding."
            )
        in_hw = tuple(int(v) for v in in_hw)
        out_hw = tuple(window_output_size(n, k, s, sum(p), d, what=what) for n, k, s, p, d
                       in zip(in_hw, size, strides, padding, dilation))
        return Window(in_hw, size, strides, padding, dilation, out_hw)

    @classmethod
    def of(cls, in_hw, size, strides=1, padding=((0, 0), (0, 0)), dilation=1,
           what="kernel"):
        """The checked window, or a ValueError (``what``: 'kernel' or 'pool',
        as the messages name it)."""
        try:
            return cls._checked(tuple(in_hw), size, strides, padding, dilation, what)
        except TypeError as exc:  # an unhashable argument, e.g. a list
            if "unhashable" not in str(exc):
                raise
            return cls._checked.__wrapped__(tuple(in_hw), size, strides, padding,
                                            dilation, what)

    def fits(self, in_hw, size):
        """This window, after checking it is one for ``in_hw`` planes and a
        ``size`` window (a ValueError otherwise)."""
        if tuple(in_hw) != self.in_hw or tuple(size) != self.size:
            raise ValueError(f"The window was checked for {self.in_hw} planes and a "
                             f"{self.size} window, not {tuple(in_hw)} and {tuple(size)}.")
        return self

    def conv_args(self):
        """(sh, sw, top, left, dh, dw), as the convolution kernels take them."""
        (top, _), (left, _) = self.padding
        return self.strides + (top, left) + self.dilation

    def pool_args(self):
        """(kh, kw, sh, sw, top, left), as the pooling kernels take them."""
        (top, _), (left, _) = self.padding
        return self.size + self.strides + (top, left)

