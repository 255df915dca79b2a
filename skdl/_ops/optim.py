"""Optimizer ops (skdl._kernels._optim).

Every update op takes the flat parameter buffer, its gradient and the rule's
state arrays, updates params and state in place in one fused pass and
returns True when every updated parameter is finite. The common keywords:

  weight_decay, decay_mask  decoupled decay, p -= learning_rate * weight_decay
                            * decay_mask * p (no mask: everywhere), as in
                            PyTorch's AdamW; applied to the old p, beside
                            the rule's own step
  clipvalue                 each gradient element clamped to [-clipvalue,
                            clipvalue] first, then
  clipnorm                  the whole (clamped) gradient rescaled so its
                            global L2 norm is at most clipnorm

Clipping is folded into the update loop: ``grads`` is never written.
"""
import numbers
import threading
import weakref

import numpy as np

from .._kernels import _optim
from . import _threads
from ._checks import FLOAT_DTYPES, _float_array, _scalar
from ._threads import ELEMENT_WORK


# Update rules of _kernels/_optim.pyx, in the order of its enum.
(_SGD, _SGD_PLAIN, _ADAGRAD, _RMSPROP, _RMSPROP_MOMENTUM, _ADADELTA, _ADAM,
 _ADAMAX) = range(8)


def _check_params(params):
    if not isinstance(params, np.ndarray):
        raise TypeError("params must be a numpy array (the flat buffer), got "
                        f"{type(params).__name__}.")
    if params.ndim != 1:
        raise ValueError("params must be a 1-D numpy array (the flat buffer), got "
                         f"shape {params.shape}.")
    if params.dtype not in FLOAT_DTYPES:
        raise TypeError(f"params must be float32 or float64, got dtype {params.dtype}.")


def _in_place(name, a):
    """A buffer the kernel writes: C-contiguous, writeable, never a copy."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (it is updated in place), got "
                        f"{type(a).__name__}.")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (it is updated in place).")
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only.")
    return a


def _like(params, name, a):
    """``a`` checked against params' dtype and shape (read-only inputs may be
    copied to C order; arrays written in place are checked, never copied)."""
    if a.dtype != params.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but params is {params.dtype}.")
    if a.shape != params.shape:
        raise ValueError(f"{name} must match params (shape {params.shape}), "
                         f"got shape {a.shape}.")
    return a


def _no_overlap(arrays):
    # Kernels declare their pointers restrict; two names for one memory would
    # be undefined behaviour. Bounds checks only: cheap on 1-D buffers.
    named = [(k, a) for k, a in arrays.items() if a is not None]
    for i, (k1, a1) in enumerate(named):
        for k2, a2 in named[i + 1:]:
            if np.may_share_memory(a1, a2):
                raise ValueError(f"{k1} and {k2} share memory; the optimizer needs "
                                 "separate buffers.")


# The buffers of the last optimizer step whose checks passed, by weak
# reference: a training loop passes the same flat buffers at every step, and
# checking them again (dtypes, shapes, overlaps) cost as much as the update of
# a small network. Only whether they are still writeable is read again.
_checked_buffers = threading.local()


def _step_arrays(params, grads, state, decay_mask):
    """(grads, state, decay_mask) checked for an update of ``params`` in place;
    the same buffers as the last step's are not checked again."""
    given = (params, grads, decay_mask, *state.values())
    last = getattr(_checked_buffers, "refs", None)
    if (last is not None and len(last) == len(given)
            and all(a is None if ref is None else ref() is a for ref, a in zip(last, given))
            and all(a.flags.writeable for a in state.values() if a is not None)
            and params.flags.writeable):
        return grads, state, decay_mask
    _checked_buffers.refs = None
    _check_params(params)
    _in_place("params", params)
    grads = _like(params, "grads", np.ascontiguousarray(grads))
    state = {k: None if a is None else _like(params, k, _in_place(k, a))
             for k, a in state.items()}
    _no_overlap({"params": params, "grads": grads, **state})
    if decay_mask is not None:
        decay_mask = _like(params, "decay_mask", np.ascontiguousarray(decay_mask))
        _no_overlap({"params": params, "decay_mask": decay_mask, **state})
    if grads is given[1] and decay_mask is given[2]:  # no copies made: remember them
        _checked_buffers.refs = [None if a is None else weakref.ref(a) for a in given]
    return grads, state, decay_mask


