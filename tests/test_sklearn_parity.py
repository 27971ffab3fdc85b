"""Same initialisation, same model: fastgmm against scikit-learn's GaussianMixture."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from fastgmm import GaussianMixture

from .oracles import make_blobs

N_COMPONENTS = 3


def fit_quietly(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, **kwargs)


def shared_init(X, covariance_type):
    """Initial weights, means and precisions from a short scikit-learn run: a start neither library chose."""
    start = fit_quietly(SklearnGaussianMixture(N_COMPONENTS, covariance_type=covariance_type, max_iter=1, random_state=0), X)
    return dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)


def assert_same_model(ours, theirs, X, *, param_atol=1e-12, first_bound_rtol=1e-10):
    """Lower bounds to 1e-10 relative, parameters to 1e-8 relative, identical labels."""
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
    assert len(ours.lower_bounds_) == ours.n_iter_
    if hasattr(theirs, "lower_bounds_"):  # scikit-learn >= 1.7
        np.testing.assert_allclose(ours.lower_bounds_[0], theirs.lower_bounds_[0], rtol=first_bound_rtol)
        np.testing.assert_allclose(ours.lower_bounds_[1:], theirs.lower_bounds_[1:], rtol=1e-10)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(
            getattr(ours, name), getattr(theirs, name), rtol=1e-8, atol=param_atol, err_msg=name
        )
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_identical_initialisation_identical_model(backend, covariance_type):
    X = make_blobs(3000, 4, N_COMPONENTS, seed=1)
    settings = dict(covariance_type=covariance_type, tol=0, max_iter=25, **shared_init(X, covariance_type))
    ours = fit_quietly(GaussianMixture(N_COMPONENTS, backend=backend, **settings), X)
    theirs = fit_quietly(SklearnGaussianMixture(N_COMPONENTS, **settings), X)
    assert_same_model(ours, theirs, X)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_same_random_state_same_model(init_params, covariance_type):
    """Every initialisation draws scikit-learn's random numbers, so even the default fit is the same fit."""
    single_point_seeds = init_params in ("k-means++", "random_from_data")
    if single_point_seeds and covariance_type == "tied":
        pytest.skip("deliberate difference, see test_tied_single_point_seeds_start_at_reg_covar")
    X = make_blobs(1500, 3, N_COMPONENTS, seed=2)
    settings = dict(covariance_type=covariance_type, init_params=init_params, random_state=7, n_init=2, max_iter=15)
    ours = fit_quietly(GaussianMixture(N_COMPONENTS, **settings), X)
    theirs = fit_quietly(SklearnGaussianMixture(N_COMPONENTS, **settings), X)
    # Seeded by single points, a diag/spherical start has variance reg_covar, which scikit-learn computes as
    # x**2 - mu**2 + reg_covar: its first bound carries ~4e-8 relative cancellation noise (measured), ours none.
    first_bound_rtol = 1e-7 if single_point_seeds and covariance_type in ("diag", "spherical") else 1e-10
    assert_same_model(ours, theirs, X, first_bound_rtol=first_bound_rtol)


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
def test_tied_single_point_seeds_start_at_reg_covar(init_params):
    """Seeded by single points, every covariance type starts at reg_covar * I.

    scikit-learn's tied start differs: it subtracts the seeds' moments from X.T @ X summed over *all* rows, which
    depends on where the origin is (measured: a start of ~3500 * I on data of unit spread). fastgmm keeps the start
    consistent with the other covariance types and translation invariant.
    """
    X = make_blobs(600, 3, N_COMPONENTS, seed=2)
    settings = dict(covariance_type="tied", init_params=init_params, random_state=7, max_iter=0, reg_covar=1e-4)
    start = GaussianMixture(N_COMPONENTS, **settings).fit(X)
    np.testing.assert_allclose(start.covariances_, 1e-4 * np.eye(3), rtol=1e-12, atol=1e-16)
    shifted = GaussianMixture(N_COMPONENTS, **dict(settings, max_iter=20)).fit(X + 1e3)
    fitted = GaussianMixture(N_COMPONENTS, **dict(settings, max_iter=20)).fit(X)
    np.testing.assert_allclose(shifted.means_ - 1e3, fitted.means_, atol=1e-8)


