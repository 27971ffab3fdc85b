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

# fastgmm's backends, then scikit-learn's GaussianMixture on the same data and initialisation; oneDAL's EM where
# it is installed (the ``bench`` extra) and the benchmark starts from given parameters.
BACKENDS = ["numba", "cython", "numpy"]
IMPLEMENTATIONS = BACKENDS + ["sklearn"]
PEERS = ["sklearn", "onedal"]


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
    the environment under test (a backend not built there, or older than the commit under test; oneDAL not
    installed)."""
    if implementation == "sklearn":
        return
    if implementation == "onedal":
        if not onedal_available():
            raise NotImplementedError("daal4py (pip install scikit-learn-intelex) is not installed")
        return
    try:
        from fastgmm._backends import get_backend

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            get_backend(implementation)
    except (ImportError, ValueError) as error:
        raise NotImplementedError(f"backend {implementation!r} is not usable here: {error}") from None


class OneDALMixture:
    """Intel oneDAL's EM (``daal4py.em_gmm``, from the ``scikit-learn-intelex`` package) behind GaussianMixture's
    ``fit(X)``, for timing beside it: the same start (``weights_init``, ``means_init``, ``precisions_init``, which
    it takes as covariances), exactly ``max_iter`` iterations (``accuracyThreshold=0``), ``reg_covar`` as its
    ``regularizationFactor``, float32 data computed in float. oneDAL has full and diagonal covariances only and no
    sample weights."""

    def __init__(self, n_components, covariance_type="full", max_iter=100, weights_init=None, means_init=None,
                 precisions_init=None, reg_covar=1e-6, **ignored):
        if covariance_type not in ("full", "diag"):
            raise NotImplementedError(f"oneDAL's EM has no {covariance_type!r} covariances")
        if weights_init is None or means_init is None or precisions_init is None:
            raise NotImplementedError("oneDAL's EM is timed from given initial parameters only")
        import numpy as np

        self.n_components = n_components
        self.covariance_type = covariance_type
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.weights_init = np.asarray(weights_init, dtype=np.float64).reshape(1, -1)
        self.means_init = np.ascontiguousarray(means_init, dtype=np.float64)
        if covariance_type == "full":
            self.covariances_init = [np.linalg.inv(p) for p in np.asarray(precisions_init, dtype=np.float64)]
        else:
            self.covariances_init = [(1.0 / p).reshape(1, -1) for p in np.asarray(precisions_init, dtype=np.float64)]

    def fit(self, X):
        import daal4py
        import numpy as np

        fptype = "float" if X.dtype == np.float32 else "double"
        algorithm = daal4py.em_gmm(
            nComponents=self.n_components, fptype=fptype, maxIterations=self.max_iter, accuracyThreshold=0.0,
            covarianceStorage="full" if self.covariance_type == "full" else "diagonal",
            regularizationFactor=self.reg_covar,
        )
        result = algorithm.compute(X, self.weights_init, self.means_init, self.covariances_init)
        self.weights_ = np.asarray(result.weights).ravel()
        self.means_ = np.asarray(result.means)
        self.n_iter_ = int(np.asarray(result.nIterations).ravel()[0])
        self.lower_bound_ = float(np.asarray(result.goalFunction).ravel()[0])
        return self


def onedal_available():
    """Whether ``daal4py`` (oneDAL's Python interface) imports here."""
    try:
        import daal4py  # noqa: F401
    except ImportError:
        return False
    return True


def estimator(implementation, n_components, **params):
    """An unfitted GaussianMixture of fastgmm (with ``backend=implementation``), of scikit-learn, or oneDAL's EM
    behind the same ``fit`` (``OneDALMixture``)."""
    if implementation == "sklearn":
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(n_components, **params)
    if implementation == "onedal":
        return OneDALMixture(n_components, **params)
    from fastgmm import GaussianMixture

    return GaussianMixture(n_components, backend=implementation, **params)


def warm(model, X):
    """Compile or load the kernels a fit of X runs (both the serial and the parallel Numba kernels), outside the
    timing; scikit-learn's and oneDAL's models fit a slice once."""
    if not hasattr(model, "backend"):
        model.fit(X[:2000])
        return
    from fastgmm._backends import warm_up

    warm_up(model, X)


def quiet():
    """Silence the ConvergenceWarning of fits stopped at a fixed number of iterations (and the backend notices)."""
    warnings.simplefilter("ignore")
