"""Loading a model file (format in ``fastgmm._model_file``): every member checked before a fitted estimator is
returned, so that a damaged or foreign file is a ``ModelFileError`` naming the problem, never a broken model."""

import json
import os

import numpy as np

from ._backends import BACKENDS
from ._bayesian_mixture import BayesianGaussianMixture
from ._gaussian_mixture import GaussianMixture
from ._model_file import (
    _DTYPES,
    _FITTED_SCALARS,
    BAYESIAN_FORMAT,
    FORMAT,
    FORMATS,
    PARAMS_ADDED,
    PRIOR_SCALARS,
    STREAM_MEMBERS,
    ModelFileError,
    members_of,
)
from ._parameters import (
    MixtureParameters,
    Statistics,
    covariance_shape,
    precision_cholesky_from_covariances,
    prior_covariance_shape,
)
from ._validation import check_covariance_prior
from ._variational import VariationalParameters

_ESTIMATORS = {FORMAT: GaussianMixture, BAYESIAN_FORMAT: BayesianGaussianMixture}

# |U^T Sigma U - I| of a consistent model is ~cond(Sigma)^(1/2) eps; this allows cond(Sigma) up to ~1e20.
_CONSISTENCY = 1e-5


def load(file):
    """Load a model saved by :meth:`GaussianMixture.save` or :meth:`BayesianGaussianMixture.save`, checking every
    part of it.

    The file is read with ``allow_pickle=False``: it holds plain arrays and JSON text only, so loading cannot run
    code. Everything is validated before a model is returned (members, dtypes, shapes, parameters, finiteness,
    weights summing to 1, positive-definite covariances consistent with the precisions).

    Parameters
    ----------
    file : str, path-like or binary file object

    Returns
    -------
    GaussianMixture or BayesianGaussianMixture
        The fitted estimator, with the saved parameters and fitted attributes exactly.

    Raises
    ------
    ModelFileError
        (a ValueError) If the file is not a valid fastgmm model, naming the file and the problem.
    FileNotFoundError
        If there is no such file.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> import fastgmm
    >>> X = np.random.RandomState(0).normal(size=(200, 2))
    >>> model = fastgmm.GaussianMixture(2, random_state=0).fit(X)
    >>> buffer = io.BytesIO()
    >>> model.save(buffer)
    >>> restored = fastgmm.load(io.BytesIO(buffer.getvalue()))
    >>> bool(np.array_equal(restored.means_, model.means_))
    True
    """
    name = getattr(file, "name", None) if hasattr(file, "read") else os.fspath(file)
    where = f"{name}: " if name else ""
    if not hasattr(file, "read"):
        with open(file, "rb") as handle:
            magic = handle.read(4)
        if magic != b"PK\x03\x04":  # every .npz is a zip archive
            raise ModelFileError(f"{where}not a fastgmm model file: not an .npz (zip) archive")
    try:
        archive = np.load(file, allow_pickle=False)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as error:  # whatever a damaged or foreign file makes the readers raise
        raise ModelFileError(f"{where}not a fastgmm model file: {type(error).__name__}: {error}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{where}not a fastgmm model file: a single .npy array, not a .npz archive")
    try:
        with archive:
            members = {key: archive[key] for key in archive.files}
    except Exception as error:
        raise ModelFileError(f"{where}not a fastgmm model file: {type(error).__name__}: {error}") from None
    try:
        return _model_from(members)
    except ModelFileError as error:
        raise ModelFileError(f"{where}{error}") from None


def _text(members, key):
    value = members[key]
    if value.dtype.kind != "U" or value.shape != ():
        raise ModelFileError(f"member {key!r} must be a string, got dtype {value.dtype} shape {value.shape}")
    return str(value)


def _json_object(members, key):
    try:
        value = json.loads(_text(members, key))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"member {key!r} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"member {key!r} must be a JSON object")
    return value