def _step_inputs(params, grads, state, learning_rate, weight_decay, decay_mask,
                 clipnorm, clipvalue):
    """Checked arrays and the folded clip and decay scalars of one step."""
    learning_rate = _scalar("learning_rate", learning_rate)
    weight_decay = _scalar("weight_decay", weight_decay)
    if weight_decay == 0.0:
        decay_mask = None  # nothing to read (and nothing to check every step)
    grads, state, decay_mask = _step_arrays(params, grads, state, decay_mask)
    clipvalue = np.inf if clipvalue is None else _scalar("clipvalue", clipvalue,
                                                         low_open=True)
    n_threads = _threads.threads_for(ELEMENT_WORK * params.size)
    scale = 1.0
    if clipnorm is not None:
        clipnorm = _scalar("clipnorm", clipnorm, low_open=True)
        norm = _gradient_norm(grads, clipvalue, n_threads)
        # A non-finite norm is left alone: rescaling by clipnorm / inf would
        # zero the step and hide the problem, which the finiteness flag reports.
        if np.isfinite(norm) and norm > clipnorm:
            scale = clipnorm / norm
    return (grads, list(state.values()), decay_mask, learning_rate * weight_decay,
            scale, clipvalue, n_threads)


def _gradient_norm(grads, clipvalue, n_threads):
    total = _optim.sum_of_squares(grads, clipvalue, 1.0, n_threads)
    if np.isinf(total):
        # Squares past float64's range (|g| > ~1e154, float64 only): again
        # with every element divided by the largest, as BLAS's nrm2 does.
        top = min(float(np.max(np.abs(grads))), clipvalue)
        if np.isfinite(top):
            return top * np.sqrt(_optim.sum_of_squares(grads, clipvalue, 1.0 / top,
                                                       n_threads))
    return float(np.sqrt(total))


def gradient_norm(grads, clipvalue=None):
    """Global L2 norm of a gradient buffer, after an optional value clip.

    Summed in float64 over fixed chunks combined in order: the same value for
    any number of threads. This is the norm ``clipnorm`` compares.

    Parameters
    ----------
    grads : ndarray of shape (n_params,), float32 or float64
    clipvalue : float > 0 or None
        Clamp each element to [-clipvalue, clipvalue] first (in grads' dtype).

    Returns
    -------
    norm : float
    """
    grads = _float_array("grads", grads, ndim=1)
    clipvalue = np.inf if clipvalue is None else _scalar("clipvalue", clipvalue,
                                                         low_open=True)
    return _gradient_norm(grads, clipvalue, _threads.threads_for(ELEMENT_WORK * grads.size))


def _update(kind, params, grads, state, learning_rate, h1, h2, h3, flag,
            weight_decay, decay_mask, clipnorm, clipvalue, step_size=None):
    grads, states, mask, lrwd, scale, cv, n_threads = _step_inputs(
        params, grads, state, learning_rate, weight_decay, decay_mask, clipnorm,
        clipvalue,
    )
    s1, s2 = (states + [None, None])[:2]
    # The rule's step size: learning_rate, or Adam's bias-corrected one.
    lr = float(learning_rate) if step_size is None else step_size
    return _optim.update(kind, params, grads, s1, s2, mask, lr, h1, h2, h3, flag,
                         scale, cv, lrwd, n_threads)


def _step_number(step):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an integer, got {step!r}.")
    if step < 1:
        raise ValueError(f"step counts from 1, got {step}.")
    return int(step)


