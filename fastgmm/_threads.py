"""Thread count of a call: ``n_jobs`` applied for the duration of a fit or prediction, then restored."""

import os
import sys
from contextlib import contextmanager, nullcontext

from threadpoolctl import threadpool_limits


def effective_n_jobs(n_jobs):
    """Threads for ``n_jobs``: None for the runtime's default (all cores unless the environment limits it), -1 for
    all cores, -2 for all but one, and so on."""
    if n_jobs is None:
        return None
    n_cpus = os.cpu_count() or 1
    if n_jobs < 0:
        return max(1, n_cpus + 1 + n_jobs)
    return n_jobs


@contextmanager
def _numba_threads(n_threads):
    """Numba's thread count for this thread only (``set_num_threads`` is thread-local); the threading layer itself
    is never touched."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@contextmanager
def thread_limit(n_jobs):
    """Limit BLAS/OpenMP pools and Numba's parallel kernels to ``n_jobs`` threads inside the block; no change for
    None."""
    n_threads = effective_n_jobs(n_jobs)
    if n_threads is None:
        yield
        return
    numba_loaded = "numba" in sys.modules
    with threadpool_limits(limits=n_threads), _numba_threads(n_threads) if numba_loaded else nullcontext():
        yield
