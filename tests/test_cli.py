"""The ``fastgmm`` command line, run as a subprocess on files written here: every command, every data format,
pictures written and non-empty, and one-line errors (exit status 1, no traceback) for bad files and columns."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris

import fastgmm
from fastgmm import GaussianMixture

IRIS = load_iris(as_frame=True).frame
COLUMNS = ["sepal length (cm)", "petal length (cm)"]
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args, cwd, expect=0):
    result = subprocess.run([sys.executable, "-m", "fastgmm", *map(str, args)], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == expect, result.stderr
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    IRIS.to_csv(path / "iris.csv", index=False)
    np.save(path / "iris.npy", IRIS[COLUMNS].to_numpy())
    np.savez(path / "iris.npz", data=IRIS[COLUMNS].to_numpy(), other=np.zeros(3))
    return path


def test_fit_predict_score_on_csv_columns_by_name(files):
    X = IRIS[COLUMNS].to_numpy()
    out = run("fit", "iris.csv", "-k", 3, "--columns", ",".join(COLUMNS), "-o", "model.npz", "-q", cwd=files).stdout
    assert "fitted 3 components (full) to 150 rows x 2 columns" in out
    expected = GaussianMixture(3, random_state=0).fit(X)
    model = fastgmm.load(files / "model.npz")
    # Small data: the command ran the Cython kernels (see __main__._backend); backends agree to rounding.
    assert model.backend_ in ("cython", "numba")
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-12)

    run("predict", "model.npz", "iris.csv", "--columns", ",".join(COLUMNS), "-o", "labels.csv", cwd=files)
    labels = np.loadtxt(files / "labels.csv", delimiter=",", skiprows=1, dtype=int)
    np.testing.assert_array_equal(labels, expected.predict(X))
    run("predict", "model.npz", "iris.npy", "--proba", "-o", "proba.npy", cwd=files)
    np.testing.assert_allclose(np.load(files / "proba.npy"), expected.predict_proba(X), rtol=1e-12)
    printed = run("predict", "model.npz", "iris.npz", "--key", "data", cwd=files).stdout.split()
    np.testing.assert_array_equal(np.array(printed, dtype=int), expected.predict(X))

    out = run("score", "model.npz", "iris.npy", cwd=files).stdout
    assert f"mean log-likelihood: {model.score(X):.6f}" in out and f"BIC: {model.bic(X):.3f}" in out


def test_fit_bayesian_saves_a_variational_model_that_predicts_and_scores(files):
    X = IRIS[COLUMNS].to_numpy()
    out = run("fit", "iris.npy", "-k", 6, "--bayesian", "--weight-prior", "dirichlet_distribution", "-o",
              "bayes.npz", "-q", cwd=files).stdout
    assert "fitted 6 components (full, variational) to 150 rows x 2 columns" in out
    expected = fastgmm.BayesianGaussianMixture(n_components=6, weight_concentration_prior_type="dirichlet_distribution",
                                               random_state=0).fit(X)
    model = fastgmm.load(files / "bayes.npz")
    assert isinstance(model, fastgmm.BayesianGaussianMixture)
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-10)
    used = int((expected.weights_ >= 1e-2).sum())
    assert f"{used} of the 6 components have a weight of 1% or more" in out
    printed = run("predict", "bayes.npz", "iris.npy", cwd=files).stdout.split()
    np.testing.assert_array_equal(np.array(printed, dtype=int), expected.predict(X))
    out = run("score", "bayes.npz", "iris.npy", cwd=files).stdout
    assert f"mean log-likelihood: {expected.score(X):.6f}" in out and "BIC" not in out


def test_fit_stream_reads_each_file_once_through_partial_fit(files):
    X = IRIS[COLUMNS].to_numpy()
    parts = files / "parts"
    parts.mkdir()
    pieces = [X[:60], X[60:110], X[110:]]
    for i, piece in enumerate(pieces):
        np.save(parts / f"part{i}.npy", piece)
    out = run("fit", "parts", "--stream", "-k", 3, "-o", "stream.npz", "-q", cwd=files).stdout
    assert "streamed 3 file(s), 150 rows x 2 columns" in out
    expected = GaussianMixture(3, random_state=0)
    for piece in pieces:
        expected.partial_fit(piece)
    model = fastgmm.load(files / "stream.npz")
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-10)
    assert model.n_iter_ == 3 and model._stream[0] == 3
    # Files named one by one, the same stream; several files without --stream are an error.
    run("fit", "parts/part0.npy", "parts/part1.npy", "parts/part2.npy", "--stream", "-k", 3, "-o", "named.npz", "-q",
        cwd=files)
    np.testing.assert_array_equal(fastgmm.load(files / "named.npz").means_, model.means_)
    error = run("fit", "parts/part0.npy", "parts/part1.npy", "-k", 3, "-o", "x.npz", cwd=files, expect=1).stderr
    assert "need --stream" in error


def test_fit_missing_marginalize_reads_empty_csv_cells_as_holes(files):
    X = IRIS[COLUMNS].to_numpy().copy()
    X[::7, 0] = np.nan
    X[1::7, 1] = np.nan
    lines = ["a,b"] + [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in X]
    (files / "holes.csv").write_text("\n".join(lines) + "\n")
    refused = run("fit", "holes.csv", "-k", 3, "-o", "holes.npz", "-q", cwd=files, expect=1)
    assert "NaN" in refused.stderr and "Traceback" not in refused.stderr
    run("fit", "holes.csv", "-k", 3, "--missing", "marginalize", "-o", "holes.npz", "-q", cwd=files)
    model = fastgmm.load(files / "holes.npz")
    expected = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    assert model.missing_values == "marginalize"
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-10)
    printed = run("predict", "holes.npz", "holes.csv", cwd=files).stdout.split()
    np.testing.assert_array_equal(np.array(printed, dtype=int), expected.predict(X))


def test_parquet_input(files):
    pytest.importorskip("pyarrow")
    IRIS.to_parquet(files / "iris.parquet")
    out = run("fit", "iris.parquet", "-k", 2, "-t", "diag", "--columns", ",".join(COLUMNS), "-o", "pq.npz", "-q",
              cwd=files).stdout
    assert "fitted 2 components (diag) to 150 rows x 2 columns" in out
    expected = GaussianMixture(2, covariance_type="diag", random_state=0).fit(IRIS[COLUMNS].to_numpy())
    np.testing.assert_allclose(fastgmm.load(files / "pq.npz").means_, expected.means_, rtol=1e-12)


def test_parquet_nulls_are_holes(files):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    X = IRIS[COLUMNS].to_numpy().copy()
    X[::5, 0] = np.nan
    X[2::5, 1] = np.nan
    columns = [pa.array([None if np.isnan(v) else v for v in X[:, i]], type=pa.float64()) for i in range(2)]
    pq.write_table(pa.table(columns, names=["a", "b"]), files / "holes.parquet")
    run("fit", "holes.parquet", "-k", 3, "--missing", "marginalize", "-o", "pq_holes.npz", "-q", cwd=files)
    expected = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    np.testing.assert_allclose(fastgmm.load(files / "pq_holes.npz").means_, expected.means_, rtol=1e-10)


def test_select_prints_the_table_saves_the_best_and_draws_it(files):
    pytest.importorskip("matplotlib")
    out = run("select", "iris.csv", "--columns", "0,1,2,3", "-k", "1-4", "-o", "best.npz", "--plot", "bic.png",
              "-q", cwd=files).stdout
    assert "best by BIC: 2 components, full covariances (16 fits" in out
    assert len([line for line in out.splitlines() if line[:1] in (" ", "*") and "full" in line]) == 4
    assert fastgmm.load(files / "best.npz").n_components == 2
    picture = (files / "bic.png").read_bytes()
    assert picture.startswith(PNG) and len(picture) > 10_000


def test_plot_and_demo_write_pictures(files):
    pytest.importorskip("matplotlib")
    run("fit", "iris.npz", "--key", "data", "-k", 3, "-o", "m3.npz", "-q", cwd=files)
    run("plot", "m3.npz", "iris.npz", "--key", "data", "-o", "fit.png", cwd=files)
    picture = (files / "fit.png").read_bytes()
    assert picture.startswith(PNG) and len(picture) > 10_000
    out = run("demo", "--n-samples", 4000, "--n-components", 3, "--plot", "demo.png", "-q", cwd=files).stdout
    assert "fastgmm was" in out and "x faster" in out and "picture of the fit: demo.png" in out
    picture = (files / "demo.png").read_bytes()
    assert picture.startswith(PNG) and len(picture) > 10_000


def test_info_lists_backends(files):
    out = run("info", cwd=files).stdout
    assert "Backends:" in out and "auto:" in out and "matplotlib:" in out


def test_the_console_script_runs(files):
    import os
    import shutil

    script = shutil.which("fastgmm", path=os.path.dirname(sys.executable)) or shutil.which("fastgmm")
    if script is None:
        pytest.skip("the fastgmm console script is not installed on PATH")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "fastgmm demo" in result.stdout and "select DATA" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "missing.csv", "-k", 2, "-o", "x.npz"], "missing.csv: no such file"),
        (["fit", "iris.txt", "-k", 2, "-o", "x.npz"], "unsupported format '.txt'"),
        (["fit", "iris.csv", "--columns", "bogus", "-k", 2, "-o", "x.npz"], "no column 'bogus'; the columns are"),
        (["fit", "iris.npz", "-k", 2, "-o", "x.npz"], "holds arrays data, other; choose one with --key"),
        (["fit", "iris.npz", "--key", "nope", "-k", 2, "-o", "x.npz"], "no array 'nope'"),
        (["fit", "iris.npy", "-k", 500, "-o", "x.npz"], "Expected n_samples >= n_components"),
        (["predict", "iris.csv", "iris.csv"], "iris.csv: not a fastgmm model file"),
        (["select", "iris.npy", "-k", "0-3"], None),
    ],
    ids=["missing", "format", "column", "npz-key-needed", "npz-key", "too-many-components", "not-a-model", "bad-k"],
)
def test_errors_are_one_line(files, args, message):
    (files / "iris.txt").write_text("1,2\n")
    result = run(*args, cwd=files, expect=2 if message is None else 1)
    assert "Traceback" not in result.stderr
    if message is not None:
        assert message in result.stderr
        assert result.stderr.count("\n") == 1


def test_auto_backend_of_a_command_prefers_cython_on_small_data(monkeypatch):
    from fastgmm import _backends

    from .conftest import USABLE_BACKENDS

    small = 300
    monkeypatch.delenv("FASTGMM_BACKEND", raising=False)
    assert _backends.command_backend("auto", small) == ("cython" if "cython" in USABLE_BACKENDS else "auto")
    assert _backends.command_backend("numpy", small) == "numpy"
    monkeypatch.setattr(_backends, "_SMALL_DATA", 10)
    assert _backends.command_backend("auto", small) == "auto"
    monkeypatch.setattr(_backends, "_SMALL_DATA", 10**7)
    monkeypatch.setenv("FASTGMM_BACKEND", "numba")
    assert _backends.command_backend("auto", small) == "auto"