def _float_array(members, key, shape):
    value = members[key]
    if value.dtype != np.float64:
        raise ModelFileError(f"{key} must be float64, got {value.dtype}")
    if value.shape != shape:
        raise ModelFileError(f"{key} has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise ModelFileError(f"{key} contains NaN or infinity")
    return value


def _model_from(members):
    keys = set(members)
    file_format = _text(members, "format") if "format" in keys else None
    if file_format not in FORMATS:
        raise ModelFileError(f"not a fastgmm model file: no member 'format' equal to one of {sorted(FORMATS)}")
    version = members.get("format_version")
    if version is None or version.dtype.kind not in "iu" or version.shape != ():
        raise ModelFileError("member 'format_version' must be an integer")
    readable, array_params = FORMATS[file_format][1:]
    if int(version) not in readable:
        raise ModelFileError(
            f"format version {int(version)}; this fastgmm reads versions {', '.join(map(str, readable))} of "
            f"{file_format} (a newer fastgmm wrote it?)"
        )
    required, optional = members_of(file_format)
    if required - keys:
        raise ModelFileError(f"missing member(s) {sorted(required - keys)}")
    if keys - required - optional:
        raise ModelFileError(f"unexpected member(s) {sorted(keys - required - optional)}")
    _text(members, "fastgmm_version")
    bayesian = file_format == BAYESIAN_FORMAT

    # Parameters: known names only, then the estimator's own validation.
    cls = _ESTIMATORS[file_format]
    params = _json_object(members, "params")
    if not bayesian:
        for added_in, defaults in PARAMS_ADDED.items():
            if int(version) < added_in:
                params = {**defaults, **params}
    known = set(cls().get_params(deep=False))
    if set(params) != known:
        raise ModelFileError(f"params must name exactly {sorted(known)}, got {sorted(params)}")
    params["random_state"] = _random_state(params["random_state"], members)
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"invalid parameters: {error}") from None

    fitted = _json_object(members, "fitted")
    expected = set(_FITTED_SCALARS) if int(version) >= 2 or bayesian else set(_FITTED_SCALARS) - {"dtype"}
    if bayesian:
        expected |= set(PRIOR_SCALARS)
    if set(fitted) != expected:
        raise ModelFileError(f"fitted must name exactly {sorted(expected)}, got {sorted(fitted)}")
    fitted.setdefault("dtype", "float64")
    for key, kind in _FITTED_SCALARS.items():
        if type(fitted[key]) is not kind:
            raise ModelFileError(f"fitted {key} must be {kind.__name__}, got {fitted[key]!r}")
    K, D, covariance_type = estimator.n_components, fitted["n_features_in_"], estimator.covariance_type
    if D < 1 or fitted["n_iter_"] < 0:
        raise ModelFileError(f"n_features_in_={D} and n_iter_={fitted['n_iter_']} must be >= 1 and >= 0")
    if fitted["backend_"] not in BACKENDS:
        raise ModelFileError(f"backend_ {fitted['backend_']!r} is not one of {sorted(BACKENDS)}")
    if fitted["dtype"] not in _DTYPES:
        raise ModelFileError(f"dtype {fitted['dtype']!r} is not one of {list(_DTYPES)}")

    # Array parameters, when given, in the shapes fit validates.
    shape = covariance_shape(covariance_type, K, D)
    shapes = {"weights_init": (K,), "means_init": (K, D), "precisions_init": shape, "mean_prior": (D,),
              "covariance_prior": prior_covariance_shape(covariance_type, D)}
    for name in array_params:
        key = f"param_{name}"
        if key in members:
            setattr(estimator, name, _float_array(members, key, shapes[name]))

    arrays = {
        "weights_": _float_array(members, "weights_", (K,)),
        "means_": _float_array(members, "means_", (K, D)),
        "covariances_": _float_array(members, "covariances_", shape),
        "precisions_": _float_array(members, "precisions_", shape),
        "precisions_cholesky_": _float_array(members, "precisions_cholesky_", shape),
    }
    _check_mixture(covariance_type, **arrays)

    lower_bound = members["lower_bound_"]
    if lower_bound.dtype != np.float64 or lower_bound.shape != () or np.isnan(lower_bound) or lower_bound == np.inf:
        raise ModelFileError("lower_bound_ must be a float64 scalar, finite or -inf")
    lower_bounds = members["lower_bounds_"]
    if lower_bounds.dtype != np.float64 or lower_bounds.ndim != 1 or np.any(np.isnan(lower_bounds)):
        raise ModelFileError("lower_bounds_ must be a 1-D float64 array without NaN")

    if bayesian:
        params = _variational_parameters(members, estimator, fitted, arrays, K, D)
    else:
        params = MixtureParameters(covariance_type, arrays["weights_"], arrays["means_"], arrays["covariances_"],
                                   arrays["precisions_cholesky_"])
    estimator._set_fitted(params, fitted.pop("dtype"), fitted.pop("converged_"), fitted.pop("n_iter_"),
                          float(lower_bound), lower_bounds)
    for key, value in fitted.items():
        setattr(estimator, key, value)
    stream = [key for key in STREAM_MEMBERS if key in members]
    if stream:
        estimator._stream = _stream(members, stream, covariance_type, K, D)
    if "feature_names_in_" in members:
        names = members["feature_names_in_"]
        if names.dtype.kind != "U" or names.shape != (D,):
            raise ModelFileError(f"feature_names_in_ must hold {D} strings, got dtype {names.dtype} {names.shape}")
        estimator.feature_names_in_ = names.astype(object)
    return estimator


