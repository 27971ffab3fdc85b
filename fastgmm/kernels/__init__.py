"""EM kernels: one module per backend, each with the interface of :class:`Backend`.

``numpy_`` is the reference every other backend is tested against (``tests/test_backends.py`` checks that each
provides this interface with the reference's signatures); ``numba_`` and ``cython_`` are the compiled ones.
``fastgmm._backends`` is the only code that imports them by name.
"""

from typing import Protocol

# Every backend has these, with the parameters and meaning of fastgmm.kernels.numpy_'s (a compiled backend may take
# tuning knobs with defaults after them, such as accumulate's dense_live).
KERNEL_FUNCTIONS = (
    "accumulate", "weighted_log_prob", "responsibility_moments", "candidate_potentials", "update_closest",
    "lloyd_step", "label_statistics",
)

# A backend may have these (fastgmm.kernels.numba_'s are the model); they return None for a call they do not take,
# and the caller then uses the functions above.
OPTIONAL_KERNEL_FUNCTIONS = ("em_iterations", "online_step", "kmeans", "missing_statistics")

# A backend that compiles its kernels at first use (Numba's) has these too, for backend='auto' to serve a call
# elsewhere while a kernel is not compiled, and for fastgmm._background_compile to compile it (see numba_).
COMPILATION_FUNCTIONS = ("cached_only", "NotCompiled", "compile_kernel")


class Backend(Protocol):
    """What a backend module provides; the kernel functions are those named by ``KERNEL_FUNCTIONS`` (documented
    in ``fastgmm.kernels.numpy_``) and, optionally, ``OPTIONAL_KERNEL_FUNCTIONS``.

    Attributes
    ----------
    NAME : str
        Its name in ``fastgmm._backends.BACKENDS``, as the estimator's ``backend_`` reports it.
    """

    NAME: str

    def threads(self, n_jobs):
        """A context manager applying the backend's thread policy for ``n_jobs`` (joblib's convention) to the
        kernel calls made inside it (``fastgmm._threads``)."""

    def runtime_summary(self):
        """``{label: text}`` of what ``fastgmm.show_versions()`` reports about the backend's runtime: its
        ``'threads'`` and, where it has one, its compilation ``'cache'``."""
