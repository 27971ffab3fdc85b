"""partial_fit: online EM on batches seen once, against a naive NumPy oracle of the same algorithm; its first step,
convergence on a stationary stream, tracking of a drifting one, thread-count independence, persistence mid-stream
and bad batches."""

import io
import pickle
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import fastgmm
from fastgmm import GaussianMixture

from .oracles import dense_covariances, make_blobs

TRUE_MEANS = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])


def stream(n_batches, batch_size, seed=0, drift=None):
    """Batches from three unit-variance blobs; with ``drift``, every mean moves by ``drift`` per batch."""
    rng = np.random.default_rng(seed)
    for b in range(n_batches):
        labels = rng.integers(3, size=batch_size)
        shift = 0.0 if drift is None else b * np.asarray(drift)
        yield TRUE_MEANS[labels] + shift + rng.standard_normal((batch_size, 2))


def naive_online_em(batches, model, learning_decay, learning_offset, step_size=None):
    """Online EM written out on raw moments, one batch after another, from ``model``'s parameters:
    s = (1 - eta) s + eta mean_n(r, r x, r x x^T), and the M-step from s (the algorithm of Cappé and Moulines; eta
    is 1 for the first batch). Returns the means and dense covariances after the last batch."""
    weights, means = model.weights_.copy(), model.means_.copy()
    covariances = dense_covariances(model._parameters())
    K, D = means.shape
    s = None
    for t, X in enumerate(batches):
        log_prob = np.stack([
            np.log(weights[k]) - 0.5 * (D * np.log(2 * np.pi) + np.linalg.slogdet(covariances[k])[1]
                                        + np.einsum("ni,ij,nj->n", X - means[k], np.linalg.inv(covariances[k]),
                                                    X - means[k]))
            for k in range(K)], axis=1)
        r = np.exp(log_prob - logsumexp(log_prob, axis=1)[:, None])
        batch = (r.mean(0), r.T @ X / len(X), np.einsum("nk,ni,nj->kij", r, X, X) / len(X))
        eta = 1.0 if s is None else (step_size if step_size is not None else (learning_offset + t) ** -learning_decay)
        s = batch if s is None else tuple((1 - eta) * old + eta * new for old, new in zip(s, batch))
        nk = s[0] + 10 * np.finfo(float).eps
        weights = nk / nk.sum()
        means = s[1] / nk[:, None]
        covariances = s[2] / nk[:, None, None] - np.einsum("ki,kj->kij", means, means) + model.reg_covar * np.eye(D)
    return means, covariances


def test_first_call_is_one_em_iteration_of_its_batch(covariance_type):
    X = make_blobs(2000, 3, 3, seed=1)
    settings = dict(covariance_type=covariance_type, random_state=0)
    online = GaussianMixture(3, **settings).partial_fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch = GaussianMixture(3, max_iter=1, **settings).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(online, name), getattr(batch, name), rtol=1e-12, atol=1e-14, err_msg=name)
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-12)
    assert online.n_iter_ == 1 and online.lower_bounds_ == [online.lower_bound_] and not online.converged_


@pytest.mark.parametrize("step", [None, 0.3])
def test_equals_the_naive_online_em(backend, step):
    batches = list(stream(8, 400, seed=2))
    model = GaussianMixture(3, random_state=0, backend=backend, learning_decay=0.6, learning_offset=2.0,
                            step_size=step).partial_fit(batches[0])
    # From the parameters the first step started from (fit's initialisation, max_iter=0), every batch.
    expected_means, expected_covariances = naive_online_em(batches, _first_step_start(batches[0], backend), 0.6, 2.0,
                                                           step)
    for X in batches[1:]:
        model.partial_fit(X)
    np.testing.assert_allclose(model.means_, expected_means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.covariances_, expected_covariances, rtol=1e-10, atol=1e-12)
    assert model.n_iter_ == len(batches) and len(model.lower_bounds_) == len(batches)


def _first_step_start(X, backend):
    """The parameters the first partial_fit steps from: fit's initialisation (max_iter=0)."""
    return GaussianMixture(3, random_state=0, backend=backend, max_iter=0).fit(X)


def test_stationary_stream_converges_to_the_truth():
    model = GaussianMixture(3, random_state=0)
    for X in stream(300, 500, seed=3):
        model.partial_fit(X)
    order = np.argsort(model.means_[:, 0] + 10 * model.means_[:, 1])
    np.testing.assert_allclose(model.means_[order], TRUE_MEANS, atol=0.05)
    np.testing.assert_allclose(model.covariances_[order], np.repeat(np.eye(2)[None], 3, axis=0), atol=0.05)


