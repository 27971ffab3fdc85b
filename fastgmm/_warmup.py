"""Ahead-of-time compilation of the common Numba kernels into Numba's on-disk cache, for container images and
shared installs (``fastgmm warmup`` on the command line), so that their first fits run Numba's kernels at once.
"""

import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

# Every number of features with kernels compiled for it (the largest of the kernels' static limits), and one more
# for the kernels that take any number.
DEFAULT_FEATURES = tuple(range(1, 18))
DEFAULT_DTYPES = ("float64", "float32")
# The kernels are compiled for C-ordered X and once more for every other layout (Fortran-ordered, as pandas'
# ``to_numpy()`` of a float frame, strided, read-only: ``numba_._as_compiled``).
LAYOUTS = ("c", "any")
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _compile_one(n_features, dtype, layout):
    """Fit and predict with the Numba backend on small and large data (serial and parallel kernels) for every
    covariance type; return the seconds it took."""
    from ._backends import get_backend, warm_up
    from ._gaussian_mixture import GaussianMixture

    start = time.perf_counter()
    threshold = get_backend("numba").PARALLEL_WORK
    n_samples = max(64, math.ceil(threshold / n_features))
    X = np.random.default_rng(0).normal(size=(n_samples, n_features)).astype(dtype)
    if layout == "any":
        X = np.asfortranarray(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for covariance_type in _COVARIANCE_TYPES:
            model = GaussianMixture(2, covariance_type=covariance_type, backend="numba", random_state=0)
            warm_up(model, X)
            fitted = model.set_params(max_iter=1).fit(X[:64])
            fitted.predict(X[:64])
            fitted.predict(X)
    return time.perf_counter() - start


def warmup(n_features=DEFAULT_FEATURES, dtypes=DEFAULT_DTYPES, n_jobs=None, verbose=False, layouts=("c",)):
    """Compile the Numba kernels for these numbers of features, dtypes and layouts into Numba's on-disk cache.

    The cache is Numba's: ``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the installed package when it is
    writable, else a user cache directory (``fastgmm.show_versions()`` prints which). Kernels compiled there are
    loaded, not compiled, by every later process on a machine with the same processor and versions. Without this,
    ``backend='auto'`` serves the first calls of each new shape from the Cython kernels and compiles in the
    background.

    Parameters
    ----------
    n_features : iterable of int, default=1..17
        Numbers of features. Up to 16 features the kernels are compiled for each exact number; one number above
        that covers every larger one.
    dtypes : iterable of {'float64', 'float32'}, default=both
    n_jobs : int, default=None
        Processes compiling at once (None: one per core).
    verbose : bool, default=False
        Print each (n_features, dtype, layout) as it is done.
    layouts : iterable of {'c', 'any'}, default=('c',)
        Memory layouts of X: ``'c'`` for C-ordered arrays, ``'any'`` for every other (Fortran-ordered, as pandas
        gives float frames, strided, read-only). Both take twice the work of one.

    Returns
    -------
    dict
        ``{(n_features, dtype, layout): seconds}``.
    """
    from ._backends import get_backend

    get_backend("numba")  # ImportError with the reason when Numba is not usable
    layouts = list(layouts)
    for layout in layouts:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}: expected one of {LAYOUTS}")
    tasks = [(int(d), str(np.dtype(t)), layout) for d in n_features for t in dtypes for layout in layouts]
    for d, t, _ in tasks:
        if d < 1 or t not in DEFAULT_DTYPES:
            raise ValueError(f"cannot compile for {d} features and dtype {t!r}: n_features must be >= 1 and the "
                             f"dtype one of {DEFAULT_DTYPES}")
    n_jobs = max(1, min(len(tasks), n_jobs or os.cpu_count() or 1))
    seconds = {}
    # Fresh interpreters (spawn): each compiles its share with the whole GIL to itself.
    with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) as pool:
        for task, elapsed in zip(tasks, pool.map(_compile_one, *zip(*tasks))):
            seconds[task] = elapsed
            if verbose:
                print(f"  {task[0]:>3} features, {task[1]}, layout {task[2]}: {elapsed:.1f} s", flush=True)
    return seconds
