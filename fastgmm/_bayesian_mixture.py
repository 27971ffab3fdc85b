"""The variational Bayesian estimator: scikit-learn's BayesianGaussianMixture API on fastgmm's one-pass kernels."""

from functools import partial
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from . import _validation
from ._base import BaseMixture
from ._initialisation import initial_statistics
from ._parameters import COVARIANCE_TYPES, MixtureParameters
from ._variational import WEIGHT_PRIOR_TYPES, VariationalParameters, priors_from_moments, step, update


def _data_moments(source, backend, covariance_type):
    """``(mean, scatter)`` of the rows of ``source``, sample weights counting as copies: the weighted mean (D,) and
    a function giving the sample covariance with one degree of freedom removed ((D, D), or its diagonal for 'diag'
    and 'spherical'). One pass of the statistics kernels with one component, about the first row, then, for the
    scatter, one about the mean (no cancellation for data far from the origin); any data source works."""
    first = np.asarray(source.rows(np.array([0]))[0], dtype=np.float64).reshape(1, -1)
    n_features = first.shape[1]
    kind = "full" if covariance_type in ("full", "tied") else "diag"

    def one_component(mean):
        identity = np.eye(n_features)[None] if kind == "full" else np.ones((1, n_features))
        return MixtureParameters(kind, np.ones(1), mean, identity, identity)

    stats = source.statistics(backend, one_component(first))
    mean = first + stats.s1 / stats.total_weight

    def scatter():
        about_mean = source.statistics(backend, one_component(mean))
        W = about_mean.total_weight
        # One degree of freedom removed, as np.cov; fractional weights summing to 1 or less have none to spare.
        return about_mean.s2[0] / (W - 1.0 if W > 1.0 else W)

    return mean[0], scatter


