"""The benchmark data: seeded Gaussian blobs, generated once per machine and kept on disk, and the initial
parameters every implementation starts from.

The generator is written out here, not imported from fastgmm, so that the data stay the same whichever commit is
being benchmarked. Files are keyed by the generator's version and the profile; a change to the generator must bump
``GENERATOR_VERSION``.
"""

import os
import tempfile

import numpy as np

from .common import PROFILE

GENERATOR_VERSION = 1

# name -> (covariance_type, n_samples, n_features, n_components, dtype): the benchmark shapes of issue 3 (the Numba
# backend), plus one float32 case.
FULL_CASES = {
    "full-100k-2-4": ("full", 100_000, 2, 4, "float64"),
    "full-1M-8-16": ("full", 1_000_000, 8, 16, "float64"),
    "full-1M-32-8": ("full", 1_000_000, 32, 8, "float64"),
    "full-200k-64-16": ("full", 200_000, 64, 16, "float64"),
    "diag-1M-8-16": ("diag", 1_000_000, 8, 16, "float64"),
    "spherical-1M-8-16": ("spherical", 1_000_000, 8, 16, "float64"),
    "tied-1M-8-16": ("tied", 1_000_000, 8, 16, "float64"),
    "full-1M-8-16-float32": ("full", 1_000_000, 8, 16, "float32"),
}

# The quick profile (CI) runs two of the cases (one float64, one float32) with 1/100 of the rows and at most
# QUICK_FEATURES features: it checks that every benchmark still runs, in under a minute or two. Numba compiles its
# kernels for each number of features up to 16: with four, the quick run shares its compilations with the test
# suite, instead of adding about a minute of its own.
QUICK_ROWS = 100
QUICK_FEATURES = 4
QUICK_CASES = ["diag-1M-8-16", "full-1M-8-16-float32"]

CASES = QUICK_CASES if PROFILE == "quick" else list(FULL_CASES)

# Overlapping data (issue 18): the shapes above with K = 4 x the natural clusters, every component starting over
# the whole data set (``overlapping_start``), so that every point keeps all K responsibilities live, as in the
# first iterations of any fit, density estimation, or a K above the data's. The per-iteration benchmarks run them.
OVERLAP_FULL_CASES = {f"overlap-{name}": shape for name, shape in FULL_CASES.items() if shape[4] == "float64"}
QUICK_OVERLAP_CASES = ["overlap-full-1M-8-16"]
OVERLAP_CASES = QUICK_OVERLAP_CASES if PROFILE == "quick" else list(OVERLAP_FULL_CASES)

# The NumPy reference backend is there to be right, not fast (3-8 s an iteration at a million rows): in the full
# profile it is timed on the smallest case only.
REFERENCE_CASES = QUICK_CASES if PROFILE == "quick" else ["full-100k-2-4"]
HEADLINE = "full-1M-8-16-float32" if PROFILE == "quick" else "full-1M-8-16"


def case(name):
    """(covariance_type, n_samples, n_features, n_components, dtype) of a case in the current profile."""
    covariance_type, n, d, k, dtype = FULL_CASES[name] if name in FULL_CASES else OVERLAP_FULL_CASES[name]
    if PROFILE == "quick":
        n = max(n // QUICK_ROWS, 20 * k)
        d = min(d, QUICK_FEATURES)
    return covariance_type, n, d, k, dtype


def blobs(n_samples, n_features, n_components, seed=0):
    """Gaussian blobs with random covariances: centres uniform in [-10, 10]^D, component sizes multinomial with
    random proportions, each component a random linear map of standard normal points. Shape (n_samples, n_features),
    float64, rows grouped by component (the order does not matter to EM)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10.0, 10.0, (n_components, n_features))
    proportions = rng.dirichlet(np.full(n_components, 5.0))
    sizes = rng.multinomial(n_samples, proportions)
    X = np.empty((n_samples, n_features))
    start = 0
    for k, size in enumerate(sizes):
        scale = rng.normal(size=(n_features, n_features)) / np.sqrt(n_features)
        X[start:start + size] = centres[k] + rng.standard_normal((size, n_features)) @ scale
        start += size
    return X


def _cache_dir():
    path = os.environ.get("FASTGMM_ASV_DATA", os.path.join(tempfile.gettempdir(), "fastgmm-asv-data"))
    os.makedirs(path, exist_ok=True)
    return path


def _save_atomically(path, save, value):
    # Two benchmark processes may build the same file: each writes its own and the rename is atomic.
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "wb") as f:
        save(f, value)
    os.replace(partial, path)


def load(name):
    """(X, init) of a case: X in the case's dtype, init the keyword arguments ``weights_init``, ``means_init``,
    ``precisions_init`` (a two-iteration scikit-learn fit of the first 20,000 rows, or for an overlapping case
    ``overlapping_start``), built on first use."""
    covariance_type, n, d, k, dtype = case(name)
    overlapping = name in OVERLAP_FULL_CASES
    stem = os.path.join(_cache_dir(), f"v{GENERATOR_VERSION}-{PROFILE}-{name}")
    if not os.path.exists(stem + ".npy"):
        natural = max(1, k // 4) if overlapping else k
        _save_atomically(stem + ".npy", np.save, blobs(n, d, natural).astype(dtype))
    X = np.load(stem + ".npy")
    if overlapping:
        return X, overlapping_start(X, covariance_type, k)
    import sklearn

    init_path = f"{stem}-init-sklearn{sklearn.__version__}.npz"
    if not os.path.exists(init_path):
        _save_atomically(init_path, lambda f, v: np.savez(f, **v), _initial_parameters(X, covariance_type, k))
    with np.load(init_path) as saved:
        init = {key: saved[key] for key in ("weights_init", "means_init", "precisions_init")}
    return X, init


def _initial_parameters(X, covariance_type, n_components):
    import warnings

    from sklearn.mixture import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two iterations do not converge
        start = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=2, random_state=0)
        start.fit(X[:20_000].astype(np.float64))
    return {"weights_init": start.weights_, "means_init": start.means_, "precisions_init": start.precisions_}


def overlapping_start(X, covariance_type, n_components, seed=1):
    """Initial parameters under which every component covers the data: means at distinct random points of X,
    equal weights, and the covariance of the whole data set for every component (in the covariance type's
    precision layout)."""
    rng = np.random.default_rng(seed)
    means = X[rng.choice(len(X), n_components, replace=False)].astype(np.float64)
    pooled = np.atleast_2d(np.cov(X.T.astype(np.float64)))
    precisions = {
        "full": lambda: np.repeat(np.linalg.inv(pooled)[None], n_components, axis=0),
        "tied": lambda: np.linalg.inv(pooled),
        "diag": lambda: np.repeat((1.0 / np.diag(pooled))[None], n_components, axis=0),
        "spherical": lambda: np.full(n_components, 1.0 / np.mean(np.diag(pooled))),
    }[covariance_type]()
    return {"weights_init": np.full(n_components, 1.0 / n_components), "means_init": means,
            "precisions_init": precisions}