def _variational_parameters(members, estimator, fitted, arrays, K, D):
    """The Bayesian mixture's posterior and priors, checked: positive concentrations and precisions, degrees of
    freedom above D - 1, weights those of the concentrations, priors as fit validates them. Sets the ``*_prior_``
    attributes (the numbers stay in ``fitted``)."""
    covariance_type = estimator.covariance_type
    process = estimator.weight_concentration_prior_type == "dirichlet_process"
    concentration = _float_array(members, "weight_concentration_", (2, K) if process else (K,))
    mean_precision = _float_array(members, "mean_precision_", (K,))
    degrees_of_freedom = _float_array(members, "degrees_of_freedom_", () if covariance_type == "tied" else (K,))
    mean_prior = _float_array(members, "mean_prior_", (D,))
    covariance_prior = _float_array(members, "covariance_prior_", prior_covariance_shape(covariance_type, D))
    if np.any(concentration <= 0) or np.any(mean_precision <= 0):
        raise ModelFileError("weight_concentration_ and mean_precision_ must be positive")
    if np.any(degrees_of_freedom <= D - 1):
        raise ModelFileError(f"degrees_of_freedom_ must be greater than n_features - 1 = {D - 1}")
    for name in PRIOR_SCALARS:
        value = fitted[name]
        if type(value) is not float or not np.isfinite(value) or value <= 0:
            raise ModelFileError(f"fitted {name} must be a positive number, got {value!r}")
    if fitted["degrees_of_freedom_prior_"] <= D - 1:
        raise ModelFileError(f"degrees_of_freedom_prior_ must be greater than n_features - 1 = {D - 1}")
    try:
        covariance_prior = check_covariance_prior(covariance_prior, covariance_type, D)
    except ValueError as error:
        raise ModelFileError(f"covariance_prior_: {error}") from None
    params = VariationalParameters(
        covariance_type,
        estimator.weight_concentration_prior_type,
        (concentration[0], concentration[1]) if process else concentration,
        mean_precision,
        arrays["means_"],
        float(degrees_of_freedom) if covariance_type == "tied" else degrees_of_freedom,
        arrays["covariances_"],
        arrays["precisions_cholesky_"],
    )
    if not np.allclose(params.weights, arrays["weights_"], rtol=1e-10, atol=1e-15):
        raise ModelFileError("weights_ are not the expected weights of weight_concentration_")
    estimator.mean_prior_ = mean_prior.astype(fitted["dtype"])
    estimator.covariance_prior_ = covariance_prior
    return params


