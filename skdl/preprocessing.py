"""Preprocessing for images of varying sizes, as scikit-learn transformers.

A network takes samples of one shape; photographs, scans and crops come in
many. :class:`ImageResizer` brings a list of images of any sizes to one
``(channels, height, width)`` by stretching them, by padding them to keep
their aspect ratio, or by cropping them to it (pydnn's ``StretchingResizer``
and ``ContiguousBoxPreserveAspectRatioResizer``; Keras's ``Resizing``), and
can pass the original sizes on as extra columns for a side input (pydnn's
``merge_data_channel('shapes')``, skdl's :class:`skdl.MergeInput`).

Examples
--------
>>> import numpy as np
>>> from skdl.preprocessing import ImageResizer
>>> images = [np.ones((5, 7)), np.zeros((12, 4))]
>>> ImageResizer(8, 8).fit_transform(images).shape
(2, 64)
>>> ImageResizer(8, 8, return_shapes=True).fit_transform(images)[:, -2:]
array([[ 5.,  7.],
       [12.,  4.]])
"""
from numbers import Integral, Real

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = ["ImageResizer"]


def _as_images(X, owner):
    """The images of ``X`` as a list of float64 arrays (C, H, W), and their
    original (H, W).

    Raises TypeError or ValueError, naming the first image at fault, for
    anything but a non-empty collection of finite, numeric 2-D or 3-D
    arrays with one number of channels.
    """
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):
        X = X.to_numpy()  # a pandas Series, or a one-column DataFrame
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim not in (3, 4):
            raise ValueError(
                f"{owner} takes a list of images, or an array of shape (n, height, "
                f"width) or (n, channels, height, width); got a numeric array of "
                f"shape {X.shape}. Flat rows of one size: reshape them to images "
                f"first."
            )
        items = list(X)
    elif isinstance(X, np.ndarray):  # an object array holding images
        if X.ndim == 2 and X.shape[1] == 1:  # one column, as ColumnTransformer gives
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"{owner} takes a 1-D object array of images (or one column), got "
                f"an object array of shape {X.shape}."
            )
        items = list(X)
    elif isinstance(X, (list, tuple)):
        items = list(X)
    else:
        raise TypeError(
            f"{owner} takes a list of images (arrays of shape (height, width) or "
            f"(channels, height, width)), got {type(X).__name__}."
        )
    if not items:
        raise ValueError(f"{owner} needs at least one image, got none.")
    images, shapes = [], []
    for i, item in enumerate(items):
        image = np.asarray(item)
        if image.dtype.kind not in "biuf":
            raise TypeError(
                f"{owner}: image {i} must hold real numbers, got dtype {image.dtype}."
            )
        if image.ndim not in (2, 3):
            raise ValueError(
                f"{owner}: image {i} has shape {image.shape}; images must be 2-D "
                f"(height, width) or 3-D (channels, height, width)."
            )
        if image.size == 0:
            raise ValueError(f"{owner}: image {i} of shape {image.shape} is empty.")
        if not np.all(np.isfinite(image)):
            raise ValueError(f"{owner}: image {i} contains NaN or infinite values.")
        # astype copies: the caller's arrays are never written to, even by views.
        image = image.astype(np.float64)
        images.append(image.reshape((-1,) + image.shape[-2:]))
        shapes.append(image.shape[-2:])
        if images[-1].shape[0] != images[0].shape[0]:
            raise ValueError(
                f"{owner}: the images have different numbers of channels: image 0 "
                f"has {images[0].shape[0]}, image {i} has {images[-1].shape[0]} "
                f"(a 2-D image has 1)."
            )
    return images, np.asarray(shapes, dtype=np.float64)


