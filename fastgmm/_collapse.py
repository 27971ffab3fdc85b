"""The M-step of EM, and its policy for a component that collapses.

A component collapses in two ways, and either way EM goes on with it re-seeded:

- Its weight empties (less than ``COLLAPSED_WEIGHT`` of the total sample weight): it explains (almost) no data, and
  scikit-learn carries it, useless, to the end of the fit. It restarts at the data point (of positive sample weight)
  with the lowest log-likelihood under the current model (distinct points for distinct components, ties to the first
  row), with the weighted mean covariance of the healthy components and weight ``1 / n_components``, the weights
  then renormalised. An iteration that moves a component never counts as converged.
- Its covariance is not positive definite after ``reg_covar``: a component on a single point, on duplicated rows,
  or on data constant along a feature, with ``reg_covar=0``, where scikit-learn stops the fit with an error. It
  keeps its mean and weight and takes the weighted mean covariance of the healthy components. When no component is
  healthy (the data are degenerate along some direction for all of them), or the shared 'tied' covariance is the
  singular one, it takes the pooled covariance of the whole mixture instead, raised along its diagonal just enough
  to be positive definite.

The estimator warns (:class:`ComponentCollapseWarning`) with the number of re-seedings. A component that merely gets
small (a single point, say) with a positive definite covariance is left alone: the weight threshold is far below the
weight of one row for any data set of fewer than 1e12 rows, so on data where nothing collapses fastgmm follows
scikit-learn step for step.
"""

import numpy as np

from ._parameters import (
    NK_EPS, MixtureParameters, estimate_moments, precision_cholesky_from_covariances, try_precision_cholesky,
)

# A component with N_k below this fraction of the total sample weight is collapsed.
COLLAPSED_WEIGHT = 1e-12

# A variance below (_ROUNDING eps |mu|)^2 is zero computed with rounding errors: a component on one point, shifted
# by a mean that moved by an ulp, gets ~(eps |mu|)^2 instead of 0, and whether its Cholesky factorisation succeeds
# would depend on that noise (measured: a fit alternating between the two at every iteration).
_ROUNDING = 4 * np.finfo(np.float64).eps

# The first ridge tried on a singular pooled covariance, relative to its mean variance; raised tenfold until the
# Cholesky factorisation succeeds.
_RIDGE = 1e-6


# What a backend's fused EM iterations (``em_iterations``) need to hand an M-step back to ``m_step``'s policy.
FUSED_LIMITS = {"nk_eps": NK_EPS, "collapsed_weight": COLLAPSED_WEIGHT, "rounding": _ROUNDING}


class ComponentCollapseWarning(UserWarning):
    """A mixture component lost (almost) all its weight, or its covariance stopped being positive definite, during
    EM and was re-seeded; see docs/robustness.md."""


