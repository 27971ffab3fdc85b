"""GaussianMixture benchmarks: fastgmm's backends and scikit-learn on the same data from the same initialisation.

Each class is parametrized by case (``datasets.CASES``) and implementation (fastgmm's backends, and ``sklearn``).
Timings that need a fixed amount of work fix it: ``tol=0`` and a fixed ``max_iter``, so every run does the same
iterations whatever the commit.
"""

import time

import numpy as np

from .common import BACKENDS, IMPLEMENTATIONS, PROFILE, Benchmark, estimator, quiet, require, warm
from .datasets import CASES, HEADLINE, OVERLAP_CASES, REFERENCE_CASES, case, load

# End-to-end fits: the default k-means initialisation, then exactly this many EM iterations.
FIT_ITERATIONS = 2


def _fit_settings(name):
    covariance_type, _, _, k, _ = case(name)
    return k, dict(covariance_type=covariance_type, random_state=0, tol=0, max_iter=FIT_ITERATIONS)


def _iteration_settings(name, init, max_iter=1):
    covariance_type, _, _, k, _ = case(name)
    return k, dict(covariance_type=covariance_type, tol=0, max_iter=max_iter, **init)


def _require(name, implementation):
    """``require``, the reference backend on its cases only, oneDAL on its covariance types."""
    require(implementation)
    if implementation == "numpy" and name not in REFERENCE_CASES:
        raise NotImplementedError(f"the NumPy reference backend is timed on {REFERENCE_CASES} only")
    if implementation == "onedal" and case(name)[0] not in ("full", "diag"):
        raise NotImplementedError("oneDAL's EM has full and diagonal covariances only")


def _usable(name, implementation):
    try:
        _require(name, implementation)
    except NotImplementedError:
        return False
    return True


class EMIteration(Benchmark):
    """One EM iteration: ``fit`` with ``max_iter=1`` from the shared initial parameters (an E-step and an M-step,
    with the input checks; scikit-learn adds the final E-step it always runs), on the fitted-start and the
    overlapping cases; oneDAL's EM beside them where it is installed."""

    param_names = ["case", "implementation"]
    params = [CASES + OVERLAP_CASES, IMPLEMENTATIONS + ["onedal"]]

    def setup(self, name, implementation):
        _require(name, implementation)
        if implementation == "sklearn" and name in OVERLAP_CASES:
            # Its iteration is dense whatever the start: VersusSklearn times it on these cases.
            raise NotImplementedError("scikit-learn's iteration on the overlapping cases is in VersusSklearn")
        quiet()
        self.X, init = load(name)
        k, settings = _iteration_settings(name, init)
        self.model = estimator(implementation, k, **settings)
        warm(self.model, self.X)

    def time_em_iteration(self, name, implementation):
        self.model.fit(self.X)


class Fit(Benchmark):
    """End-to-end fit: k-means initialisation (``random_state=0``), then ``FIT_ITERATIONS`` EM iterations."""

    param_names = ["case", "implementation"]
    params = [CASES, IMPLEMENTATIONS]

    def setup(self, name, implementation):
        _require(name, implementation)
        quiet()
        self.X, _ = load(name)
        k, settings = _fit_settings(name)
        self.model = estimator(implementation, k, **settings)
        warm(estimator(implementation, k, **settings), self.X)

    def time_fit(self, name, implementation):
        self.model.fit(self.X)


class FitResult(Benchmark):
    """What ``Fit``'s fit reaches, per fastgmm backend: a change in results shows on the dashboard. (scikit-learn's
    results do not change with fastgmm's commits.)"""

    param_names = ["case", "backend"]
    params = [CASES, BACKENDS]

    def setup_cache(self):
        quiet()
        lower_bounds = {}
        for name in CASES:
            X, _ = load(name)
            k, settings = _fit_settings(name)
            for backend in BACKENDS:
                if not _usable(name, backend):
                    continue
                lower_bounds[name, backend] = float(estimator(backend, k, **settings).fit(X).lower_bound_)
        return lower_bounds

    def setup(self, lower_bounds, name, backend):
        _require(name, backend)

    def track_log_likelihood(self, lower_bounds, name, backend):
        """Mean log-likelihood per sample (``lower_bound_``) at the end of the fit."""
        return lower_bounds[name, backend]

    track_log_likelihood.unit = "log-likelihood per sample"


