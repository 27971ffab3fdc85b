"""float32 input: used as it is (no float64 copy), accumulated in float64, so the fit equals the float64 fit; the
fitted attributes are float32, as scikit-learn's, while the model keeps its float64 parameters for the kernels,
warm_start, save and pickle."""

import pickle

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture, select_model

from .oracles import make_blobs


@pytest.mark.parametrize("offset", [0.0, 1e5])
def test_float32_fit_equals_float64_fit_of_same_values(backend, covariance_type, offset):
    X32 = make_blobs(4000, 4, 3, seed=0, offset=offset).astype(np.float32)
    X64 = X32.astype(np.float64)
    start = GaussianMixture(3, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X64 - offset)
    init = dict(weights_init=start.weights_, means_init=start.means_ + offset, precisions_init=start.precisions_)
    settings = dict(covariance_type=covariance_type, tol=0, max_iter=30, backend=backend, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit32 = GaussianMixture(3, **settings).fit(X32)
        fit64 = GaussianMixture(3, **settings).fit(X64)
    np.testing.assert_allclose(fit32.lower_bound_, fit64.lower_bound_, rtol=1e-5)
    np.testing.assert_allclose(fit32.means_, fit64.means_, rtol=1e-5)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(fit32, name).dtype == np.float32, name
        assert getattr(fit64, name).dtype == np.float64, name
    np.testing.assert_allclose(fit32._float64_parameters.means, fit64.means_, rtol=1e-5)
    assert fit32.predict_proba(X32).dtype == np.float32
    assert fit32.score_samples(X32).dtype == np.float32
    np.testing.assert_array_equal(fit32.predict(X32), fit64.predict(X64))


def test_float32_data_is_not_copied(backend):
    """Peak Python-heap memory of a fit stays far below a float64 copy of X (which would be 2 * X.nbytes)."""
    X = make_blobs(400_000, 4, 3, seed=1).astype(np.float32)
    start = GaussianMixture(3, max_iter=0, random_state=0).fit(X[:5000])
    model = GaussianMixture(
        3,
        max_iter=2,
        tol=0,
        backend=backend,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
    )
    # Warm up imports and compilation outside the measurement: the small call compiles the serial kernels, the
    # whole X the parallel ones.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:100])
        model.fit(X)
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.25 * X.nbytes, f"fit allocated {peak / X.nbytes:.2f} x X.nbytes"


def _float32_fit(**settings):
    X32 = make_blobs(3000, 3, 3, seed=2, offset=1e4).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return X32, GaussianMixture(3, random_state=0, **settings).fit(X32)


def test_float32_attributes_are_the_float64_parameters_rounded(covariance_type):
    X32, model = _float32_fit(covariance_type=covariance_type)
    exact = model._float64_parameters
    np.testing.assert_array_equal(model.means_, exact.means.astype(np.float32))
    np.testing.assert_array_equal(model.precisions_, exact.precisions().astype(np.float32))
    # Predictions come from the float64 parameters: exactly those of the float64 model of the same parameters.
    twin = GaussianMixture(3, covariance_type=covariance_type)
    twin._set_fitted(exact, np.float64, model.converged_, model.n_iter_, model.lower_bound_, model.lower_bounds_)
    twin.n_features_in_ = 3
    np.testing.assert_array_equal(model.predict(X32), twin.predict(X32))
    np.testing.assert_allclose(model.score_samples(X32), twin.score_samples(X32), rtol=1e-6)


def test_float32_warm_start_continues_exactly():
    """Two warm-started fits of 3 iterations equal one fit of 6: the second starts from the float64 parameters,
    not from their float32 rounding."""
    X32, once = _float32_fit(max_iter=6, tol=0)
    _, twice = _float32_fit(max_iter=3, tol=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        twice.fit(X32)
    np.testing.assert_array_equal(twice._float64_parameters.means, once._float64_parameters.means)
    np.testing.assert_array_equal(twice.covariances_, once.covariances_)


def test_changed_attributes_are_used_in_place_of_the_float64_parameters():
    X32, model = _float32_fit()
    labels = model.predict(X32)
    # Components 0 and 1 swapped in place: the float64 parameters no longer describe the model.
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        getattr(model, name)[[0, 1]] = getattr(model, name)[[1, 0]]
    swapped = labels.copy()
    swapped[labels == 0], swapped[labels == 1] = 1, 0
    assert np.mean(model.predict(X32) == swapped) > 0.999
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):  # replaced: the fitted ones again
        setattr(model, name, getattr(model, name)[[1, 0, 2]])
    np.testing.assert_array_equal(model.predict(X32), labels)


def test_float32_pickle_is_exact():
    X32, model = _float32_fit()
    restored = pickle.loads(pickle.dumps(model))
    assert restored.means_.dtype == np.float32
    np.testing.assert_array_equal(restored._float64_parameters.means, model._float64_parameters.means)
    np.testing.assert_array_equal(restored.predict_proba(X32), model.predict_proba(X32))


def test_select_model_keeps_float32():
    X32 = make_blobs(2000, 2, 3, seed=4).astype(np.float32)
    best, results = select_model(X32, n_components=range(1, 4), covariance_type=("full", "diag"), random_state=0)
    assert best.means_.dtype == np.float32
    refit = GaussianMixture(best.n_components, covariance_type=best.covariance_type, init_params=best.init_params,
                            random_state=0).fit(X32)
    np.testing.assert_array_equal(best._float64_parameters.means, refit._float64_parameters.means)
    assert best.bic(X32) == refit.bic(X32)
