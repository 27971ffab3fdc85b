"""``backend='auto'``'s routing (``fastgmm._auto_backend``): Numba's kernels where compiled, else Cython's, and a
background compilation asked for; the end-to-end behaviour in fresh processes is in test_compile_cache.py."""

import pickle
import types
from contextlib import contextmanager

import numpy as np
import pytest

from fastgmm import _auto_backend, _background_compile
from fastgmm.kernels import KERNEL_FUNCTIONS


class _Missing(Exception):
    def __init__(self, kernel, signature):
        super().__init__(kernel)
        self.kernel, self.signature = kernel, signature


def _fake_backends(compiled):
    """A Numba stand-in whose kernels run only if their name is in ``compiled``, and a Cython stand-in."""
    calls = []

    @contextmanager
    def no_threads(n_jobs):
        calls.append(("threads", n_jobs))
        yield

    def kernel(module_name, name):
        def run(*args):
            if module_name == "numba" and name not in compiled:
                raise _Missing(f"_{name}.serial", ("sig", name))
            calls.append((module_name, name, args))
            return module_name

        return run

    modules = {}
    for module_name in ("numba", "cython"):
        module = types.SimpleNamespace(NAME=module_name, threads=no_threads, PARALLEL_WORK=10)
        for name in KERNEL_FUNCTIONS:
            setattr(module, name, kernel(module_name, name))
        modules[module_name] = module
    modules["numba"].NotCompiled = _Missing
    modules["numba"].cached_only = contextmanager(lambda: (yield))
    return modules["numba"], modules["cython"], calls


@pytest.fixture
def requests(monkeypatch):
    asked = []
    monkeypatch.setattr(_background_compile, "request", lambda kernel, signature: asked.append((kernel, signature)))
    return asked


def test_compiled_kernels_run_numba(requests):
    numba, cython, calls = _fake_backends(set(KERNEL_FUNCTIONS))
    auto = _auto_backend.AutoBackend(numba, cython)
    assert auto.accumulate(1, 2) == "numba"
    assert auto.lloyd_step(3) == "numba"
    assert auto.NAME == "numba"
    assert requests == []


def test_missing_kernel_runs_cython_and_is_requested_once(requests):
    numba, cython, calls = _fake_backends({"accumulate"})
    auto = _auto_backend.AutoBackend(numba, cython)
    assert auto.accumulate(1) == "numba"
    assert auto.NAME == "numba"
    assert auto.lloyd_step(1, 2) == "cython"
    assert calls[-1] == ("cython", "lloyd_step", (1, 2)), "the arguments did not reach the Cython kernel"
    assert auto.lloyd_step(3) == "cython"
    assert requests == [("_lloyd_step.serial", ("sig", "lloyd_step"))], "asked for the same kernel again"
    assert auto.NAME == "cython", "a fit partly served by Cython is reported as Numba's"


def test_threads_leave_a_core_to_a_background_compilation(monkeypatch):
    numba, cython, calls = _fake_backends(set())
    auto = _auto_backend.AutoBackend(numba, cython)
    monkeypatch.setattr(_background_compile, "busy", lambda: True)
    with auto.threads(None):
        pass
    with auto.threads(3):
        pass
    monkeypatch.setattr(_background_compile, "busy", lambda: False)
    with auto.threads(None):
        pass
    assert [n for _, n in calls] == [-2, -2, 3, 3, None, None]


def test_suite_runs_without_background_compilation():
    # conftest turns it off, so that 'auto' means Numba everywhere in the suite whatever the cache holds.
    from fastgmm._backends import get_backend

    assert not _background_compile.enabled()
    assert not isinstance(get_backend("auto"), _auto_backend.AutoBackend)


def test_numba_refuses_to_compile_inside_cached_only():
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    X = np.zeros((4, 2), dtype=np.int16)  # a type no kernel is ever compiled for
    with numba_.cached_only(), pytest.raises(numba_.NotCompiled) as missing:
        numba_.update_closest(X, np.zeros(2), np.full(4, np.inf), 4)
    assert missing.value.kernel == "_update_closest.serial"
    assert pickle.loads(pickle.dumps(missing.value.signature)) == missing.value.signature
    assert missing.value.kernel in numba_._KERNELS


def test_an_optional_kernel_declined_does_not_name_cython(requests):
    numba, cython, calls = _fake_backends(set(KERNEL_FUNCTIONS))
    numba.em_iterations = lambda *args, **kwargs: (_ for _ in ()).throw(_Missing("_em_iterations.serial", "sig"))
    auto = _auto_backend.AutoBackend(numba, cython)
    assert auto.em_iterations(1, tol=0) is None
    assert auto.em_iterations(2) is None
    assert auto.accumulate(1) == "numba"
    assert auto.NAME == "numba", "a declined optional call made the fit Cython's"
    assert requests == [("_em_iterations.serial", "sig")]
