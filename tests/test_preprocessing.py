"""ImageResizer: values against scipy.ndimage and hand-made images for each
mode, the original shapes, the input forms it takes, no mutation, its
errors, and its place in a Pipeline and a ColumnTransformer before a
network."""
import doctest

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.ndimage import zoom
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skdl
from skdl import Conv2D, Dense, Flatten, MergeInput, NNClassifier, preprocessing
from skdl.preprocessing import ImageResizer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _images(seed=0):
    """Three random 2-D images of different sizes."""
    rng = np.random.default_rng(seed)
    return [rng.random((5, 7)), rng.random((12, 4)), rng.random((3, 3))]


def varied_digits(n=300, seed=0):
    """Digits cropped to their ink and zoomed by a random factor: images of
    many sizes (values 0-1), their labels."""
    images, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    out = []
    for image in images[:n].reshape(-1, 8, 8) / 16:
        rows, cols = np.nonzero(image)
        box = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        out.append(zoom(box, rng.uniform(0.7, 2.0), order=1, grid_mode=True,
                        mode="nearest"))
    return out, y[:n]


def test_the_module_is_public_and_its_examples_run():
    assert skdl.preprocessing is preprocessing and "preprocessing" in skdl.__all__
    result = doctest.testmod(preprocessing, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


def test_varied_digits_have_many_sizes():
    images, _ = varied_digits(100)
    assert len({image.shape for image in images}) > 20


# --- values -------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("shape, out", [((6, 9), (12, 6)), ((8, 8), (4, 4)),
                                        ((3, 5), (7, 11)), ((1, 4), (3, 8))])
def test_stretch_matches_scipy_zoom_on_pixel_areas(shape, out, order):
    image = np.random.default_rng(1).random(shape)
    rows = ImageResizer(*out, order=order).fit_transform([image])
    expected = zoom(image, (out[0] / shape[0], out[1] / shape[1]), order=order,
                    grid_mode=True, mode="nearest")
    assert expected.shape == out
    assert_allclose(rows.reshape(out), expected, rtol=0, atol=1e-12)


def test_stretch_of_a_ramp_is_exact_and_keeps_its_range():
    # Output pixel j of 4 reads an 8-wide ramp at (j + 0.5) * 2 - 0.5.
    ramp = np.tile(np.arange(8.0), (8, 1))
    out = ImageResizer(8, 4).fit_transform([ramp]).reshape(8, 4)
    assert_allclose(out, np.tile([0.5, 2.5, 4.5, 6.5], (8, 1)), atol=1e-12)


def test_same_size_is_identity_and_channels_are_resized_apart():
    rgb = np.random.default_rng(2).random((3, 6, 5))
    assert_array_equal(ImageResizer(6, 5).fit_transform([rgb]), rgb.reshape(1, -1))
    rows = ImageResizer(4, 10, order=3).fit_transform([rgb]).reshape(3, 4, 10)
    for c in range(3):
        assert_allclose(rows[c], zoom(rgb[c], (4 / 6, 2), order=3, grid_mode=True,
                                      mode="nearest"), atol=1e-12)


def test_pad_keeps_the_aspect_ratio_centred_on_fill():
    tall = np.arange(1.0, 7.0).reshape(3, 2)       # 3x2 -> 6x4 inside 6x6
    out = ImageResizer(6, 6, mode="pad", fill_value=-1.0).fit_transform([tall])
    out = out.reshape(6, 6)
    assert_array_equal(out[:, :1], -1.0)
    assert_array_equal(out[:, 5:], -1.0)
    assert_allclose(out[:, 1:5], zoom(tall, 2, order=1, grid_mode=True, mode="nearest"),
                    atol=1e-12)
    wide = np.arange(8.0).reshape(2, 4)            # 2x4 -> 2x4 inside 4x4: rows 1-2
    out = ImageResizer(4, 4, mode="pad", fill_value=9.0).fit_transform([wide])
    assert_array_equal(out.reshape(4, 4), np.r_[np.full((1, 4), 9.0), wide,
                                                np.full((1, 4), 9.0)])


def test_pad_and_crop_of_an_image_of_the_output_ratio_is_a_stretch():
    image = np.random.default_rng(3).random((2, 10, 5))
    stretch = ImageResizer(6, 3).fit_transform([image])
    for mode in ("pad", "crop"):
        assert_allclose(ImageResizer(6, 3, mode=mode).fit_transform([image]), stretch,
                        atol=1e-12)


def test_crop_covers_the_output_and_cuts_the_overhang_centred():
    wide = np.tile(np.arange(12.0), (4, 1))        # 4x12 -> 8x24, columns 8-15 kept
    out = ImageResizer(8, 8, mode="crop").fit_transform([wide]).reshape(8, 8)
    full = zoom(wide, 2, order=1, grid_mode=True, mode="nearest")
    assert_allclose(out, full[:, 8:16], atol=1e-12)
    assert_allclose(out[0], (np.arange(8, 16) + 0.5) / 2 - 0.5, atol=1e-12)