def _stretch(image, height, width, order):
    """Resize (C, H, W) to (C, height, width), each axis on its own.

    Pixels are areas, as in ``scipy.ndimage.zoom(..., grid_mode=True)``: the
    output's edges meet the input's edges, and output pixel ``i`` reads
    the input at ``(i + 0.5) * H / height - 0.5``; beyond the outer pixel
    centres the edge value is repeated.
    """
    C, H, W = image.shape
    if (H, W) == (height, width):
        return image
    sy, sx = H / height, W / width
    out = np.empty((C, height, width))
    for c in range(C):  # per plane: a spline along channels would mix them
        ndimage.affine_transform(
            image[c], (sy, sx), offset=(0.5 * sy - 0.5, 0.5 * sx - 0.5),
            output_shape=(height, width), output=out[c], order=order, mode="nearest")
    return out


class ImageResizer(TransformerMixin, BaseEstimator):
    """Resize images of any sizes to one shape, as flat rows for a network.

    Parameters
    ----------
    height, width : int >= 1, default=32
        Size of every output image.
    mode : {'stretch', 'pad', 'crop'}, default='stretch'
        ``'stretch'`` scales height and width apart to fill the output
        (pydnn's ``StretchingResizer``). ``'pad'`` keeps the aspect ratio:
        it scales the image so that it fits (its longer side, relative to
        the output's, fills the output), centres it and fills the rest with
        ``fill_value`` (pydnn's ``ContiguousBoxPreserveAspectRatioResizer``,
        Keras's ``pad_to_aspect_ratio``). ``'crop'`` keeps the aspect ratio
        too: it scales the image so that it covers the output and cuts off
        the overhang, centred (Keras's ``crop_to_aspect_ratio``).
    order : int in [0, 5], default=1
        Spline order of ``scipy.ndimage`` interpolation: 0 nearest
        neighbour, 1 bilinear (the default of Keras and torchvision), 3
        cubic. Orders above 1 may overshoot the input's range.
    fill_value : float, default=0.0
        Value of the padding in ``mode='pad'``.
    return_shapes : bool, default=False
        Append each image's original height and width as two last columns,
        for a side input the network merges after its convolutions
        (pydnn's ``merge_data_channel('shapes')``, :class:`skdl.MergeInput`).

    Attributes
    ----------
    n_channels_ : int
        Channels of the images seen in ``fit`` (1 for 2-D images); images
        given to ``transform`` must have as many.
    n_features_out_ : int
        Columns of the output: ``n_channels_ * height * width``, plus 2 with
        ``return_shapes``.

    See Also
    --------
    skdl.MergeInput : Merges a side input, such as the original shapes.
    scipy.ndimage.zoom : Resizes one array.

    Notes
    -----
    The input is a list (or tuple, 1-D object array, pandas Series or
    one-column object DataFrame) of images of shape ``(height, width)`` or
    ``(channels, height, width)``, of any sizes, all with the same number of
    channels; a numeric array of shape ``(n, height, width)`` or
    ``(n, channels, height, width)`` is a list of images of one size. Images
    are never modified.

    The output is flat, ``(n_images, n_features_out_)`` of float64, pixels
    in ``(channels, height, width)`` order: what scikit-learn's ``Pipeline``
    and ``ColumnTransformer`` pass between steps and what ``NNClassifier``
    with ``input_shape=(channels, height, width)`` (or, with
    ``return_shapes``, ``input_shape={"pixels": (channels, height, width),
    "size": (2,)}``) reshapes back into images.

    Examples
    --------
    >>> import numpy as np
    >>> from skdl.preprocessing import ImageResizer
    >>> wide = np.arange(8.0).reshape(2, 4)
    >>> ImageResizer(4, 4, mode="pad", fill_value=-1).fit_transform([wide]).reshape(4, 4)
    array([[-1., -1., -1., -1.],
           [ 0.,  1.,  2.,  3.],
           [ 4.,  5.,  6.,  7.],
           [-1., -1., -1., -1.]])
    """

    _parameter_constraints = {
        "height": [Interval(Integral, 1, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions({"stretch", "pad", "crop"})],
        "order": [Interval(Integral, 0, 5, closed="both")],
        "fill_value": [Interval(Real, None, None, closed="neither")],
        "return_shapes": ["boolean"],
    }

    def __init__(self, height=32, width=32, *, mode="stretch", order=1, fill_value=0.0,
                 return_shapes=False):
        self.height = height
        self.width = width
        self.mode = mode
        self.order = order
        self.fill_value = fill_value
        self.return_shapes = return_shapes

    def fit(self, X, y=None):
        """Check the parameters and the images; remember their channels.

        Parameters
        ----------
        X : list of ndarray of shape (height, width) or (channels, height, width)
            Images of any sizes, with one number of channels (see Notes).
        y : None
            Ignored.

        Returns
        -------
        self : ImageResizer
        """
        self._validate_params()
        images, _ = _as_images(X, type(self).__name__)
        self.n_channels_ = images[0].shape[0]
        self.n_features_out_ = (self.n_channels_ * self.height * self.width
                                + 2 * bool(self.return_shapes))
        return self

    def transform(self, X):
        """Resize the images and flatten each to a row.

        Parameters
        ----------
        X : list of ndarray of shape (height, width) or (channels, height, width)
            Images of any sizes, with ``n_channels_`` channels.

        Returns
        -------
        ndarray of shape (n_images, n_features_out_)
            Each row the image's ``n_channels_ * height * width`` pixels in
            ``(channels, height, width)`` order, then with ``return_shapes``
            its original height and width.
        """
        check_is_fitted(self, "n_channels_")
        owner = type(self).__name__
        images, shapes = _as_images(X, owner)
        if images[0].shape[0] != self.n_channels_:
            raise ValueError(
                f"{owner} was fitted on images of {self.n_channels_} channel(s), got "
                f"images of {images[0].shape[0]}."
            )
        n_pixels = self.n_channels_ * self.height * self.width
        out = np.empty((len(images), self.n_features_out_))
        for row, image in zip(out, images):
            row[:n_pixels] = self._resize(image).ravel()
        if self.return_shapes:
            out[:, n_pixels:] = shapes
        return out

    def _resize(self, image):
        """One image (C, H, W) to (C, height, width) by ``mode``."""
        height, width, order = self.height, self.width, self.order
        if self.mode == "stretch":
            return _stretch(image, height, width, order)
        H, W = image.shape[1:]
        if self.mode == "pad":
            scale = min(height / H, width / W)
            # The fitting side is exact; the other is rounded, within the output.
            h = min(height, max(1, round(H * scale)))
            w = min(width, max(1, round(W * scale)))
            out = np.full((image.shape[0], height, width), float(self.fill_value))
            top, left = (height - h) // 2, (width - w) // 2
            out[:, top:top + h, left:left + w] = _stretch(image, h, w, order)
            return out
        scale = max(height / H, width / W)  # 'crop'
        h, w = max(height, round(H * scale)), max(width, round(W * scale))
        top, left = (h - height) // 2, (w - width) // 2
        return _stretch(image, h, w, order)[:, top:top + height, left:left + width]

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : None or array-like of str
            Ignored: images have no input feature names (accepted so that
            ``ColumnTransformer`` can ask).

        Returns
        -------
        ndarray of str
            ``"pixel_c{channel}_y{row}_x{column}"`` per pixel, then with
            ``return_shapes`` ``"original_height"`` and ``"original_width"``.
        """
        check_is_fitted(self, "n_channels_")
        c, y, x = np.meshgrid(np.arange(self.n_channels_), np.arange(self.height),
                              np.arange(self.width), indexing="ij")
        names = [f"pixel_c{i}_y{j}_x{k}" for i, j, k in zip(c.ravel(), y.ravel(), x.ravel())]
        if self.return_shapes:
            names += ["original_height", "original_width"]
        return np.asarray(names, dtype=object)
