"""Initial parameters: the methods of scikit-learn's ``init_params``, drawing the same random numbers from the same
``random_state``, so that both libraries start from the same point.

The initial responsibilities are consumed block by block; no N x K matrix is held. Parameters come from
responsibility statistics about points near each component's mean, so that the covariances suffer no cancellation
for data far from the origin: k-means' centres or the seed points in one pass; for the other starts, a first pass
about an arbitrary data point gives the means and a second one about those means the covariances.
"""

import contextvars
from contextlib import contextmanager

import numpy as np

from ._kmeans import doubles_drawn, kmeans, kmeans_plusplus
from ._random import state_fingerprint
from ._ward import ward_labels
from ._parameters import (
    NK_EPS,
    MixtureParameters,
    Statistics,
    covariances_from_precision_cholesky,
    estimate_moments,
    precision_cholesky_from_covariances,
    precision_cholesky_from_precisions,
)
from .sources.blocks import statistics_block_size


def _random_responsibilities(random_state, n_components, dtype):
    """``resp_of_block`` drawing scikit-learn's ``uniform(size=(n_samples, K))`` row block by row block.

    The legacy generator draws the doubles in C order, so drawing in consecutive blocks yields the same numbers as
    one draw of the whole matrix.
    """

    def resp_of_block(rows, n_rows):
        resp = np.asarray(random_state.uniform(size=(n_rows, n_components)), dtype=dtype)
        resp /= resp.sum(axis=1)[:, None]
        return resp

    return resp_of_block


# Hard initial labels depend on the rows, the weights, K, the method, the backend and the generator's state only,
# not on the covariance type: select_model, which fits every covariance type from the same seed, computes them once
# per K (k-means was about half of a small fit's time).
_shared_labels = contextvars.ContextVar("fastgmm_shared_labels", default=None)


@contextmanager
def shared_initial_labels():
    """Within the block, fits from the same data, K, method and generator state reuse one set of initial labels and
    leave the generator as drawing them would."""
    token = _shared_labels.set({})
    try:
        yield
    finally:
        _shared_labels.reset(token)


def _hard_labels(source, backend, n_components, init_params, random_state):
    """``(labels, centres)`` of the hard initialisations, drawn as scikit-learn draws them (computed once inside
    ``shared_initial_labels``): labels -1 for none, and points near each labelled group's mean, or None."""
    memo = _shared_labels.get()
    if memo is None:
        return _draw_hard_labels(source, backend, n_components, init_params, random_state, None)
    before = state_fingerprint(random_state)
    memo_key = (id(source.X), id(source.sample_weight), n_components, init_params, backend.NAME, before)
    entry = memo.get(memo_key)
    # The entry holds the arrays themselves, so their ids cannot be reused by other arrays while it lives.
    if entry is not None and entry[0] is source.X and entry[1] is source.sample_weight:
        drawn, advance = entry[2:]
        # Leave the generator as the draws did: k-means draws only doubles, which are cheaper to draw again than
        # a saved state is to restore (~70 us here).
        if isinstance(advance, int):
            random_state.random_sample(advance)
        else:
            random_state.set_state(advance)
        return drawn
    drawn = _draw_hard_labels(source, backend, n_components, init_params, random_state, memo)
    if init_params in ("kmeans", "k-means++"):
        advance = doubles_drawn(n_components)
    else:  # Ward draws nothing from fewer rows than its sample
        advance = 0 if state_fingerprint(random_state) == before else random_state.get_state()
    memo[memo_key] = (source.X, source.sample_weight, drawn, advance)
    return drawn


def _draw_hard_labels(source, backend, n_components, init_params, random_state, memo):
    weights = source.sample_weight
    n_samples = source.n_samples
    if init_params == "kmeans":
        return kmeans(source, backend, n_components, random_state)
    if init_params == "ward":
        return ward_labels(source, n_components, random_state, memo), None
    if init_params == "k-means++":
        indices = kmeans_plusplus(source, backend, n_components, random_state)
    else:  # random_from_data
        p = None
        if weights is not None:
            if np.count_nonzero(weights) < n_components:
                raise ValueError(
                    "init_params='random_from_data' needs at least n_components samples with non-zero "
                    f"sample_weight, got {np.count_nonzero(weights)} for n_components={n_components}"
                )
            p = weights / weights.sum()
        indices = random_state.choice(n_samples, size=n_components, replace=False, p=p)
    labels = np.full(n_samples, -1, dtype=np.int32)
    labels[indices] = np.arange(n_components)
    # Each group is its seed point: about itself its moments are exact.
    return labels, np.asarray(source.X[indices], dtype=np.float64)


