"""The window geometry of convolutions and pools (skdl._ops.Window) for 1, 2
and 3 spatial axes: parsing, errors, output sizes, what the kernels get, and
the kernels on a rank-3 window (no layer takes volumes yet: the kernels are
rank-generic, so a Conv3D would need only its layer spec)."""
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from _threads import one_thread, two_threads
from skdl import Conv1D, _ops, _reference
from skdl._network import build_layers

Window = _ops.Window


@pytest.mark.parametrize("in_shape, size, strides, padding, dilation, out_shape", [
    ((10,), 3, 1, None, 1, (8,)),
    ((10,), (3,), (2,), ((1, 2),), (2,), (5,)),
    ((7, 8), 3, (2, 1), ((1, 1), (0, 2)), 1, (4, 8)),
    ((5, 6, 7), (2, 3, 1), (1, 2, 3), ((0, 1), (1, 1), (0, 0)), (2, 1, 1), (4, 3, 3)),
    ((4, 4, 4), 4, 1, None, 1, (1, 1, 1)),
])
def test_output_shape_of_every_rank(in_shape, size, strides, padding, dilation,
                                    out_shape):
    window = Window.of(in_shape, size, strides, padding, dilation)
    assert window.rank == len(in_shape)
    assert window.out_shape == out_shape
    # Each axis by the documented rule: floor((size + pads - span) / stride) + 1.
    for n, k, s, (a, b), d, o in zip(window.in_shape, window.size, window.strides,
                                     window.padding, window.dilation, out_shape):
        assert (n + a + b - (k - 1) * d - 1) // s + 1 == o


def test_layer_forms_of_padding():
    same = Window.of((10, 7, 5), 3, (2, 1, 3), "same", 1, layer=True)
    assert same.out_shape == (5, 7, 2)  # ceil(size / stride)
    assert same.padding == ((0, 1), (1, 1), (0, 1))  # the odd one after
    assert Window.of((9,), 3, padding="valid", layer=True).padding == ((0, 0),)
    assert Window.of((9,), 3, padding=2, layer=True).padding == ((2, 2),)
    assert Window.of((9,), 3, padding=[(2, 1)], layer=True).padding == ((2, 1),)
    assert Window.of((9, 9, 9), 3, padding=(1, (0, 2), 0), layer=True).padding == (
        (1, 1), (0, 2), (0, 0))


def test_a_pools_strides_default_to_its_size():
    window = Window.of((8, 6, 4), (2, 3, 4), None, what="pool")
    assert window.strides == (2, 3, 4) and window.out_shape == (4, 2, 1)


def test_checked_once_and_hashable():
    window = Window.of((7, 8), 3, 1, ((1, 1), (1, 1)))
    assert Window.of((7, 8), 3, 1, ((1, 1), (1, 1))) is window  # memoized
    assert Window.of([7, 8], [3, 3], [1, 1], [[1, 1], [1, 1]]) == window  # lists too
    assert hash(window) == hash(pickle.loads(pickle.dumps(window)))
    with pytest.raises(AttributeError):
        window.size = (2, 2)


def test_kernel_args_are_right_aligned_in_three_axes():
    window = Window.of((9,), 3, 2, ((1, 0),), 2)
    # rank, input, output, size, strides, leading padding, dilation
    assert window.kernel_args() == (1, 1, 1, 9, 1, 1, 3, 1, 1, 3, 1, 1, 2, 0, 0, 1,
                                    1, 1, 2)
    volume = Window.of((4, 5, 6), (1, 2, 3))
    assert volume.kernel_args()[:7] == (3, 4, 5, 6, 4, 4, 4)


