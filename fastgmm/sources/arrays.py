"""An in-memory or memory-mapped array as a data source."""

import numpy as np

from .blocks import array_statistics, map_log_prob, seeds_from, statistics_block_size, weighted_mean, worst_rows


class RowsOfX:
    """The shape properties of a source that holds its rows as a 2-D array ``X``."""

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def dtype(self):
        """The floating dtype of the rows, and so of the fitted parameters' attributes."""
        return self.X.dtype


class ArraySource(RowsOfX):
    """An in-memory or memory-mapped 2-D array with optional sample weights.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        Validated.
    sample_weight : ndarray of shape (n_samples,) float64, or None
    out_of_core : bool, default=False
        Whether X is memory-mapped: then only a sample of rows may be held in memory at once (initialisation).
    feature_names : ndarray of str, or None
        The column names X came with.
    """

    def __init__(self, X, sample_weight=None, out_of_core=False, feature_names=None):
        self.X = X
        self.sample_weight = sample_weight
        self.out_of_core = out_of_core
        self.feature_names = feature_names

    def blocks(self, block_size):
        """Yield ``(rows, X_block, weight_block)`` with ``rows`` a slice; ``weight_block`` is None without
        weights (the initialisation's reading of its in-memory sample)."""
        for start in range(0, self.n_samples, block_size):
            rows = slice(start, min(start + block_size, self.n_samples))
            yield rows, self.X[rows], None if self.sample_weight is None else self.sample_weight[rows]

    def batches(self, batch_size):
        """Yield the consecutive row batches of at most ``batch_size`` rows as sources of their own (mini-batch EM);
        a memmap's batches are read as they come."""
        for rows, X, weight in self.blocks(batch_size):
            yield ArraySource(X, weight, self.out_of_core, self.feature_names)

    def statistics(self, backend, params):
        """One pass: the log-likelihood under ``params`` and the statistics for the next M-step."""
        return array_statistics(backend, params, self.X, self.sample_weight)

    def em_iterations(self, backend, params, **settings):
        """Several EM iterations in one call of the backend's ``em_iterations`` (see
        ``fastgmm.kernels.numba_.em_iterations``), or None when the backend has none or does not take this X."""
        return self._fused("em_iterations", backend, params, settings)

    def online_step(self, backend, params, **settings):
        """An online-EM step on these rows in one call of the backend's ``online_step`` (see
        ``fastgmm.kernels.numba_.online_step``), or None when the backend has none or does not take this X."""
        return self._fused("online_step", backend, params, settings)

    def _fused(self, name, backend, params, settings):
        run = getattr(backend, name, None)
        if run is None:
            return None
        return run(self.X, self.sample_weight, *params.kernel_arguments(), statistics_block_size(self.n_samples),
                   **settings)

    def rows(self, indices):
        """In-memory ``(X[indices], sample_weight[indices])`` for sorted row indices."""
        return np.asarray(self.X[indices]), None if self.sample_weight is None else self.sample_weight[indices]

    def worst_explained(self, backend, params, count):
        """The ``count`` rows worst explained by ``params`` (see ``fastgmm.sources.blocks.worst_rows``)."""
        return seeds_from(self.worst(backend, params, count), count)

    def worst(self, backend, params, count, offset=0):
        """``fastgmm.sources.blocks.worst_rows`` of these rows, row numbers plus ``offset``."""
        return worst_rows(backend, params, self.X, self.sample_weight, count, offset)

    def map_log_prob(self, backend, params, function, columns=None, dtype=None):
        """``function`` of every row block's weighted log-probabilities, as one array (see
        ``fastgmm.sources.blocks.map_log_prob``; ``dtype`` None for X's)."""
        return map_log_prob(backend, params, self.X, function, columns, self.dtype if dtype is None else dtype)

    def mean(self, values, sample_weight=None):
        """The (weighted) mean of ``values``, a per-row result of ``map_log_prob``."""
        return weighted_mean(values, sample_weight)
