"""Shared fixtures. ``backend`` parametrizes every test that takes it over all usable backends, so each backend
runs the whole suite (the numpy reference included)."""

import collections
import os

import numpy as np
import pytest

# backend='auto' would otherwise serve calls from the Cython kernels while the Numba ones compile in background
# processes: the suite's 'auto' tests would test a different backend on a cold cache than on a warm one, and those
# processes would take cores from the tests. test_compile_cache.py turns it on in processes of its own.
os.environ.setdefault("FASTGMM_BACKGROUND_COMPILE", "0")

from fastgmm._backends import BACKENDS, get_backend

from .oracles import make_blobs

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _usable(name):
    try:
        get_backend(name)
    except ImportError:
        return False
    return True


USABLE_BACKENDS = [name for name in BACKENDS if _usable(name)]


# The order pytest-xdist hands the files to its workers (``--dist loadfile --no-loadscope-reorder`` in
# pyproject.toml), most work first so that no worker is left alone at the end. test_compile_cache.py first: it is few
# tests but minutes of cold compilations in processes of its own; xdist's own order (most tests first) handed it out
# last, and the other worker sat idle through it (531 s wall, 84% of two cores busy, in a fresh checkout).
# test_benchmarks.py last: asv's quick run starts a process per benchmark, each loading Numba's kernels from the
# on-disk cache the suite shares (the benchmarks use D = 4, as many tests do). Run first, on the empty cache of a
# fresh checkout, those processes compile what the rest of the suite compiles again in its own process: measured
# here, the asv test took 142 s on a cold cache and 54 s on the suite's warm one.
_FIRST = ("test_compile_cache.py",)
_LAST = ("test_benchmarks.py",)


def pytest_collection_modifyitems(items):
    tests_in_file = collections.Counter(item.path for item in items)

    def order(item):
        name = item.path.name
        return (name not in _FIRST) + (name in _LAST), -tests_in_file[item.path]

    items.sort(key=order)  # a stable sort: the order within a file is kept


@pytest.fixture(params=USABLE_BACKENDS)
def backend(request):
    """Name of a usable backend."""
    return request.param


@pytest.fixture(params=COVARIANCE_TYPES)
def covariance_type(request):
    return request.param


@pytest.fixture
def blobs():
    return make_blobs()
