"""Recurrent ops (skdl._kernels._recurrent): SimpleRNN, GRU and LSTM time loops
forward and backward, with masks and reversed directions. What differs between
the cells comes from their :class:`~skdl._ops.cells.Cell` in ``CELLS``.
"""

import numpy as np

from .._kernels import _dense, _recurrent
from . import _threads
from ._checks import _accumulation_dtype, _float_array, _weights
from ._threads import ELEMENT_WORK
from .activations import _activation_code, _alpha
from .cells import CELLS, get_cell
from .dense import dense_backward_input, dense_forward


# Gates need an activation without a parameter and with a derivative that is
# a function of its output.
GATE_ACTIVATIONS = ("sigmoid", "tanh", "linear", "softsign", "elliot", "symmetric_elliot")


class RecurrentState:
    """What :func:`recurrent_forward` keeps for :func:`recurrent_backward`.

    Attributes
    ----------
    H : ndarray (n, T+1, u), H[:, 0] the initial state (``h0``, zeros by
        default), H[:, s+1] the state after step s
    C : ndarray (n, T+1, u), LSTM cell states (C[:, 0] = ``c0``), or None
    gates : ndarray (n, T, G*u), gate values after their activations, or None
    extra : ndarray (n, T, u), act(c) (LSTM) or h @ U_n + b_hn (GRU), or None
    mask : uint8 ndarray (n, T) or None
    """

    def __init__(self, H, C, gates, extra, mask):
        self.H, self.C, self.gates, self.extra, self.mask = H, C, gates, extra, mask


def _recurrent_setup(name, X, W, U, activation, recurrent_activation, alpha):
    cell = get_cell(name)
    X = _float_array("X", X, ndim=3)
    W = _float_array("W", W, ndim=2, dtype=X.dtype)
    U = _float_array("U", U, ndim=2, dtype=X.dtype)
    G = cell.gates
    u = U.shape[0]
    if U.shape != (u, G * u) or W.shape != (X.shape[2], G * u):
        raise ValueError(
            f"A {name} cell of {u} units on {X.shape[2]} features needs W of shape "
            f"{(X.shape[2], G * u)} and U of shape {(u, G * u)}; got {W.shape} and {U.shape}."
        )
    if activation == "softmax":
        raise ValueError("activation='softmax' is not elementwise; a recurrent cell needs "
                         "an elementwise activation.")
    if recurrent_activation not in GATE_ACTIVATIONS:
        raise ValueError(f"recurrent_activation must be one of {GATE_ACTIVATIONS}, "
                         f"got {recurrent_activation!r}.")
    codes = (_activation_code(activation), _alpha(activation, alpha),
             _activation_code(recurrent_activation))
    return cell, X, W, U, G, u, codes


def _recurrent_work(X, U, projects_input):
    """Multiply-adds of a recurrent kernel call on X (n, T, k) with U (u, G*u):
    the state product of every step, and the input product when the kernel
    projects each step itself (inference)."""
    n, T, k = X.shape
    u, gu = U.shape
    return n * T * ((u + (k if projects_input else 0)) * gu + ELEMENT_WORK * gu)


def _recurrent_mask(mask, n, T):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != (n, T):
        raise ValueError(f"mask must have shape {(n, T)}, got {mask.shape}.")
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _new_array(key, shape, dtype):
    return np.empty(shape, dtype)


def _state_array(name, value, n, u, dtype, cell, needs_cell_state=False):
    """An (n, u) initial state or state gradient, checked, C-contiguous."""
    if value is None:
        return None
    if needs_cell_state and not cell.cell_state:
        having = sorted(c.name for c in CELLS.values() if c.cell_state)
        raise ValueError(f"{name} is a cell state, and the {cell.name} cell has none; "
                         f"of the cells, {having} have one.")
    value = _float_array(name, value, ndim=2, dtype=dtype)
    if value.shape != (n, u):
        raise ValueError(f"{name} must have shape {(n, u)} (one state of {u} units per "
                         f"sequence), got {value.shape}.")
    return value


