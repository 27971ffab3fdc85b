"""fastgmm in the processes pipelines run: children forked after a fit (multiprocessing 'fork', Celery's prefork
pool, gunicorn --preload) and several Python threads fitting at once. Every wait has a timeout, so a child that
hangs or is killed fails the test instead of blocking the suite."""

import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastgmm import BayesianGaussianMixture, GaussianMixture

from .oracles import make_blobs

X = make_blobs(20_000, 3, 3, seed=60)
TIMEOUT = 120

_parent = {}


def _child_work(settings):
    """In a forked child: a new fit, and the parent's model (inherited through fork) predicting and scoring."""
    model = GaussianMixture(3, random_state=0, **settings).fit(X)
    parent = _parent["model"]
    return model.means_, model.lower_bound_, parent.predict(X), parent.score_samples(X)


@pytest.mark.skipif(sys.platform != "linux", reason="the 'fork' start method is Linux's default")
def test_forked_children_fit_and_predict_as_the_parent(backend, covariance_type):
    settings = dict(covariance_type=covariance_type, backend=backend)
    # The parent runs its kernels (threads started, Numba's threading layer loaded) before forking.
    parent = GaussianMixture(3, random_state=0, **settings).fit(X)
    _parent["model"] = parent
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = pool.map_async(_child_work, [settings, settings]).get(timeout=TIMEOUT)
    labels, scores = parent.predict(X), parent.score_samples(X)
    for means, lower_bound, child_labels, child_scores in results:
        # Bit-identical: the reduction does not depend on the thread count a child runs with.
        np.testing.assert_array_equal(means, parent.means_)
        assert lower_bound == parent.lower_bound_
        np.testing.assert_array_equal(child_labels, labels)
        np.testing.assert_array_equal(child_scores, scores)


def test_four_threads_fit_at_once(backend):
    settings = dict(covariance_type="full", backend=backend, random_state=0)
    alone = GaussianMixture(3, **settings).fit(X)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(lambda: GaussianMixture(3, **settings).fit(X)) for _ in range(4)]
        models = [future.result(timeout=TIMEOUT) for future in futures]
    for model in models:
        np.testing.assert_array_equal(model.means_, alone.means_)
        np.testing.assert_array_equal(model.predict(X), alone.predict(X))


def _variational_and_stream(backend):
    """A Bayesian mixture's fit and three partial_fit steps, as (means, lower bound) pairs."""
    bayesian = BayesianGaussianMixture(n_components=4, random_state=0, backend=backend).fit(X)
    stream = GaussianMixture(3, random_state=0, backend=backend)
    for batch in np.array_split(X, 3):
        stream.partial_fit(batch)
    return bayesian.means_, bayesian.lower_bound_, stream.means_, stream.lower_bound_


@pytest.mark.skipif(sys.platform != "linux", reason="the 'fork' start method is Linux's default")
def test_forked_children_fit_a_bayesian_mixture_and_a_stream_as_the_parent(backend):
    expected = _variational_and_stream(backend)  # in the parent first, so that its kernels and threads exist
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map_async(_variational_and_stream, [backend, backend]).get(timeout=TIMEOUT)
    for result in results:
        for got, want in zip(result, expected):
            np.testing.assert_array_equal(got, want)


def test_four_threads_fit_bayesian_mixtures_and_streams_at_once(backend):
    expected = _variational_and_stream(backend)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_variational_and_stream, backend) for _ in range(4)]
        results = [future.result(timeout=TIMEOUT) for future in futures]
    for result in results:
        for got, want in zip(result, expected):
            np.testing.assert_array_equal(got, want)
