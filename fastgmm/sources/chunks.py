"""Data given as chunks that are read again at every pass: the public ``Chunks`` and its source."""

from collections.abc import Iterable, Iterator

import numpy as np
from sklearn.utils import check_array

from .._validation import check_chunk_weight
from .arrays import ArraySource
from .blocks import add_in_order, merge_worst, seeds_from, weighted_mean
from .with_missing import check_observed, missing_values_source


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
    """A :class:`Chunks` stream; each pass sums the statistics (or maps the log-probabilities) of the chunks in
    order.

    Parameters
    ----------
    chunks : Chunks
    validate : callable or None, default=None
        None for fit's data: one validating pass over the chunks now (finite 2-D floats of one width, valid
        weights), and every later pass checked to yield the same shapes. For data to predict, a model's own
        ``validate(X_chunk) -> X_chunk`` (its width, finite values), applied to each chunk as it is read; the
        weights of the chunks are then ignored.
    missing_values : bool, default=False
        Whether NaN entries are missing values, marginalised chunk by chunk
        (``fastgmm.sources.with_missing``).
    """

    out_of_core = True
    feature_names = None

    def __init__(self, chunks, validate=None, missing_values=False):
        self.chunks = chunks
        self._validate = validate
        self.missing_values = missing_values
        self.lengths = None
        self.n_features = None
        self.weighted = None
        self.dtype = None
        if validate is None:
            self._validating_pass()

    def _validating_pass(self):
        self.lengths = []
        dtypes = []
        total_weight = 0.0
        for index, (X, weight) in enumerate(self.chunks):
            X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=0, input_name=f"X (chunk {index})",
                            ensure_all_finite="allow-nan" if self.missing_values else True)
            if self.missing_values:
                check_observed(X, f"chunk {index} ")
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
        """The number of rows (known for fit's data only: data to predict are counted as they are read)."""
        return None if self.lengths is None else sum(self.lengths)

    def _pieces(self):
        """The non-empty chunks of one pass as validated float arrays, with their weights (None for data to
        predict)."""
        if self._validate is not None:
            for X, _ in self.chunks:
                X = self._validate(X)
                if X.shape[0]:
                    yield X, None
            return
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
            if X.shape[0]:
                yield X, weight
        if count != len(self.lengths):
            raise ValueError(f"the chunks changed between passes: {count} chunks, then {len(self.lengths)}")

    def _sources(self):
        """The chunks of one pass as sources of their own (marginalising missing values where allowed)."""
        for X, weight in self._pieces():
            source = ArraySource(X, weight, out_of_core=True)
            yield missing_values_source(source) if self.missing_values else source

    def statistics(self, backend, params):
        """One pass over every chunk: the sum of their statistics, in chunk order."""
        return add_in_order(*(source.statistics(backend, params) for source in self._sources()))

    def em_iterations(self, backend, params, **settings):
        """None: each iteration is a pass over the chunks, through Python."""
        return None

    def worst_explained(self, backend, params, count):
        """The ``count`` rows worst explained by ``params`` (see ``fastgmm.sources.blocks.worst_rows``), over all
        chunks."""
        found, offset = [], 0
        for source in self._sources():
            found.append(source.worst(backend, params, count, offset))
            offset += source.n_samples
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

    def map_log_prob(self, backend, params, function, columns=None, dtype=None):
        """``function`` of every row block's weighted log-probabilities, chunk after chunk, concatenated (see
        ``fastgmm.sources.blocks.map_log_prob``; ``dtype`` None for each chunk's own)."""
        parts = [source.map_log_prob(backend, params, function, columns, dtype) for source in self._sources()]
        if not parts:
            raise ValueError("the chunks hold no rows")
        return np.concatenate(parts)

    def mean(self, values, sample_weight=None):
        """The (weighted) mean of ``values``, a per-row result of ``map_log_prob``."""
        return weighted_mean(values, sample_weight)
