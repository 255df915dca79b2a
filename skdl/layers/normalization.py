"""Batch normalization."""
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .. import _ops
from ._base import Layer, LayerSpec, channel_axis, channel_layout

# Where the update count stops: float32 buffers count exactly up to here, and
# 1 - momentum**t is already 1 for any momentum up to 0.999997.
MAX_UPDATES = 2**24


class BatchNormalization(LayerSpec):
    """Normalize each channel by batch statistics while training, by running
    statistics at prediction.

    While fitting, each channel is normalized by the mean and (biased)
    variance of the batch over its samples and positions,
    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta``, and the running
    statistics are bias-corrected exponential moving averages of the
    batches' ones (see Notes). At prediction time only the running statistics
    are used, so a sample's output never depends on the rest of its batch.

    Parameters
    ----------
    axis : int or None, default=None
        The channel axis of the batch ``(n, *sample_shape)``: 1 for dense
        features ``(n, features)`` and channels-first signals and images
        ``(n, C, L)``, ``(n, C, H, W)``; -1 for feature-last sequences
        ``(n, steps, features)``. Statistics are per entry of this axis, over
        the samples and every other axis. None follows the layer before: -1
        after a layer that outputs sequences (``Embedding``, ``Masking``, a
        recurrent layer with ``return_sequences=True``, a channels-last
        ``Conv1D`` or pool, and the per-step layers after them), else 1.
    momentum : float in [0, 1), default=0.9
        Weight of the old running statistics in each update, once warmed up
        (Keras' convention; PyTorch's default ``momentum=0.1`` is this 0.9).
        The running statistics average over roughly the last
        ``1 / (1 - momentum)`` batches: those of the weights the network ends
        with, not of the weights it had a hundred batches ago (with Keras'
        0.99, a small network trained well for 200 batches predicted near
        chance).
    epsilon : float > 0, default=1e-3
        Added to the variance before its square root.
    center : bool, default=True
        Learn the shift ``beta``; without it the shift is 0.
    scale : bool, default=True
        Learn the scale ``gamma``; without it the scale is 1.
    name : str or None, default=None

    Notes
    -----
    Parameters (trained): ``gamma`` and ``beta``, one per channel, starting
    at 1 and 0. Buffers (part of the model, in ``get_weights``, pickles, model
    files and snapshots, but not trained by the optimizer): ``moving_mean``
    and ``moving_variance``, one per channel, starting at 0 and 1, and
    ``n_updates`` of shape (1,), the number t of batches they have followed
    (``partial_fit`` and ``warm_start`` go on counting).

    The running statistics are those of Adam's bias-corrected moments: the
    exponential moving average ``a_t = momentum * a_{t-1} + (1 - momentum) *
    batch_t`` from ``a_0 = 0``, divided by ``1 - momentum**t``. That is the
    average of the t batches' statistics weighted by ``momentum**(t - k)``
    for batch k, so the first batch's statistics count fully, nothing is left
    of the starting values (Keras' and PyTorch's plain average still holds
    ``momentum**t`` of them: 13% after 200 batches at 0.99, enough to put a
    channel's mean several standard deviations off), and after a few
    ``1 / (1 - momentum)`` batches the update is the plain one. The stored
    ``moving_mean`` and ``moving_variance`` are the corrected values, updated
    as ``running = (1 - r_t) * running + r_t * batch`` with
    ``r_t = (1 - momentum) / (1 - momentum**t)``. Models saved before
    ``n_updates`` existed load as fully warmed up (plain updates). The count
    stops at 2**24 (exact in float32), where ``1 - momentum**t`` is 1 in
    float64 for any momentum up to 0.999997.

    The running variance is updated with the batch's *biased* variance, the
    one that normalizes the batch, as Keras 3 does (PyTorch uses the
    unbiased one, larger by ``N / (N - 1)`` for N values per channel). The
    biased one is what makes sample weights exact: the estimator's batch
    weights weigh the statistics, so a sample of weight 0 is left out and one
    of integer weight k counts as k copies, whatever the weights' scale.

    With a sequence mask (from ``Masking`` or ``Embedding(mask_zero=True)``)
    and a channel axis after the steps, the masked steps are left out of the
    statistics.
    """

    _parameter_constraints = {
        "axis": [Integral, None],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "center": ["boolean"],
        "scale": ["boolean"],
        "name": [str, None],
    }

    _reads_layout = True  # axis=None follows the input's layout

    def __init__(self, axis=None, momentum=0.9, epsilon=1e-3, center=True, scale=True,
                 name=None):
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.name = name

    def _build(self, input_shape, dtype, name, after_sequence=False):
        return BatchNormalizationLayer(self, input_shape, dtype, name,
                                       channel_axis(self.axis, after_sequence))


