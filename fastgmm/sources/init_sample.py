"""The rows an initialisation looks at: all of an in-memory array, or a random sample of any source held in memory,
so that the memory of a fit stays bounded whatever the number of rows."""

import numpy as np

from .arrays import ArraySource

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
    source : fit's data source
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
