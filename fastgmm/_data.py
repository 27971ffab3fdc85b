"""Data sources: where the rows come from, and how they are cut into blocks.

A source is an in-memory or memory-mapped array (``ArraySource``), a stream of chunks read again at every pass
(``ChunkSource``), or a dask array on a cluster (``fastgmm._dask.DaskSource``).

A source sums a backend's statistics over its blocks; the statistics are additive, so the EM driver sees one
``Statistics`` per pass whatever holds the data.
"""

import math
import sys
from collections.abc import Iterable, Iterator

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_array

from ._model import Statistics
from ._validation import check_chunk_weight, check_sample_weight

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
    sample_weight : ndarray of shape (n_samples,) float64, or None
    out_of_core : bool, default=False
        Whether X is memory-mapped: then only a sample of rows may be held in memory at once (initialisation).
    """

    def __init__(self, X, sample_weight=None, out_of_core=False):
        self.X = X
        self.sample_weight = sample_weight
        self.out_of_core = out_of_core

    def blocks(self, block_size):
        """Yield ``(rows, X_block, weight_block)`` with ``rows`` a slice; ``weight_block`` is None without
        weights."""
        for start in range(0, self.n_samples, block_size):
            rows = slice(start, min(start + block_size, self.n_samples))
            yield rows, self.X[rows], None if self.sample_weight is None else self.sample_weight[rows]

    def statistics(self, backend, params):
        """One pass: the log-likelihood under ``params`` and the statistics for the next M-step."""
        return array_statistics(backend, params, self.X, self.sample_weight)

    def em_iterations(self, backend, params, **settings):
        """Several EM iterations in one call of the backend's ``em_iterations`` (see
        ``fastgmm.kernels.numba_.em_iterations``), or None when the backend has none or does not take this X."""
        run = getattr(backend, "em_iterations", None)
        if run is None:
            return None
        return run(self.X, self.sample_weight, *params.kernel_arguments(), statistics_block_size(self.n_samples),
                   **settings)

    def rows(self, indices):
        """In-memory ``(X[indices], sample_weight[indices])`` for sorted row indices."""
        return np.asarray(self.X[indices]), None if self.sample_weight is None else self.sample_weight[indices]

    def worst_explained(self, backend, params, count):
        """The ``count`` rows worst explained by ``params`` (see ``worst_rows``)."""
        return seeds_from(worst_rows(backend, params, self.X, self.sample_weight, count), count)


def array_statistics(backend, params, X, sample_weight):
    """The one-pass statistics of one in-memory (or memory-mapped) array."""
    ll, total_weight, nk, s1, s2 = backend.accumulate(
        X, sample_weight, *params.kernel_arguments(), statistics_block_size(X.shape[0])
    )
    return Statistics(float(ll), float(total_weight), nk, s1, s2, params.means)


def worst_rows(backend, params, X, sample_weight, count, offset=0):
    """The ``count`` rows of X of positive weight with the lowest log-likelihood under ``params``, ties to the
    first row, read in bounded blocks.

    Returns
    -------
    scores : ndarray of shape (C,)
        Their log-likelihoods, increasing (C <= count).
    indices : ndarray of shape (C,)
        Their row numbers plus ``offset``.
    rows : ndarray of shape (C, D), float64
    """
    found = []
    for rows, log_prob in weighted_log_prob_blocks(backend, X, params):
        scores = logsumexp(log_prob, axis=1)
        if sample_weight is not None:
            scores[~(sample_weight[rows] > 0)] = np.inf
        keep = np.argsort(scores, kind="stable")[:count]
        keep = keep[scores[keep] < np.inf]
        found.append((scores[keep], keep + rows.start + offset, np.asarray(X[rows][keep], dtype=np.float64)))
    return merge_worst(found, count)


def merge_worst(found, count):
    """The ``count`` worst of several ``worst_rows`` results, ties to the lowest row number."""
    scores = np.concatenate([part[0] for part in found] + [np.empty(0)])
    indices = np.concatenate([part[1] for part in found] + [np.empty(0, dtype=np.int64)])
    rows = np.concatenate([part[2] for part in found if len(part[2])] or [np.empty((0, 0))])
    keep = np.lexsort((indices, scores))[:count]
    return scores[keep], indices[keep], rows[keep]


def seeds_from(worst, count):
    """``count`` seed rows from a ``worst_rows`` result, repeating the rows found when there are fewer."""
    rows = worst[2]
    return rows[np.arange(count) % len(rows)]


def sum_in_order(*parts):
    """Sum partial ``Statistics`` left to right, skipping None (empty pieces): the total depends only on the order
    of the pieces, not on where or when each was computed."""
    total = None
    for part in parts:
        if part is not None:
            total = part if total is None else total + part
    return total


class Chunks:
    """Data given as a sequence of row chunks that can be read again at every EM iteration.

    For data that live in pieces (Parquet row groups, HDF5 or Zarr slabs, files): fastgmm reads the chunks in order
    at every pass, so only one chunk need be in memory at a time, and the fit equals the fit of the concatenated
    array up to the order of floating-point additions.

    Parameters
    ----------
    chunks : sequence, or callable returning an iterable
        A sequence (list, tuple) of chunks, or a function of no arguments that returns a new iterable of chunks
        each time it is called (for example a generator function that reads a file piece by piece). A chunk is an
        array-like of shape (n_rows, n_features), or a pair ``(X_chunk, sample_weight_chunk)``. Every pass must
        yield the same rows in the same order.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import Chunks, GaussianMixture
    >>> rng = np.random.RandomState(0)
    >>> pieces = [rng.normal(size=(500, 2)) + 4 * (i % 2) for i in range(4)]
    >>> gm = GaussianMixture(2, random_state=0).fit(Chunks(pieces))
    >>> gm.means_.shape
    (2, 2)
    """

    def __init__(self, chunks):
        if isinstance(chunks, Iterator):
            raise TypeError(
                "Chunks needs data it can read once per EM iteration, and an iterator or generator can be read only "
                "once: pass a list of chunks, or a function that returns a new iterator each time it is called."
            )
        if callable(chunks):
            self._factory = chunks
        elif isinstance(chunks, Iterable) and not hasattr(chunks, "shape"):
            self._factory = lambda: chunks
        else:
            raise TypeError(
                f"Chunks expects a sequence of arrays or a function returning an iterable of them, got {type(chunks)}"
            )

    def __iter__(self):
        """Yield ``(X_chunk, weight_chunk)``, ``weight_chunk`` None where the chunk has no weights."""
        iterable = self._factory()
        if not isinstance(iterable, Iterable):
            raise TypeError(f"the chunks function returned {type(iterable).__name__}, not an iterable of chunks")
        for chunk in iterable:
            if isinstance(chunk, tuple):
                if len(chunk) != 2:
                    raise ValueError(f"a chunk given as a tuple must be (X, sample_weight), got {len(chunk)} items")
                yield chunk
            else:
                yield chunk, None


class ChunkSource:
    """A :class:`Chunks` stream, validated once; each pass sums the statistics of the chunks in order.

    Parameters
    ----------
    chunks : Chunks
    """

    out_of_core = True

    def __init__(self, chunks):
        self.chunks = chunks
        self.lengths = []
        self.n_features = None
        self.weighted = None
        dtypes = []
        total_weight = 0.0
        # The validating pass: every chunk a finite 2-D float array of one width, weights valid.
        for index, (X, weight) in enumerate(chunks):
            X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=0, input_name=f"X (chunk {index})")
            if self.n_features is None:
                self.n_features = X.shape[1]
            elif X.shape[1] != self.n_features:
                raise ValueError(f"chunk {index} has {X.shape[1]} features, the chunks before it {self.n_features}")
            if self.weighted is None:
                self.weighted = weight is not None
            elif self.weighted != (weight is not None):
                raise ValueError("either every chunk has sample weights or none has")
            if weight is not None:
                weight = check_chunk_weight(weight, X.shape[0], index)
                total_weight += float(weight.sum())
            self.lengths.append(X.shape[0])
            dtypes.append(X.dtype)
        # float32 when every chunk is, as a concatenation of the chunks would be.
        self.dtype = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
        if sum(self.lengths) < 2:
            raise ValueError(f"the chunks hold {sum(self.lengths)} rows in all; at least 2 are required")
        if self.weighted and not total_weight > 0:
            raise ValueError("Sample weights must contain at least one non-zero number.")

    @property
    def n_samples(self):
        return sum(self.lengths)

    def _pieces(self):
        """The chunks of one pass as float arrays, checked to be the rows the validating pass saw."""
        count = 0
        for index, (X, weight) in enumerate(self.chunks):
            X = check_array(
                X, dtype=[np.float64, np.float32], ensure_all_finite=False, ensure_min_samples=0, input_name="X"
            )
            if index >= len(self.lengths) or X.shape != (self.lengths[index], self.n_features):
                raise ValueError(f"the chunks changed between passes: chunk {index} has shape {X.shape}")
            if weight is not None:
                weight = np.asarray(weight, dtype=np.float64)
            count += 1
            yield X, weight
        if count != len(self.lengths):
            raise ValueError(f"the chunks changed between passes: {count} chunks, then {len(self.lengths)}")

    def statistics(self, backend, params):
        """One pass over every chunk: the sum of their statistics, in chunk order."""
        return sum_in_order(
            *(array_statistics(backend, params, X, weight) for X, weight in self._pieces() if X.shape[0])
        )

    def worst_explained(self, backend, params, count):
        """The ``count`` rows worst explained by ``params`` (see ``worst_rows``), over all chunks."""
        found, offset = [], 0
        for X, weight in self._pieces():
            found.append(worst_rows(backend, params, X, weight, count, offset))
            offset += X.shape[0]
        return seeds_from(merge_worst(found, count), count)

    def rows(self, indices):
        """In-memory ``(X[indices], sample_weight[indices])`` of the concatenated chunks, for sorted indices."""
        parts, weights = [], []
        start = 0
        for X, weight in self._pieces():
            stop = start + X.shape[0]
            lo, hi = np.searchsorted(indices, [start, stop])
            if hi > lo:
                parts.append(X[indices[lo:hi] - start])
                if weight is not None:
                    weights.append(weight[indices[lo:hi] - start])
            start = stop
        return np.concatenate(parts), np.concatenate(weights) if self.weighted else None


# Rows of the initialisation sample of out-of-core data ('auto'): enough for k-means to place the components, small
# enough to hold in memory however large N is.
_AUTO_SAMPLE_ROWS = 100_000
_AUTO_SAMPLE_ROWS_PER_COMPONENT = 50


def sample_indices(n_samples, size, random_state):
    """``size`` distinct row indices drawn uniformly from ``range(n_samples)``, sorted; O(size) memory.

    Parameters
    ----------
    n_samples, size : int
    random_state : numpy.random.RandomState

    Returns
    -------
    ndarray of shape (min(size, n_samples),), int64
    """
    if size >= n_samples:
        return np.arange(n_samples)
    if 2 * size > n_samples:
        return np.sort(random_state.permutation(n_samples)[:size])
    # Draws with replacement, topped up until distinct; at most half the rows are wanted, so this ends quickly.
    chosen = np.unique(random_state.randint(0, n_samples, size=size, dtype=np.int64))
    while chosen.size < size:
        extra = random_state.randint(0, n_samples, size=size - chosen.size, dtype=np.int64)
        chosen = np.union1d(chosen, extra)
    return chosen


def initialisation_source(source, init_sample_size, n_components, random_state):
    """The rows the initialisation looks at: all of an in-memory array, or a random sample held in memory.

    Parameters
    ----------
    source : data source
    init_sample_size : 'auto', int or None
        None: every row. 'auto': every row of an in-memory array (scikit-learn's initialisation exactly), and
        ``max(100000, 50 * n_components)`` random rows of out-of-core data (memory-mapped, chunked, Dask). An int:
        that many random rows (at least ``n_components``).
    n_components : int
    random_state : numpy.random.RandomState

    Returns
    -------
    ArraySource
    """
    if init_sample_size == "auto":
        if not source.out_of_core:
            return source
        init_sample_size = max(_AUTO_SAMPLE_ROWS, _AUTO_SAMPLE_ROWS_PER_COMPONENT * n_components)
    n_samples = source.n_samples
    if isinstance(source, ArraySource) and (init_sample_size is None or init_sample_size >= n_samples):
        return source
    size = n_samples if init_sample_size is None else max(init_sample_size, n_components)
    X, weight = source.rows(sample_indices(n_samples, size, random_state))
    if weight is not None and not np.any(weight > 0):
        raise ValueError("the rows sampled for the initialisation all have zero sample_weight; raise init_sample_size")
    return ArraySource(X, weight)


def as_source(X, sample_weight=None, *, validate, n_jobs=None):
    """The data source for fit's input.

    Parameters
    ----------
    X : array-like, numpy.memmap, Chunks or dask array
    sample_weight : array-like or None
    validate : callable
        ``validate(X) -> X``: the estimator's validation of an in-memory X (records ``n_features_in_``).
    n_jobs : int or None
        Kernel threads per dask task (see ``fastgmm._dask.task_threads``).

    Returns
    -------
    ArraySource, ChunkSource or DaskSource
    """
    if isinstance(X, Chunks):
        if sample_weight is not None:
            raise ValueError("with Chunks, give the sample weights inside the chunks as (X_chunk, weight_chunk) pairs")
        return ChunkSource(X)
    if is_dask_collection(X):
        from ._dask import DaskSource

        return DaskSource(X, sample_weight, n_jobs)
    out_of_core = isinstance(X, np.memmap)
    X = validate(X)
    return ArraySource(X, check_sample_weight(sample_weight, X), out_of_core=out_of_core)


def is_dask_collection(X):
    """Whether X is a dask collection, without importing dask when it is not loaded."""
    if sys.modules.get("dask") is None:  # not imported (or blocked): X cannot be a dask collection
        return False
    from dask import is_dask_collection as is_collection

    return is_collection(X)


def weighted_log_prob_blocks(backend, X, params):
    """Yield ``(rows, log(pi_k N(x | k)))`` over bounded row blocks of ``X``; the block is (rows, K) float64."""
    args = params.kernel_arguments()
    block_size = predict_block_size(params.n_components)
    buffer = np.empty((min(block_size, X.shape[0]), params.n_components))
    for start in range(0, X.shape[0], block_size):
        rows = slice(start, min(start + block_size, X.shape[0]))
        out = buffer[: rows.stop - rows.start]
        yield rows, backend.weighted_log_prob(X[rows], *args, out)
