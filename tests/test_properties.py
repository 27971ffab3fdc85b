"""Property-based tests (hypothesis): over random shapes, scales, offsets, sample weights and covariance types, a
fit keeps EM's invariants, and no damaged model file loads as anything but the saved model or a ModelFileError.

CI runs a fixed set of examples (``derandomize=True``, well under a minute); ``HYPOTHESIS_PROFILE=thorough`` searches
ten times longer with fresh random examples.
"""

import io
import os
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastgmm  # noqa: E402
from fastgmm import ComponentCollapseWarning, GaussianMixture, ModelFileError  # noqa: E402

settings.register_profile(
    "ci", max_examples=200, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@st.composite
def mixtures(draw):
    """(X, sample_weight, n_components, covariance_type, scale): K blobs of random sizes, spread ``scale`` about
    centres ``offset`` away from the origin."""
    n_components = draw(st.integers(1, 4))
    n_features = draw(st.integers(1, 5))
    n_samples = draw(st.integers(20 * n_components * (n_features + 1), 40 * n_components * (n_features + 1)))
    scale = 10.0 ** draw(st.integers(-3, 6))
    offset = draw(st.sampled_from([0.0, 1e4])) * scale
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=6.0, size=(n_components, n_features))
    X = (centres[rng.randint(n_components, size=n_samples)] + rng.normal(size=(n_samples, n_features))) * scale
    X += offset
    if draw(st.booleans()):
        X = X.astype(np.float32)
    weight = None
    if draw(st.booleans()):
        weight = rng.uniform(0, 3, n_samples) * (rng.uniform(size=n_samples) > 0.1)
        weight[0] = 1.0
    covariance_type = draw(st.sampled_from(["full", "tied", "diag", "spherical"]))
    return X, weight, n_components, covariance_type, scale


def fit(X, weight, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", ComponentCollapseWarning)
        try:
            return GaussianMixture(**params).fit(X, sample_weight=weight)
        except ValueError as error:
            if "ill-defined empirical covariance" in str(error):
                reject()  # reg_covar=0 and a component on too few points: outside the invariants
            raise
        except ComponentCollapseWarning:
            reject()  # a re-seeding iteration may lower the bound by design


@given(mixtures())
def test_em_invariants(mixture):
    X, weight, K, covariance_type, scale = mixture
    # reg_covar=0: EM with a regularised covariance is not an exact M-step, and need not raise the likelihood.
    model = fit(X, weight, n_components=K, covariance_type=covariance_type, reg_covar=0, tol=0, max_iter=15,
                random_state=0)
    # The float64 weights sum to 1; weights_ holds them in X's dtype, whose sum is 1 to that dtype's rounding.
    np.testing.assert_allclose(model._float64_parameters.weights.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(model.weights_.sum(), 1.0, rtol=1e-6 if X.dtype == np.float32 else 1e-12)
    cov = model.covariances_
    if covariance_type in ("full", "tied"):
        for matrix in cov if covariance_type == "full" else [cov]:
            np.testing.assert_array_equal(matrix, matrix.T)
            assert np.linalg.eigvalsh(matrix).min() > 0
    else:
        assert np.all(cov > 0)
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.isfinite(bounds))
    slack = 1e-9 * (1.0 + np.abs(bounds[:-1]))
    assert np.all(np.diff(bounds) >= -slack), np.diff(bounds).min()
    proba = model.predict_proba(X)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5 if X.dtype == np.float32 else 1e-12)


@settings(max_examples=60)
@given(mixtures(), st.floats(0.05, 0.5), st.integers(0, 2**31 - 1))
def test_missing_values_em_never_lowers_the_observed_likelihood(mixture, fraction, seed):
    """EM with NaN entries marginalised is EM on the observed data: with reg_covar=0 (an exact M-step) its
    observed-data log-likelihood never decreases, whatever the shape, scale, offset, weights and dtype."""
    X, weight, K, covariance_type, scale = mixture
    if X.shape[1] < 2:
        reject()  # a hole in a single-feature row leaves nothing observed
    rng = np.random.default_rng(seed)
    X = X.copy()
    holes = rng.random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False
    X[holes] = np.nan
    model = fit(X, weight, n_components=K, covariance_type=covariance_type, reg_covar=0, tol=0, max_iter=10,
                random_state=0, missing_values="marginalize")
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.isfinite(bounds))
    slack = 1e-9 * (1.0 + np.abs(bounds[:-1]))
    assert np.all(np.diff(bounds) >= -slack), np.diff(bounds).min()
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.impute(X)))


@given(mixtures(), st.integers(0, 2**31 - 1))
def test_row_order_changes_nothing_beyond_rounding(mixture, seed):
    X, weight, K, covariance_type, scale = mixture
    start = GaussianMixture(K, covariance_type=covariance_type, max_iter=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X, sample_weight=weight)
    init = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
    settings = dict(n_components=K, covariance_type=covariance_type, tol=0, max_iter=5, **init)
    order = np.random.RandomState(seed).permutation(len(X))
    a = fit(X, weight, **settings)
    b = fit(X[order], None if weight is None else weight[order], **settings)
    centre = np.abs(X).max()
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-6, atol=1e-6 * max(scale, 1e-6 * centre))
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-5, atol=1e-6 * scale**2)
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=1e-7, atol=1e-7)


SAVED = io.BytesIO()
_MODEL = GaussianMixture(2, random_state=0).fit(np.random.RandomState(0).normal(size=(100, 3)))
_MODEL.save(SAVED)
SAVED = SAVED.getvalue()


@given(
    st.lists(st.tuples(st.integers(0, len(SAVED) - 1), st.integers(0, 255)), min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(0, len(SAVED) - 1)),
)
def test_corrupted_model_files_load_unchanged_or_raise_model_file_error(flips, truncate_at):
    data = bytearray(SAVED)
    for position, value in flips:
        data[position] = value
    if truncate_at is not None:
        data = data[:truncate_at]
    try:
        model = fastgmm.load(io.BytesIO(bytes(data)))
    except ModelFileError:
        return
    # Only bytes no reader checks (a timestamp, say) changed: the model must be the saved one.
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(model, name), getattr(_MODEL, name))
    assert model.get_params() == _MODEL.get_params()
    assert model.lower_bounds_ == _MODEL.lower_bounds_ and model.n_iter_ == _MODEL.n_iter_
