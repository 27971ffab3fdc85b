"""Online EM (Cappé and Moulines 2009; the stepwise EM of Liang and Klein 2009): running sufficient statistics that
each batch moves towards its own, ``s <- (1 - eta) s + eta stats(batch) / weight(batch)``, and the M-step from them.

The statistics stay shifted, as everywhere in fastgmm: the running ones are kept about their own means (so S1 = 0),
and two sets are combined by the parallel-variance formula (Chan, Golub and LeVeque), which adds the scatter of the
means instead of subtracting raw moments, so batches far from the origin lose nothing.
"""

import numpy as np

from ._parameters import NK_EPS, Statistics


def step_size(steps, learning_decay, learning_offset, constant=None):
    """The weight ``eta`` of the next batch after ``steps`` batches: ``(learning_offset + steps) ** -learning_decay``,
    or ``constant`` when given; 1 for the first batch (nothing to keep)."""
    if steps == 0:
        return 1.0
    if constant is not None:
        return float(constant)
    return float((learning_offset + steps) ** -learning_decay)


def recentred(stats, covariance_type):
    """``stats`` per unit of weight and about their own means: ``Statistics`` whose ``shift`` is each component's
    mean, ``s1`` zero, ``nk`` summing to 1 (``log_likelihood`` the mean log-likelihood)."""
    W = stats.total_weight
    nk = stats.nk / W
    delta = (stats.s1 / W) / (nk + NK_EPS)[:, None]
    s2 = stats.s2 / W - _scatter_of(nk, delta, covariance_type)
    return Statistics(stats.mean_log_likelihood, 1.0, nk, np.zeros_like(delta), s2, stats.shift + delta)


def combine(kept, batch, eta, covariance_type):
    """``(1 - eta) kept + eta batch``, both ``recentred``: the mixed statistics about their mixed means."""
    a, b = (1.0 - eta) * kept.nk, eta * batch.nk
    n = a + b
    # The mixed mean, from a and b's means; each side's means move to it by its own fraction of the weight.
    share = b / np.where(n > 0, n, 1.0)
    gap = batch.shift - kept.shift
    means = kept.shift + share[:, None] * gap
    # Chan's update: the scatters add, plus the scatter of the two means, a b / n (mu_b - mu_a)(...)^T.
    between = a * share
    s2 = (1.0 - eta) * kept.s2 + eta * batch.s2 + _scatter_of(between, gap, covariance_type)
    return Statistics((1.0 - eta) * kept.log_likelihood + eta * batch.log_likelihood, 1.0, n, np.zeros_like(means),
                      s2, means)


def _scatter_of(weight, delta, covariance_type):
    """``sum_k weight_k delta_k delta_k^T`` in the layout of ``covariance_type``'s S2."""
    if covariance_type == "full":
        return weight[:, None, None] * np.einsum("ki,kj->kij", delta, delta)
    if covariance_type == "tied":
        return np.einsum("k,ki,kj->ij", weight, delta, delta)
    if covariance_type == "diag":
        return weight[:, None] * delta**2
    return weight * np.einsum("ki,ki->k", delta, delta)
