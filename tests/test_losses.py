"""Loss objects: output transforms against scipy, per-sample values."""
import numpy as np
from numpy.testing import assert_allclose
from scipy.special import expit, softmax

from skdl._losses import RegressionLoss, SigmoidCrossEntropy, SoftmaxCrossEntropy


def test_transforms_are_float64_and_stable():
    Z = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    P = SoftmaxCrossEntropy().transform(Z)
    assert P.dtype == np.float64
    assert_allclose(P.sum(1), 1.0)
    assert_allclose(P, softmax(Z.astype(np.float64), axis=1))
    assert np.isfinite(SoftmaxCrossEntropy().log_transform(Z)).all()
    S = SigmoidCrossEntropy()
    assert_allclose(S.transform(Z), expit(Z.astype(np.float64)))
    assert np.isfinite(S.log_transform(Z)).all()
    assert_allclose(RegressionLoss("poisson").transform(np.log([[2.0]])), [[2.0]])
    assert_allclose(RegressionLoss("squared_error").transform(np.array([[-3.0]])), [[-3.0]])


def test_cross_entropy_values():
    Z = np.array([[2.0, 0.0, -1.0]])
    Y = np.array([[0.0, 1.0, 0.0]])
    loss, _ = SoftmaxCrossEntropy()(Z, Y)
    assert_allclose(loss, -np.log(softmax(Z, axis=1)[0, 1]))
    loss, _ = SigmoidCrossEntropy()(Z, np.array([[1.0, 0.0, 1.0]]))
    p = expit(Z[0])
    assert_allclose(loss, -(np.log(p[0]) + np.log(1 - p[1]) + np.log(p[2])))
    loss, _ = RegressionLoss("squared_error")(np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]]))
    assert_allclose(loss, (0.5 * 1 + 0.5 * 4) / 2)
