"""The constants the compiled kernels share have one value: those of the Numba kernels (numba_.py, kernels/_layouts.py)
against their copies in the Cython sources (_cython.pyx, _tile_math.h), read from the source text, so a copy that
drifts fails here rather than as two backends that disagree by a rounding nobody traces."""

import re
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parent.parent / "fastgmm" / "kernels"


def _header():
    text = (KERNELS / "_tile_math.h").read_text()
    values = {name: int(value) for name, value in re.findall(r"^#define FASTGMM_(\w+) (-?\d+)\s*$", text, re.M)}
    for name, value in re.findall(r"\b(shifter|exp_min) = (-?[\d.]+)", text):
        values[name] = float(value)
    return values


def _pyx():
    text = (KERNELS / "_cython.pyx").read_text()
    enum = re.search(r"^cdef enum:\n((?:    .*\n)+)", text, re.M).group(1)
    values = {name: int(value) for name, value in re.findall(r"^    (\w+) = (-?\d+)", enum, re.M)}
    for name, value in re.findall(r"^cdef (?:double|int) (\w+) = (-?[\d.e]+)\s*$", text, re.M):
        values[name] = float(value) if "." in value else int(value)
    return values


def test_the_readers_find_every_constant():
    header, pyx = _header(), _pyx()
    assert {"TILE", "FULL", "TIED", "DIAG", "SPHERICAL", "MAX_STATIC_TRIANGLE", "MAX_STATIC_DIAGONAL", "shifter",
            "exp_min"} <= set(header)
    assert {"TILE", "LOG_CHUNK", "FULL", "TIED", "DIAG", "SPHERICAL", "LOG_NEGLIGIBLE",
            "MAX_SMALL_FEATURES"} <= set(pyx)


def test_numba_and_cython_kernels_share_their_constants():
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    from fastgmm.kernels import _layouts

    header, pyx = _header(), _pyx()
    for name in ("FULL", "TIED", "DIAG", "SPHERICAL"):
        assert header[name] == pyx[name] == getattr(_layouts, name), name
    assert header["TILE"] == pyx["TILE"] == numba_.TILE
    assert pyx["LOG_CHUNK"] == numba_._LOG_CHUNK
    assert pyx["LOG_NEGLIGIBLE"] == numba_._LOG_NEGLIGIBLE  # the same double, to the last bit
    assert pyx["MAX_SMALL_FEATURES"] == numba_._MAX_SMALL_FEATURES
    limits = numba_._MAX_STATIC_FEATURES
    assert header["MAX_STATIC_TRIANGLE"] == limits[_layouts.FULL] == limits[_layouts.TIED]
    assert header["MAX_STATIC_DIAGONAL"] == limits[_layouts.DIAG] == limits[_layouts.SPHERICAL]
    assert header["shifter"] == numba_._SHIFTER and header["exp_min"] == numba_._EXP_MIN
