"""Sample weights: an integer weight is that many copies of the row, a zero weight removes it."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

from .oracles import make_blobs


def fixed_start(X, covariance_type, n_components=3):
    start = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)


def fit(X, sample_weight=None, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(3, tol=0, max_iter=20, **settings).fit(X, sample_weight=sample_weight)


def assert_models_close(a, b):
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12, err_msg=name)


def test_integer_weights_equal_repeated_rows(backend, covariance_type):
    X = make_blobs(700, 3, 3, seed=0)
    counts = np.random.RandomState(1).randint(0, 4, size=700)
    settings = dict(covariance_type=covariance_type, backend=backend, **fixed_start(X, covariance_type))
    weighted = fit(X, counts, **settings)
    repeated = fit(np.repeat(X, counts, axis=0), **settings)
    assert_models_close(weighted, repeated)


def test_zero_weight_removes_row_even_far_outlier(backend, covariance_type):
    X = make_blobs(500, 2, 3, seed=2)
    X[7] = 1e8  # where its log-likelihood underflows to a huge negative number
    w = np.ones(500)
    w[7] = 0.0
    settings = dict(covariance_type=covariance_type, backend=backend, **fixed_start(np.delete(X, 7, 0), covariance_type))
    assert_models_close(fit(X, w, **settings), fit(np.delete(X, 7, axis=0), **settings))


def test_constant_weight_changes_nothing(covariance_type):
    X = make_blobs(400, 2, 3, seed=3)
    settings = dict(covariance_type=covariance_type, **fixed_start(X, covariance_type))
    assert_models_close(fit(X, np.full(400, 2.5), **settings), fit(X, **settings))


def test_weights_steer_default_initialisation():
    """The k-means initialisation sees the weights too: a heavily weighted blob gets the larger mixture weight."""
    X = make_blobs(600, 2, 2, seed=4)
    labels = GaussianMixture(2, random_state=0).fit_predict(X)
    w = np.where(labels == 0, 10.0, 1.0)
    model = GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    heavy = model.predict(X[labels == 0][:1])[0]
    assert model.weights_[heavy] > 0.5 + 0.3 * abs(np.mean(labels == 0) - 0.5)


@pytest.mark.parametrize(
    "sample_weight, message",
    [
        (-np.ones(50), "Negative values in data passed to `sample_weight`"),
        (np.ones(49), r"sample_weight.shape == \(49,\), expected \(50,\)"),
        (np.zeros(50), "at least one non-zero"),
        (np.full(50, np.nan), "sample_weight contains NaN"),
        (np.ones((50, 2)), "1D array"),
    ],
)
def test_bad_sample_weight_raises(sample_weight, message):
    X = make_blobs(50, 2, 2, seed=5)
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(X, sample_weight=sample_weight)
