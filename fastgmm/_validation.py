"""Checks of user input with scikit-learn's messages: the estimator's parameters and X (scikit-learn's own checks,
with a shortcut where they cost more than a small fit's kernels), and the arrays beside X."""

import functools

import numpy as np
from sklearn import get_config
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._parameters import covariance_shape, prior_covariance_shape


# Parameter sets that passed scikit-learn's constraints, by class and (name, type, value): checking them costs ~0.2
# ms (inspect.signature and a constraint object per parameter), a tenth of a default fit of 10,000 x 4 points.
_VALID_PARAMETERS = {}
_VALID_PARAMETERS_KEPT = 256


@functools.cache
def _parameter_names(cls):
    return tuple(cls._get_param_names())


def validate_params(estimator, validate):
    """``validate()`` (scikit-learn's ``_validate_params`` of ``estimator``) unless the same parameter values passed
    it before. Values that cannot be hashed (arrays, lists) are checked every time; the type is part of the key, so
    ``True`` does not pass for ``1``."""
    try:
        key = (type(estimator), *((name, type(value), value) for name in _parameter_names(type(estimator))
                                  for value in [getattr(estimator, name)]))
        hash(key)
    except Exception:  # unhashable (arrays, lists) or odd values: scikit-learn's check decides, and reports
        key = None
    if key is not None and key in _VALID_PARAMETERS:
        return
    validate()
    if key is not None:
        if len(_VALID_PARAMETERS) >= _VALID_PARAMETERS_KEPT:
            _VALID_PARAMETERS.clear()
        _VALID_PARAMETERS[key] = True


_FLOAT_TYPES = (np.float64, np.float32)


# Rows per piece of ``all_finite``: its boolean temporary stays at 1 MiB.
_FINITE_PIECE = 2**20


def all_finite(X):
    """Whether every entry of the 2-D float array ``X`` is finite: ``np.isfinite`` a piece of rows at a time, 3.5x
    faster than scikit-learn's finite float64 sum on 10,000 x 8 float32 rows just arrived (11 us, where the
    partial_fit step that follows takes 0.3 ms)."""
    rows = max(1, _FINITE_PIECE // max(1, X.shape[1]))
    return all(np.isfinite(X[start:start + rows]).all() for start in range(0, X.shape[0], rows))


def validate_X(estimator, X, *, reset, ensure_min_samples=1, allow_nan=False):
    """``validate_data(estimator, X, dtype=[np.float64, np.float32], ...)``: X as scikit-learn validates it, with
    ``n_features_in_`` and ``feature_names_in_`` recorded (``reset``) or checked. A plain 2-D float ndarray skips
    scikit-learn's machinery (~0.19 ms: tags, dataframe probes, its dispatch), since all it would do is the checks
    below; anything else, or any check failing, goes to ``validate_data`` for its behaviour and its messages.
    ``allow_nan``: NaN entries pass (missing values), infinities do not; X without NaN costs no more."""
    if (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype.type in _FLOAT_TYPES
        and X.shape[0] >= ensure_min_samples
        and X.shape[1] >= 1
        and (reset or ("feature_names_in_" not in estimator.__dict__
                       and estimator.__dict__.get("n_features_in_") == X.shape[1]))
        and (get_config()["assume_finite"] or all_finite(X))
    ):
        if reset:
            estimator.__dict__.pop("feature_names_in_", None)
            estimator.n_features_in_ = X.shape[1]
        return X
    return validate_data(estimator, X, dtype=list(_FLOAT_TYPES), reset=reset, ensure_min_samples=ensure_min_samples,
                         ensure_all_finite="allow-nan" if allow_nan else True)


def check_n_features(estimator, n_features):
    """scikit-learn's error when data to predict do not have the ``n_features_in_`` columns of the fit (for input
    that ``validate_data`` does not see: a dask array)."""
    if n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(estimator).__name__} is expecting {estimator.n_features_in_} "
            "features as input."
        )


def _check_shape(array, shape, name):
    if array.shape != shape:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}, but got {array.shape}")


