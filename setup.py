"""Build script. Metadata lives in pyproject.toml; this file builds the Cython backend, ``fastgmm.kernels._cython``,
with OpenMP when the compiler has it.

Environment:
    FASTGMM_REQUIRE_OPENMP=1   a compiler without OpenMP is a build error (default: build serial, with a warning)
    FASTGMM_PORTABLE=1         no -march=native: for wheels that run on other machines (default: tuned for this
                               CPU, as a source install builds for the machine it runs on; AVX2 and FMA measured
                               1.5-2x faster than the x86-64 baseline here)
"""

import os
import runpy
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _compiles(compiler, source_text, compile_flags, link_flags):
    """Whether ``compiler`` builds and links ``source_text`` with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(source_text)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=compile_flags)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_flags)
        except Exception:  # any compile or link failure means: not with these flags
            return False
    return True


def _openmp_flags(compiler):
    """(compile flags, link flags) with which this compiler builds and links an OpenMP program, or None."""
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    for compile_flags, link_flags in candidates:
        if _compiles(compiler, _PROBE, compile_flags, link_flags):
            return compile_flags, link_flags
    return None


class BuildExt(build_ext):
    """build_ext that probes for OpenMP before compiling the extensions."""

    def build_extensions(self):
        flags = _openmp_flags(self.compiler)
        if flags is None:
            if os.environ.get("FASTGMM_REQUIRE_OPENMP", "0") not in ("", "0"):
                sys.exit("error: FASTGMM_REQUIRE_OPENMP is set but the C compiler cannot build OpenMP programs")
            warnings.warn(
                "fastgmm: the C compiler has no OpenMP; the Cython backend is built single-threaded", stacklevel=1
            )
            flags = ([], [])
        # Reassociation lets the reductions over a tile's points vectorise (Numba's 'reassoc'); NaN and inf keep their
        # meaning (no -ffinite-math-only): log-likelihoods may be -inf.
        if self.compiler.compiler_type == "msvc":
            optimise = ["/O2"]
        else:
            # -fno-wrapv undoes the -fwrapv of Python's own CFLAGS, which setuptools passes first: with wrapping
            # signed integers GCC gives up vectorising the tile loops (measured on an AMD Zen 4, AVX-512, overlapping
            # data: the Cython pass 1.6-1.8x Numba's with it, 0.8-1.4x without). Neither Cython's code nor the
            # kernels rely on signed overflow.
            optimise = ["-O3", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math", "-fno-math-errno",
                        "-fno-wrapv"]
            native = ["-march=native"]
            portable = os.environ.get("FASTGMM_PORTABLE", "0") not in ("", "0")
            if not portable and _compiles(self.compiler, "int main(void) { return 0; }", native, []):
                optimise += native
        for extension in self.extensions:
            extension.extra_compile_args = optimise + flags[0]
            extension.extra_link_args = flags[1]
        super().build_extensions()


def _write_kernel_constants():
    """Write ``_kernel_constants.h`` from ``_constants.py``, the one definition of the kernels' shared constants
    (rewritten only when its text changes, so that an unchanged build stays up to date)."""
    here = os.path.dirname(os.path.abspath(__file__))
    text = runpy.run_path(os.path.join(here, "fastgmm", "kernels", "_constants.py"))["c_header"]()
    path = os.path.join(here, "fastgmm", "kernels", "_kernel_constants.h")
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)


def _extensions():
    from Cython.Build import cythonize

    _write_kernel_constants()

    return cythonize(
        # optional: without a C compiler the package still installs, with the Numba and NumPy backends.
        [Extension("fastgmm.kernels._cython", ["fastgmm/kernels/_cython.pyx"],
                   depends=["fastgmm/kernels/_tile_math.h", "fastgmm/kernels/_kernel_constants.h"], optional=True)],
        compiler_directives={"language_level": 3},
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
