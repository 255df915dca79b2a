"""Training losses on raw network outputs and the matching output transforms.

Each loss pairs a fused op (value and per-sample gradient on the outputs,
e.g. logits) with the transform that turns outputs into predictions, so the
network itself always ends in a linear layer.
"""
from abc import ABCMeta, abstractmethod

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax

from . import _ops


class Loss(metaclass=ABCMeta):
    """Base class: per-sample loss and gradient, and the output transform."""

    name = None

    @abstractmethod
    def __call__(self, Z, Y):
        """Per-sample loss (float64, (n,)) and gradient ((n, k)) at outputs Z."""

    def transform(self, Z):
        """Predictions (float64) from outputs Z of shape (n, k)."""
        return Z.astype(np.float64)


class SoftmaxCrossEntropy(Loss):
    """Softmax with categorical cross-entropy (multiclass log-loss)."""

    name = "log_loss"

    def __call__(self, Z, Y):
        return _ops.softmax_cross_entropy(Z, Y)

    def transform(self, Z):
        return softmax(Z.astype(np.float64), axis=1)

    def log_transform(self, Z):
        return log_softmax(Z.astype(np.float64), axis=1)


class SigmoidCrossEntropy(Loss):
    """Sigmoid with binary cross-entropy (binary and multilabel log-loss)."""

    name = "log_loss"

    def __call__(self, Z, Y):
        return _ops.sigmoid_cross_entropy(Z, Y)

    def transform(self, Z):
        return expit(Z.astype(np.float64))

    def log_transform(self, Z):
        return log_expit(Z.astype(np.float64))


class SoftmaxHellinger(SoftmaxCrossEntropy):
    """Softmax with the squared Hellinger distance to the one-hot target
    (bounded by 1 per sample: less pull from mislabelled samples)."""

    name = "hellinger"

    def __call__(self, Z, Y):
        return _ops.softmax_hellinger(Z, Y)


class SigmoidHellinger(SigmoidCrossEntropy):
    """Sigmoid with the squared Hellinger distance, per binary output."""

    name = "hellinger"

    def __call__(self, Z, Y):
        return _ops.sigmoid_hellinger(Z, Y)


class RegressionLoss(Loss):
    """Squared, absolute, Huber or Poisson loss averaged over the outputs."""

    def __init__(self, name, delta=1.0):
        self.name = name
        self.delta = delta

    def __call__(self, Z, Y):
        return _ops.regression_loss(self.name, Z, Y, self.delta)

    def transform(self, Z):
        Z = Z.astype(np.float64)
        # The Poisson loss reads the output as the log of the mean.
        return np.exp(Z) if self.name == "poisson" else Z
