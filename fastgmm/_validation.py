"""Checks of user-given arrays beyond X itself, with scikit-learn's messages."""

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight

from ._model import covariance_shape


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