class FitMemory(Benchmark):
    """Peak resident memory of the process around the end-to-end fit of ``Fit`` (asv reports the process's peak,
    which includes the data set)."""

    param_names = ["case", "implementation"]
    params = [CASES, IMPLEMENTATIONS]

    def setup(self, name, implementation):
        _require(name, implementation)
        # scikit-learn's memory does not change with fastgmm's commits: one case shows it, beside fastgmm's.
        if implementation == "sklearn" and name != HEADLINE:
            raise NotImplementedError("scikit-learn's peak memory is measured on the headline case only")
        quiet()
        self.X, _ = load(name)
        k, settings = _fit_settings(name)
        self.model = estimator(implementation, k, **settings)

    def peakmem_fit(self, name, implementation):
        self.model.fit(self.X)


class Predict(Benchmark):
    """``predict`` and ``predict_proba`` of a fitted model over the whole data set (the model is one EM iteration
    from the shared initialisation on the first 20,000 rows: what is timed does not depend on how good it is)."""

    param_names = ["case", "implementation"]
    params = [CASES, IMPLEMENTATIONS]

    def setup_cache(self):
        quiet()
        models = {}
        for name in CASES:
            X, init = load(name)
            k, settings = _iteration_settings(name, init)
            for implementation in IMPLEMENTATIONS:
                if not _usable(name, implementation):
                    continue
                models[name, implementation] = estimator(implementation, k, **settings).fit(X[:20_000])
        return models

    def setup(self, models, name, implementation):
        _require(name, implementation)
        quiet()
        self.X, _ = load(name)
        self.model = models[name, implementation]
        self.model.predict_proba(self.X[:2000])  # compiles and warms the kernels

    def time_predict(self, models, name, implementation):
        self.model.predict(self.X)

    def time_predict_proba(self, models, name, implementation):
        self.model.predict_proba(self.X)


# Interleaved samples behind each speed-up ratio (the median is reported).
SPEEDUP_SAMPLES = 3


def _iteration_seconds(X, name, init, implementation, extra=4):
    """Seconds per EM iteration of fastgmm (or oneDAL): (t(max_iter=1+extra) - t(max_iter=1)) over the iterations
    that the second fit ran beyond the first (oneDAL stops once its log-likelihood no longer changes at all, even
    with a zero tolerance; NaN when it ran none), which removes the input checks and set-up."""
    k, one = _iteration_settings(name, init, 1)
    _, more = _iteration_settings(name, init, 1 + extra)
    t0 = time.perf_counter()
    first = estimator(implementation, k, **one).fit(X)
    t1 = time.perf_counter()
    second = estimator(implementation, k, **more).fit(X)
    t2 = time.perf_counter()
    ran = second.n_iter_ - first.n_iter_
    return ((t2 - t1) - (t1 - t0)) / ran if ran > 0 else float("nan")


def _sklearn_iteration_seconds(model, X):
    """Seconds of one EM iteration of scikit-learn: its own E-step and M-step (the loop body of its ``fit``)."""
    t0 = time.perf_counter()
    _, log_resp = model._e_step(X)
    model._m_step(X, log_resp)
    return time.perf_counter() - t0


def _median_iteration_seconds(name, peer):
    """{implementation: seconds per EM iteration} of fastgmm's compiled backends and ``peer`` (``'sklearn'`` or
    ``'onedal'``) on a case, the median of ``SPEEDUP_SAMPLES`` interleaved samples, everything compiled first."""
    X, init = load(name)
    k, settings = _iteration_settings(name, init)
    backends = [backend for backend in ("numba", "cython") if _usable(name, backend)]
    for backend in backends:
        estimator(backend, k, **settings).fit(X[:2000])  # compiles outside the timing
    if peer == "sklearn":
        reference = estimator("sklearn", k, **settings).fit(X[:2000])

        def time_peer():
            return _sklearn_iteration_seconds(reference, X)
    else:
        warm(estimator(peer, k, **settings), X)

        def time_peer():
            return _iteration_seconds(X, name, init, peer)
    samples = {implementation: [] for implementation in backends + [peer]}
    for _ in range(SPEEDUP_SAMPLES):
        for backend in backends:
            samples[backend].append(_iteration_seconds(X, name, init, backend))
        samples[peer].append(time_peer())
    return {implementation: float(np.median(values)) for implementation, values in samples.items()}


