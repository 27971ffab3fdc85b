"""scikit-learn's own estimator checks (API, cloning, pickling, input handling, sample-weight equivalence)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgmm import BayesianGaussianMixture, GaussianMixture


@parametrize_with_checks([GaussianMixture(), BayesianGaussianMixture()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
