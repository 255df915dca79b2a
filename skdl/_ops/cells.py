"""Recurrent cells as objects: one :class:`Cell` per kind, registered in :data:`CELLS`.

A cell says what the layer builds (gate blocks, parameter shapes), what the
op allocates (the state arrays it keeps), what the kernel runs (its code in
:mod:`skdl._kernels._recurrent`, where the cell's layout and step functions
live), what a forward step costs, and how one step is computed in plain numpy
(the arithmetic :mod:`skdl._reference` runs, independent of the kernel's).

Adding a cell: a :class:`Cell` subclass registered here, its layout and step
functions in ``_recurrent.pyx`` (and C helpers in ``_cells.h``), and tests.
"""
from abc import ABC, abstractmethod

import numpy as np

from .._kernels import _recurrent


class Cell(ABC):
    """What the layer, the op, the kernel and the reference need of a cell.

    Attributes
    ----------
    name : str
        The ``cell`` string layers and ops use ('simple', 'gru', 'lstm').
    title : str
        The layer's name as users know it ('SimpleRNN', 'GRU', 'LSTM').
    gates : int
        G, gate blocks of ``units`` values each: ``kernel`` is (k, G*u),
        ``recurrent_kernel`` (u, G*u).
    recurrent_bias : bool
        Has a recurrent bias (G*u,) apart from the input bias; its
        backward then has a recurrent side (``dGh``) of its own.
    cell_state : bool
        Keeps a cell state ``C`` (n, T+1, u) beside ``H``.
    gate_arrays : bool
        Keeps ``gates`` (n, T, G*u) and ``extra`` (n, T, u) for backward.
    projects_into_gates : bool
        Training writes the input projections straight into ``gates``, where
        the kernel adds h @ U.
    gate_activations, activations, arithmetic : int
        Per unit and step: gate (recurrent) activations, candidate / output
        activations, and other elementwise operations (see
        :meth:`forward_flops`).
    """

    name = title = None
    gates = 1
    recurrent_bias = cell_state = gate_arrays = projects_into_gates = False
    gate_activations = activations = arithmetic = 0

    @property
    def kernel_code(self):
        """int, the cell's code in :mod:`skdl._kernels._recurrent`."""
        return _recurrent.CELL_CODES[self.name]

    def param_shapes(self, features, units, use_bias):
        """Shapes of the layer's parameters.

        Parameters
        ----------
        features, units : int
        use_bias : bool

        Returns
        -------
        dict: ``kernel`` (features, G*units), ``recurrent_kernel``
        (units, G*units), with ``use_bias`` ``bias`` (G*units,) and for
        cells with a recurrent bias ``recurrent_bias`` (G*units,)
        """
        width = self.gates * units
        shapes = {"kernel": (features, width), "recurrent_kernel": (units, width)}
        if use_bias:
            shapes["bias"] = (width,)
            if self.recurrent_bias:
                shapes["recurrent_bias"] = (width,)
        return shapes

    def forward_flops(self, features, units, use_bias, activation="tanh",
                      recurrent_activation="sigmoid"):
        """FLOPs of one sample's forward step.

        ``2 * (features + units) * G * units`` for ``x W + h U``, ``G * units``
        per bias vector, and per unit the cell's activations (linear ones
        count 0) and :attr:`arithmetic`.

        Returns
        -------
        int
        """
        act = 0 if activation == "linear" else 1
        gate_act = 0 if recurrent_activation == "linear" else 1
        width = self.gates * units
        biases = len(self.param_shapes(features, units, use_bias)) - 2
        elementwise = (self.gate_activations * gate_act + self.activations * act
                       + self.arithmetic)
        return 2 * (features + units) * width + biases * width + elementwise * units

    @abstractmethod
    def reference_forward(self, xw, h, c, U, bh, act, ract):
        """One step for a batch, in numpy (PyTorch's equations).

        Parameters
        ----------
        xw : ndarray (n, G*u), x_s @ W + b
        h : ndarray (n, u), the previous state
        c : ndarray (n, u) or None, the previous cell state
        U : ndarray (u, G*u)
        bh : ndarray (G*u,) or None, the recurrent bias
        act, ract : callables, the activation and the gate activation

        Returns
        -------
        h : ndarray (n, u)
        c : ndarray (n, u) or None
        gates : ndarray (n, G*u) or None, after their activations
        extra : ndarray (n, u) or None
        """

    @abstractmethod
    def reference_backward(self, dh, dc, h, h_prev, c_prev, gates, extra, act_grad,
                           ract_grad):
        """Gradients of one step for a batch, in numpy.

        Parameters
        ----------
        dh : ndarray (n, u), gradient reaching the step's state h
        dc : ndarray (n, u), gradient reaching its cell state (cell_state)
        h, h_prev, c_prev, gates, extra : the step's arrays from the forward
        act_grad, ract_grad : callables ``(output, gradient) -> gradient`` of
            the activation and of the gate activation

        Returns
        -------
        dgx : ndarray (n, G*u), input side
        dgh : ndarray (n, G*u), recurrent side (``dgx`` unless recurrent_bias)
        direct : ndarray (n, u) or 0, the part of dh_prev not through U
        dc_prev : ndarray (n, u) or None, the gradient for c_prev
        """

    def __repr__(self):
        return f"<Cell {self.name!r} ({self.title}, {self.gates} gate blocks)>"


