"""What a network costs: parameters, arithmetic, activation memory and time.

:func:`summarize` walks built runtime layers (containers and the layers they
run inside them) and returns a :class:`NetworkSummary`, which prints as a
table in the manner of Keras' ``model.summary()`` and pydnn's ``net_size``.
"""
import math
from numbers import Integral, Real

import numpy as np

from .layers.conv import ConvLayer
from .layers.core import _ShapeLayer
from .layers.pooling import PoolLayer, SequencePoolLayer


def layer_type(layer):
    """The name of a runtime layer's kind, as users know it from the specs.

    ``Conv1D``/``Conv2D``, ``SimpleRNN``/``GRU``/``LSTM``, ``MaxPool``,
    ``AvgPool``, ``GlobalMaxPool``, ``GlobalAvgPool``, ``Flatten``/``Reshape``;
    any other layer's string ``kind`` attribute if it has one (a recurrent
    layer's is its cell's title), else its class
    name without a trailing ``Layer`` (``Dense``, ``BatchNormalization``).

    Parameters
    ----------
    layer : Layer

    Returns
    -------
    str
    """
    if isinstance(layer, ConvLayer):
        return "Conv1D" if len(layer.output_shape) == 2 else "Conv2D"
    if isinstance(layer, SequencePoolLayer):
        return f"Global{layer.kind.capitalize()}Pool"
    if isinstance(layer, PoolLayer):
        whole = layer.window.size == tuple(layer.planes[1:])
        prefix = "Global" if whole and layer.output_shape == layer.planes[:1] else ""
        return f"{prefix}{layer.kind.capitalize()}Pool"
    if isinstance(layer, _ShapeLayer):
        return "Flatten" if len(layer.output_shape) == 1 else "Reshape"
    kind = getattr(layer, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    name = type(layer).__name__.lstrip("_")
    if name.endswith("Layer") and len(name) > len("Layer"):
        name = name[:-len("Layer")]
    return name


def _count(shape):
    return int(np.prod(shape, dtype=np.int64))


def _rows(layers, batch_size, itemsize, depth=0):
    for layer in layers:
        output_shape = tuple(int(s) for s in layer.output_shape)
        yield {
            "name": layer.name,
            "type": layer_type(layer),
            "output_shape": output_shape,
            "params": sum(_count(shape) for shape in layer.param_shapes.values()),
            "flops": int(layer.forward_flops()),
            # A block hands on its last part's output array: counted there.
            "activation_bytes": (0 if layer.output_is_sublayers
                                 else _count(output_shape) * batch_size * itemsize),
            "depth": depth,
        }
        yield from _rows(layer.sublayers(), batch_size, itemsize, depth + 1)


def summarize(layers, batch_size, dtype, n_samples=None, seconds_per_batch=None):
    """Parameters, FLOPs, activation memory (and time) of built layers.

    Parameters
    ----------
    layers : list of Layer
        Built runtime layers, e.g. from :func:`skdl._network.build_layers`.
        Containers are walked through their ``sublayers()``.
    batch_size : int
        Samples per batch, for the activation memory and the time per epoch.
    dtype : numpy dtype
        Precision of the activations (its item size in bytes).
    n_samples : int or None, default=None
        Samples per epoch, for :meth:`NetworkSummary.epoch_seconds` and the
        time line of the table.
    seconds_per_batch : float or None, default=None
        Measured wall time of one batch of ``batch_size`` samples (the
        calibration); None when nothing was measured.

    Returns
    -------
    NetworkSummary
    """
    if not isinstance(batch_size, Integral) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if n_samples is not None and (not isinstance(n_samples, Integral)
                                  or isinstance(n_samples, bool) or n_samples < 1):
        raise ValueError(f"n_samples must be a positive int or None, got {n_samples!r}.")
    if seconds_per_batch is not None and (
            not isinstance(seconds_per_batch, Real) or isinstance(seconds_per_batch, bool)
            or not math.isfinite(seconds_per_batch) or seconds_per_batch < 0):
        raise ValueError("seconds_per_batch must be a non-negative number of seconds or "
                         f"None, got {seconds_per_batch!r}.")
    dtype = np.dtype(dtype)
    rows = list(_rows(layers, int(batch_size), dtype.itemsize))
    return NetworkSummary(rows, int(batch_size), dtype,
                          None if n_samples is None else int(n_samples),
                          None if seconds_per_batch is None else float(seconds_per_batch))


class NetworkSummary:
    """Sizes and costs of a network, layer by layer; prints as a table.

    Parameters
    ----------
    rows, batch_size, dtype, n_samples, seconds_per_batch
        See the attributes; built by :func:`summarize`.

    Attributes
    ----------
    rows : list of dict
        One per layer, containers first and their sublayers after them, with
        keys ``name`` (str), ``type`` (str, e.g. ``Dense``, ``Conv2D``),
        ``output_shape`` (tuple of int, one sample), ``params`` (int, the
        layer's own parameters, not its sublayers'), ``flops`` (int, the
        layer's own ``forward_flops()``: one sample's inference forward pass,
        a multiply-add counting 2), ``activation_bytes`` (int, bytes of its
        output for one batch; 0 for a block, whose output is its last part's)
        and ``depth`` (int, 0 for top-level layers, one
        more per container level).
    total_params : int
        Sum of the rows' ``params``: every trained parameter once.
    total_flops : int
        Sum of the rows' ``flops``: FLOPs of one sample's forward pass.
    total_activation_bytes : int
        Sum of the rows' ``activation_bytes``: bytes of every layer's output
        for one batch (an upper bound on what inference holds at once).
    batch_size : int
    dtype : numpy dtype
    n_samples : int or None
        Samples per epoch.
    seconds_per_batch : float or None
        Measured seconds per batch of ``batch_size``; None if not calibrated.
    """

    def __init__(self, rows, batch_size, dtype, n_samples=None, seconds_per_batch=None):
        self.rows = rows
        self.batch_size = batch_size
        self.dtype = np.dtype(dtype)
        self.n_samples = n_samples
        self.seconds_per_batch = seconds_per_batch
        self.total_params = sum(row["params"] for row in rows)
        self.total_flops = sum(row["flops"] for row in rows)
        self.total_activation_bytes = sum(row["activation_bytes"] for row in rows)

    def epoch_seconds(self, n_samples=None):
        """Estimated seconds of one pass over ``n_samples`` samples.

        ``ceil(n_samples / batch_size) * seconds_per_batch``: every batch,
        the last partial one included, is taken to cost a full batch.

        Parameters
        ----------
        n_samples : int or None, default=None
            None uses the summary's own ``n_samples``.

        Returns
        -------
        float
            Seconds.
        """
        if self.seconds_per_batch is None:
            raise ValueError(
                "This summary has no time calibration: pass seconds_per_batch (the "
                "measured seconds of one batch) to summarize()."
            )
        if n_samples is None:
            n_samples = self.n_samples
        if n_samples is None:
            raise ValueError(
                "The number of samples is unknown: pass n_samples to epoch_seconds() "
                "or to summarize()."
            )
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) \
                or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        return math.ceil(n_samples / self.batch_size) * self.seconds_per_batch

    def __str__(self):
        header = ("Layer", "Type", "Output shape", "Params", "FLOPs/sample",
                  f"Activations/batch of {self.batch_size}")
        body = [("  " * row["depth"] + row["name"], row["type"],
                 _format_shape(row["output_shape"]), f"{row['params']:,}",
                 f"{row['flops']:,}", format_bytes(row["activation_bytes"]))
                for row in self.rows]
        totals = ("Total", "", "", f"{self.total_params:,}", f"{self.total_flops:,}",
                  format_bytes(self.total_activation_bytes))
        table = [header] + body + [totals]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        right = (False, False, False, True, True, True)

        def render(line):
            cells = [cell.rjust(w) if r else cell.ljust(w)
                     for cell, w, r in zip(line, widths, right)]
            return "  ".join(cells).rstrip()

        rule = "-" * len(render(tuple("x" * w for w in widths)))
        lines = [render(header), rule] + [render(line) for line in body]
        lines += [rule, render(totals), ""]
        lines.append(
            f"{self.total_params:,} parameters "
            f"({format_bytes(self.total_params * self.dtype.itemsize)} in "
            f"{self.dtype.name}), {_format_count(self.total_flops)}FLOPs per sample, "
            f"{format_bytes(self.total_activation_bytes)} of activations per batch "
            f"of {self.batch_size}."
        )
        if self.seconds_per_batch is not None and self.n_samples is not None:
            lines.append(
                f"estimated time per epoch for {self.n_samples} samples: "
                f"{format_seconds(self.epoch_seconds())} (measured "
                f"{format_seconds(self.seconds_per_batch)} per batch of "
                f"{self.batch_size})"
            )
        elif self.seconds_per_batch is not None:
            lines.append(f"measured {format_seconds(self.seconds_per_batch)} per batch "
                         f"of {self.batch_size}")
        return "\n".join(lines)

    __repr__ = __str__


def _format_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _format_count(n):
    """``1.23 M`` style (with the trailing space), or the plain number below 1000."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= factor:
            return f"{n / factor:.3g} {prefix}"
    return f"{n} "


def format_bytes(n):
    """Bytes in binary units: ``512 B``, ``12.3 KiB``, ``4.5 MiB``...

    Parameters
    ----------
    n : int
        Bytes.

    Returns
    -------
    str
    """
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"


def format_seconds(seconds):
    """A duration in the unit that reads best, three significant digits:
    ``850 µs``, ``2.3 ms``, ``410 ms``, ``12.5 s``, ``3.2 min``, ``1.5 h``.

    Parameters
    ----------
    seconds : float

    Returns
    -------
    str
    """
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"
