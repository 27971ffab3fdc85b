"""The estimator: scikit-learn's GaussianMixture API on fastgmm's one-pass EM."""

import math
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _missing, _sklearn_interop, _validation
from ._backends import get_backend
from ._base import BaseMixture, _log_likelihoods
from ._collapse import ComponentCollapseWarning
from ._initialisation import initial_parameters
from ._online import MiniBatchEpochs, Schedule, epoch_update, online_step, statistics_of
from ._parameters import COVARIANCE_TYPES, MixtureParameters
from ._random import fit_generator
from .sources import fit_source

# The fitted attributes a fit replaces, all or none.
_FITTED_ATTRIBUTES = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "converged_",
    "n_iter_",
    "lower_bound_",
    "lower_bounds_",
)


class GaussianMixture(BaseMixture):
    """Gaussian mixture model fitted by expectation-maximisation, a drop-in for scikit-learn's.

    Every parameter, attribute and method of :class:`sklearn.mixture.GaussianMixture` means the same here, and from
    the same initialisation both fit the same model. fastgmm computes each EM iteration in one pass over the data
    (log-likelihood and shifted sufficient statistics together), never holds an ``(n_samples, n_components)``
    matrix while fitting, accepts ``sample_weight``, keeps float32 data in float32 while accumulating in float64,
    and runs on a choice of compiled backends.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component has its own covariance matrix; 'tied': all share one; 'diag': each has a diagonal
        covariance; 'spherical': each has a single variance.
    tol : float, default=1e-3
        EM stops when the lower bound (mean log-likelihood per sample) changes by less than this.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of the covariances.
    max_iter : int, default=100
        The number of EM iterations to perform at most.
    n_init : int, default=1
        The number of initialisations; the one with the largest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'ward'}, default='kmeans'
        How the weights, means and precisions are initialised: responsibilities from k-means, k-means++ seeds,
        random responsibilities, or randomly chosen data points as means, as in scikit-learn; or (fastgmm only)
        Ward's agglomerative clustering cut into ``n_components`` clusters, mclust's kind of start: deterministic
        up to 2000 rows, else built on 2000 rows drawn from ``random_state``.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights; None to use ``init_params``.
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means; None to use ``init_params``.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances); None to use ``init_params``. Shape (n_components,) for
        'spherical', (n_features, n_features) for 'tied', (n_components, n_features) for 'diag' and
        (n_components, n_features, n_features) for 'full'.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and :meth:`sample`.
    warm_start : bool, default=False
        If True, each fit after the first starts from the previous solution (``n_init`` is then ignored).
    verbose : int, default=0
        1 prints each initialisation and iteration; 2 also prints the time and the change of the lower bound.
    verbose_interval : int, default=10
        Iterations between two prints.
    backend : {'auto', 'numba', 'cython', 'numpy'}, default='auto'
        Kernels that compute the EM passes. 'auto' takes the environment variable ``FASTGMM_BACKEND`` if set, else
        the first usable of Numba, the compiled Cython extension and the NumPy reference (warning once when it is
        not Numba). Every backend gives the same model to rounding; ``fastgmm.show_versions()`` lists them.
    n_jobs : int, default=None
        Threads used by the kernels. None uses the runtime's default (all cores unless an environment variable such
        as ``OMP_NUM_THREADS`` limits it), -1 all cores, -2 all but one, and so on. For a dask array, the
        threads of each task: None uses the threads of the worker that runs it.
    init_sample_size : int, 'auto' or None, default='auto'
        Rows the initialisation (``init_params``) looks at. None: every row. An int: that many rows drawn at
        random (reproducibly for a ``random_state``), held in memory. 'auto': every row of an in-memory array,
        exactly as scikit-learn, and ``max(100000, 50 * n_components)`` random rows of out-of-core data (a
        ``numpy.memmap``, :class:`fastgmm.Chunks` or a dask array), so that the memory of a fit stays bounded
        whatever the number of rows. EM itself always uses every row.
    progress : bool or 'auto', default=False
        A progress bar over the iterations; 'auto' on a terminal.
    callback : callable, default=None
        Called after every iteration with a dict of the initialisation, the iteration, the lower bound and its
        change.
    learning_decay : float, default=0.7
        kappa in (0.5, 1] of :meth:`partial_fit`'s step sizes ``eta_t = (learning_offset + t) ** -kappa`` (as in
        scikit-learn's ``LatentDirichletAllocation``): how fast the weight of each new batch decreases.
    learning_offset : float, default=10.0
        t0 >= 0 of those step sizes: larger values damp the early batches.
    step_size : float or None, default=None
        A constant step in (0, 1] for :meth:`partial_fit` instead of the decaying ones: the model then follows a
        drifting stream, forgetting a batch's statistics by the factor ``1 - step_size`` at every later batch.
    batch_size : int or None, default=None
        None: :meth:`fit` runs exact EM, one pass over all rows per iteration. An int: mini-batch EM for very large
        N, where a pass per iteration is too slow: each iteration (epoch) is an online-EM step (as in
        :meth:`partial_fit`, with the same step sizes) on every batch of ``batch_size`` consecutive rows in turn, and
        its lower bound the mean of the batches' log-likelihoods. For an in-memory array or a memmap whose rows come
        in random order.
    missing_values : {'error', 'marginalize'}, default='error'
        'error': NaN in X is an error, as in scikit-learn. 'marginalize' (fastgmm only): an entry that is NaN is
        missing, and EM treats it as latent (Ghahramani and Jordan 1994): a row's likelihood is that of its observed
        entries, and the M-step takes the missing ones' conditional expectations and covariances given the
        observed ones. :meth:`predict`, :meth:`predict_proba`, :meth:`score_samples`, :meth:`score`, :meth:`bic`
        and :meth:`aic` then take rows with NaN (the marginal density of the observed entries), and
        :meth:`impute` fills the holes. The initialisation reads the complete rows. A row with no observed entry
        is an error. For every input (in-memory arrays, memmaps, :class:`fastgmm.Chunks`, dask arrays); data
        without NaN are fitted as with 'error', as fast.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weight of each component; like every parameter array here, in X's floating dtype.
    means_ : ndarray of shape (n_components, n_features)
        The mean of each component.
    covariances_ : ndarray
        The covariance of each component; shape as ``precisions_init``.
    precisions_ : ndarray
        The precision (inverse covariance) of each component; shape as ``precisions_init``.
    precisions_cholesky_ : ndarray
        Upper-triangular Cholesky factors ``U`` of the precisions, ``precision = U @ U.T``; shape as
        ``precisions_init``.
    converged_ : bool
        Whether the best initialisation's EM converged.
    n_iter_ : int
        EM iterations of the best initialisation; after :meth:`partial_fit`, the batches it has seen.
    lower_bound_ : float
        Lower bound (mean log-likelihood per sample) of the best initialisation's last iteration; after
        :meth:`partial_fit`, the last batch's mean log-likelihood under the parameters before its step.
    lower_bounds_ : list of float
        Lower bound of every iteration of the best initialisation; after :meth:`partial_fit`, of every batch.
    backend_ : str
        Name of the backend that fitted the model.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X has string feature names.

    Notes
    -----
    The fitted attributes, ``predict_proba`` and ``score_samples`` are in X's floating dtype (float32 or float64),
    as in scikit-learn. The statistics and the M-step are float64 whatever the dtype, and the model keeps its float64
    parameters beside the float32 attributes, so a float32 fit equals the float64 fit of the same values, predicts
    as it does, and ``warm_start``, :meth:`save` and pickle continue or restore it exactly.

    A component left with less than 1e-12 of the total sample weight is re-seeded at the data point the model
    explains worst (scikit-learn carries it dead to the end); a component whose covariance is not positive definite
    after ``reg_covar`` (on one point or on duplicated rows with ``reg_covar=0``) keeps its mean and takes the mean
    covariance of the healthy components (scikit-learn stops with an error). Both warn with a
    :class:`fastgmm.ComponentCollapseWarning`; on data where nothing collapses the two libraries take the same steps.
    Initial covariances that are not positive definite are an error, as in scikit-learn. A fit that raises, or is
    interrupted, leaves the estimator as it was. :meth:`save` and :func:`fastgmm.load` store a model without pickle.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.means_
    array([[10.,  2.],
           [ 1.,  2.]])
    >>> gm.predict([[0, 0], [12, 3]])
    array([1, 0])
    """

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        "learning_offset": [Interval(Real, 0.0, None, closed="left")],
        "step_size": [Interval(Real, 0.0, 1.0, closed="right"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "missing_values": [StrOptions({"error", "marginalize"})],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        backend="auto",
        n_jobs=None,
        init_sample_size="auto",
        progress=False,
        callback=None,
        learning_decay=0.7,
        learning_offset=10.0,
        step_size=None,
        batch_size=None,
        missing_values="error",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.backend = backend
        self.n_jobs = n_jobs
        self.init_sample_size = init_sample_size
        self.progress = progress
        self.callback = callback
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.step_size = step_size
        self.batch_size = batch_size
        self.missing_values = missing_values

    # ------------------------------------------------------------------------------------------------ fitting

    _PARAMETER_ATTRIBUTES = (("weights_", "weights"), ("means_", "means"), ("covariances_", "covariances"),
                             ("precisions_cholesky_", "precisions_cholesky"))

    def _fit_context(self, source, backend):
        return self._checked_init_arrays(source.n_features)

    def _initial_parameters(self, source, backend, random_state, init_arrays):
        return initial_parameters(
            source,
            backend,
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            init_params=self.init_params,
            random_state=random_state,
            **init_arrays,
        )

    # --------------------------------------------------------------------------------------------- streaming

    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online EM on a batch of data that need not be seen again.

        The first call on an unfitted estimator initialises it from its batch (``init_params``, or the ``*_init``
        arrays), as :meth:`fit` does; every call then computes the batch's statistics in one pass, moves the
        running statistics towards them, ``s <- (1 - eta) s + eta stats(batch) / weight(batch)``, and takes the
        M-step from the running statistics (with ``eta`` from ``learning_decay`` and ``learning_offset``, or
        ``step_size``; Cappé and Moulines 2009). On a model fitted by :meth:`fit` it continues as if that fit had
        been the first batch (its statistics those the fitted parameters stand for). A collapsed component is
        re-seeded at the batch's worst-explained row, as in :meth:`fit`. The estimator is left as it was when a
        batch is rejected.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap, Chunks or dask.array.Array
            The batch; the first one needs at least ``n_components`` rows, unless ``weights_init``, ``means_init``
            and ``precisions_init`` are all given.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixture

        Notes
        -----
        ``n_iter_`` counts the batches, ``lower_bound_`` is the last batch's mean log-likelihood before its step
        and ``lower_bounds_`` lists every batch's; ``converged_`` stays False (a stream has no last iteration).
        The running statistics are part of the model: pickle, :meth:`save` and ``warm_start`` keep them, and
        :meth:`fit` discards them.
        """
        self._leaving_as_it_was_on_error(self._partial_fit, X, sample_weight)
        return self

    def _partial_fit(self, X, sample_weight):
        self._validate_params()
        first = not hasattr(self, "converged_")
        validate = partial(_validation.validate_X, self, reset=first, ensure_min_samples=1,
                           allow_nan=self._allows_nan())
        source = fit_source(X, sample_weight, validate=validate, n_jobs=self.n_jobs, missing_values=self._allows_nan())
        backend = get_backend(self.backend)
        with backend.threads(self.n_jobs):
            if first:
                init_arrays = self._fit_context(source, backend)
                if source.n_samples < self.n_components and any(value is None for value in init_arrays.values()):
                    raise ValueError(
                        f"The first batch of partial_fit needs at least n_components = {self.n_components} rows to "
                        f"initialise the model, got {source.n_samples} (or give weights_init, means_init and "
                        "precisions_init)"
                    )
                self._record_features(source)
                with fit_generator(self.random_state) as random_state:  # only the initialisation draws
                    params = self._initial_parameters(self._initialisation_rows(source), backend, random_state,
                                                      init_arrays)
            else:
                params = self._parameters()
            if "_stream" in self.__dict__:
                steps, running = self._stream
            elif first:
                steps, running = 0, None
            else:  # a model fitted by ``fit`` continues as if its fit had been the first batch
                steps, running = 1, statistics_of(params, self.reg_covar)
            new_params, running, stats, reseeded = online_step(source, backend, params, running, steps,
                                                               self.covariance_type, self.reg_covar, self._schedule())
        if reseeded:
            warnings.warn(f"{reseeded} collapsed component(s) re-seeded by partial_fit at the batch's worst-explained "
                          "row(s) (see docs/robustness.md in the fastgmm repository)", ComponentCollapseWarning)
        bounds = ([] if first else list(self.lower_bounds_)) + [stats.mean_log_likelihood]
        self._set_fitted(new_params, source.dtype, False, steps + 1, stats.mean_log_likelihood, bounds)
        self.backend_ = backend.NAME
        self._stream = (steps + 1, running)

    def _schedule(self):
        return Schedule(self.learning_decay, self.learning_offset, self.step_size)

    def _update(self, context):
        return None if self.batch_size is None else epoch_update

    def _em_source(self, source, context):
        if self.batch_size is None:
            return source
        if getattr(source, "batches", None) is None:
            raise ValueError(
                "batch_size (mini-batch EM) needs an in-memory array or a numpy.memmap; stream Chunks or a dask "
                "array through partial_fit instead"
            )
        return MiniBatchEpochs(source, self.batch_size, self.covariance_type, self.reg_covar, self._schedule())

    def _checked_init_arrays(self, n_features):
        """The user's initial weights, means and precisions, validated (the parameters themselves untouched)."""
        K = self.n_components
        return {
            "weights_init": None if self.weights_init is None else _validation.check_weights(self.weights_init, K),
            "means_init": None
            if self.means_init is None
            else _validation.check_means(self.means_init, K, n_features),
            "precisions_init": None
            if self.precisions_init is None
            else _validation.check_precisions(self.precisions_init, self.covariance_type, K, n_features),
        }

    def _set_fitted(self, params, dtype, converged, n_iter, lower_bound, lower_bounds):
        """Set the fitted attributes from float64 parameters: the public arrays in ``dtype`` (X's, as scikit-learn
        does), and the float64 parameters themselves kept for the kernels, ``warm_start`` and ``save``."""
        dtype = np.dtype(dtype)
        fitted = {
            "weights_": params.weights.astype(dtype, copy=False),
            "means_": params.means.astype(dtype, copy=False),
            "covariances_": params.covariances.astype(dtype, copy=False),
            "precisions_": params.precisions().astype(dtype, copy=False),
            "precisions_cholesky_": params.precisions_cholesky.astype(dtype, copy=False),
            "converged_": bool(converged),
            "n_iter_": int(n_iter),
            "lower_bound_": float(lower_bound),
            "lower_bounds_": [float(value) for value in lower_bounds],
        }
        assert set(fitted) == set(_FITTED_ATTRIBUTES)
        self.__dict__.update(fitted)
        self._float64_parameters = params

    def _parameters_from_attributes(self):
        return MixtureParameters(
            self.covariance_type,
            np.asarray(self.weights_, dtype=np.float64),
            np.asarray(self.means_, dtype=np.float64),
            np.asarray(self.covariances_, dtype=np.float64),
            np.asarray(self.precisions_cholesky_, dtype=np.float64),
        )

    # ----------------------------------------------------------------------------------------- missing values

    def impute(self, X):
        """X with every missing entry (NaN) replaced by its expectation given the row's observed entries under the
        fitted mixture, ``sum_k p(k | x_o) E[x_m | x_o, k]``, with ``E[x_m | x_o, k] = mu_m + Sigma_mo
        Sigma_oo^-1 (x_o - mu_o)``; observed entries are kept. Works whatever ``missing_values`` the model was
        fitted with.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with at least one observed entry each.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            In X's floating dtype.
        """
        check_is_fitted(self)
        X = _validation.validate_X(self, X, reset=False, allow_nan=True)
        return _missing.conditional_expectation(X, self._parameters()).astype(X.dtype, copy=False)

    # ---------------------------------------------------------------------------------------- model selection

    def bic(self, X):
        """Bayesian information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        bic : float
        """
        mean, n_samples = self._mean_log_likelihood(X)
        return -2 * mean * n_samples + self._n_parameters() * math.log(n_samples)

    def aic(self, X):
        """Akaike information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        aic : float
        """
        mean, n_samples = self._mean_log_likelihood(X)
        return -2 * mean * n_samples + 2 * self._n_parameters()

    def _mean_log_likelihood(self, X):
        """``(score(X), n_samples)`` from one pass, for any input ``score_samples`` takes: the EM pass's own float64
        log-likelihood sum (no (n_samples, n_components) matrix, no log-sum-exp in NumPy; 5x faster on iris-sized
        data, which made it a third of select_model's time there)."""
        source = self._prediction_source(X)
        backend = get_backend(self.backend)
        with backend.threads(self.n_jobs):
            statistics = source.statistics(backend, self._parameters())
        mean, n_samples = statistics.mean_log_likelihood, statistics.total_weight
        if not np.isfinite(mean):  # some row is explained by no component: score_samples says -inf there
            mean = source.mean(self._map(source, _log_likelihoods))
        return mean, n_samples

    def _n_parameters(self):
        """Number of free parameters of the fitted model."""
        check_is_fitted(self)
        return self._parameters().n_parameters()

    def to_sklearn(self):
        """An equivalent fitted :class:`sklearn.mixture.GaussianMixture`, for tools that take only scikit-learn's.

        The scikit-learn model gets the same constructor parameters (those it has) and the same fitted attributes
        (copies, in the same dtype), so it predicts what this model predicts, to its own rounding.

        Returns
        -------
        sklearn.mixture.GaussianMixture

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        """
        return _sklearn_interop.to_sklearn(self)

    @classmethod
    def from_sklearn(cls, model, **params):
        """A fitted fastgmm model equal to a fitted :class:`sklearn.mixture.GaussianMixture`.

        Parameters
        ----------
        model : sklearn.mixture.GaussianMixture
            Fitted; its constructor parameters and fitted attributes are copied.
        **params
            fastgmm's own parameters (``backend``, ``n_jobs``, ...) or overrides of the copied ones.

        Returns
        -------
        GaussianMixture
            Predicts as ``model`` does and can be saved, or refitted from it with ``warm_start=True``.
        """
        return _sklearn_interop.from_sklearn(cls, model, **params)