def test_return_shapes_appends_the_original_height_and_width():
    images = _images()
    resizer = ImageResizer(4, 6, mode="pad", return_shapes=True)
    out = resizer.fit_transform(images)
    assert out.shape == (3, 4 * 6 + 2) == (3, resizer.n_features_out_)
    assert_array_equal(out[:, -2:], [[5, 7], [12, 4], [3, 3]])
    assert_array_equal(out[:, :-2], ImageResizer(4, 6, mode="pad").fit_transform(images))


def test_feature_names_out():
    names = ImageResizer(2, 3, return_shapes=True).fit([np.ones((2, 4, 4))]) \
        .get_feature_names_out()
    assert len(names) == 2 * 2 * 3 + 2
    assert list(names[:4]) == ["pixel_c0_y0_x0", "pixel_c0_y0_x1", "pixel_c0_y0_x2",
                               "pixel_c0_y1_x0"]
    assert names[6] == "pixel_c1_y0_x0" and names[11] == "pixel_c1_y1_x2"
    assert list(names[-2:]) == ["original_height", "original_width"]


# --- input forms, dtypes, no mutation -----------------------------------------


def test_every_collection_of_images_gives_the_same_rows():
    images = _images()
    expected = ImageResizer(5, 5).fit_transform(images)
    as_object = np.empty(3, dtype=object)
    as_object[:] = images
    for X in (tuple(images), as_object, as_object[:, None], pd.Series(as_object),
              pd.DataFrame({"image": as_object})):
        assert_array_equal(ImageResizer(5, 5).fit_transform(X), expected)


def test_numeric_batches_are_lists_of_images_of_one_size():
    batch = np.random.default_rng(4).random((4, 2, 6, 6))
    assert_array_equal(ImageResizer(3, 3).fit_transform(batch),
                       ImageResizer(3, 3).fit_transform(list(batch)))
    assert_array_equal(ImageResizer(3, 3).fit_transform(batch[:, 0]),
                       ImageResizer(3, 3).fit_transform(list(batch[:, :1])))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, bool])
def test_integer_and_float_images_give_float64(dtype):
    image = (np.arange(12) % 4).reshape(3, 4).astype(dtype)
    out = ImageResizer(3, 4).fit_transform([image])
    assert out.dtype == np.float64
    assert_array_equal(out, image.astype(np.float64).reshape(1, -1))


def test_inputs_are_never_modified():
    images = _images()
    for image in images:
        image.setflags(write=False)
    copies = [image.copy() for image in images]
    for mode in ("stretch", "pad", "crop"):
        out = ImageResizer(5, 5, mode=mode, return_shapes=True).fit_transform(images)
        out[...] = 0
        for image, copy in zip(images, copies):
            assert_array_equal(image, copy)
    same = np.ones((1, 5, 5))  # same size: the output must still be a copy
    out = ImageResizer(5, 5).fit_transform([same])
    assert not np.shares_memory(out, same)


def test_clone_and_params():
    resizer = ImageResizer(16, 24, mode="crop", order=3, fill_value=0.5,
                           return_shapes=True)
    copy = clone(resizer)
    assert copy.get_params() == resizer.get_params() == dict(
        height=16, width=24, mode="crop", order=3, fill_value=0.5, return_shapes=True)
    assert ImageResizer().get_params() == dict(
        height=32, width=32, mode="stretch", order=1, fill_value=0.0, return_shapes=False)


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize("X, error, match", [
    ([], ValueError, "ImageResizer needs at least one image, got none"),
    (np.empty(0, dtype=object), ValueError, "at least one image"),
    ([np.ones((4, 4)), np.ones(5)], ValueError,
     r"image 1 has shape \(5,\); images must be 2-D \(height, width\) or 3-D"),
    ([np.ones((1, 2, 3, 4))], ValueError, r"image 0 has shape \(1, 2, 3, 4\)"),
    ([np.ones((3, 4, 4)), np.ones((4, 4))], ValueError,
     r"different numbers of channels: image 0 has 3, image 1 has 1"),
    ([np.ones((4, 4)), np.array([[1.0, np.nan]])], ValueError,
     "image 1 contains NaN or infinite values"),
    ([np.array([[np.inf]])], ValueError, "image 0 contains NaN or infinite"),
    ([np.ones((0, 4))], ValueError, r"image 0 of shape \(0, 4\) is empty"),
    (np.ones((10, 64)), ValueError,
     r"got a numeric array of shape \(10, 64\). Flat rows of one size: reshape"),
    (np.ones(5), ValueError, "a numeric array of shape"),
    (np.empty((2, 2), dtype=object), ValueError, "1-D object array"),
    ([np.array([["a", "b"]])], TypeError, "image 0 must hold real numbers"),
    ([np.ones((2, 2)) * 1j], TypeError, "real numbers, got dtype complex128"),
    ({"image": np.ones((2, 2))}, TypeError, "takes a list of images.*got dict"),
    ("image.png", TypeError, "got str"),
])
def test_bad_images_raise(X, error, match):
    with pytest.raises(error, match=match):
        ImageResizer(4, 4).fit(X)