def test_constant_step_tracks_a_drifting_stream_the_decaying_one_does_not():
    drift = (0.02, 0.01)
    n_batches = 400
    final_means = TRUE_MEANS + (n_batches - 1) * np.asarray(drift)
    errors = {}
    for name, step in (("constant", 0.1), ("decaying", None)):
        model = GaussianMixture(3, random_state=0, step_size=step)
        for X in stream(n_batches, 300, seed=4, drift=drift):
            model.partial_fit(X)
        order = np.argsort(model.means_[:, 0] + 10 * model.means_[:, 1])
        errors[name] = np.abs(model.means_[order] - final_means).max()
    # The constant step lags by about drift / step = 0.2 per coordinate; the decaying one by far more.
    assert errors["constant"] < 0.3, errors
    assert errors["decaying"] > 1.0, errors


def test_same_bits_whatever_the_thread_count():
    batches = list(stream(5, 3000, seed=5))
    models = [GaussianMixture(3, random_state=0, n_jobs=n, backend="numba") for n in (1, 2)]
    for X in batches:
        for model in models:
            model.partial_fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(models[0], name), getattr(models[1], name))


def test_batches_of_one_row_and_of_1e5_rows():
    model = GaussianMixture(3, random_state=0).partial_fit(next(stream(1, 100_000, seed=6)))
    for X in stream(50, 1, seed=7):
        model.partial_fit(X)
    assert model.n_iter_ == 51 and np.all(np.isfinite(model.means_))


def test_persistence_mid_stream_continues_exactly(tmp_path, covariance_type):
    batches = list(stream(6, 500, seed=8))
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for X in batches[:3]:
        model.partial_fit(X)
    model.save(tmp_path / "model.npz")
    restored = [fastgmm.load(tmp_path / "model.npz"), pickle.loads(pickle.dumps(model))]
    for X in batches[3:]:
        for other in [model, *restored]:
            other.partial_fit(X)
    for other in restored:
        np.testing.assert_array_equal(other.means_, model.means_)
        np.testing.assert_array_equal(other.covariances_, model.covariances_)
        assert other.lower_bounds_ == model.lower_bounds_ and other.n_iter_ == 6


def test_clone_restarts_and_fit_discards_the_running_statistics():
    X = next(stream(1, 600, seed=9))
    model = GaussianMixture(3, random_state=0).partial_fit(X).partial_fit(X)
    assert not hasattr(clone(model), "means_")
    model.fit(X)
    assert "_stream" not in model.__dict__
    buffer = io.BytesIO()
    model.save(buffer)
    assert "stream_nk" not in np.load(io.BytesIO(buffer.getvalue())).files


@pytest.mark.parametrize(
    "batch, message",
    [
        (np.zeros((5, 3)), "features"),
        (np.array([[np.nan, 0.0], [1.0, 1.0]]), "NaN"),
        (np.empty((0, 2)), "0 sample"),
    ],
)
def test_bad_batches_raise_and_leave_the_model(batch, message):
    model = GaussianMixture(3, random_state=0).partial_fit(next(stream(1, 300, seed=10)))
    before = {key: (value.copy() if isinstance(value, np.ndarray) else value) for key, value in vars(model).items()}
    with pytest.raises(ValueError, match=message):
        model.partial_fit(batch)
    np.testing.assert_array_equal(model.means_, before["means_"])
    assert model.n_iter_ == 1 and model._stream[0] == 1


def test_a_first_batch_smaller_than_k_is_an_error():
    with pytest.raises(ValueError, match="at least n_components = 3 rows"):
        GaussianMixture(3).partial_fit(np.zeros((2, 2)))


# --------------------------------------------------------------------------------------------- mini-batch fit