class VersusSklearn(Benchmark):
    """fastgmm's speed-up over scikit-learn per EM iteration, both measured in the same process, interleaved, from
    the same parameters (median of ``SPEEDUP_SAMPLES``): the ratio the README quotes, over history."""

    param_names = ["case", "backend"]
    params = [CASES + OVERLAP_CASES, ["numba", "cython"]]
    timeout = 1800

    def setup_cache(self):
        quiet()
        seconds = {}
        for name in CASES + OVERLAP_CASES:
            for implementation, value in _median_iteration_seconds(name, "sklearn").items():
                seconds[name, implementation] = value
        return seconds

    def setup(self, seconds, name, backend):
        if (name, backend) not in seconds:
            raise NotImplementedError(f"backend {backend!r} is not usable here")

    def track_speedup(self, seconds, name, backend):
        """scikit-learn's seconds per iteration over fastgmm's."""
        return seconds[name, "sklearn"] / seconds[name, backend]

    track_speedup.unit = "x scikit-learn"

    def track_seconds_per_iteration(self, seconds, name, backend):
        """fastgmm's seconds per iteration in the same measurement (the numerator is ``track_sklearn_seconds``)."""
        return seconds[name, backend]

    track_seconds_per_iteration.unit = "seconds"

    def track_sklearn_seconds_per_iteration(self, seconds, name, backend):
        return seconds[name, "sklearn"]

    track_sklearn_seconds_per_iteration.unit = "seconds"


class VersusOneDAL(Benchmark):
    """fastgmm's speed-up over Intel oneDAL's EM (``daal4py.em_gmm``, the fastest CPU peer) per EM iteration, both
    measured in the same process, interleaved, from the same parameters, full and diagonal covariances (median of
    ``SPEEDUP_SAMPLES``). Skipped where ``scikit-learn-intelex`` is not installed."""

    param_names = ["case", "backend"]
    params = [CASES + OVERLAP_CASES, ["numba", "cython"]]
    timeout = 1800

    def setup_cache(self):
        quiet()
        seconds = {}
        for name in CASES + OVERLAP_CASES:
            if _usable(name, "onedal"):
                for implementation, value in _median_iteration_seconds(name, "onedal").items():
                    seconds[name, implementation] = value
        return seconds

    def setup(self, seconds, name, backend):
        if (name, backend) not in seconds or (name, "onedal") not in seconds:
            raise NotImplementedError(f"backend {backend!r} or oneDAL is not usable here, or not on this case")

    def track_speedup(self, seconds, name, backend):
        """oneDAL's seconds per iteration over fastgmm's."""
        return seconds[name, "onedal"] / seconds[name, backend]

    track_speedup.unit = "x oneDAL"

    def track_onedal_seconds_per_iteration(self, seconds, name, backend):
        return seconds[name, "onedal"]

    track_onedal_seconds_per_iteration.unit = "seconds"


# A fresh interpreter: import fastgmm and fit a small problem; ``cold`` gives Numba an empty compile cache.
_FIRST_FIT = """
import os, tempfile
if {cold}:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
import numpy as np
from fastgmm import GaussianMixture
X = np.random.default_rng(0).normal(size=(2000, 3))
GaussianMixture(3, random_state=0, backend={backend!r}).fit(X)
"""


class FirstCall(Benchmark):
    """Seconds from a fresh interpreter to the end of its first fit (import, kernel compilation or cache load, a
    small fit): what a user of a script or a pipeline step waits for."""

    param_names = ["backend", "compile_cache"]
    params = [["numba", "cython"], ["cold", "warm"]]
    repeat = (1, 3, 30.0)
    timeout = 600

    def setup(self, backend, compile_cache):
        require(backend)
        if backend == "cython" and compile_cache == "cold":
            raise NotImplementedError("the Cython backend compiles at install, not at first use")
        if PROFILE == "quick" and compile_cache == "cold":
            raise NotImplementedError("a cold Numba compilation takes about 30 s: full profile only")

    def timeraw_first_fit(self, backend, compile_cache):
        return _FIRST_FIT.format(cold=compile_cache == "cold", backend=backend)
