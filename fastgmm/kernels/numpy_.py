"""Reference kernels in plain NumPy.

These are the oracle every compiled backend is tested against, and the last-resort backend when nothing compiled is
usable. They favour clarity over speed, but still never hold more than one row block of temporaries: the caller
chooses ``block_size``.

Conventions shared by every backend (``fastgmm.kernels``):

- ``means``: (K, D) float64; they are also the shift ``c_k`` of the statistics.
- ``precisions_cholesky``: full (K, D, D), tied (D, D), diag (K, D), spherical (K,), float64, upper triangular
  ``U`` with ``precision = U @ U.T``.
- ``log_const``: (K,) float64, ``log(weight_k) + sum(log diag U_k) - D/2 log(2 pi)``.
- ``accumulate`` returns ``(log_likelihood, total_weight, nk, s1, s2)`` in float64 where ``s2`` is full (K, D, D),
  tied (D, D), diag (K, D) or spherical (K,) (the trace of the full one).
"""

import numpy as np
from scipy.special import logsumexp

from .._parameters import covariance_shape
from .._threads import blas_threads as threads  # noqa: F401 (the backend's thread policy)

NAME = "numpy"


def runtime_summary():
    """Nothing of its own to report: its threads are BLAS's, which ``show_versions`` lists."""
    return {}


def _mahalanobis_sq(Xb, means, precisions_cholesky, covariance_type, k):
    """Squared Mahalanobis distance of each row of ``Xb`` (B, D) to component ``k``; shape (B,)."""
    diff = Xb - means[k]
    if covariance_type == "full":
        y = diff @ precisions_cholesky[k]
    elif covariance_type == "tied":
        y = diff @ precisions_cholesky
    else:  # diag (D,) or spherical scalar: U is diagonal
        y = diff * precisions_cholesky[k]
    return np.einsum("ij,ij->i", y, y)


def _weighted_log_prob_block(Xb, covariance_type, means, precisions_cholesky, log_const):
    """log(pi_k N(x | mu_k, Sigma_k)) for a float64 row block; shape (B, K)."""
    n_components = means.shape[0]
    out = np.empty((Xb.shape[0], n_components))
    for k in range(n_components):
        out[:, k] = log_const[k] - 0.5 * _mahalanobis_sq(Xb, means, precisions_cholesky, covariance_type, k)
    return out


def weighted_log_prob(X, covariance_type, means, precisions_cholesky, log_const, out):
    """Write ``log(pi_k) + log N(x_n | mu_k, Sigma_k)`` into ``out`` (N, K) and return it."""
    out[...] = _weighted_log_prob_block(
        np.asarray(X, dtype=np.float64), covariance_type, means, precisions_cholesky, log_const
    )
    return out


def _accumulate_moments(Xb, resp, shift, covariance_type, nk, s1, s2):
    """Add the moments of a float64 row block with (already weighted) responsibilities ``resp`` (B, K), taken
    about ``shift`` (K, D), to ``nk``, ``s1`` and ``s2`` in place."""
    nk += resp.sum(axis=0)
    for k in range(shift.shape[0]):
        diff = Xb - shift[k]
        weighted = resp[:, k : k + 1] * diff
        s1[k] += weighted.sum(axis=0)
        if covariance_type == "full":
            s2[k] += weighted.T @ diff
        elif covariance_type == "tied":
            s2 += weighted.T @ diff
        elif covariance_type == "diag":
            s2[k] += np.einsum("ij,ij->j", weighted, diff)
        else:
            s2[k] += np.einsum("ij,ij->", weighted, diff)