class BatchNormalizationLayer(Layer):
    """Runtime state of :class:`BatchNormalization`."""

    passes_mask = True  # the output keeps the input's steps
    takes_sample_weight = True  # the batch statistics are weighted
    # Model files written before the count existed lack it: their running
    # statistics have followed enough batches to be taken as warmed up.
    late_buffers = {"n_updates": MAX_UPDATES}

    def __init__(self, spec, input_shape, dtype, name, axis):
        position, lead, C, P = channel_layout(input_shape, axis,
                                              f"BatchNormalization {name!r}")
        super().__init__(name, input_shape, input_shape, dtype)
        self.position, self.lead, self.channels, self.positions = position, lead, C, P
        self.momentum = float(spec.momentum)
        self.epsilon = float(spec.epsilon)
        self.param_shapes = {}
        if spec.scale:
            self.param_shapes["gamma"] = (C,)
        if spec.center:
            self.param_shapes["beta"] = (C,)
        self.buffer_shapes = {"moving_mean": (C,), "moving_variance": (C,),
                              "n_updates": (1,)}
        self._cache = None

    def initialize(self, rng):
        if "gamma" in self.params:
            self.params["gamma"][...] = 1
        if "beta" in self.params:
            self.params["beta"][...] = 0
        self.buffers["moving_mean"][...] = 0
        self.buffers["moving_variance"][...] = 1
        self.buffers["n_updates"][...] = 0

    def validate_weight(self, key, value):
        if key == "moving_variance" and np.any(value < 0):
            raise ValueError(f"Layer {self.name!r}: moving_variance must be non-negative.")
        if key == "n_updates" and not np.all((value >= 0) & (value <= MAX_UPDATES)
                                             & (value == np.floor(value))):
            raise ValueError(f"Layer {self.name!r}: n_updates must be a whole number "
                             f"in [0, {MAX_UPDATES}], got {np.asarray(value).tolist()}.")

    def _update_weights(self):
        """``(1 - r_t, r_t)``, the weights of the running and the batch
        statistics in the t-th update (see the spec's Notes), and count it."""
        m = self.momentum
        count = self.buffers.get("n_updates")
        if count is None:  # pickled before the count existed: warmed up
            return m, 1.0 - m
        t = float(count[0])
        count[0] = min(t + 1.0, MAX_UPDATES)
        # Once momentum**t underflows these are exactly Keras' m and 1 - m.
        past = m ** t  # the starting values' share in the uncorrected average
        denominator = 1.0 - past * m
        return m * (1.0 - past) / denominator, (1.0 - m) / denominator

    def _rows(self, X):
        return X.reshape(X.shape[0] * self.lead, self.channels, self.positions)

    def _statistics_weights(self, n, sample_weight, mask):
        """Row weights of the batch statistics, or None for equal ones.

        Sample weights repeat over the rows of a sample; with a mask over the
        steps, and the steps before the channel axis, masked steps get 0.
        """
        w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
        if w is not None and w.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}.")
        if mask is None or self.position == 0:
            return None if w is None else np.repeat(w, self.lead)
        mask = np.asarray(mask)
        steps = self.input_shape[0]
        if mask.shape != (n, steps):
            raise ValueError(f"mask must have shape {(n, steps)}, got {mask.shape}.")
        per_step = mask.astype(np.float64)
        if w is not None:
            per_step *= w[:, None]
        return np.repeat(per_step.ravel(), self.lead // steps)

    def forward(self, X, training=False, rng=None, mask=None, sample_weight=None):
        n = X.shape[0]
        X3 = self._rows(X)
        gamma, beta = self.params.get("gamma"), self.params.get("beta")
        if not training:
            self._cache = None
            Y = _ops.batchnorm_inference(X3, gamma, beta, self.buffers["moving_mean"],
                                         self.buffers["moving_variance"], self.epsilon)
            return Y.reshape(X.shape)
        weights = self._statistics_weights(n, sample_weight, mask)
        # A batch whose weights are all 0 counts for nothing: it is normalized
        # by its plain statistics and leaves the running ones alone.
        update = weights is None or weights.sum() > 0
        if not update:
            weights = None
        Y, Xhat, mean, var = _ops.batchnorm_train_forward(
            X3, gamma, beta, self.epsilon, weights,
            out=self._scratch("Y", X3.shape), xhat_out=self._scratch("Xhat", X3.shape))
        if update:
            keep, rate = self._update_weights()
            for key, batch in (("moving_mean", mean), ("moving_variance", var)):
                running = self.buffers[key]
                running[...] = keep * running + rate * batch
        self._cache = (Xhat, var, weights)
        return Y.reshape(X.shape)

    def backward(self, dY, context, need_input_grad=True):
        Xhat, var, weights = self._cache
        dY3 = dY.reshape(Xhat.shape)
        out = self._scratch("dX", Xhat.shape) if need_input_grad else None
        dX, dgamma, dbeta = _ops.batchnorm_backward(
            dY3, Xhat, self.params.get("gamma"), var, self.epsilon,
            context.row_weights(Xhat.shape[0]), weights, context.scale,
            need_input_grad=need_input_grad, out=out)
        if "gamma" in self.grads:
            self.grads["gamma"][...] = dgamma
        if "beta" in self.grads:
            self.grads["beta"][...] = dbeta
        return None if dX is None else dX.reshape(dY.shape)

    def clear(self):
        self._cache = None

    def forward_flops(self):
        """Two per value at inference: a multiply-add, the statistics,
        ``gamma`` and ``beta`` folded into one scale and shift per channel
        (that per-channel folding is not counted)."""
        return 2 * int(np.prod(self.input_shape, dtype=np.int64))
