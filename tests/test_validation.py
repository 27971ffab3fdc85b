"""Bad input gets scikit-learn's kind of error (ValueError or TypeError) with a message naming the problem."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from fastgmm import GaussianMixture

from .oracles import make_blobs

X = make_blobs(60, 3, 2, seed=0)


@pytest.mark.parametrize(
    "data, error, message",
    [
        (np.where(np.arange(180).reshape(60, 3) == 5, np.nan, X), ValueError, "Input X contains NaN"),
        (np.where(np.arange(180).reshape(60, 3) == 5, np.inf, X), ValueError, "Input X contains infinity"),
        (X[:, 0], ValueError, "Expected 2D array, got 1D array"),
        (X.reshape(60, 3, 1), ValueError, "Found array with dim 3"),
        (X[:0], ValueError, "0 sample"),
        (X[:1], ValueError, "minimum of 2 is required"),
        (X + 1j, ValueError, "Complex data not supported"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), ValueError, "could not convert string to float"),
    ],
)
def test_bad_X_raises(data, error, message):
    with pytest.raises(error, match=message):
        GaussianMixture(2).fit(data)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="Expected n_samples >= n_components but got n_components = 5, n_samples = 4"):
        GaussianMixture(5).fit(X[:4])


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_components=0), "'n_components' parameter of GaussianMixture must be an int in the range"),
        (dict(covariance_type="bogus"), "'covariance_type' parameter of GaussianMixture must be a str among"),
        (dict(tol=-1.0), "'tol' parameter"),
        (dict(reg_covar=-1.0), "'reg_covar' parameter"),
        (dict(max_iter=-1), "'max_iter' parameter"),
        (dict(n_init=0), "'n_init' parameter"),
        (dict(init_params="bogus"), "'init_params' parameter"),
        (dict(backend="bogus"), "'backend' parameter"),
        (dict(n_jobs="two"), "'n_jobs' parameter"),
    ],
)
def test_bad_parameters_raise(params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**{"n_components": 2, **params}).fit(X)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(weights_init=[0.5, 0.3, 0.2]), r"'weights' should have the shape of \(2,\)"),
        (dict(weights_init=[1.5, -0.5]), "'weights' should be in the range"),
        (dict(weights_init=[0.5, 0.4]), "'weights' should be normalized"),
        (dict(means_init=np.zeros((2, 4))), r"'means' should have the shape of \(2, 3\)"),
        (dict(precisions_init=np.ones((2, 3))), "'full precision' should have the shape"),
        (dict(precisions_init=-np.stack([np.eye(3)] * 2)), "'full precision' should be symmetric, positive-definite"),
        (dict(covariance_type="diag", precisions_init=-np.ones((2, 3))), "'diag precision' should be positive"),
        (dict(covariance_type="spherical", precisions_init=np.zeros(2)), "'spherical precision' should be positive"),
        (dict(covariance_type="tied", precisions_init=np.ones((3, 3))), "'tied precision' should be symmetric"),
    ],
)
def test_bad_initial_arrays_raise(params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, **params).fit(X)


def test_wrong_n_features_at_predict():
    model = GaussianMixture(2, random_state=0).fit(X)
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3 features"):
            getattr(model, method)(X[:, :2])


def test_not_fitted():
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(NotFittedError):
            getattr(GaussianMixture(2), method)(X)
    with pytest.raises(NotFittedError):
        GaussianMixture(2).sample(3)


def test_bad_sample_count():
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
        model.sample(0)


def test_singular_data_without_regularisation_raises_sklearn_message():
    degenerate = np.repeat(X[:3], 20, axis=0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance.*increase reg_covar"):
        GaussianMixture(3, reg_covar=0, random_state=0).fit(degenerate)


def test_unknown_backend_name_and_environment(monkeypatch):
    from fastgmm._backends import get_backend

    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        get_backend("bogus")
    monkeypatch.setenv("FASTGMM_BACKEND", "numpy")
    assert get_backend("auto").NAME == "numpy"
