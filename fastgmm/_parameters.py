"""Mixture parameters and the sufficient statistics they are estimated from.

Everything here is small (K x D x D at most): the M-step, Cholesky factors of the precisions, log-determinants and
parameter counts. Nothing here touches the data.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.linalg import lapack

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# scikit-learn adds this to every N_k so that an empty component does not divide by zero; keeping it makes the two
# libraries agree to rounding.
NK_EPS = 10 * np.finfo(np.float64).eps

ILL_DEFINED_COVARIANCE = (
    "Fitting the mixture model failed because some components have ill-defined empirical covariance (for instance "
    "caused by singleton or collapsed samples). Try to decrease the number of components, increase reg_covar, or "
    "scale the input data."
)


def covariance_shape(covariance_type, n_components, n_features):
    """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_`` for a covariance type."""
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def prior_covariance_shape(covariance_type, n_features):
    """Shape of the Bayesian mixture's ``covariance_prior``: one component's covariance, () for 'spherical'."""
    return {"full": (n_features, n_features), "tied": (n_features, n_features), "diag": (n_features,),
            "spherical": ()}[covariance_type]


@dataclass(frozen=True)
class Statistics:
    """Additive sufficient statistics of one pass over (part of) the data.

    Attributes
    ----------
    log_likelihood : float
        ``sum_n w_n log p(x_n)`` under the parameters that produced the statistics.
    total_weight : float
        ``sum_n w_n``.
    nk : ndarray of shape (K,)
        ``sum_n w_n r_nk``.
    s1 : ndarray of shape (K, D)
        ``sum_n w_n r_nk (x_n - c_k)``.
    s2 : ndarray
        ``sum_n w_n r_nk (x_n - c_k)(x_n - c_k)^T``: full (K, D, D), tied (D, D) summed over k, diag (K, D), or
        spherical (K,) its trace.
    shift : ndarray of shape (K, D)
        The ``c_k`` the moments are taken about.
    """

    log_likelihood: float
    total_weight: float
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    shift: np.ndarray

    def __add__(self, other):
        if not np.array_equal(self.shift, other.shift):
            raise ValueError("statistics taken about different shifts cannot be added")
        return Statistics(
            self.log_likelihood + other.log_likelihood,
            self.total_weight + other.total_weight,
            self.nk + other.nk,
            self.s1 + other.s1,
            self.s2 + other.s2,
            self.shift,
        )

    @property
    def mean_log_likelihood(self):
        """Weighted mean log-likelihood per sample: the EM lower bound."""
        return self.log_likelihood / self.total_weight


class KernelParameters:
    """What every parameters object gives the kernels and the estimators, from its ``covariance_type``, ``means``,
    ``precisions_cholesky`` and ``log_const()``."""

    @property
    def n_components(self):
        return self.means.shape[0]

    @property
    def n_features(self):
        return self.means.shape[1]

    def kernel_arguments(self):
        """``(covariance_type, means, precisions_cholesky, log_const)`` as every backend takes them."""
        return self.covariance_type, self.means, self.precisions_cholesky, self.log_const()

    def precisions(self):
        """Precision matrices ``U U^T`` in the shape of ``precisions_cholesky``."""
        U = self.precisions_cholesky
        if self.covariance_type == "full":
            return U @ np.transpose(U, (0, 2, 1))
        if self.covariance_type == "tied":
            return U @ U.T
        return U**2

    def n_parameters(self):
        """Number of free parameters, as counted by BIC and AIC."""
        return n_parameters(self.covariance_type, self.n_components, self.n_features)


@dataclass(frozen=True)
class MixtureParameters(KernelParameters):
    """The fitted quantities of a Gaussian mixture, all float64.

    ``precisions_cholesky`` is what the kernels use; ``covariances`` is kept for the public attribute.
    """

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    def log_const(self):
        """``log(pi_k) + log det(U_k) - D/2 log(2 pi)``, shape (K,): the part of each log-density not tied to x."""
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights)
        return (
            log_weights
            + log_det_cholesky(self.precisions_cholesky, self.covariance_type, self.n_features)
            - 0.5 * self.n_features * math.log(2 * math.pi)
        )


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters of a mixture: covariances, means and the K - 1 free weights."""
    cov_params = {
        "full": n_components * n_features * (n_features + 1) // 2,
        "tied": n_features * (n_features + 1) // 2,
        "diag": n_components * n_features,
        "spherical": n_components,
    }[covariance_type]
    return cov_params + n_components * n_features + n_components - 1


