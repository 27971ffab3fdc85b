"""An array with missing entries (NaN), for ``missing_values='marginalize'``: in memory, memory-mapped, or one chunk
or dask block of a larger source. Complete rows go to the backend's kernels as ever, a piece of rows at a time;
rows with holes to the backend's ``missing_statistics`` (grouped by pattern over the whole array when it is in
memory, per piece otherwise) or to the NumPy reference, ``fastgmm._missing``. The initialisation reads the
complete rows (``complete_rows``)."""

import functools

import numpy as np
from scipy.special import logsumexp

from .. import _missing
from .._validation import all_finite
from .arrays import ArraySource
from .blocks import add_in_order, array_statistics, merge_worst, statistics_block_size, weighted_mean

# Rows per piece: the complete rows of a piece are copied (to reach the kernels contiguous), so a piece bounds the
# extra memory (64 MiB at D=128 float64); pieces are cut by N alone, so the sums do not depend on the thread count.
_PIECE_ROWS = 65536


def _rows_of(X, indices):
    """``X[indices]``, contiguous: ``take`` copies rows 7x faster than a boolean mask does (65,536 x 8)."""
    return X.take(indices, axis=0)


def _groups_of(X, holes):
    """The rows of X with holes by pattern (``fastgmm._missing.group_patterns``), as row numbers of X."""
    with_holes = np.flatnonzero(holes)
    order, starts, observed = _missing.group_patterns(np.isnan(X[with_holes]))
    return with_holes[order], starts, observed


def missing_values_source(source):
    """``source`` itself when its rows have no NaN (the fit then costs what it costs without holes), else a
    ``MissingValuesSource``; ValueError for a row with nothing observed."""
    X = source.X
    if isinstance(X, np.ndarray) and all_finite(X):  # one fast pass, as validation's, for data without holes
        return source
    if not check_observed(X):
        return source
    return MissingValuesSource(source.X, source.sample_weight, source.out_of_core, source.feature_names)


def check_observed(X, where=""):
    """Whether X has NaN entries; ValueError for a row with nothing observed. ``where`` prefixes the row number
    ("chunk 3 ", say)."""
    any_missing = False
    for start in range(0, X.shape[0], _PIECE_ROWS):
        missing = np.isnan(X[start:start + _PIECE_ROWS])
        if missing.any():
            any_missing = True
            empty = np.flatnonzero(missing.all(axis=1))
            if len(empty):
                raise ValueError(f"X has rows with no observed value (every entry NaN), the first {where}row "
                                 f"{start + empty[0]}: they have no likelihood under missing_values='marginalize'; "
                                 "drop them")
    return any_missing


