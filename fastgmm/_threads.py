"""Thread counts of a call: ``n_jobs`` applied for the duration of a fit or prediction, then restored.

Each backend parallelises one way, and says which through its ``threads`` attribute: compiled kernels run their own
threads and want BLAS single-threaded beside them (OpenBLAS workers spin after each small LAPACK call of the M-step
and take the cores from the kernels: measured 2.4x slower iterations at N=1e5, D=2, K=4); the NumPy reference's only
parallelism is BLAS itself.
"""

import os
import threading
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

_controller = None


_blas = threading.local()


@contextmanager
def _blas_limit(n_threads):
    """``n_threads`` for the BLAS libraries inside the block, as threadpoolctl's ``limit`` sets it, through the
    library controllers of one ``ThreadpoolController`` (building one scans the process) directly: 3 us instead of
    threadpoolctl's 14 (its limiter object), and nothing when the limit is in force in this thread already (a fit
    and its criterion set it four times, a partial_fit step of 0.4 ms once)."""
    if getattr(_blas, "limit", None) == n_threads:
        yield
        return
    global _controller
    if _controller is None:
        _controller = ThreadpoolController().select(user_api="blas")
    libraries = _controller.lib_controllers
    previous_limit = getattr(_blas, "limit", None)
    previous = [library.num_threads for library in libraries]
    _blas.limit = n_threads
    try:
        for library in libraries:
            library.set_num_threads(n_threads)
        yield
    finally:
        for library, count in zip(libraries, previous):
            library.set_num_threads(count)
        _blas.limit = previous_limit


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
def blas_threads(n_jobs):
    """For backends parallel through BLAS: ``n_jobs`` BLAS threads inside the block (None: no change)."""
    n_threads = effective_n_jobs(n_jobs)
    if n_threads is None:
        yield
        return
    with _blas_limit(n_threads):
        yield


@contextmanager
def numba_threads(n_jobs):
    """For Numba kernels: ``n_jobs`` Numba threads (for the calling thread only: ``set_num_threads`` is
    thread-local; the threading layer is never touched) and a single BLAS thread beside them."""
    import numba

    n_threads = effective_n_jobs(n_jobs)
    if n_threads is None:  # the runtime's count stands (asking for it and setting it back costs ~10 us)
        with _blas_limit(1):
            yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        with _blas_limit(1):
            yield
    finally:
        numba.set_num_threads(previous)


_openmp = threading.local()

# GNU OpenMP's thread pool does not survive fork(): in a child of a process that ran a parallel region, the child's
# next parallel region waits for pool threads that exist only in the parent (measured: both children of a
# multiprocessing 'fork' pool hung in their first fit). A region of one thread never touches the pool, so a child
# forked after the Cython kernels ran parallel runs them on one thread (one thread per worker process is what a
# process pool wants anyway).
_openmp_pool_started = False
_forked_after_openmp = False


def _after_fork_in_child():
    global _forked_after_openmp
    _forked_after_openmp = _forked_after_openmp or _openmp_pool_started


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def openmp_threads(n_jobs):
    """For the Cython kernels: ``n_jobs`` OpenMP threads for the kernel calls inside the block (made by this thread
    only: the count is passed to each call, OpenMP's global setting is never touched) and a single BLAS thread."""
    previous = getattr(_openmp, "n_threads", None)
    _openmp.n_threads = effective_n_jobs(n_jobs)
    try:
        with _blas_limit(1):
            yield
    finally:
        _openmp.n_threads = previous


def openmp_thread_count(default):
    """The thread count ``openmp_threads`` set for this thread, else ``default`` (OpenMP's own); 1 in a process
    forked after OpenMP ran parallel in its parent."""
    global _openmp_pool_started
    if _forked_after_openmp:
        return 1
    n_threads = getattr(_openmp, "n_threads", None)
    n_threads = default if n_threads is None else n_threads
    if n_threads != 1:
        _openmp_pool_started = True
    return n_threads
