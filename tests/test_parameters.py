"""The model layer: M-step from statistics against direct weighted moments, Cholesky conversions against numpy's
inverse, parameter counts against scikit-learn."""

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from fastgmm._collapse import m_step
from fastgmm._parameters import (
    MixtureParameters,
    Statistics,
    covariances_from_precision_cholesky,
    precision_cholesky_from_covariances,
    precision_cholesky_from_precisions,
)

from .oracles import make_blobs, oracle_statistics, oracle_weighted_log_prob, random_params


def _no_seeds(count):
    raise AssertionError("nothing collapsed, so nothing is re-seeded")


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_m_step_equals_weighted_moments(covariance_type, offset):
    X = make_blobs(400, 3, 3, seed=0, offset=offset)
    params = random_params(covariance_type, 3, 3, seed=1, offset=offset)
    w = np.random.RandomState(2).uniform(0.5, 2, 400)
    ll, total, nk, s1, s2 = oracle_statistics(X, w, params)
    new, reseeded, moved = m_step(Statistics(ll, total, nk, s1, s2, params.means), covariance_type, 1e-3, _no_seeds)
    assert reseeded == 0 and not moved

    # Direct two-pass weighted moments from the responsibilities.
    a = oracle_weighted_log_prob(X, params)
    wr = np.exp(a - logsumexp(a, axis=1)[:, None]) * w[:, None]
    means = (wr.T @ X) / wr.sum(axis=0)[:, None]
    scatter = np.stack([(wr[:, k, None] * (X - means[k])).T @ (X - means[k]) for k in range(3)])
    expected_cov = {
        "full": scatter / wr.sum(axis=0)[:, None, None] + 1e-3 * np.eye(3),
        "tied": scatter.sum(axis=0) / wr.sum() + 1e-3 * np.eye(3),
        "diag": np.einsum("kii->ki", scatter) / wr.sum(axis=0)[:, None] + 1e-3,
        "spherical": np.einsum("kii->k", scatter) / wr.sum(axis=0) / 3 + 1e-3,
    }[covariance_type]
    # The 10 eps added to N_k (as scikit-learn does) is ~1e-12 relative for a component holding 1e-3 of weight.
    np.testing.assert_allclose(new.weights, wr.sum(axis=0) / w.sum(), rtol=1e-10)
    np.testing.assert_allclose(new.means, means, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(new.covariances, expected_cov, rtol=1e-9)


def test_precision_cholesky_conventions(covariance_type):
    params = random_params(covariance_type, 3, 4, seed=3)
    U = params.precisions_cholesky
    cov = params.covariances
    if covariance_type in ("full", "tied"):
        stacked_U = U if covariance_type == "full" else U[None]
        stacked_cov = cov if covariance_type == "full" else cov[None]
        for u, c in zip(stacked_U, stacked_cov):
            np.testing.assert_allclose(np.triu(u), u)  # upper triangular
            np.testing.assert_allclose(u @ u.T, np.linalg.inv(c), rtol=1e-10)
    else:
        np.testing.assert_allclose(U**2, 1 / cov, rtol=1e-12)
    np.testing.assert_allclose(precision_cholesky_from_precisions(params.precisions(), covariance_type), U, rtol=1e-10)
    np.testing.assert_allclose(covariances_from_precision_cholesky(U, covariance_type), cov, rtol=1e-10)


def test_not_positive_definite_covariance_raises_sklearn_message(covariance_type):
    shape_cov = {"full": -np.ones((2, 3, 3)), "tied": -np.ones((3, 3)), "diag": -np.ones((2, 3)), "spherical": -np.ones(2)}
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        precision_cholesky_from_covariances(shape_cov[covariance_type], covariance_type)


@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (5, 2)])
def test_n_parameters_matches_sklearn(covariance_type, shape):
    k, d = shape
    X = make_blobs(50, d, k, seed=4)
    sk = SklearnGaussianMixture(k, covariance_type=covariance_type, max_iter=1, random_state=0).fit(X)
    params = random_params(covariance_type, k, d)
    assert params.n_parameters() == sk._n_parameters()


def test_statistics_add_requires_same_shift():
    a = Statistics(1.0, 2.0, np.ones(1), np.ones((1, 1)), np.ones(1), np.zeros((1, 1)))
    b = Statistics(1.0, 2.0, np.ones(1), np.ones((1, 1)), np.ones(1), np.ones((1, 1)))
    total = a + a
    assert total.log_likelihood == 2.0 and total.total_weight == 4.0
    with pytest.raises(ValueError, match="different shifts"):
        a + b
    assert isinstance(random_params("full", 2, 2), MixtureParameters)
