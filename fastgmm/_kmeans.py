"""k-means++ seeding and Lloyd's k-means on fastgmm's kernels, for the 'kmeans' and 'k-means++' initialisations.

Both follow scikit-learn's ``KMeans(n_init=1)`` and ``kmeans_plusplus`` step by step and draw the same random
numbers from the same generator, so that a GaussianMixture initialised here starts where scikit-learn's does (up
to rounding in the distances, which can only matter for exact ties). Memory beyond the data stays O(N) in float64
and int32 vectors; nothing of size N x K or N x D is allocated.
"""

import numpy as np

from ._data import statistics_block_size

# scikit-learn's KMeans defaults.
_MAX_ITER = 300
_TOL = 1e-4


def _sampling_weights(source):
    """scikit-learn draws seeds from ``sample_weight / sample_weight.sum()`` held in X's dtype."""
    if source.sample_weight is None:
        return np.ones(source.n_samples, dtype=source.X.dtype)
    return source.sample_weight.astype(source.X.dtype)


def kmeans_plusplus(source, backend, n_clusters, random_state):
    """Indices of the k-means++ seeds (greedy, ``2 + log(n_clusters)`` candidates per step).

    Parameters
    ----------
    source : data source
    backend : kernel module
    n_clusters : int
    random_state : numpy.random.RandomState

    Returns
    -------
    indices : ndarray of shape (n_clusters,)
    """
    X, weights = source.X, source.sample_weight
    n_samples = source.n_samples
    block_size = statistics_block_size(n_samples)
    n_local_trials = 2 + int(np.log(n_clusters))
    p = _sampling_weights(source)
    indices = np.empty(n_clusters, dtype=np.intp)
    indices[0] = random_state.choice(n_samples, p=p / p.sum())
    del p
    closest = np.full(n_samples, np.inf)
    backend.update_closest(X, X[indices[0]], closest, block_size)
    potential = closest.sum() if weights is None else closest @ weights
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_local_trials) * potential
        cumulative = np.cumsum(closest if weights is None else weights * closest)
        candidates = np.minimum(np.searchsorted(cumulative, targets), n_samples - 1)
        del cumulative
        potentials = backend.candidate_potentials(X, weights, X[candidates], closest, block_size)
        best = int(np.argmin(potentials))
        potential = potentials[best]
        indices[c] = candidates[best]
        backend.update_closest(X, X[indices[c]], closest, block_size)
    return indices


def _mean_variance(source, block_size):
    """``np.mean(np.var(X, axis=0))`` in float64 without a copy of X (unweighted, as scikit-learn's tolerance)."""
    shift = np.asarray(source.X[0], dtype=np.float64)
    total = np.zeros(source.n_features)
    total_sq = np.zeros(source.n_features)
    for _, Xb, _ in source.blocks(block_size):
        d = np.asarray(Xb, dtype=np.float64) - shift
        total += d.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", d, d)
    n = source.n_samples
    return float(np.mean(total_sq / n - (total / n) ** 2))


def _relocate_empty_clusters(source, centers, labels, sums, weights):
    """scikit-learn's rule: each empty cluster takes the point farthest from its centre, moved out of its old
    cluster's sums."""
    empty = np.flatnonzero(weights == 0)
    if empty.size == 0:
        return
    X, w = source.X, source.sample_weight
    distances = np.empty(source.n_samples)
    for rows, Xb, _ in source.blocks(statistics_block_size(source.n_samples)):
        d = np.asarray(Xb, dtype=np.float64) - centers[labels[rows]]
        distances[rows] = np.einsum("ij,ij->i", d, d)
    far = np.argpartition(distances, -empty.size)[: -empty.size - 1 : -1]
    for new_cluster, index in zip(empty, far):
        weight = 1.0 if w is None else w[index]
        point = np.asarray(X[index], dtype=np.float64)
        old_cluster = labels[index]
        sums[old_cluster] -= point * weight
        sums[new_cluster] = point * weight
        weights[new_cluster] = weight
        weights[old_cluster] -= weight


def kmeans_labels(source, backend, n_clusters, random_state):
    """Labels of ``KMeans(n_clusters, n_init=1, random_state=random_state).fit(X, sample_weight)``.

    Parameters
    ----------
    source : data source
    backend : kernel module
    n_clusters : int
    random_state : numpy.random.RandomState

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
    """
    X, w = source.X, source.sample_weight
    block_size = statistics_block_size(source.n_samples)
    tol = _mean_variance(source, block_size) * _TOL
    centers = np.asarray(X[kmeans_plusplus(source, backend, n_clusters, random_state)], dtype=np.float64)
    labels = np.full(source.n_samples, -1, dtype=np.int32)
    labels_old = labels.copy()
    strict_convergence = False
    for _ in range(_MAX_ITER):
        sums, weights = backend.lloyd_step(X, w, centers, labels, block_size)
        _relocate_empty_clusters(source, centers, labels, sums, weights)
        occupied = weights > 0
        new_centers = centers.copy()
        new_centers[occupied] = sums[occupied] / weights[occupied, None]
        shift = ((new_centers - centers) ** 2).sum()
        centers = new_centers
        if np.array_equal(labels, labels_old):
            strict_convergence = True
            break
        if shift <= tol:
            break
        labels_old[:] = labels
    if not strict_convergence:
        # Labels that match the final centres, as scikit-learn's closing assignment.
        backend.lloyd_step(X, w, centers, labels, block_size)
    return labels
