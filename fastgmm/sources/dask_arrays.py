"""Dask arrays: each EM pass computes the statistics of every block where the block lives, sums them by a tree
reduction in a fixed order, and hands one ``Statistics`` to the EM driver on the client; predictions stay lazy.

What crosses the network per iteration: the parameters once to each worker that holds blocks (one graph key,
fetched once per worker), and one partial ``Statistics`` per block, summed ``_FAN_IN`` at a time. docs/scaling.md
measures it. This module is imported only when a dask array is given, so fastgmm imports without dask.
"""

import threading
from contextlib import contextmanager

import dask
import dask.array as da
import numpy as np

from sklearn.utils import check_array

from .._backends import get_backend
from .arrays import ArraySource, RowsOfX
from .blocks import add_in_order, merge_worst, seeds_from
from .with_missing import missing_values_source

# Partial statistics summed per reduction task: a tree of depth log_8(blocks), a few KB per edge.
_FAN_IN = 8

# Kernels run their own threads; two at once in one process would only share the same cores (and Numba's
# workqueue threading layer aborts on concurrent parallel launches). A worker runs one kernel at a time.
_kernel_lock = threading.Lock()


def _worker_threads():
    """The threads of the dask worker running this task, or None outside a distributed worker."""
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return None


@contextmanager
def task_threads(backend, n_jobs):
    """Run a kernel inside a dask task: one at a time per process, on ``n_jobs`` threads (None: the cores the
    worker was given, as dask sizes its thread pool)."""
    if n_jobs is None:
        n_jobs = _worker_threads()
    with _kernel_lock, backend.threads(n_jobs):
        yield


def _block_source(X, sample_weight, missing_values):
    """One block as a source of its own, marginalising its missing values where they are allowed."""
    source = ArraySource(np.asarray(X), sample_weight, out_of_core=True)
    return missing_values_source(source) if missing_values else source


def _block_statistics(X, sample_weight, backend_name, n_jobs, params, missing_values=False):
    """The statistics of one block, on the worker that holds it; None for an empty block."""
    if X.shape[0] == 0:
        return None
    backend = get_backend(backend_name)
    with task_threads(backend, n_jobs):
        return _block_source(X, sample_weight, missing_values).statistics(backend, params)


def _block_worst(X, sample_weight, backend_name, n_jobs, params, count, offset, missing_values=False):
    """``worst_rows`` of one block, on the worker that holds it."""
    backend = get_backend(backend_name)
    with task_threads(backend, n_jobs):
        return _block_source(X, sample_weight, missing_values).worst(backend, params, count, offset)


def _block_map(X, backend_name, n_jobs, params, function, columns, dtype, missing_values=False):
    """``map_log_prob`` of one block of data to predict, on the worker that holds it; the block's values are
    checked there (finite, or NaN where missing values are allowed), as a prediction on an in-memory array checks
    them."""
    X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=0,
                    ensure_all_finite="allow-nan" if missing_values else True)
    backend = get_backend(backend_name)
    with task_threads(backend, n_jobs):
        return _block_source(X, None, missing_values).map_log_prob(backend, params, function, columns, dtype)


def _float_dtype(X, name):
    """X's dtype as the kernels take it (float32 kept, other numbers to float64), or a TypeError."""
    if X.dtype in (np.float32, np.float64):
        return X
    if X.dtype.kind in "biu" or X.dtype == np.float16:
        return X.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got a dask array of dtype {X.dtype}")


def _as_row_blocks(X, name="X"):
    """A 2-D float dask array cut into blocks of whole rows, with known block lengths."""
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name}: of dask collections only dask.array.Array is supported, got {type(X).__name__} "
            "(convert a dask DataFrame with .to_dask_array(lengths=True))"
        )
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got a {X.ndim}D dask array instead for {name}")
    X = _float_dtype(X, name)
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    return X.rechunk({1: -1})