class SimpleCell(Cell):
    """SimpleRNN: h = act(x W + b + h_prev U)."""

    name, title, gates = "simple", "SimpleRNN", 1
    activations = 1

    def reference_forward(self, xw, h, c, U, bh, act, ract):
        return act(xw + h @ U), None, None, None

    def reference_backward(self, dh, dc, h, h_prev, c_prev, gates, extra, act_grad,
                           ract_grad):
        dgx = act_grad(h, dh)
        return dgx, dgx, 0, None


class GRUCell(Cell):
    """GRU, reset-after (PyTorch's): gates (r, z, n),
    n = act(x W_n + b_n + r * (h U_n + b_hn)), h = (1 - z) n + z h_prev.
    ``extra`` keeps h U_n + b_hn."""

    name, title, gates = "gru", "GRU", 3
    recurrent_bias = gate_arrays = True
    # r, z; n; r * (.) and its sum (2), (1 - z) * n + z * h (4).
    gate_activations, activations, arithmetic = 2, 1, 6

    def reference_forward(self, xw, h, c, U, bh, act, ract):
        u = h.shape[1]
        hu = h @ U + (0 if bh is None else bh)
        r = ract(xw[:, :u] + hu[:, :u])
        z = ract(xw[:, u:2 * u] + hu[:, u:2 * u])
        cand = act(xw[:, 2 * u:] + r * hu[:, 2 * u:])
        return (1 - z) * cand + z * h, None, np.hstack([r, z, cand]), hu[:, 2 * u:]

    def reference_backward(self, dh, dc, h, h_prev, c_prev, gates, extra, act_grad,
                           ract_grad):
        u = dh.shape[1]
        r, z, cand = (gates[:, j * u:(j + 1) * u] for j in range(3))
        da_n = act_grad(cand, dh * (1 - z))
        da_z = ract_grad(z, dh * (h_prev - cand))
        da_r = ract_grad(r, da_n * extra)
        return (np.hstack([da_r, da_z, da_n]), np.hstack([da_r, da_z, da_n * r]),
                dh * z, None)


class LSTMCell(Cell):
    """LSTM: gates (i, f, g, o), c = f c_prev + i g, h = o act(c).
    ``extra`` keeps act(c)."""

    name, title, gates = "lstm", "LSTM", 4
    cell_state = gate_arrays = projects_into_gates = True
    # i, f, o; g, act(c); f * c + i * g (3), o * act(c) (1).
    gate_activations, activations, arithmetic = 3, 2, 4

    def reference_forward(self, xw, h, c, U, bh, act, ract):
        u = h.shape[1]
        a = xw + h @ U
        i, f = ract(a[:, :u]), ract(a[:, u:2 * u])
        g, o = act(a[:, 2 * u:3 * u]), ract(a[:, 3 * u:])
        c = f * c + i * g
        return o * act(c), c, np.hstack([i, f, g, o]), act(c)

    def reference_backward(self, dh, dc, h, h_prev, c_prev, gates, extra, act_grad,
                           ract_grad):
        u = dh.shape[1]
        i, f, g, o = (gates[:, j * u:(j + 1) * u] for j in range(4))
        dc_total = dc + act_grad(extra, dh * o)
        dgx = np.hstack([ract_grad(i, dc_total * g), ract_grad(f, dc_total * c_prev),
                         act_grad(g, dc_total * i), ract_grad(o, dh * extra)])
        return dgx, dgx, 0, dc_total * f


CELLS = {cell.name: cell for cell in (SimpleCell(), GRUCell(), LSTMCell())}


def get_cell(name):
    """The registered cell called ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Cell

    Raises
    ------
    ValueError
        If no cell has that name (the message lists the known ones).
    """
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown cell {name!r}; expected one of {sorted(CELLS)}.") from None
