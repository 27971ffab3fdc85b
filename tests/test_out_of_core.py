"""Data that need not be in memory: numpy.memmap read block by block, Chunks read again at every iteration, and the
initialisation from a random sample of rows. Each is checked against the fit of the same rows as one in-memory
array."""

import gc
import threading
import time

import numpy as np
import pytest

from fastgmm import Chunks, GaussianMixture
from fastgmm.sources.init_sample import sample_indices

from .oracles import make_blobs
from .processes import run_python

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fit(X, sample_weight=None, **settings):
    settings = {"n_components": 3, "tol": 0.0, "max_iter": 15, "random_state": 0, **settings}
    return GaussianMixture(**settings).fit(X, sample_weight=sample_weight)


def assert_same_model(a, b, rtol=1e-10):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0, err_msg=name)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol, atol=0)


def pieces(X, size, weights=None):
    if weights is None:
        return [X[i : i + size] for i in range(0, len(X), size)]
    return [(X[i : i + size], weights[i : i + size]) for i in range(0, len(X), size)]


# ------------------------------------------------------------------------------------------------- sampling rows


@pytest.mark.parametrize("n_samples, size", [(10, 3), (1000, 999), (10**9, 1000), (50, 50), (50, 80)])
def test_sample_indices_distinct_sorted_reproducible(n_samples, size):
    a = sample_indices(n_samples, size, np.random.RandomState(3))
    b = sample_indices(n_samples, size, np.random.RandomState(3))
    np.testing.assert_array_equal(a, b)
    assert a.size == min(size, n_samples)
    assert np.all(np.diff(a) > 0)
    assert a[0] >= 0 and a[-1] < n_samples


def test_sample_indices_cover_the_rows_uniformly():
    rng = np.random.RandomState(0)
    counts = np.zeros(20)
    for _ in range(2000):
        counts[sample_indices(20, 5, rng)] += 1
    # Each row is chosen with probability 1/4: 500 of 2000, binomial sd ~19.
    assert np.all(np.abs(counts - 500) < 100)


def test_init_sample_size_samples_then_em_uses_every_row(blobs):
    full = fit(blobs, init_sample_size=None, max_iter=500, tol=1e-12)
    sampled = fit(blobs, init_sample_size=100, max_iter=500, tol=1e-12)
    assert full.converged_ and sampled.converged_
    # The sample moves the start, but EM sees every row: both end at the same optimum on well-separated blobs.
    np.testing.assert_allclose(np.sort(sampled.means_, axis=0), np.sort(full.means_, axis=0), rtol=1e-6)
    assert fit(blobs, init_sample_size=100, max_iter=500, tol=1e-12).lower_bounds_ == sampled.lower_bounds_
    assert fit(blobs, init_sample_size=100, max_iter=1).lower_bounds_ != fit(blobs, max_iter=1).lower_bounds_


def test_init_sample_size_auto_is_every_row_in_memory(blobs):
    assert_same_model(fit(blobs), fit(blobs, init_sample_size=None), rtol=0)


@pytest.mark.parametrize("value", [0, -3, 1.5, "all"])
def test_bad_init_sample_size(blobs, value):
    with pytest.raises((ValueError, TypeError), match="init_sample_size"):
        fit(blobs, init_sample_size=value)


# --------------------------------------------------------------------------------------------------------- Chunks


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_chunks_fit_equals_array_fit(backend, covariance_type):
    X = make_blobs(3000, 3, offset=1e4)
    settings = {"covariance_type": covariance_type, "backend": backend, "init_sample_size": 500}
    assert_same_model(fit(Chunks(pieces(X, 700)), **settings), fit(X, **settings))


def test_chunks_with_weights_float32_and_a_generator_function():
    X = make_blobs(2000, 4).astype(np.float32)
    weights = np.random.RandomState(1).uniform(0, 3, size=len(X))
    expected = fit(X, weights, init_sample_size=300)

    def read():
        yield from pieces(X, 333, weights)

    assert_same_model(fit(Chunks(read), init_sample_size=300), expected)


def test_chunks_default_initialisation_samples_and_is_reproducible():
    X = make_blobs(1200)
    a, b = fit(Chunks(pieces(X, 100))), fit(Chunks(pieces(X, 100)))
    assert_same_model(a, b, rtol=0)
    # 'auto' takes up to 100000 rows, so here all of them: the in-memory default start, gathered from the chunks.
    assert_same_model(a, fit(X))


def test_chunks_skip_empty_chunks_and_predict_concatenates(blobs):
    parts = pieces(blobs, 100)
    parts.insert(2, blobs[:0])
    gm = fit(Chunks(parts), init_sample_size=200)
    assert_same_model(gm, fit(blobs, init_sample_size=200))
    data = Chunks(pieces(blobs, 250))
    np.testing.assert_array_equal(gm.predict(data), gm.predict(blobs))
    np.testing.assert_allclose(gm.score_samples(data), gm.score_samples(blobs))
    assert gm.bic(data) == pytest.approx(gm.bic(blobs), rel=1e-12)
    assert gm.aic(data) == pytest.approx(gm.aic(blobs), rel=1e-12)
    np.testing.assert_array_equal(gm.fit_predict(data), gm.predict(blobs))


