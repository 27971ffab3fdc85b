"""Backend selection: 'auto' falls back from Numba to Cython to NumPy with a warning that says why; forced backends
fail clearly; show_versions reports them all."""

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastgmm import GaussianMixture, show_versions
from fastgmm._backends import BACKENDS, backend_status, get_backend

from .conftest import USABLE_BACKENDS

# A fresh interpreter in which ``import numba`` fails (as on a Python release before numba's wheels), fitting a
# fixed problem and printing the chosen backend and the model.
_WITHOUT_NUMBA = """
import json, sys, warnings
sys.modules["numba"] = None  # makes ``import numba`` raise ImportError
import numpy as np
from fastgmm import GaussianMixture
X = np.random.RandomState(0).normal(size=(3000, 3)) + np.repeat(np.eye(3) * 8, 1000, axis=0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
print(json.dumps({
    "backend": model.backend_, "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning],
    "means": model.means_.tolist(), "lower_bound": model.lower_bound_, "numba_loaded": "numba" in sys.modules
    and sys.modules["numba"] is not None,
}))
"""


@pytest.mark.skipif("cython" not in USABLE_BACKENDS, reason="the Cython extension is not built")
def test_auto_picks_cython_without_numba_and_fits_the_same_model():
    env = {key: value for key, value in os.environ.items() if key != "FASTGMM_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NUMBA], capture_output=True, text=True, env=env, timeout=600, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "cython"
    assert not report["numba_loaded"]
    assert len(report["warnings"]) == 1 and "'cython'" in report["warnings"][0] and "numba" in report["warnings"][0]

    X = np.random.RandomState(0).normal(size=(3000, 3)) + np.repeat(np.eye(3) * 8, 1000, axis=0)
    reference = GaussianMixture(3, covariance_type="full", random_state=0, backend="numpy").fit(X)
    np.testing.assert_allclose(report["means"], reference.means_, rtol=1e-10)
    np.testing.assert_allclose(report["lower_bound"], reference.lower_bound_, rtol=1e-10)


def test_forced_backend_that_is_not_usable_fails_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastgmm.kernels.cython_", None)
    with pytest.raises(ImportError, match="backend 'cython' is not usable"):
        get_backend("cython")
    with pytest.raises(ImportError, match="backend 'cython' is not usable"):
        GaussianMixture(2, backend="cython").fit(np.random.RandomState(0).normal(size=(50, 2)))


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("FASTGMM_BACKEND", "numpy")
    assert get_backend("auto").NAME == "numpy"
    assert GaussianMixture(2).fit(np.random.RandomState(0).normal(size=(50, 2))).backend_ == "numpy"


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="backend must be"):
        get_backend("fortran")


@pytest.mark.parametrize("name", USABLE_BACKENDS)
def test_every_backend_provides_exactly_the_interface(name):
    """``fastgmm.kernels.Backend``: the kernel functions with the reference's signatures, the optional ones with
    the same signature wherever they exist, the compilation functions all or none, and no other public function."""
    from fastgmm.kernels import COMPILATION_FUNCTIONS, KERNEL_FUNCTIONS, OPTIONAL_KERNEL_FUNCTIONS, Backend

    module = get_backend(name)
    reference = get_backend("numpy")
    assert isinstance(module.NAME, str) and module.NAME == name
    for attribute in ("threads", "runtime_summary"):
        assert callable(getattr(module, attribute)), attribute
        assert attribute in vars(Backend)
    assert isinstance(module.runtime_summary(), dict)
    for function in KERNEL_FUNCTIONS:
        # The reference's parameters, in its order; after them a backend may take tuning knobs with defaults.
        own = list(inspect.signature(getattr(module, function)).parameters.values())
        expected = list(inspect.signature(getattr(reference, function)).parameters.values())
        assert own[: len(expected)] == expected, function
        assert all(extra.default is not inspect.Parameter.empty for extra in own[len(expected):]), function
    for function in OPTIONAL_KERNEL_FUNCTIONS:
        signatures = {str(inspect.signature(getattr(get_backend(other), function)))
                      for other in (name, *USABLE_BACKENDS) if hasattr(get_backend(other), function)}
        assert len(signatures) <= 1, (function, signatures)
    compiles = [hasattr(module, function) for function in COMPILATION_FUNCTIONS]
    assert all(compiles) or not any(compiles)
    public = {attribute for attribute, value in vars(module).items() if not attribute.startswith("_")
              and callable(value) and getattr(value, "__module__", None) == module.__name__}
    assert public <= {*KERNEL_FUNCTIONS, *OPTIONAL_KERNEL_FUNCTIONS, *COMPILATION_FUNCTIONS, "runtime_summary"}


def test_show_versions_lists_every_backend(capsys):
    show_versions()
    out = capsys.readouterr().out
    for name, reason in backend_status().items():
        assert name in out
        assert ("usable" if reason is None else "not usable") in out
    assert "auto:" in out and "numpy" in out and "scikit-learn" in out
    assert set(backend_status()) == set(BACKENDS)


@pytest.mark.parametrize(
    "environment, wants_numba",
    [
        ({}, True),
        ({"platform_machine": "aarch64"}, True),
        ({"platform_machine": "AMD64", "sys_platform": "win32"}, True),
        ({"python_version": "3.16"}, False),  # a Python release before numba's wheels
        ({"platform_python_implementation": "PyPy"}, False),
        ({"platform_machine": "ppc64le"}, False),  # no llvmlite wheels: pip would build LLVM from source
        ({"platform_machine": "x86"}, False),
    ],
)
def test_installed_metadata_requires_numba_only_where_it_has_wheels(environment, wants_numba):
    """The installed requirement's marker, so that ``pip install fastgmm`` succeeds where numba cannot be installed
    (the Cython backend then serves) and still brings numba everywhere else."""
    metadata = pytest.importorskip("importlib.metadata")
    requirements_module = pytest.importorskip("packaging.requirements")
    requires = metadata.requires("fastgmm") or []
    numba = [
        requirement for requirement in map(requirements_module.Requirement, requires)
        if requirement.name == "numba" and "extra" not in str(requirement.marker)
    ]
    assert len(numba) == 1, requires
    base = {"platform_python_implementation": "CPython", "python_version": "3.12", "platform_machine": "x86_64",
            "sys_platform": "linux"}
    assert numba[0].marker.evaluate({**base, **environment}) is wants_numba


def test_warm_up_fits_a_small_and_a_large_slice(monkeypatch):
    """Both of Numba's compilations (serial for small calls, parallel above PARALLEL_WORK) get warmed up."""
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    from fastgmm._backends import warm_up

    sizes = []
    real_fit = GaussianMixture.fit
    monkeypatch.setattr(GaussianMixture, "fit", lambda self, X, *a, **k: sizes.append(len(X)) or real_fit(self, X))
    X = np.random.RandomState(0).standard_normal((600_000, 4))
    model = GaussianMixture(3, backend="numba", max_iter=50)
    assert warm_up(model, X) > 0
    assert sizes == [60, numba_.PARALLEL_WORK // 4]
    assert not hasattr(model, "means_") and model.max_iter == 50