@pytest.mark.parametrize("params, match", [
    (dict(height=0), "height"), (dict(width=2.5), "width"), (dict(mode="fit"), "mode"),
    (dict(order=6), "order"), (dict(fill_value=np.nan), "fill_value"),
    (dict(fill_value="edge"), "fill_value"), (dict(return_shapes="yes"), "return_shapes"),
])
def test_bad_parameters_raise(params, match):
    with pytest.raises(ValueError, match=match):
        ImageResizer(**params).fit(_images())


def test_transform_needs_fit_and_the_fitted_channels():
    with pytest.raises(NotFittedError):
        ImageResizer().transform(_images())
    resizer = ImageResizer(4, 4).fit([np.ones((3, 5, 5))])
    with pytest.raises(ValueError, match=r"fitted on images of 3 channel\(s\), got images of 1"):
        resizer.transform(_images())
    with pytest.raises(NotFittedError):
        ImageResizer().get_feature_names_out()


# --- in scikit-learn compositions before a network --------------------------


def test_pipeline_into_a_cnn_trains_on_images_of_any_size():
    images, y = varied_digits(400)
    model = make_pipeline(
        ImageResizer(8, 8, mode="pad"),
        NNClassifier([Conv2D(8, 3, padding="same", activation="relu"), Flatten()],
                     input_shape=(1, 8, 8), learning_rate=0.01, max_iter=25,
                     random_state=0))
    model.fit(images[:300], y[:300])
    assert model[-1].input_shape_ == (1, 8, 8)
    assert model.score(images[300:], y[300:]) > 0.7  # chance: 0.1
    again = clone(model).fit(images[:300], y[:300])
    assert_array_equal(again.predict(images[300:]), model.predict(images[300:]))


def test_shapes_side_channel_through_a_column_transformer_into_merge_input():
    images, y = varied_digits(300)
    prepare = ColumnTransformer([("pixels", "passthrough", slice(0, 64)),
                                 ("size", StandardScaler(), slice(64, 66))])
    network = NNClassifier(
        [Conv2D(8, 3, padding="same", activation="relu"), Flatten(),
         MergeInput("size", layers=[Dense(4, name="size_features")]), Dense(16)],
        input_shape={"pixels": (1, 8, 8), "size": (2,)}, learning_rate=0.01,
        max_iter=3, random_state=0)
    model = make_pipeline(ImageResizer(8, 8, mode="pad", return_shapes=True),
                          prepare, network).fit(images, y)
    sizes = np.array([image.shape for image in images], dtype=float)
    to_network = model[:-1].transform(images)
    assert to_network.shape == (300, 66)
    assert_allclose(to_network[:, 64:], (sizes - sizes.mean(0)) / sizes.std(0), atol=1e-12)
    # The side input reaches its own layer: changing the sizes changes it.
    net = model[-1]
    other = to_network.copy()
    other[:, 64:] += 1.0
    assert not np.allclose(net.activations(to_network, layer="size_features"),
                           net.activations(other, layer="size_features"))
    assert model.predict(images[:5]).shape == (5,)


def test_column_transformer_over_a_table_with_an_image_column():
    images = _images()
    table = pd.DataFrame({"image": pd.Series(images, dtype=object),
                          "age": [3.0, 5.0, 7.0]})
    ct = ColumnTransformer([("image", ImageResizer(2, 2, return_shapes=True), "image"),
                            ("age", "passthrough", ["age"])])
    out = ct.fit_transform(table)
    assert out.shape == (3, 2 * 2 + 2 + 1)
    assert_array_equal(out[:, :6], ImageResizer(2, 2, return_shapes=True)
                       .fit_transform(images))
    assert_array_equal(out[:, 6], [3.0, 5.0, 7.0])
    names = ct.get_feature_names_out()
    assert names[0] == "image__pixel_c0_y0_x0" and names[5] == "image__original_width"
    assert names[6] == "age__age"


def test_grid_search_over_the_resize_mode_with_a_list_of_images():
    images, y = varied_digits(120)
    model = make_pipeline(ImageResizer(8, 8),
                          NNClassifier([Dense(16)], input_shape=(1, 8, 8), max_iter=2,
                                       random_state=0))
    search = GridSearchCV(model, {"imageresizer__mode": ["stretch", "pad", "crop"]},
                          cv=2).fit(images, y)
    assert list(search.cv_results_["param_imageresizer__mode"]) == ["stretch", "pad",
                                                                     "crop"]
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_[0].mode == search.best_params_["imageresizer__mode"]
