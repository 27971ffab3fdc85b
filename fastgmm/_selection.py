"""Model selection: fit every (number of components, covariance type) pair and keep the best by BIC or AIC, as
mclust's ``Mclust()`` does for R users."""

import copy
import math
import time
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from ._backends import get_backend
from ._collapse import ComponentCollapseWarning
from .sources import fit_source
from ._gaussian_mixture import GaussianMixture
from ._initialisation import shared_initial_labels
from ._parameters import COVARIANCE_TYPES

CRITERIA = ("bic", "aic")


def select_model(
    X,
    n_components=range(1, 11),
    covariance_type=COVARIANCE_TYPES,
    criterion="bic",
    *,
    sample_weight=None,
    ward_start=True,
    callback=None,
    **params,
):
    """Fit a :class:`GaussianMixture` for every pair of ``n_components`` and ``covariance_type`` and return the
    one with the lowest information criterion, with a table of all the fits.

    Every pair is fitted with the same ``params`` (``random_state``, ``n_init``, ``max_iter``, ...), so with an
    integer ``random_state`` each fit starts where ``GaussianMixture(k, covariance_type=t, **params).fit(X)``
    starts, in fastgmm or in scikit-learn. With ``ward_start`` (the default) each pair is also fitted from Ward's
    agglomerative clustering cut at K (``init_params='ward'``, the kind of start R's mclust uses; one tree for every
    K) and keeps the better of the two fits: a single k-means start often stops at a poor local optimum on small
    data (Old Faithful: (2, full) at BIC 2322.2 instead of mclust's (3, tied) at 2314.5). With
    ``ward_start=False`` the result is the pair a loop over scikit-learn's ``bic`` would pick. Pairs are fitted
    one after another, smallest ``n_components`` first and covariance types in the order given;
    each fit runs its kernels on ``n_jobs`` threads, where the parallelism pays off on large data. A pair whose fit
    fails (more components than rows, an ill-defined covariance with ``reg_covar=0``) gets an infinite criterion
    and its error in the table; the others go on.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), numpy.memmap, Chunks or dask array
        As :meth:`GaussianMixture.fit` takes it.
    n_components : int or iterable of int, default=range(1, 11)
    covariance_type : str or iterable of str, default=('full', 'tied', 'diag', 'spherical')
        'all' for the four types.
    criterion : {'bic', 'aic'}, default='bic'
        Lower is better. With sample weights the log-likelihood is weighted and the number of samples is the sum
        of the weights (an integer weight counts as that many copies of the row).
    sample_weight : array-like of shape (n_samples,), default=None
    ward_start : bool, default=True
        Also fit every pair from ``init_params='ward'`` and keep the fit with the lower criterion; ignored when
        ``params`` set ``init_params='ward'`` or initial arrays (``means_init``, ...).
    callback : callable, optional
        Called as ``callback(row)`` with each row of the table as a dict once its pair is fitted (for a progress
        display or a log).
    **params
        Other :class:`GaussianMixture` parameters, the same for every pair.

    Returns
    -------
    best : GaussianMixture
        The fitted estimator of the pair with the lowest criterion (the first such pair on a tie).
    results : dict of ndarray
        One entry per pair, in fitting order, as columns (``pandas.DataFrame(results)`` makes a data frame):
        ``n_components``, ``covariance_type``, the criterion (``bic`` or ``aic``), ``log_likelihood`` (summed over
        the samples), ``n_parameters``, ``n_iter``, ``converged``, ``init_params`` (the start of the fit kept),
        ``seconds`` (of every fit of the pair and its criterion) and ``error`` (empty when a fit succeeded).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgmm import select_model
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(6, 1, (300, 2))])
    >>> best, results = select_model(X, n_components=range(1, 5), random_state=0)
    >>> best.n_components, best.covariance_type
    (2, 'spherical')
    >>> len(results["bic"])
    16
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if isinstance(n_components, Integral):
        n_components = [n_components]
    n_components = list(n_components)
    if not n_components or not all(isinstance(k, Integral) and k >= 1 for k in n_components):
        raise ValueError(f"n_components must be positive integers, got {n_components!r}")
    if isinstance(covariance_type, str):
        covariance_type = COVARIANCE_TYPES if covariance_type == "all" else (covariance_type,)
    covariance_type = list(covariance_type)
    unknown = [t for t in covariance_type if t not in COVARIANCE_TYPES]
    if unknown or not covariance_type:
        raise ValueError(f"covariance_type must be among {COVARIANCE_TYPES} or 'all', got {covariance_type!r}")
    for name in ("n_components", "covariance_type"):
        if name in params:
            raise TypeError(f"select_model got {name} twice")

    template = GaussianMixture(**params)
    starts = [template]
    given = any(getattr(template, name) is not None for name in ("weights_init", "means_init", "precisions_init"))
    if ward_start and template.init_params != "ward" and not given:
        starts.append(clone(template).set_params(init_params="ward", n_init=1))
    # Parameters and data are validated once, with the errors a fit would raise; every pair's fit then starts from
    # the validated source (the two validations were a fifth of an iris fit's time).
    template._validate_params()
    source = fit_source(X, sample_weight, validate=template._validated_for_fit, n_jobs=template.n_jobs)
    with shared_initial_labels(), get_backend(template.backend).threads(template.n_jobs), warnings.catch_warnings():
        # One warning per pair would drown the table; the table says which did not converge.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        rows, best = _fit_pairs(starts, source, X, sample_weight, n_components, covariance_type, criterion,
                                callback)
    if best is None:
        raise ValueError(f"every fit failed; the first error: {rows[0]['error']}")
    results = {name: np.array([row[name] for row in rows]) for name in rows[0]}
    return best, results


def _fit_pairs(starts, source, X, sample_weight, n_components, covariance_type, criterion, callback):
    """Fit every pair in order from each start (estimators differing in their initialisation only) to the source
    of X the first start validated: the table's rows, and the best model (None when every fit failed)."""
    rows, best, best_value = [], None, math.inf
    # What clone(template) does, without its signature inspection per estimator (a tenth of an iris fit's time).
    settings = [template.get_params(deep=False) for template in starts]
    for k in n_components:
        for cov in covariance_type:
            start = time.perf_counter()
            row = {"n_components": k, "covariance_type": cov, criterion: math.inf, "log_likelihood": math.nan,
                   "n_parameters": 0, "n_iter": 0, "converged": False, "init_params": "", "seconds": 0.0,
                   "error": ""}
            model = None
            for params in settings:
                candidate = GaussianMixture(**{name: _copied(value) for name, value in params.items()
                                               if name not in ("n_components", "covariance_type")},
                                            n_components=k, covariance_type=cov)
                backend = get_backend(candidate.backend)  # one per fit: its backend_ says what ran that fit
                try:
                    candidate._fit_source(source, backend)
                    value, log_likelihood = _criterion(candidate, source, backend, X, sample_weight, criterion)
                except ValueError as error:
                    row["error"] = row["error"] or str(error)
                    continue
                # A NaN criterion (a fit gone wrong) never wins against a number.
                if model is None or value < row[criterion] or (math.isnan(row[criterion]) and not math.isnan(value)):
                    model = candidate
                    row.update({criterion: value, "log_likelihood": log_likelihood,
                                "n_parameters": candidate._float64_parameters.n_parameters(),
                                "n_iter": candidate.n_iter_,
                                "converged": bool(candidate.converged_), "init_params": candidate.init_params})
            if model is not None:
                row["error"] = ""
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            if row[criterion] < best_value:
                best, best_value = model, row[criterion]
            if callback is not None:
                callback(dict(row))
    return rows, best