@pytest.mark.parametrize("args, kwargs, message", [
    (((5, 5), (3, 3, 3)), dict(layer=True), "kernel_size must be a positive int or 2"),
    (((5, 5), 3, 0), {}, r"strides must be positive ints \(height, width\)"),
    (((5,), 3, 1, None, (1, 1)), dict(layer=True), "dilation must be a positive int or 1"),
    (((5, 5, 5), 0), dict(what="pool"), r"pool_size must be positive ints \(depth"),
    (((5,), 3, 1, 1), {}, r"padding must be \(\(before, after\),\)"),
    (((5, 5), 3, 1, 1), {}, r"padding must be \(\(top, bottom\), \(left, right\)\)"),
    (((5, 5), 3, 1, ((0, -1), (0, 0))), {}, "padding must be non-negative"),
    (((5, 5), 3, 1, "full"), dict(layer=True), "padding must be 'valid', 'same' or ints"),
    (((5, 5), 3, 1, (1, 1, 1)), dict(layer=True), "padding needs one entry per spatial"),
    (((5,), 3, 1, (-1,)), dict(layer=True), "padding must hold non-negative ints"),
    (((5, 5), 2, 2, ((2, 0), (0, 0))), dict(what="pool"),
     "must be smaller than the pool size"),
    (((4, 4, 2), 3), {}, r"kernel spans 3 positions \(size 3, dilation 1\) but the "
                         r"padded input has only 2"),
    (((2, 2, 2, 2), 1), {}, "1 to 3 spatial axes"),
    (((), 1), {}, "1 to 3 spatial axes"),
])
def test_bad_geometry_is_a_clear_error(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Window.of(*args, **kwargs)


def test_fits_names_the_mismatch():
    window = Window.of((6, 6), 3)
    assert window.fits((6, 6), (3, 3)) is window
    with pytest.raises(ValueError, match=r"checked for inputs of spatial shape \(6, 6\)"):
        window.fits((6,), (3,))


def test_conv1d_runs_on_signals_with_a_rank_1_window():
    layer = build_layers([Conv1D(3, 4, strides=2, padding="same")], (2, 11),
                         np.float64)[0]
    assert layer.window.rank == 1 and layer.planes == (2, 11)
    assert layer.window.out_shape == (6,) and layer.output_shape == (3, 6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_rank_1_window_computes_what_a_height_1_image_did(dtype):
    # Conv1D used to run as an image of height 1; the signal path gives the
    # same numbers bit for bit (the same sums in the same order).
    rng = np.random.RandomState(0)
    X, K, dY = (rng.randn(5, 3, 20).astype(dtype), rng.randn(4, 3, 3).astype(dtype),
                rng.randn(5, 4, 10).astype(dtype))
    line = dict(strides=2, padding=((2, 1),), dilation=2)
    image = dict(strides=(1, 2), padding=((0, 0), (2, 1)), dilation=(1, 2))
    pairs = [
        (_ops.conv2d_forward(X, K, **line),
         _ops.conv2d_forward(X[:, :, None], K[:, :, None], **image)[:, :, 0]),
        (_ops.conv2d_backward_input(dY, K, (20,), **line),
         _ops.conv2d_backward_input(dY[:, :, None], K[:, :, None], (1, 20),
                                    **image)[:, :, 0]),
        (_ops.conv2d_backward_params(X, dY, kernel_hw=3, **line)[0],
         _ops.conv2d_backward_params(X[:, :, None], dY[:, :, None], kernel_hw=(1, 3),
                                     **image)[0][:, :, 0]),
        (_ops.maxpool2d_forward(X, 3, 2, ((1, 1),))[0],
         _ops.maxpool2d_forward(X[:, :, None], (1, 3), (1, 2), ((0, 0), (1, 1)))[0][:, :, 0]),
        (_ops.avgpool2d_forward(X, 3, 2, ((1, 1),)),
         _ops.avgpool2d_forward(X[:, :, None], (1, 3), (1, 2), ((0, 0), (1, 1)))[:, :, 0]),
    ]
    for signal, image_result in pairs:
        assert_array_equal(signal, image_result)


VOLUMES = [
    dict(),
    dict(strides=(1, 2, 1), padding=((1, 0), (0, 1), (1, 1))),
    dict(strides=2, dilation=(1, 2, 2), padding=((0, 1), (2, 2), (1, 0))),
]


@pytest.mark.parametrize("geometry", VOLUMES)
def test_rank_3_convolution_kernels_match_numpy(geometry, unfolding):
    rng = np.random.RandomState(1)
    X, K = rng.randn(3, 2, 5, 6, 7), rng.randn(4, 2, 2, 3, 2)
    b, w = rng.randn(4), rng.rand(3)
    Y = _ops.conv2d_forward(X, K, b, activation="tanh", **geometry)
    assert_allclose(Y, _reference.conv2d_forward(X, K, b, activation="tanh", **geometry),
                    rtol=1e-12, atol=1e-12)
    dY = rng.randn(*Y.shape)
    assert_allclose(_ops.conv2d_backward_input(dY, K, X.shape[2:], **geometry),
                    _reference.conv2d_backward_input(dY, K, X.shape[2:], **geometry),
                    rtol=1e-12, atol=1e-12)
    for got, want in zip(
            _ops.conv2d_backward_params(X, dY, w, 0.5, None, K.shape[2:], **geometry),
            _reference.conv2d_backward_params(X, dY, w, 0.5, None, K.shape[2:],
                                              **geometry)):
        assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_rank_3_convolution_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(2)
    X, K, b = rng.randn(2, 3, 6, 5, 7), rng.randn(4, 3, 3, 2, 3), rng.randn(4)
    # torch pads both sides alike: symmetric padding here.
    ours = _ops.conv2d_forward(X, K, b, strides=(2, 1, 2), dilation=(1, 2, 1),
                               padding=((1, 1), (0, 0), (2, 2)))
    theirs = torch.nn.functional.conv3d(torch.from_numpy(X), torch.from_numpy(K),
                                        torch.from_numpy(b), stride=(2, 1, 2),
                                        padding=(1, 0, 2), dilation=(1, 2, 1))
    assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool, strides, padding", [
    (2, None, None),
    ((2, 3, 2), (1, 2, 1), ((1, 0), (0, 2), (1, 1))),
])
def test_rank_3_pooling_kernels_match_numpy(pool, strides, padding):
    rng = np.random.RandomState(3)
    X = rng.permutation(2 * 3 * 5 * 6 * 7).reshape(2, 3, 5, 6, 7).astype(np.float64)
    Y, argmax = _ops.maxpool2d_forward(X, pool, strides, padding)
    Y_ref, argmax_ref = _reference.maxpool2d_forward(X, pool, strides, padding)
    assert_array_equal(Y, Y_ref)
    assert_array_equal(argmax, argmax_ref)
    dY = rng.randn(*Y.shape)
    assert_allclose(_ops.maxpool2d_backward(dY, argmax, X.shape[2:]),
                    _reference.maxpool2d_backward(dY, argmax_ref, X.shape[2:]),
                    rtol=1e-13, atol=1e-13)
    assert_allclose(_ops.avgpool2d_forward(X, pool, strides, padding),
                    _reference.avgpool2d_forward(X, pool, strides, padding), rtol=1e-13)
    assert_allclose(_ops.avgpool2d_backward(dY, X.shape[2:], pool, strides, padding),
                    _reference.avgpool2d_backward(dY, X.shape[2:], pool, strides, padding),
                    rtol=1e-13, atol=1e-13)


