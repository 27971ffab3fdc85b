"""float32 input: used as it is (no float64 copy), accumulated in float64, so the fit equals the float64 fit."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

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
    assert fit32.means_.dtype == np.float64
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
    model.fit(X[:100])  # warm up imports and compilation outside the measurement
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.25 * X.nbytes, f"fit allocated {peak / X.nbytes:.2f} x X.nbytes"
