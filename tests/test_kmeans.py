"""k-means initialisation: the same seeds and labels as scikit-learn's from the same random state, on every
backend; and the k-means kernels against the NumPy reference."""

import numpy as np
import pytest
from sklearn.cluster import KMeans, kmeans_plusplus

from fastgmm._backends import get_backend
from fastgmm.sources.arrays import ArraySource
from fastgmm import _kmeans as kmeans_module
from fastgmm._kmeans import kmeans
from fastgmm._kmeans import kmeans_plusplus as our_kmeans_plusplus
from fastgmm.kernels import numpy_ as reference

from .oracles import make_blobs


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seeds_equal_sklearn_kmeans_plusplus(backend, weighted, dtype):
    X = make_blobs(3000, 3, 6, seed=0).astype(dtype)
    w = np.random.RandomState(1).uniform(0.1, 3, 3000) if weighted else None
    _, expected = kmeans_plusplus(X, 6, random_state=np.random.RandomState(5), sample_weight=w)
    ours = our_kmeans_plusplus(ArraySource(X, w), get_backend(backend), 6, np.random.RandomState(5))
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_equal_sklearn_kmeans(backend, weighted, seed):
    X = make_blobs(5000, 4, 8, seed=seed)
    w = np.random.RandomState(seed).uniform(0.1, 3, 5000) if weighted else None
    expected = KMeans(8, n_init=1, random_state=np.random.RandomState(seed)).fit(X, sample_weight=w).labels_
    ours = kmeans(ArraySource(X, w), get_backend(backend), 8, np.random.RandomState(seed))[0]
    np.testing.assert_array_equal(ours, expected)


def _with_empty_clusters():
    """Four points repeated 30 times and three more: with K=8 k-means++ has to seed copies of one point, whose
    clusters empty at the first assignment (ties go to the lower cluster)."""
    rng = np.random.RandomState(3)
    return np.vstack([np.repeat(rng.normal(0, 5, (4, 2)), 30, axis=0), rng.normal(0, 5, (3, 2))]), 8


