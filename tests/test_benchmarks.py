"""The asv suite (asv_benchmarks/) still runs: ``asv check`` and one quick-profile run against the installed
fastgmm with this interpreter, so that a benchmark broken by a change fails the tests rather than a later
dashboard run."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "asv_benchmarks"

pytestmark = pytest.mark.skipif(not (BENCHMARKS / "asv.conf.json").exists(), reason="no asv_benchmarks/ here")


def _asv(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "asv", *args], cwd=BENCHMARKS, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def asv_env(tmp_path_factory):
    pytest.importorskip("asv")
    home = tmp_path_factory.mktemp("asv-home")  # asv keeps its machine description in ~/.asv-machine.json
    env = dict(os.environ, HOME=str(home), FASTGMM_ASV_PROFILE="quick",
               FASTGMM_ASV_DATA=str(tmp_path_factory.mktemp("asv-data")))
    env.pop("FASTGMM_BACKEND", None)
    machine = _asv("machine", "--yes", "--machine", "ci", env=env)
    assert machine.returncode == 0, machine.stdout + machine.stderr
    return env


def test_asv_check_finds_no_problems(asv_env):
    result = _asv("check", "--python=same", env=asv_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found" in result.stdout


def test_quick_benchmark_run_succeeds(asv_env):
    result = _asv("run", "--python=same", "--quick", "--show-stderr", "--machine", "ci", env=asv_env)
    # asv run exits 2 when a benchmark fails.
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    for name in ("time_em_iteration", "time_fit", "peakmem_fit", "track_log_likelihood", "time_predict_proba",
                 "track_speedup", "timeraw_first_fit", "time_bayesian_fit", "time_partial_fit"):
        assert f"{name}" in result.stdout, name
    assert "failed" not in result.stdout


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_onedal_peer_runs_the_same_iterations_as_sklearn(covariance_type):
    """The benchmarks' oneDAL wrapper fits from the given start for exactly max_iter iterations: its means follow
    scikit-learn's from the same start (oneDAL regularises differently, hence not to the last digits)."""
    pytest.importorskip("daal4py")
    from sklearn.mixture import GaussianMixture

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from benchmarks.common import OneDALMixture
        from benchmarks.datasets import overlapping_start
    finally:
        sys.path.remove(str(BENCHMARKS))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 3))
    X[:10_000] += 1.5
    init = overlapping_start(X, covariance_type, 6)
    for max_iter in (1, 3, 10):
        peer = OneDALMixture(6, covariance_type=covariance_type, max_iter=max_iter, **init).fit(X)
        expected = GaussianMixture(6, covariance_type=covariance_type, max_iter=max_iter, tol=0, **init).fit(X)
        assert peer.n_iter_ == max_iter
        np.testing.assert_allclose(peer.means_, expected.means_, atol=1e-4)
        np.testing.assert_allclose(peer.weights_, expected.weights_, atol=1e-5)