def test_a_mini_batch_epoch_is_partial_fit_over_the_batches(covariance_type):
    X = np.vstack(list(stream(1, 5000, seed=11)))
    settings = dict(covariance_type=covariance_type, random_state=0, learning_offset=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mini = GaussianMixture(3, batch_size=1000, max_iter=2, tol=0, **settings).fit(X)
    start = GaussianMixture(3, max_iter=0, **settings).fit(X)
    online = GaussianMixture(3, warm_start=True, **settings)
    online.__dict__.update({k: v for k, v in start.__dict__.items() if k.endswith("_") or k.startswith("_float")})
    online._stream = (0, None)  # a stream that starts at the initialisation, as mini-batch EM's first epoch does
    bounds = []
    for _ in range(2):
        lls = []
        for begin in range(0, len(X), 1000):
            online.partial_fit(X[begin:begin + 1000])
            lls.append(online.lower_bound_)
        bounds.append(np.mean(lls))
    np.testing.assert_allclose(mini.means_, online.means_, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(mini.covariances_, online.covariances_, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(mini.lower_bounds_, bounds, rtol=1e-12)
    assert mini.n_iter_ == 2


def test_mini_batch_fit_converges_near_the_exact_fit(tmp_path):
    X = np.vstack(list(stream(1, 60_000, seed=12)))
    np.save(tmp_path / "X.npy", X)
    exact = GaussianMixture(3, random_state=0).fit(X)
    for data in (X, np.load(tmp_path / "X.npy", mmap_mode="r")):
        mini = GaussianMixture(3, random_state=0, batch_size=5000, tol=1e-4).fit(data)
        assert mini.converged_
        order, exact_order = np.argsort(mini.means_[:, 0]), np.argsort(exact.means_[:, 0])
        np.testing.assert_allclose(mini.means_[order], exact.means_[exact_order], atol=0.03)
        assert mini.score(X) == pytest.approx(exact.score(X), rel=1e-3)


def test_mini_batch_fit_of_chunks_is_a_clear_error():
    X = np.vstack(list(stream(1, 600, seed=13)))
    with pytest.raises(ValueError, match="batch_size .* needs an in-memory array or a numpy.memmap"):
        GaussianMixture(3, batch_size=100).fit(fastgmm.Chunks([X[:300], X[300:]]))


def test_partial_fit_after_fit_continues_from_the_fitted_model(covariance_type):
    """A batch from one cluster only moves the fitted model towards it; on its own it would empty the others."""
    X = np.vstack(list(stream(1, 3000, seed=14)))
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    before = model.weights_.copy()
    one_cluster = TRUE_MEANS[0] + np.random.default_rng(15).standard_normal((200, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastgmm.ComponentCollapseWarning)
        model.partial_fit(one_cluster)
    assert model.n_iter_ == 2 and model._stream[0] == 2
    # The weights mix as the statistics do: (1 - eta) the fit's and eta the batch's, all on one component.
    eta = (10.0 + 1) ** -0.7
    nearest = np.argmin(((model.means_ - TRUE_MEANS[0]) ** 2).sum(axis=1))
    np.testing.assert_allclose(model.weights_, (1 - eta) * before + eta * np.eye(3)[nearest], atol=2e-3)


def test_mini_batch_fit_skips_batches_without_weight():
    X = np.vstack(list(stream(1, 4000, seed=16)))
    weight = np.ones(len(X))
    weight[1000:2000] = 0.0  # one whole batch of zero weight
    model = GaussianMixture(3, random_state=0, batch_size=1000, max_iter=5).fit(X, sample_weight=weight)
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.lower_bounds_))


# ------------------------------------------------------------------------------------ the compiled online step


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_the_compiled_online_step_is_the_python_one(monkeypatch, covariance_type, weighted):
    """Numba's ``online_step`` (pass, mixing and M-step in one call) against the same backend's pass with
    ``fastgmm._online``'s mixing and M-step, batch after batch: a first batch that empties a component (started
    far from every point: the M-step is then left to the collapse policy), and later ones. (A batch of zero
    weight, which mini-batch EM meets, is ``test_mini_batch_fit_skips_batches_without_weight``'s.)"""
    pytest.importorskip("numba")
    from fastgmm.kernels import numba_

    rng = np.random.default_rng(17)
    batches = [X + 1e4 for X in stream(6, 700, seed=17)]  # far from the origin: the mixing must stay shifted
    start = np.vstack([TRUE_MEANS[:2], [1e3, 1e3]]) + 1e4
    weights = [rng.uniform(0.2, 3.0, len(X)) if weighted else None for X in batches]
    taken = []

    def fit(fused):
        model = GaussianMixture(3, covariance_type=covariance_type, random_state=0, backend="numba",
                                learning_offset=1.0, learning_decay=0.51, means_init=start)
        with monkeypatch.context() as patch:
            if not fused:
                patch.setattr(numba_, "online_step", lambda *args, **kwargs: None)
            else:
                original = numba_.online_step
                patch.setattr(numba_, "online_step",
                              lambda *args, **kwargs: taken.append(original(*args, **kwargs)) or taken[-1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fastgmm.ComponentCollapseWarning)
                for X, w in zip(batches, weights):
                    model.partial_fit(X, sample_weight=w)
        return model

    fused, python = fit(True), fit(False)
    assert len(taken) == len(batches) and all(run is not None for run in taken)
    assert taken[0]["params"] is None and all(run["params"] is not None for run in taken[1:])
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(fused, name), getattr(python, name), rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(fused.lower_bounds_, python.lower_bounds_, rtol=1e-12)
    for field in ("nk", "s2", "shift"):
        np.testing.assert_allclose(getattr(fused._stream[1], field), getattr(python._stream[1], field), rtol=1e-9,
                                   atol=1e-12, err_msg=field)
