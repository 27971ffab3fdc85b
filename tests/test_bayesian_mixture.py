"""The variational Bayesian mixture: the same model as scikit-learn's BayesianGaussianMixture from the same start,
on every backend, far from the origin, in float32, continued, and with bad priors."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesianGaussianMixture

from fastgmm import BayesianGaussianMixture
from fastgmm._variational import responsibility_entropy

from .oracles import make_blobs

PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]


def fit_quietly(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, **kwargs)


def assert_same_posterior(ours, theirs, *, atol=1e-12, offset=0.0):
    """The variational parameters to 1e-8 relative, the lower bounds to 1e-10 relative."""
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
    # scikit-learn's tied bounds are arrays of shape (1,).
    np.testing.assert_allclose(ours.lower_bounds_, np.reshape(theirs.lower_bounds_, -1), rtol=1e-10)
    np.testing.assert_allclose(ours.means_ - offset, theirs.means_, rtol=1e-8, atol=max(atol, 1e-8 * (offset > 0)))
    for name in ("weights_", "mean_precision_", "degrees_of_freedom_", "covariances_", "precisions_",
                 "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-8, atol=atol, err_msg=name)
    concentration = ours.weight_concentration_
    if isinstance(concentration, tuple):
        for part, expected in zip(concentration, theirs.weight_concentration_):
            np.testing.assert_allclose(part, expected, rtol=1e-8, atol=atol)
    else:
        np.testing.assert_allclose(concentration, theirs.weight_concentration_, rtol=1e-8, atol=atol)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_same_random_state_same_posterior(backend, covariance_type, prior_type, init_params):
    X = make_blobs(2000, 3, 3, seed=5)
    settings = dict(n_components=6, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                    init_params=init_params, random_state=3, max_iter=40, tol=1e-8)
    ours = fit_quietly(BayesianGaussianMixture(backend=backend, **settings), X)
    theirs = fit_quietly(SklearnBayesianGaussianMixture(**settings), X)
    assert ours.backend_ == backend
    assert_same_posterior(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)
    for name in ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_", "degrees_of_freedom_prior_",
                 "covariance_prior_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_given_priors_same_posterior(covariance_type, prior_type):
    X = make_blobs(800, 2, 3, seed=6)
    covariance_prior = {"full": np.array([[2.0, 0.3], [0.3, 1.0]]), "tied": np.array([[1.0, -0.2], [-0.2, 0.5]]),
                        "diag": np.array([0.7, 1.3]), "spherical": 0.4}[covariance_type]
    settings = dict(n_components=5, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                    weight_concentration_prior=2.5, mean_precision_prior=0.3, mean_prior=[1.0, -2.0],
                    degrees_of_freedom_prior=3.5, covariance_prior=covariance_prior, random_state=0, max_iter=30)
    ours = fit_quietly(BayesianGaussianMixture(**settings), X)
    theirs = fit_quietly(SklearnBayesianGaussianMixture(**settings), X)
    assert_same_posterior(ours, theirs)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_far_from_origin_equals_translated_fit(backend, covariance_type, prior_type):
    """At +1e6 the posterior is that of the centred data, translated (the default priors move with the data).

    scikit-learn's own tied, diag and spherical moments lose digits there, so the oracle is scikit-learn on the
    untranslated data (k-means finds the same clusters in both). A mean at 1e6 is known to 1e-10 absolute only; from
    a start where surplus components drift for many iterations (random responsibilities, K above the clusters) the
    iterations amplify that to 1e-9 in the bound, in EM as much as here and in any float64 implementation."""
    offset = 1e6
    X = make_blobs(2000, 3, 3, seed=7)
    settings = dict(n_components=5, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                    random_state=1, max_iter=20, tol=0)
    theirs = fit_quietly(SklearnBayesianGaussianMixture(**settings), X)
    ours = fit_quietly(BayesianGaussianMixture(backend=backend, **settings), X + offset)
    assert_same_posterior(ours, theirs, atol=1e-9, offset=offset)
    np.testing.assert_array_equal(ours.predict(X + offset), theirs.predict(X))


def test_far_from_origin_full_matches_sklearn(backend):
    """scikit-learn's full covariances are two-pass, accurate at +1e6: there both fit the same translated data."""
    X = make_blobs(2000, 3, 3, seed=7) + 1e6
    settings = dict(n_components=5, random_state=1, max_iter=20, tol=0)
    theirs = fit_quietly(SklearnBayesianGaussianMixture(**settings), X)
    ours = fit_quietly(BayesianGaussianMixture(backend=backend, **settings), X)
    # The prior's mean, X's mean, is known to 6e-11 at 1e6, and each posterior covariance carries
    # N_k beta_0 / beta_k (x_k - m_0)(x_k - m_0)^T with |x_k - m_0| ~ 10: 3e-9 absolute in both libraries alike.
    assert_same_posterior(ours, theirs, atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_entropy_from_the_statistics_equals_the_direct_sum(covariance_type):
    """The entropy of the responsibilities from the pass's statistics equals -sum r log r computed point by point."""
    from fastgmm._backends import get_backend
    from fastgmm.sources import fit_source

    X = make_blobs(500, 3, 3, seed=8)
    model = fit_quietly(BayesianGaussianMixture(n_components=4, covariance_type=covariance_type, max_iter=3,
                                                random_state=0), X)
    params = model._parameters()
    resp = model.predict_proba(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = -np.nansum(resp * np.log(resp))
    stats = fit_source(X, validate=lambda X: X).statistics(get_backend("numpy"), params)
    np.testing.assert_allclose(responsibility_entropy(stats, params), direct, rtol=1e-9)


def test_dirichlet_process_switches_surplus_components_off():
    """Ten components on data from three: the process leaves seven with weights below 1e-2."""
    X = make_blobs(3000, 2, 3, seed=9)
    model = fit_quietly(BayesianGaussianMixture(n_components=10, max_iter=500, random_state=0), X)
    assert model.converged_
    weights = np.sort(model.weights_)
    assert np.all(weights[:7] < 1e-2), weights
    assert np.all(weights[7:] > 0.2), weights


def test_float32_keeps_float32_and_equals_the_float64_fit(covariance_type):
    X = make_blobs(1000, 3, 3, seed=10).astype(np.float32)
    settings = dict(n_components=4, covariance_type=covariance_type, random_state=0, max_iter=15)
    fit32 = fit_quietly(BayesianGaussianMixture(**settings), X)
    fit64 = fit_quietly(BayesianGaussianMixture(**settings), X.astype(np.float64))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "mean_precision_"):
        assert getattr(fit32, name).dtype == np.float32, name
        np.testing.assert_allclose(getattr(fit32, name), getattr(fit64, name), rtol=1e-5, atol=1e-6, err_msg=name)
    assert fit32.score_samples(X).dtype == np.float32
    np.testing.assert_allclose(fit32.lower_bound_, fit64.lower_bound_, rtol=1e-9)
    np.testing.assert_array_equal(fit32.predict(X), fit64.predict(X))


def test_warm_start_continues_exactly(covariance_type):
    X = make_blobs(1000, 3, 3, seed=11)
    settings = dict(n_components=5, covariance_type=covariance_type, random_state=0, tol=0)
    straight = fit_quietly(BayesianGaussianMixture(max_iter=10, **settings), X)
    warm = BayesianGaussianMixture(max_iter=4, warm_start=True, **settings)
    fit_quietly(warm, X)
    warm.set_params(max_iter=6)
    fit_quietly(warm, X)
    np.testing.assert_allclose(warm.means_, straight.means_, rtol=1e-13)
    np.testing.assert_allclose(warm.covariances_, straight.covariances_, rtol=1e-12)
    np.testing.assert_allclose(warm.lower_bound_, straight.lower_bound_, rtol=1e-13)


def test_sample_weight_counts_as_copies(covariance_type):
    """Integer weights are repeated rows: the same priors and, from the same responsibilities, the same posterior."""
    X = make_blobs(300, 2, 3, seed=12)
    weight = np.random.default_rng(0).integers(0, 4, size=len(X))
    settings = dict(n_components=3, covariance_type=covariance_type, init_params="random_from_data", tol=0,
                    max_iter=10)
    weighted = fit_quietly(BayesianGaussianMixture(**settings, random_state=0), X, sample_weight=weight)
    repeated = fit_quietly(BayesianGaussianMixture(warm_start=True, **settings), np.repeat(X, weight, axis=0))
    # The repeated fit starts from the weighted fit's start (the same seeds): one iteration of it, warm.
    start = fit_quietly(BayesianGaussianMixture(**dict(settings, max_iter=0), random_state=0), X, sample_weight=weight)
    repeated.__dict__.update({k: v for k, v in start.__dict__.items() if k.endswith("_") or k.startswith("_float")})
    fit_quietly(repeated, np.repeat(X, weight, axis=0))
    for name in ("mean_prior_", "covariance_prior_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-10)
    np.testing.assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-10)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(degrees_of_freedom_prior=0.5), "should be greater than 1"),
        (dict(mean_prior=[0.0, 1.0, 2.0]), "'means' should have the shape"),
        (dict(covariance_prior=np.array([[1.0, 2.0], [2.0, 1.0]])), "symmetric, positive-definite"),
        (dict(covariance_prior=np.ones(3)), "should have the shape"),
        (dict(covariance_type="diag", covariance_prior=np.array([1.0, -1.0])), "should be positive"),
        (dict(covariance_type="spherical", covariance_prior=np.ones(2)), "should be a positive number"),
        (dict(weight_concentration_prior_type="stick"), "weight_concentration_prior_type"),
        (dict(mean_precision_prior=0.0), "mean_precision_prior"),
    ],
)
def test_bad_priors_raise_and_leave_the_model(params, message):
    X = make_blobs(200, 2, 2, seed=13)
    model = fit_quietly(BayesianGaussianMixture(n_components=2, random_state=0), X)
    before = model.means_.copy(), model.lower_bound_
    model.set_params(**params)
    with pytest.raises(ValueError, match=message):
        model.fit(X)
    np.testing.assert_array_equal(model.means_, before[0])
    assert model.lower_bound_ == before[1]


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_covariance_types_agree_at_the_start(prior_type):
    """scikit-learn's test_compare_covar_type through the public API: at the start (max_iter=0), the tied, diagonal
    and spherical posteriors are the mean, the diagonal and the mean diagonal of the full ones."""
    X = make_blobs(600, 3, 3, seed=14)
    start = {}
    for covariance_type in ("full", "tied", "diag", "spherical"):
        model = BayesianGaussianMixture(n_components=6, covariance_type=covariance_type, max_iter=0, random_state=0,
                                        weight_concentration_prior_type=prior_type).fit(X)
        dof = model.degrees_of_freedom_
        start[covariance_type] = model.covariances_ * (dof if np.ndim(dof) == 0 else
                                                       dof.reshape((-1,) + (1,) * (model.covariances_.ndim - 1)))
    np.testing.assert_allclose(start["tied"], start["full"].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(start["diag"], np.array([np.diag(c) for c in start["full"]]), rtol=1e-12)
    np.testing.assert_allclose(start["spherical"], start["diag"].mean(axis=1), rtol=1e-12)


def test_every_data_source_gives_the_array_fit(tmp_path):
    """A memmap, Chunks and a dask array give the posterior of the same rows in memory (priors included)."""
    da = pytest.importorskip("dask.array")
    from fastgmm import Chunks

    X = make_blobs(3000, 3, 3, seed=15, offset=1e3)
    weight = np.random.default_rng(1).uniform(0.5, 2.0, size=len(X))
    path = tmp_path / "X.npy"
    np.save(path, X)
    settings = dict(n_components=4, covariance_type="full", random_state=0, max_iter=10, tol=0)
    expected = fit_quietly(BayesianGaussianMixture(**settings), X, sample_weight=weight)
    inputs = {
        "memmap": (np.load(path, mmap_mode="r"), weight),
        "chunks": (Chunks([(X[i:i + 700], weight[i:i + 700]) for i in range(0, len(X), 700)]), None),
        "dask": (da.from_array(X, chunks=(800, 3)), da.from_array(weight, chunks=800)),
    }
    for name, (data, sample_weight) in inputs.items():
        model = fit_quietly(BayesianGaussianMixture(**settings), data, sample_weight=sample_weight)
        for attribute in ("means_", "covariances_", "weights_", "mean_prior_", "covariance_prior_"):
            np.testing.assert_allclose(getattr(model, attribute), getattr(expected, attribute), rtol=1e-10,
                                       err_msg=f"{name}: {attribute}")
        np.testing.assert_allclose(model.lower_bounds_, expected.lower_bounds_, rtol=1e-10, err_msg=name)


def test_progress_callback_sees_every_bound():
    X = make_blobs(500, 2, 3, seed=16)
    seen = []
    model = fit_quietly(BayesianGaussianMixture(n_components=3, random_state=0, max_iter=8, tol=0,
                                                callback=lambda row: seen.append(row)), X)
    assert len(seen) == 8
    assert [row["lower_bound"] for row in seen] == model.lower_bounds_


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip_predicts_and_continues_exactly(tmp_path, covariance_type, prior_type, dtype):
    """A saved model loads with the same attributes, predicts the same, and a warm fit continues as the original."""
    import fastgmm

    X = make_blobs(800, 3, 3, seed=17).astype(dtype)
    mean_prior = [0.5, 0.0, -0.5] if covariance_type != "tied" else None  # an array parameter, stored as a member
    model = fit_quietly(BayesianGaussianMixture(n_components=4, covariance_type=covariance_type, max_iter=5, tol=0,
                                                weight_concentration_prior_type=prior_type, random_state=0,
                                                mean_prior=mean_prior, warm_start=True), X)
    path = tmp_path / "model.npz"
    model.save(path)
    restored = fastgmm.load(path)
    assert type(restored) is BayesianGaussianMixture
    assert restored.get_params().keys() == model.get_params().keys()
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "mean_precision_",
                 "degrees_of_freedom_", "mean_prior_", "covariance_prior_", "weight_concentration_prior_",
                 "mean_precision_prior_", "degrees_of_freedom_prior_", "lower_bound_", "n_iter_", "converged_"):
        np.testing.assert_array_equal(np.asarray(getattr(restored, name)), np.asarray(getattr(model, name)),
                                      err_msg=name)
        assert np.asarray(getattr(restored, name)).dtype == np.asarray(getattr(model, name)).dtype, name
    np.testing.assert_array_equal(np.asarray(restored.weight_concentration_), np.asarray(model.weight_concentration_))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))
    fit_quietly(model, X)
    fit_quietly(restored, X)
    np.testing.assert_array_equal(restored.means_, model.means_)
    assert restored.lower_bound_ == model.lower_bound_


def test_damaged_bayesian_model_files_are_model_file_errors(tmp_path):
    import fastgmm

    X = make_blobs(300, 2, 3, seed=18)
    model = fit_quietly(BayesianGaussianMixture(n_components=3, random_state=0), X)
    path = tmp_path / "model.npz"
    model.save(path)
    members = dict(np.load(path))
    damages = {
        "negative concentration": ("weight_concentration_", -members["weight_concentration_"]),
        "degrees of freedom": ("degrees_of_freedom_", np.zeros_like(members["degrees_of_freedom_"])),
        "weights": ("weights_", members["weights_"][::-1].copy()),
        "shape": ("mean_prior_", np.zeros(3)),
        "prior": ("covariance_prior_", -np.eye(2)),
    }
    for label, (key, value) in damages.items():
        damaged = dict(members, **{key: value})
        target = tmp_path / f"{label}.npz"
        np.savez(target, **damaged)
        with pytest.raises(fastgmm.ModelFileError):
            fastgmm.load(target)
    del members["mean_precision_"]
    np.savez(tmp_path / "missing.npz", **members)
    with pytest.raises(fastgmm.ModelFileError, match="missing member"):
        fastgmm.load(tmp_path / "missing.npz")