def recurrent_forward(cell, X, W, U, b=None, bh=None, mask=None, activation="tanh",
                      recurrent_activation="sigmoid", alpha=None, scratch=None,
                      keep="all", h0=None, c0=None):
    """Run a recurrent cell over sequences, step 0 first.

    Parameters
    ----------
    cell : str, a name in ``CELLS`` ('simple', 'gru', 'lstm')
    X : ndarray of shape (n, T, k)
    W : ndarray of shape (k, G*u), input kernel; G = the cell's gate blocks
        (1, 3, 4)
    U : ndarray of shape (u, G*u), recurrent kernel
    b : ndarray of shape (G*u,) or None, input bias
    bh : ndarray of shape (G*u,) or None, recurrent bias (GRU's ``b_hn`` acts
        inside the reset gate, so it is kept apart)
    mask : bool ndarray of shape (n, T) or None; a False step keeps the state
    activation : str, candidate / output activation (not softmax)
    recurrent_activation : str, gate activation, one of GATE_ACTIVATIONS
    alpha : float or None, parameter of ``activation``
    scratch : callable ``(key, shape, dtype) -> array`` or None
        Where the arrays come from (a layer's reusable training buffers);
        None allocates new ones.
    keep : {'all', 'states', 'last'}
        What to keep: everything backward needs ('all'); every state H but no
        gates ('states'); only the last state ('last', then ``H`` has two
        steps and the last state is ``H[:, T % 2]``). Inference needs far
        less memory with the latter two.

    Returns
    -------
    RecurrentState
    """
    cell, X, W, U, G, u, (act, alpha_, ract) = _recurrent_setup(
        cell, X, W, U, activation, recurrent_activation, alpha)
    n, T, k = X.shape
    if bh is not None:
        if not cell.recurrent_bias:
            raise ValueError(f"The {cell.name} cell has no recurrent bias; of the cells, "
                             f"{sorted(c.name for c in CELLS.values() if c.recurrent_bias)} "
                             "have one.")
        bh = _float_array("bh", bh, ndim=1, dtype=X.dtype)
        if bh.shape != (G * u,):
            raise ValueError(f"bh has shape {bh.shape}, expected {(G * u,)}.")
    mask = _recurrent_mask(mask, n, T)
    h0 = _state_array("h0", h0, n, u, X.dtype, cell)
    c0 = _state_array("c0", c0, n, u, X.dtype, cell, needs_cell_state=True)
    new = _new_array if scratch is None else scratch
    dtype = X.dtype
    if keep not in ("all", "states", "last"):
        raise ValueError(f"keep must be 'all', 'states' or 'last', got {keep!r}.")
    steps = T if keep == "all" else 1
    H = new("H", (n, 2 if keep == "last" else T + 1, u), dtype)
    C = new("C", (n, T + 1 if keep == "all" else 2, u), dtype) if cell.cell_state else None
    gates = new("gates", (n, steps, G * u), dtype) if cell.gate_arrays else None
    extra = new("extra", (n, steps, u), dtype) if cell.gate_arrays else None
    if b is not None:
        b = _float_array("b", b, ndim=1, dtype=dtype)
        if b.shape != (G * u,):
            raise ValueError(f"b has shape {b.shape}, expected {(G * u,)}.")
    XW = None
    if keep == "all":
        # Training projects every step in one product; an LSTM straight into
        # its gates (the kernel adds h @ U there). Inference lets the kernel
        # project step by step, without the (n, T, G*u) array.
        fused = cell.projects_into_gates
        XW = dense_forward(X.reshape(n * T, k), W, b,
                           out=(gates.reshape(n * T, G * u) if fused
                                else new("XW", (n * T, G * u), dtype))).reshape(n, T, G * u)
    _recurrent.recurrent_forward(cell.kernel_code, act, alpha_, ract, U, XW, X, W, b,
                                 bh, mask, H, C, gates, extra,
                                 _threads.threads_for(_recurrent_work(X, U, XW is None)),
                                 h0, c0)
    return RecurrentState(H, C, gates, extra, mask)


def _stacked_param_grads(blocks, dG, rows_w, scale, accumulate_dtype, new):
    """Gradients of the weights that multiply ``blocks`` and of the bias.

    ``[A_1, ..., A_m, 1].T @ (w * dG) * scale`` in one product over the rows,
    each A_i (n, T, k_i) read as (n*T, k_i): the last row of the result, from
    the column of ones, is the bias gradient.

    Returns
    -------
    list of ndarray: (k_i, q) for each block, then (q,)
    """
    rows, q = dG.shape
    acc = _accumulation_dtype(accumulate_dtype, dG.dtype)
    widths = [a.shape[-1] for a in blocks]
    A = new("stacked", (rows, sum(widths) + 1), acc)
    start = 0
    for a, width in zip(blocks, widths):
        A[:, start:start + width] = a.reshape(rows, width)
        start += width
    A[:, -1] = 1
    B = dG if acc == dG.dtype else dG.astype(acc)
    if rows_w is not None:
        B = np.multiply(B, rows_w.astype(acc, copy=False)[:, None])
    total = np.empty((start + 1, q), acc)
    _dense.gemm_tn(scale, A, np.ascontiguousarray(B), total, _threads.threads_for(A.size * q))
    total = total.astype(dG.dtype, copy=False)
    pieces, start = [], 0
    for width in widths:
        pieces.append(total[start:start + width])
        start += width
    return pieces + [total[start]]


