"""How the compiled backends cut a pass over the data and sum it: row blocks, per-block partials filled a round of
blocks at a time under a memory bound and summed in block order (the step that makes results independent of the
thread count), and the tile's staging bound and dense/sparse choice."""

import math

import numpy as np

from ._layouts import gram_rows

# The per-block partials of one round of blocks stay under this (unless one block per thread needs more): at K=16,
# D=512 full, one block's s2 is 32 MiB, and 256 blocks at once would need 8 GiB.
PARTIALS_BYTES = 256 * 2**20

# A thread stages (K, D, TILE) doubles of centred rows; above this it reduces each tile's rows straight away
# instead (at K=1000, D=512 the stages would take 1 GiB per thread).
STAGE_BYTES = 32 * 2**20


def n_blocks(n_samples, block_size):
    """Number of row blocks; at least one, so that empty partials still have a row."""
    return max(1, -(-n_samples // block_size))


def sum_in_order(partials):
    """Sum of the per-block partials over the first axis, row after row: the same additions in the same order
    whatever the number of threads that filled the partials.

    NumPy reduces an outer axis row after row, except when each row holds a single number: it then sees one
    contiguous vector and sums it pairwise, which ``cumsum`` (sequential by definition) avoids.
    """
    if partials[0].size == 1:
        return np.cumsum(partials, axis=0)[-1]
    return partials.sum(axis=0)


def reduce_in_rounds(fill, n_samples, block_size, block_shapes, n_threads):
    """Per-block partials filled by ``fill`` and summed in block order, a bounded round of blocks at a time.

    Parameters
    ----------
    fill : callable
        ``fill(rows, *partials)`` fills ``partials[i]`` of shape ``(blocks in rows,) + block_shapes[i]`` with the
        statistics of the blocks of ``rows``, a slice of X that starts on a block boundary.
    n_samples, block_size : int
    block_shapes : sequence of tuple
        Shape of one block's part of each partial.
    n_threads : int
        A round holds at least this many blocks, so that every thread has one.

    Returns
    -------
    list of ndarray
        The sums, shapes ``block_shapes``. Each round's partials are added to the running sums one block after
        another, the additions ``sum_in_order`` makes over all blocks at once: the result does not depend on the
        size of the rounds, so neither on the memory bound nor on the thread count.
    """
    blocks = n_blocks(n_samples, block_size)
    if blocks == 1:
        # The sum of one block's partials is that block's: no reduction (a small fit makes several such passes,
        # and each NumPy call costs microseconds there).
        partials = [np.zeros((1,) + tuple(shape)) for shape in block_shapes]
        fill(slice(0, n_samples), *partials)
        return [partial[0] for partial in partials]
    block_bytes = 8 * sum(math.prod(shape) for shape in block_shapes)
    per_round = min(blocks, max(1, n_threads, PARTIALS_BYTES // max(block_bytes, 1)))
    totals = None
    for first in range(0, blocks, per_round):
        count = min(per_round, blocks - first)
        partials = [np.zeros((count,) + tuple(shape)) for shape in block_shapes]
        fill(slice(first * block_size, min((first + count) * block_size, n_samples)), *partials)
        if totals is None:
            totals = [sum_in_order(partial) for partial in partials]
            continue
        for total, partial in zip(totals, partials):
            for block in partial:
                total += block
    return totals


def dense_live(covariance_type, n_features):
    """The live fraction above which a tile of the compiled kernels takes the dense path (one exp sweep over every
    (point, component) pair, moments from the tile's own columns) instead of the sparse one (gather the live pairs,
    stage them by component).

    Measured by ``benchmarks/dense_crossover.py`` (AMD EPYC, AVX2; sparse / dense time): diagonal and spherical
    1.4 at 1/8 live (D=8, K=16); full and tied 1.2-1.8 at 1/4 live up to D=8, full D=32 0.9 at 1/4 and 1.1 at 1/2.
    Again on 2026-12-07 (AMD EPYC Zen 4, AVX-512, the Cython kernels after that day's moments): diagonal 1.24 and
    spherical 1.22 at 1/8; full D=8, K=16 0.77 at 1/8 and 1.04 at 1/4; tied 0.96 at 1/4 and 1.38 at 1/2; full D=32
    0.77 at 1/4 and 1.09 at 1/2: the same thresholds. Once more that evening, after the register-sum moments for
    5 <= D <= 8 (``python benchmarks/dense_crossover.py --repeats 5``, then ``--repeats 7 --backends numba``): full
    D=8, K=16 1.05 (numba) and 0.91 (cython) at 1/8, 1.34 and 1.10 at 1/4; tied 0.94 and 0.92 at 1/8, 1.29 and 1.11
    at 1/4: the crossover still lies between 1/8 and 1/4, and a lower threshold for these D made no difference
    beyond the noise in whole iterations.
    """
    if covariance_type in ("diag", "spherical"):
        return 0.125
    return 0.25 if n_features < 16 else 0.5


def staged_components(n_components, n_features, tile):
    """Components a thread stages rows for: all of them, or 1 (reduce each tile's rows at once) when the
    ``(K, gram_rows(D), tile)`` stages would exceed ``STAGE_BYTES``."""
    return n_components if 8 * n_components * gram_rows(n_features) * tile <= STAGE_BYTES else 1
