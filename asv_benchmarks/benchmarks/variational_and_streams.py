"""BayesianGaussianMixture against scikit-learn's, and partial_fit's online-EM step, on the headline case.

Fixed work as in ``mixture.py``: ``tol=0`` and a fixed ``max_iter``; the Bayesian fits start from
``init_params='random_from_data'`` with ``random_state=0`` (the same draws in both libraries), so the time is the
priors' two passes, the start and the iterations.
"""

from .common import BACKENDS, PROFILE, Benchmark, quiet, require
from .datasets import HEADLINE, case, load

BAYESIAN_ITERATIONS = 2
# Rows per partial_fit batch: the stream of issue 20 (1e7 rows in batches of 1e4).
STREAM_BATCH = 1_000 if PROFILE == "quick" else 10_000


def _bayesian(implementation, k, covariance_type):
    settings = dict(n_components=k, covariance_type=covariance_type, init_params="random_from_data",
                    random_state=0, tol=0, max_iter=BAYESIAN_ITERATIONS)
    if implementation == "sklearn":
        from sklearn.mixture import BayesianGaussianMixture

        return BayesianGaussianMixture(**settings)
    from fastgmm import BayesianGaussianMixture

    return BayesianGaussianMixture(backend=implementation, **settings)


class BayesianFit(Benchmark):
    """A variational fit of ``BAYESIAN_ITERATIONS`` iterations: fastgmm's backends and scikit-learn."""

    param_names = ["case", "implementation"]
    params = [[HEADLINE], [name for name in BACKENDS if name != "numpy"] + ["sklearn"]]

    def setup(self, name, implementation):
        require(implementation)
        quiet()
        self.X, _ = load(name)
        covariance_type, _, _, k, _ = case(name)
        self.model = _bayesian(implementation, k, covariance_type)
        self.model.fit(self.X[:20_000])  # compile or load the kernels outside the timing

    def time_bayesian_fit(self, name, implementation):
        self.model.fit(self.X)


class StreamStep(Benchmark):
    """One ``partial_fit`` step on a batch of ``STREAM_BATCH`` rows of a model already streaming: validation, one
    pass over the batch, the running statistics and the M-step."""

    param_names = ["case", "backend"]
    params = [[HEADLINE], ["numba", "cython"]]

    def setup(self, name, backend):
        require(backend)
        quiet()
        from fastgmm import GaussianMixture

        X, _ = load(name)
        covariance_type, _, _, k, _ = case(name)
        self.model = GaussianMixture(k, covariance_type=covariance_type, random_state=0, backend=backend)
        self.model.partial_fit(X[: 2 * STREAM_BATCH])
        self.batch = X[2 * STREAM_BATCH: 3 * STREAM_BATCH]
        self.model.partial_fit(self.batch)

    def time_partial_fit(self, name, backend):
        self.model.partial_fit(self.batch)