def recurrent_backward(cell, dY, X, W, U, state, sample_weight=None, scale=1.0,
                       accumulate_dtype=None, activation="tanh",
                       recurrent_activation="sigmoid", alpha=None, need_input_grad=True,
                       scratch=None, dc_last=None, state_grads=False):
    """Gradients of :func:`recurrent_forward` (backpropagation through time).

    Parameters
    ----------
    cell, X, W, U, activation, recurrent_activation, alpha : as in the forward call
    dY : ndarray of shape (n, T, u), gradient for each step's state H[:, s+1],
        or (n, 1, u): for the last step's only
    state : RecurrentState from the forward call
    sample_weight, scale, accumulate_dtype : as in :func:`dense_param_grads`
    need_input_grad : bool, False skips dX
    scratch : as in :func:`recurrent_forward`
    dc_last : ndarray of shape (n, u) or None
        Gradient for the last cell state C[:, T] (an LSTM whose final cell
        state is an output); None for none.
    state_grads : bool, default=False
        Also return the gradients for the initial states ``h0`` and ``c0``.

    Returns
    -------
    dX : ndarray (n, T, k) or None
    dW : ndarray (k, G*u)
    dU : ndarray (u, G*u)
    db : ndarray (G*u,), input bias gradient
    dbh : ndarray (G*u,), recurrent bias gradient (GRU; for the other cells it
        equals db)
    dh0 : ndarray (n, u), only with ``state_grads``: the gradient for the
        initial state H[:, 0] (per sample, not weighted or scaled)
    dc0 : ndarray (n, u) or None, only with ``state_grads``: for the initial
        cell state C[:, 0] (None for cells without one)
    """
    cell, X, W, U, G, u, (act, alpha_, ract) = _recurrent_setup(
        cell, X, W, U, activation, recurrent_activation, alpha)
    n, T, k = X.shape
    dY = _float_array("dY", dY, ndim=3, dtype=X.dtype)
    if dY.shape not in ((n, T, u), (n, 1, u)) or state.H.shape != (n, T + 1, u):
        raise ValueError(f"dY must have shape {(n, T, u)} or {(n, 1, u)} (got {dY.shape}) "
                         "and state must come from the forward call on this X, with "
                         "keep='all'.")
    dc_last = _state_array("dc_last", dc_last, n, u, X.dtype, cell, needs_cell_state=True)
    new = _new_array if scratch is None else scratch
    dGx = new("dGx", (n, T, G * u), X.dtype)
    dGh = new("dGh", (n, T, G * u), X.dtype) if cell.recurrent_bias else None
    # New arrays, not scratch: they flow on into another layer's backward.
    dh0 = np.empty((n, u), X.dtype) if state_grads else None
    dc0 = np.empty((n, u), X.dtype) if state_grads and cell.cell_state else None
    _recurrent.recurrent_backward(cell.kernel_code, act, alpha_, ract, dY, U, state.mask,
                                  state.H, state.C, state.gates, state.extra, dGx, dGh,
                                  _threads.threads_for(_recurrent_work(X, U, False)),
                                  dc_last, dh0, dc0)
    rows_w = None if sample_weight is None else np.repeat(_weights(sample_weight, n), T)
    dGx2 = dGx.reshape(n * T, G * u)
    H_prev = state.H[:, :T]
    if dGh is None:
        # Both kernels multiply the same gate gradients: one product over the
        # rows [x_s, h_{s-1}, 1] gives dW, dU and the bias gradient together.
        dW, dU, db = _stacked_param_grads([X, H_prev], dGx2, rows_w, scale,
                                          accumulate_dtype, new)
        dbh = db
    else:
        dW, db = _stacked_param_grads([X], dGx2, rows_w, scale, accumulate_dtype, new)
        dU, dbh = _stacked_param_grads([H_prev], dGh.reshape(n * T, G * u), rows_w, scale,
                                       accumulate_dtype, new)
    dX = None
    if need_input_grad:
        dX = dense_backward_input(dGx2, W, out=new("dX", (n * T, k), X.dtype)).reshape(n, T, k)
    if state_grads:
        return dX, dW, dU, db, dbh, dh0, dc0
    return dX, dW, dU, db, dbh
