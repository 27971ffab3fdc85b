"""Thread count of a call: ``n_jobs`` applied for the duration of a fit or prediction, then restored."""

import os
from contextlib import contextmanager

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
def thread_limit(n_jobs):
    """Limit BLAS/OpenMP pools to ``n_jobs`` threads inside the block; no change for None."""
    n_threads = effective_n_jobs(n_jobs)
    if n_threads is None:
        yield
        return
    with threadpool_limits(limits=n_threads):
        yield
