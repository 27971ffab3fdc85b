"""Backend registry: which kernel implementations exist, which are usable here, and which ``'auto'`` picks.

A backend is a module of ``fastgmm.kernels`` with the interface described there (``fastgmm.kernels.Backend``).
Nothing outside this file imports one by name or chooses between them: the estimator, the initialisation, the
command line and ``show_versions`` ask here.
"""

import importlib
import math
import os
import time
import warnings

from sklearn.base import clone

from . import _background_compile
from ._auto_backend import AutoBackend

# Preference order of backend='auto': Numba, else the Cython extension built at install, else plain NumPy.
BACKENDS = ("numba", "cython", "numpy")

_MODULES = {"numba": "fastgmm.kernels.numba_", "cython": "fastgmm.kernels.cython_", "numpy": "fastgmm.kernels.numpy_"}

_warned_fallback = False

# Below this many values (rows x columns), a command's 'auto' runs the Cython kernels: a command is one short
# process, and Numba's import and kernel loading (about 1.5 s, measured: `fastgmm select` on iris took 3.9 s of wall
# time with Numba, 2.2 s with Cython, for the same 0.27 s of fitting) only pays back on large data.
_SMALL_DATA = 10_000_000


def _load(name):
    """The kernel module of ``name``, or the ImportError that makes it unusable."""
    try:
        return importlib.import_module(_MODULES[name]), None
    except ImportError as exc:  # numba missing or disabled, the extension not built, ...
        return None, exc
    except RuntimeError as exc:  # Numba finds no directory to cache the kernels in ("no locator available")
        return None, exc


def backend_status():
    """Which backends are usable here, and why not.

    Returns
    -------
    dict
        ``{name: None}`` for a usable backend, ``{name: reason}`` (a string) for one that is not, in the order of
        ``BACKENDS``.
    """
    status = {}
    for name in BACKENDS:
        _, error = _load(name)
        status[name] = None if error is None else f"{type(error).__name__}: {error}"
    return status


def get_backend(name="auto"):
    """The kernel module for a backend name.

    Parameters
    ----------
    name : {'auto'} or one of ``BACKENDS``
        ``'auto'`` takes the environment variable ``FASTGMM_BACKEND`` if set, else the first usable backend of
        ``BACKENDS``, with a warning (once per process) when that is not the first one. When both Numba and Cython
        are usable it is an ``AutoBackend``: Numba's kernels where compiled or in Numba's on-disk cache, else
        Cython's while a background process compiles Numba's (``FASTGMM_BACKGROUND_COMPILE=0``: Numba, compiled
        at first use).

    Returns
    -------
    module or AutoBackend
        Has ``NAME``, ``threads`` and the functions of ``fastgmm.kernels.KERNEL_FUNCTIONS``.
    """
    global _warned_fallback
    if name == "auto":
        name = os.environ.get("FASTGMM_BACKEND", "auto")
    if name == "auto":
        reasons = []
        for candidate in BACKENDS:
            module, error = _load(candidate)
            if module is not None:
                if candidate == "numba" and _background_compile.enabled():
                    cython, _ = _load("cython")
                    if cython is not None:
                        return AutoBackend(module, cython)
                if reasons and not _warned_fallback:
                    _warned_fallback = True
                    warnings.warn(
                        f"fastgmm uses the {candidate!r} backend: " + "; ".join(reasons)
                        + ". fastgmm.show_versions() lists the backends.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return module
            reasons.append(f"{candidate!r} is not usable ({error})")
        raise RuntimeError("no fastgmm backend is usable: " + "; ".join(reasons))
    if name not in _MODULES:
        raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {name!r}")
    module, error = _load(name)
    if module is None:
        raise ImportError(f"fastgmm backend {name!r} is not usable here: {error}") from error
    return module


def auto_summary():
    """What ``backend='auto'`` picks here, in words (``show_versions``)."""
    try:
        auto = get_backend("auto")
    except RuntimeError as exc:
        return str(exc)
    if isinstance(auto, AutoBackend):
        return ("numba where compiled (in memory or in Numba's cache), else cython while a background process "
                "compiles numba's")
    return auto.NAME


def command_backend(name, n_values):
    """The backend a command-line run on ``n_values`` values (rows x columns) uses: ``name``, except that 'auto'
    (``FASTGMM_BACKEND`` unset) is 'cython' below ``_SMALL_DATA`` values where the extension is usable."""
    if name != "auto" or os.environ.get("FASTGMM_BACKEND") or n_values >= _SMALL_DATA:
        return name
    cython, _ = _load("cython")  # imports the extension only, not Numba
    return "auto" if cython is None else cython.NAME


def warm_up(estimator, X):
    """Compile, or load from the on-disk cache, every kernel that fitting ``estimator`` on X will run, and return
    the seconds it took; for timing a fit apart from its first-use costs.

    The Numba backend runs a serial compilation of its kernels on small calls and a parallel one on large calls
    (above its ``PARALLEL_WORK``), each compiled at first use, so a fit of a small slice warms only the first: one
    short fit of a slice of each kind is made, on clones (``estimator`` is untouched). With ``backend='auto'``
    Numba's kernels are compiled here, in the foreground.

    Parameters
    ----------
    estimator : GaussianMixture
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    float
    """
    start = time.perf_counter()
    n_samples, n_features = X.shape
    backend = get_backend(estimator.backend)
    threshold = getattr(backend, "PARALLEL_WORK", None)
    sizes = {min(n_samples, max(2, 20 * estimator.n_components))}
    if threshold is not None:
        # The cheapest kernel's work per row is n_features (k-means' distance update): this many rows put every
        # kernel of the fit above the threshold.
        sizes.add(min(n_samples, max(2, math.ceil(threshold / n_features))))
    settings = dict(max_iter=1, n_init=1, warm_start=False, verbose=0, progress=False, callback=None)
    if isinstance(backend, AutoBackend):
        # Compiled here, Numba's kernels serve the estimator's own 'auto' fits (a warm-up served by Cython would not).
        settings["backend"] = "numba"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size in sorted(sizes):
            clone(estimator).set_params(**settings).fit(X[:size])
    return time.perf_counter() - start