def test_chunks_reject_a_generator_object(blobs):
    with pytest.raises(TypeError, match="read only once"):
        Chunks(iter(pieces(blobs, 100)))
    with pytest.raises(TypeError, match="Chunks expects"):
        Chunks(blobs)


@pytest.mark.parametrize(
    "make_parts, message",
    [
        (lambda X: [X[:100], X[100:, :2]], "chunk 1 has 2 features"),
        (lambda X: [X[:100], np.where(X[100:] > 5, np.nan, X[100:])], "NaN"),
        (lambda X: [(X[:100], np.ones(100)), X[100:]], "either every chunk has sample weights or none"),
        (lambda X: [(X[:100], -np.ones(100))], "Negative values in sample_weight of chunk 0"),
        (lambda X: [(X[:100], np.zeros(100))], "at least one non-zero"),
        (lambda X: [(X[:100], np.ones(99))], r"sample_weight of chunk 0 has shape \(99,\)"),
        (lambda X: [X[:1]], "at least 2 are required"),
        (lambda X: [np.full((100, 3), "a", dtype=object)], "convert string"),
    ],
)
def test_bad_chunks_get_clear_errors(blobs, make_parts, message):
    parts = make_parts(blobs)
    gm = GaussianMixture(2)
    with pytest.raises((ValueError, TypeError), match=message):
        gm.fit(Chunks(parts))
    assert not hasattr(gm, "means_")


def test_chunks_that_change_between_passes_are_caught(blobs):
    calls = []

    def read():
        calls.append(1)
        return pieces(blobs, 200 if len(calls) == 1 else 150)

    with pytest.raises(ValueError, match="changed between passes"):
        fit(Chunks(read))


def test_chunks_and_sample_weight_argument_conflict(blobs):
    with pytest.raises(ValueError, match="inside the chunks"):
        fit(Chunks(pieces(blobs, 100)), sample_weight=np.ones(len(blobs)))


# --------------------------------------------------------------------------------------------------------- memmap


@pytest.fixture
def memmap_path(tmp_path):
    X = make_blobs(5000, 4, offset=100.0).astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path, X


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_memmap_fit_and_predict_equal_the_array(memmap_path, mode):
    path, X = memmap_path
    mapped = np.load(path, mmap_mode=mode)
    # Up to 100000 rows the 'auto' sample is every row: the same fit as the array, bit for bit.
    assert_same_model(fit(mapped), fit(X), rtol=0)
    gm = fit(X)
    np.testing.assert_array_equal(gm.predict(mapped), gm.predict(X))
    np.testing.assert_array_equal(gm.predict_proba(mapped), gm.predict_proba(X))
    np.testing.assert_array_equal(gm.score_samples(mapped), gm.score_samples(X))


def test_memmap_auto_initialisation_is_a_sample(memmap_path, monkeypatch):
    path, X = memmap_path
    import fastgmm.sources.init_sample

    monkeypatch.setattr(fastgmm.sources.init_sample, "_AUTO_SAMPLE_ROWS", 700)
    assert_same_model(fit(np.load(path, mmap_mode="r")), fit(X, init_sample_size=700), rtol=0)


def _rss_anon():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    pytest.skip("no RssAnon here")


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc/self/status")
def test_memmap_fit_does_not_load_the_file(tmp_path):
    n_rows, n_features = 4_000_000, 4
    path = tmp_path / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    rng = np.random.RandomState(0)
    for start in range(0, n_rows, 500_000):
        centres = 5 * rng.randint(2, size=(500_000, 1))
        out[start : start + 500_000] = rng.standard_normal((500_000, n_features)) + centres
    del out
    mapped = np.load(path, mmap_mode="r")
    # Compile first, the serial kernels (small calls) and the parallel ones: the JIT's own memory is not the fit's.
    fit(mapped[:20_000], max_iter=2)
    fit(mapped[:400_000], max_iter=2)
    gc.collect()
    before = _rss_anon()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_anon())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        gm = GaussianMixture(2, max_iter=2, tol=0, random_state=0, init_sample_size=20_000).fit(mapped)
        gm.score_samples(mapped[:10])
    finally:
        done.set()
        sampler.join()
    # The file is 64 MB; a copy of it, or a float64 vector of N (32 MB), would show here.
    assert peak[0] - before < 0.25 * mapped.nbytes, (peak[0] - before) / 2**20


def test_fastgmm_works_without_dask():
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        "import numpy as np, fastgmm\n"
        "X = np.random.RandomState(0).normal(size=(500, 2))\n"
        "gm = fastgmm.GaussianMixture(2, random_state=0).fit(fastgmm.Chunks([X[:250], X[250:]]))\n"
        "print(gm.predict(X[:3]).shape)\n"
    )
    assert run_python(code) == "(3,)"
