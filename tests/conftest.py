"""Shared fixtures. ``backend`` parametrizes every test that takes it over all usable backends, so each backend
runs the whole suite (the numpy reference included)."""

import numpy as np
import pytest

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