def _stream(members, present, covariance_type, K, D):
    """partial_fit's ``(steps, running statistics)``, checked: all five members, shapes, finite values, weights a
    distribution."""
    if len(present) != len(STREAM_MEMBERS):
        raise ModelFileError(f"the stream_* members come all together, got only {sorted(present)}")
    steps = members["stream_steps"]
    if steps.dtype.kind not in "iu" or steps.shape != () or int(steps) < 1:
        raise ModelFileError("stream_steps must be a positive integer")
    log_likelihood = float(_float_array(members, "stream_log_likelihood", ()))
    nk = _float_array(members, "stream_nk", (K,))
    if np.any(nk < 0) or not abs(nk.sum() - 1.0) <= 1e-8:
        raise ModelFileError(f"stream_nk must be non-negative and sum to 1, got sum {nk.sum()!r}")
    means = _float_array(members, "stream_means", (K, D))
    s2 = _float_array(members, "stream_s2", covariance_shape(covariance_type, K, D))
    return int(steps), Statistics(log_likelihood, 1.0, nk, np.zeros((K, D)), s2, means)


def _random_state(value, members):
    """The ``random_state`` parameter: None, an int, or a RandomState rebuilt from its saved MT19937 state."""
    if value is None or (type(value) is int):
        if "random_state_key" in members:
            raise ModelFileError("random_state_key is present but random_state is not a RandomState")
        return value
    if not (isinstance(value, dict) and set(value) == {"mt19937", "pos", "has_gauss", "cached"}):
        raise ModelFileError(f"random_state must be null, an integer or a saved RandomState, got {value!r}")
    key = members.get("random_state_key")
    if key is None or key.dtype != np.uint32 or key.shape != (624,):
        raise ModelFileError("a saved RandomState needs random_state_key, 624 uint32")
    state = np.random.RandomState()
    try:
        state.set_state(("MT19937", key, value["pos"], value["has_gauss"], value["cached"]))
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"invalid saved RandomState: {error}") from None
    return state


def _check_mixture(covariance_type, weights_, means_, covariances_, precisions_, precisions_cholesky_):
    """Weights a distribution, covariances SPD, precisions and Cholesky factors consistent with them."""
    if np.any(weights_ < 0) or not abs(weights_.sum() - 1.0) <= 1e-8:
        raise ModelFileError(f"weights_ must be non-negative and sum to 1, got sum {weights_.sum()!r}")
    try:
        expected_cholesky = precision_cholesky_from_covariances(covariances_, covariance_type)
    except ValueError:
        raise ModelFileError("covariances_ are not all symmetric positive definite") from None
    U = precisions_cholesky_
    if covariance_type in ("full", "tied"):
        covariances = covariances_ if covariance_type == "full" else covariances_[None]
        factors = U if covariance_type == "full" else U[None]
        for k, (cov, u) in enumerate(zip(covariances, factors)):
            if not np.abs(cov - cov.T).max() <= 1e-12 * np.abs(cov).max():
                raise ModelFileError(f"covariance {k} is not symmetric")
            if np.any(np.tril(u, -1) != 0) or np.any(np.diagonal(u) <= 0):
                raise ModelFileError(f"precisions_cholesky_ {k} is not upper triangular with a positive diagonal")
            residual = np.abs(u.T @ cov @ u - np.eye(len(u))).max()
            if not residual <= _CONSISTENCY:
                raise ModelFileError(f"precisions_cholesky_ {k} is not the Cholesky factor of the inverse of "
                                     f"covariance {k} (|U^T C U - I| = {residual:.3g})")
        product = factors @ np.transpose(factors, (0, 2, 1))
        product = product if covariance_type == "full" else product[0]
    else:
        if np.any(U <= 0) or not np.allclose(U, expected_cholesky, rtol=_CONSISTENCY, atol=0):
            raise ModelFileError("precisions_cholesky_ is not 1 / sqrt(covariances_)")
        product = U**2
    # Relative to each matrix's largest entry: off-diagonal precisions may be rounding-level numbers.
    axes = tuple(range(1, product.ndim)) if covariance_type == "full" else None
    scale = np.abs(product).max(axis=axes, keepdims=True) if covariance_type in ("full", "tied") else np.abs(product)
    if not np.all(np.abs(precisions_ - product) <= 1e-10 * scale):
        raise ModelFileError("precisions_ is not precisions_cholesky_ times its transpose")
