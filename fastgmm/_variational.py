"""The variational Bayesian mixture's quantities: its priors, its variational parameters, the update from the
one-pass statistics and the evidence lower bound. Small pure functions, as ``_parameters`` is for EM; nothing here
touches the data.

The model and its notation are scikit-learn's ``BayesianGaussianMixture`` (Bishop, *Pattern Recognition and Machine
Learning*, section 10.2, with the covariances normalised by the degrees of freedom): a Dirichlet process
(stick-breaking, truncated at K) or a Dirichlet distribution on the weights, and a Gauss-Wishart distribution on
each component's mean and precision. Its E-step is EM's with a per-component constant in place of
``log(pi_k) + log det(U_k) - D/2 log(2 pi)``, so the same kernels compute it (``VariationalParameters.log_const``);
its update consumes the statistics EM accumulates; and the entropy of the responsibilities, the one term of its lower
bound that depends on every point, follows from those statistics too (``responsibility_entropy``).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln

from ._parameters import (
    NK_EPS,
    KernelParameters,
    estimate_moments,
    log_det_cholesky,
    precision_cholesky_from_covariances,
)

WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclass(frozen=True)
class Priors:
    """The priors of a variational mixture, float64, with the defaults filled in from the data.

    Attributes
    ----------
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    weight_concentration : float
        gamma_0 (the process) or alpha_0 (the distribution).
    mean_precision : float
        beta_0.
    mean : ndarray of shape (D,)
        m_0.
    degrees_of_freedom : float
        nu_0.
    covariance : ndarray
        W_0^-1: (D, D) for 'full' and 'tied', (D,) for 'diag', a float for 'spherical'.
    """

    weight_concentration_prior_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: object


@dataclass(frozen=True)
class VariationalParameters(KernelParameters):
    """The variational posterior of a mixture, all float64; what the kernels and the fitted attributes take.

    Attributes
    ----------
    covariance_type : str
    weight_concentration_prior_type : str
    weight_concentration : ndarray of shape (K,), or a pair of them
        The Dirichlet's concentrations, or the (alpha, beta) of the K Beta distributions of the stick-breaking.
    mean_precision : ndarray of shape (K,)
        beta_k.
    means : ndarray of shape (K, D)
        m_k.
    degrees_of_freedom : ndarray of shape (K,), or a float for 'tied'
        nu_k.
    covariances : ndarray
        W_k^-1 / nu_k, shaped by the covariance type.
    precisions_cholesky : ndarray
        Upper Cholesky factors of the inverses of ``covariances``.
    """

    covariance_type: str
    weight_concentration_prior_type: str
    weight_concentration: object
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: object
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    @property
    def weights(self):
        """The expected weights, shape (K,), summing to 1."""
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = self.weight_concentration
            stick = b / (a + b)
            weights = a / (a + b) * np.hstack((1.0, np.cumprod(stick[:-1])))
        else:
            weights = self.weight_concentration
        return weights / weights.sum()

    def log_weights(self):
        """``E[log pi_k]`` under the posterior of the weights, shape (K,)."""
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = self.weight_concentration
            digamma_sum = digamma(a + b)
            return digamma(a) - digamma_sum + np.hstack((0.0, np.cumsum(digamma(b) - digamma_sum)[:-1]))
        return digamma(self.weight_concentration) - digamma(np.sum(self.weight_concentration))

    def log_const(self):
        """The part of each component's expected log-density (weight included) not tied to x, shape (K,).

        ``E[log pi_k] + 1/2 E[log det Lambda_k] - D/2 log(2 pi) - D / (2 beta_k)``: with ``U_k`` the factor of the
        normalised precision ``nu_k W_k``, the expected Mahalanobis term is the kernels' plain one plus ``D / beta_k``,
        and ``1/2 E[log det Lambda_k] = log det(U_k) - D/2 log(nu_k) + 1/2 (D log 2 + sum_i digamma((nu_k - i) / 2))``.
        """
        D = self.n_features
        nu = self.degrees_of_freedom
        log_lambda = D * math.log(2.0) + np.sum(digamma(0.5 * (nu - np.arange(D)[:, None])), axis=0)
        return (
            self.log_weights()
            + log_det_cholesky(self.precisions_cholesky, self.covariance_type, D)
            - 0.5 * D * math.log(2 * math.pi)
            - 0.5 * D * np.log(nu)
            + 0.5 * (log_lambda - D / self.mean_precision)
        )


def priors_from_moments(covariance_type, weight_concentration_prior_type, n_components, n_features, mean, scatter,
                        *, weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                        degrees_of_freedom_prior=None, covariance_prior=None):
    """The priors, scikit-learn's defaults filled in from the data's moments.

    Parameters
    ----------
    covariance_type, weight_concentration_prior_type : str
    n_components, n_features : int
    mean : ndarray of shape (D,)
        The (weighted) mean of X: the default ``mean_prior``.
    scatter : callable
        ``scatter()`` is the (weighted) sample covariance of X with one degree of freedom removed, (D, D) for 'full'
        and 'tied', its diagonal (D,) otherwise: the default ``covariance_prior``. Called only when needed.
    weight_concentration_prior, ..., covariance_prior : validated values or None

    Returns
    -------
    Priors
    """
    if degrees_of_freedom_prior is None:
        degrees_of_freedom_prior = float(n_features)
    elif not degrees_of_freedom_prior > n_features - 1.0:
        raise ValueError(
            "The parameter 'degrees_of_freedom_prior' should be greater than "
            f"{n_features - 1}, but got {degrees_of_freedom_prior:.3f}."
        )
    if covariance_prior is None:
        covariance_prior = scatter()
        if covariance_type == "spherical":
            covariance_prior = float(covariance_prior.mean())
    return Priors(
        weight_concentration_prior_type,
        1.0 / n_components if weight_concentration_prior is None else float(weight_concentration_prior),
        1.0 if mean_precision_prior is None else float(mean_precision_prior),
        np.asarray(mean if mean_prior is None else mean_prior, dtype=np.float64),
        float(degrees_of_freedom_prior),
        covariance_prior if covariance_type == "spherical" else np.asarray(covariance_prior, dtype=np.float64),
    )


def posterior(nk, xk, sk, covariance_type, priors):
    """The variational posterior from the responsibility-weighted moments: scikit-learn's ``_estimate_weights``,
    ``_estimate_means`` and ``_estimate_wishart_*``.

    Parameters
    ----------
    nk : ndarray of shape (K,)
        ``N_k`` with scikit-learn's ``10 eps`` added.
    xk : ndarray of shape (K, D)
        The responsibility-weighted means.
    sk : ndarray
        The responsibility-weighted covariances about ``xk``, ``reg_covar`` added, shaped by the covariance type.
    covariance_type : str
    priors : Priors

    Returns
    -------
    VariationalParameters

    Raises
    ------
    ValueError
        When a resulting covariance is not positive definite (scikit-learn's message).
    """
    K = nk.shape[0]
    if priors.weight_concentration_prior_type == "dirichlet_process":
        # Beta(1 + N_k, gamma_0 + sum_{j > k} N_j) for each stick.
        weight_concentration = (1.0 + nk, priors.weight_concentration + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0)))
    else:
        weight_concentration = priors.weight_concentration + nk
    beta0, m0, nu0 = priors.mean_precision, priors.mean, priors.degrees_of_freedom
    mean_precision = beta0 + nk
    means = (beta0 * m0 + nk[:, None] * xk) / mean_precision[:, None]
    diff = xk - m0
    # N_k beta_0 / beta_k: how far the data's mean pulls away from the prior's.
    pull = nk * beta0 / mean_precision
    if covariance_type == "full":
        degrees_of_freedom = nu0 + nk
        scatter_of_means = np.einsum("ki,kj->kij", diff, diff)
        covariances = priors.covariance + nk[:, None, None] * sk + pull[:, None, None] * scatter_of_means
        covariances /= degrees_of_freedom[:, None, None]
    elif covariance_type == "tied":
        degrees_of_freedom = nu0 + nk.sum() / K
        covariances = priors.covariance + sk * nk.sum() / K + np.dot((pull / K) * diff.T, diff)
        covariances /= degrees_of_freedom
    elif covariance_type == "diag":
        degrees_of_freedom = nu0 + nk
        covariances = priors.covariance + nk[:, None] * (sk + (beta0 / mean_precision)[:, None] * diff**2)
        covariances /= degrees_of_freedom[:, None]
    else:
        degrees_of_freedom = nu0 + nk
        covariances = priors.covariance + nk * (sk + beta0 / mean_precision * np.mean(diff**2, axis=1))
        covariances /= degrees_of_freedom
    return VariationalParameters(
        covariance_type,
        priors.weight_concentration_prior_type,
        weight_concentration,
        mean_precision,
        means,
        degrees_of_freedom,
        covariances,
        precision_cholesky_from_covariances(covariances, covariance_type),
    )


def update(stats, covariance_type, reg_covar, priors):
    """The variational M-step: the posterior from one pass's statistics (about the previous means)."""
    _, xk, sk = estimate_moments(stats, covariance_type, reg_covar)
    return posterior(stats.nk + NK_EPS, xk, sk, covariance_type, priors)


def responsibility_entropy(stats, params):
    """``-sum_n w_n sum_k r_nk log r_nk`` of the pass that produced ``stats`` under ``params``, from the statistics.

    With ``a_nk = c_k - 1/2 (x_n - m_k)^T P_k (x_n - m_k)`` the kernels' log-probabilities and ``l_n`` their
    log-sum-exp, ``log r_nk = a_nk - l_n``, so the sum is ``sum_n w_n l_n - sum_k (N_k c_k - 1/2 tr(P_k S_k))``:
    the pass's log-likelihood and its second moments ``S_k``, taken about the ``m_k``. No per-point term is needed.
    """
    U = params.precisions_cholesky
    S = stats.s2
    if params.covariance_type == "full":
        quadratic = np.einsum("kil,kij,kjl->k", U, S, U)
    elif params.covariance_type == "tied":
        quadratic = np.einsum("il,ij,jl->", U, S, U)
    else:
        quadratic = (U**2 * S).sum(axis=-1) if params.covariance_type == "diag" else U**2 * S
    return stats.log_likelihood - (float(np.dot(stats.nk, params.log_const())) - 0.5 * float(np.sum(quadratic)))


def lower_bound(stats, params, new_params):
    """scikit-learn's ``_compute_lower_bound`` (constants dropped): the entropy of the responsibilities of the pass
    under ``params`` that gave ``stats``, and the normalisers of the posterior ``new_params`` computed from them."""
    D = new_params.n_features
    nu = new_params.degrees_of_freedom
    log_det = log_det_cholesky(new_params.precisions_cholesky, new_params.covariance_type, D) - 0.5 * D * np.log(nu)
    # The log-normaliser of the Wishart distributions, without its log(pi) term.
    log_wishart = -(nu * log_det + nu * D * 0.5 * math.log(2.0)
                    + np.sum(gammaln(0.5 * (nu - np.arange(D)[:, None])), axis=0))
    log_wishart = new_params.n_components * float(np.sum(log_wishart)) if new_params.covariance_type == "tied" \
        else float(np.sum(log_wishart))
    if new_params.weight_concentration_prior_type == "dirichlet_process":
        log_norm_weight = -float(np.sum(betaln(*new_params.weight_concentration)))
    else:
        concentration = new_params.weight_concentration
        log_norm_weight = float(gammaln(np.sum(concentration)) - np.sum(gammaln(concentration)))
    return (responsibility_entropy(stats, params) - log_wishart - log_norm_weight
            - 0.5 * D * float(np.sum(np.log(new_params.mean_precision))))


def step(priors, reg_covar, stats, params):
    """One variational iteration after its pass: ``(new_params, lower_bound)``."""
    new_params = update(stats, params.covariance_type, reg_covar, priors)
    return new_params, lower_bound(stats, params, new_params)
