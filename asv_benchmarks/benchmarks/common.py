"""What the benchmark classes share: the profile, asv's timing attributes, and the implementations compared.

The profile comes from the environment variable ``FASTGMM_ASV_PROFILE``: ``full`` (the default; the shapes of
``datasets.FULL_CASES``) or ``quick`` (1/100 of the rows, for CI: it shows that every benchmark still runs).
"""

import os
import warnings

# Imported here, once, by asv's fork server (see asv.conf.json), not by each forked benchmark process.
import numpy  # noqa: F401
import sklearn.mixture  # noqa: F401

import fastgmm  # noqa: F401

try:
    import fastgmm.kernels.numba_  # noqa: F401 (numba and its kernels' dispatchers)
except ImportError:
    pass

PROFILE = os.environ.get("FASTGMM_ASV_PROFILE", "full")
if PROFILE not in ("full", "quick"):
    raise ValueError(f"FASTGMM_ASV_PROFILE must be 'full' or 'quick', got {PROFILE!r}")

# fastgmm's backends, then scikit-learn's GaussianMixture on the same data and initialisation.
BACKENDS = ["numba", "cython", "numpy"]
IMPLEMENTATIONS = BACKENDS + ["sklearn"]


class Benchmark:
    """asv settings for benchmarks that take from milliseconds to tens of seconds a call: one process, no
    warm-up (setup compiles and warms the kernels), up to 3 samples, fewer once a benchmark has taken 6 s (a full
    run must stay within 20 minutes on 2 cores). The dashboard
    compares commits, so a sample is worth more than a repeat within one."""

    rounds = 1
    number = 1
    repeat = (1, 3, 6.0)
    warmup_time = 0
    timeout = 900


def require(implementation):
    """Raise NotImplementedError, which asv reports as a skipped benchmark, when ``implementation`` cannot run in
    the environment under test (a backend not built there, or older than the commit under test)."""
    if implementation == "sklearn":
        return
    try:
        from fastgmm._backends import get_backend

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            get_backend(implementation)
    except (ImportError, ValueError) as error:
        raise NotImplementedError(f"backend {implementation!r} is not usable here: {error}") from None


def estimator(implementation, n_components, **params):
    """An unfitted GaussianMixture of fastgmm (with ``backend=implementation``) or of scikit-learn."""
    if implementation == "sklearn":
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(n_components, **params)
    from fastgmm import GaussianMixture

    return GaussianMixture(n_components, backend=implementation, **params)


def warm(model, X):
    """Compile or load the kernels a fit of X runs (both the serial and the parallel Numba kernels), outside the
    timing; scikit-learn's model fits a slice once."""
    if not hasattr(model, "backend"):
        model.fit(X[:2000])
        return
    from fastgmm._backends import warm_up

    warm_up(model, X)


def quiet():
    """Silence the ConvergenceWarning of fits stopped at a fixed number of iterations (and the backend notices)."""
    warnings.simplefilter("ignore")