def sgd_update(params, grads, velocity, learning_rate, momentum=0.0, nesterov=False, *,
               weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One SGD step in place on the flat parameter buffer.

    ``velocity = momentum * velocity - learning_rate * g``, then
    ``params += momentum * velocity - learning_rate * g`` (Nesterov) or
    ``params += velocity``; without a velocity buffer (momentum 0),
    ``params -= learning_rate * g``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,), params' dtype; only read
    velocity : ndarray of shape (n_params,) or None, updated in place
        None only when momentum is 0.
    learning_rate : float >= 0
    momentum : float in [0, 1]
    nesterov : bool
    weight_decay : float >= 0
        Decoupled: ``params -= learning_rate * weight_decay * decay_mask * params``.
    decay_mask : ndarray of shape (n_params,) or None
        1.0 where the decay applies, 0.0 elsewhere; None decays everything.
    clipnorm, clipvalue : float > 0 or None
        Each gradient element is clamped to [-clipvalue, clipvalue] first,
        then the gradient is rescaled to a global L2 norm of at most clipnorm.

    Returns
    -------
    finite : bool
        True when every updated parameter is finite.
    """
    momentum = _scalar("momentum", momentum, high=1.0, high_open=False)
    if velocity is None and momentum != 0.0:
        raise ValueError("momentum > 0 needs a velocity array.")
    kind = _SGD_PLAIN if velocity is None else _SGD
    return _update(kind, params, grads, {"velocity": velocity},
                   learning_rate, momentum, 0.0, 0.0, bool(nesterov), weight_decay,
                   decay_mask, clipnorm, clipvalue)


def adagrad_update(params, grads, accumulator, learning_rate, epsilon, *,
                   weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One Adagrad step in place (Duchi et al., 2011).

    ``accumulator += g**2``; ``params -= learning_rate * g / (sqrt(accumulator)
    + epsilon)``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    accumulator : ndarray of shape (n_params,), updated in place
    learning_rate : float >= 0
    epsilon : float > 0
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    epsilon = _scalar("epsilon", epsilon, low_open=True)
    return _update(_ADAGRAD, params, grads, {"accumulator": accumulator},
                   learning_rate, epsilon, 0.0, 0.0, False, weight_decay, decay_mask,
                   clipnorm, clipvalue)


def rmsprop_update(params, grads, mean_square, velocity, learning_rate, rho, epsilon,
                   momentum=0.0, *, weight_decay=0.0, decay_mask=None, clipnorm=None,
                   clipvalue=None):
    """One RMSprop step in place (Tieleman & Hinton, 2012).

    ``mean_square = rho * mean_square + (1 - rho) * g**2``;
    ``step = learning_rate * g / (sqrt(mean_square) + epsilon)``;
    ``params -= step``, or with momentum ``velocity = momentum * velocity +
    step; params -= velocity``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    mean_square : ndarray of shape (n_params,), updated in place
    velocity : ndarray of shape (n_params,) or None, updated in place
        Needed (and only touched) when momentum > 0.
    learning_rate : float >= 0
    rho : float in [0, 1]
    epsilon : float > 0
    momentum : float in [0, 1]
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    rho = _scalar("rho", rho, high=1.0, high_open=False)
    epsilon = _scalar("epsilon", epsilon, low_open=True)
    momentum = _scalar("momentum", momentum, high=1.0, high_open=False)
    if momentum == 0.0:
        return _update(_RMSPROP, params, grads,
                       {"mean_square": mean_square}, learning_rate,
                       rho, epsilon, 0.0, False, weight_decay, decay_mask, clipnorm,
                       clipvalue)
    if velocity is None:
        raise ValueError("momentum > 0 needs a velocity array.")
    return _update(_RMSPROP_MOMENTUM, params, grads,
                   {"mean_square": mean_square, "velocity": velocity}, learning_rate,
                   rho, epsilon, momentum, False, weight_decay, decay_mask, clipnorm,
                   clipvalue)


