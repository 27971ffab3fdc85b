"""k-means++ seeding and Lloyd's k-means on fastgmm's kernels, for the 'kmeans' and 'k-means++' initialisations.

Both follow scikit-learn's ``KMeans(n_init=1)`` and ``kmeans_plusplus`` step by step and draw the same random
numbers from the same generator, so that a GaussianMixture initialised here starts where scikit-learn's does (up
to rounding in the distances, which can only matter for exact ties). Memory beyond the data stays O(N) in float64
and int32 vectors; nothing of size N x K or N x D is allocated.
"""

import numpy as np

from .sources.blocks import statistics_block_size

# scikit-learn's KMeans defaults.
_MAX_ITER = 300
_TOL = 1e-4


def _sampling_weights(source):
    """scikit-learn draws seeds from ``sample_weight / sample_weight.sum()`` held in X's dtype."""
    if source.sample_weight is None:
        return np.ones(source.n_samples, dtype=source.X.dtype)
    return source.sample_weight.astype(source.X.dtype)


def _n_trials(n_clusters):
    return 2 + int(np.log(n_clusters))


def _first_seed(source, random_state):
    """``random_state.choice(n_samples, p=p / p.sum())`` with scikit-learn's ``p``: the same row and the same one
    double drawn. Without sample weights it is numpy's own computation (cumulative sum of the probabilities,
    normalised by its last entry, searched for a uniform draw) on the one probability all rows share, without the
    checks, copies and conversions of ``choice`` (0.1 ms of a 2 ms fit at 10,000 rows)."""
    if source.sample_weight is not None:
        p = _sampling_weights(source)
        return int(random_state.choice(source.n_samples, p=p / p.sum()))
    dtype = source.X.dtype.type
    n = source.n_samples
    # The sum of n ones is n exactly in float64, and in float32 below 2^24; numpy's pairwise sum decides above.
    total = dtype(n) if dtype is np.float64 or n <= 2**24 else np.ones(n, dtype=dtype).sum()
    cdf = np.cumsum(np.full(n, np.float64(dtype(1) / total)))
    cdf /= cdf[-1]
    return int(cdf.searchsorted(random_state.random_sample(), side="right"))


def _seeding_draws(source, n_clusters, random_state):
    """scikit-learn's k-means++ random numbers, drawn at once: the first seed's row (``choice`` with the sample
    weights as probabilities) and the ``uniform(size=n_trials)`` draws of each later step as rows of one array,
    which leaves the generator where the step-by-step draws leave it."""
    first = _first_seed(source, random_state)
    return first, random_state.uniform(size=(n_clusters - 1, _n_trials(n_clusters)))


def doubles_drawn(n_clusters):
    """How many doubles ``kmeans_plusplus`` and ``kmeans`` draw (``choice`` with probabilities draws one),
    so that ``random_state.random_sample(doubles_drawn(K))`` advances a generator as they do."""
    return 1 + (n_clusters - 1) * _n_trials(n_clusters)


def _seed_indices(source, backend, first, uniforms):
    """k-means++ (greedy, ``uniforms.shape[1]`` candidates per step) from its drawn random numbers, over the
    single-pass kernels."""
    X, weights = source.X, source.sample_weight
    n_samples = source.n_samples
    block_size = statistics_block_size(n_samples)
    indices = np.empty(uniforms.shape[0] + 1, dtype=np.intp)
    indices[0] = first
    closest = np.full(n_samples, np.inf)
    backend.update_closest(X, X[first], closest, block_size)
    # Potentials summed in order (as the fused kernel sums them), not pairwise.
    potential = np.cumsum(closest if weights is None else closest * weights)[-1]
    for c, draws in enumerate(uniforms, start=1):
        cumulative = np.cumsum(closest if weights is None else closest * weights)
        candidates = np.minimum(np.searchsorted(cumulative, draws * potential), n_samples - 1)
        del cumulative
        potentials = backend.candidate_potentials(X, weights, X[candidates], closest, block_size)
        best = int(np.argmin(potentials))
        potential = potentials[best]
        indices[c] = candidates[best]
        backend.update_closest(X, X[indices[c]], closest, block_size)
    return indices


def _fused(backend, source, first, uniforms, tol, max_iter):
    """The backend's compiled k-means (``fastgmm.kernels.numba_.kmeans``; ``tol`` relative to the mean variance of
    X's columns), or None where it has none or declines."""
    run = getattr(backend, "kmeans", None)
    if run is None:
        return None
    return run(source.X, source.sample_weight, first, uniforms, tol, max_iter,
               statistics_block_size(source.n_samples))


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
    first, uniforms = _seeding_draws(source, n_clusters, random_state)
    fused = _fused(backend, source, first, uniforms, 0.0, 0)
    if fused is not None:
        return fused["indices"].astype(np.intp)
    return _seed_indices(source, backend, first, uniforms)


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


def kmeans(source, backend, n_clusters, random_state):
    """Labels and centres of ``KMeans(n_clusters, n_init=1, random_state=random_state).fit(X, sample_weight)``.

    Parameters
    ----------
    source : data source
    backend : kernel module
    n_clusters : int
    random_state : numpy.random.RandomState

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
    centers : ndarray of shape (n_clusters, n_features), float64
        The last centres, which the labels were assigned to.
    """
    first, uniforms = _seeding_draws(source, n_clusters, random_state)
    fused = _fused(backend, source, first, uniforms, _TOL, _MAX_ITER)
    if fused is None:
        centers = np.asarray(source.X[_seed_indices(source, backend, first, uniforms)], dtype=np.float64)
        return lloyd(source, backend, centers, _mean_variance(source, statistics_block_size(source.n_samples)) * _TOL)
    if fused["pending"] is None:
        return fused["labels"], fused["centers"]
    # An assignment left a cluster empty: the iteration goes on here, where the relocation rule is.
    return lloyd(source, backend, fused["centers"], fused["tol"], fused["labels"], fused["labels_old"],
                 fused["iterations"], fused["pending"])


def lloyd(source, backend, centers, tol, labels=None, labels_old=None, done=0, pending=None):
    """Lloyd's iterations from ``centers`` as scikit-learn's ``KMeans`` makes them, over the single-pass kernels:
    the labels. ``done`` iterations were made already, and ``pending``, when given, is the ``(sums, weights)`` of
    the next one's assignment (``labels``), made by a fused kernel that left its relocation to this loop. Returns
    the labels and the centres."""
    X, w = source.X, source.sample_weight
    block_size = statistics_block_size(source.n_samples)
    if labels is None:
        labels = np.full(source.n_samples, -1, dtype=np.int32)
        labels_old = labels.copy()
    strict_convergence = False
    for _ in range(done, _MAX_ITER):
        sums, weights = backend.lloyd_step(X, w, centers, labels, block_size) if pending is None else pending
        pending = None
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
    return labels, centers