def initial_parameters(
    source,
    backend,
    *,
    n_components,
    covariance_type,
    reg_covar,
    init_params,
    random_state,
    weights_init=None,
    means_init=None,
    precisions_init=None,
):
    """Starting parameters for EM, identical to scikit-learn's for the same arguments.

    Parameters
    ----------
    source : data source
    backend : kernel module
        Computes the k-means steps and the statistics of hard initial assignments.
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    reg_covar : float
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'ward'}
    random_state : numpy.random.RandomState
        Drawn from exactly as scikit-learn draws.
    weights_init, means_init, precisions_init : validated float64 arrays or None
        Override the corresponding part of the initialisation.

    Returns
    -------
    MixtureParameters
    """
    weights = means = covariances = None
    if weights_init is None or means_init is None or precisions_init is None:
        weights, means, covariances = _moments(
            source, backend, n_components, covariance_type, reg_covar, init_params, random_state
        )
    if weights_init is not None:
        weights = weights_init
    if means_init is not None:
        means = means_init
    if precisions_init is None:
        precisions_cholesky = precision_cholesky_from_covariances(covariances, covariance_type)
    else:
        precisions_cholesky = precision_cholesky_from_precisions(precisions_init, covariance_type)
        covariances = covariances_from_precision_cholesky(precisions_cholesky, covariance_type)
    return MixtureParameters(covariance_type, weights, means, covariances, precisions_cholesky)


def _moments(source, backend, n_components, covariance_type, reg_covar, init_params, random_state):
    """(weights, means, covariances) of the initial responsibilities, as scikit-learn's ``_initialize``."""
    stats = initial_statistics(source, backend, n_components=n_components, covariance_type=covariance_type,
                               init_params=init_params, random_state=random_state)
    # scikit-learn's initial weights are N_k / n_samples, not renormalised: keep them so.
    return estimate_moments(stats, covariance_type, reg_covar, weight_normaliser=stats.total_weight)


def initial_statistics(source, backend, *, n_components, covariance_type, init_params, random_state):
    """The statistics of the initial responsibilities of ``init_params``, drawn as scikit-learn draws them.

    Returns
    -------
    Statistics
        Moments about points near each component's mean (no log-likelihood: 0).
    """
    first_row = np.tile(np.asarray(source.X[0], dtype=np.float64), (n_components, 1))
    total_weight = source.n_samples if source.sample_weight is None else float(source.sample_weight.sum())
    block_size = statistics_block_size(source.n_samples)
    if init_params == "random":
        # Both passes must see the same draws, while the caller's generator advances by one draw only.
        replay = np.random.RandomState()
        replay.set_state(random_state.get_state())
        streams = iter([random_state, replay])
        centres = None

        def moments_about(shift):
            resp_of_block = _random_responsibilities(next(streams), n_components, source.X.dtype)
            return backend.responsibility_moments(
                source.X, source.sample_weight, resp_of_block, shift, covariance_type, block_size
            )

    else:
        labels, centres = _hard_labels(source, backend, n_components, init_params, random_state)

        def moments_about(shift):
            return backend.label_statistics(source.X, source.sample_weight, labels, shift, covariance_type, block_size)

    if centres is not None:
        # About points near the groups' means (k-means' centres, the seed points) one pass is enough.
        means = centres
    else:
        # First about an arbitrary data point for the means, then about those means for the covariances.
        nk, s1, _ = moments_about(first_row)
        means = first_row + s1 / (nk + NK_EPS)[:, None]
    nk, s1, s2 = moments_about(means)
    return Statistics(0.0, total_weight, nk, s1, s2, means)
