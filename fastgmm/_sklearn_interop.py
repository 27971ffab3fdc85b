"""Conversions between fastgmm's and scikit-learn's fitted ``GaussianMixture``, for the tools that take only the
latter (skl2onnx, model registries, code that checks ``isinstance``)."""

import numpy as np
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils.validation import check_is_fitted

from ._backends import get_backend
from ._parameters import MixtureParameters

# Fitted attributes both estimators have, beyond the parameter arrays.
_SCALARS = ("converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_")
_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def _shared_parameters(source, target_class):
    """``source``'s constructor parameters that ``target_class`` takes too, arrays copied."""
    names = set(target_class().get_params(deep=False))
    return {
        name: (np.array(value) if isinstance(value, np.ndarray) else value)
        for name, value in source.get_params(deep=False).items()
        if name in names
    }


def to_sklearn(estimator):
    """A fitted ``sklearn.mixture.GaussianMixture`` equal to a fitted fastgmm estimator (see its ``to_sklearn``)."""
    check_is_fitted(estimator)
    model = SklearnGaussianMixture(**_shared_parameters(estimator, SklearnGaussianMixture))
    for name in _ARRAYS:
        setattr(model, name, np.array(getattr(estimator, name)))
    for name in _SCALARS:
        value = getattr(estimator, name)
        setattr(model, name, list(value) if isinstance(value, list) else value)
    if hasattr(estimator, "feature_names_in_"):
        model.feature_names_in_ = np.array(estimator.feature_names_in_)
    return model


def from_sklearn(cls, model, **params):
    """A fitted ``cls`` (fastgmm's estimator) equal to a fitted scikit-learn ``GaussianMixture``."""
    if not isinstance(model, SklearnGaussianMixture):
        raise TypeError(f"from_sklearn expects a fitted sklearn.mixture.GaussianMixture, got {type(model).__name__}")
    check_is_fitted(model)
    estimator = cls(**{**_shared_parameters(model, cls), **params})
    estimator._validate_params()
    dtype = np.asarray(model.means_).dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"the scikit-learn model's parameters are {dtype}, not float32 or float64")
    exact = MixtureParameters(
        model.covariance_type,
        *(np.array(getattr(model, name), dtype=np.float64) for name in ("weights_", "means_", "covariances_",
                                                                        "precisions_cholesky_")),
    )
    estimator._set_fitted(exact, dtype, model.converged_, model.n_iter_, model.lower_bound_,
                          getattr(model, "lower_bounds_", [model.lower_bound_]))
    estimator.n_features_in_ = int(model.n_features_in_)
    if hasattr(model, "feature_names_in_"):
        estimator.feature_names_in_ = np.array(model.feature_names_in_)
    estimator.backend_ = get_backend(estimator.backend).NAME
    return estimator
