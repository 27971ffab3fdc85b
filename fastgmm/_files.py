"""Data files for the command line: .npy, .npz, .csv and .parquet in, labels and probabilities out."""

import csv
import math
import os

import numpy as np

FORMATS = (".npy", ".npz", ".csv", ".parquet")


# A .npy file larger than this is memory-mapped (read block by block at each EM pass) rather than loaded.
MEMMAP_BYTES = 2**30


class DataFileError(ValueError):
    """A data file that cannot be read as asked (missing, unknown format, no such column or array)."""


def _format(path):
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in FORMATS:
        raise DataFileError(f"{path}: unsupported format {suffix or '(no suffix)'!r}; use one of {', '.join(FORMATS)}")
    return suffix


def column_indices(names, columns, path):
    """Indices of ``columns`` (names, or integer positions given as text) among ``names``."""
    indices = []
    for column in columns:
        if column in names:
            indices.append(names.index(column))
        elif column.lstrip("-").isdigit() and -len(names) <= int(column) < len(names):
            indices.append(int(column) % len(names))
        else:
            raise DataFileError(f"{path}: no column {column!r}; the columns are {', '.join(map(str, names))}")
    return indices


def stream_files(paths):
    """The data files a stream reads, in order: each path as given, a directory as its data files sorted by name.

    Raises
    ------
    DataFileError
        When a path does not exist or a directory holds no data file.
    """
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, name) for name in os.listdir(path)
                           if os.path.splitext(name)[1].lower() in FORMATS)
            if not found:
                raise DataFileError(f"{path}: a directory with no data file ({', '.join(FORMATS)})")
            files += found
        elif not os.path.exists(path):
            raise DataFileError(f"{path}: no such file")
        else:
            files.append(str(path))
    return files


def read_data(path, columns=None, key=None):
    """The rows of a data file as a 2-D float array, and the names of its columns.

    Parameters
    ----------
    path : str
        .npy (memory-mapped above 1 GiB, so that a file larger than memory is fitted block by block), .npz (the
        array ``key``, or its only array), .csv (comma-separated; a first row that is not all numbers is the header)
        or .parquet (needs pyarrow).
    columns : sequence of str, optional
        Columns to keep, by name (CSV header, Parquet) or by position.
    key : str, optional
        The array of an .npz file.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    names : list of str
    """
    suffix = _format(path)
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such file")
    if suffix == ".parquet":
        return _read_parquet(path, columns)
    if suffix == ".csv":
        return _read_csv(path, columns)
    try:
        if suffix == ".npy":
            mmap_mode = "r" if os.path.getsize(path) > MEMMAP_BYTES else None
            X = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                if key is None:
                    if len(archive.files) != 1:
                        raise DataFileError(
                            f"{path}: holds arrays {', '.join(archive.files)}; choose one with --key"
                        )
                    key = archive.files[0]
                if key not in archive.files:
                    raise DataFileError(f"{path}: no array {key!r}; it holds {', '.join(archive.files)}")
                X = archive[key]
    except DataFileError:
        raise
    except Exception as error:  # a damaged or foreign file: whatever numpy's readers raise
        raise DataFileError(f"{path}: cannot be read as {suffix}: {error}") from None
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise DataFileError(f"{path}: expected a 2-D array of rows, got shape {X.shape}")
    names = [str(i) for i in range(X.shape[1])]
    if columns:
        indices = column_indices(names, columns, path)
        X, names = X[:, indices], [names[i] for i in indices]
    return X, names


def _read_csv(path, columns):
    with open(path, newline="") as handle:
        first = next(csv.reader(handle), None)
    if first is None:
        raise DataFileError(f"{path}: empty file")
    try:
        [float(field) for field in first]
        names, skip = [str(i) for i in range(len(first))], 0
    except ValueError:
        names, skip = [field.strip() for field in first], 1
    usecols = column_indices(names, columns, path) if columns else list(range(len(names)))
    try:
        X = np.loadtxt(path, delimiter=",", skiprows=skip, usecols=usecols, ndmin=2, dtype=np.float64)
    except ValueError:
        # Empty cells are missing values (NaN); anything else that is not a number stays an error. A converter
        # per cell is slow, so it reads only files the fast reader refused.
        try:
            X = np.loadtxt(path, delimiter=",", skiprows=skip, usecols=usecols, ndmin=2, dtype=np.float64,
                           converters=_number_or_missing)
        except ValueError as error:
            raise DataFileError(f"{path}: {error}") from None
    return X, [names[i] for i in usecols]


def _number_or_missing(field):
    return float(field) if field.strip() else math.nan


def _read_parquet(path, columns):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError(f"{path}: reading Parquet needs pyarrow (pip install 'fastgmm[parquet]')") from None
    schema = pq.read_schema(path)
    names = list(schema.names)
    chosen = [names[i] for i in column_indices(names, columns, path)] if columns else names
    table = pq.read_table(path, columns=chosen)
    try:
        X = np.column_stack([table.column(name).to_numpy().astype(np.float64) for name in chosen])
    except (ValueError, TypeError) as error:
        raise DataFileError(f"{path}: columns must hold numbers: {error}") from None
    return X, chosen


def write_array(path, array, header=None):
    """Write predictions: .npy, or .csv (one row per sample, with ``header`` when given)."""
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix == ".npy":
        np.save(path, array)
    elif suffix == ".csv":
        fmt = "%d" if array.dtype.kind in "iu" else "%.17g"
        np.savetxt(path, array.reshape(len(array), -1), delimiter=",", fmt=fmt,
                   header=",".join(header) if header else "", comments="")
    else:
        raise DataFileError(f"{path}: write .npy or .csv")