class DaskSource(RowsOfX):
    """A dask array (and optional sample weights) whose blocks stay where dask keeps them.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    sample_weight : array-like or dask array of shape (n_samples,), or None
    n_jobs : int or None
        Kernel threads per task; None for the threads of the worker that runs it.
    check_width : callable or None, default=None
        None for fit's data: at least 2 rows and 1 feature, and one validating pass now on the cluster (finite
        values, valid weights). For data to predict, a model's check of the number of features, called with it;
        the values are then checked by each task.
    """

    out_of_core = True
    feature_names = None

    def __init__(self, X, sample_weight=None, n_jobs=None, check_width=None, missing_values=False):
        X = _as_row_blocks(X)
        self.n_jobs = n_jobs
        self.missing_values = missing_values
        if check_width is not None:
            check_width(X.shape[1])
            self.X, self.sample_weight = X, None
            self._x_blocks = X.to_delayed().ravel()
            self._w_blocks = [None] * len(self._x_blocks)
            return
        if X.shape[0] < 2:
            raise ValueError(f"Found array with {X.shape[0]} sample(s) while a minimum of 2 is required.")
        if X.shape[1] < 1:
            raise ValueError("Found array with 0 feature(s) while a minimum of 1 is required.")
        weight = None
        if sample_weight is not None:
            weight = sample_weight if isinstance(sample_weight, da.Array) else da.from_array(np.asarray(sample_weight))
            if weight.shape != (X.shape[0],):
                raise ValueError(f"sample_weight.shape == {weight.shape}, expected ({X.shape[0]},)!")
            weight = _float_dtype(weight, "sample_weight").astype(np.float64).rechunk((X.chunks[0],))
        self._check_values(X, weight, missing_values)
        self.X, self.sample_weight = X, weight
        self._x_blocks = X.to_delayed().ravel()
        self._w_blocks = [None] * len(self._x_blocks) if weight is None else weight.to_delayed().ravel()

    @staticmethod
    def _check_values(X, weight, missing_values=False):
        """One validating pass (X finite, or without infinities and with something observed in every row where
        missing values are allowed; weights finite, non-negative, not all zero) computed on the cluster."""
        checks = [da.isfinite(X).all()] if not missing_values else [~da.isinf(X).any(), ~da.isnan(X).all(axis=1).any()]
        if weight is not None:
            checks += [da.isfinite(weight).all(), (weight >= 0).all(), (weight > 0).any()]
        results = list(dask.compute(*checks))
        if not results[0]:
            raise ValueError("Input X contains infinity." if missing_values else "Input X contains NaN or infinity.")
        if missing_values and not results.pop(1):
            raise ValueError("X has rows with no observed value (every entry NaN): they have no likelihood under "
                             "missing_values='marginalize'; drop them")
        if weight is not None:
            if not results[1]:
                raise ValueError("Input sample_weight contains NaN or infinity.")
            if not results[2]:
                raise ValueError("Negative values in data passed to sample_weight")
            if not results[3]:
                raise ValueError("Sample weights must contain at least one non-zero number.")

    def statistics(self, backend, params):
        """One pass: every block's statistics on its worker, summed in block order by a tree of tasks."""
        # One key for the parameters: each worker fetches them once, however many blocks it holds.
        shared = dask.delayed(params, traverse=False)
        task = dask.delayed(_block_statistics, pure=True)
        parts = [task(X, w, backend.NAME, self.n_jobs, shared, self.missing_values)
                 for X, w in zip(self._x_blocks, self._w_blocks)]
        while len(parts) > 1:
            parts = [
                dask.delayed(add_in_order, pure=True)(*parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)
            ]
        (total,) = dask.compute(parts[0])
        return total

    def em_iterations(self, backend, params, **settings):
        """None: each iteration is one pass of tasks over the blocks."""
        return None

    def worst_explained(self, backend, params, count):
        """The ``count`` rows worst explained by ``params`` (see ``fastgmm.sources.blocks.worst_rows``): each block's
        candidates found where it lives, merged on the client."""
        shared = dask.delayed(params, traverse=False)
        task = dask.delayed(_block_worst, pure=True)
        offsets = np.cumsum((0,) + self.X.chunks[0][:-1])
        found = dask.compute(
            *(
                task(X, w, backend.NAME, self.n_jobs, shared, count, int(offset), self.missing_values)
                for X, w, offset in zip(self._x_blocks, self._w_blocks, offsets)
            )
        )
        return seeds_from(merge_worst(found, count), count)

    def rows(self, indices):
        """In-memory ``(X[indices], sample_weight[indices])`` for sorted row indices, gathered from the blocks."""
        if self.sample_weight is None:
            return np.asarray(self.X[indices].compute()), None
        X, weight = dask.compute(self.X[indices], self.sample_weight[indices])
        return np.asarray(X), np.asarray(weight)


    def map_log_prob(self, backend, params, function, columns=None, dtype=None):
        """``function`` of every row block's weighted log-probabilities (see
        ``fastgmm.sources.blocks.map_log_prob``), as a lazy dask array with X's row blocks, computed where each
        block lives; ``dtype`` None for X's."""
        out_dtype = self.dtype if dtype is None else np.dtype(dtype)
        args = (backend.NAME, self.n_jobs, params, function, columns, dtype, self.missing_values)
        if columns is None:
            return self.X.map_blocks(_block_map, *args, drop_axis=1, dtype=out_dtype)
        return self.X.map_blocks(_block_map, *args, chunks=(self.X.chunks[0], (columns,)), dtype=out_dtype)

    def mean(self, values, sample_weight=None):
        """The (weighted) mean of ``values``, a per-row result of ``map_log_prob``, computed on the cluster."""
        return float(da.average(values.astype(np.float64), weights=sample_weight).compute())
