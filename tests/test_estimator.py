"""Behaviour of the estimator beyond parity: invariants, atomic fits, and life inside scikit-learn's tools."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastgmm._em
from fastgmm import GaussianMixture
from fastgmm._random import fit_generator

from .oracles import make_blobs


def test_lower_bound_never_decreases(backend, covariance_type):
    X = make_blobs(2000, 3, 4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(4, covariance_type=covariance_type, init_params="random", tol=0, max_iter=60,
                                random_state=1, backend=backend).fit(X)
    bounds = np.asarray(model.lower_bounds_)
    assert len(bounds) == 60
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))


def test_fit_predict_equals_fit_then_predict(covariance_type):
    X = make_blobs(500, 2, 3, seed=1)
    settings = dict(covariance_type=covariance_type, random_state=2, max_iter=5, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = GaussianMixture(3, **settings).fit_predict(X)
        model = GaussianMixture(3, **settings).fit(X)
    np.testing.assert_array_equal(labels, model.predict(X))


def test_prediction_in_blocks_matches_one_block(monkeypatch):
    """Predictions are computed in bounded row blocks; the block size must not change them."""
    X = make_blobs(1000, 3, 3, seed=2)
    model = GaussianMixture(3, random_state=0).fit(X)
    expected = model.predict_proba(X), model.score_samples(X), model.predict(X)
    monkeypatch.setattr("fastgmm.sources.blocks._PREDICT_BLOCK_BYTES", 8 * 3 * 7)  # 7 rows per block
    np.testing.assert_array_equal(model.predict_proba(X), expected[0])
    np.testing.assert_array_equal(model.score_samples(X), expected[1])
    np.testing.assert_array_equal(model.predict(X), expected[2])
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.predict_proba(X).argmax(axis=1), model.predict(X))


def test_failed_fit_leaves_fitted_estimator_unchanged():
    X = make_blobs(300, 2, 3, seed=3)
    model = GaussianMixture(3, random_state=0).fit(X)
    before = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in vars(model).items()}
    model.set_params(reg_covar=0)
    with pytest.raises(ValueError, match="ill-defined"):
        model.fit(np.repeat(X[:3], 20, axis=0).astype(np.float32)[:, :1] * np.ones((1, 5)))
    after = vars(model)
    assert set(after) == set(before)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value)
        elif key != "reg_covar":
            assert after[key] == value, key


def test_interrupted_fit_leaves_fitted_estimator_unchanged():
    X = make_blobs(300, 2, 3, seed=4)
    model = GaussianMixture(3, random_state=0).fit(X)
    means, lower_bound, n_features = model.means_.copy(), model.lower_bound_, model.n_features_in_
    calls = []

    def interrupting(row):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    model.set_params(tol=0, max_iter=10, callback=interrupting)
    with pytest.raises(KeyboardInterrupt):
        model.fit(make_blobs(400, 4, 3, seed=5))  # different data, different n_features
    assert len(calls) == 3
    np.testing.assert_array_equal(model.means_, means)
    assert model.lower_bound_ == lower_bound and model.n_features_in_ == n_features


def test_n_init_keeps_best_run():
    X = make_blobs(800, 2, 4, seed=6)
    best = GaussianMixture(4, init_params="random", n_init=4, random_state=0, max_iter=1000).fit(X)
    rng = np.random.RandomState(0)
    bounds = [GaussianMixture(4, init_params="random", random_state=rng, max_iter=1000).fit(X).lower_bound_ for _ in range(4)]
    assert best.lower_bound_ == pytest.approx(max(bounds), rel=1e-12)


def test_parameters_are_not_modified_by_fit():
    X = make_blobs(200, 2, 2, seed=7)
    weights = [0.5, 0.5]
    model = GaussianMixture(2, weights_init=weights).fit(X)
    assert model.weights_init is weights


def test_pickle_clone_pipeline_and_grid_search():
    X = make_blobs(600, 3, 3, seed=8)
    model = GaussianMixture(3, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert clone(model).get_params() == model.get_params()
    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    assert pipe.predict(X).shape == (600,)
    search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 3, 5]}, cv=3).fit(X)
    assert search.best_params_["n_components"] >= 3


def test_n_jobs_does_not_change_the_model(backend):
    X = make_blobs(20000, 3, 3, seed=9)
    settings = dict(random_state=0, max_iter=10, tol=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = GaussianMixture(3, n_jobs=1, **settings).fit(X)
        two = GaussianMixture(3, n_jobs=2, **settings).fit(X)
        default = GaussianMixture(3, n_jobs=None, **settings).fit(X)
    for name in ("means_", "covariances_", "weights_"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
        np.testing.assert_array_equal(getattr(one, name), getattr(default, name))


def test_fortran_ordered_read_only_and_integer_input():
    X = make_blobs(300, 2, 2, seed=10)
    reference = GaussianMixture(2, random_state=0).fit(X)
    fortran = np.asfortranarray(X)
    fortran.setflags(write=False)
    np.testing.assert_allclose(GaussianMixture(2, random_state=0).fit(fortran).means_, reference.means_, rtol=1e-12)
    integers = np.round(X * 10).astype(np.int64)
    model = GaussianMixture(2, random_state=0).fit(integers)
    assert model.means_.dtype == np.float64 and np.isfinite(model.lower_bound_)


def test_a_fit_started_inside_a_fit_draws_from_its_own_generator():
    """An integer random_state is served by a re-seeded pooled generator (fastgmm._random): in the state
    RandomState(seed) starts in, and never the one of a fit still running (a fit made by a callback, say)."""
    fresh = np.random.RandomState(0)
    with fit_generator(0) as outer:
        assert outer.random_sample() == fresh.random_sample()
        with fit_generator(0) as inner:
            assert inner is not outer
            assert inner.random_sample() == np.random.RandomState(0).random_sample()
        assert outer.random_sample() == fresh.random_sample()
    X = make_blobs(600, 2, 3, seed=2)
    seeded = GaussianMixture(3, init_params="k-means++", n_init=2, random_state=0).fit(X)
    reference = GaussianMixture(3, init_params="k-means++", n_init=2, random_state=np.random.RandomState(0)).fit(X)
    np.testing.assert_array_equal(seeded.means_, reference.means_)


@pytest.mark.parametrize("in_place", [True, False])
def test_state_fingerprint_tells_generator_states_apart(monkeypatch, in_place):
    """select_model's shared initial labels are keyed by the generator's state: equal fingerprints for equal
    states (whatever the cached Gaussian), different ones after any draw."""
    import fastgmm._random

    monkeypatch.setattr(fastgmm._random, "_IN_PLACE", in_place and fastgmm._random._IN_PLACE)
    fingerprint = fastgmm._random.state_fingerprint
    a, b = np.random.RandomState(3), np.random.RandomState(3)
    assert fingerprint(a) == fingerprint(b)
    a.random_sample()
    assert fingerprint(a) != fingerprint(b)
    b.random_sample()
    assert fingerprint(a) == fingerprint(b)
    a.randint(10)
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(np.random.RandomState(4)) != fingerprint(np.random.RandomState(3))
