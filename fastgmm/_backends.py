"""Backend registry: which kernel implementations exist, which are usable here, and which ``'auto'`` picks.

A backend is a module of ``fastgmm.kernels`` with the same two functions, ``accumulate`` and ``weighted_log_prob``
(see ``fastgmm.kernels.numpy_``). Nothing outside this file chooses between them.
"""

import importlib
import os

# Preference order of backend='auto'.
BACKENDS = ("numba", "numpy")

_MODULES = {"numba": "fastgmm.kernels.numba_", "numpy": "fastgmm.kernels.numpy_"}


def _load(name):
    """The kernel module of ``name``, or the ImportError that makes it unusable."""
    try:
        return importlib.import_module(_MODULES[name]), None
    except ImportError as exc:  # a compiled backend that is not built or whose compiler is missing
        return None, exc


def get_backend(name="auto"):
    """The kernel module for a backend name.

    Parameters
    ----------
    name : {'auto'} or one of ``BACKENDS``
        ``'auto'`` takes the environment variable ``FASTGMM_BACKEND`` if set, else the first usable backend of
        ``BACKENDS``.

    Returns
    -------
    module
        Has ``NAME``, ``accumulate`` and ``weighted_log_prob``.
    """
    if name == "auto":
        name = os.environ.get("FASTGMM_BACKEND", "auto")
    if name == "auto":
        for candidate in BACKENDS:
            module, _ = _load(candidate)
            if module is not None:
                return module
        raise RuntimeError(f"no fastgmm backend is usable; tried {BACKENDS}")
    if name not in _MODULES:
        raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {name!r}")
    module, error = _load(name)
    if module is None:
        raise ImportError(f"fastgmm backend {name!r} is not usable here: {error}") from error
    return module
