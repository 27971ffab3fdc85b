"""Rows cut into blocks, and what every source computes over the blocks of one in-memory (or memory-mapped) array:
the one-pass statistics, the rows the model explains worst, and a function of each block's log-probabilities."""

import math

import numpy as np
from scipy.special import logsumexp

from .._parameters import Statistics
from .._validation import check_sample_weight

# docs/design.md section 3: block boundaries depend on N only, so a reduction in block order is the same whatever the
# number of threads, and the partial statistics stay bounded (at most 256 blocks).
_MAX_BLOCK_ROWS = 4096
_MAX_BLOCKS = 256
# A pass of a few blocks has as many as a multiple of this, so that 2 or 4 threads share them evenly: 10,000 rows
# as 3 blocks of up to 4096 took 0.31 ms on 2 threads, as 4 of 2500 0.22 ms (benchmarks/stream_vs_batch.py's
# batches; blocks of 1250 rows cost no more than of 5000).
_BLOCKS_MULTIPLE = 4

# Rows per block when a (rows x K) float64 temporary is needed (prediction): about 8 MiB.
_PREDICT_BLOCK_BYTES = 8 * 2**20


def statistics_block_size(n_samples):
    """Rows per block of the one-pass statistics for ``n_samples`` rows: blocks of at most 4096 rows (more only
    beyond 256 blocks), in a number that is 1 or a multiple of ``_BLOCKS_MULTIPLE``."""
    blocks = math.ceil(n_samples / _MAX_BLOCK_ROWS)
    if blocks > 1:
        blocks = min(_MAX_BLOCKS, _BLOCKS_MULTIPLE * math.ceil(blocks / _BLOCKS_MULTIPLE))
    return max(1, math.ceil(n_samples / max(blocks, 1)))


def predict_block_size(n_components):
    """Rows per block of the prediction passes, so that a (rows x K) float64 block stays near 8 MiB."""
    return max(1, _PREDICT_BLOCK_BYTES // (8 * n_components))


def array_statistics(backend, params, X, sample_weight):
    """The one-pass statistics of one in-memory (or memory-mapped) array."""
    ll, total_weight, nk, s1, s2 = backend.accumulate(
        X, sample_weight, *params.kernel_arguments(), statistics_block_size(X.shape[0])
    )
    return Statistics(float(ll), float(total_weight), nk, s1, s2, params.means)


def add_in_order(*parts):
    """Add partial ``Statistics`` left to right, skipping None (empty pieces): the total depends only on the order
    of the pieces, not on where or when each was computed."""
    total = None
    for part in parts:
        if part is not None:
            total = part if total is None else total + part
    return total


def weighted_log_prob_blocks(backend, X, params):
    """Yield ``(rows, log(pi_k N(x | k)))`` over bounded row blocks of ``X``; the block is (rows, K) float64."""
    args = params.kernel_arguments()
    block_size = predict_block_size(params.n_components)
    buffer = np.empty((min(block_size, X.shape[0]), params.n_components))
    for start in range(0, X.shape[0], block_size):
        rows = slice(start, min(start + block_size, X.shape[0]))
        out = buffer[: rows.stop - rows.start]
        yield rows, backend.weighted_log_prob(X[rows], *args, out)


def map_log_prob(backend, params, X, function, columns, dtype):
    """``function`` of the weighted log-probabilities of X's rows, block by block, into one array.

    Parameters
    ----------
    backend : kernel module
    params : MixtureParameters
    X : ndarray of shape (n_samples, n_features)
    function : callable
        ``function(log_prob)`` of a (rows, K) float64 block, returning (rows,) or (rows, columns) values.
    columns : int or None
        The width of ``function``'s result; None for one value per row.
    dtype : numpy dtype
        Of the result.

    Returns
    -------
    ndarray of shape (n_samples,) or (n_samples, columns)
    """
    out = np.empty((X.shape[0],) if columns is None else (X.shape[0], columns), dtype=dtype)
    for rows, log_prob in weighted_log_prob_blocks(backend, X, params):
        out[rows] = function(log_prob)
    return out


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


def weighted_mean(values, sample_weight):
    """The mean of a per-row result (``score``): in the values' dtype without weights, as scikit-learn (its tests
    hold ``score(X) == score_samples(X).mean()``), else the float64 weighted mean of validated weights."""
    if sample_weight is None:
        return float(values.mean())
    sample_weight = check_sample_weight(sample_weight, values[:, None])
    return float(np.average(values.astype(np.float64), weights=sample_weight))
