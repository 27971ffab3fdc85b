"""Online EM (Cappé and Moulines 2009; the stepwise EM of Liang and Klein 2009): running sufficient statistics that
each batch moves towards its own, ``s <- (1 - eta) s + eta stats(batch) / weight(batch)``, and the M-step from them.

The statistics stay shifted, as everywhere in fastgmm: the running ones are kept about their own means (so S1 = 0),
and two sets are combined by the parallel-variance formula (Chan, Golub and LeVeque), which adds the scatter of the
means instead of subtracting raw moments, so batches far from the origin lose nothing.
"""

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np

from ._collapse import FUSED_LIMITS, ComponentCollapseWarning, m_step
from ._parameters import NK_EPS, MixtureParameters, Statistics


@dataclass(frozen=True)
class Schedule:
    """The step sizes of online EM: ``(learning_offset + t) ** -learning_decay`` after t batches, or ``constant``."""

    learning_decay: float
    learning_offset: float
    constant: object = None

    def eta(self, steps):
        return step_size(steps, self.learning_decay, self.learning_offset, self.constant)


def online_step(source, backend, params, running, steps, covariance_type, reg_covar, schedule):
    """One online-EM step on the batch ``source`` from ``params`` and the running statistics after ``steps``
    batches (None before the first).

    Returns
    -------
    new_params : MixtureParameters
    running : Statistics
        The running statistics after this batch (``recentred``); ``params`` and ``running`` unchanged for a batch
        without weight.
    stats : Statistics
        The batch's own statistics under ``params`` (its log-likelihood is the step's lower bound).
    reseeded : int
        Components the M-step re-seeded at the batch's worst-explained rows.
    """
    eta = schedule.eta(steps)
    fused = getattr(source, "online_step", None)
    run = None if fused is None else fused(backend, params, running=running, eta=eta, reg_covar=reg_covar,
                                            **FUSED_LIMITS)
    if run is None:
        stats = source.statistics(backend, params)
        if not stats.total_weight > 0:  # a batch of zero-weight rows (mini-batch EM) carries nothing: no step
            return params, running, stats, 0
        batch = recentred(stats, covariance_type)
        running = batch if running is None else combine(running, batch, eta, covariance_type)
    else:
        # The same pass, mixing and M-step in one compiled call; it leaves to the policy below an M-step that
        # needs it.
        stats = Statistics(*run["statistics"])
        if run["running"] is None:
            return params, running, stats, 0
        running = Statistics(*run["running"])
        if run["params"] is not None:
            return MixtureParameters(covariance_type, *run["params"]), running, stats, 0
    new_params, reseeded, _ = m_step(running, covariance_type, reg_covar, partial(source.worst_explained, backend,
                                                                                 params))
    return new_params, running, stats, reseeded


class MiniBatchEpochs:
    """What ``run_em`` iterates for mini-batch EM: one "pass" is an epoch, an online-EM step on every batch of
    ``batch_size`` consecutive rows in turn, the running statistics carried from batch to batch and from epoch to
    epoch. Its statistics are an ``Epoch``; ``epoch_update`` hands ``run_em`` the parameters after the epoch and
    the epoch's lower bound, the weighted mean of its batches' log-likelihoods (each under the parameters its step
    started from)."""

    def __init__(self, source, batch_size, covariance_type, reg_covar, schedule):
        self.source = source
        self.batch_size = batch_size
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.schedule = schedule
        self.running = None
        self.steps = 0

    def statistics(self, backend, params):
        log_likelihood = weight = 0.0
        reseeded = 0
        for batch in self.source.batches(self.batch_size):
            params, self.running, stats, count = online_step(batch, backend, params, self.running, self.steps,
                                                             self.covariance_type, self.reg_covar, self.schedule)
            self.steps += 1
            log_likelihood += stats.log_likelihood
            weight += stats.total_weight
            reseeded += count
        if reseeded:
            warnings.warn(f"{reseeded} collapsed component(s) re-seeded in an epoch of mini-batch EM at the batches' "
                          "worst-explained rows (see docs/robustness.md in the fastgmm repository)",
                          ComponentCollapseWarning)
        return Epoch(params, log_likelihood / weight)


@dataclass(frozen=True)
class Epoch:
    params: object
    mean_log_likelihood: float


def epoch_update(epoch, params):
    """``run_em``'s update for ``MiniBatchEpochs``: the epoch's parameters and lower bound."""
    return epoch.params, epoch.mean_log_likelihood


def step_size(steps, learning_decay, learning_offset, constant=None):
    """The weight ``eta`` of the next batch after ``steps`` batches: ``(learning_offset + steps) ** -learning_decay``,
    or ``constant`` when given; 1 for the first batch (nothing to keep)."""
    if steps == 0:
        return 1.0
    if constant is not None:
        return float(constant)
    return float((learning_offset + steps) ** -learning_decay)


def statistics_of(params, reg_covar):
    """The running statistics a fitted model stands for (``recentred``): those its own M-step inverts, weights as
    ``nk``, means as the shift and ``N_k (Sigma_k - reg_covar I)`` as the second moments, so that ``partial_fit``
    after ``fit`` continues from the fitted model instead of from its first batch alone."""
    nk = params.weights
    D = params.n_features
    scatter = params.covariances - reg_covar * (np.eye(D) if params.covariance_type in ("full", "tied") else 1.0)
    if params.covariance_type == "full":
        s2 = nk[:, None, None] * scatter
    elif params.covariance_type == "tied":
        s2 = scatter * nk.sum()
    elif params.covariance_type == "diag":
        s2 = nk[:, None] * scatter
    else:
        s2 = nk * D * scatter
    return Statistics(0.0, 1.0, nk, np.zeros_like(params.means), s2, params.means)


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
