"""Dask arrays on a real ``distributed.LocalCluster`` of two worker processes, started and stopped here: the fit
equals the in-memory fit, predictions are lazy, bad input is rejected, and a worker killed mid-fit does not stop
the fit or change its result."""

import os
import signal
import threading
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from fastgmm import GaussianMixture  # noqa: E402

from .oracles import make_blobs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="4GiB"
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def fit(X, sample_weight=None, **settings):
    settings = {"n_components": 3, "tol": 0.0, "max_iter": 12, "random_state": 0, "init_sample_size": 400, **settings}
    return GaussianMixture(**settings).fit(X, sample_weight=sample_weight)


def assert_same_model(a, b, rtol=1e-10):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0, err_msg=name)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol, atol=0)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_dask_fit_equals_in_memory_fit(client, covariance_type):
    X = make_blobs(6000, 4, offset=1e3)
    dX = client.persist(da.from_array(X, chunks=(1000, 2)))  # column-split on purpose: rows are rejoined
    assert_same_model(fit(dX, covariance_type=covariance_type), fit(X, covariance_type=covariance_type))


def test_dask_fit_reseeds_a_collapsed_component_as_in_memory(client):
    from fastgmm import ComponentCollapseWarning

    rng = np.random.RandomState(3)
    X = np.vstack([rng.randn(300, 2), rng.randn(300, 2) + 6, rng.randn(10, 2) + [30, 0]])
    settings = dict(means_init=[[0.0, 0.0], [6.0, 6.0], [1e4, 1e4]], max_iter=6)
    with pytest.warns(ComponentCollapseWarning):
        expected = fit(X, **settings)
    with pytest.warns(ComponentCollapseWarning):
        actual = fit(client.persist(da.from_array(X, chunks=(150, 2))), **settings)
    assert_same_model(actual, expected)
    assert np.linalg.norm(actual.means_ - [30, 0], axis=1).min() < 1.0


def test_dask_fit_with_weights_float32_and_unknown_chunks(client):
    X = make_blobs(4000, 3).astype(np.float32)
    weights = np.random.RandomState(2).uniform(0, 2, size=len(X))
    expected = fit(X, weights)
    dX = da.from_array(X, chunks=700)
    assert_same_model(fit(dX, weights), expected)
    assert_same_model(fit(dX, da.from_array(weights, chunks=1500)), expected)
    unknown = dX[da.from_array(np.ones(len(X), dtype=bool), chunks=700)]  # row counts known only when computed
    assert np.isnan(unknown.shape[0])
    assert_same_model(fit(unknown, weights), expected)


def test_dask_predictions_are_lazy_and_equal(client):
    X = make_blobs(3000)
    gm = fit(X)
    dX = da.from_array(X, chunks=800)
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(gm, method)(dX)
        assert isinstance(lazy, da.Array), method
        np.testing.assert_allclose(lazy.compute(), getattr(gm, method)(X), rtol=1e-12, err_msg=method)
    assert gm.score(dX) == pytest.approx(gm.score(X), rel=1e-12)
    assert gm.bic(dX) == pytest.approx(gm.bic(X), rel=1e-12)
    labels = GaussianMixture(3, random_state=0, init_sample_size=400).fit_predict(dX)
    assert isinstance(labels, da.Array) and labels.shape == (3000,)


def test_dask_fit_is_reproducible_for_a_random_state(client):
    X = da.random.RandomState(5).normal(size=(20000, 2), chunks=(3000, 2))
    a = GaussianMixture(4, random_state=1, max_iter=5).fit(X)
    b = GaussianMixture(4, random_state=1, max_iter=5).fit(X)
    assert_same_model(a, b, rtol=0)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: da.ones((10, 2, 2)), "Expected 2D array"),
        (lambda: da.from_array(np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]])), "NaN or infinity"),
        (lambda: da.from_array(np.array([["a", "b"], ["c", "d"]])), "real numbers"),
        (lambda: da.ones((1, 2)), "minimum of 2"),
    ],
)
def test_bad_dask_input(client, make, message):
    gm = GaussianMixture(1)
    with pytest.raises((ValueError, TypeError), match=message):
        gm.fit(make())
    assert not hasattr(gm, "means_")


def test_bad_dask_weights_and_width(client):
    X = da.from_array(make_blobs(300), chunks=100)
    with pytest.raises(ValueError, match="Negative"):
        fit(X, -np.ones(300))
    with pytest.raises(ValueError, match="shape"):
        fit(X, np.ones(299))
    gm = fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        gm.predict(X[:, :2])


def test_dask_fit_survives_a_killed_worker(client):
    # Lazily generated data: the blocks a dead worker held can be recomputed from the graph.
    X = da.random.RandomState(0).normal(size=(400_000, 4), chunks=(20_000, 4)) + da.arange(400_000)[:, None] % 3
    settings = {"n_components": 3, "max_iter": 12, "tol": 0.0, "random_state": 0, "init_sample_size": 2000}
    expected = GaussianMixture(**settings).fit(X)

    pids = client.run(os.getpid)
    victim = next(iter(pids.values()))
    result, errors = {}, []

    def run():
        try:
            result["model"] = GaussianMixture(**settings).fit(X)
        except BaseException as exc:  # noqa: BLE001 (reported by the assert below)
            errors.append(exc)

    fitting = threading.Thread(target=run)
    fitting.start()
    time.sleep(1.5)  # well inside the fit: it takes several seconds
    assert fitting.is_alive(), "the fit ended before the worker could be killed"
    os.kill(victim, signal.SIGKILL)
    fitting.join(timeout=300)
    assert not errors, errors
    assert victim not in client.run(os.getpid).values()
    assert_same_model(result["model"], expected, rtol=0)


def test_dask_fit_with_missing_values_equals_in_memory_fit(client):
    X = make_blobs(6000, 4, offset=1e3)
    rng = np.random.default_rng(4)
    holes = rng.random(X.shape) < 0.2
    holes[holes.all(axis=1), 0] = False
    X[holes] = np.nan
    w = rng.uniform(0.5, 2.0, len(X))
    dX = client.persist(da.from_array(X, chunks=(1000, 4)))
    dask_fit = fit(dX, da.from_array(w, chunks=1000), missing_values="marginalize")
    memory_fit = fit(X, w, missing_values="marginalize")
    assert_same_model(dask_fit, memory_fit)
    np.testing.assert_allclose(dask_fit.score_samples(dX).compute(), memory_fit.score_samples(X), rtol=1e-10)
    empty = X.copy()
    empty[7] = np.nan
    with pytest.raises(ValueError, match="no observed value"):
        fit(da.from_array(empty, chunks=(1000, 4)), missing_values="marginalize")
    with pytest.raises(ValueError, match="NaN"):
        fit(dX)
