"""Naive oracles and data makers shared by the tests: slow, obvious, and independent of fastgmm's kernels."""

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from fastgmm._parameters import MixtureParameters, precision_cholesky_from_covariances


def make_blobs(n_samples=600, n_features=3, n_components=3, seed=0, offset=0.0):
    """Gaussian blobs with distinct anisotropic covariances, float64, optionally far from the origin."""
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-6, 6, size=(n_components, n_features))
    labels = rng.randint(n_components, size=n_samples)
    mixing = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features) + np.eye(n_features)
    noise = rng.standard_normal((n_samples, n_features))
    return centres[labels] + np.einsum("nd,nde->ne", noise, mixing[labels]) + offset


def random_params(covariance_type, n_components, n_features, seed=0, offset=0.0):
    """A valid random mixture."""
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.uniform(-5, 5, size=(n_components, n_features)) + offset
    A = rng.normal(size=(n_components, n_features, n_features))
    full = A @ A.transpose(0, 2, 1) / n_features + 0.5 * np.eye(n_features)
    covariances = {
        "full": full,
        "tied": full[0],
        "diag": rng.uniform(0.5, 2.0, size=(n_components, n_features)),
        "spherical": rng.uniform(0.5, 2.0, size=n_components),
    }[covariance_type]
    return MixtureParameters(
        covariance_type, weights, means, covariances, precision_cholesky_from_covariances(covariances, covariance_type)
    )


def dense_covariances(params):
    """(K, D, D) covariance matrices of any covariance type."""
    K, D = params.means.shape
    cov = params.covariances
    if params.covariance_type == "full":
        return cov
    if params.covariance_type == "tied":
        return np.repeat(cov[None], K, axis=0)
    if params.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(D) for c in cov])


def oracle_weighted_log_prob(X, params):
    """log(pi_k) + scipy's multivariate normal log-density: (N, K)."""
    return np.stack(
        [
            np.log(w) + multivariate_normal(mean, cov).logpdf(X)
            for w, mean, cov in zip(params.weights, params.means, dense_covariances(params))
        ],
        axis=1,
    ).reshape(X.shape[0], -1)


def oracle_statistics(X, sample_weight, params):
    """Log-likelihood and shifted statistics from the whole N x K responsibility matrix."""
    a = oracle_weighted_log_prob(X, params)
    log_p = logsumexp(a, axis=1)
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    wr = np.exp(a - log_p[:, None]) * w[:, None]
    diffs = X[:, None, :] - params.means[None]  # (N, K, D)
    nk = wr.sum(axis=0)
    s1 = np.einsum("nk,nkd->kd", wr, diffs)
    s2_full = np.einsum("nk,nki,nkj->kij", wr, diffs, diffs)
    s2 = {
        "full": s2_full,
        "tied": s2_full.sum(axis=0),
        "diag": np.einsum("kii->ki", s2_full),
        "spherical": np.einsum("kii->k", s2_full),
    }[params.covariance_type]
    return w @ log_p, w.sum(), nk, s1, s2


def sklearn_selection(X, n_components, criterion, covariance_types=("full", "tied", "diag", "spherical")):
    """``{(k, covariance_type): criterion}`` of scikit-learn's GaussianMixture fitted with ``random_state=0`` for
    every pair: the loop ``fastgmm.select_model`` stands in for."""
    import warnings

    from sklearn.mixture import GaussianMixture

    values = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in n_components:
            for cov in covariance_types:
                model = GaussianMixture(k, covariance_type=cov, random_state=0).fit(X)
                values[(k, cov)] = getattr(model, criterion)(X)
    return values


def naive_missing_values_em(X, sample_weight, weights, means, covariances, covariance_type, reg_covar, n_iter):
    """EM with NaN entries marginalised, written out row by row on raw moments (Ghahramani and Jordan 1994):
    each row's observed log-density by scipy, its missing entries' conditional mean and covariance by dense
    solves, then the M-step of ``covariance_type``. ``covariances`` are dense (K, D, D). Returns the weights, means,
    dense covariances after ``n_iter`` iterations and the mean observed log-likelihood of each iteration."""
    from scipy.stats import multivariate_normal

    n, D = X.shape
    K = len(weights)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    bounds = []
    for _ in range(n_iter):
        N, S1, S2, ll = np.zeros(K), np.zeros((K, D)), np.zeros((K, D, D)), 0.0
        for x, weight in zip(X, w):
            o = ~np.isnan(x)
            m = ~o
            log_p = np.empty(K)
            filled, extra = [], []
            for k in range(K):
                S = covariances[k]
                log_p[k] = np.log(weights[k]) + multivariate_normal(means[k][o], S[np.ix_(o, o)]).logpdf(x[o])
                x_hat = x.copy()
                x_hat[m] = means[k][m] + S[np.ix_(m, o)] @ np.linalg.solve(S[np.ix_(o, o)], x[o] - means[k][o])
                C = np.zeros((D, D))
                C[np.ix_(m, m)] = S[np.ix_(m, m)] - S[np.ix_(m, o)] @ np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)])
                filled.append(x_hat)
                extra.append(C)
            top = log_p.max()
            total = top + np.log(np.exp(log_p - top).sum())
            ll += weight * total
            r = weight * np.exp(log_p - total)
            for k in range(K):
                N[k] += r[k]
                S1[k] += r[k] * filled[k]
                S2[k] += r[k] * (np.outer(filled[k], filled[k]) + extra[k])
        bounds.append(ll / w.sum())
        nk = N + 10 * np.finfo(float).eps
        weights = nk / nk.sum()
        means = S1 / nk[:, None]
        scatter = S2 / nk[:, None, None] - np.einsum("ki,kj->kij", means, means)
        if covariance_type == "full":
            covariances = scatter + reg_covar * np.eye(D)
        elif covariance_type == "tied":
            tied = np.einsum("k,kij->ij", nk, scatter) / nk.sum() + reg_covar * np.eye(D)
            covariances = np.repeat(tied[None], K, axis=0)
        elif covariance_type == "diag":
            covariances = np.stack([np.diag(np.diagonal(c) + reg_covar) for c in scatter])
        else:
            covariances = np.stack([np.eye(D) * (np.trace(c) / D + reg_covar) for c in scatter])
    return weights, means, covariances, bounds
