"""missing_values='marginalize': EM with NaN entries treated as latent, against a naive row-by-row oracle of the
same EM; the observed-data likelihood never decreases; predictions, imputation and errors."""

import io
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastgmm
from fastgmm import GaussianMixture

from .oracles import dense_covariances, naive_missing_values_em

MEANS = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, 4.0, 0.0, 1.0], [0.0, 4.0, 4.0, -2.0]])


def mixture(n, seed, missing=0.2, offset=0.0):
    """Rows from three correlated 4-D Gaussians, entries missing completely at random (no row left empty)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(3, 4, 4)) * 0.5 + np.eye(4)
    labels = rng.integers(3, size=n)
    X = MEANS[labels] + offset + np.einsum("nd,nde->ne", rng.standard_normal((n, 4)), mixing[labels])
    holes = rng.random(X.shape) < missing
    holes[holes.all(axis=1), 0] = False
    X_missing = X.copy()
    X_missing[holes] = np.nan
    return X_missing, X, holes


def _start(covariance_type, seed=1):
    """Explicit initial parameters, the same for fastgmm and the oracle."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.3, 0.3, 0.4])
    means = MEANS + rng.normal(scale=0.5, size=MEANS.shape)
    A = rng.normal(size=(3, 4, 4)) * 0.3
    dense = A @ A.transpose(0, 2, 1) + np.eye(4)
    if covariance_type == "full":
        precisions = np.linalg.inv(dense)
    elif covariance_type == "tied":
        dense = np.repeat(dense[:1], 3, axis=0)
        precisions = np.linalg.inv(dense[0])
    elif covariance_type == "diag":
        dense = np.stack([np.diag(np.diagonal(c)) for c in dense])
        precisions = 1.0 / np.diagonal(dense, axis1=1, axis2=2)
    else:
        dense = np.stack([np.eye(4) * np.trace(c) / 4 for c in dense])
        precisions = 1.0 / dense[:, 0, 0]
    return weights, means, dense, precisions


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_equals_the_naive_em(backend, covariance_type, weighted):
    X, _, _ = mixture(150, seed=2)
    w = np.random.default_rng(3).uniform(0.2, 2.0, len(X)) if weighted else None
    weights, means, dense, precisions = _start(covariance_type)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, missing_values="marginalize", max_iter=4, tol=0,
                                weights_init=weights, means_init=means, precisions_init=precisions,
                                backend=backend).fit(X, sample_weight=w)
    expected = naive_missing_values_em(X, w, weights, means, dense, covariance_type, model.reg_covar, 4)
    np.testing.assert_allclose(model.weights_, expected[0], rtol=1e-10)
    np.testing.assert_allclose(model.means_, expected[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dense_covariances(model._parameters()), expected[2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.lower_bounds_, expected[3], rtol=1e-10)


def test_the_observed_likelihood_never_decreases(covariance_type):
    X, _, _ = mixture(2000, seed=4, missing=0.3, offset=1e5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, missing_values="marginalize", max_iter=30,
                                tol=0, random_state=0).fit(X)
    bounds = np.array(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:])), np.diff(bounds).min()
    assert np.all(np.isfinite(model.means_)) and np.all(np.abs(model.means_ - 1e5) < 10)


def test_complete_data_fit_as_without_the_option():
    _, X, _ = mixture(1000, seed=5)
    a = GaussianMixture(3, random_state=0).fit(X)
    b = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ == b.lower_bounds_


def test_predictions_take_rows_with_holes():
    X, _, holes = mixture(3000, seed=6)
    model = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    params = model._parameters()
    from fastgmm._missing import observed_log_prob

    expected = np.logaddexp.reduce(observed_log_prob(X, params), axis=1)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-12)
    assert model.score(X) == pytest.approx(expected.mean(), rel=1e-12)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))
    assert np.isfinite(model.bic(X)) and np.isfinite(model.aic(X))
    assert model.__sklearn_tags__().input_tags.allow_nan
    assert not GaussianMixture().__sklearn_tags__().input_tags.allow_nan


def test_better_than_complete_rows_only_and_than_column_means():
    """Marginalised EM against scikit-learn on the complete rows only (means) and column means (imputation)."""
    from sklearn.mixture import GaussianMixture as SklearnMixture

    X, truth, holes = mixture(20_000, seed=7, missing=0.2)
    model = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    complete = SklearnMixture(3, random_state=0).fit(X[~holes.any(axis=1)])

    def mean_error(means):
        return max(np.min(np.abs(means - m).sum(axis=1)) for m in MEANS)

    assert mean_error(model.means_) < mean_error(complete.means_)
    imputed = model.impute(X)
    column_means = np.where(holes, np.nanmean(X, axis=0), X)
    np.testing.assert_array_equal(imputed[~holes], X[~holes])
    assert np.abs(imputed - truth)[holes].mean() < 0.8 * np.abs(column_means - truth)[holes].mean()