def test_far_from_origin_full_matches_sklearn(backend):
    """scikit-learn's full covariance is a two-pass computation, accurate at +1e6: both must agree there."""
    offset = 1e6
    X = make_blobs(3000, 4, N_COMPONENTS, seed=3)
    init = shared_init(X, "full")
    init["means_init"] = init["means_init"] + offset
    settings = dict(covariance_type="full", tol=0, max_iter=25, **init)
    ours = fit_quietly(GaussianMixture(N_COMPONENTS, backend=backend, **settings), X + offset)
    theirs = fit_quietly(SklearnGaussianMixture(N_COMPONENTS, **settings), X + offset)
    # At 1e6 a mean is known to eps * 1e6 ~ 2e-10 absolute: near-zero entries get that absolute tolerance.
    assert_same_model(ours, theirs, X + offset, param_atol=1e-9)


def test_far_from_origin_equals_translated_fit(backend, covariance_type):
    """At +1e6 the fit is the fit of the centred data, translated: the shifted statistics lose nothing.

    (scikit-learn's tied, diag and spherical M-steps use raw moments and lose 1e-7 to 1e-3 there, so the oracle is
    scikit-learn on the untranslated data.)
    """
    offset = 1e6
    X = make_blobs(3000, 4, N_COMPONENTS, seed=4)
    init = shared_init(X, covariance_type)
    settings = dict(covariance_type=covariance_type, tol=0, max_iter=25)
    oracle = fit_quietly(SklearnGaussianMixture(N_COMPONENTS, **settings, **init), X)
    init["means_init"] = init["means_init"] + offset
    ours = fit_quietly(GaussianMixture(N_COMPONENTS, backend=backend, **settings, **init), X + offset)
    np.testing.assert_allclose(ours.lower_bound_, oracle.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(ours.means_ - offset, oracle.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ours.covariances_, oracle.covariances_, rtol=1e-8)
    np.testing.assert_array_equal(ours.predict(X + offset), oracle.predict(X))


def test_max_iter_zero_returns_initialisation(covariance_type):
    X = make_blobs(500, 2, N_COMPONENTS, seed=5)
    ours = GaussianMixture(N_COMPONENTS, covariance_type=covariance_type, max_iter=0, random_state=1).fit(X)
    theirs = SklearnGaussianMixture(N_COMPONENTS, covariance_type=covariance_type, max_iter=0, random_state=1).fit(X)
    assert ours.n_iter_ == 0 and ours.lower_bound_ == -np.inf and ours.lower_bounds_ == []
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-12)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-12)


def test_warm_start_sequence_matches_sklearn(covariance_type):
    X = make_blobs(1000, 3, N_COMPONENTS, seed=6)
    settings = dict(covariance_type=covariance_type, warm_start=True, max_iter=3, random_state=0, tol=0)
    ours = GaussianMixture(N_COMPONENTS, **settings)
    theirs = SklearnGaussianMixture(N_COMPONENTS, **settings)
    for _ in range(3):
        fit_quietly(ours, X)
        fit_quietly(theirs, X)
        np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
        np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-8)


def test_scores_and_criteria_match_sklearn(covariance_type):
    X = make_blobs(800, 3, N_COMPONENTS, seed=8)
    settings = dict(covariance_type=covariance_type, random_state=3)
    ours = fit_quietly(GaussianMixture(N_COMPONENTS, **settings), X)
    theirs = fit_quietly(SklearnGaussianMixture(N_COMPONENTS, **settings), X)
    for method in ("score", "bic", "aic"):
        np.testing.assert_allclose(getattr(ours, method)(X), getattr(theirs, method)(X), rtol=1e-10, err_msg=method)
    ours_X, ours_y = ours.sample(500)
    theirs_X, theirs_y = theirs.sample(500)
    np.testing.assert_allclose(ours_X, theirs_X, rtol=1e-8)
    np.testing.assert_array_equal(ours_y, theirs_y)


def test_verbose_output_matches_sklearn(capsys):
    X = make_blobs(300, 2, 2, seed=9)
    settings = dict(n_components=2, verbose=1, verbose_interval=2, random_state=0, n_init=2, max_iter=5)
    fit_quietly(GaussianMixture(**settings), X)
    ours = capsys.readouterr().out
    fit_quietly(SklearnGaussianMixture(**settings), X)
    theirs = capsys.readouterr().out
    assert ours == theirs and "Iteration 2" in ours