def test_empty_cluster_is_relocated_like_sklearn(backend, monkeypatch):
    """An empty cluster is refilled from the farthest point, as in scikit-learn."""
    X, K = _with_empty_clusters()
    relocate = kmeans_module._relocate_empty_clusters
    emptied = []
    monkeypatch.setattr(kmeans_module, "_relocate_empty_clusters",
                        lambda *args: emptied.append(bool((args[-1] == 0).any())) or relocate(*args))
    for seed in range(5):
        expected = KMeans(K, n_init=1, random_state=np.random.RandomState(seed)).fit(X).labels_
        ours = kmeans(ArraySource(X), get_backend(backend), K, np.random.RandomState(seed))[0]
        np.testing.assert_array_equal(ours, expected)
    assert any(emptied)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_kernels_match_reference(backend, dtype, weighted, covariance_type):
    X = make_blobs(9000, 3, 4, seed=4, offset=1e3).astype(dtype)
    w = np.random.RandomState(5).uniform(0, 2, 9000) if weighted else None
    kernel = get_backend(backend)
    centers = X[[1, 50, 900, 4000]].astype(np.float64)
    closest = np.random.RandomState(6).uniform(0, 50, 9000)

    np.testing.assert_allclose(
        kernel.candidate_potentials(X, w, centers, closest, 4096),
        reference.candidate_potentials(X, w, centers, closest, 4096),
        rtol=1e-12,
    )
    ours, theirs = closest.copy(), closest.copy()
    kernel.update_closest(X, centers[2], ours, 4096)
    reference.update_closest(X, centers[2], theirs, 4096)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)

    labels_ours, labels_ref = np.empty(9000, np.int32), np.empty(9000, np.int32)
    step_ours = kernel.lloyd_step(X, w, centers, labels_ours, 4096)
    step_ref = reference.lloyd_step(X, w, centers, labels_ref, 4096)
    np.testing.assert_array_equal(labels_ours, labels_ref)
    for a, b in zip(step_ours, step_ref):
        np.testing.assert_allclose(a, b, rtol=1e-12)

    labels = labels_ref.copy()
    labels[::7] = -1
    shift = centers + 0.5
    for a, b in zip(
        kernel.label_statistics(X, w, labels, shift, covariance_type, 4096),
        reference.label_statistics(X, w, labels, shift, covariance_type, 4096),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("n_features", [5, 8])
def test_label_statistics_match_reference_at_eight_padded_rows(backend, covariance_type, n_features):
    """For 5 <= D <= 8 Numba's kernels sum full and tied moments in registers, eight padded rows at a time
    (``numba_._moments_eight``): its hard-label statistics for k-means' start, a dense tile of one-hot
    responsibilities, go through them too (Cython's take each row apart)."""
    X = make_blobs(3000, n_features, 4, seed=7, offset=1e3)
    w = np.random.RandomState(8).uniform(0, 2, 3000)
    labels = np.random.RandomState(9).randint(-1, 4, 3000).astype(np.int32)
    shift = X[[3, 30, 300, 2000]] + 0.5
    for a, b in zip(
        get_backend(backend).label_statistics(X, w, labels, shift, covariance_type, 1024),
        reference.label_statistics(X, w, labels, shift, covariance_type, 1024),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("n_components", [3, 6])
@pytest.mark.parametrize("n_features", [3, 14])
def test_label_statistics_match_reference(backend, covariance_type, n_components, n_features):
    """Both forms of the compiled label statistics (dense one-hot tiles for few components, row by row for more),
    weighted, with unlabelled (-1) and zero-weight rows, against the reference, far from the origin."""
    X = make_blobs(3000, n_features, n_components, seed=7, offset=1e4)
    w = np.random.RandomState(8).uniform(0, 2, 3000)
    w[::11] = 0.0
    labels = np.random.RandomState(9).randint(-1, n_components, 3000).astype(np.int32)
    shift = X[:n_components] + 0.25
    kernel = get_backend(backend)
    for weights in (None, w):
        for a, b in zip(
            kernel.label_statistics(X, weights, labels, shift, covariance_type, 1024),
            reference.label_statistics(X, weights, labels, shift, covariance_type, 1024),
        ):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9 * np.abs(b).max())


class _Unfused:
    """A backend module seen without its optional fused k-means: ``fastgmm._kmeans`` then runs its Python loop."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        if name == "kmeans":
            raise AttributeError(name)
        return getattr(self._module, name)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", ["blobs", "empty cluster", "many calls"])
def test_fused_kmeans_equals_the_python_loop(monkeypatch, weighted, case):
    """Numba's compiled k-means (seeding and Lloyd in a few calls) makes the Python loop's steps: the same seeds,
    the same labels and the same generator state after, also when a cluster empties (handed back to the Python
    relocation) and when a call's work cap cuts the run into several calls."""
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    rng = np.random.RandomState(3)
    if case == "empty cluster":
        X, K = _with_empty_clusters()
    else:
        X, K = make_blobs(6000, 3, 7, seed=1), 7
    if case == "many calls":
        monkeypatch.setattr(numba_, "FUSED_CALL_WORK", 6000 * 7 * 3)  # one Lloyd pass or seeding step per call
    w = rng.uniform(0.1, 3, len(X)) if weighted else None
    source = ArraySource(X, w)
    handed_back = []
    lloyd = kmeans_module.lloyd
    monkeypatch.setattr(kmeans_module, "lloyd", lambda *args: handed_back.append(len(args)) or lloyd(*args))
    for seed in range(4):
        fused_state, loop_state = np.random.RandomState(seed), np.random.RandomState(seed)
        fused, fused_centers = kmeans(source, numba_, K, fused_state)
        looped, looped_centers = kmeans(source, _Unfused(numba_), K, loop_state)
        np.testing.assert_array_equal(fused, looped)
        np.testing.assert_allclose(fused_centers, looped_centers, rtol=1e-12, atol=1e-12)
        assert fused_state.random_sample() == loop_state.random_sample()
        np.testing.assert_array_equal(our_kmeans_plusplus(source, numba_, K, np.random.RandomState(seed)),
                                      our_kmeans_plusplus(source, _Unfused(numba_), K, np.random.RandomState(seed)))
    # The loop ran for the unfused backend each time (4 arguments), and for the fused one only to relocate.
    assert handed_back.count(4) == 4
    assert (handed_back.count(8) > 0) == (case == "empty cluster")