class MissingValuesSource(ArraySource):
    """An ``ArraySource`` whose rows may have NaN entries, marginalised (see ``fastgmm._missing``). It has no fused
    EM iterations (each iteration is a pass here), and its initialisation reads the complete rows only
    (``complete_rows``)."""

    def _pieces(self):
        """Yield ``(rows, X, holes, weight, groups)`` per piece: its slice, rows, which rows have holes (kept for an
        in-memory array), weights, and ``groups()``, the piece's rows with holes by pattern
        (``fastgmm._missing.group_patterns``, row numbers of the piece)."""
        holes_of = self.__dict__.setdefault("_holes", {})
        for start in range(0, self.n_samples, _PIECE_ROWS):
            rows = slice(start, min(start + _PIECE_ROWS, self.n_samples))
            X = np.asarray(self.X[rows])
            holes = holes_of.get(start)
            if holes is None:
                holes = np.isnan(X).any(axis=1)
                if not self.out_of_core:  # a byte per row, kept: finding the holes reads every entry
                    holes_of[start] = holes
            weight = None if self.sample_weight is None else self.sample_weight[rows]
            yield rows, X, holes, weight, functools.partial(_groups_of, X, holes)

    def statistics(self, backend, params):
        compiled = getattr(backend, "missing_statistics", None)
        parts, holes_left = [], []
        for _, X, holes, weight, groups in self._pieces():
            if not holes.all():
                complete = np.flatnonzero(~holes)
                parts.append(array_statistics(backend, params, _rows_of(X, complete),
                                              None if weight is None else weight[complete]))
            if holes.any():
                holes_left.append((X, holes, weight, groups))
        if holes_left and compiled is not None and not self.out_of_core:
            # In memory, the rows with holes of all pieces in one call, grouped by pattern over the whole array:
            # a pattern's factorisations then serve all its rows, not a piece's share of them.
            run = compiled(self.X, self.sample_weight, params.means, _missing.dense_covariances(params),
                           np.log(params.weights), *self._all_groups(), statistics_block_size(self._holes_count()))
            if run is not None:
                return add_in_order(*parts, _missing.in_layout(*run, params.means, params.covariance_type))
            compiled = None  # declined (not compiled yet): it would decline each piece too
        for X, holes, weight, groups in holes_left:
            parts.append(self._hole_statistics(compiled, params, X, holes, weight, groups))
        return add_in_order(*parts)

    def _holes_count(self):
        return len(self._all_groups()[0])

    def _all_groups(self):
        """``fastgmm._missing.group_patterns`` of every row with holes (row numbers of X), once."""
        if "_all" not in self.__dict__:
            rows, masks = [], []
            for piece, X, holes, _, _ in self._pieces():
                with_holes = np.flatnonzero(holes)
                rows.append(with_holes + piece.start)
                masks.append(np.isnan(X[with_holes]))
            rows = np.concatenate(rows)
            order, starts, observed = _missing.group_patterns(np.concatenate(masks))
            self._all = (rows[order], starts, observed)
        return self._all

    @staticmethod
    def _hole_statistics(compiled, params, X, holes, weight, groups):
        """The statistics of a piece's rows with holes: by the backend's compiled kernel where it has one, else
        by the NumPy reference."""
        run = None
        if compiled is not None:
            rows, starts, observed = groups()
            run = compiled(X, weight, params.means, _missing.dense_covariances(params), np.log(params.weights), rows,
                           starts, observed, statistics_block_size(len(rows)))
        if run is None:
            return _missing.observed_statistics(X[holes], None if weight is None else weight[holes], params)
        return _missing.in_layout(*run, params.means, params.covariance_type)

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
            complete = _rows_of(X, np.flatnonzero(~holes))
            log_prob[~holes] = backend.weighted_log_prob(complete, *params.kernel_arguments(),
                                                         np.empty((complete.shape[0], params.n_components)))
        if holes.any():
            log_prob[holes] = _missing.observed_log_prob(X[holes], params)
        return log_prob

    def map_log_prob(self, backend, params, function, columns=None, dtype=None):
        dtype = self.dtype if dtype is None else dtype
        out = np.empty((self.n_samples,) if columns is None else (self.n_samples, columns), dtype=dtype)
        for rows, X, holes, _, _ in self._pieces():
            out[rows] = function(self._log_prob(backend, params, X, holes))
        return out

    def worst(self, backend, params, count, offset=0):
        """The ``count`` rows worst explained (by the likelihood of their observed entries), as
        ``fastgmm.sources.blocks.worst_rows`` gives them, their holes filled with their conditional expectation
        under ``params``: a component re-seeded there gets a finite mean."""
        found = []
        for rows, X, holes, weight, _ in self._pieces():
            scores = logsumexp(self._log_prob(backend, params, X, holes), axis=1)
            if weight is not None:
                scores[~(weight > 0)] = np.inf
            keep = np.argsort(scores, kind="stable")[:count]
            keep = keep[scores[keep] < np.inf]
            found.append((scores[keep], keep + rows.start + offset,
                          _missing.conditional_expectation(X[keep], params)))
        return merge_worst(found, count)

    def for_initialisation(self, n_components):
        """``complete_rows`` of this source, made once."""
        if "_initialisation" not in self.__dict__:
            holes = np.zeros(self.n_samples, dtype=bool)
            for rows, _, piece_holes, _, _ in self._pieces():
                holes[rows] = piece_holes
            self._initialisation = _complete_rows(self.X, self.sample_weight, holes, n_components,
                                                  self.feature_names)
        return self._initialisation


def complete_rows(source, n_components):
    """The source an initialisation reads from the rows ``source`` holds in memory: its complete rows (a copy), or,
    with fewer complete rows than ``n_components`` (or than 2), every row with its holes filled by its column's
    (weighted) mean; ``source`` itself when it has no holes."""
    if isinstance(source, MissingValuesSource):
        return source.for_initialisation(n_components)
    if all_finite(source.X):
        return source
    holes = np.isnan(source.X).any(axis=1)
    return _complete_rows(source.X, source.sample_weight, holes, n_components, source.feature_names)


def _complete_rows(X, weight, holes, n_components, feature_names):
    complete = ~holes
    if complete.sum() >= max(2, n_components):
        return ArraySource(np.asarray(X[complete]), None if weight is None else weight[complete],
                           feature_names=feature_names)
    X = np.array(X)
    column_means = np.array([weighted_mean(column[~np.isnan(column)],
                                           None if weight is None else weight[~np.isnan(column)])
                             for column in X.T])
    rows, columns = np.nonzero(np.isnan(X))
    X[rows, columns] = column_means[columns]
    return ArraySource(X, weight, feature_names=feature_names)
