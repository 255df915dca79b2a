"""skdl.plot: learning curves from history_ and convolution kernels as an
image grid, rendered headless (Agg) to PNG; matplotlib stays optional."""
import copy
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits

from skdl import Conv1D, Conv2D, ConvBlock2D, Dense, Flatten, NNClassifier, NNRegressor
from skdl.plot import plot_conv_filters, plot_learning_curves

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _fit(model, X, y):
    # Tiny models: one thread trains them fastest, above all on a busy machine.
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit(X, y)


@pytest.fixture(scope="module")
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="module")
def cnn():
    """Digits CNN with early stopping and one final epoch on all samples
    (that epoch has no validation): conv2d (4, 1, 3, 3), then a block whose
    conv is (3, 4, 3, 3)."""
    X, y = load_digits(return_X_y=True)
    X = (X[:150] / 16).reshape(-1, 1, 8, 8).astype(np.float32)
    return _fit(NNClassifier([Conv2D(4, 3, activation="relu"), ConvBlock2D(3, 3),
                              Flatten()], max_iter=3, early_stopping=True,
                             n_iter_no_change=10, final_epochs=1, learning_rate=0.01,
                             random_state=0), X, y[:150])


@pytest.fixture(scope="module")
def signal_net():
    """Conv1D (5, 3, 4) on signals of 3 channels, no validation."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3, 10).astype(np.float32)
    return _fit(NNClassifier([Conv1D(5, 4, activation="relu"), Flatten()], max_iter=2,
                             random_state=0), X, np.arange(40) % 2)


@pytest.fixture(scope="module")
def mlp_regressor():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    return _fit(NNRegressor([Dense(5, activation="tanh")], max_iter=3,
                            early_stopping=True, n_iter_no_change=10, random_state=0),
                X, X.sum(axis=1))


def _column(history, key):
    return np.array([np.nan if r[key] is None else r[key] for r in history], dtype=float)


def _read_png(plt, figure, path):
    figure.savefig(path)
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    image = plt.imread(path)
    width, height = figure.get_size_inches() * figure.dpi
    assert image.shape == (int(height), int(width), 4)
    return image


def _not_blank(image):
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05
    assert len(np.unique(np.round(rgb * 255), axis=0)) > 10


# -- learning curves -------------------------------------------------------------

def test_learning_curves_plot_history_exactly(plt, cnn, tmp_path):
    history = cnn.history_
    assert len(history) == 4 and history[-1]["val_loss"] is None  # the final epoch
    display = plot_learning_curves(cnn)
    epochs = [r["epoch"] for r in history]
    lines = display.lines_
    assert set(lines) == {"train_loss", "val_loss", "val_score"}
    for key in lines:
        assert_array_equal(lines[key].get_xdata(), epochs)
        assert_array_equal(lines[key].get_ydata(), _column(history, key), err_msg=key)
        assert_array_equal(getattr(display, key), _column(history, key))
    assert np.isnan(lines["val_loss"].get_ydata()[-1])  # a gap, not a fake value
    ax, score_ax = display.ax_, display.score_ax_
    assert lines["train_loss"].axes is ax and lines["val_loss"].axes is ax
    assert lines["val_score"].axes is score_ax and score_ax is not ax
    assert score_ax.get_shared_x_axes().joined(ax, score_ax)  # a twin
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "loss (log_loss)"
    assert score_ax.get_ylabel() == "validation accuracy"
    assert display.score_name == "accuracy"
    assert [t.get_text() for t in display.legend_.get_texts()] == [
        "training loss", "validation loss", "validation accuracy"]
    assert display.figure_ is ax.figure
    _not_blank(_read_png(plt, display.figure_, tmp_path / "curves.png"))


def test_learning_curves_in_given_axes_without_validation(plt, signal_net):
    fig, ax = plt.subplots()
    n_figures = len(plt.get_fignums())
    display = plot_learning_curves(signal_net, ax=ax)
    assert len(plt.get_fignums()) == n_figures
    assert display.ax_ is ax and display.figure_ is fig
    assert list(display.lines_) == ["train_loss"] and display.score_ax_ is None
    assert display.val_loss is None and display.val_score is None
    assert_array_equal(ax.lines[0].get_ydata(), signal_net.loss_curve_)
    assert [t.get_text() for t in display.legend_.get_texts()] == ["training loss"]
    assert len(fig.axes) == 1


def test_learning_curves_score_panel_and_regressor_score_name(plt, mlp_regressor):
    fig, (ax, panel) = plt.subplots(1, 2)
    display = plot_learning_curves(mlp_regressor, ax=ax, score_ax=panel)
    assert display.score_ax_ is panel
    assert display.lines_["val_score"].axes is panel
    assert_array_equal(panel.lines[0].get_ydata(), mlp_regressor.validation_scores_)
    assert panel.get_ylabel() == "validation R²"
    assert panel.get_xlabel() == "epoch"
    assert [t.get_text() for t in panel.get_legend().get_texts()] == ["validation R²"]
    assert [t.get_text() for t in display.legend_.get_texts()] == [
        "training loss", "validation loss"]
    assert ax.get_ylabel() == "loss (squared_error)"
    assert len(fig.axes) == 2  # no twin was added

    without = plot_learning_curves(mlp_regressor, score=False)
    assert set(without.lines_) == {"train_loss", "val_loss"}
    assert without.score_ax_ is None and len(without.figure_.axes) == 1


def test_learning_curves_errors(plt, cnn):
    with pytest.raises(NotFittedError, match="NNClassifier"):
        plot_learning_curves(NNClassifier())
    empty = copy.copy(cnn)
    empty.history_ = []
    with pytest.raises(ValueError, match="history_ of this NNClassifier is empty"):
        plot_learning_curves(empty)
    linear = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    with pytest.raises(ValueError, match="LinearRegression has no history_"):
        plot_learning_curves(linear)


# -- convolution filters ---------------------------------------------------------

def _tops_and_lefts(display):
    extents = np.array([image.get_extent() for image in display.images_])
    return extents[:, 3], extents[:, 0]  # (left, right, bottom, top); y grows down


def test_conv_filters_tiles_are_the_kernel(plt, cnn, tmp_path):
    display = plot_conv_filters(cnn)  # the first convolution: conv2d
    kernel = cnn.network_.find_layer("conv2d").params["kernel"]
    assert kernel.shape == (4, 1, 3, 3) and display.layer_name == "conv2d"
    assert_array_equal(display.kernel, kernel)
    assert len(display.images_) == 4 == len(display.ax_.images)
    limit = np.abs(kernel).max()
    for image, (f, c), tile in zip(display.images_, display.tile_index, display.tiles):
        assert_array_equal(image.get_array(), kernel[f, c])  # global: the weights
        assert_array_equal(tile, kernel[f, c])
        assert_allclose(image.get_clim(), (-limit, limit))
        left, right, bottom, top = image.get_extent()
        assert (right - left, bottom - top) == (3, 3)
    assert display.tile_index == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert display.colorbar_.ax.get_ylabel() == "weight"
    assert display.ax_.get_title() == "Conv2D 'conv2d': 4 filters × 1 channel"

    # The PNG shows each kernel value in the middle of its pixel, in its color.
    image = _read_png(plt, display.figure_, tmp_path / "filters.png")
    _not_blank(image)
    cmap, norm = display.images_[0].get_cmap(), display.images_[0].norm
    for tile_image, (f, c) in zip(display.images_, display.tile_index):
        left, _, _, top = tile_image.get_extent()
        for i in range(3):
            for j in range(3):
                x, y = display.ax_.transData.transform((left + j + 0.5, top + i + 0.5))
                pixel = image[image.shape[0] - 1 - int(y), int(x), :3]
                expected = cmap(norm(kernel[f, c, i, j]))[:3]
                assert_allclose(pixel, expected, atol=2 / 255, err_msg=(f, c, i, j))


def test_conv_filters_each_channel_tile_normalized_and_mean(plt, cnn):
    kernel = cnn.network_.find_layer("conv_block2d/conv").params["kernel"]
    assert kernel.shape == (3, 4, 3, 3)
    display = plot_conv_filters(cnn, "conv_block2d/conv", normalize="tile",
                                colorbar=False)
    assert len(display.images_) == 12 and display.colorbar_ is None
    assert display.tile_index == [(f, c) for f in range(3) for c in range(4)]
    for image, (f, c) in zip(display.images_, display.tile_index):
        expected = kernel[f, c] / np.abs(kernel[f, c]).max()
        assert_allclose(image.get_array(), expected, rtol=1e-6)
        assert np.abs(image.get_array()).max() == pytest.approx(1)
        assert image.get_clim() == (-1, 1)
    # A filter's channels sit side by side on one row, left to right.
    tops, lefts = _tops_and_lefts(display)
    for f in range(3):
        assert len(set(tops[4 * f:4 * f + 4])) == 1
        assert np.all(np.diff(lefts[4 * f:4 * f + 4]) > 0)

    mean = plot_conv_filters(cnn, "conv_block2d/conv", channels="mean", n_cols=3)
    assert len(mean.images_) == 3 and mean.tile_index == [(0, None), (1, None), (2, None)]
    for f, image in enumerate(mean.images_):
        assert_allclose(image.get_array(), kernel[f].astype(np.float64).mean(axis=0))
    assert len(set(_tops_and_lefts(mean)[0])) == 1  # n_cols=3: one row
    assert "mean of 4 channels" in mean.ax_.get_title()

    grid = plot_conv_filters(cnn, n_cols=2)  # 4 filters in 2 rows of 2
    tops, lefts = _tops_and_lefts(grid)
    assert len(set(tops)) == 2 and len(set(lefts)) == 2
    assert tops[0] == tops[1] < tops[2] == tops[3]


def test_conv1d_filters_are_strips(plt, signal_net, tmp_path):
    kernel = signal_net.network_.find_layer("conv1d").params["kernel"]
    assert kernel.shape == (5, 3, 4)
    display = plot_conv_filters(signal_net)
    assert len(display.images_) == 15 and display.tiles.shape == (15, 1, 4)
    for image, (f, c) in zip(display.images_, display.tile_index):
        assert_array_equal(image.get_array(), kernel[f, c][np.newaxis, :])
    tops, _ = _tops_and_lefts(display)
    assert len(set(tops)) == 5  # one filter per row
    assert display.ax_.get_title() == "Conv1D 'conv1d': 5 filters × 3 channels"
    _not_blank(_read_png(plt, display.figure_, tmp_path / "strips.png"))


def test_conv_filters_errors(plt, cnn, mlp_regressor):
    with pytest.raises(NotFittedError, match="NNClassifier"):
        plot_conv_filters(NNClassifier([Conv2D(2, 3)]))
    with pytest.raises(ValueError, match=r"no convolution layer.*\['dense', 'output'\]"):
        plot_conv_filters(mlp_regressor)
    with pytest.raises(ValueError, match=r"'flatten' is not a convolution; the "
                       r"convolution layers are \['conv2d', 'conv_block2d/conv'\] "
                       r"and all the layers are \['conv2d', 'conv_block2d',"):
        plot_conv_filters(cnn, "flatten")
    with pytest.raises(ValueError, match=r"No layer is named 'nope'.*'conv2d'"):
        plot_conv_filters(cnn, "nope")
    with pytest.raises(ValueError, match="channels must be 'each' or 'mean'"):
        plot_conv_filters(cnn, channels="rgb")
    with pytest.raises(ValueError, match="normalize must be 'global' or 'tile'"):
        plot_conv_filters(cnn, normalize=None)
    with pytest.raises(ValueError, match="n_cols must be a positive int"):
        plot_conv_filters(cnn, n_cols=0)


# -- matplotlib is optional ------------------------------------------------------

def test_clear_import_error_without_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    for plot in (plot_learning_curves, plot_conv_filters):
        with pytest.raises(ImportError, match=rf"{plot.__name__} requires matplotlib\. "
                           r"Install it with `pip install matplotlib` \(or `pip "
                           r"install skdl\[plot\]`\)"):
            plot(NNClassifier())  # before anything else is checked


_CHILD = """
import sys
sys.modules["matplotlib"] = None  # as if it were not installed
import skdl, skdl.plot
from skdl.plot import plot_learning_curves
assert not any(m.startswith("matplotlib") for m in sys.modules if sys.modules[m])
try:
    plot_learning_curves(skdl.NNClassifier())
except ImportError as e:
    print(e)
"""


def test_skdl_imports_without_matplotlib(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _CHILD], check=True, env=env,
                         timeout=120, capture_output=True, text=True,
                         cwd=tmp_path)  # not the checkout: its skdl may be unbuilt
    assert "plot_learning_curves requires matplotlib" in out.stdout
    assert "pip install skdl[plot]" in out.stdout
