"""Per-batch augmenters: exact results on small hand-made batches, the random
draws, reproducibility, no mutation, dtypes, parameter and shape validation,
and the helpers the estimators call."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from skdl.augment import (
    Augmenter,
    GaussianNoise,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomRotation90,
    RandomScale,
    RandomShear,
    RandomShift,
    RandomTimeShift,
    RandomZoom,
    _rotate,
    _shear,
    _zoom,
    apply_augmenters,
    check_augment,
)

IMAGE_AUGMENTERS = [
    RandomFlip(horizontal=True, vertical=True),
    RandomShift(max_shift=(1, 2), fill=-1.0),
    RandomRotation90(),
    RandomRotation(max_degrees=40.0, fill=0.5),
    RandomCrop(scale=(0.5, 0.9)),
    RandomShear(max_degrees=30.0, fill=0.5),
    RandomZoom(scale=(0.6, 1.4), fill=-1.0),
]
SIGNAL_AUGMENTERS = [
    RandomTimeShift(max_shift=3, fill=-2.0),
    RandomTimeShift(max_shift=3, fill="wrap"),
]
ANY_SHAPE_AUGMENTERS = [GaussianNoise(std=0.5), RandomScale(low=0.5, high=2.0)]

# (augmenter, sample shape) pairs that cover every augmenter.
CASES = (
    [(a, (2, 5, 5)) for a in IMAGE_AUGMENTERS]
    + [(a, (2, 9)) for a in SIGNAL_AUGMENTERS]
    + [(a, (2, 5, 5)) for a in ANY_SHAPE_AUGMENTERS]
    + [(a, (7,)) for a in ANY_SHAPE_AUGMENTERS]
)
CASE_IDS = [f"{type(a).__name__}-{len(s)}d" for a, s in CASES]


def _batch(sample_shape, n=64, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).random((n,) + sample_shape).astype(dtype)


def _image(shape=(1, 3, 4)):
    """One image with distinct values, as a batch of one."""
    return np.arange(np.prod(shape), dtype=np.float64).reshape((1,) + shape) + 1


def _shifted(img, dy, dx, fill):
    """``img`` (..., H, W) moved dy down and dx right, by slicing."""
    H, W = img.shape[-2:]
    out = np.full_like(img, fill)
    out[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        img[..., max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


def _matches(sample, candidates):
    """Keys of the candidates equal to ``sample``."""
    return [key for key, c in candidates.items() if np.array_equal(sample, c)]


# --- flips -------------------------------------------------------------------


@pytest.mark.parametrize("horizontal, vertical, expected", [
    (True, False, lambda X: X[..., ::-1]),
    (False, True, lambda X: X[..., ::-1, :]),
    (True, True, lambda X: X[..., ::-1, ::-1]),
    (False, False, lambda X: X),
])
def test_flip_with_probability_one(horizontal, vertical, expected):
    X = _image((2, 3, 4))
    Y = RandomFlip(horizontal, vertical, probability=1.0).apply(X, np.random.default_rng(0))
    assert_array_equal(Y, expected(X))


def test_flip_with_probability_zero_is_identity():
    X = _image()
    assert_array_equal(RandomFlip(True, True, 0.0).apply(X, 0), X)


def test_flip_draws_each_sample_independently():
    base = _image((3, 4))[0]
    X = np.repeat(base[None], 200, axis=0)
    Y = RandomFlip(horizontal=True, vertical=True, probability=0.5).apply(X, 1)
    options = {(h, v): base[::-1 if v else 1, ::-1 if h else 1]
               for h in (False, True) for v in (False, True)}
    seen = [_matches(y, options) for y in Y]
    assert all(len(m) == 1 for m in seen)
    assert {m[0] for m in seen} == set(options)


# --- shifts ------------------------------------------------------------------


def test_shift_helper_moves_down_and_right():
    img = np.arange(1.0, 7.0).reshape(2, 3)
    assert_array_equal(_shifted(img, 1, -1, 0.0), [[0, 0, 0], [2, 3, 0]])


def test_shift_zero_is_identity():
    X = _image((2, 3, 4))
    assert_array_equal(RandomShift(max_shift=(0, 0)).apply(X, 0), X)


@pytest.mark.parametrize("max_shift", [1, (2, 1), (0, 3)])
def test_shift_matches_slicing_and_covers_the_range(max_shift):
    sy, sx = (max_shift, max_shift) if isinstance(max_shift, int) else max_shift
    base = _image((2, 4, 5))[0]
    X = np.repeat(base[None], 300, axis=0)
    Y = RandomShift(max_shift=max_shift, fill=-7.0).apply(X, 3)
    options = {(dy, dx): _shifted(base, dy, dx, -7.0)
               for dy in range(-sy, sy + 1) for dx in range(-sx, sx + 1)}
    seen = [_matches(y, options) for y in Y]
    assert all(len(m) == 1 for m in seen)
    assert {m[0] for m in seen} == set(options)


def test_shift_uses_the_seeded_draw():
    X = _batch((1, 6, 6), n=10)
    Y = RandomShift(max_shift=2, fill=0.0).apply(X, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    dy = rng.integers(-2, 2, size=10, endpoint=True)
    dx = rng.integers(-2, 2, size=10, endpoint=True)
    for i in range(10):
        assert_array_equal(Y[i], _shifted(X[i], dy[i], dx[i], 0.0))


# --- rotations ---------------------------------------------------------------


def test_rotation90_gives_every_quarter_turn():
    base = _image((2, 4, 4))[0]
    X = np.repeat(base[None], 200, axis=0)
    Y = RandomRotation90().apply(X, 2)
    options = {k: np.rot90(base, k, axes=(-2, -1)) for k in range(4)}
    seen = [_matches(y, options) for y in Y]
    assert all(len(m) == 1 for m in seen)
    assert {m[0] for m in seen} == {0, 1, 2, 3}


@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 6, 6), (4, 4)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotate_by_quarter_turns_matches_rot90(shape, k):
    X = _batch(shape, n=3)
    planes = X.reshape((3, -1) + shape[-2:])
    Y = _rotate(planes, np.full(3, 90.0 * k), fill=0.0)
    assert_allclose(Y, np.rot90(planes, k, axes=(-2, -1)), rtol=0, atol=1e-12)
    # Counter-clockwise: the top-right corner goes to the top-left.
    if k == 1:
        assert_allclose(Y[..., 0, 0], planes[..., 0, -1], atol=1e-12)


def test_rotate_float32_quarter_turn():
    X = _batch((1, 7, 7), n=2, dtype=np.float32)
    Y = _rotate(X, np.array([90.0, -90.0]), fill=0.0)
    assert Y.dtype == np.float32
    assert_allclose(Y[0], np.rot90(X[0], 1, axes=(-2, -1)), atol=1e-6)
    assert_allclose(Y[1], np.rot90(X[1], -1, axes=(-2, -1)), atol=1e-6)


def test_rotation_by_zero_degrees_is_identity():
    X = _batch((2, 5, 7), n=8)
    assert_array_equal(RandomRotation(max_degrees=0.0, fill=3.0).apply(X, 0), X)


def test_rotation_there_and_back_recovers_the_centre():
    y, x = np.mgrid[0:32, 0:32]
    smooth = np.sin(x / 5.0) * np.cos(y / 7.0)
    X = np.stack([smooth, smooth.T])[:, None]  # (2, 1, 32, 32)
    there = _rotate(X, np.array([30.0, -45.0]), fill=0.0)
    back = _rotate(there, np.array([-30.0, 45.0]), fill=0.0)
    centre = (..., slice(10, 22), slice(10, 22))
    assert_allclose(back[centre], X[centre], atol=0.02)
    assert not np.allclose(there[centre], X[centre], atol=0.1)


def test_rotation_fills_corners_and_keeps_non_square_shape():
    X = np.ones((1, 1, 9, 13))
    Y = _rotate(X, np.array([45.0]), fill=-1.0)
    assert Y.shape == X.shape
    assert_array_equal(Y[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]], -1.0)
    assert Y[0, 0, 4, 6] == 1.0


def test_rotation_uses_the_seeded_angles():
    X = _batch((1, 6, 8), n=5)
    Y = RandomRotation(max_degrees=25.0, fill=0.2).apply(X, np.random.default_rng(4))
    angles = np.random.default_rng(4).uniform(-25.0, 25.0, size=5)
    assert np.all(np.abs(angles) > 0.5)
    assert_array_equal(Y, _rotate(X, angles, fill=0.2))


# --- crops -------------------------------------------------------------------


def test_crop_of_the_whole_image_is_identity():
    X = _batch((3, 5, 7), n=10)
    assert_array_equal(RandomCrop(scale=(1, 1)).apply(X, 0), X)


@pytest.mark.parametrize("axis", [-2, -1])
def test_crop_of_a_quarter_doubles_a_ramp(axis):
    # A quarter of the area is half of each side: resized back, the steps of
    # a linear ramp halve (bilinear interpolation of a ramp is exact).
    H, W = 12, 16
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    ramp = y if axis == -2 else x
    X = np.repeat(ramp[None, None], 50, axis=0)
    Y = RandomCrop(scale=(0.25, 0.25)).apply(X, 7)
    steps = np.diff(Y, axis=axis)
    interior = steps[..., 1:-1, :] if axis == -2 else steps[..., :, 1:-1]
    assert_allclose(interior, 0.5, atol=1e-9)
    other = -1 if axis == -2 else -2
    assert_allclose(np.diff(Y, axis=other), 0.0, atol=1e-12)
    assert Y.min() >= 0 and Y.max() <= (H if axis == -2 else W) - 1
    assert np.ptp(Y[:, 0, 0, 0]) > 1  # the crop's position is random


# --- shears and zooms ---------------------------------------------------------


def _dot(shape, row, col):
    """A batch of one image, zero but for a 1 at (row, col) of every channel."""
    X = np.zeros((1,) + shape)
    X[..., row, col] = 1.0
    return X


@pytest.mark.parametrize("angle, row, col, expected", [
    # 7x7, centre (3, 3); tan(45) = 1: a pixel d rows below the centre moves
    # d columns right, one above moves left, the centre row stays.
    (45.0, 5, 3, (5, 5)),
    (45.0, 1, 3, (1, 1)),
    (45.0, 3, 2, (3, 2)),
    (-45.0, 5, 3, (5, 1)),
    (-45.0, 0, 4, None),  # to column 7, out of the image: all fill
    (0.0, 6, 6, (6, 6)),
])
def test_shear_moves_a_bright_pixel_where_the_map_says(angle, row, col, expected):
    X = _dot((2, 7, 7), row, col)
    Y = _shear(X, np.array([angle]), fill=0.0)
    if expected is None:
        assert_allclose(Y, 0.0, atol=1e-12)
    else:
        assert_allclose(Y, _dot((2, 7, 7), *expected), atol=1e-12)


def test_shear_by_a_fractional_offset_splits_the_pixel():
    # tan = 0.25 and 2 rows below the centre: half a column to the right.
    X = _dot((1, 9, 9), 6, 4)
    Y = _shear(X, np.array([np.rad2deg(np.arctan(0.25))]), fill=0.0)
    expected = np.zeros((1, 1, 9, 9))
    expected[0, 0, 6, 4] = expected[0, 0, 6, 5] = 0.5
    assert_allclose(Y, expected, atol=1e-12)


def test_shear_fills_the_uncovered_corners():
    X = np.ones((1, 1, 5, 5))
    Y = _shear(X, np.array([45.0]), fill=-2.0)
    # Bottom-left and top-right read beyond the source: fill only.
    assert Y[0, 0, 4, 0] == -2.0 and Y[0, 0, 0, 4] == -2.0
    assert_array_equal(Y[0, 0, 2], 1.0)  # the centre row is unmoved


def test_shear_uses_the_seeded_angles():
    X = _batch((1, 6, 8), n=5)
    Y = RandomShear(max_degrees=20.0, fill=0.3).apply(X, np.random.default_rng(4))
    angles = np.random.default_rng(4).uniform(-20.0, 20.0, size=5)
    assert np.ptp(angles) > 30  # angles of both signs, far apart
    assert_array_equal(Y, _shear(X, angles, fill=0.3))
    assert not np.allclose(Y[0], X[0], atol=0.01)
    assert_array_equal(RandomShear(max_degrees=0.0).apply(X, 0), X)


@pytest.mark.parametrize("factor, row, col, expected", [
    # 9x9, centre (4, 4): a pixel's offset from the centre is multiplied by
    # the factor (zoom out by 2: offset 4 -> 2; zoom in by 2: 1 -> 2).
    (0.5, 8, 4, (6, 4)),
    (0.5, 0, 2, (2, 3)),
    (2.0, 3, 5, (2, 6)),
    (2.0, 5, 4, (6, 4)),
    (1.0, 1, 7, (1, 7)),
])
def test_zoom_moves_a_bright_pixel_where_the_map_says(factor, row, col, expected):
    X = _dot((1, 9, 9), row, col)
    Y = _zoom(X, np.array([factor]), fill=0.0)
    assert Y[0, 0][expected] == pytest.approx(1.0, abs=1e-12)
    if factor <= 1:
        # Zooming out reads every other source pixel: the dot, on one of
        # them, lands on exactly one output pixel.
        assert_allclose(Y, _dot((1, 9, 9), *expected), atol=1e-12)
    else:
        # Zooming in spreads it over its neighbours, bilinearly.
        assert Y[0, 0].sum() > 1.5


def test_zoom_out_shrinks_the_image_and_fills_around_it():
    X = np.ones((1, 1, 9, 9))
    Y = _zoom(X, np.array([0.5]), fill=-1.0)
    # Offsets -4..4 shrink to -2..2: rows and columns 2..6 stay ones, the
    # border reads beyond the source (offsets +-6, +-8): fill.
    assert_allclose(Y[0, 0, 2:7, 2:7], 1.0, atol=1e-12)
    for edge in (Y[0, 0, 0], Y[0, 0, -1], Y[0, 0, :, 0], Y[0, 0, :, -1]):
        assert_array_equal(edge, -1.0)


def test_zoom_in_of_a_ramp_halves_its_steps():
    y, x = np.mgrid[0:10, 0:12].astype(np.float64)
    X = np.stack([x, y])[None]  # (1, 2, 10, 12)
    Y = _zoom(X, np.array([2.0]), fill=0.0)
    # Output offset v from the centre reads the source at v / 2.
    assert_allclose(np.diff(Y[0, 0], axis=1), 0.5, atol=1e-12)
    assert_allclose(np.diff(Y[0, 1], axis=0), 0.5, atol=1e-12)
    assert_allclose(Y[0, 0].mean(), x.mean(), atol=1e-12)


def test_zoom_uses_the_seeded_factors_in_and_out():
    X = _batch((2, 6, 6), n=200)
    Y = RandomZoom(scale=(0.5, 2.0), fill=0.0).apply(X, np.random.default_rng(3))
    factors = np.random.default_rng(3).uniform(0.5, 2.0, size=200)
    assert factors.min() < 0.6 and factors.max() > 1.9
    assert_array_equal(Y, _zoom(X, factors, fill=0.0))
    assert_array_equal(RandomZoom(scale=(1, 1)).apply(X, 0), X)


# --- noise and scaling -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("std", [0.05, 0.3, 2.0])
def test_noise_has_the_requested_std_and_zero_mean(dtype, std):
    X = np.full((400, 500), 3.0, dtype=dtype)
    noise = GaussianNoise(std=std).apply(X, 0).astype(np.float64) - 3.0
    assert noise.std() == pytest.approx(std, rel=0.01)
    assert abs(noise.mean()) < 5 * std / np.sqrt(noise.size)
    assert not np.array_equal(noise[0], noise[1])  # each sample its own draw


def test_zero_noise_is_identity():
    X = _batch((2, 5))
    assert_array_equal(GaussianNoise(std=0.0).apply(X, 0), X)


def test_scale_multiplies_each_sample_by_one_factor():
    X = _batch((3, 4), n=200) + 0.5
    Y = RandomScale(low=0.5, high=2.0).apply(X, 0)
    ratios = (Y / X).reshape(200, -1)
    assert_allclose(ratios, np.broadcast_to(ratios[:, :1], ratios.shape), rtol=1e-12)
    assert ratios.min() >= 0.5 and ratios.max() <= 2.0
    assert ratios.min() < 0.6 and ratios.max() > 1.9


def test_fixed_scale_is_exact():
    X = _batch((6,))
    assert_array_equal(RandomScale(low=2.0, high=2.0).apply(X, 0), 2.0 * X)


# --- time shifts -------------------------------------------------------------


@pytest.mark.parametrize("sample_shape", [(2, 6), (6,)])
@pytest.mark.parametrize("fill", [-1.0, "wrap"])
def test_time_shift_matches_slicing_and_covers_the_range(sample_shape, fill):
    base = np.arange(1.0, np.prod(sample_shape) + 1).reshape(sample_shape)
    X = np.repeat(base[None], 200, axis=0)
    Y = RandomTimeShift(max_shift=2, fill=fill).apply(X, 0)
    options = {}
    for d in range(-2, 3):
        if fill == "wrap":
            options[d] = np.roll(base, d, axis=-1)
        else:
            options[d] = _shifted(base[None], 0, d, fill)[0]
    seen = [_matches(y, options) for y in Y]
    assert all(len(m) == 1 for m in seen)
    assert {m[0] for m in seen} == set(options)


def test_time_shift_zero_is_identity():
    X = _batch((3, 10))
    assert_array_equal(RandomTimeShift(max_shift=0).apply(X, 0), X)


# --- properties shared by every augmenter ------------------------------------


@pytest.mark.parametrize("augmenter, sample_shape", CASES, ids=CASE_IDS)
def test_same_seed_same_batch_other_seed_other_batch(augmenter, sample_shape):
    augmenter.check_input_shape(sample_shape)
    X = _batch(sample_shape)
    first = augmenter.apply(X, np.random.default_rng(11))
    again = augmenter.apply(X, np.random.default_rng(11))
    other = augmenter.apply(X, np.random.default_rng(12))
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("augmenter, sample_shape", CASES, ids=CASE_IDS)
def test_input_is_never_modified_and_may_be_read_only(augmenter, sample_shape):
    X = _batch(sample_shape)
    original = X.copy()
    X.setflags(write=False)
    Y = augmenter.apply(X, np.random.default_rng(0))
    assert_array_equal(X, original)
    assert Y.flags.writeable and not np.shares_memory(X, Y)
    Y[...] = 0  # the result is the caller's to change
    assert_array_equal(X, original)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("augmenter, sample_shape", CASES, ids=CASE_IDS)
def test_shape_and_dtype_are_kept(augmenter, sample_shape, dtype):
    X = _batch(sample_shape, dtype=dtype)
    Y = augmenter.apply(X, np.random.default_rng(0))
    assert Y.shape == X.shape and Y.dtype == dtype


@pytest.mark.parametrize("augmenter", IMAGE_AUGMENTERS + SIGNAL_AUGMENTERS + [RandomScale()],
                         ids=lambda a: type(a).__name__)
def test_channels_of_a_sample_move_together(augmenter):
    shape = (3, 6, 6) if not isinstance(augmenter, RandomTimeShift) else (3, 9)
    one = _batch((1,) + shape[1:], n=40)
    X = np.repeat(one, 3, axis=1)
    Y = augmenter.apply(X, np.random.default_rng(0))
    assert_array_equal(Y[:, 1], Y[:, 0])
    assert_array_equal(Y[:, 2], Y[:, 0])
    # One channel given with or without its channel axis: same result.
    without_axis = augmenter.apply(one[:, 0], np.random.default_rng(0))
    assert_array_equal(without_axis, Y[:, 0])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3), C=st.integers(1, 3), H=st.integers(1, 6), W=st.integers(1, 6),
       which=st.integers(0, len(IMAGE_AUGMENTERS) + 1))
def test_fuzzed_image_shapes(n, C, H, W, which):
    augmenter = [RandomFlip(True, True), RandomShift(max_shift=0),
                 RandomRotation(), RandomCrop(), RandomShear(), RandomZoom(),
                 GaussianNoise(), RandomScale(), RandomRotation90()][which]
    if isinstance(augmenter, RandomRotation90):
        W = H
    augmenter.check_input_shape((C, H, W))
    X = _batch((C, H, W), n=n, dtype=np.float32)
    Y = augmenter.apply(X, np.random.default_rng(0))
    assert Y.shape == X.shape and Y.dtype == X.dtype
    assert np.all(np.isfinite(Y))


@pytest.mark.parametrize("augmenter, sample_shape", CASES, ids=CASE_IDS)
def test_clone_keeps_the_parameters(augmenter, sample_shape):
    copy = clone(augmenter)
    assert copy is not augmenter and type(copy) is type(augmenter)
    assert copy.get_params() == augmenter.get_params()
    X = _batch(sample_shape)
    assert_array_equal(copy.apply(X, 3), augmenter.apply(X, 3))


def test_parameters_are_stored_unchanged_and_settable():
    shift = [1, 2]
    a = RandomShift(max_shift=shift, fill=0.5)
    assert a.max_shift is shift
    a.check_input_shape((4, 4))
    assert a.max_shift is shift
    a.set_params(max_shift=3)
    assert a.get_params() == {"max_shift": 3, "fill": 0.5}
    assert RandomRotation90().get_params() == {}


def test_augmenter_is_abstract():
    with pytest.raises(TypeError):
        Augmenter()


def test_integer_batches_are_refused():
    with pytest.raises(TypeError, match="floating-point"):
        GaussianNoise().apply(np.zeros((2, 3), dtype=np.int64), 0)


# --- validation --------------------------------------------------------------


@pytest.mark.parametrize("augmenter, sample_shape, match", [
    (GaussianNoise(std=-0.1), (5,), "std"),
    (RandomScale(low=1.5, high=1.0), (5,), "low must be <= high"),
    (RandomScale(low="a"), (5,), "low"),
    (RandomFlip(probability=1.5), (4, 4), "probability"),
    (RandomFlip(horizontal="yes"), (4, 4), "horizontal"),
    (RandomShift(max_shift=-1), (4, 4), "max_shift"),
    (RandomShift(max_shift=(1, -1)), (4, 4), "max_shift must be >= 0"),
    (RandomShift(max_shift=(1, 2, 3)), (4, 4), "max_shift must be an int or a pair"),
    (RandomShift(max_shift=(1.5, 1)), (4, 4), "max_shift must be an int or a pair"),
    (RandomShift(fill="edge"), (4, 4), "fill"),
    (RandomRotation(max_degrees=-5), (4, 4), "max_degrees"),
    (RandomRotation(max_degrees=200), (4, 4), "max_degrees"),
    (RandomCrop(scale=(0.0, 1.0)), (4, 4), "scale must be a pair"),
    (RandomCrop(scale=(0.5, 1.2)), (4, 4), "scale must be a pair"),
    (RandomCrop(scale=(0.9, 0.5)), (4, 4), "scale must be a pair"),
    (RandomCrop(scale=(0.5,)), (4, 4), "scale must be a pair"),
    (RandomCrop(scale=0.5), (4, 4), "scale"),
    (RandomTimeShift(max_shift=-2), (10,), "max_shift"),
    (RandomTimeShift(fill="reflect"), (10,), "fill"),
    (RandomShear(max_degrees=-1), (4, 4), "max_degrees"),
    (RandomShear(max_degrees=85), (4, 4), "max_degrees"),
    (RandomShear(fill="edge"), (4, 4), "fill"),
    (RandomZoom(scale=(0.0, 1.0)), (4, 4), "scale must be a pair"),
    (RandomZoom(scale=(1.2, 0.8)), (4, 4), "scale must be a pair"),
    (RandomZoom(scale=(0.5, np.inf)), (4, 4), "scale must be a pair"),
    (RandomZoom(scale=(0.5, 1, 2)), (4, 4), "scale must be a pair"),
    (RandomZoom(scale=1.2), (4, 4), "scale"),
    (RandomZoom(fill=None), (4, 4), "fill"),
])
def test_bad_parameters_raise(augmenter, sample_shape, match):
    with pytest.raises(ValueError, match=match):
        augmenter.check_input_shape(sample_shape)


@pytest.mark.parametrize("augmenter, sample_shape, match", [
    (RandomShift(max_shift=3), (1, 3, 10),
     (r"RandomShift cannot act on samples of shape \(1, 3, 10\): max_shift=3 must be "
      r"smaller than the image \(height 3, width 10\)")),
    (RandomShift(max_shift=(0, 4)), (4, 4), "smaller than the image"),
    (RandomRotation90(), (1, 3, 4),
     (r"RandomRotation90 cannot act on samples of shape \(1, 3, 4\): 90-degree rotations "
      r"need square images")),
    (RandomFlip(), (10,), r"RandomFlip cannot act on samples of shape \(10,\): needs image"),
    (RandomRotation(), (2, 3, 4, 5), "RandomRotation .* needs image samples"),
    (RandomCrop(), (8,), "RandomCrop .* needs image samples"),
    (RandomShear(), (8,), "RandomShear .* needs image samples"),
    (RandomZoom(), (2, 3, 4, 5), "RandomZoom .* needs image samples"),
    (RandomTimeShift(), (1, 28, 28),
     r"RandomTimeShift cannot act on samples of shape \(1, 28, 28\): needs signal samples"),
    (RandomTimeShift(max_shift=5), (2, 5), "max_shift=5 must be smaller than the signal length 5"),
])
def test_bad_shapes_raise(augmenter, sample_shape, match):
    with pytest.raises(ValueError, match=match):
        augmenter.check_input_shape(sample_shape)


@pytest.mark.parametrize("augmenter, sample_shape", [
    (RandomShift(max_shift=(2, 0)), (3, 1)),
    (RandomShift(max_shift=0), (1, 1)),
    (RandomRotation90(), (3, 3)),
    (RandomTimeShift(max_shift=4), (5,)),
    (GaussianNoise(), ()),
    (GaussianNoise(), (2, 3, 4, 5)),
    (RandomScale(), (4, 4)),
])
def test_good_shapes_pass(augmenter, sample_shape):
    augmenter.check_input_shape(sample_shape)
    X = _batch(sample_shape, n=4)
    assert augmenter.apply(X, 0).shape == X.shape


# --- helpers for the estimators ----------------------------------------------


def test_check_augment_normalizes():
    flip, noise = RandomFlip(), GaussianNoise()
    assert check_augment(None, (1, 4, 4)) == []
    single = check_augment(flip, (1, 4, 4))
    assert len(single) == 1 and single[0] is flip
    for augment in ([flip, noise], (flip, noise)):
        out = check_augment(augment, (1, 4, 4))
        assert isinstance(out, list) and out[0] is flip and out[1] is noise
    assert check_augment([], (5,)) == []


@pytest.mark.parametrize("augment, match", [
    ("flip", r"augment must be None, an Augmenter or a list of Augmenters, got 'flip'"),
    (RandomFlip, "augment must be None"),
    ({RandomFlip()}, "augment must be None"),
    ([RandomFlip(), "noise"], r"augment\[1\] must be an Augmenter.*'noise'"),
    ((None,), r"augment\[0\] must be an Augmenter"),
])
def test_check_augment_type_errors(augment, match):
    with pytest.raises(TypeError, match=match):
        check_augment(augment, (1, 4, 4))


def test_check_augment_checks_every_shape():
    with pytest.raises(ValueError, match="RandomRotation90 cannot act"):
        check_augment([RandomFlip(), RandomRotation90()], (1, 4, 5))
    with pytest.raises(ValueError, match="std"):
        check_augment(GaussianNoise(std=-1), (3,))


def test_apply_augmenters_in_order_with_one_generator():
    X = _batch((1, 6, 6), n=16)
    assert apply_augmenters([], X, np.random.default_rng(0)) is X
    first, second = RandomRotation(30.0), GaussianNoise(0.1)
    rng = np.random.default_rng(9)
    by_hand = second.apply(first.apply(X, rng), rng)
    Y = apply_augmenters([first, second], X, np.random.default_rng(9))
    assert Y.tobytes() == by_hand.tobytes()
    swapped = apply_augmenters([second, first], X, np.random.default_rng(9))
    assert not np.allclose(Y, swapped)
