"""Bad input gets scikit-learn's kind of error (ValueError or TypeError) with a message naming the problem."""

import numpy as np
import pytest
from scipy import sparse
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
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), ValueError, "could not convert string to float"),
        (sparse.csr_matrix(X), TypeError, "Sparse data was passed for X, but dense data is required"),
        (None, ValueError, "Expected 2D array, got scalar array"),
        (3.0, ValueError, "Expected 2D array, got scalar array"),
        (np.empty((10, 0)), ValueError, r"0 feature\(s\) \(shape=\(10, 0\)\) while a minimum of 1 is required"),
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
        (dict(n_jobs=0), r"'n_jobs' parameter of GaussianMixture must be an int in the range \(-inf, -1\]"),
        (dict(n_components=2.5), "'n_components' parameter of GaussianMixture must be an int"),
        (dict(n_components="3"), "'n_components' parameter of GaussianMixture must be an int"),
        (dict(tol=np.nan), "'tol' parameter"),
        (dict(reg_covar=np.inf), "'reg_covar' parameter"),
        (dict(random_state="x"), "'random_state' parameter"),
        (dict(warm_start="yes"), "'warm_start' parameter"),
        (dict(n_init=1.5), "'n_init' parameter"),
        (dict(verbose_interval=0), "'verbose_interval' parameter"),
        (dict(init_sample_size=0), "'init_sample_size' parameter"),
    ],
)
def test_bad_parameters_raise(params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**{"n_components": 2, **params}).fit(X)


def test_remembered_parameter_checks_decide_as_scikit_learn_does():
    """Parameter sets that passed are not checked again (``_validation.validate_params``): the same values of
    another type are checked afresh (True for 1, 1.0 for 1, numpy integers), and a failure is never remembered."""
    from sklearn.base import BaseEstimator

    candidates = [dict(n_components=2), dict(n_components=True), dict(n_components=2.0), dict(n_components=np.int64(2)),
                  dict(tol=1), dict(tol=True), dict(max_iter=np.float64(5)), dict(warm_start=1),
                  dict(warm_start=np.bool_(True)), dict(random_state=np.int32(3)), dict(verbose=False),
                  dict(n_init=2), dict(n_init=2.0)]
    for _ in range(2):  # the second round meets every set that passed in the first one again
        for params in candidates:
            estimator = GaussianMixture(**params)
            try:
                BaseEstimator._validate_params(estimator)
                expected = None
            except ValueError as error:
                expected = str(error)
            if expected is None:
                estimator._validate_params()
            else:
                with pytest.raises(ValueError) as raised:
                    estimator._validate_params()
                assert str(raised.value) == expected


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


def test_a_models_own_weights_are_valid_initial_weights():
    """Found by hypothesis: with sample weights, one component's initial weight N_k / sum(w) can be 1 + 1 ulp."""
    weights = np.random.RandomState(0).uniform(0, 3, len(X))
    start = GaussianMixture(1, max_iter=0).fit(X, sample_weight=weights)
    GaussianMixture(1, weights_init=start.weights_, max_iter=2).fit(X, sample_weight=weights)
    GaussianMixture(1, weights_init=[1 + 2e-16]).fit(X)
    with pytest.raises(ValueError, match="'weights' should be in the range"):
        GaussianMixture(1, weights_init=[1 + 1e-6]).fit(X)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m.predict(np.full((2, 3), np.nan)), ValueError, "Input X contains NaN"),
        (lambda m: m.predict_proba(np.full((2, 3), np.inf)), ValueError, "Input X contains infinity"),
        (lambda m: m.score_samples(X[0]), ValueError, "Expected 2D array, got 1D array"),
        (lambda m: m.predict(X[:0]), ValueError, r"0 sample\(s\)"),
        (lambda m: m.bic(X[:, :2]), ValueError, "X has 2 features, but GaussianMixture is expecting 3 features"),
        (lambda m: m.score(X, sample_weight=-np.ones(len(X))), ValueError, "Negative values in data passed to"),
        (lambda m: m.sample("3"), ValueError, "Invalid value for 'n_samples'"),
    ],
    ids=["nan", "inf", "1-D", "empty", "bic width", "score weights", "sample count"],
)
def test_bad_input_after_fit_raises(call, error, message):
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(error, match=message):
        call(model)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(weights_init=[np.nan, 0.5]), "Input weights_init contains NaN"),
        (dict(means_init=np.full((2, 3), np.inf)), "Input means_init contains infinity"),
        (dict(covariance_type="diag", precisions_init=np.full((2, 3), np.nan)), "Input precisions_init contains NaN"),
        (dict(precisions_init=np.stack([np.eye(3) + np.triu(np.ones((3, 3)), 1)] * 2)), "should be symmetric"),
    ],
)
def test_non_finite_or_asymmetric_initial_arrays_raise(params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, **params).fit(X)


@pytest.mark.parametrize(
    "sample_weight, message",
    [
        (np.r_[np.inf, np.ones(59)], "Input sample_weight contains infinity"),
        (["a"] * 60, "could not convert string to float"),
    ],
)
def test_more_bad_sample_weights(sample_weight, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(X, sample_weight=sample_weight)


@pytest.mark.parametrize(
    "variant",
    [
        lambda X: X > 0,
        lambda X: X.astype(np.float16),
        lambda X: X.tolist(),
        lambda X: np.round(X * 10).astype(np.int32),
        lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    ],
    ids=["bool", "float16", "list", "int32", "strided"],
)
def test_other_input_types_fit_as_their_float64_values(variant):
    data = variant(X)
    expected = GaussianMixture(2, random_state=0).fit(np.asarray(data, dtype=np.float64))
    model = GaussianMixture(2, random_state=0).fit(data)
    np.testing.assert_array_equal(model.means_, expected.means_)
    np.testing.assert_array_equal(model.predict(data), expected.predict(np.asarray(data, dtype=np.float64)))


@pytest.mark.parametrize("layout", ["fortran", "strided", "read_only", "float32"])
def test_float_input_is_read_in_place(monkeypatch, layout):
    """Float32 and float64 X are never copied, whatever their memory layout: the kernels read the caller's array."""
    import fastgmm._base as estimator_module

    data = {
        "fortran": np.asfortranarray(X),
        "strided": np.repeat(X, 2, axis=0)[::2],
        "read_only": X.copy(),
        "float32": X.astype(np.float32),
    }[layout]
    data.setflags(write=layout != "read_only")
    seen = []
    real_fit_source = estimator_module.fit_source

    def recording_fit_source(*args, **kwargs):
        source = real_fit_source(*args, **kwargs)
        seen.append(source.X)
        return source

    monkeypatch.setattr(estimator_module, "fit_source", recording_fit_source)
    GaussianMixture(2, random_state=0).fit(data)
    assert np.shares_memory(seen[0], data)
