"""The model file: its format and its writer. Fitted models are saved as plain ``.npz`` files, no pickle, so that
loading one (``fastgmm._load``, above the estimator) cannot run code.

Layout, format version 4 (every member a plain array; read with ``allow_pickle=False``). Versions 1 to 3, read
too, are the same without the parameter ``missing_values`` (read as 'error'); versions 1 and 2 also without
``learning_decay``, ``learning_offset``, ``step_size`` and ``batch_size`` (read as their defaults) and without the
``stream_*`` members; version 1 also without ``dtype`` in ``fitted`` (its models are float64).

=====================  ==========================  =============================================================
member                 dtype, shape                content
=====================  ==========================  =============================================================
format                 str, ()                     ``"fastgmm.GaussianMixture"``
format_version         int64, ()                   4
fastgmm_version        str, ()                     version of fastgmm that wrote the file (informative)
params                 str, ()                     JSON object: every constructor parameter that is a number, a
                                                   string, a boolean or null (``random_state`` when it is an int or
                                                   None; ``{"mt19937": true, ...}`` for a RandomState, see below;
                                                   ``callback`` is always null)
param_weights_init     float64, (K,)               present when ``weights_init`` is set; likewise
param_means_init       float64, (K, D)             ``means_init`` and
param_precisions_init  float64, by covariance      ``precisions_init``
random_state_key       uint32, (624,)              present when ``random_state`` is a RandomState: its MT19937 key
fitted                 str, ()                     JSON object: ``converged_``, ``n_iter_``, ``n_features_in_``,
                                                   ``backend_``, ``dtype`` (``"float32"`` or ``"float64"``: the
                                                   dtype of the model's attributes)
lower_bound_           float64, ()
lower_bounds_          float64, (n_iter_,)
weights_               float64, (K,)
means_                 float64, (K, D)
covariances_           float64, by covariance      full (K, D, D), tied (D, D), diag (K, D), spherical (K,)
precisions_            float64, same
precisions_cholesky_   float64, same
feature_names_in_      str, (D,)                   present when the model was fitted on named columns
stream_steps           int64, ()                   present, with the four below, when ``partial_fit`` made the model:
                                                   the batches seen
stream_log_likelihood  float64, ()                 its running statistics: the mean log-likelihood,
stream_nk              float64, (K,)               the weights (summing to 1),
stream_means           float64, (K, D)             the means the moments are about,
stream_s2              float64, by covariance      and the second moments about them per unit weight
=====================  ==========================  =============================================================

A ``BayesianGaussianMixture`` is saved in the same layout with ``format`` ``"fastgmm.BayesianGaussianMixture"``,
format version 1, and these differences: its array parameters are ``param_mean_prior`` (D,) and
``param_covariance_prior`` (by covariance type; a 'spherical' prior is a number in ``params``); ``fitted`` also
names ``weight_concentration_prior_``, ``mean_precision_prior_`` and ``degrees_of_freedom_prior_`` (numbers); and it
has the float64 members ``weight_concentration_`` ((2, K) for the Dirichlet process, (K,) for the distribution),
``mean_precision_`` (K,), ``degrees_of_freedom_`` ((K,), () for 'tied'), ``mean_prior_`` (D,) and
``covariance_prior_`` (by covariance type, () for 'spherical').

The parameter arrays are the model's float64 parameters, whatever ``dtype`` says: a float32 model keeps its float64
parameters beside its float32 attributes, and the file stores them, so a loaded model predicts and continues
(``warm_start``) exactly as the saved one.

The loader accepts exactly these members and checks them all: dtypes and shapes against ``n_components``,
``covariance_type`` and ``n_features_in_``; the parameters as the estimator's own validation does; finite values;
weights non-negative and summing to 1; covariances symmetric positive definite; the precisions and their Cholesky
factors consistent with the covariances. Anything else is a ValueError that names the file and the problem.
"""

import json
import os
import tempfile
from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._version import __version__

FORMAT = "fastgmm.GaussianMixture"
FORMAT_VERSION = 4
_READABLE_VERSIONS = (1, 2, 3, 4)
BAYESIAN_FORMAT = "fastgmm.BayesianGaussianMixture"
# format: (version written, versions read, parameters stored as arrays)
FORMATS = {
    FORMAT: (FORMAT_VERSION, _READABLE_VERSIONS, ("weights_init", "means_init", "precisions_init")),
    BAYESIAN_FORMAT: (1, (1,), ("mean_prior", "covariance_prior")),
}
_ARRAY_PARAMS = FORMATS[FORMAT][2]
_FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
_FITTED_SCALARS = {"converged_": bool, "n_iter_": int, "n_features_in_": int, "backend_": str, "dtype": str}
# The Bayesian mixture's own: posterior and prior arrays, and prior numbers in ``fitted``.
VARIATIONAL_ARRAYS = ("weight_concentration_", "mean_precision_", "degrees_of_freedom_", "mean_prior_",
                      "covariance_prior_")
