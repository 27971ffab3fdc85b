"""EM with missing entries (NaN) marginalised, not dropped (Ghahramani and Jordan 1994): the maths of one row block.

A row's missing entries ``m`` are latent. Its E-step uses the observed ones ``o`` only,
``log N(x_o | mu_o, Sigma_oo)``; its M-step statistics use, per component, the conditional expectation
``x_m = mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o)`` in the first and second moments and the conditional covariance
``Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om`` added to the second ones. Rows sharing a missingness pattern share one
Cholesky factorisation of ``Sigma_oo`` per component. Everything is taken about the component means (the shift of
fastgmm's statistics), so the conditional offsets ``x_m - mu_m = (L^-1 Sigma_om)^T L^-1 (x_o - mu_o)`` never
subtract large numbers.

These functions are the reference (NumPy, a pattern at a time); ``fastgmm.sources.with_missing`` sends complete rows
to the compiled kernels and only the rows with holes here.
"""

import math

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.special import logsumexp

from ._parameters import Statistics


def dense_covariances(params):
    """Each component's covariance as a (K, D, D) matrix, whatever the covariance type."""
    K, D = params.means.shape
    cov = np.asarray(params.covariances, dtype=np.float64)
    if params.covariance_type == "full":
        return cov
    if params.covariance_type == "tied":
        return np.broadcast_to(cov, (K, D, D))
    if params.covariance_type == "diag":
        return cov[:, :, None] * np.eye(D)
    return cov[:, None, None] * np.eye(D)


def group_patterns(missing):
    """The rows of a (n, D) boolean ``missing`` mask grouped by missingness pattern.

    Returns
    -------
    rows : int64 ndarray of shape (n,)
        Row numbers, pattern after pattern (patterns in the order of their bit codes, rows increasing within each).
    starts : int64 ndarray of shape (P + 1,)
        Where each pattern's rows start in ``rows``, then ``n``.
    observed : bool ndarray of shape (P, D)
        Each pattern's observed columns.
    """
    n, D = missing.shape
    if D <= 62:
        codes = missing.astype(np.int64) @ (np.int64(1) << np.arange(D, dtype=np.int64))
    else:
        codes = np.unique(missing, axis=0, return_inverse=True)[1].ravel()
    rows = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(codes[rows])) + 1, [n]]).astype(np.int64)
    return rows, starts, ~missing[rows[starts[:-1]]]


def patterns(missing):
    """Yield ``(rows, observed)`` for each missingness pattern of a (n, D) boolean ``missing`` mask: the row
    indices that share it (increasing) and its observed columns (``group_patterns``' order)."""
    rows, starts, observed = group_patterns(missing)
    for p in range(len(starts) - 1):
        yield rows[starts[p]:starts[p + 1]], np.flatnonzero(observed[p])


def in_layout(log_likelihood, total_weight, nk, s1, s2, shift, covariance_type):
    """``Statistics`` from dense (K, D, D) second moments, in ``covariance_type``'s layout."""
    if covariance_type == "tied":
        s2 = s2.sum(axis=0)
    elif covariance_type == "diag":
        s2 = np.diagonal(s2, axis1=1, axis2=2).copy()
    elif covariance_type == "spherical":
        s2 = np.trace(s2, axis1=1, axis2=2)
    return Statistics(float(log_likelihood), float(total_weight), nk, s1, s2, shift)


class _PatternTerms:
    """One component's factorisation for one pattern: ``L`` the Cholesky factor of ``Sigma_oo``, ``B`` =
    ``L^-1 Sigma_om`` and the conditional covariance ``C`` = ``Sigma_mm - B^T B`` of the missing block."""

    def __init__(self, sigma, observed, missing):
        self.L = cholesky(sigma[np.ix_(observed, observed)], lower=True)
        self.half_log_det = np.log(np.diagonal(self.L)).sum()
        self.B = solve_triangular(self.L, sigma[np.ix_(observed, missing)], lower=True)
        self.C = sigma[np.ix_(missing, missing)] - self.B.T @ self.B