def adadelta_update(params, grads, mean_square_grad, mean_square_delta, learning_rate,
                    rho, epsilon, *, weight_decay=0.0, decay_mask=None, clipnorm=None,
                    clipvalue=None):
    """One Adadelta step in place (Zeiler, 2012).

    ``Eg = rho * Eg + (1 - rho) * g**2``;
    ``delta = sqrt(Ed + epsilon) / sqrt(Eg + epsilon) * g``;
    ``Ed = rho * Ed + (1 - rho) * delta**2``; ``params -= learning_rate * delta``
    (Zeiler's rule has no learning rate: use 1.0).

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    mean_square_grad, mean_square_delta : ndarrays of shape (n_params,), in place
    learning_rate : float >= 0
    rho : float in [0, 1]
    epsilon : float > 0
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    rho = _scalar("rho", rho, high=1.0, high_open=False)
    epsilon = _scalar("epsilon", epsilon, low_open=True)
    return _update(_ADADELTA, params, grads,
                   {"mean_square_grad": mean_square_grad,
                    "mean_square_delta": mean_square_delta},
                   learning_rate, rho, epsilon, 0.0, False, weight_decay, decay_mask,
                   clipnorm, clipvalue)


def _betas(beta1, beta2, epsilon):
    return (_scalar("beta1", beta1, high=1.0), _scalar("beta2", beta2, high=1.0),
            _scalar("epsilon", epsilon, low_open=True))


def adam_update(params, grads, m, v, learning_rate, beta1, beta2, epsilon, step, *,
                weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One Adam step in place (Kingma & Ba, 2014); AdamW with weight_decay > 0.

    ``m = beta1 * m + (1 - beta1) * g``; ``v = beta2 * v + (1 - beta2) * g**2``;
    ``params -= lr_t * m / (sqrt(v) + epsilon)`` with the bias corrections
    folded into ``lr_t = learning_rate * sqrt(1 - beta2**step) / (1 -
    beta1**step)``, as in scikit-learn's MLP. The decoupled weight decay uses
    ``learning_rate`` itself (Loshchilov & Hutter's AdamW).

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    m, v : ndarrays of shape (n_params,), first and second moments, in place
    learning_rate : float >= 0
    beta1, beta2 : float in [0, 1)
    epsilon : float > 0
    step : int, the number of this step, from 1
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    beta1, beta2, epsilon = _betas(beta1, beta2, epsilon)
    step = _step_number(step)
    step_size = (_scalar("learning_rate", learning_rate) * np.sqrt(1.0 - beta2**step)
                 / (1.0 - beta1**step))
    return _update(_ADAM, params, grads, {"m": m, "v": v}, learning_rate, beta1, beta2,
                   epsilon, False, weight_decay, decay_mask, clipnorm, clipvalue,
                   step_size=float(step_size))


def adamax_update(params, grads, m, u, learning_rate, beta1, beta2, epsilon, step, *,
                  weight_decay=0.0, decay_mask=None, clipnorm=None, clipvalue=None):
    """One Adamax step in place (Kingma & Ba, 2014, section 7.1).

    ``m = beta1 * m + (1 - beta1) * g``; ``u = max(beta2 * u, |g|)``;
    ``params -= learning_rate / (1 - beta1**step) * m / (u + epsilon)``.

    Parameters
    ----------
    params : ndarray of shape (n_params,), updated in place
    grads : ndarray of shape (n_params,)
    m, u : ndarrays of shape (n_params,), first moment and infinity norm, in place
    learning_rate : float >= 0
    beta1, beta2 : float in [0, 1)
    epsilon : float > 0
    step : int, the number of this step, from 1
    weight_decay, decay_mask, clipnorm, clipvalue
        As in :func:`sgd_update`.

    Returns
    -------
    finite : bool
    """
    beta1, beta2, epsilon = _betas(beta1, beta2, epsilon)
    step = _step_number(step)
    step_size = _scalar("learning_rate", learning_rate) / (1.0 - beta1**step)
    return _update(_ADAMAX, params, grads, {"m": m, "u": u}, learning_rate, beta1, beta2,
                   epsilon, False, weight_decay, decay_mask, clipnorm, clipvalue,
                   step_size=float(step_size))


def add_penalty(params, grads, l1_coef, l2_coef):
    """Add the gradient of an elementwise L1/L2 penalty to ``grads``, in place.

    ``grads += l1_coef * sign(params) + 2 * l2_coef * params`` (the subgradient
    of ``|p|`` at 0 is taken as 0), and the penalty
    ``sum(l1_coef * |params| + l2_coef * params**2)`` is returned, summed in
    float64 over fixed chunks combined in order (the same for any number of
    threads).

    Parameters
    ----------
    params : ndarray of shape (n_params,), float32 or float64; only read
    grads : ndarray of shape (n_params,), params' dtype, updated in place
    l1_coef, l2_coef : ndarrays of shape (n_params,), params' dtype
        Per-parameter coefficients, 0 where no penalty applies.

    Returns
    -------
    penalty : float
    """
    params = _float_array("params", params, ndim=1)
    grads = _like(params, "grads", _in_place("grads", grads))
    l1_coef = _like(params, "l1_coef", np.ascontiguousarray(l1_coef))
    l2_coef = _like(params, "l2_coef", np.ascontiguousarray(l2_coef))
    _no_overlap({"grads": grads, "params": params})
    _no_overlap({"grads": grads, "l1_coef": l1_coef})
    _no_overlap({"grads": grads, "l2_coef": l2_coef})
    return float(_optim.add_penalty(params, grads, l1_coef, l2_coef,
                                    _threads.threads_for(ELEMENT_WORK * params.size)))