def _copied(value):
    """``copy.deepcopy`` of a parameter value, as clone makes it, without its cost for the immutable ones."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else copy.deepcopy(value)


def _criterion(model, source, backend, X, sample_weight, criterion):
    """``(criterion, total log-likelihood)`` of a model fitted to the source of X; weighted when there are sample
    weights."""
    # The fit's own float64 parameters (what ``_parameters()`` returns once it has compared them with the
    # attributes, which nothing changed since the fit).
    params = model._float64_parameters
    statistics = source.statistics(backend, params)
    mean, n_samples = statistics.mean_log_likelihood, statistics.total_weight
    if not math.isfinite(mean):  # some row is explained by no component: what score_samples says of it
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        mean = float(np.average(np.asarray(model.score_samples(X), dtype=np.float64), weights=weight))
    penalty = params.n_parameters() * (math.log(n_samples) if criterion == "bic" else 2.0)
    return -2 * mean * n_samples + penalty, mean * n_samples


def format_results(results, criterion):
    """The results table of :func:`select_model` as aligned text, best pair marked with ``*``."""
    values = results[criterion]
    best = int(np.argmin(values))
    lines = [f"  {'K':>3} {'covariance':<10} {criterion.upper():>14} {'log-lik':>14} {'params':>6} {'iter':>5} "
             f"{'conv':>5} {'seconds':>8}"]
    for i in range(len(values)):
        mark = "*" if i == best else " "
        if results["error"][i]:
            lines.append(f"{mark} {results['n_components'][i]:>3} {results['covariance_type'][i]:<10} failed: "
                         f"{results['error'][i][:70]}")
            continue
        lines.append(
            f"{mark} {results['n_components'][i]:>3} {results['covariance_type'][i]:<10} {values[i]:>14.3f} "
            f"{results['log_likelihood'][i]:>14.3f} {results['n_parameters'][i]:>6} {results['n_iter'][i]:>5} "
            f"{str(bool(results['converged'][i])):>5} {results['seconds'][i]:>8.3f}"
        )
    return "\n".join(lines)