def test_rank_3_kernels_give_one_result_for_any_thread_count(unfolding):
    rng = np.random.RandomState(4)
    # 140 planes: pools split their planes in blocks of 64.
    X, K = rng.randn(70, 2, 4, 5, 6).astype(np.float32), rng.randn(3, 2, 2, 2, 3).astype(
        np.float32)
    geometry = dict(strides=(1, 2, 1), padding=((1, 1), (0, 1), (1, 0)))
    results = []
    for threads in (one_thread, two_threads):
        with threads():
            Y = _ops.conv2d_forward(X, K, **geometry)
            dY = np.cos(Y)
            P, argmax = _ops.maxpool2d_forward(X, 2, 1, ((1, 0), (0, 0), (0, 1)))
            results.append([Y, _ops.conv2d_backward_input(dY, K, X.shape[2:], **geometry),
                            *_ops.conv2d_backward_params(X, dY, None, 1.0, None, (2, 2, 3),
                                                         **geometry),
                            P, argmax, _ops.maxpool2d_backward(P, argmax, X.shape[2:]),
                            _ops.avgpool2d_forward(X, 3, 2, ((1, 1),) * 3)])
    for one, two in zip(*results):
        assert_array_equal(one, two)


def test_a_conv1d_pickled_with_a_height_1_window_gets_its_rank_1_window():
    # Layers pickled before windows had any rank held a Conv1D's geometry as
    # a (1, k) window over (C, 1, L) planes.
    layer = build_layers([Conv1D(2, 3, strides=2, padding=1)], (3, 9), np.float64)[0]
    layer.params = {"kernel": np.ones((2, 3, 3)), "bias": np.zeros(2)}
    state = dict(layer.__dict__)
    old = Window.of((1, 9), (1, 3), (1, 2), ((0, 0), (1, 1)), (1, 1))
    state.update(window=old, planes=(3, 1, 9), kernel_hw=(1, 3), out_hw=(1, 5))
    loaded = object.__new__(type(layer))
    loaded.__setstate__(state)
    assert loaded.window == layer.window and loaded.planes == (3, 9)
    assert loaded.kernel_hw == (3,) and not hasattr(loaded, "out_hw")
    X = np.random.RandomState(5).randn(2, 3, 9)
    assert_array_equal(loaded.forward(X), layer.forward(X))
