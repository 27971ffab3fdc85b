"""Array layouts shared by the compiled backends: the covariance-type codes, the per-block partial statistics and
their reduction in block order (the step that makes results independent of the thread count)."""

import numpy as np

FULL, TIED, DIAG, SPHERICAL = 0, 1, 2, 3
CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}


def n_blocks(n_samples, block_size):
    """Number of row blocks; at least one, so that empty partials still have a row."""
    return max(1, -(-n_samples // block_size))


def sum_in_order(partials):
    """Sum of the per-block partials over the first axis. NumPy reduces an outer axis row after row, single-threaded:
    the same additions in the same order whatever the number of threads that filled the partials."""
    return partials.sum(axis=0)


def s2_block_shape(cov, n_components, n_features):
    """Shape of one block's partial s2: full (K, D, D) and tied (1, D, D) upper triangles, diag and spherical
    (K, D, 1) diagonals."""
    if cov == FULL:
        return (n_components, n_features, n_features)
    if cov == TIED:
        return (1, n_features, n_features)
    return (n_components, n_features, 1)


def finish_s2(s2, covariance_type):
    """The summed partial s2 in the reference layout (mirror the upper triangle, drop the helper axes)."""
    if covariance_type in ("full", "tied"):
        s2 = np.triu(s2) + np.transpose(np.triu(s2, 1), (0, 2, 1))
    if covariance_type == "tied":
        s2 = s2[0]
    elif covariance_type == "diag":
        s2 = s2[:, :, 0]
    elif covariance_type == "spherical":
        s2 = s2[:, :, 0].sum(axis=1)
    return s2


def as_3d(covariance_type, precisions_cholesky, n_components, n_features):
    """One array layout for the kernels: full (K, D, D), tied (1, D, D), diag (K, D, 1), spherical (K, 1, 1)."""
    U = np.ascontiguousarray(precisions_cholesky, dtype=np.float64)
    if covariance_type == "tied":
        return U.reshape(1, n_features, n_features)
    if covariance_type == "diag":
        return U.reshape(n_components, n_features, 1)
    if covariance_type == "spherical":
        return U.reshape(n_components, 1, 1)
    return U
