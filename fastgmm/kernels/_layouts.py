"""Array layouts shared by the compiled backends: the covariance-type codes, the kernel layout of the precision
factors and of the partial second moments, and the padded rows of the centred-column buffers."""

import functools

import numpy as np

from ._constants import DIAG, FULL, SPHERICAL, TIED

CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}


def gram_rows(n_features):
    """Rows of the kernels' centred-column buffers: the D features, then zeros up to a multiple of 4 (so that the
    2 x 4 blocks of their Gram product are whole)."""
    return (n_features + 3) // 4 * 4


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
        # The kernels write the upper triangle and leave zeros below: copy it down, in place.
        rows, columns = _strictly_lower(s2.shape[-1])
        s2[:, rows, columns] = s2[:, columns, rows]
    if covariance_type == "tied":
        s2 = s2[0]
    elif covariance_type == "diag":
        s2 = s2[:, :, 0]
    elif covariance_type == "spherical":
        s2 = s2[:, :, 0].sum(axis=1)
    return s2


@functools.lru_cache(maxsize=64)
def _strictly_lower(n_features):
    return np.tril_indices(n_features, -1)


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


def from_3d(covariance_type, array):
    """The inverse of ``as_3d``: a kernel-layout array in the layout of the attribute (``precisions_cholesky_``,
    ``covariances_``) of ``covariance_type``; a view."""
    if covariance_type == "tied":
        return array[0]
    if covariance_type == "diag":
        return array[:, :, 0]
    if covariance_type == "spherical":
        return array[:, 0, 0]
    return array
