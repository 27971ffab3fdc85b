"""scikit-learn's own GaussianMixture and BayesianGaussianMixture tests, run against fastgmm.

The installed scikit-learn's ``sklearn/mixture/tests/test_gaussian_mixture.py``, ``test_bayesian_mixture.py`` and
``test_mixture.py`` are loaded with ``GaussianMixture`` and ``BayesianGaussianMixture`` bound to fastgmm's (the
names are swapped in ``sklearn.mixture`` only while each file is executed, so their module-level parametrisations
build fastgmm estimators too), and every API-level test of theirs is collected here (a Bayesian test whose name the
Gaussian file has too is collected as ``test_bayesian_...``). An upgrade of scikit-learn that changes what its estimator promises then shows up
as a failing test of fastgmm.

Both dtypes always run (scikit-learn's own conftest runs float32 only with ``SKLEARN_RUN_FLOAT32_TESTS=1``), and
``global_random_seed`` follows ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` exactly as in scikit-learn (default 42; ``0-9``
or ``all`` for ranges).
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import sklearn.mixture

import fastgmm

_TESTS = Path(sklearn.mixture.__file__).parent / "tests"

# The tests kept out, with the reason. Each one tests scikit-learn's private helpers, not the estimator's API.
EXCLUDED = {
    "test_suffstat_sk_full": "calls the private _estimate_gaussian_covariances_full and _compute_precision_cholesky",
    "test_suffstat_sk_tied": "calls the private _estimate_gaussian_covariances_{full,tied}",
    "test_suffstat_sk_diag": "calls the private _estimate_gaussian_covariances_{full,diag}",
    "test_gaussian_suffstat_sk_spherical": "calls the private _estimate_gaussian_covariances_spherical",
    "test_compute_log_det_cholesky": "calls the private _compute_log_det_cholesky",
    "test_gaussian_mixture_log_probabilities": "calls the private _estimate_log_gaussian_prob",
    "test_gaussian_mixture_precisions_init": "calls BaseMixture's private _initialize(X, resp) and _set_parameters",
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
        "counts calls of scikit-learn's private _estimate_gaussian_parameters, which fastgmm never calls"
    ),
    "test_gaussian_mixture_array_api_compliance": "scikit-learn's array API dispatch (fastgmm runs on NumPy arrays)",
    "test_gaussian_mixture_raises_where_array_api_not_implemented": "scikit-learn's array API dispatch",
    "test_log_dirichlet_norm": "calls the private _log_dirichlet_norm",
    "test_log_wishart_norm": "calls the private _log_wishart_norm",
    "test_compare_covar_type": (
        "calls BaseMixture's private _check_parameters and _initialize_parameters (tests/test_bayesian_mixture.py "
        "checks the same relations between the covariance types at the start, through max_iter=0)"
    ),
}
_FILES = ("test_gaussian_mixture.py", "test_bayesian_mixture.py", "test_mixture.py")
_SWAPPED = ("GaussianMixture", "BayesianGaussianMixture")

if not (_TESTS / "test_gaussian_mixture.py").is_file():  # a distribution that strips the tests from scikit-learn
    pytest.skip(f"the installed scikit-learn has no tests in {_TESTS}", allow_module_level=True)


def _load(file_name):
    """Execute one of scikit-learn's test files as a new module whose estimators are fastgmm's."""
    spec = importlib.util.spec_from_file_location(f"fastgmm_sklearn_suite_{Path(file_name).stem}", _TESTS / file_name)
    module = importlib.util.module_from_spec(spec)
    originals = {name: getattr(sklearn.mixture, name) for name in _SWAPPED}
    for name in _SWAPPED:
        setattr(sklearn.mixture, name, getattr(fastgmm, name))
    try:
        spec.loader.exec_module(module)
    finally:
        for name, original in originals.items():
            setattr(sklearn.mixture, name, original)
    for name in _SWAPPED:
        assert getattr(module, name, getattr(fastgmm, name)) is getattr(fastgmm, name)
    return module


COLLECTED = {}
for _file in _FILES:
    _module = _load(_file)
    for _name, _test in vars(_module).items():
        if _name.startswith("test_") and callable(_test) and _name not in EXCLUDED:
            _key = _name
            if _file == "test_bayesian_mixture.py" and _key in COLLECTED:
                _key = "test_bayesian_" + _name[len("test_"):]
            assert _key not in COLLECTED, f"{_name} is defined in two of scikit-learn's files"
            COLLECTED[_key] = _test
globals().update(COLLECTED)


def test_exclusions_name_real_tests():
    """Every exclusion names a test that scikit-learn still has, so the list cannot go stale silently."""
    names = set()
    for file_name in _FILES:
        names |= {line.split("(")[0][4:] for line in (_TESTS / file_name).read_text().splitlines()
                  if line.startswith("def test_")}
    assert set(EXCLUDED) <= names
    assert len(COLLECTED) >= 40


@pytest.fixture(params=[np.float32, np.float64])
def global_dtype(request):
    """scikit-learn's dtype fixture, float32 included."""
    return request.param


def pytest_generate_tests(metafunc):
    """scikit-learn's ``global_random_seed``: 42, or what ``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` says."""
    if "global_random_seed" not in metafunc.fixturenames:
        return
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if value is None:
        seeds = [42]
    elif value == "all":
        seeds = list(range(100))
    elif "-" in value:
        start, stop = value.split("-")
        seeds = list(range(int(start), int(stop) + 1))
    else:
        seeds = [int(value)]
    metafunc.parametrize("global_random_seed", seeds)


@pytest.fixture(autouse=True)
def _only_fastgmm_estimators(request):
    """Only fastgmm's estimators are tested here (a guard: every estimator the files build should be fastgmm's)."""
    callspec = getattr(request.node, "callspec", None)
    estimator = callspec.params.get("estimator") if callspec is not None else None
    if estimator is not None and not type(estimator).__module__.startswith("fastgmm"):
        pytest.skip(f"{type(estimator).__name__} is scikit-learn's own estimator here")
