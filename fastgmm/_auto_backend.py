"""The backend behind ``backend='auto'`` when both compiled backends are usable: Numba's kernels wherever their
compilation for the call is at hand (in memory or in Numba's on-disk cache), else the Cython kernels, which need no
compilation, while a background process compiles the Numba one (``fastgmm._background_compile``).

A fresh environment therefore never waits for Numba (its first fit of a new shape took 8-20 s here), and once the
cache holds a kernel every later call, in this process or the next, runs Numba's. Both backends run the same
algorithm with the same block order, so a model depends on which one served it only to rounding. An instance
serves one fit or prediction and says in ``NAME`` which backend ran it: 'numba' when every call ran Numba's
kernels, else 'cython'.
"""

from contextlib import ExitStack, contextmanager

from . import _background_compile
from .kernels import KERNEL_FUNCTIONS, OPTIONAL_KERNEL_FUNCTIONS


_DECLINED = object()

_ROUTED = frozenset(KERNEL_FUNCTIONS + OPTIONAL_KERNEL_FUNCTIONS)


class AutoBackend:
    """Numba where compiled, else Cython; see the module docstring.

    Parameters
    ----------
    numba, cython : module
        The two kernel modules.
    """

    def __init__(self, numba, cython):
        self._numba = numba
        self._cython = cython
        self._served = {}  # kernel function name -> the module that serves it from now on
        self.PARALLEL_WORK = numba.PARALLEL_WORK

    def __getattr__(self, name):
        # The routed kernel functions, made at first use (an instance serves one fit, which uses a few of them).
        if name in _ROUTED and hasattr(self._numba, name):
            routed = self.__dict__[name] = self._routed(name)
            return routed
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def NAME(self):  # noqa: N802 - the attribute every backend module has
        """'numba' if every kernel call so far ran Numba's kernels, else 'cython'."""
        return "cython" if self._cython in self._served.values() else "numba"

    def _routed(self, name):
        numba_function = getattr(self._numba, name)
        fallback = self._cython
        cython_function = getattr(self._cython, name, None)
        if cython_function is None:
            # An optional function Cython lacks declines the call (the caller then uses the required ones), and a
            # declined call ran nothing on Cython: it does not make NAME 'cython'.
            fallback = _DECLINED

            def cython_function(*args, **kwargs):
                return None

        def call(*args, **kwargs):
            if self._served.get(name) is not fallback:
                try:
                    with self._numba.cached_only():
                        result = numba_function(*args, **kwargs)
                    self._served[name] = self._numba
                    return result
                except self._numba.NotCompiled as missing:
                    # Raised before the kernel wrote anything the caller sees: every wrapper that writes into an
                    # argument does so in its single kernel call.
                    _background_compile.request(missing.kernel, missing.signature)
                    self._served[name] = fallback
            return cython_function(*args, **kwargs)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = f"``{name}`` of Numba's kernels if compiled for these arguments, else of Cython's."
        return call

    @contextmanager
    def threads(self, n_jobs):
        """Both backends' thread policies for ``n_jobs`` (either may serve a call of the block). While a background
        compilation runs, the default (``n_jobs=None``) leaves it one core: a team of threads as large as the
        machine waits at every barrier for the thread sharing a core with it (measured: a 10,000 x 3 Cython fit
        took 0.14 s instead of 0.007 s on 2 cores)."""
        if n_jobs is None and _background_compile.busy():
            n_jobs = -2
        with ExitStack() as stack:
            stack.enter_context(self._numba.threads(n_jobs))
            stack.enter_context(self._cython.threads(n_jobs))
            yield
