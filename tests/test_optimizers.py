"""Optimizer specs: names, validation, state, steps against the reference."""
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.utils._param_validation import InvalidParameterError

from skdl import _reference
from skdl._optimizers import OPTIMIZERS, SGD, Adam, resolve_optimizer


@pytest.mark.parametrize("name, cls, params", [
    ("sgd", SGD, dict(momentum=0.0, nesterov=False)),
    ("momentum", SGD, dict(momentum=0.9, nesterov=False)),
    ("nesterov", SGD, dict(momentum=0.9, nesterov=True)),
    ("adam", Adam, dict(beta1=0.9, beta2=0.999, epsilon=1e-8)),
])
def test_names(name, cls, params):
    opt = resolve_optimizer(name)
    assert isinstance(opt, cls)
    assert {k: opt.get_params()[k] for k in params} == params


def test_bad_optimizers():
    with pytest.raises(ValueError, match="Unknown optimizer 'lbfgs'"):
        resolve_optimizer("lbfgs")
    with pytest.raises(TypeError, match="optimizer must be a name"):
        resolve_optimizer(3)
    with pytest.raises(InvalidParameterError, match="momentum"):
        resolve_optimizer(SGD(momentum=1.0))
    with pytest.raises(InvalidParameterError, match="epsilon"):
        resolve_optimizer(Adam(epsilon=0))
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adam"}


@pytest.mark.parametrize("opt", [SGD(momentum=0.9, nesterov=True), Adam()])
def test_steps_match_reference(opt):
    rng = np.random.RandomState(0)
    params = rng.randn(1000)
    expected = params.copy()
    state = opt.init_state(params)
    ref_state = {k: v.copy() for k, v in state.items()}
    for t in range(1, 6):
        grads = rng.randn(1000)
        opt.step(params, grads, state, 0.01, t)
        if isinstance(opt, SGD):
            _reference.sgd_update(expected, grads, ref_state["velocity"], 0.01, 0.9, True)
        else:
            _reference.adam_update(expected, grads, ref_state["m"], ref_state["v"], 0.01,
                                   0.9, 0.999, 1e-8, t)
    assert_allclose(params, expected, rtol=1e-12, atol=1e-14)


def test_spec_holds_no_state():
    opt = Adam()
    opt.init_state(np.zeros(4))
    assert vars(opt) == {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
