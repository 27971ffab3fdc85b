"""EM kernels: one interface (``accumulate``, ``weighted_log_prob``), one module per backend."""
