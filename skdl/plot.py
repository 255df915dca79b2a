"""Plots of fitted networks: learning curves from ``history_`` and the
kernels of a convolution layer as an image grid.

matplotlib is an optional dependency (``pip install skdl[plot]``): this
module imports without it, and its functions raise an ImportError that says
how to install it. Following scikit-learn, every function takes an ``ax``
(a new figure is made when it is None) and returns a small display object
that holds the plotted data and the matplotlib artists (``ax_``,
``figure_``, ...).
"""
import math

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "ConvFiltersDisplay",
    "LearningCurvesDisplay",
    "plot_conv_filters",
    "plot_learning_curves",
]


def _check_matplotlib(caller_name):
    """Raise a clear ImportError when matplotlib is missing (scikit-learn's
    ``check_matplotlib_support``, with skdl's extra named)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"{caller_name} requires matplotlib. Install it with `pip install "
            "matplotlib` (or `pip install skdl[plot]`)."
        ) from e


def _new_axes(figsize=None):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


# -- learning curves -------------------------------------------------------------

_SCORE_NAMES = {"accuracy_score": "accuracy", "r2_score": "R²"}


class LearningCurvesDisplay:
    """Learning curves of a fitted network; made by :func:`plot_learning_curves`.

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs,)
        Epoch numbers (``history_[i]['epoch']``).
    train_loss : ndarray of shape (n_epochs,)
        Training loss per epoch (penalties included).
    val_loss : ndarray of shape (n_epochs,) or None
        Validation loss per epoch, NaN for the epochs without validation
        (e.g. ``final_epochs``); None when no epoch had validation data.
    val_score : ndarray of shape (n_epochs,) or None
        Validation score per epoch (accuracy or R²), NaN and None as
        ``val_loss``.
    score_name : str
        Name of the score, e.g. 'accuracy'.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the losses.
    score_ax_ : matplotlib Axes or None
        Axes with the validation score (a twin of ``ax_`` unless one was
        given); None when there is no score to plot.
    figure_ : matplotlib Figure
        Figure holding ``ax_``.
    lines_ : dict of str to matplotlib Line2D
        The curves, under the keys of ``history_``: 'train_loss' and, when
        present, 'val_loss' and 'val_score'.
    legend_ : matplotlib Legend
        The legend of ``ax_`` (of all three curves, above the axes, when the
        score is on a twin of ``ax_``).
    """

    def __init__(self, epochs, train_loss, val_loss, val_score, score_name):
        self.epochs = epochs
        self.train_loss = train_loss
        self.val_loss = val_loss
        self.val_score = val_score
        self.score_name = score_name


def _history_column(history, key):
    """float64 values of ``key`` per epoch, NaN where it is None; None when
    it is None in every epoch."""
    values = [record.get(key) for record in history]
    if all(value is None for value in values):
        return None
    return np.array([np.nan if value is None else value for value in values],
                    dtype=np.float64)


def _check_history(estimator, caller_name):
    check_is_fitted(estimator)
    history = getattr(estimator, "history_", None)
    if history is None:
        raise ValueError(
            f"{caller_name} takes a fitted skdl estimator (NNClassifier or "
            f"NNRegressor); {type(estimator).__name__} has no history_."
        )
    if len(history) == 0:
        raise ValueError(
            f"The history_ of this {type(estimator).__name__} is empty: no epoch "
            "was completed, so there are no learning curves to plot."
        )
    return history


def plot_learning_curves(estimator, *, ax=None, score_ax=None, score=True):
    """Plot the training and validation loss, and the validation score, per epoch.

    The losses share ``ax``; the validation score (accuracy for a
    classifier, R² for a regressor) goes on a second y axis, a twin of
    ``ax`` unless ``score_ax`` is given. Validation curves exist only when
    the estimator was fitted with ``early_stopping=True`` (on its
    ``validation_fraction`` of the samples); epochs without validation
    (``final_epochs``) leave gaps.

    Parameters
    ----------
    estimator : NNClassifier or NNRegressor
        A fitted estimator; its ``history_`` is plotted.
    ax : matplotlib Axes, default=None
        Axes for the losses. None creates a new figure.
    score_ax : matplotlib Axes, default=None
        Axes for the validation score, e.g. a second panel. None uses a twin
        of ``ax`` sharing its x axis.
    score : bool, default=True
        Whether to plot the validation score (when there is one).

    Returns
    -------
    display : LearningCurvesDisplay
        The data (``epochs``, ``train_loss``, ``val_loss``, ``val_score``,
        each of shape (n_epochs,)) and the artists (``ax_``, ``score_ax_``,
        ``figure_``, ``lines_``, ``legend_``).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    ValueError
        When ``history_`` is empty (no epoch completed) or missing (not an
        skdl estimator).

    Examples
    --------
    >>> import matplotlib.pyplot as plt  # doctest: +SKIP
    >>> from sklearn.datasets import load_digits
    >>> from skdl import NNClassifier
    >>> from skdl.plot import plot_learning_curves
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NNClassifier(max_iter=20, early_stopping=True, random_state=0)
    >>> clf = clf.fit(X / 16, y)
    >>> display = plot_learning_curves(clf)  # doctest: +SKIP
    >>> plt.show()  # doctest: +SKIP
    """
    _check_matplotlib("plot_learning_curves")
    from matplotlib.ticker import MaxNLocator

    history = _check_history(estimator, "plot_learning_curves")
    epochs = np.array([record["epoch"] for record in history])
    train_loss = _history_column(history, "train_loss")
    val_loss = _history_column(history, "val_loss")
    val_score = _history_column(history, "val_score")
    metric = getattr(getattr(estimator, "_score_metric", None), "__name__", None)
    score_name = _SCORE_NAMES.get(
        metric, "accuracy" if is_classifier(estimator) else "score")
    display = LearningCurvesDisplay(epochs, train_loss, val_loss, val_score,
                                    score_name)

    if ax is None:
        ax = _new_axes()
    # A curve of one epoch is a point: draw markers while they stay readable.
    style = {"marker": "o", "markersize": 3} if len(epochs) <= 50 else {}
    lines = {"train_loss": ax.plot(epochs, train_loss, color="C0",
                                   label="training loss", **style)[0]}
    if val_loss is not None:
        lines["val_loss"] = ax.plot(epochs, val_loss, color="C1",
                                    label="validation loss", **style)[0]
    loss = getattr(estimator, "loss", None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({loss})" if isinstance(loss, str) else "loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    display.score_ax_ = None
    legend_ax, legend_lines = ax, list(lines.values())
    legend_place = {"loc": "best"}
    if score and val_score is not None:
        twin = score_ax is None
        score_ax = ax.twinx() if twin else score_ax
        lines["val_score"] = score_ax.plot(
            epochs, val_score, color="C2", linestyle="--",
            label=f"validation {score_name}", **style)[0]
        score_ax.set_ylabel(f"validation {score_name}")
        score_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if twin:
            # One legend for the three curves; "best" would only avoid the
            # curves of its own axes, so it goes above them.
            legend_ax, legend_lines = score_ax, list(lines.values())
            legend_place = {"loc": "lower center", "bbox_to_anchor": (0.5, 1.0),
                            "ncol": 3, "frameon": False, "fontsize": "small"}
        else:
            score_ax.set_xlabel("epoch")
            score_ax.legend(loc="best")
        display.score_ax_ = score_ax
    display.legend_ = legend_ax.legend(handles=legend_lines, **legend_place)
    display.ax_ = ax
    display.figure_ = ax.figure
    display.lines_ = lines
    return display


# -- convolution filters ---------------------------------------------------------


def _conv_layers(network):
    from .layers.conv import ConvLayer

    return [layer for layer in network.all_layers if isinstance(layer, ConvLayer)]


def _find_conv_layer(estimator, layer):
    network = estimator.network_
    names = [each.name for each in network.all_layers]
    convs = _conv_layers(network)
    if layer is None:
        if not convs:
            raise ValueError(
                f"This {type(estimator).__name__} has no convolution layer (Conv1D, "
                f"Conv2D or a ConvBlock); its layers are {names}."
            )
        return convs[0]
    found = network.find_layer(layer)  # ValueError listing the layers
    if found not in convs:
        raise ValueError(
            f"Layer {layer!r} is not a convolution; the convolution layers are "
            f"{[each.name for each in convs]} and all the layers are {names}."
        )
    return found


class ConvFiltersDisplay:
    """Kernels of a convolution layer as an image grid; made by
    :func:`plot_conv_filters`.

    Parameters
    ----------
    layer_name : str
    kernel : ndarray of shape (filters, channels, kh, kw) or (filters, channels, k)
        The layer's kernel (float64 copy); a Conv1D kernel has three axes.
    tiles : ndarray of shape (n_tiles, th, tw)
        The images drawn, in order: per filter, one per channel
        (``channels='each'``) or the mean over the channels
        (``channels='mean'``), after normalization. ``(th, tw)`` is
        ``(kh, kw)``, or ``(1, k)`` for a Conv1D.
    tile_index : list of tuple (filter, channel)
        Which kernel slice each tile shows; channel is None for the mean.
    vmin, vmax : float
        The color limits shared by every tile.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    images_ : list of matplotlib AxesImage
        One per tile, in the order of ``tiles``.
    colorbar_ : matplotlib Colorbar or None
    """

    def __init__(self, layer_name, kernel, tiles, tile_index, vmin, vmax):
        self.layer_name = layer_name
        self.kernel = kernel
        self.tiles = tiles
        self.tile_index = tile_index
        self.vmin = vmin
        self.vmax = vmax


def _grid(n_filters, per_filter, th, tw, n_cols, one_d):
    """Top-left corner (x, y) of every tile, and the grid's width and height,
    in kernel pixels. A filter's tiles sit side by side; filters fill rows of
    ``n_cols``."""
    channel_gap, filter_gap = 0.25, 1.0
    row_gap = 0.5 if one_d else 1.0
    block = per_filter * tw + (per_filter - 1) * channel_gap
    if n_cols is None:
        # One filter per row for signals (a heatmap of filters by taps);
        # images: about as many rows as columns of pixels.
        n_cols = 1 if one_d else max(1, round(math.sqrt(
            n_filters * (th + row_gap) / (block + filter_gap))))
    n_cols = min(n_cols, n_filters)
    n_rows = -(-n_filters // n_cols)
    corners = []
    for f in range(n_filters):
        row, col = divmod(f, n_cols)
        for c in range(per_filter):
            corners.append((col * (block + filter_gap) + c * (tw + channel_gap),
                            row * (th + row_gap)))
    width = n_cols * block + (n_cols - 1) * filter_gap
    height = n_rows * th + (n_rows - 1) * row_gap
    return corners, width, height


def plot_conv_filters(estimator, layer=None, *, ax=None, channels="each",
                      normalize="global", n_cols=None, cmap="RdBu_r", colorbar=True):
    """Plot the kernels of a convolution layer as a grid of small images.

    Each filter gives one tile per input channel (``channels='each'``) or
    one tile, the mean of its channels (``channels='mean'``); a filter's
    tiles sit side by side, and filters fill the grid row by row, in order.
    The taps of a Conv1D kernel are drawn as a strip one pixel high (by
    default one filter per row, so the grid reads as filters by taps). The
    bias is not drawn.

    Colors are symmetric around zero (0 is the middle of ``cmap``), so the
    sign of a weight shows: with ``normalize='global'`` the tiles show the
    weights themselves on one color scale, ``±max |w|`` over all tiles; with
    ``normalize='tile'`` each tile is divided by its own ``max |w|`` (a zero
    tile stays zero) and the scale is ``±1``, which shows the shape of weak
    filters too.

    Parameters
    ----------
    estimator : NNClassifier or NNRegressor
        A fitted estimator.
    layer : str or None, default=None
        Name of a Conv1D or Conv2D layer (nested names too, e.g.
        'conv_block2d/conv'); None is the first convolution layer, in
        ``network_.all_layers`` order (depth first).
    ax : matplotlib Axes, default=None
        Axes to draw in. None creates a new figure sized to the grid.
    channels : {'each', 'mean'}, default='each'
        One tile per (filter, channel), or per filter the mean over its
        input channels.
    normalize : {'global', 'tile'}, default='global'
        One color scale for all tiles (the weights as they are), or each
        tile scaled by its largest absolute weight.
    n_cols : int or None, default=None
        Filters per row of the grid; None picks a roughly square grid (one
        filter per row for Conv1D).
    cmap : str or matplotlib Colormap, default='RdBu_r'
        Preferably a diverging colormap.
    colorbar : bool, default=True
        Whether to add a colorbar.

    Returns
    -------
    display : ConvFiltersDisplay
        The data (``kernel``, ``tiles`` of shape (n_tiles, th, tw),
        ``tile_index``) and the artists (``ax_``, ``figure_``, ``images_``,
        ``colorbar_``).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    ValueError
        When the network has no convolution layer, or ``layer`` names no
        layer or a layer that is not a convolution (the message lists the
        layers), or an option is invalid.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdl import Conv2D, Flatten, NNClassifier
    >>> from skdl.plot import plot_conv_filters
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NNClassifier([Conv2D(8, 3, activation='relu'), Flatten()],
    ...                    max_iter=5, random_state=0).fit(X.reshape(-1, 8, 8) / 16, y)
    >>> display = plot_conv_filters(clf)  # doctest: +SKIP
    >>> display.tiles.shape  # doctest: +SKIP
    (8, 3, 3)
    """
    _check_matplotlib("plot_conv_filters")
    if channels not in ("each", "mean"):
        raise ValueError(f"channels must be 'each' or 'mean', got {channels!r}.")
    if normalize not in ("global", "tile"):
        raise ValueError(f"normalize must be 'global' or 'tile', got {normalize!r}.")
    if n_cols is not None and (not isinstance(n_cols, (int, np.integer))
                               or isinstance(n_cols, bool) or n_cols < 1):
        raise ValueError(f"n_cols must be a positive int or None, got {n_cols!r}.")
    check_is_fitted(estimator)
    if not hasattr(estimator, "network_"):
        raise ValueError(
            "plot_conv_filters takes a fitted skdl estimator (NNClassifier or "
            f"NNRegressor); {type(estimator).__name__} has no network_."
        )
    conv = _find_conv_layer(estimator, layer)

    kernel = np.array(conv.params["kernel"], dtype=np.float64)
    one_d = kernel.ndim == 3
    shaped = kernel[:, :, np.newaxis, :] if one_d else kernel  # (F, C, th, tw)
    F, C, th, tw = shaped.shape
    if channels == "mean":
        shaped = shaped.mean(axis=1, keepdims=True)
    per_filter = shaped.shape[1]
    tiles = shaped.reshape(F * per_filter, th, tw).copy()
    tile_index = [(f, c if channels == "each" else None)
                  for f in range(F) for c in range(per_filter)]
    if normalize == "tile":
        peak = np.abs(tiles).max(axis=(1, 2), keepdims=True)
        np.divide(tiles, peak, out=tiles, where=peak > 0)
        limit = 1.0
    else:
        limit = float(np.abs(tiles).max()) or 1.0  # all zero: any scale
    display = ConvFiltersDisplay(conv.name, kernel, tiles, tile_index, -limit, limit)

    corners, width, height = _grid(F, per_filter, th, tw, n_cols, one_d)
    if ax is None:
        # About a third of an inch per kernel pixel, the grid within 8 inches
        # (constrained layout fits the title and the colorbar around it).
        scale = min(1 / 3, 8 / width, 8 / height)
        ax = _new_axes(figsize=(max(4.0, width * scale + (1.2 if colorbar else 0.4)),
                                max(2.0, height * scale + 0.8)))
    images = []
    for tile, (x, y) in zip(tiles, corners):
        # y grows downwards (the y axis is inverted below): rows read like text.
        images.append(ax.imshow(tile, cmap=cmap, vmin=-limit, vmax=limit,
                                interpolation="nearest", origin="upper",
                                extent=(x, x + tw, y + th, y)))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("equal")
    ax.set_axis_off()
    kind = "Conv1D" if one_d else "Conv2D"
    what = (f"{F} filters, mean of {C} channels" if channels == "mean" and C > 1
            else f"{F} filters × {C} channel{'s' if C > 1 else ''}")
    ax.set_title(f"{kind} {conv.name!r}: {what}", fontsize="medium")
    display.colorbar_ = None
    if colorbar:
        display.colorbar_ = ax.figure.colorbar(images[0], ax=ax, shrink=0.8,
                                               fraction=0.1)
        display.colorbar_.set_label("weight" if normalize == "global"
                                    else "weight / max |weight| of the tile")
    display.ax_ = ax
    display.figure_ = ax.figure
    display.images_ = images
    return display
