"""Data sources: where the rows come from, and how they are cut into blocks.

A source is an in-memory or memory-mapped array (``arrays.ArraySource``), a stream of chunks read again at every
pass (``chunks.ChunkSource`` over the public :class:`fastgmm.Chunks`), or a dask array on a cluster
(``dask_arrays.DaskSource``). :func:`fit_source` and :func:`prediction_source` are the only code that asks what X
is; everything above them (the EM driver, the initialisation, the estimator) talks to the contract below.

The contract, :class:`Source`: a source sums a backend's statistics over its blocks (they are additive, so the EM
driver sees one ``Statistics`` per pass whatever holds the data), finds the rows a model explains worst (to re-seed
a collapsed component), hands over a sample of rows for the initialisation, and maps a function over the weighted
log-probabilities of its row blocks, which is every prediction: ``predict``, ``predict_proba``, ``score_samples``,
``score``, ``fit_predict``, ``bic`` and ``aic``.
"""

import sys
from typing import Protocol

import numpy as np
from sklearn.utils.validation import _get_feature_names

from .._validation import check_sample_weight
from .arrays import ArraySource
from .chunks import Chunks, ChunkSource
from .with_missing import missing_values_source


class Source(Protocol):
    """What every data source provides (``fastgmm.sources.arrays.ArraySource`` is the model to read).

    Attributes
    ----------
    n_samples : int or None
        Rows (None for chunks to predict, which are counted as they are read).
    n_features : int or None
        Columns (None for chunks to predict, each of which the model checks).
    dtype : numpy dtype or None
        float32 or float64: of the fitted attributes of a model fitted to it (None for data to predict).
    out_of_core : bool
        Whether the rows may not all fit in memory at once (then the initialisation samples them).
    feature_names : ndarray of str or None
        The column names the data came with.
    """

    n_samples: int
    n_features: int
    dtype: np.dtype
    out_of_core: bool
    feature_names: np.ndarray

    def statistics(self, backend, params):
        """One pass: the ``Statistics`` of every row under ``params`` (float64, about ``params.means``)."""

    def em_iterations(self, backend, params, **settings):
        """Several EM iterations in one backend call (``fastgmm.kernels.numba_.em_iterations``), or None where
        each iteration is a pass of its own."""

    def online_step(self, backend, params, **settings):
        """An online-EM step on these rows in one backend call (``fastgmm.kernels.numba_.online_step``), or None
        where the step is a pass and an M-step of their own; optional (``fastgmm._online.online_step``)."""

    def worst_explained(self, backend, params, count):
        """``(count, n_features)`` float64: the rows of positive weight ``params`` explains worst, repeated when
        there are fewer."""

    def rows(self, indices):
        """``(X[indices], sample_weight[indices] or None)`` in memory, for sorted row indices."""

    def map_log_prob(self, backend, params, function, columns=None, dtype=None):
        """``function(log_prob)`` of every row block's (rows, K) weighted log-probabilities, as one array of
        shape (n_samples,) or (n_samples, columns) (a lazy dask array for a dask source)."""

    def mean(self, values, sample_weight=None):
        """The (weighted) mean of ``values``, a per-row result of ``map_log_prob``, as a float."""


def fit_source(X, sample_weight=None, *, validate, n_jobs=None, missing_values=False):
    """The data source for fit's input.

    Parameters
    ----------
    X : array-like, numpy.memmap, Chunks or dask array
    sample_weight : array-like or None
    validate : callable
        ``validate(X) -> X``: the estimator's validation of an in-memory X for fit.
    n_jobs : int or None
        Kernel threads per dask task (see ``fastgmm.sources.dask_arrays.task_threads``).
    missing_values : bool, default=False
        Whether NaN entries are missing values to marginalise (``validate`` lets them pass): a source that does
        (``with_missing.MissingValuesSource``) when X has any.

    Returns
    -------
    Source
    """
    if isinstance(X, Chunks):
        if sample_weight is not None:
            raise ValueError("with Chunks, give the sample weights inside the chunks as (X_chunk, weight_chunk) pairs")
        return ChunkSource(X, missing_values=missing_values)
    if is_dask_collection(X):
        from .dask_arrays import DaskSource

        return DaskSource(X, sample_weight, n_jobs, missing_values=missing_values)
    out_of_core = isinstance(X, np.memmap)
    # A plain ndarray has no column names; scikit-learn's probe for dataframes costs 10-40 us, a tenth of a
    # partial_fit step.
    feature_names = None if type(X) is np.ndarray else _get_feature_names(X)
    X = validate(X)
    source = ArraySource(X, check_sample_weight(sample_weight, X), out_of_core=out_of_core, feature_names=feature_names)
    return missing_values_source(source) if missing_values else source


def prediction_source(X, *, validate, check_width, n_jobs=None, missing_values=False):
    """The data source for the input of a fitted model's predictions.

    Parameters
    ----------
    X : array-like, numpy.memmap, Chunks or dask array
    validate : callable
        ``validate(X) -> X``: the model's validation of an in-memory X (or of one chunk) to predict.
    check_width : callable
        ``check_width(n_features)``: the model's check of a dask array's number of features.
    n_jobs : int or None
        Kernel threads per dask task.

    Returns
    -------
    Source
    """
    if isinstance(X, Chunks):
        return ChunkSource(X, validate=validate, missing_values=missing_values)
    if is_dask_collection(X):
        from .dask_arrays import DaskSource

        return DaskSource(X, n_jobs=n_jobs, check_width=check_width, missing_values=missing_values)
    source = ArraySource(validate(X))
    return missing_values_source(source) if missing_values else source


def is_dask_collection(X):
    """Whether X is a dask collection, without importing dask when it is not loaded."""
    if sys.modules.get("dask") is None:  # not imported (or blocked): X cannot be a dask collection
        return False
    from dask import is_dask_collection as is_collection

    return is_collection(X)