class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian estimation of a Gaussian mixture, a drop-in for scikit-learn's.

    Every parameter, attribute and method of :class:`sklearn.mixture.BayesianGaussianMixture` means the same here,
    and from the same initialisation both fit the same model. The weights have a Dirichlet process
    (stick-breaking) or a Dirichlet distribution prior, each component a Gauss-Wishart prior on its mean and
    precision; with the process, surplus components get weights near zero, so ``n_components`` is an upper bound
    on the components the data need. Each iteration is one pass over the data with fastgmm's kernels (the
    variational E-step is EM's with other per-component constants), without an ``(n_samples, n_components)`` matrix;
    ``sample_weight``, float32, out-of-core and dask inputs, ``backend`` and ``n_jobs`` work as in
    :class:`fastgmm.GaussianMixture`.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components, an upper bound on those the fit keeps.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        As in :class:`fastgmm.GaussianMixture`.
    tol : float, default=1e-3
        The variational inference stops when the lower bound changes by less than this.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of the responsibility-weighted covariances.
    max_iter : int, default=100
        The number of iterations to perform at most.
    n_init : int, default=1
        The number of initialisations; the one with the largest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'ward'}, default='kmeans'
        How the initial responsibilities are drawn, as in :class:`fastgmm.GaussianMixture`.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, default='dirichlet_process'
        The prior on the weights.
    weight_concentration_prior : float or None, default=None
        The Dirichlet concentration gamma_0 of each component (its process) or alpha_0 (its distribution); larger
        values put mass on more components. None means ``1 / n_components``.
    mean_precision_prior : float or None, default=None
        beta_0, how tightly the means are held to ``mean_prior``. None means 1.
    mean_prior : array-like of shape (n_features,), default=None
        m_0, the prior mean of the means. None means the mean of X.
    degrees_of_freedom_prior : float or None, default=None
        nu_0 of the Wishart priors, greater than ``n_features - 1``. None means ``n_features``.
    covariance_prior : float or array-like, default=None
        W_0^-1 of the Wishart priors: (n_features, n_features) for 'full' and 'tied', (n_features,) for 'diag', a
        float for 'spherical'. None means the sample covariance of X (its diagonal for 'diag', the mean of that
        for 'spherical').
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and :meth:`sample`.
    warm_start : bool, default=False
        If True, each fit after the first starts from the previous solution (``n_init`` is then ignored).
    verbose : int, default=0
        1 prints each initialisation and iteration; 2 also prints the time and the change of the lower bound.
    verbose_interval : int, default=10
        Iterations between two prints.
    backend : {'auto', 'numba', 'cython', 'numpy'}, default='auto'
        Kernels that compute the passes, as in :class:`fastgmm.GaussianMixture`.
    n_jobs : int, default=None
        Threads used by the kernels, as in :class:`fastgmm.GaussianMixture`.
    init_sample_size : int, 'auto' or None, default='auto'
        Rows the initialisation looks at, as in :class:`fastgmm.GaussianMixture`; the default priors and every
        iteration use all rows.
    progress : bool or 'auto', default=False
        A progress bar over the iterations; 'auto' on a terminal.
    callback : callable, default=None
        Called after every iteration with the initialisation, the iteration, the lower bound and its change.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The expected weight of each component.
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two of them
        The Dirichlet concentrations of the weights, or the two parameters of each stick's Beta distribution.
    weight_concentration_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
        beta_k: how precisely each mean is known.
    mean_precision_prior_ : float
    means_ : ndarray of shape (n_components, n_features)
        The mean of each component.
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_ : ndarray of shape (n_components,), or float for 'tied'
        nu_k of each component's Wishart distribution.
    degrees_of_freedom_prior_ : float
    covariances_ : ndarray
        The covariance of each component (the inverse of the expected precision); shape as in
        :class:`fastgmm.GaussianMixture`.
    covariance_prior_ : float or ndarray
    precisions_ : ndarray
        The expected precision of each component.
    precisions_cholesky_ : ndarray
        Upper-triangular Cholesky factors ``U`` of the precisions, ``precision = U @ U.T``.
    converged_ : bool
        Whether the best initialisation converged.
    n_iter_ : int
        Iterations of the best initialisation.
    lower_bound_ : float
        The evidence lower bound of the best initialisation's last iteration (constants dropped, as in
        scikit-learn).
    lower_bounds_ : list of float
        The lower bound of every iteration of the best initialisation.
    backend_ : str
        Name of the backend that fitted the model.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X has string feature names.

    Notes
    -----
    The entropy of the responsibilities, the one term of the lower bound that sums over the points, comes from the
    pass's log-likelihood and second moments (``fastgmm._variational.responsibility_entropy``), so an iteration
    costs one pass like an EM iteration. Nothing is re-seeded: a component the data do not need keeps a weight near
    zero, which is what the prior is for.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import BayesianGaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]])
    >>> bgm = BayesianGaussianMixture(n_components=2, random_state=42).fit(X)
    >>> bgm.means_
    array([[2.4975536 , 2.29225365],
           [8.45533127, 4.5225831 ]])
    >>> bgm.predict([[0, 0], [9, 3]])
    array([0, 1])
    """

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "weight_concentration_prior_type": [StrOptions(set(WEIGHT_PRIOR_TYPES))],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
    }

    _PARAMETER_ATTRIBUTES = (
        ("weight_concentration_", "weight_concentration"),
        ("mean_precision_", "mean_precision"),
        ("means_", "means"),
        ("degrees_of_freedom_", "degrees_of_freedom"),
        ("covariances_", "covariances"),
        ("precisions_cholesky_", "precisions_cholesky"),
    )

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        backend="auto",
        n_jobs=None,
        init_sample_size="auto",
        progress=False,
        callback=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.backend = backend
        self.n_jobs = n_jobs
        self.init_sample_size = init_sample_size
        self.progress = progress
        self.callback = callback

    # ------------------------------------------------------------------------------------------------ fitting

    def _fit_context(self, source, backend):
        """The priors, the defaults from the data (scikit-learn's ``_check_parameters``); also set as the
        ``*_prior_`` attributes."""
        n_features = source.n_features
        mean_prior = None if self.mean_prior is None else _validation.check_mean_prior(self.mean_prior, n_features)
        covariance_prior = None if self.covariance_prior is None else _validation.check_covariance_prior(
            self.covariance_prior, self.covariance_type, n_features)
        if mean_prior is None or covariance_prior is None:
            mean, scatter = _data_moments(source, backend, self.covariance_type)
        else:
            mean, scatter = None, None
        priors = priors_from_moments(
            self.covariance_type,
            self.weight_concentration_prior_type,
            self.n_components,
            n_features,
            mean,
            scatter,
            weight_concentration_prior=self.weight_concentration_prior,
            mean_precision_prior=self.mean_precision_prior,
            mean_prior=mean_prior,
            degrees_of_freedom_prior=self.degrees_of_freedom_prior,
            covariance_prior=covariance_prior,
        )
        dtype = np.dtype(source.dtype)
        self.weight_concentration_prior_ = priors.weight_concentration
        self.mean_precision_prior_ = priors.mean_precision
        self.mean_prior_ = priors.mean.astype(dtype)
        self.degrees_of_freedom_prior_ = priors.degrees_of_freedom
        self.covariance_prior_ = priors.covariance
        return priors

    def _initial_parameters(self, source, backend, random_state, priors):
        stats = initial_statistics(source, backend, n_components=self.n_components,
                                   covariance_type=self.covariance_type, init_params=self.init_params,
                                   random_state=random_state)
        return update(stats, self.covariance_type, self.reg_covar, priors)

    def _update(self, priors):
        return partial(step, priors, self.reg_covar)

    def _set_fitted(self, params, dtype, converged, n_iter, lower_bound, lower_bounds):
        """Set the fitted attributes from float64 parameters: the public arrays in ``dtype`` (X's), and the float64
        parameters themselves kept for the kernels, ``warm_start`` and ``save``."""
        dtype = np.dtype(dtype)

        def public(value):
            if isinstance(value, tuple):
                return tuple(public(part) for part in value)
            return value.astype(dtype, copy=False) if isinstance(value, np.ndarray) else dtype.type(value)

        fitted = {
            "weights_": public(params.weights),
            "weight_concentration_": public(params.weight_concentration),
            "mean_precision_": public(params.mean_precision),
            "means_": public(params.means),
            "degrees_of_freedom_": public(params.degrees_of_freedom),
            "covariances_": public(params.covariances),
            "precisions_": public(params.precisions()),
            "precisions_cholesky_": public(params.precisions_cholesky),
            "converged_": bool(converged),
            "n_iter_": int(n_iter),
            "lower_bound_": float(lower_bound),
            "lower_bounds_": [float(value) for value in lower_bounds],
        }
        self.__dict__.update(fitted)
        self._float64_parameters = params

    def _parameters_from_attributes(self):
        def exact(value):
            if isinstance(value, tuple):
                return tuple(exact(part) for part in value)
            return np.asarray(value, dtype=np.float64) if np.ndim(value) else float(value)

        covariances = exact(self.covariances_)
        return VariationalParameters(
            self.covariance_type,
            self.weight_concentration_prior_type,
            exact(self.weight_concentration_),
            exact(self.mean_precision_),
            exact(self.means_),
            exact(self.degrees_of_freedom_),
            covariances,
            exact(self.precisions_cholesky_),
        )
