"""What the two estimators share: the fit loop over initialisations (on one EM driver, ``_em.run_em``), the
data sources, the guard that leaves a failed fit's estimator as it was, and the predictions from per-component
log-probabilities. A subclass says how a run starts, what its update after each pass is, and which fitted
attributes its parameters make."""

import math
import warnings
from contextlib import closing
from functools import partial
from numbers import Integral, Real

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _validation
from ._backends import BACKENDS, get_backend
from ._collapse import COLLAPSED_WEIGHT, ComponentCollapseWarning
from ._em import VerbosePrinter, run_em
from ._model_file import save_model
from ._progress import Progress
from ._random import fit_generator
from .sources import fit_source, prediction_source
from .sources.with_missing import complete_rows
from .sources.init_sample import initialisation_source


def _report(printer, progress, init, n_iter, lower_bound, change):
    printer.iteration_end(n_iter, lower_bound, change)
    progress.iteration(init, n_iter, lower_bound, change)


# What the predictions make of a block of weighted log-probabilities log(pi_k N(x | k)), (rows, K) float64; module
# functions, so that a task in another process (a dask worker) can carry them.
def _labels(log_prob):
    return log_prob.argmax(axis=1)


def _posteriors(log_prob):
    with np.errstate(under="ignore"):
        return np.exp(log_prob - logsumexp(log_prob, axis=1)[:, None])


def _log_likelihoods(log_prob):
    return logsumexp(log_prob, axis=1)


def _rounds_to(public, exact):
    """Whether an attribute is ``exact`` (a float64 array, a float, or a tuple of them) in the attribute's dtype."""
    if public is exact:
        return True
    if isinstance(exact, tuple):
        return isinstance(public, tuple) and len(public) == len(exact) and all(map(_rounds_to, public, exact))
    if not isinstance(public, (np.ndarray, np.floating, float)):
        return False
    public = np.asarray(public)
    exact = np.asarray(exact)
    return public.shape == exact.shape and np.array_equal(public, exact.astype(public.dtype, copy=False))