def log_det_cholesky(precisions_cholesky, covariance_type, n_features):
    """``log det(U_k) = 1/2 log det(Sigma_k^-1)`` from the precision Cholesky factors; shape (K,) or scalar."""
    U = precisions_cholesky
    if covariance_type == "full":
        return np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diagonal(U)).sum()
    if covariance_type == "diag":
        return np.log(U).sum(axis=1)
    return n_features * np.log(U)


def _cholesky_of_precision(covariance):
    """Upper ``U`` with ``inv(covariance) = U U^T``, or None when ``covariance`` is not positive definite: one
    Cholesky factorisation ``L`` and the inverse of that triangle, ``U = L^-T`` (LAPACK directly: scipy's wrappers
    cost more than the work at small D)."""
    cov_chol, info = lapack.dpotrf(covariance, lower=1, clean=1)
    if info != 0 or not np.all(np.isfinite(cov_chol)):
        return None
    inverse, info = lapack.dtrtri(cov_chol, lower=1)
    if info != 0:
        return None
    return np.ascontiguousarray(inverse.T)


def _stacked_cholesky_of_precision(matrices):
    """``_cholesky_of_precision`` of a stack of (K, D, D) covariances in two batched LAPACK calls, or None when one
    is not positive definite (the caller then finds which, one at a time): a third of the time of K separate calls
    at K=16, D=8, where an online-EM step spends it after every batch."""
    if len(matrices) < 2:
        return None
    try:
        with np.errstate(all="ignore"):
            factors = np.linalg.inv(np.linalg.cholesky(matrices))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(factors)):
        return None
    # The general inverse (LU with pivoting) may leave rounding-level entries above the diagonal of L^-1: the
    # factor is triangular by definition.
    return np.triu(factors.transpose(0, 2, 1))


def try_precision_cholesky(covariances, covariance_type):
    """Cholesky factors of the precisions where the covariances are positive definite, and which are not.

    Returns
    -------
    precisions_cholesky : ndarray, shape of ``covariances``
        Undefined (NaN) where a covariance is not positive definite.
    failed : ndarray of bool, shape (K,), or (1,) for 'tied'
    """
    if covariance_type in ("full", "tied"):
        matrices = covariances if covariance_type == "full" else covariances[None]
        stacked = _stacked_cholesky_of_precision(matrices)
        if stacked is not None:
            return (stacked if covariance_type == "full" else stacked[0]), np.zeros(len(matrices), dtype=bool)
        factors = [_cholesky_of_precision(matrix) for matrix in matrices]
        failed = np.array([factor is None for factor in factors])
        nan = np.full(matrices.shape[1:], np.nan)
        stacked = np.stack([nan if factor is None else factor for factor in factors])
        return (stacked if covariance_type == "full" else stacked[0]), failed
    positive = (covariances > 0) & np.isfinite(covariances)
    failed = ~positive if covariance_type == "spherical" else ~positive.all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positive, 1.0 / np.sqrt(np.where(positive, covariances, 1.0)), np.nan), failed


def _ill_defined_message(component):
    where = "" if component is None else f" (component {component})"
    return ILL_DEFINED_COVARIANCE + where