def check_weights(weights, n_components):
    """Validated ``weights_init``: shape (K,), in [0, 1], summing to 1; float64."""
    weights = check_array(weights, dtype=[np.float64, np.float32], ensure_2d=False, input_name="weights_init")
    _check_shape(weights, (n_components,), "weights")
    # A fitted model's own weights_ are valid here: a weight may pass 1 by rounding (the initial weights of one
    # component are N_k / sum(w), two sums of the same weights in different orders).
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if np.any(weights < 0.0) or np.any(weights > 1.0 + atol):
        # scikit-learn's text word for word (its tests match it), minimum and maximum in this order included.
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{weights.min():.5f}, min value {weights.max():.5f}"
        )
    if not abs(1.0 - float(weights.sum())) <= atol:
        raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = {weights.sum():.5f}")
    return weights.astype(np.float64)


def check_means(means, n_components, n_features):
    """Validated ``means_init``: shape (K, D); float64."""
    means = check_array(means, dtype=[np.float64, np.float32], ensure_2d=False, input_name="means_init")
    _check_shape(means, (n_components, n_features), "means")
    return means.astype(np.float64)


def check_precisions(precisions, covariance_type, n_components, n_features):
    """Validated ``precisions_init``: shape by covariance type, symmetric positive definite; float64."""
    precisions = check_array(
        precisions,
        dtype=[np.float64, np.float32],
        ensure_2d=False,
        allow_nd=covariance_type == "full",
        input_name="precisions_init",
    ).astype(np.float64)
    _check_shape(
        precisions, covariance_shape(covariance_type, n_components, n_features), f"{covariance_type} precision"
    )
    if covariance_type in ("diag", "spherical"):
        if np.any(precisions <= 0.0):
            raise ValueError(f"'{covariance_type} precision' should be positive")
        return precisions
    for matrix in precisions if covariance_type == "full" else [precisions]:
        if not (np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0.0)):
            raise ValueError(f"'{covariance_type} precision' should be symmetric, positive-definite")
    return precisions


def check_mean_prior(mean_prior, n_features):
    """Validated ``mean_prior`` of the Bayesian mixture: shape (D,), finite; float64."""
    mean_prior = check_array(mean_prior, dtype=[np.float64, np.float32], ensure_2d=False, input_name="mean_prior")
    _check_shape(mean_prior, (n_features,), "means")
    return mean_prior.astype(np.float64)


def check_covariance_prior(covariance_prior, covariance_type, n_features):
    """Validated ``covariance_prior`` of the Bayesian mixture: (D, D) symmetric positive definite for 'full' and
    'tied', (D,) positive for 'diag', a positive number for 'spherical'; float64 (a float for 'spherical')."""
    if covariance_type == "spherical":
        value = np.asarray(covariance_prior)
        if value.ndim != 0 or not np.issubdtype(value.dtype, np.number) or not np.isfinite(value) or value <= 0:
            raise ValueError(
                f"The parameter 'covariance_prior' of a spherical mixture should be a positive number, got "
                f"{covariance_prior!r}"
            )
        return float(value)
    prior = check_array(covariance_prior, dtype=[np.float64, np.float32], ensure_2d=False,
                        input_name="covariance_prior").astype(np.float64)
    _check_shape(prior, prior_covariance_shape(covariance_type, n_features), f"{covariance_type} covariance_prior")
    if covariance_type == "diag":
        if np.any(prior <= 0.0):
            raise ValueError("'diag precision' should be positive")
        return prior
    if not (np.allclose(prior, prior.T) and np.all(np.linalg.eigvalsh(prior) > 0.0)):
        raise ValueError(f"'{covariance_type} precision' should be symmetric, positive-definite")
    return prior


def check_sample_weight(sample_weight, X):
    """Validated sample weights as float64 (N,), or None for unit weights.

    Negative, non-finite, all-zero and wrong-length weights are rejected.
    """
    if sample_weight is None:
        return None
    sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    # Checked here too: scikit-learn rejects all-zero weights itself only from 1.7 on.
    if not np.any(sample_weight > 0):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return sample_weight


def check_chunk_weight(weight, n_rows, index):
    """Validated sample weights of chunk ``index`` of a :class:`fastgmm.Chunks` stream: float64 (n_rows,), finite,
    non-negative (a chunk may be all zeros; the whole stream may not)."""
    weight = check_array(weight, dtype=np.float64, ensure_2d=False, input_name=f"sample_weight (chunk {index})")
    if weight.shape != (n_rows,):
        raise ValueError(f"sample_weight of chunk {index} has shape {weight.shape}, expected ({n_rows},)")
    if np.any(weight < 0):
        raise ValueError(f"Negative values in sample_weight of chunk {index}")
    return weight