PRIOR_SCALARS = ("weight_concentration_prior_", "mean_precision_prior_", "degrees_of_freedom_prior_")
_DTYPES = ("float32", "float64")
_REQUIRED = {"format", "format_version", "fastgmm_version", "params", "fitted", "lower_bound_", "lower_bounds_",
             *_FITTED_ARRAYS}
# partial_fit's running statistics (format version 3): all or none.
STREAM_MEMBERS = ("stream_steps", "stream_log_likelihood", "stream_nk", "stream_means", "stream_s2")
# Constructor parameters added in a format version, with the defaults older files mean.
PARAMS_ADDED = {3: {"learning_decay": 0.7, "learning_offset": 10.0, "step_size": None, "batch_size": None},
                4: {"missing_values": "error"}}
_OPTIONAL = {"random_state_key", "feature_names_in_", *(f"param_{name}" for name in _ARRAY_PARAMS), *STREAM_MEMBERS}


def members_of(file_format):
    """``(required, optional)`` member names of a format."""
    if file_format == FORMAT:
        return _REQUIRED, _OPTIONAL
    array_params = FORMATS[file_format][2]
    return (_REQUIRED | set(VARIATIONAL_ARRAYS),
            {"random_state_key", "feature_names_in_", *(f"param_{name}" for name in array_params)})


def format_of(estimator):
    """The file format of an estimator's class."""
    return BAYESIAN_FORMAT if type(estimator).__name__ == "BayesianGaussianMixture" else FORMAT


class ModelFileError(ValueError):
    """A file that is not a valid fastgmm model."""


def _plain(value, name):
    """A parameter value as JSON holds it, or a TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    raise TypeError(f"cannot save parameter {name}={value!r}: only numbers, strings, booleans and None are stored")


def save_model(estimator, file):
    """Write a fitted estimator to ``file`` (path or binary file object) in the layout above.

    A path is written atomically: to a temporary file in the same directory, then renamed.
    """
    check_is_fitted(estimator)
    file_format = format_of(estimator)
    version, _, array_params = FORMATS[file_format]
    members = {"format": np.array(file_format), "format_version": np.array(version, dtype=np.int64)}
    members["fastgmm_version"] = np.array(__version__)
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if name in array_params and value is not None and not isinstance(value, Real):
            members[f"param_{name}"] = np.asarray(value, dtype=np.float64)
            params[name] = None
        elif name == "callback":
            params[name] = None  # code is not data: a loaded model has no callback
        elif name == "random_state" and isinstance(value, np.random.RandomState):
            kind, key, pos, has_gauss, cached = value.get_state()
            members["random_state_key"] = np.asarray(key, dtype=np.uint32)
            params[name] = {"mt19937": True, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}
        else:
            params[name] = _plain(value, name)
    members["params"] = np.array(json.dumps(params))
    fitted = {name: kind(getattr(estimator, name)) for name, kind in _FITTED_SCALARS.items() if name != "dtype"}
    fitted["dtype"] = np.dtype(estimator.means_.dtype).name
    if file_format == BAYESIAN_FORMAT:
        fitted.update({name: float(getattr(estimator, name)) for name in PRIOR_SCALARS})
    members["fitted"] = np.array(json.dumps(fitted))
    members["lower_bound_"] = np.array(estimator.lower_bound_, dtype=np.float64)
    members["lower_bounds_"] = np.asarray(estimator.lower_bounds_, dtype=np.float64).reshape(-1)
    exact = estimator._parameters()
    arrays = {"weights_": exact.weights, "means_": exact.means, "covariances_": exact.covariances,
              "precisions_": exact.precisions(), "precisions_cholesky_": exact.precisions_cholesky}
    if file_format == BAYESIAN_FORMAT:
        arrays.update({
            "weight_concentration_": np.asarray(exact.weight_concentration),
            "mean_precision_": exact.mean_precision,
            "degrees_of_freedom_": np.asarray(exact.degrees_of_freedom),
            "mean_prior_": estimator.mean_prior_,
            "covariance_prior_": np.asarray(estimator.covariance_prior_),
        })
    for name in arrays:
        members[name] = np.asarray(arrays[name], dtype=np.float64)
    if hasattr(estimator, "feature_names_in_"):
        members["feature_names_in_"] = np.asarray(estimator.feature_names_in_, dtype=str)
    if "_stream" in estimator.__dict__:
        steps, running = estimator._stream
        members.update(stream_steps=np.array(steps, dtype=np.int64),
                       stream_log_likelihood=np.array(running.log_likelihood, dtype=np.float64),
                       stream_nk=running.nk, stream_means=running.shift, stream_s2=np.asarray(running.s2))

    if hasattr(file, "write"):
        np.savez(file, **members)
        return
    path = os.fspath(file)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".fastgmm-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **members)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
