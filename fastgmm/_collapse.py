"""The policy for a component whose weight collapses: re-seed it where the model fits the data worst.

EM cannot revive a component that explains (almost) no data: its responsibilities stay zero and it is carried,
useless, to the end of the fit; with ``reg_covar=0`` its empty covariance even makes the fit fail. When a pass
leaves a component with less than ``COLLAPSED_WEIGHT`` of the total sample weight, the M-step instead restarts it

- at the data point (of positive sample weight) with the lowest log-likelihood under the current model, distinct
  points for distinct components, ties to the first row;
- with the weighted mean covariance of the other components ('tied': the shared one);
- with weight ``1 / n_components``, the weights then renormalised;

and the EM run goes on; an iteration that re-seeds never counts as converged. The estimator warns
(:class:`ComponentCollapseWarning`) with the number of re-seedings. A component that merely gets small (a single
point, say) is left alone: the threshold is far below the weight of one row for any data set of fewer than 1e12
rows, so on data where no component empties fastgmm follows scikit-learn step for step.
"""

import numpy as np

from ._model import MixtureParameters, estimate_moments, precision_cholesky_from_covariances

# A component with N_k below this fraction of the total sample weight is collapsed.
COLLAPSED_WEIGHT = 1e-12


class ComponentCollapseWarning(UserWarning):
    """A mixture component lost (almost) all its weight during EM and was re-seeded; see docs/robustness.md."""


def collapsed_components(stats):
    """Indices of the components whose share of the total weight in ``stats`` is below ``COLLAPSED_WEIGHT``."""
    return np.flatnonzero(~(stats.nk >= COLLAPSED_WEIGHT * stats.total_weight))


def reseeded_m_step(stats, covariance_type, reg_covar, collapsed, seeds):
    """The M-step of ``stats`` with the ``collapsed`` components restarted at ``seeds``.

    Parameters
    ----------
    stats : Statistics
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
    collapsed : ndarray of int, shape (C,)
        Components to restart; at least one component is not among them.
    seeds : ndarray of shape (C, D)
        Their new means.

    Returns
    -------
    MixtureParameters
    """
    weights, means, cov = estimate_moments(stats, covariance_type, reg_covar)
    alive = np.ones(len(weights), dtype=bool)
    alive[collapsed] = False
    means[collapsed] = seeds
    if covariance_type != "tied":
        share = weights[alive] / weights[alive].sum()
        cov[collapsed] = np.tensordot(share, cov[alive], axes=1)
    weights[collapsed] = 1.0 / len(weights)
    weights /= weights.sum()
    return MixtureParameters(
        covariance_type, weights, means, cov, precision_cholesky_from_covariances(cov, covariance_type)
    )
