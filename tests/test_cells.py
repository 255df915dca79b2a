"""The recurrent cells' registry (skdl._ops.cells): what every cell says of
itself agrees with what the layer builds, the op allocates and the kernel runs."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

from skdl import GRU, LSTM, SimpleRNN
from skdl import _ops
from skdl import _reference as twins
from skdl._kernels import _recurrent
from skdl._network import build_layers
from skdl._ops.cells import CELLS, Cell, get_cell
from skdl._summary import layer_type

SPECS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}


def test_registry_covers_the_layers_and_the_kernel():
    assert set(CELLS) == set(SPECS) == set(_recurrent.CELL_CODES)
    for name, cell in CELLS.items():
        assert isinstance(cell, Cell) and cell.name == name
        assert SPECS[name].cell == name and cell.title == SPECS[name].__name__
        assert get_cell(name) is cell is _ops.get_cell(name) is _ops.CELLS[name]
    assert len({cell.kernel_code for cell in CELLS.values()}) == len(CELLS)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_agrees_with_the_kernel_layout(name):
    cell = CELLS[name]
    layout = _recurrent.cell_layout(cell.kernel_code)
    assert layout["gates"] == cell.gates
    assert layout["cell_state"] == cell.cell_state
    assert layout["gate_arrays"] == cell.gate_arrays
    # The recurrent bias acts apart from h @ U (inside the reset gate), so
    # the recurrent side has gradients of its own.
    assert layout["recurrent_side"] == cell.recurrent_bias
    assert (layout["hu_into"] == "apart") == cell.recurrent_bias
    assert (layout["hu_into"] == "gates") == cell.projects_into_gates


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("use_bias", [True, False])
def test_cell_agrees_with_the_layer(name, use_bias):
    cell = CELLS[name]
    spec = SPECS[name](5, use_bias=use_bias, activation="linear")
    layer = build_layers([spec], (7, 3), np.float64)[0]
    assert layer.param_shapes == cell.param_shapes(3, 5, use_bias)
    assert layer.param_shapes["kernel"] == (3, cell.gates * 5)
    assert layer.param_shapes["recurrent_kernel"] == (5, cell.gates * 5)
    assert ("recurrent_bias" in layer.param_shapes) == (use_bias and cell.recurrent_bias)
    assert layer.forward_flops() == 7 * cell.forward_flops(3, 5, use_bias, "linear")
    assert layer_type(layer) == cell.title


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("keep", ["all", "states", "last"])
def test_op_keeps_the_arrays_the_cell_names(name, keep):
    cell = CELLS[name]
    rng = np.random.RandomState(0)
    n, T, k, u, G = 3, 4, 2, 5, cell.gates
    X = rng.randn(n, T, k)
    W, U = rng.randn(k, G * u) * 0.3, rng.randn(u, G * u) * 0.3
    state = _ops.recurrent_forward(name, X, W, U, keep=keep)
    assert (state.C is not None) == cell.cell_state
    assert (state.gates is not None) == (state.extra is not None) == cell.gate_arrays
    if cell.gate_arrays:
        assert state.gates.shape[2] == G * u
    if keep == "all":
        dW = _ops.recurrent_backward(name, rng.randn(n, T, u), X, W, U, state)[1]
        assert dW.shape == (k, G * u)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_reference_steps_match_the_kernel(name):
    cell = CELLS[name]
    rng = np.random.RandomState(1)
    n, T, k, u, G = 4, 5, 3, 2, cell.gates
    X = rng.randn(n, T, k)
    W, U, b = rng.randn(k, G * u), rng.randn(u, G * u), rng.randn(G * u)
    bh = rng.randn(G * u) if cell.recurrent_bias else None
    mask = rng.rand(n, T) > 0.3
    dY = rng.randn(n, T, u)
    ours = _ops.recurrent_forward(name, X, W, U, b, bh, mask)
    ref = twins.recurrent_forward(name, X, W, U, b, bh, mask)
    assert_allclose(ours.H, ref.H, rtol=1e-12, atol=1e-12)
    for got, want in zip(_ops.recurrent_backward(name, dY, X, W, U, ours),
                         twins.recurrent_backward(name, dY, X, W, U, ref)):
        assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_unknown_cell_is_a_clear_error():
    message = r"Unknown cell 'peephole'; expected one of \['gru', 'lstm', 'simple'\]"
    with pytest.raises(ValueError, match=message):
        get_cell("peephole")
    X, W, U = np.zeros((2, 3, 1)), np.zeros((1, 4)), np.zeros((1, 4))
    with pytest.raises(ValueError, match=message):
        _ops.recurrent_forward("peephole", X, W, U)
    with pytest.raises(ValueError, match=message):
        twins.recurrent_forward("peephole", X, W, U)
    with pytest.raises(ValueError, match="unknown cell code"):
        _recurrent.cell_layout(len(CELLS))


def test_recurrent_bias_only_for_cells_that_have_one():
    X, W, U = np.zeros((2, 3, 1)), np.zeros((1, 4)), np.zeros((1, 4))
    with pytest.raises(ValueError, match=r"lstm cell has no recurrent bias.*\['gru'\]"):
        _ops.recurrent_forward("lstm", X, W, U, bh=np.zeros(4))


def test_a_cell_without_its_reference_step_cannot_be_made():
    # Registering a cell means writing its numpy step: the twin needs one.
    class HalfCell(Cell):
        name, title, gates = "half", "Half", 1

    with pytest.raises(TypeError, match="abstract"):
        HalfCell()
