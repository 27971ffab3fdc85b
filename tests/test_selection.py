"""select_model against a loop over scikit-learn's GaussianMixture().bic with the same initialisations, its
results table, and the progress bar and per-iteration callback."""

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine

import fastgmm
from fastgmm import GaussianMixture, select_model

from .oracles import sklearn_selection


@pytest.mark.parametrize("dataset", [load_iris, load_wine], ids=["iris", "wine"])
@pytest.mark.parametrize("criterion", ["bic", "aic"])
def test_select_picks_what_a_sklearn_loop_picks(dataset, criterion):
    X = dataset().data
    expected = sklearn_selection(X, range(1, 11), criterion)
    best, results = select_model(X, range(1, 11), criterion=criterion, random_state=0)
    assert (best.n_components, best.covariance_type) == min(expected, key=expected.get)
    for k, cov, value in zip(results["n_components"], results["covariance_type"], results[criterion]):
        # Same starts, so the same fits, to rounding (measured: 1e-13 relative at most).
        assert value == pytest.approx(expected[(k, cov)], rel=1e-9), (k, cov)


def test_results_table_columns_and_best():
    X = load_iris().data
    seen = []
    best, results = select_model(X, [1, 3], ("diag", "full"), random_state=0, callback=seen.append)
    assert list(results) == ["n_components", "covariance_type", "bic", "log_likelihood", "n_parameters", "n_iter",
                             "converged", "seconds", "error"]
    assert list(results["n_components"]) == [1, 1, 3, 3] and list(results["covariance_type"]) == ["diag", "full"] * 2
    assert [row["n_components"] for row in seen] == [1, 1, 3, 3]
    i = int(np.argmin(results["bic"]))
    assert (best.n_components, best.covariance_type) == (results["n_components"][i], results["covariance_type"][i])
    model = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    j = 3
    assert results["bic"][j] == model.bic(X)
    assert results["log_likelihood"][j] == pytest.approx(model.score(X) * len(X), rel=1e-12)
    assert results["n_iter"][j] == model.n_iter_ and results["n_parameters"][j] == model._n_parameters()
    assert np.all(results["seconds"] > 0) and np.all(results["error"] == "")


def test_failed_pairs_are_recorded_and_skipped():
    X = load_iris().data[:5]
    best, results = select_model(X, [1, 2, 8], ("full",), random_state=0)
    assert best.n_components in (1, 2)
    assert math.isinf(results["bic"][2]) and "n_samples >= n_components" in results["error"][2]
    with pytest.raises(ValueError, match="every fit failed"):
        select_model(X, [8, 9], random_state=0)


def test_weighted_criterion_counts_integer_weights_as_copies():
    X = load_iris().data
    weights = np.random.RandomState(0).randint(1, 4, len(X))
    _, weighted = select_model(X, [2], ("diag",), sample_weight=weights, random_state=0, tol=0, max_iter=5)
    model = GaussianMixture(2, covariance_type="diag", random_state=0, tol=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, sample_weight=weights)
    repeated = np.repeat(X, weights, axis=0)
    assert weighted["bic"][0] == pytest.approx(model.bic(repeated), rel=1e-10)


@pytest.mark.parametrize(
    "kwargs, error",
    [(dict(criterion="icl"), "criterion must be one of"), (dict(n_components=[0, 2]), "positive integers"),
     (dict(covariance_type="bogus"), "covariance_type must be among")],
)
def test_bad_selection_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        select_model(load_iris().data, **kwargs)


def test_callback_sees_every_iteration_of_every_init():
    X = load_iris().data
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianMixture(3, n_init=2, tol=0, max_iter=4, random_state=0, callback=seen.append).fit(X)
    assert [(row["init"], row["iteration"]) for row in seen] == [(i, n) for i in range(2) for n in range(1, 5)]
    runs = [[row["lower_bound"] for row in seen if row["init"] == i] for i in range(2)]
    assert model.lower_bounds_ in runs
    assert all(set(row) == {"init", "iteration", "lower_bound", "change"} for row in seen)
    # A callback is code, not data: a saved model has none.
    import io

    buffer = io.BytesIO()
    model.save(buffer)
    assert fastgmm.load(io.BytesIO(buffer.getvalue())).callback is None


def test_progress_bar_shows_the_lower_bound(monkeypatch, capsys):
    from fastgmm import _progress

    monkeypatch.setattr(_progress, "DELAY", 0)
    monkeypatch.setattr(_progress, "MININTERVAL", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, progress=True, tol=0, max_iter=3, random_state=0).fit(load_iris().data)
    assert "lower_bound=" in capsys.readouterr().err
    GaussianMixture(2, progress="auto", random_state=0).fit(load_iris().data)  # stderr is not a terminal here
    GaussianMixture(2, progress=False, random_state=0).fit(load_iris().data)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("random_state", [0, "instance"])
def test_initial_labels_are_drawn_once_per_k_and_models_are_unchanged(monkeypatch, random_state):
    """The k-means labels of a K are the same for every covariance type: select_model computes them once, and
    every pair's model is bit for bit the model of its own fit."""
    import fastgmm._init

    X = load_iris().data
    seed = np.random.RandomState(5) if random_state == "instance" else random_state
    calls = []
    draw = fastgmm._init._draw_hard_labels
    monkeypatch.setattr(fastgmm._init, "_draw_hard_labels", lambda *args: calls.append(args[2]) or draw(*args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best, results = select_model(X, n_components=range(1, 4), random_state=seed, n_init=2)
    assert sorted(calls) == [1, 1, 2, 2, 3, 3]  # n_init draws per K, not per pair
    for k, cov, bic in zip(results["n_components"], results["covariance_type"], results["bic"]):
        own_seed = np.random.RandomState(5) if random_state == "instance" else random_state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alone = GaussianMixture(int(k), covariance_type=str(cov), random_state=own_seed, n_init=2).fit(X)
        assert alone.bic(X) == bic
        if k == best.n_components and cov == best.covariance_type:
            np.testing.assert_array_equal(alone.means_, best.means_)
