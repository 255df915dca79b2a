"""scikit-learn's own estimator checks, with nothing expected to fail."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdl import NNClassifier, NNRegressor


@parametrize_with_checks([NNClassifier(), NNRegressor()], expected_failed_checks=None)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
