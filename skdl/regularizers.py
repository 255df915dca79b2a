"""Weight penalties for a layer's ``kernel_regularizer``.

A regularizer is a small spec with ``get_params``/``set_params`` (a
scikit-learn ``BaseEstimator``), so it is cloned with the layer and its
coefficients can be searched by name, e.g. ``kernel_regularizer__l2`` on a
layer spec. It adds ``l1 * sum(|w|) + l2 * sum(w**2)`` to the training loss
for the weights it is attached to (Keras's convention: the L2 term's gradient
is ``2 * l2 * w``).

Which parameters are weights: the kernels of ``Dense``, ``Conv1D`` and
``Conv2D``; the kernel and recurrent kernel of ``SimpleRNN``, ``GRU`` and
``LSTM``; the table of a trainable ``Embedding``. Biases, batch-normalization
``gamma``/``beta`` and PReLU slopes never are. A weight whose layer has no
regularizer gets the estimator-wide coefficients (see
``skdl._network.Network.penalty_coefficients``).
"""
from abc import ABCMeta, abstractmethod
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

__all__ = ["L1", "L1L2", "L2", "Regularizer"]

_NON_NEGATIVE = [Interval(Real, 0, None, closed="left")]


class Regularizer(BaseEstimator, metaclass=ABCMeta):
    """Base class of the penalty specs."""

    _parameter_constraints: dict = {}

    @abstractmethod
    def _coefficients(self):
        """(l1, l2) as given."""

    def coefficients(self):
        """Validated penalty coefficients.

        Returns
        -------
        (l1, l2) : tuple of float
        """
        validate_parameter_constraints(self._parameter_constraints,
                                       self.get_params(deep=False),
                                       caller_name=type(self).__name__)
        l1, l2 = self._coefficients()
        return float(l1), float(l2)

    def penalty(self, weights):
        """The penalty this regularizer adds to the loss for ``weights``.

        Parameters
        ----------
        weights : array-like of any shape

        Returns
        -------
        float
            ``l1 * sum(|w|) + l2 * sum(w**2)``, summed in float64.
        """
        l1, l2 = self.coefficients()
        w = np.asarray(weights, dtype=np.float64)
        return float(l1 * np.abs(w).sum() + l2 * np.square(w).sum())


class L1L2(Regularizer):
    """L1 and L2 penalty: ``l1 * sum(|w|) + l2 * sum(w**2)``.

    Parameters
    ----------
    l1 : float >= 0, default=0.0
    l2 : float >= 0, default=0.0
    """

    _parameter_constraints = {"l1": _NON_NEGATIVE, "l2": _NON_NEGATIVE}

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = l1
        self.l2 = l2

    def _coefficients(self):
        return self.l1, self.l2


class L1(Regularizer):
    """L1 penalty ``l1 * sum(|w|)``; the same as ``L1L2(l1=l1)``.

    Parameters
    ----------
    l1 : float >= 0, default=0.01
    """

    _parameter_constraints = {"l1": _NON_NEGATIVE}

    def __init__(self, l1=0.01):
        self.l1 = l1

    def _coefficients(self):
        return self.l1, 0.0


class L2(Regularizer):
    """L2 penalty ``l2 * sum(w**2)``; the same as ``L1L2(l2=l2)``.

    Parameters
    ----------
    l2 : float >= 0, default=0.01
    """

    _parameter_constraints = {"l2": _NON_NEGATIVE}

    def __init__(self, l2=0.01):
        self.l2 = l2

    def _coefficients(self):
        return 0.0, self.l2
