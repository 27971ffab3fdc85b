"""The constants the compiled kernels share have one definition, fastgmm/kernels/_constants.py: the Numba kernels
import it, and the Cython ones include the header setup.py writes from it. Checked here: no kernel source keeps a
copy of its own, and the built extension and the generated header hold today's values (a stale build fails here
rather than as two backends that disagree by a rounding nobody traces)."""

import re
from pathlib import Path

import pytest

from fastgmm.kernels import _constants

KERNELS = Path(__file__).resolve().parent.parent / "fastgmm" / "kernels"
NAMES = _constants._INTEGERS + _constants._DOUBLES


def test_every_constant_is_generated_into_the_header():
    header = _constants.c_header()
    for name in NAMES:
        (value,) = re.findall(rf"^#define FASTGMM_{name} \(?(-?[\d.e-]+)\)?$", header, re.M)
        assert float(value) == getattr(_constants, name), name  # to the last bit: repr round-trips
    header_file = KERNELS / "_kernel_constants.h"
    if header_file.exists():  # written by the build; absent in a checkout that was never built
        assert header_file.read_text() == header, "_kernel_constants.h is stale: rebuild (pip install -e .)"


def test_no_kernel_source_defines_a_copy():
    numba_source = (KERNELS / "numba_.py").read_text() + (KERNELS / "_layouts.py").read_text()
    pyx = (KERNELS / "_cython.pyx").read_text()
    header = (KERNELS / "_tile_math.h").read_text()
    for name in NAMES:
        assert not re.search(rf"^_?{name} = ", numba_source, re.M), name
        assert not re.search(rf"^\s*(cdef \w+ )?{name} = ", pyx, re.M), name
        assert not re.search(rf"#define FASTGMM_{name}\b", header), name
    pyx_after_constants = pyx.split('cdef extern from "_kernel_constants.h"')[1]
    for literal in ("256", "-69.31", "6755399441055744", "-708.0", "1.4426950408889634"):
        assert literal not in header and literal not in pyx_after_constants, literal


def test_the_numba_kernels_read_the_definition():
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    from fastgmm.kernels import _layouts

    for name in NAMES:
        if hasattr(numba_, name):
            assert getattr(numba_, name) == getattr(_constants, name), name
    assert numba_.TILE == _constants.TILE and numba_.LOG_NEGLIGIBLE == _constants.LOG_NEGLIGIBLE
    assert (_layouts.FULL, _layouts.TIED, _layouts.DIAG, _layouts.SPHERICAL) == (0, 1, 2, 3)
    limits = numba_._MAX_STATIC_FEATURES
    assert limits[_layouts.FULL] == limits[_layouts.TIED] == _constants.MAX_STATIC_TRIANGLE
    assert limits[_layouts.DIAG] == limits[_layouts.SPHERICAL] == _constants.MAX_STATIC_DIAGONAL


def test_the_built_extension_has_todays_values():
    cython_kernels = pytest.importorskip("fastgmm.kernels._cython")
    assert set(cython_kernels.CONSTANTS) == set(NAMES)
    for name in NAMES:
        assert cython_kernels.CONSTANTS[name] == getattr(_constants, name), f"{name}: rebuild (pip install -e .)"
