"""The Numba backend's fused EM iterations (``em_iterations``: several iterations per compiled call, whenever the
per-block partials fit in memory at once) against the Python loop of ``fastgmm._em`` over the same kernels, which a fit runs
when it reports every iteration (a callback here): the same iterations, the same models to rounding, the same hand-
over to the collapse policy."""

import warnings

import numpy as np
import pytest

from fastgmm import GaussianMixture

from .oracles import make_blobs
from .test_robustness import DEAD_START, SINGULAR, THREE, _identity_precisions

numba_ = pytest.importorskip("fastgmm.kernels.numba_")


@pytest.fixture
def fused_calls(monkeypatch):
    calls = []
    run = numba_.em_iterations

    def counted(*args, **kwargs):
        result = run(*args, **kwargs)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(numba_, "em_iterations", counted)
    return calls


def _both(X, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = GaussianMixture(backend="numba", **params).fit(X, sample_weight=sample_weight)
        looped = GaussianMixture(backend="numba", callback=lambda row: None, **params).fit(X, sample_weight=sample_weight)
    return fused, looped


def _assert_same(fused, looped, rtol=1e-10):
    assert fused.n_iter_ == looped.n_iter_ and fused.converged_ == looped.converged_
    np.testing.assert_allclose(fused.lower_bounds_, looped.lower_bounds_, rtol=rtol, atol=0)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(fused, name), getattr(looped, name), rtol=rtol, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_iterations_equal_the_python_loop(covariance_type, weighted, dtype, fused_calls):
    # More rows than a statistics block, so that the fused call sums several blocks' partials.
    X = make_blobs(9000, 3, 4, seed=1, offset=1e3).astype(dtype)
    weights = np.random.RandomState(0).uniform(0.1, 2.0, len(X)) if weighted else None
    fused, looped = _both(X, weights, n_components=4, covariance_type=covariance_type, random_state=0, tol=1e-8,
                          max_iter=60)
    assert fused_calls and all(fused_calls), "the fit did not run the fused iterations"
    assert fused.n_iter_ > 3
    _assert_same(fused, looped)


def test_max_iter_and_warm_start_continue_where_the_loop_does(fused_calls):
    X = make_blobs(400, 2, 3, seed=2)
    fused, looped = _both(X, n_components=3, random_state=0, tol=0, max_iter=7, warm_start=True)
    _assert_same(fused, looped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused.fit(X)
        looped.fit(X)
    _assert_same(fused, looped)
    assert fused.n_iter_ == 7 and not fused.converged_


def test_collapse_is_handed_to_the_policy(covariance_type, fused_calls):
    fused, looped = _both(THREE, n_components=3, covariance_type=covariance_type, means_init=DEAD_START,
                          random_state=0)
    assert fused_calls
    _assert_same(fused, looped)
    X, means_init = SINGULAR["one point"]
    fused, looped = _both(X, n_components=3, covariance_type=covariance_type, reg_covar=0, means_init=means_init,
                          precisions_init=_identity_precisions(covariance_type, 3, X.shape[1]), random_state=0)
    _assert_same(fused, looped)


def test_large_data_runs_the_parallel_pass_at_any_thread_count(fused_calls):
    # Four features: the shape test_backends.py's warm-up test compiles the parallel kernels for, in the cache.
    X = make_blobs(numba_.PARALLEL_WORK // 16 + 1, 4, 2, seed=3)
    params = dict(n_components=2, max_iter=4, tol=0, random_state=0, init_params="random_from_data")
    fused, looped = _both(X, **params)
    assert fused_calls == [True]
    _assert_same(fused, looped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = GaussianMixture(backend="numba", n_jobs=1, **params).fit(X)
    np.testing.assert_array_equal(one.means_, fused.means_)
    assert one.lower_bounds_ == fused.lower_bounds_


def test_partials_beyond_the_memory_bound_are_declined(monkeypatch, fused_calls):
    from fastgmm.kernels import _passes

    monkeypatch.setattr(_passes, "PARTIALS_BYTES", 1)
    GaussianMixture(2, backend="numba", max_iter=2, tol=0, random_state=0).fit(make_blobs(300, 2, 2))
    assert fused_calls == [False]


def test_a_long_fit_returns_to_python_between_calls(monkeypatch, fused_calls):
    # Ctrl-C reaches Python only between calls (tests/test_robustness.py interrupts a real fit).
    X = make_blobs(300, 2, 2)
    work = len(X) * 2 * 3**2
    monkeypatch.setattr(numba_, "FUSED_CALL_WORK", 5 * work)
    fused, looped = _both(X, n_components=2, max_iter=23, tol=0, random_state=0)
    assert fused_calls == [True] * 5  # 5 + 5 + 5 + 5 + 3 iterations
    _assert_same(fused, looped)
