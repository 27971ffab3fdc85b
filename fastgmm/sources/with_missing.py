"""An in-memory or memory-mapped array with missing entries (NaN), for ``missing_values='marginalize'``: complete
rows go to the backend's kernels as ever, rows with holes to ``fastgmm._missing``, a piece of rows at a time."""

import numpy as np
from scipy.special import logsumexp

from .. import _missing
from .arrays import ArraySource
from .blocks import add_in_order, array_statistics, merge_worst, weighted_mean

# Rows per piece: the complete rows of a piece are copied (to reach the kernels contiguous), so a piece bounds the
# extra memory (64 MiB at D=128 float64); pieces are cut by N alone, so the sums do not depend on the thread count.
_PIECE_ROWS = 65536


def missing_values_source(source):
    """``source`` itself when its rows have no NaN (the fit then costs what it costs without holes), else a
    ``MissingValuesSource``; ValueError for a row with nothing observed."""
    X = source.X
    pieces = [np.isnan(X[start:start + _PIECE_ROWS]) for start in range(0, X.shape[0], _PIECE_ROWS)]
    if not any(piece.any() for piece in pieces):
        return source
    for start, piece in zip(range(0, X.shape[0], _PIECE_ROWS), pieces):
        empty = np.flatnonzero(piece.all(axis=1))
        if len(empty):
            raise ValueError(f"X has rows with no observed value (every entry NaN), the first row {start + empty[0]}: "
                             "they have no likelihood under missing_values='marginalize'; drop them")
    return MissingValuesSource(source.X, source.sample_weight, source.out_of_core, source.feature_names)


class MissingValuesSource(ArraySource):
    """An ``ArraySource`` whose rows may have NaN entries, marginalised (see ``fastgmm._missing``). It has no fused
    EM iterations (each iteration is a pass here), and its initialisation reads the complete rows only
    (``for_initialisation``)."""

    def _pieces(self):
        for start in range(0, self.n_samples, _PIECE_ROWS):
            rows = slice(start, min(start + _PIECE_ROWS, self.n_samples))
            X = np.asarray(self.X[rows])
            weight = None if self.sample_weight is None else self.sample_weight[rows]
            yield rows, X, np.isnan(X).any(axis=1), weight

    def statistics(self, backend, params):
        parts = []
        for _, X, holes, weight in self._pieces():
            if not holes.all():
                complete = np.ascontiguousarray(X[~holes])
                parts.append(array_statistics(backend, params, complete, None if weight is None else weight[~holes]))
            if holes.any():
                parts.append(_missing.observed_statistics(X[holes], None if weight is None else weight[holes], params))
        return add_in_order(*parts)

    def em_iterations(self, backend, params, **settings):
        return None

    def online_step(self, backend, params, **settings):
        return None

    def batches(self, batch_size):
        for batch in super().batches(batch_size):
            yield MissingValuesSource(batch.X, batch.sample_weight, batch.out_of_core, batch.feature_names)

    def _log_prob(self, backend, params, X, holes):
        log_prob = np.empty((X.shape[0], params.n_components))
        if not holes.all():
            complete = np.ascontiguousarray(X[~holes])
            log_prob[~holes] = backend.weighted_log_prob(complete, *params.kernel_arguments(),
                                                         np.empty((complete.shape[0], params.n_components)))
        if holes.any():
            log_prob[holes] = _missing.observed_log_prob(X[holes], params)
        return log_prob

    def map_log_prob(self, backend, params, function, columns=None, dtype=None):
        out = np.empty((self.n_samples,) if columns is None else (self.n_samples, columns), dtype=dtype)
        for rows, X, holes, _ in self._pieces():
            out[rows] = function(self._log_prob(backend, params, X, holes))
        return out

    def worst_explained(self, backend, params, count):
        """The ``count`` rows worst explained (by the likelihood of their observed entries), their holes filled
        with their conditional expectation under ``params``: a component re-seeded there gets a finite mean."""
        found = []
        for rows, X, holes, weight in self._pieces():
            scores = logsumexp(self._log_prob(backend, params, X, holes), axis=1)
            if weight is not None:
                scores[~(weight > 0)] = np.inf
            keep = np.argsort(scores, kind="stable")[:count]
            keep = keep[scores[keep] < np.inf]
            found.append((scores[keep], keep + rows.start, _missing.conditional_expectation(X[keep], params)))
        rows = merge_worst(found, count)[2]
        return rows[np.arange(count) % len(rows)]

    def for_initialisation(self, n_components):
        """The source an initialisation reads: the complete rows (a copy), or, with fewer complete rows than
        ``n_components`` (or than 2), every row with its holes filled by its column's (weighted) mean."""
        holes = np.zeros(self.n_samples, dtype=bool)
        for rows, _, piece_holes, _ in self._pieces():
            holes[rows] = piece_holes
        weight = self.sample_weight
        complete = ~holes
        if complete.sum() >= max(2, n_components):
            return ArraySource(np.asarray(self.X[complete]), None if weight is None else weight[complete],
                               feature_names=self.feature_names)
        X = np.array(self.X)
        column_means = np.array([weighted_mean(column[~np.isnan(column)],
                                               None if weight is None else weight[~np.isnan(column)])
                                 for column in X.T])
        rows, columns = np.nonzero(np.isnan(X))
        X[rows, columns] = column_means[columns]
        return ArraySource(X, weight, feature_names=self.feature_names)
