"""Optimizers: names, validation, state, kernels against their numpy twins,
clipping, weight decay, the momentum ramp, the finiteness flag, threads,
convergence, the L1/L2 penalty, and search through the estimator."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from _threads import one_thread, two_threads
from skdl import Dense, NNRegressor, _ops, _reference
from skdl._optimizers import (
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    RMSprop,
    resolve_optimizer,
)

DTYPES = [np.float32, np.float64]
# Two full chunks of the kernels (16384) and a ragged third.
N = 40000


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12,
                                                                        atol=1e-13)


# -- names and parameters -------------------------------------------------------
@pytest.mark.parametrize("name, cls, params", [
    ("sgd", SGD, dict(momentum=0.0, nesterov=False, initial_momentum=None)),
    ("momentum", SGD, dict(momentum=0.9, nesterov=False)),
    ("nesterov", SGD, dict(momentum=0.9, nesterov=True)),
    ("adagrad", Adagrad, dict(epsilon=1e-7, initial_accumulator=0.1)),
    ("rmsprop", RMSprop, dict(rho=0.9, epsilon=1e-7, momentum=0.0)),
    ("adadelta", Adadelta, dict(rho=0.95, epsilon=1e-6)),
    ("adam", Adam, dict(beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0)),
    ("adamax", Adamax, dict(beta1=0.9, beta2=0.999, epsilon=1e-7)),
    ("adamw", AdamW, dict(beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01)),
])
def test_names(name, cls, params):
    opt = resolve_optimizer(name)
    assert type(opt) is cls
    assert {k: opt.get_params()[k] for k in params} == params
    assert opt.get_params()["clipnorm"] is None and opt.get_params()["clipvalue"] is None
    assert resolve_optimizer(name) is not opt  # a fresh spec each time


def test_every_optimizer_has_a_name():
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                               "adadelta", "adam", "adamax", "adamw"}
    assert {type(f()) for f in OPTIMIZERS.values()} == {
        SGD, Adagrad, RMSprop, Adadelta, Adam, Adamax, AdamW}


def test_unknown_names_and_types():
    with pytest.raises(ValueError, match="Unknown optimizer 'lbfgs'"):
        resolve_optimizer("lbfgs")
    with pytest.raises(TypeError, match="optimizer must be a name"):
        resolve_optimizer(3)


@pytest.mark.parametrize("spec, name", [
    (SGD(momentum=1.0), "momentum"),
    (SGD(nesterov="yes"), "nesterov"),
    (SGD(initial_momentum=1.2), "initial_momentum"),
    (SGD(momentum_ramp_epochs=-1), "momentum_ramp_epochs"),
    (SGD(momentum_ramp_epochs=2.5), "momentum_ramp_epochs"),
    (Adagrad(epsilon=0), "epsilon"),
    (Adagrad(initial_accumulator=-0.1), "initial_accumulator"),
    (RMSprop(rho=1.0), "rho"),
    (RMSprop(momentum=-0.1), "momentum"),
    (Adadelta(rho=1.5), "rho"),
    (Adadelta(epsilon=-1e-6), "epsilon"),
    (Adam(epsilon=0), "epsilon"),
    (Adam(beta1=1.5), "beta1"),
    (Adamax(beta2=1.0), "beta2"),
    (AdamW(weight_decay=-0.01), "weight_decay"),
    (Adam(clipnorm=0.0), "clipnorm"),
    (SGD(clipvalue=-1.0), "clipvalue"),
    (RMSprop(clipvalue="big"), "clipvalue"),
])
def test_bad_parameters_are_named(spec, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of "
                                                    f"{type(spec).__name__}"):
        resolve_optimizer(spec)


def test_bad_parameters_through_the_estimator():
    X, y = make_regression(30, 3, random_state=0)
    with pytest.raises(InvalidParameterError, match="beta1"):
        NNRegressor(optimizer=Adamax(beta1=2.0), max_iter=1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="clipnorm"):
        NNRegressor(optimizer=RMSprop(clipnorm=-1.0), max_iter=1).fit(X, y)


def test_specs_hold_no_state_and_clone():
    for factory in OPTIMIZERS.values():
        opt = factory()
        before = dict(vars(opt))
        params = np.ones(10)
        state = opt.init_state(params)
        assert opt.step(params, np.ones(10), state, 0.1, 1)
        assert vars(opt) == before
        twin = clone(opt)
        assert twin.get_params() == opt.get_params() and twin is not opt


def test_init_state():
    params = np.zeros(5, np.float32)
    state = Adagrad(initial_accumulator=0.3).init_state(params)
    assert list(state) == ["accumulator"]
    assert state["accumulator"].dtype == np.float32
    assert_array_equal(state["accumulator"], np.float32(0.3))
    assert SGD().init_state(params) == {}  # plain SGD keeps no velocity
    assert list(SGD(momentum=0.5).init_state(params)) == ["velocity"]
    assert list(SGD(initial_momentum=0.0, momentum_ramp_epochs=3).init_state(params)) == [
        "velocity"]
    assert list(RMSprop().init_state(params)) == ["mean_square"]
    assert list(RMSprop(momentum=0.9).init_state(params)) == ["mean_square", "velocity"]
    assert list(Adadelta().init_state(params)) == ["mean_square_grad",
                                                   "mean_square_delta"]
    assert list(Adamax().init_state(params)) == ["m", "u"]


def test_missing_state_is_created_at_its_initial_value():
    # A warm start whose spec gained momentum between calls.
    opt = RMSprop()
    params = np.ones(6)
    state = opt.init_state(params)
    opt.set_params(momentum=0.5)
    expected, ref_state = params.copy(), {k: v.copy() for k, v in state.items()}
    ref_velocity = np.zeros(6)
    grads = np.linspace(-1, 1, 6)
    assert opt.step(params, grads, state, 0.01, 1)
    _reference.rmsprop_update(expected, grads, ref_state["mean_square"], ref_velocity,
                              0.01, 0.9, 1e-7, 0.5)
    assert_allclose(params, expected, rtol=1e-12)
    assert_allclose(state["velocity"], ref_velocity, rtol=1e-12)


# -- kernels against the numpy twins --------------------------------------------
def _reference_step(opt, params, grads, state, learning_rate, step, epoch, decay_mask):
    """The same step through skdl._reference, on copies of the state."""
    common = dict(weight_decay=opt.weight_decay, decay_mask=decay_mask,
                  clipnorm=opt.clipnorm, clipvalue=opt.clipvalue)
    if isinstance(opt, SGD):
        return _reference.sgd_update(params, grads, state.get("velocity"), learning_rate,
                                     opt.momentum_at(epoch), opt.nesterov, **common)
    if isinstance(opt, Adagrad):
        return _reference.adagrad_update(params, grads, state["accumulator"],
                                         learning_rate, opt.epsilon, **common)
    if isinstance(opt, RMSprop):
        return _reference.rmsprop_update(params, grads, state["mean_square"],
                                         state.get("velocity"), learning_rate, opt.rho,
                                         opt.epsilon, opt.momentum, **common)
    if isinstance(opt, Adadelta):
        return _reference.adadelta_update(params, grads, state["mean_square_grad"],
                                          state["mean_square_delta"], learning_rate,
                                          opt.rho, opt.epsilon, **common)
    if isinstance(opt, Adamax):
        return _reference.adamax_update(params, grads, state["m"], state["u"],
                                        learning_rate, opt.beta1, opt.beta2,
                                        opt.epsilon, step, **common)
    return _reference.adam_update(params, grads, state["m"], state["v"], learning_rate,
                                  opt.beta1, opt.beta2, opt.epsilon, step, **common)


SPECS = [
    SGD(), SGD(momentum=0.9), SGD(momentum=0.9, nesterov=True),
    SGD(momentum=0.9, initial_momentum=0.3, momentum_ramp_epochs=3),
    Adagrad(), RMSprop(), RMSprop(momentum=0.8), Adadelta(), Adam(), Adamax(), AdamW(),
]
# Each with a learning rate that moves it visibly in a few steps.
LEARNING_RATES = {SGD: 0.05, Adagrad: 0.05, RMSprop: 0.01, Adadelta: 1.0, Adam: 0.01,
                  AdamW: 0.01, Adamax: 0.01}
OPTIONS = {
    "plain": dict(),
    "decay_masked": dict(weight_decay=0.3),
    "clipnorm": dict(clipnorm=30.0),
    "clipvalue": dict(clipvalue=0.5),
    "all": dict(weight_decay=0.1, clipnorm=30.0, clipvalue=0.5),
}


def _ids(spec):
    return repr(spec).replace(" ", "").replace("\n", "")


def _run_against_reference(spec, dtype, options, n_steps=6, steps_per_epoch=2, seed=0):
    opt = clone(spec).set_params(**options)
    rng = np.random.RandomState(seed)
    params = rng.randn(N).astype(dtype)
    expected = params.copy()
    state = opt.init_state(params)
    ref_state = {k: v.copy() for k, v in state.items()}
    mask = None
    if "weight_decay" in options:  # own generator: the gradients stay the same
        mask = (np.random.RandomState(seed + 1).rand(N) < 0.7).astype(dtype)
    lr = LEARNING_RATES[type(opt)]
    for t in range(1, n_steps + 1):
        epoch = 1 + (t - 1) // steps_per_epoch
        grads = (rng.randn(N) * 2).astype(dtype)
        if "clipnorm" in options:  # the clip must be active to be tested
            assert _ops.gradient_norm(grads, opt.clipvalue) > opt.clipnorm
        copy = grads.copy()
        finite = opt.step(params, grads, state, lr, t, epoch=epoch, decay_mask=mask)
        ref_finite = _reference_step(opt, expected, grads, ref_state, lr, t, epoch, mask)
        assert finite is True and ref_finite is True
        assert_array_equal(grads, copy)  # clipping never writes the caller's gradient
    return params, expected, state, ref_state


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_steps_match_reference(spec, options, dtype):
    params, expected, state, ref_state = _run_against_reference(spec, dtype, options)
    start = np.random.RandomState(0).randn(N).astype(dtype)
    assert np.abs(params - start).max() > 1e-3  # the steps did move the parameters
    assert_allclose(params, expected, **_tol(dtype))
    assert state.keys() == ref_state.keys()
    for name in state:
        assert_allclose(state[name], ref_state[name], **_tol(dtype), err_msg=name)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_options_change_the_result(spec):
    # The reference test would pass if an option were ignored by both sides;
    # check each option does change the parameters.
    plain = _run_against_reference(spec, np.float64, {})[0]
    for name, options in OPTIONS.items():
        if name != "plain":
            changed = _run_against_reference(spec, np.float64, options)[0]
            assert np.abs(changed - plain).max() > 1e-6, name


def test_defaults_reproduce_the_plain_rules():
    # With no clipping and no decay the kernels compute the textbook rules:
    # written out here for SGD with Nesterov momentum and for Adam.
    rng = np.random.RandomState(1)
    p, g1, g2 = rng.randn(3, 50)
    params, state = p.copy(), SGD(momentum=0.9, nesterov=True).init_state(p)
    opt = SGD(momentum=0.9, nesterov=True)
    opt.step(params, g1, state, 0.1, 1)
    opt.step(params, g2, state, 0.1, 2)
    v1 = -0.1 * g1
    v2 = 0.9 * v1 - 0.1 * g2
    assert_allclose(params, p + (0.9 * v1 - 0.1 * g1) + (0.9 * v2 - 0.1 * g2), rtol=1e-13)
    params, opt = p.copy(), Adam()
    state = opt.init_state(params)
    opt.step(params, g1, state, 0.01, 1)
    # First Adam step: m_hat = g, v_hat = g^2, so p -= lr * g / (|g| + eps').
    assert_allclose(params, p - 0.01 * g1 / (np.abs(g1) + 1e-8 / np.sqrt(1 - 0.999)),
                    rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.one_of(st.integers(0, 40), st.integers(16375, 16400), st.just(2 * 16384 + 1)),
       name=st.sampled_from(sorted(OPTIMIZERS)), double=st.booleans())
def test_any_buffer_length(n, name, double):
    # Lengths around the kernels' eight lanes and chunk boundaries, and empty.
    dtype = np.float64 if double else np.float32
    opt = OPTIMIZERS[name]().set_params(weight_decay=0.1, clipnorm=1.0, clipvalue=0.05)
    rng = np.random.RandomState(n)
    params, grads = rng.randn(2, n).astype(dtype)
    mask = (rng.rand(n) < 0.5).astype(dtype)
    expected, state = params.copy(), opt.init_state(params)
    ref_state = {k: v.copy() for k, v in state.items()}
    for t in (1, 2):
        assert opt.step(params, grads, state, 0.01, t, epoch=t, decay_mask=mask)
        _reference_step(opt, expected, grads, ref_state, 0.01, t, t, mask)
    assert_allclose(params, expected, **_tol(dtype))
    assert_allclose(_ops.gradient_norm(grads, 0.05), _reference.gradient_norm(grads, 0.05),
                    rtol=1e-12)
    l1, l2 = rng.rand(2, n).astype(dtype)
    g_ref = grads.copy()
    assert_allclose(_ops.add_penalty(params, grads, l1, l2),
                    _reference.add_penalty(params, g_ref, l1, l2), rtol=1e-12)
    assert_allclose(grads, g_ref, **_tol(dtype))


# -- the momentum ramp ---------------------------------------------------------
def test_momentum_ramp_values():
    opt = SGD(momentum=0.9, initial_momentum=0.5, momentum_ramp_epochs=4)
    assert_allclose([opt.momentum_at(e) for e in range(1, 8)],
                    [0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9], rtol=1e-15)
    assert SGD(momentum=0.9).momentum_at(1) == 0.9
    assert SGD(momentum=0.9, initial_momentum=0.1).momentum_at(1) == 0.9  # no ramp
    down = SGD(momentum=0.2, initial_momentum=0.6, momentum_ramp_epochs=2)
    assert_allclose([down.momentum_at(e) for e in (1, 2, 3)], [0.6, 0.4, 0.2])
    with pytest.raises(ValueError, match="epoch counts from 1"):
        opt.momentum_at(0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_ramp_across_epochs(dtype, nesterov):
    opt = SGD(momentum=0.9, nesterov=nesterov, initial_momentum=0.5,
              momentum_ramp_epochs=4)
    rng = np.random.RandomState(2)
    params = rng.randn(N).astype(dtype)
    expected, velocity = params.copy(), np.zeros(N, dtype)
    state = opt.init_state(params)
    momenta = [0.5, 0.6, 0.7, 0.8, 0.9, 0.9]
    for epoch, mu in enumerate(momenta, start=1):
        for batch in range(2):
            grads = rng.randn(N).astype(dtype)
            step = 2 * (epoch - 1) + batch + 1
            assert opt.step(params, grads, state, 0.02, step, epoch=epoch)
            _reference.sgd_update(expected, grads, velocity, 0.02, mu, nesterov)
    assert_allclose(params, expected, **_tol(dtype))
    assert_allclose(state["velocity"], velocity, **_tol(dtype))
    # and it differs from the unramped rule
    flat = SGD(momentum=0.9, nesterov=nesterov)
    params2 = rng.randn(N).astype(dtype)
    ramped, plain = params2.copy(), params2.copy()
    s1, s2 = opt.init_state(ramped), flat.init_state(plain)
    g = rng.randn(N).astype(dtype)
    for t in (1, 2):
        opt.step(ramped, g, s1, 0.02, t, epoch=1)
        flat.step(plain, g, s2, 0.02, t, epoch=1)
    assert np.abs(ramped - plain).max() > 1e-4


# -- clipping ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_order_value_then_norm(dtype):
    # Plain SGD with learning rate 1 moves params by minus the gradient used.
    grads = np.array([10.0, 1.0, -3.0, 0.0], dtype)
    for options, used in [
        (dict(clipvalue=2.0), [2.0, 1.0, -2.0, 0.0]),
        (dict(clipnorm=1.0), np.array([10.0, 1.0, -3.0, 0.0]) / np.sqrt(110.0)),
        # value clip first: [2, 1, -2, 0] has norm 3, rescaled to norm 1.5
        (dict(clipvalue=2.0, clipnorm=1.5), [1.0, 0.5, -1.0, 0.0]),
        (dict(clipnorm=20.0), [10.0, 1.0, -3.0, 0.0]),  # below the limit: unchanged
    ]:
        params = np.zeros(4, dtype)
        opt = SGD(**options)
        assert opt.step(params, grads, opt.init_state(params), 1.0, 1)
        assert_allclose(-params, used, rtol=1e-6 if dtype == np.float32 else 1e-15)
    # The reverse order (norm, then value) would use [.95, .095, -.29, 0].
    params = np.zeros(4, dtype)
    SGD(clipvalue=2.0, clipnorm=1.5).step(params, grads, {}, 1.0, 1)
    norm_first = np.clip(np.array([10.0, 1.0, -3.0, 0.0]) * 1.5 / np.sqrt(110.0), -2, 2)
    assert np.abs(-params - norm_first).max() > 0.1


@pytest.mark.parametrize("dtype", DTYPES)
def test_clipping_does_not_write_grads_and_takes_read_only_inputs(dtype):
    rng = np.random.RandomState(3)
    grads = (rng.randn(N) * 5).astype(dtype)
    mask = (rng.rand(N) < 0.5).astype(dtype)
    copy = grads.copy()
    grads.flags.writeable = False  # joblib hands read-only memmaps
    mask.flags.writeable = False
    opt = Adam(clipnorm=1.0, clipvalue=0.1, weight_decay=0.1)
    params = rng.randn(N).astype(dtype)
    writable = params.copy()
    assert opt.step(params, grads, opt.init_state(params), 0.01, 1, decay_mask=mask)
    assert_array_equal(grads, copy)
    assert opt.step(writable, copy, opt.init_state(writable), 0.01, 1,
                    decay_mask=mask.copy())
    assert_array_equal(params, writable)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_norm(dtype):
    rng = np.random.RandomState(4)
    g = (rng.randn(100003) * 3).astype(dtype)
    assert_allclose(_ops.gradient_norm(g), np.linalg.norm(g.astype(np.float64)),
                    rtol=1e-13)
    assert_allclose(_ops.gradient_norm(g, clipvalue=1.0),
                    np.linalg.norm(np.clip(g.astype(np.float64), -1, 1)), rtol=1e-13)
    assert_allclose(_ops.gradient_norm(g, 1.0), _reference.gradient_norm(g, 1.0),
                    rtol=1e-13)
    assert _ops.gradient_norm(np.zeros(0, dtype)) == 0.0
    assert np.isnan(_ops.gradient_norm(np.array([1.0, np.nan], dtype)))


def test_gradient_norm_past_float64_squares():
    # Squares of 1e200 overflow float64; the norm is still found.
    g = np.array([3e200, -4e200] + [0.0] * 20000)
    assert_allclose(_ops.gradient_norm(g), 5e200, rtol=1e-14)
    params = np.zeros_like(g)
    assert SGD(clipnorm=1.0).step(params, g, {}, 1.0, 1)
    assert_allclose(params[:2], [-0.6, 0.8], rtol=1e-14)


def test_non_finite_gradient_is_not_hidden_by_clipnorm():
    # clipnorm / inf would zero the step; the step reports the problem instead.
    for bad in (np.inf, np.nan):
        params = np.ones(5)
        g = np.array([1.0, bad, 0.0, 0.0, 0.0])
        assert SGD(clipnorm=1.0).step(params, g, {}, 0.1, 1) is False
        assert not np.isfinite(params[1])


# -- weight decay ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factory", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_weight_decay_only_where_masked(dtype, factory):
    opt = factory().set_params(weight_decay=0.5)
    rng = np.random.RandomState(5)
    p = rng.randn(N).astype(dtype)
    mask = (np.arange(N) % 3 == 0).astype(dtype)
    params = p.copy()
    # A zero gradient: every rule's own step is zero, what is left is the decay.
    assert opt.step(params, np.zeros(N, dtype), opt.init_state(p), 0.2, 1, decay_mask=mask)
    assert_array_equal(params[mask == 0], p[mask == 0])
    assert_allclose(params[mask == 1], p[mask == 1] * (1 - 0.2 * 0.5),
                    **_tol(dtype))
    params = p.copy()  # no mask: decay everywhere
    assert opt.step(params, np.zeros(N, dtype), opt.init_state(p), 0.2, 1)
    assert_allclose(params, p * 0.9, **_tol(dtype))


def test_adamw_is_adam_with_decoupled_decay():
    rng = np.random.RandomState(6)
    p = rng.randn(1000)
    a, b = p.copy(), p.copy()
    sa, sb = AdamW().init_state(a), Adam(weight_decay=0.01).init_state(b)
    for t in range(1, 4):
        g = rng.randn(1000)
        AdamW().step(a, g, sa, 0.01, t)
        Adam(weight_decay=0.01).step(b, g, sb, 0.01, t)
    assert_array_equal(a, b)
    # Decoupled: the decay is not rescaled by sqrt(v), unlike an L2 term in g.
    c = p.copy()
    sc = Adam().init_state(c)
    rng = np.random.RandomState(6)
    rng.randn(1000)
    for t in range(1, 4):
        g = rng.randn(1000)
        Adam().step(c, g + 0.01 * c, sc, 0.01, t)
    assert np.abs(a - c).max() > 1e-4


# -- finiteness flag -------------------------------------------------------------
@pytest.mark.parametrize("factory", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("dtype", DTYPES)
def test_finiteness_flag(factory, dtype):
    opt = factory()
    rng = np.random.RandomState(7)
    params = rng.randn(N).astype(dtype)
    state = opt.init_state(params)
    grads = rng.randn(N).astype(dtype)
    assert opt.step(params, grads, state, 0.01, 1) is True
    # One NaN in the ragged last chunk, with one thread and with two.
    grads[N - 5] = np.nan
    for threads in (one_thread, two_threads):
        p, s = params.copy(), {k: v.copy() for k, v in state.items()}
        with threads():
            assert opt.step(p, grads, s, 0.01, 2) is False
        assert np.isnan(p[N - 5]) and np.isfinite(np.delete(p, N - 5)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_overflowing_step_returns_false(dtype):
    big = np.finfo(dtype).max
    params = np.array([big / 2, 1.0], dtype)
    grads = np.array([-1.0, 0.0], dtype)
    assert SGD().step(params, grads, {}, float(big), 1) is False
    assert np.isinf(params[0]) and params[1] == 1.0
    params = np.array([-big / 2, 1.0], dtype)
    assert SGD().step(params, -grads, {}, float(big), 1) is False
    assert params[0] == -np.inf
    params = np.array([big / 2, 1.0], dtype)
    assert SGD().step(params, grads, {}, float(big) / 4, 1) is True
    # The kernel tests exponent bits: the extremes of the finite range pass.
    tiny = np.finfo(dtype).smallest_subnormal
    edges = np.array([big, -big, tiny, -tiny, 0.0, -0.0], dtype)
    assert SGD().step(edges, np.zeros(6, dtype), {}, 0.0, 1) is True
    for bad in (np.inf, -np.inf, np.nan):
        assert SGD().step(np.array([1.0, bad], dtype), np.zeros(2, dtype), {}, 0.0,
                          1) is False


# -- threads -------------------------------------------------------------------
def _run_everything(dtype):
    rng = np.random.RandomState(8)
    n = 7 * 16384 + 11
    out = []
    mask = (rng.rand(n) < 0.6).astype(dtype)
    for factory in OPTIMIZERS.values():
        opt = factory().set_params(weight_decay=0.01, clipnorm=10.0, clipvalue=0.5)
        params = rng.randn(n).astype(dtype)
        state = opt.init_state(params)
        for t in range(1, 3):
            grads = rng.randn(n).astype(dtype)
            out.append(opt.step(params, grads, state, 0.01, t, epoch=t, decay_mask=mask))
        out += [params, *state.values()]
    grads = rng.randn(n).astype(dtype)
    out.append(_ops.gradient_norm(grads, 0.5))
    l1, l2 = rng.rand(2, n).astype(dtype)
    out.append(_ops.add_penalty(rng.randn(n).astype(dtype), grads, l1, l2))
    out.append(grads)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_and_two_threads_agree_bit_for_bit(dtype):
    with one_thread():
        one = _run_everything(dtype)
    with two_threads():
        two = _run_everything(dtype)
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert_array_equal(a, b)


# -- bad inputs ----------------------------------------------------------------
def _read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


Z3 = np.zeros(3)


@pytest.mark.parametrize("call, error, message", [
    (lambda: _ops.sgd_update(_read_only(Z3), Z3, Z3.copy(), 0.1), ValueError,
     "params is read-only"),
    (lambda: _ops.adam_update(Z3.copy(), Z3, _read_only(Z3), Z3.copy(), 0.1, 0.9, 0.99,
                              1e-8, 1), ValueError, "m is read-only"),
    (lambda: _ops.adam_update(Z3.copy(), Z3, Z3.copy(), np.zeros(6)[::2], 0.1, 0.9,
                              0.99, 1e-8, 1), ValueError, "v must be C-contiguous"),
    (lambda: _ops.sgd_update([0.0, 0.0], Z3, None, 0.1), TypeError,
     "params must be a numpy array"),
    (lambda: _ops.sgd_update(np.zeros(3, int), Z3, None, 0.1), TypeError,
     "params must be float32 or float64"),
    (lambda: _ops.sgd_update(np.zeros((3, 1)), Z3, None, 0.1), ValueError,
     "params must be a 1-D numpy array"),
    (lambda: _ops.adagrad_update(Z3.copy(), np.zeros(3, np.float32), Z3.copy(), 0.1,
                                 1e-7), TypeError,
     "grads has dtype float32 but params is float64"),
    (lambda: _ops.rmsprop_update(Z3.copy(), Z3, np.zeros(4), None, 0.1, 0.9, 1e-7),
     ValueError, r"mean_square must match params \(shape \(3,\)\), got shape \(4,\)"),
    (lambda: _ops.adadelta_update(Z3.copy(), Z3, Z3.copy(), [0.0, 0.0, 0.0], 1.0, 0.9,
                                  1e-6), TypeError,
     "mean_square_delta must be a numpy array"),
    (lambda: _ops.adamax_update(Z3.copy(), Z3, Z3.copy(), Z3.copy(), 0.1, 0.9, 0.99,
                                1e-7, 1, weight_decay=0.1, decay_mask=np.ones(2)),
     ValueError, "decay_mask must match params"),
    (lambda: _ops.adamax_update(Z3.copy(), Z3, Z3.copy(), Z3.copy(), 0.1, 0.9, 0.99,
                                1e-7, 1, weight_decay=0.1,
                                decay_mask=np.ones(3, np.float32)),
     TypeError, "decay_mask has dtype float32"),
    (lambda: _ops.adam_update(Z3.copy(), Z3, Z3.copy(), Z3.copy(), 0.1, 0.9, 0.99, 1e-8,
                              0), ValueError, "step counts from 1"),
    (lambda: _ops.adam_update(Z3.copy(), Z3, Z3.copy(), Z3.copy(), 0.1, 0.9, 0.99, 1e-8,
                              1.5), TypeError, "step must be an integer"),
    (lambda: _ops.sgd_update(Z3.copy(), Z3, None, -0.1), ValueError,
     r"learning_rate must be in \[0.0, inf\), got -0.1"),
    (lambda: _ops.sgd_update(Z3.copy(), Z3, None, 0.1, clipnorm=0.0), ValueError,
     "clipnorm must be in"),
    (lambda: _ops.sgd_update(Z3.copy(), Z3, None, 0.1, clipvalue=np.nan), ValueError,
     "clipvalue must be in"),
    (lambda: _ops.sgd_update(Z3.copy(), Z3, None, 0.1, weight_decay="x"), TypeError,
     "weight_decay must be a real number"),
    (lambda: _ops.sgd_update(Z3.copy(), Z3, None, 0.1, momentum=0.9), ValueError,
     "momentum > 0 needs a velocity array"),
    (lambda: _ops.rmsprop_update(Z3.copy(), Z3, Z3.copy(), None, 0.1, 0.9, 1e-7, 0.5),
     ValueError, "momentum > 0 needs a velocity array"),
    (lambda: _ops.adam_update(Z3.copy(), Z3, Z3.copy(), Z3.copy(), 0.1, 1.0, 0.99, 1e-8,
                              1), ValueError, "beta1 must be in"),
    (lambda: _ops.gradient_norm(np.zeros((2, 2))), ValueError, "grads must be 1-D"),
    (lambda: _ops.add_penalty(Z3, _read_only(Z3), Z3, Z3), ValueError,
     "grads is read-only"),
    (lambda: _ops.add_penalty(Z3, Z3.copy(), np.zeros(3, np.float32), Z3), TypeError,
     "l1_coef has dtype float32 but params is float64"),
    (lambda: _ops.add_penalty(Z3, Z3.copy(), Z3, np.zeros(2)), ValueError,
     "l2_coef must match params"),
])
def test_bad_inputs(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_shared_buffers_are_refused():
    params, m = np.zeros(4), np.zeros(4)
    with pytest.raises(ValueError, match="m and v share memory"):
        _ops.adam_update(params, np.zeros(4), m, m, 0.1, 0.9, 0.99, 1e-8, 1)
    with pytest.raises(ValueError, match="params and grads share memory"):
        _ops.sgd_update(params, params, None, 0.1)
    with pytest.raises(ValueError, match="grads and params share memory"):
        _ops.add_penalty(params, params, np.zeros(4), np.zeros(4))


def test_step_checks_inputs_too():
    opt = Adamax()
    params = np.zeros(5)
    state = opt.init_state(params)
    with pytest.raises(TypeError, match="grads has dtype float32"):
        opt.step(params, np.zeros(5, np.float32), state, 0.1, 1)
    with pytest.raises(ValueError, match="grads must match params"):
        opt.step(params, np.zeros(6), state, 0.1, 1)
    with pytest.raises(ValueError, match="m must match params"):
        opt.step(np.zeros(6), np.zeros(6), state, 0.1, 1)
    # Refused before any kernel ran: nothing was written.
    assert_array_equal(params, 0.0)
    assert all((v == 0).all() for v in state.values())


# -- the L1/L2 penalty -------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_add_penalty_matches_reference(dtype):
    rng = np.random.RandomState(9)
    params = rng.randn(N).astype(dtype)
    params[::7] = 0.0
    l1 = np.where(rng.rand(N) < 0.5, 0.01, 0.0).astype(dtype)
    l2 = np.where(rng.rand(N) < 0.5, 0.02, 0.0).astype(dtype)
    grads = rng.randn(N).astype(dtype)
    expected = grads.copy()
    value = _ops.add_penalty(params, grads, l1, l2)
    ref_value = _reference.add_penalty(params, expected, l1, l2)
    assert isinstance(value, float)
    assert_allclose(value, ref_value, rtol=1e-12)
    assert_allclose(grads, expected, **_tol(dtype))
    p64 = params.astype(np.float64)
    assert_allclose(value, np.sum(l1 * np.abs(p64) + l2 * p64**2), rtol=1e-12)


def test_add_penalty_gradient():
    rng = np.random.RandomState(10)
    params = rng.randn(30)
    params[[3, 11]] = 0.0
    l1, l2 = rng.rand(2, 30)
    grads = np.zeros(30)
    _ops.add_penalty(params, grads, l1, l2)
    # Subgradient 0 at 0: only the L2 term, itself 0 there.
    assert_array_equal(grads[[3, 11]], 0.0)

    def penalty(p):
        return _ops.add_penalty(p, np.zeros(30), l1, l2)

    h = 1e-6
    for i in np.flatnonzero(params):
        e = np.zeros(30)
        e[i] = h
        fd = (penalty(params + e) - penalty(params - e)) / (2 * h)
        assert_allclose(grads[i], fd, rtol=1e-6)
    # Read-only params and coefficients are fine; only grads is written.
    for a in (params, l1, l2):
        a.flags.writeable = False
    g2 = np.ones(30)
    _ops.add_penalty(params, g2, l1, l2)
    assert_allclose(g2, 1.0 + grads, rtol=1e-15)
    assert _ops.add_penalty(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)) == 0.0


# -- convergence ----------------------------------------------------------------
@pytest.fixture(scope="module")
def least_squares():
    rng = np.random.RandomState(11)
    A = rng.randn(60, 8)
    b = A @ rng.randn(8) + 0.1 * rng.randn(60)
    H, c = A.T @ A / 60, A.T @ b / 60

    def loss(p):
        return 0.5 * np.mean((A @ p - b) ** 2)

    return H, c, loss, np.linalg.solve(H, c)


@pytest.mark.parametrize("opt, learning_rate, decay, gap", [
    (SGD(), 0.1, False, 1e-12),
    (SGD(momentum=0.9), 0.02, False, 1e-12),
    (SGD(momentum=0.9, nesterov=True), 0.02, False, 1e-12),
    (SGD(momentum=0.9, initial_momentum=0.5, momentum_ramp_epochs=5), 0.02, False, 1e-12),
    (Adagrad(), 0.5, False, 1e-12),
    # RMSprop's step stays near learning_rate * sign(g): it ends in a small
    # oscillation whose size follows the learning rate.
    (RMSprop(), 0.003, True, 1e-6),
    (RMSprop(momentum=0.9), 0.001, True, 1e-7),
    (Adadelta(), 1.0, False, 1e-12),
    (Adam(), 0.05, True, 1e-12),
    (Adamax(), 0.05, True, 1e-12),
    (SGD(clipnorm=0.05, clipvalue=0.02), 0.1, False, 1e-12),
    (Adam(clipnorm=0.01), 0.05, True, 1e-8),
], ids=_ids)
def test_converges_on_least_squares(least_squares, opt, learning_rate, decay, gap):
    # Rules with a step of fixed size near the minimum (RMSprop, Adam) get a
    # decaying learning rate, as they would from a schedule. gap: the largest
    # excess loss at the end, relative to the loss at the start.
    H, c, loss, p_star = least_squares
    params = np.zeros(8)
    state = opt.init_state(params)
    for t in range(1, 3001):
        lr = learning_rate / np.sqrt(1 + t / 100) if decay else learning_rate
        assert opt.step(params, H @ params - c, state, lr, t, epoch=1 + t // 100)
    assert loss(params) - loss(p_star) < gap * loss(np.zeros(8))
    assert_allclose(params, p_star, atol=1e-3)


def test_sgd_weight_decay_converges_to_ridge(least_squares):
    # Decoupled decay with plain SGD stops where g + weight_decay * p = 0.
    H, c, _, p_star = least_squares
    params = np.zeros(8)
    for t in range(1, 3001):
        SGD(weight_decay=0.3).step(params, H @ params - c, {}, 0.1, t)
    assert_allclose(params, np.linalg.solve(H + 0.3 * np.eye(8), c), rtol=1e-10)
    # A mask leaves the masked-out coordinates unpenalised.
    mask = np.array([1, 1, 1, 1, 0, 0, 0, 0], float)
    params = np.zeros(8)
    for t in range(1, 3001):
        SGD(weight_decay=0.3).step(params, H @ params - c, {}, 0.1, t, decay_mask=mask)
    assert_allclose(params, np.linalg.solve(H + 0.3 * np.diag(mask), c), rtol=1e-10)
    assert np.linalg.norm(params) < np.linalg.norm(p_star)


def test_adamw_shrinks_towards_zero(least_squares):
    H, c, loss, p_star = least_squares
    params = np.zeros(8)
    opt = AdamW(weight_decay=0.1)
    state = opt.init_state(params)
    for t in range(1, 3001):
        opt.step(params, H @ params - c, state, 0.05 / np.sqrt(1 + t / 100), t)
    # Adam's normalised step pulls back against the decay, so the shrinkage
    # is small, but it is there (Adam alone reaches p_star to 1e-12, above).
    assert np.linalg.norm(params) < np.linalg.norm(p_star) - 1e-3
    assert loss(params) < 1.01 * loss(p_star)


# -- through the estimator ----------------------------------------------------------
@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(120, 5, noise=1.0, random_state=0)
    return X, y / y.std()


@pytest.mark.parametrize("spec, grid, learning_rate", [
    (Adamax(), {"optimizer__beta1": [0.5, 0.9]}, 0.01),
    (RMSprop(momentum=0.5), {"optimizer__rho": [0.5, 0.9]}, 0.001),
    (Adadelta(), {"optimizer__rho": [0.8, 0.95]}, 1.0),
    (Adagrad(), {"optimizer__initial_accumulator": [0.01, 1.0]}, 0.1),
    (SGD(momentum=0.9), {"optimizer__nesterov": [False, True]}, 0.01),
    (AdamW(), {"optimizer__weight_decay": [0.0, 0.5]}, 0.01),
    (Adam(clipvalue=1.0), {"optimizer__clipnorm": [0.01, 10.0]}, 0.01),
], ids=["Adamax-beta1", "RMSprop-rho", "Adadelta-rho", "Adagrad-initial_accumulator",
        "SGD-nesterov", "AdamW-weight_decay", "Adam-clipnorm"])
def test_grid_search_over_optimizer_parameters(regression, spec, grid, learning_rate):
    X, y = regression
    before = spec.get_params()
    est = NNRegressor(layers=[Dense(8, activation="tanh")], optimizer=spec,
                      learning_rate=learning_rate, batch_size=16, max_iter=30,
                      random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(est, grid, cv=3).fit(X, y)
    (name, values), = grid.items()
    scores = search.cv_results_["mean_test_score"]
    # The searched value reached the optimizer: the two settings score differently.
    assert len(set(np.round(scores, 10))) == 2
    assert search.best_score_ > 0.6
    best = search.best_params_[name]
    assert search.best_estimator_.optimizer.get_params()[name.split("__")[1]] == best
    assert spec.get_params() == before


@pytest.mark.parametrize("name, learning_rate", [
    ("adagrad", 0.1), ("rmsprop", 0.003), ("adadelta", 1.0), ("adamax", 0.01),
    ("adamw", 0.01),
])
def test_new_names_train_the_estimator(regression, name, learning_rate):
    X, y = regression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = NNRegressor(layers=[Dense(16, activation="tanh")], optimizer=name,
                          learning_rate=learning_rate, batch_size=16, max_iter=40,
                          random_state=0).fit(X, y)
    assert reg.loss_curve_[-1] < 0.2 * reg.loss_curve_[0]
    assert reg.score(X, y) > 0.9
