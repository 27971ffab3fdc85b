"""Data sources: where the rows come from, and how they are cut into blocks.

A source sums a backend's statistics over its blocks; the statistics are additive, so the EM driver sees one
``Statistics`` per pass whatever holds the data.
"""

import math

import numpy as np

from ._model import Statistics

# DESIGN.md section 3: block boundaries depend on N only, so a reduction in block order is the same whatever the
# number of threads, and the partial statistics stay bounded (at most ~256 blocks).
_MIN_BLOCK_ROWS = 4096
_MAX_BLOCKS = 256

# Rows per block when a (rows x K) float64 temporary is needed (prediction): about 8 MiB.
_PREDICT_BLOCK_BYTES = 8 * 2**20


def statistics_block_size(n_samples):
    """Rows per block of the one-pass statistics for ``n_samples`` rows."""
    return max(_MIN_BLOCK_ROWS, math.ceil(n_samples / _MAX_BLOCKS))


def predict_block_size(n_components):
    """Rows per block of the prediction passes, so that a (rows x K) float64 block stays near 8 MiB."""
    return max(1, _PREDICT_BLOCK_BYTES // (8 * n_components))


class ArraySource:
    """An in-memory (or memory-mapped) 2-D array with optional sample weights.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,) float64, or None
    """

    def __init__(self, X, sample_weight=None):
        self.X = X
        self.sample_weight = sample_weight

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    def blocks(self, block_size):
        """Yield ``(rows, X_block, weight_block)`` with ``rows`` a slice; ``weight_block`` is None without
        weights."""
        for start in range(0, self.n_samples, block_size):
            rows = slice(start, min(start + block_size, self.n_samples))
            yield rows, self.X[rows], None if self.sample_weight is None else self.sample_weight[rows]

    def statistics(self, backend, params):
        """One pass: the log-likelihood under ``params`` and the statistics for the next M-step."""
        ll, total_weight, nk, s1, s2 = backend.accumulate(
            self.X, self.sample_weight, *params.kernel_arguments(), statistics_block_size(self.n_samples)
        )
        return Statistics(float(ll), float(total_weight), nk, s1, s2, params.means)


def as_source(X, sample_weight=None):
    """The data source for validated input."""
    return ArraySource(X, sample_weight)


def weighted_log_prob_blocks(backend, X, params):
    """Yield ``(rows, log(pi_k N(x | k)))`` over bounded row blocks of ``X``; the block is (rows, K) float64."""
    args = params.kernel_arguments()
    block_size = predict_block_size(params.n_components)
    buffer = np.empty((min(block_size, X.shape[0]), params.n_components))
    for start in range(0, X.shape[0], block_size):
        rows = slice(start, min(start + block_size, X.shape[0]))
        out = buffer[: rows.stop - rows.start]
        yield rows, backend.weighted_log_prob(X[rows], *args, out)