def _pattern_log_prob_and_offsets(X, params, sigmas, rows, observed):
    """For the rows of one pattern: their weighted observed log-probabilities (n, K), and per component the offsets
    ``E[x | x_o, k] - mu_k`` (n, D) and the conditional covariance of the missing block."""
    K, D = params.means.shape
    missing = np.setdiff1d(np.arange(D), observed)
    log_weights = np.log(params.weights)
    x_o = X[np.ix_(rows, observed)].astype(np.float64)
    log_prob = np.empty((len(rows), K))
    offsets, conditional = [], []
    for k in range(K):
        terms = _PatternTerms(sigmas[k], observed, missing)
        z = solve_triangular(terms.L, (x_o - params.means[k, observed]).T, lower=True)
        log_prob[:, k] = log_weights[k] - 0.5 * len(observed) * math.log(2 * math.pi) - terms.half_log_det \
            - 0.5 * np.einsum("ij,ij->j", z, z)
        offset = np.empty((len(rows), D))
        offset[:, observed] = x_o - params.means[k, observed]
        offset[:, missing] = (terms.B.T @ z).T
        offsets.append(offset)
        conditional.append((missing, terms.C))
    return log_prob, offsets, conditional


def _check_observed(observed):
    if len(observed) == 0:
        raise ValueError("X has a row with no observed value (every entry NaN): it has no likelihood under "
                         "missing_values='marginalize'; drop it")


def observed_log_prob(X, params):
    """``log(pi_k) + log N(x_o | mu_o, Sigma_oo)`` of each row's observed entries; shape (n, K)."""
    sigmas = dense_covariances(params)
    out = np.empty((X.shape[0], params.n_components))
    for rows, observed in patterns(np.isnan(X)):
        _check_observed(observed)
        out[rows] = _pattern_log_prob_and_offsets(X, params, sigmas, rows, observed)[0]
    return out


def observed_statistics(X, sample_weight, params):
    """The one-pass statistics of rows with missing entries (``Statistics``, about ``params.means``): the
    log-likelihood of the observed entries, and the expected moments of the complete rows given them."""
    K, D = params.means.shape
    sigmas = dense_covariances(params)
    w_all = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    ll, nk, s1 = 0.0, np.zeros(K), np.zeros((K, D))
    s2 = np.zeros((K, D, D))
    for rows, observed in patterns(np.isnan(X)):
        _check_observed(observed)
        log_prob, offsets, conditional = _pattern_log_prob_and_offsets(X, params, sigmas, rows, observed)
        w = w_all[rows]
        positive = w > 0  # a zero-weight row adds nothing, even where its log-likelihood is -inf
        norm = logsumexp(log_prob, axis=1)
        ll += float(w[positive] @ norm[positive])
        resp = np.exp(log_prob - norm[:, None]) * w[:, None]
        resp[~positive] = 0.0
        for k in range(K):
            r = resp[:, k]
            nk[k] += r.sum()
            s1[k] += r @ offsets[k]
            s2[k] += offsets[k].T @ (r[:, None] * offsets[k])
            missing, C = conditional[k]
            s2[k][np.ix_(missing, missing)] += r.sum() * C
    return in_layout(ll, w_all.sum(), nk, s1, s2, params.means, params.covariance_type)


def conditional_expectation(X, params):
    """X with each missing entry replaced by its expectation given the row's observed entries under the mixture,
    ``sum_k p(k | x_o) E[x_m | x_o, k]``; float64, shape of X."""
    sigmas = dense_covariances(params)
    filled = np.array(X, dtype=np.float64)
    for rows, observed in patterns(np.isnan(X)):
        if len(observed) == X.shape[1]:
            continue
        _check_observed(observed)
        log_prob, offsets, _ = _pattern_log_prob_and_offsets(X, params, sigmas, rows, observed)
        resp = np.exp(log_prob - logsumexp(log_prob, axis=1)[:, None])
        missing = np.setdiff1d(np.arange(X.shape[1]), observed)
        expected = sum(resp[:, [k]] * (params.means[k, missing] + offsets[k][:, missing])
                       for k in range(params.n_components))
        filled[np.ix_(rows, missing)] = expected
    return filled