class BaseMixture(DensityMixin, BaseEstimator):
    """Base of fastgmm's mixture estimators: fitting by one pass over the data per iteration, and predicting.

    A subclass defines ``_PARAMETER_ATTRIBUTES``, ``_fit_context(source, backend)`` (what a fit needs beside the
    data: the validated initial arrays, the priors), ``_initial_parameters(source, backend, random_state, context)``,
    ``_update(context)`` (None for EM's M-step, else ``run_em``'s ``update``), ``_set_fitted`` and
    ``_parameters_from_attributes``. Parameters objects provide ``kernel_arguments()`` for the kernels and
    ``weights``, ``means`` and ``covariances`` for :meth:`sample`.
    """

    # The parameters both estimators have: scikit-learn's BaseMixture's and fastgmm's own.
    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "random", "random_from_data", "k-means++", "ward"})],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"auto", *BACKENDS})],
        # joblib's convention: 0 threads has no meaning.
        "n_jobs": [Interval(Integral, None, -1, closed="right"), Interval(Integral, 1, None, closed="left"), None],
        "init_sample_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "progress": ["boolean", StrOptions({"auto"})],
        "callback": [callable, None],
    }

    # (attribute, field of the parameters object) of the attributes the parameters make.
    _PARAMETER_ATTRIBUTES = ()

    # ------------------------------------------------------------------------------------------------ fitting

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the model parameters, iterating one pass over the data and one update.

        The model is fitted ``n_init`` times and the run with the largest lower bound is kept. Each run iterates
        until the lower bound changes by less than ``tol`` or ``max_iter`` is reached; a ConvergenceWarning says
        when the kept run did not converge. With ``warm_start``, later fits continue from the current solution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap, Chunks or dask.array.Array
            Training data; float32 is used as it is, other numeric types are converted to float64. A memmap is
            read block by block, never loaded whole; :class:`fastgmm.Chunks` is read again at every iteration;
            for a dask array, each iteration computes the statistics of every block on the worker that holds it.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample; an integer weight counts as that many copies of the row.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model to X and return the most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels, identical to ``fit(X).predict(X)``.
        """
        return self._map(self._fit(X, sample_weight), _labels, dtype=np.int64)

    def _fit(self, X, sample_weight):
        """Fit, and return the data source; on any exception the estimator is left exactly as it was."""
        return self._leaving_as_it_was_on_error(self._fit_unguarded, X, sample_weight)

    def _leaving_as_it_was_on_error(self, work, *args):
        """``work(*args)``; on any exception (Ctrl-C included) the estimator's state is restored before it
        propagates."""
        saved = dict(self.__dict__)
        try:
            return work(*args)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_unguarded(self, X, sample_weight):
        self._validate_params()
        self.__dict__.pop("_stream", None)  # a fit replaces partial_fit's running statistics
        source = fit_source(X, sample_weight, validate=self._validated_for_fit, n_jobs=self.n_jobs,
                            missing_values=self._allows_nan())
        self._fit_source(source, get_backend(self.backend))
        return source

    def _fit_source(self, source, backend):
        """Fit to a data source whose X this estimator's parameters were validated with; ``backend`` is a fresh
        ``get_backend(self.backend)``."""
        if source.n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {source.n_samples}"
            )
        self._record_features(source)

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        printer = VerbosePrinter(self.verbose, self.verbose_interval)
        progress = Progress(self.progress, self.callback, n_init, self.max_iter)

        best = None
        reseeded = []  # (iteration, components) of every run
        with fit_generator(self.random_state) as random_state, backend.threads(self.n_jobs), closing(progress):
            context = self._fit_context(source, backend)
            for init in range(n_init):
                printer.init_begin(init)
                if do_init:
                    params = self._initial_parameters(
                        self._initialisation_rows(initialisation_source(source, self.init_sample_size,
                                                                        self.n_components, random_state)),
                        backend,
                        random_state,
                        context,
                    )
                    lower_bound = -math.inf
                else:
                    params, lower_bound = self._parameters(), self.lower_bound_
                result = run_em(
                    self._em_source(source, context),
                    backend,
                    params,
                    reg_covar=self.reg_covar,
                    tol=self.tol,
                    max_iter=self.max_iter,
                    lower_bound=lower_bound,
                    # Nothing to report lets a backend run several iterations per call.
                    on_iteration=partial(_report, printer, progress, init) if self.verbose or progress.active
                    else None,
                    update=self._update(context),
                )
                reseeded += result.reseeded
                if self.max_iter > 0:
                    printer.init_end(result.lower_bound, result.converged)
                # The first run is kept whatever its bound, as scikit-learn does (a bound may be -inf or NaN).
                if best is None or result.lower_bound > best.lower_bound or best.lower_bound == -math.inf:
                    best = result

        if reseeded:
            warnings.warn(
                f"{sum(count for _, count in reseeded)} collapsed component(s) re-seeded in {len(reseeded)} EM "
                f"iteration(s): a component kept less than {COLLAPSED_WEIGHT:g} of the total sample weight (it was "
                "restarted at the data point the model explained worst) or its covariance was not positive definite "
                "(it took the mean covariance of the healthy components). Fewer components, a larger reg_covar or "
                "another initialisation may suit the data better (see docs/robustness.md in the fastgmm repository).",
                ComponentCollapseWarning,
            )
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, or increase "
                "max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_fitted(best.params, source.dtype, best.converged, best.n_iter, best.lower_bound, best.lower_bounds)
        self.backend_ = backend.NAME

    def _record_features(self, source):
        """``n_features_in_`` and ``feature_names_in_`` (or its absence) of the data a fit starts from."""
        self.n_features_in_ = source.n_features
        if source.feature_names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = source.feature_names

    def _fit_context(self, source, backend):
        """What every initialisation of a fit shares beside the data."""
        return None

    def _update(self, context):
        """``run_em``'s ``update``: None for EM's M-step."""
        return None

    def _em_source(self, source, context):
        """What ``run_em`` iterates over for one initialisation: the data source itself, by default."""
        return source

    def _validated_for_fit(self, X):
        return _validation.validate_X(self, X, reset=True, ensure_min_samples=2, allow_nan=self._allows_nan())

    def _allows_nan(self):
        """Whether NaN in X are missing values (``missing_values='marginalize'``) rather than an error."""
        return getattr(self, "missing_values", "error") == "marginalize"

    def _initialisation_rows(self, source):
        """The rows the initialisation reads, from those ``initialisation_source`` chose: with missing values
        allowed, their complete rows (``fastgmm.sources.with_missing.complete_rows``)."""
        return complete_rows(source, self.n_components) if self._allows_nan() else source

    def _validate_params(self):
        _validation.validate_params(self, super()._validate_params)

    def _parameters(self):
        """The fitted parameters in float64, as the kernels take them.

        They are the fit's own float64 parameters while the public attributes are still the ones the fit set (a
        float32 model then predicts exactly as the float64 model of the same values); when the attributes were
        replaced or changed in place, they are rebuilt from the attributes.
        """
        exact = self.__dict__.get("_float64_parameters")
        if exact is not None and self._attributes_match(exact):
            return exact
        return self._parameters_from_attributes()

    def _attributes_match(self, params):
        """Whether the public parameter attributes are ``params`` in their own dtype."""
        return all(_rounds_to(getattr(self, name), getattr(params, field))
                   for name, field in self._PARAMETER_ATTRIBUTES)

    # --------------------------------------------------------------------------------------------- prediction

    def _validated(self, X):
        check_is_fitted(self)
        return _validation.validate_X(self, X, reset=False, allow_nan=self._allows_nan())

    def _prediction_source(self, X):
        check_is_fitted(self)
        return prediction_source(X, validate=self._validated, check_width=partial(_validation.check_n_features, self),
                                 n_jobs=self.n_jobs, missing_values=self._allows_nan())

    def _map(self, source, function, columns=None, dtype=None):
        """``source.map_log_prob`` of ``function`` under the fitted parameters and the backend's thread policy for
        ``n_jobs``."""
        backend = get_backend(self.backend)
        with backend.threads(self.n_jobs):
            return source.map_log_prob(backend, self._parameters(), function, columns, dtype)

    def predict(self, X):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self._map(self._prediction_source(X), _labels, dtype=np.int64)

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Rows sum to 1; dtype of X (float32 or float64).
        """
        return self._map(self._prediction_source(X), _posteriors, columns=self.n_components)

    def score_samples(self, X):
        """Log-likelihood of each sample under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Dtype of X (float32 or float64).
        """
        return self._map(self._prediction_source(X), _log_likelihoods)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood per sample of X under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the mean.

        Returns
        -------
        log_likelihood : float
        """
        source = self._prediction_source(X)
        return source.mean(self._map(source, _log_likelihoods), sample_weight)

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture (the same draws as scikit-learn for the same ``random_state``).

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least one sample."
            )
        rng = check_random_state(self.random_state)
        # From the float64 parameters: float32 weights may sum to 1 + 1e-7, which multinomial rejects.
        params = self._parameters()
        counts = rng.multinomial(n_samples, params.weights)
        n_features = params.n_features
        if self.covariance_type in ("full", "tied"):
            covariances = params.covariances if self.covariance_type == "full" else [params.covariances] * len(counts)
            parts = [
                rng.multivariate_normal(mean, cov, int(n)) for mean, cov, n in zip(params.means, covariances, counts)
            ]
        else:
            parts = [
                mean + rng.standard_normal(size=(n, n_features)) * np.sqrt(cov)
                for mean, cov, n in zip(params.means, params.covariances, counts)
            ]
        labels = np.concatenate([np.full(n, k, dtype=np.int64) for k, n in enumerate(counts)])
        return np.vstack(parts), labels

    def save(self, file):
        """Save the fitted model to an ``.npz`` file that :func:`fastgmm.load` reads back exactly, without pickle.

        The layout is documented and versioned (``fastgmm._model_file``): plain arrays and JSON text, so a model
        file from elsewhere cannot run code when loaded. A path is written atomically (a temporary file renamed).

        Parameters
        ----------
        file : str, path-like or binary file object
            Written as given (no ``.npz`` suffix is added).

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        TypeError
            If a parameter is of a type the format does not store (a callable, say).
        """
        save_model(self, file)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allows_nan()
        return tags