def m_step(stats, covariance_type, reg_covar, worst_explained):
    """The next parameters of EM from one pass's statistics, collapsed components re-seeded.

    Parameters
    ----------
    stats : Statistics
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
    worst_explained : callable
        ``worst_explained(count)`` returns the ``count`` data rows, shape (count, D), that the parameters which
        produced ``stats`` explain worst; called only when a component is to be moved.

    Returns
    -------
    params : MixtureParameters
    reseeded : int
        Number of components whose parameters were restarted (0 when nothing collapsed).
    moved : bool
        Whether a component was moved to a new mean: such parameters have not been through an E-step yet, so EM
        must not stop on them. A covariance merely replaced (a component kept in place) is a fixed rule, and EM may
        converge with it.
    """
    weights, means, cov = estimate_moments(stats, covariance_type, reg_covar)
    cholesky, singular = try_precision_cholesky(cov, covariance_type)
    singular |= _at_rounding_level(cholesky, cov, means, covariance_type)
    empty = ~(stats.nk >= COLLAPSED_WEIGHT * stats.total_weight)
    if not (empty.any() or singular.any()):
        return MixtureParameters(covariance_type, weights, means, cov, cholesky), 0, False

    K = len(weights)
    moved = empty
    # A singular covariance keeps its component in place: moving it to the worst-explained point would send an
    # isolated point's component straight back to that point (measured: re-seeded at every iteration, never
    # converging). Its new covariance makes it take in neighbouring points at the next E-step, if it has any.
    if covariance_type == "tied":
        # The shared covariance is singular only when every component is degenerate along some direction.
        stuck = ~empty if singular[0] else np.zeros(K, dtype=bool)
    else:
        stuck = singular & ~empty
    healthy = ~(moved | stuck)

    # Pooled over the M-step's own components, before any of them moves.
    pooled = _pooled_covariance(weights, means, cov, covariance_type) if stuck.any() or not healthy.any() else None
    if moved.any():
        means[moved] = worst_explained(int(moved.sum()))
    if covariance_type == "tied":
        if singular[0]:
            cov = pooled
    elif healthy.any():
        share = weights[healthy] / weights[healthy].sum()
        cov[moved | stuck] = np.tensordot(share, cov[healthy], axes=1)
    else:
        cov[moved | stuck] = pooled
    weights[moved] = 1.0 / K
    weights /= weights.sum()
    params = MixtureParameters(
        covariance_type, weights, means, cov, precision_cholesky_from_covariances(cov, covariance_type)
    )
    return params, int((moved | stuck).sum()), bool(moved.any())


def _at_rounding_level(cholesky, cov, means, covariance_type):
    """Which covariances have a variance, along some direction, at the rounding level of their means' magnitude."""
    floor = (_ROUNDING * np.abs(means).max(axis=1)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if covariance_type in ("full", "tied"):
            # cov = L L^T with U = L^-T: the conditional variances are L_ii^2 = 1 / U_ii^2.
            factors = cholesky if covariance_type == "full" else cholesky[None]
            smallest = 1.0 / np.max(np.diagonal(factors, axis1=1, axis2=2) ** 2, axis=1)
            floor = floor if covariance_type == "full" else floor.max(keepdims=True)
        else:
            smallest = cov if covariance_type == "spherical" else cov.min(axis=1)
    return smallest <= floor


def _positive_definite(covariance):
    """Whether one covariance (a matrix, a diagonal or a variance) is positive definite."""
    if np.ndim(covariance) == 2:
        return not try_precision_cholesky(covariance, "tied")[1][0]
    return bool(np.all((covariance > 0) & np.isfinite(covariance)))


def _pooled_covariance(weights, means, cov, covariance_type):
    """The covariance of the whole mixture (within- plus between-component spread) in the shape of one component's
    ('tied': the shared one's), with a ridge on its diagonal where needed to make it positive definite."""
    centre = weights @ means
    offsets = means - centre
    if covariance_type in ("full", "tied"):
        within = cov if covariance_type == "tied" else np.tensordot(weights, cov, axes=1)
        pooled = within + np.einsum("k,ki,kj->ij", weights, offsets, offsets)
        pooled = 0.5 * (pooled + pooled.T)  # exactly symmetric, whatever order einsum added in
        ridge_shape = np.eye(len(pooled))
        diagonal = np.diagonal(pooled)
    elif covariance_type == "diag":
        pooled = weights @ cov + weights @ offsets**2
        diagonal, ridge_shape = pooled, np.ones_like(pooled)
    else:
        pooled = float(weights @ cov + weights @ np.mean(offsets**2, axis=1))
        ridge_shape, diagonal = 1.0, np.array([pooled])
    scale = float(np.mean(np.clip(diagonal, 0.0, None)))
    ridge = _RIDGE * (scale if scale > 0 else 1.0)
    candidate = pooled
    for _ in range(40):
        if _positive_definite(candidate):
            return candidate
        candidate = pooled + ridge * ridge_shape
        ridge *= 10.0
    raise AssertionError("a ridge of 1e34 times the mean variance left the pooled covariance singular")
