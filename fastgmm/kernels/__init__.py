"""EM kernels: one module per backend, each with the same interface.

A backend module has ``NAME`` (its name in ``fastgmm._backends.BACKENDS``), ``threads(n_jobs)`` (a context manager
applying its thread policy) and the functions of ``KERNEL_FUNCTIONS``, with the signatures and meaning of
``fastgmm.kernels.numpy_``'s, the reference every other backend is tested against. It may also have those of
``OPTIONAL_KERNEL_FUNCTIONS`` (see ``fastgmm.kernels.numba_``), which return None for a call they do not take.
"""

KERNEL_FUNCTIONS = (
    "accumulate", "weighted_log_prob", "candidate_potentials", "update_closest", "lloyd_step", "label_statistics",
)

OPTIONAL_KERNEL_FUNCTIONS = ("em_iterations", "kmeans")