def accumulate(X, sample_weight, covariance_type, means, precisions_cholesky, log_const, block_size):
    """One pass over ``X``: log-likelihood and shifted sufficient statistics for the next M-step.

    Parameters
    ----------
    X : ndarray of shape (N, D), float32 or float64
    sample_weight : ndarray of shape (N,) float64, or None for unit weights
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    means, precisions_cholesky, log_const : see the module docstring
    block_size : int
        Rows per block; partial statistics are summed in block order.

    Returns
    -------
    log_likelihood : float
        ``sum_n w_n log p(x_n)``.
    total_weight : float
        ``sum_n w_n``.
    nk : ndarray of shape (K,)
    s1 : ndarray of shape (K, D)
        ``sum_n w_n r_nk (x_n - mu_k)``.
    s2 : ndarray
        ``sum_n w_n r_nk (x_n - mu_k)(x_n - mu_k)^T``, reduced according to ``covariance_type``.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    log_likelihood = 0.0
    total_weight = 0.0
    nk = np.zeros(n_components)
    s1 = np.zeros((n_components, n_features))
    s2 = np.zeros(covariance_shape(covariance_type, n_components, n_features))

    for start in range(0, n_samples, block_size):
        stop = min(start + block_size, n_samples)
        Xb = np.asarray(X[start:stop], dtype=np.float64)
        a = _weighted_log_prob_block(Xb, covariance_type, means, precisions_cholesky, log_const)
        log_p = logsumexp(a, axis=1)
        with np.errstate(under="ignore"):
            resp = np.exp(a - log_p[:, None])
        if sample_weight is None:
            log_likelihood += log_p.sum()
            total_weight += stop - start
        else:
            wb = sample_weight[start:stop]
            # A zero-weight point contributes nothing, even where its log-likelihood is -inf.
            log_likelihood += np.dot(wb[wb > 0], log_p[wb > 0])
            total_weight += wb.sum()
            resp *= wb[:, None]
        _accumulate_moments(Xb, resp, means, covariance_type, nk, s1, s2)
    return log_likelihood, total_weight, nk, s1, s2


def _sq_distances(Xb, centers):
    """Squared Euclidean distances (B, C) of a float64 row block to centers, as differences (no cancellation)."""
    return np.stack([np.einsum("ij,ij->i", Xb - c, Xb - c) for c in centers], axis=1)


def candidate_potentials(X, sample_weight, candidates, closest, block_size):
    """k-means++: for each candidate centre, ``sum_n w_n min(closest_n, |x_n - candidate|^2)``; shape (C,)."""
    potentials = np.zeros(candidates.shape[0])
    for start in range(0, X.shape[0], block_size):
        rows = slice(start, start + block_size)
        d = np.minimum(_sq_distances(np.asarray(X[rows], dtype=np.float64), candidates), closest[rows, None])
        potentials += d.T @ sample_weight[rows] if sample_weight is not None else d.sum(axis=0)
    return potentials


def update_closest(X, center, closest, block_size):
    """``closest = min(closest, |x - center|^2)`` in place."""
    for start in range(0, X.shape[0], block_size):
        rows = slice(start, start + block_size)
        d = _sq_distances(np.asarray(X[rows], dtype=np.float64), center[None])[:, 0]
        np.minimum(closest[rows], d, out=closest[rows])


def lloyd_step(X, sample_weight, centers, labels, block_size):
    """One Lloyd assignment: each row's nearest centre (the first on ties) into ``labels``.

    Returns
    -------
    sums : ndarray of shape (K, D)
        Weighted sum of the rows of each cluster.
    weights : ndarray of shape (K,)
        Total weight of each cluster.
    """
    n_clusters, n_features = centers.shape
    sums = np.zeros((n_clusters, n_features))
    weights = np.zeros(n_clusters)
    for start in range(0, X.shape[0], block_size):
        rows = slice(start, start + block_size)
        Xb = np.asarray(X[rows], dtype=np.float64)
        nearest = _sq_distances(Xb, centers).argmin(axis=1)
        labels[rows] = nearest
        wb = np.ones(Xb.shape[0]) if sample_weight is None else sample_weight[rows]
        np.add.at(weights, nearest, wb)
        np.add.at(sums, nearest, Xb * wb[:, None])
    return sums, weights


def responsibility_moments(X, sample_weight, resp_of_block, shift, covariance_type, block_size):
    """``(nk, s1, s2)`` of given responsibilities, moments about ``shift`` (K, D); ``resp_of_block(rows, n_rows)``
    returns the (n_rows, K) responsibilities of a row block, before the sample weights."""
    n_components, n_features = shift.shape
    nk = np.zeros(n_components)
    s1 = np.zeros((n_components, n_features))
    s2 = np.zeros(covariance_shape(covariance_type, n_components, n_features))
    for start in range(0, X.shape[0], block_size):
        rows = slice(start, start + block_size)
        Xb = np.asarray(X[rows], dtype=np.float64)
        resp = np.asarray(resp_of_block(rows, Xb.shape[0]), dtype=np.float64)
        if sample_weight is not None:
            resp = resp * sample_weight[rows, None]
        _accumulate_moments(Xb, resp, shift, covariance_type, nk, s1, s2)
    return nk, s1, s2


def label_statistics(X, sample_weight, labels, shift, covariance_type, block_size):
    """``(nk, s1, s2)`` of hard assignments (label -1: no component), moments about ``shift`` (K, D)."""

    def one_hot(rows, n_rows):
        block = labels[rows]
        resp = np.zeros((n_rows, shift.shape[0]))
        member = block >= 0
        resp[np.flatnonzero(member), block[member]] = 1.0
        return resp

    return responsibility_moments(X, sample_weight, one_hot, shift, covariance_type, block_size)