def precision_cholesky_from_covariances(covariances, covariance_type):
    """Cholesky factors of the precisions from covariances; ValueError (scikit-learn's text) when not SPD."""
    factors, failed = try_precision_cholesky(covariances, covariance_type)
    if failed.any():
        raise ValueError(_ill_defined_message(None if covariance_type == "tied" else int(np.flatnonzero(failed)[0])))
    return factors


def precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper Cholesky factors ``U`` of given precision matrices (``P = U U^T``), without inverting anything.

    ``P = U U^T`` with ``U`` upper is the lower Cholesky factorisation of ``P`` with rows and columns reversed.
    """
    if covariance_type == "full":
        return np.stack([_upper_factor(p) for p in precisions])
    if covariance_type == "tied":
        return _upper_factor(precisions)
    return np.sqrt(precisions)


def _upper_factor(precision):
    flipped = precision[::-1, ::-1]
    return linalg.cholesky(flipped, lower=True)[::-1, ::-1].copy()


def covariances_from_precision_cholesky(precisions_cholesky, covariance_type):
    """``Sigma = U^-T U^-1`` by a triangular solve, for the ``covariances_`` attribute of a model built from
    precisions."""

    def one(U):
        U_inv = linalg.solve_triangular(U, np.eye(U.shape[0]), lower=False)
        return U_inv.T @ U_inv

    if covariance_type == "full":
        return np.stack([one(U) for U in precisions_cholesky])
    if covariance_type == "tied":
        return one(precisions_cholesky)
    return 1.0 / precisions_cholesky**2


def estimate_moments(stats, covariance_type, reg_covar, weight_normaliser=None):
    """Weights, means and covariances that maximise the expected complete log-likelihood, from the statistics.

    With ``n'_k = N_k + eps`` and ``delta_k = S1_k / n'_k`` the new mean is ``c_k + delta_k`` and the weighted
    scatter about it is ``S2_k - (2 n'_k - N_k) delta_k delta_k^T`` (exact algebra, no second pass over the data).

    Parameters
    ----------
    stats : Statistics
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
        Added to the diagonal of every covariance.
    weight_normaliser : float, optional
        Divisor of ``n'_k`` for the weights; ``sum(n'_k)`` by default. scikit-learn's initialisation divides by the
        number of samples instead, which the initialiser passes to stay identical to it.

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray, shape by ``covariance_type``
    """
    if not (np.all(np.isfinite(stats.s2)) and np.all(np.isfinite(stats.s1))):
        raise ValueError(
            "The second moments of X overflow float64: values or distances between them reach about 1e154. "
            "Divide X by a constant (its largest absolute value, say) before fitting."
        )
    nk = stats.nk
    n_eff = nk + NK_EPS
    delta = stats.s1 / n_eff[:, None]
    means = stats.shift + delta
    # (2 n' - N) / n' == 2 - N / n': the exact correction for using n' in delta.
    correction = (2.0 * n_eff - nk) / n_eff
    n_features = means.shape[1]
    diagonal = np.arange(n_features)
    if covariance_type == "full":
        cov = stats.s2 / n_eff[:, None, None] - correction[:, None, None] * np.einsum("ki,kj->kij", delta, delta)
        cov = 0.5 * (cov + np.transpose(cov, (0, 2, 1)))
        cov[:, diagonal, diagonal] += reg_covar
    elif covariance_type == "tied":
        scatter = stats.s2 - np.einsum("k,ki,kj->ij", correction * n_eff, delta, delta)
        cov = 0.5 * (scatter + scatter.T) / n_eff.sum()
        cov[diagonal, diagonal] += reg_covar
    elif covariance_type == "diag":
        cov = stats.s2 / n_eff[:, None] - correction[:, None] * delta**2 + reg_covar
    else:
        cov = (stats.s2 / n_eff - correction * np.einsum("ki,ki->k", delta, delta)) / n_features + reg_covar
    weights = n_eff / (n_eff.sum() if weight_normaliser is None else weight_normaliser)
    return weights, means, cov