def test_errors():
    X, _, _ = mixture(300, seed=8)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(3).fit(X)
    empty = X.copy()
    empty[5] = np.nan
    with pytest.raises(ValueError, match="no observed value.*row 5"):
        GaussianMixture(3, missing_values="marginalize").fit(empty)
    infinite = X.copy()
    infinite[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(3, missing_values="marginalize").fit(infinite)
    chunks = fastgmm.Chunks([X[:150], empty[:150]])
    with pytest.raises(ValueError, match="no observed value.*first chunk 1 row 5"):
        GaussianMixture(3, missing_values="marginalize").fit(chunks)
    model = GaussianMixture(3, missing_values="marginalize", random_state=0).fit(X)
    before = model.means_.copy()
    with pytest.raises(ValueError, match="no observed value"):
        model.fit(empty)
    np.testing.assert_array_equal(model.means_, before)
    with pytest.raises(ValueError, match="no observed value"):
        model.predict(empty)


def test_save_load_keeps_the_option_and_partial_fit_takes_holes():
    X, _, _ = mixture(3000, seed=9)
    model = GaussianMixture(3, missing_values="marginalize", random_state=0).fit(X)
    buffer = io.BytesIO()
    model.save(buffer)
    loaded = fastgmm.load(io.BytesIO(buffer.getvalue()))
    assert loaded.missing_values == "marginalize"
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    online = GaussianMixture(3, missing_values="marginalize", random_state=0)
    for start in range(0, 3000, 500):
        online.partial_fit(X[start:start + 500])
    assert np.all(np.isfinite(online.means_)) and online.n_iter_ == 6


@pytest.mark.parametrize("block_size", [7, 64, 100_000])
def test_the_compiled_kernel_is_the_reference(covariance_type, block_size):
    """Numba's ``missing_statistics`` against ``fastgmm._missing.observed_statistics``: blocks that cut patterns,
    weights with zeros, far from the origin; the same bits on 1 and 2 threads."""
    pytest.importorskip("numba")
    import numba

    from fastgmm import _missing
    from fastgmm.kernels import numba_

    X, _, holes = mixture(700, seed=10, missing=0.35, offset=1e4)
    w = np.random.default_rng(11).uniform(0.0, 2.0, len(X))
    w[::9] = 0.0
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                            missing_values="marginalize").fit(X, sample_weight=w)
    params = model._parameters()
    with_holes = np.flatnonzero(holes.any(axis=1))
    order, starts, observed = _missing.group_patterns(holes[with_holes])
    assert len(starts) > 10
    runs = []
    for threads in (1, 2):
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            runs.append(numba_.missing_statistics(X, w, params.means, _missing.dense_covariances(params),
                                                  np.log(params.weights), with_holes[order], starts, observed,
                                                  block_size))
        finally:
            numba.set_num_threads(previous)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    got = _missing.in_layout(*runs[0], params.means, covariance_type)
    expected = _missing.observed_statistics(X[with_holes], w[with_holes], params)
    assert got.log_likelihood == pytest.approx(expected.log_likelihood, rel=1e-12)
    assert got.total_weight == pytest.approx(expected.total_weight, rel=1e-14)
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-10, atol=1e-9, err_msg=name)


def test_a_memmap_in_pieces_fits_as_the_array(tmp_path, monkeypatch):
    """Out of core the rows with holes are grouped piece by piece; in memory over the whole array: the same EM."""
    from fastgmm.sources import with_missing

    X, _, _ = mixture(3000, seed=12)
    np.save(tmp_path / "X.npy", X)
    monkeypatch.setattr(with_missing, "_PIECE_ROWS", 700)
    settings = dict(random_state=0, missing_values="marginalize", max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = GaussianMixture(3, **settings).fit(X)
        mapped = GaussianMixture(3, init_sample_size=None, **settings).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
    np.testing.assert_allclose(mapped.means_, in_memory.means_, rtol=1e-10)
    np.testing.assert_allclose(mapped.lower_bounds_, in_memory.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(mapped.score_samples(X), in_memory.score_samples(X), rtol=1e-12)


def test_float32_holes_fit_as_the_float64_values(backend):
    X, _, _ = mixture(2000, seed=13)
    settings = dict(random_state=0, missing_values="marginalize", backend=backend)
    single = GaussianMixture(3, **settings).fit(X.astype(np.float32))
    double = GaussianMixture(3, **settings).fit(X.astype(np.float32).astype(np.float64))
    assert single.means_.dtype == np.float32 and single.predict_proba(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-6)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-10)
    assert single.impute(X.astype(np.float32)).dtype == np.float32


def test_chunks_fit_as_the_array(tmp_path):
    """Chunks read again at every pass, each marginalised on its own: the same EM as the whole array; predictions
    chunk by chunk."""
    X, _, _ = mixture(3000, seed=14)
    w = np.random.default_rng(15).uniform(0.5, 2.0, len(X))
    settings = dict(random_state=0, missing_values="marginalize", max_iter=5, tol=0, init_sample_size=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = GaussianMixture(3, **settings).fit(X, sample_weight=w)
        chunked = GaussianMixture(3, **settings).fit(fastgmm.Chunks([(X[:1000], w[:1000]), (X[1000:], w[1000:])]))
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=1e-10)
    np.testing.assert_allclose(chunked.lower_bounds_, whole.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(chunked.score_samples(fastgmm.Chunks([X[:500], X[500:]])), whole.score_samples(X),
                               rtol=1e-12)
