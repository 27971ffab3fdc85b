"""The Cython backend: the compiled fallback when Numba is not usable, with the same interface as
``fastgmm.kernels.numba_`` and the same algorithm (``_cython.pyx``), built by setup.py at install time."""

import numpy as np

from .._threads import openmp_threads as threads  # noqa: F401 (the backend's thread policy)
from .._threads import openmp_thread_count
from . import _cython  # ImportError when the extension was not built: the backend is then unusable
from ._constants import TILE
from ._layouts import CODES, as_3d, finish_s2, s2_block_shape
from ._passes import dense_live as default_dense_live
from ._passes import n_blocks, reduce_in_rounds, staged_components, sum_in_order

from .numpy_ import responsibility_moments  # noqa: F401 (the reference's: one pass per random initialisation)

NAME = "cython"


def runtime_summary():
    """The OpenMP threads a kernel call takes by default, and whether the extension was built with OpenMP."""
    return {"threads": f"{_cython.max_threads()} (OpenMP {'on' if _cython.OPENMP else 'off: built without it'})"}


def _n_threads():
    return openmp_thread_count(_cython.max_threads())


def _rows(X):
    """X as the kernels read it: float32 or float64 with any strides (a Fortran-ordered or sliced X is read in
    place, never copied)."""
    return np.asarray(X)


def _c(array):
    return np.ascontiguousarray(array, dtype=np.float64)


def _weights(sample_weight):
    return (np.empty(0), False) if sample_weight is None else (_c(sample_weight), True)


def _prepare(covariance_type, means, precisions_cholesky, log_const):
    n_components, n_features = means.shape
    U = as_3d(covariance_type, precisions_cholesky, n_components, n_features)
    return CODES[covariance_type], _c(means), U.ravel(), _c(log_const)


def accumulate(X, sample_weight, covariance_type, means, precisions_cholesky, log_const, block_size,
               dense_live=None):
    """One pass over ``X``: log-likelihood and shifted statistics; see ``fastgmm.kernels.numpy_.accumulate``
    (``dense_live`` as in ``numba_.accumulate``)."""
    model = _prepare(covariance_type, means, precisions_cholesky, log_const)
    cov, means = model[0], model[1]
    X = _rows(X)
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    s2_shape = s2_block_shape(cov, n_components, n_features)
    w, weighted = _weights(sample_weight)
    n_threads = _n_threads()
    if dense_live is None:
        dense_live = default_dense_live(covariance_type, n_features)
    plan = (block_size, staged_components(n_components, n_features, TILE), float(dense_live))

    def fill(rows, ll_tw, nk, s1, s2):
        _cython.accumulate_blocks(X[rows], w[rows] if weighted else w, weighted, model, (ll_tw, nk, s1, s2), plan,
                                  n_threads)

    shapes = [(2,), (n_components,), (n_components * n_features,), (int(np.prod(s2_shape)),)]
    ll_tw, nk, s1, s2 = reduce_in_rounds(fill, n_samples, block_size, shapes, n_threads)
    ll, tw = ll_tw
    s1 = s1.reshape(n_components, n_features)
    return ll, tw, nk, s1, finish_s2(s2.reshape(s2_shape), covariance_type)


def weighted_log_prob(X, covariance_type, means, precisions_cholesky, log_const, out):
    """Write ``log(pi_k) + log N(x_n | mu_k, Sigma_k)`` into ``out`` (N, K) and return it."""
    cov, means, U, log_const = _prepare(covariance_type, means, precisions_cholesky, log_const)
    _cython.weighted_log_prob_rows(_rows(X), cov, means, U, log_const, out, _n_threads())
    return out


def candidate_potentials(X, sample_weight, candidates, closest, block_size):
    """k-means++: for each candidate centre, ``sum_n w_n min(closest_n, |x_n - candidate|^2)``; shape (C,)."""
    partial = np.zeros((n_blocks(X.shape[0], block_size), candidates.shape[0]))
    w, weighted = _weights(sample_weight)
    _cython.candidate_potentials_blocks(_rows(X), w, weighted, _c(candidates), closest, block_size, partial,
                                        _n_threads())
    return sum_in_order(partial)


def update_closest(X, center, closest, block_size):
    """``closest = min(closest, |x - center|^2)`` in place."""
    _cython.update_closest_rows(_rows(X), _c(center), closest, _n_threads())


def lloyd_step(X, sample_weight, centers, labels, block_size):
    """One Lloyd assignment; see ``fastgmm.kernels.numpy_.lloyd_step``."""
    n_clusters, n_features = centers.shape
    blocks = n_blocks(X.shape[0], block_size)
    sums = np.zeros((blocks, n_clusters, n_features))
    weights = np.zeros((blocks, n_clusters))
    w, weighted = _weights(sample_weight)
    _cython.lloyd_step_blocks(_rows(X), w, weighted, _c(centers), labels, block_size, sums, weights, _n_threads())
    return sum_in_order(sums), sum_in_order(weights)


def label_statistics(X, sample_weight, labels, shift, covariance_type, block_size):
    """``(nk, s1, s2)`` of hard assignments; see ``fastgmm.kernels.numpy_.label_statistics``."""
    n_components, n_features = shift.shape
    cov = CODES[covariance_type]
    X = _rows(X)
    s2_shape = s2_block_shape(cov, n_components, n_features)
    w, weighted = _weights(sample_weight)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    shift = _c(shift)
    n_threads = _n_threads()

    def fill(rows, nk, s1, s2):
        _cython.label_statistics_blocks(
            X[rows], w[rows] if weighted else w, weighted, labels[rows], shift, cov, block_size, (nk, s1, s2), n_threads
        )

    shapes = [(n_components,), (n_components * n_features,), (int(np.prod(s2_shape)),)]
    nk, s1, s2 = reduce_in_rounds(fill, X.shape[0], block_size, shapes, n_threads)
    return nk, s1.reshape(n_components, n_features), finish_s2(s2.reshape(s2_shape), covariance_type)
