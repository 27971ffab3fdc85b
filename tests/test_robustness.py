"""Degenerate data and collapsing components: a fit with reg_covar > 0 always ends with a finite, valid model, and
a component that empties is re-seeded instead of being carried dead (see fastgmm._collapse and
docs/robustness.md)."""

import signal
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgmm import Chunks, ComponentCollapseWarning, GaussianMixture
from fastgmm._backends import get_backend
from fastgmm.sources.arrays import ArraySource
from fastgmm.sources.blocks import worst_rows
from fastgmm.sources.chunks import ChunkSource
from fastgmm._parameters import MixtureParameters, precision_cholesky_from_covariances

from .oracles import make_blobs

RNG = np.random.RandomState(0)
TWO_BLOBS = np.vstack([RNG.randn(300, 3), RNG.randn(300, 3) + 5])


def assert_valid_model(model, n_features):
    """Finite parameters, weights summing to 1, covariances symmetric positive definite."""
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(model, name))), name
    assert np.isfinite(model.lower_bound_)
    np.testing.assert_allclose(model.weights_.sum(), 1.0, rtol=1e-12)
    assert model.means_.shape[1] == n_features
    cov = model.covariances_
    if model.covariance_type in ("diag", "spherical"):
        assert np.all(cov > 0)
        return
    for matrix in cov if model.covariance_type == "full" else [cov]:
        np.testing.assert_array_equal(matrix, matrix.T)
        assert np.linalg.eigvalsh(matrix).min() > 0


# Every case of the robustness table in docs/robustness.md under "Degenerate data".
DEGENERATE = {
    "duplicated points": np.repeat(TWO_BLOBS[:5], 60, axis=0),
    "all points equal": np.ones((50, 3)),
    "a constant column": np.c_[TWO_BLOBS, np.full(600, 7.0)],
    # Contiguous, as a 1-D column reshaped would be: the strided layout is test_kernels.py's (a Numba
    # specialisation of every kernel per layout and D, for one layout the suite has nowhere else).
    "one feature": np.ascontiguousarray(TWO_BLOBS[:, :1]),
    "n_samples == n_components": TWO_BLOBS[:3],
    "values near 1e150": TWO_BLOBS * 1e150,
    "offset 1e150, spread 1": TWO_BLOBS + 1e150,
    "values near 1e-150": TWO_BLOBS * 1e-150,
    "integers": np.round(TWO_BLOBS).astype(np.int64),
}


@pytest.mark.parametrize("case", DEGENERATE)
def test_degenerate_data_fit_to_a_valid_model(backend, covariance_type, case):
    X = DEGENERATE[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, random_state=0, backend=backend).fit(X)
    assert_valid_model(model, X.shape[1])
    proba = model.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    assert np.all(np.isfinite(model.score_samples(X)))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_one_component_and_512_features(covariance_type):
    X = np.random.RandomState(1).standard_normal((1500, 512))
    model = GaussianMixture(1, covariance_type=covariance_type, max_iter=3).fit(X)
    assert_valid_model(model, 512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(2, covariance_type=covariance_type, max_iter=3, random_state=0).fit(X)
    assert_valid_model(model, 512)


def test_singular_data_without_regularisation_name_the_component():
    """reg_covar=0 with a component on duplicated points: scikit-learn's message, which component, and the hint."""
    X = np.vstack([np.repeat([[0.0, 0.0]], 20, axis=0), RNG.randn(40, 2) + 10])
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.*increase reg_covar.*\(component \d\)"):
        GaussianMixture(2, reg_covar=0, random_state=0).fit(X)


def test_overflowing_data_get_a_clear_error():
    with pytest.raises(ValueError, match="overflow"):
        GaussianMixture(2, random_state=0).fit(TWO_BLOBS * 1e200)


# ---------------------------------------------------------------------------------------------- collapse policy

# Three clusters (300, 300 and 10 points); the third initial mean sits where no data are, so its component
# empties at the first E-step.
THREE = np.vstack([RNG.randn(300, 2), RNG.randn(300, 2) + 6, RNG.randn(10, 2) + [30, 0]])
DEAD_START = np.array([[0.0, 0.0], [6.0, 6.0], [1e4, 1e4]])


@pytest.mark.parametrize("reg_covar", [1e-6, 0.0])
def test_collapsed_component_is_reseeded_with_a_warning(backend, covariance_type, reg_covar):
    model = GaussianMixture(
        3, covariance_type=covariance_type, means_init=DEAD_START, reg_covar=reg_covar, backend=backend
    )
    with pytest.warns(ComponentCollapseWarning, match=r"^1 collapsed component\(s\) re-seeded in 1 EM iteration"):
        model.fit(THREE)
    assert_valid_model(model, 2)
    # The re-seeded component found the small cluster, which scikit-learn's EM leaves to a dead component.
    np.testing.assert_allclose(np.sort(model.weights_), np.sort([300, 300, 10]) / 610, atol=1e-3)
    assert np.linalg.norm(model.means_ - [30, 0], axis=1).min() < 1.0
    assert model.converged_ and model.n_iter_ >= 2


def test_no_reseeding_without_collapse():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ComponentCollapseWarning)
        GaussianMixture(3, random_state=0).fit(THREE)


def test_iteration_that_reseeds_does_not_stop_em():
    """Even with a tolerance that every iteration meets, the parameters of a re-seeding M-step go through an
    E-step before EM stops."""
    with pytest.warns(ComponentCollapseWarning):
        model = GaussianMixture(3, means_init=DEAD_START, tol=1e10).fit(THREE)
    assert model.n_iter_ == 2


def test_reseeding_counts_every_collapse():
    start = np.array([[0.0, 0.0], [6.0, 6.0], [1e4, 1e4], [-1e4, 1e4]])
    with pytest.warns(ComponentCollapseWarning, match=r"^2 collapsed component\(s\) re-seeded in 1 EM iteration"):
        GaussianMixture(4, means_init=start).fit(THREE)


def test_reseeding_is_the_same_for_chunks_and_arrays():
    settings = dict(means_init=DEAD_START, tol=0, max_iter=8)
    with pytest.warns(ComponentCollapseWarning):
        whole = GaussianMixture(3, **settings).fit(THREE)
    with pytest.warns(ComponentCollapseWarning):
        chunked = GaussianMixture(3, **settings).fit(Chunks([THREE[:250], THREE[250:251], THREE[251:]]))
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=1e-10)
    np.testing.assert_allclose(chunked.covariances_, whole.covariances_, rtol=1e-10)


# Covariance collapse: reg_covar=0 and a start given by the user (initial covariances that are not positive definite
# are scikit-learn's error, tested above), so that the first M-step meets the singular covariance.
BLOBS = np.vstack([RNG.randn(200, 2), RNG.randn(200, 2) + 6])
SINGULAR = {
    # A component on one isolated point: its variance is exactly 0.
    "one point": (np.vstack([BLOBS, [[30.0, 30.0]]]), [[0.0, 0.0], [6, 6], [30, 30]]),
    # A component on 25 copies of one row.
    "duplicated rows": (np.vstack([BLOBS, np.repeat([[30.0, -30.0]], 25, axis=0)]), [[0.0, 0.0], [6, 6], [30, -30]]),
    # Every component has zero variance along the third feature.
    "constant column": (np.c_[BLOBS, np.full(400, 7.0)], [[0.0, 0.0, 7.0], [6, 6, 7], [3, 3, 7]]),
}
# Which (case, covariance type) pairs collapse: a 'tied' covariance pools all components, so one degenerate
# component does not make it singular; a 'spherical' variance averages the features, so one constant feature does
# not either.
NOT_SINGULAR = {("one point", "tied"), ("duplicated rows", "tied"), ("constant column", "spherical")}


def _identity_precisions(covariance_type, K, D):
    return {"full": np.stack([np.eye(D)] * K), "tied": np.eye(D), "diag": np.ones((K, D)),
            "spherical": np.ones(K)}[covariance_type]


@pytest.mark.parametrize("case", SINGULAR)
def test_singular_covariance_is_reseeded_and_em_goes_on(backend, covariance_type, case):
    X, means_init = SINGULAR[case]
    model = GaussianMixture(3, covariance_type=covariance_type, reg_covar=0, backend=backend, means_init=means_init,
                            precisions_init=_identity_precisions(covariance_type, 3, X.shape[1]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
    collapse = [w for w in caught if issubclass(w.category, ComponentCollapseWarning)]
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert model.converged_
    assert_valid_model(model, X.shape[1])
    assert np.all(np.isfinite(model.predict_proba(X))) and np.all(np.isfinite(model.score_samples(X)))
    if (case, covariance_type) in NOT_SINGULAR:
        assert not collapse
        return
    assert len(collapse) == 1 and "covariance was not positive definite" in str(collapse[0].message)
    if case != "constant column":
        # The degenerate component stays on its points (weight 1 or 25 of the rows) with the others' covariance.
        expected = 1 / 401 if case == "one point" else 25 / 425
        np.testing.assert_allclose(model.weights_[2], expected, rtol=1e-6)
        np.testing.assert_allclose(model.means_[2], means_init[2], atol=1e-9)
        share = model.weights_[:2] / model.weights_[:2].sum()
        if covariance_type != "tied":
            np.testing.assert_allclose(model.covariances_[2], np.tensordot(share, model.covariances_[:2], axes=1),
                                       rtol=1e-3)
    else:
        # No healthy component: the constant feature gets a small positive variance (the pooled ridge), the
        # others their fitted spread.
        variances = model.covariances_ if covariance_type == "diag" else np.diagonal(
            model.covariances_, axis1=-2, axis2=-1)
        assert np.all(variances[..., 2] > 0) and np.all(variances[..., 2] < 1e-3)


def test_singular_covariance_at_the_first_m_step_of_sklearns_case():
    """scikit-learn's test_gaussian_mixture_setting_best_params: spherical components holding one point each with
    reg_covar=0, on 30 points. scikit-learn fits one iteration of it; fastgmm fits every iteration to a valid model.
    The likelihood is unbounded there (a component on one point tends to infinite density), and EM drawn back to
    the singularity after each re-seeding cycles: it stops at max_iter, saying so."""
    X = np.random.RandomState(0).uniform(size=(30, 3))
    means = X[[0, 5, 10, 15, 20, 25]]
    settings = dict(covariance_type="spherical", reg_covar=0, means_init=means, precisions_init=np.full(6, 1e6))
    with pytest.warns(ComponentCollapseWarning), pytest.warns(ConvergenceWarning):
        model = GaussianMixture(6, max_iter=50, **settings).fit(X)
    assert_valid_model(model, 3)
    assert model.n_iter_ == 50


def test_singular_initial_covariances_keep_sklearns_error():
    X = np.vstack([np.ones((5, 5)), np.zeros((5, 5))])
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(10, reg_covar=0, random_state=0).fit(X)


def _params():
    cov = np.stack([np.eye(2)] * 2)
    return MixtureParameters("full", np.array([0.5, 0.5]), np.array([[0.0, 0], [5, 5]]), cov,
                             precision_cholesky_from_covariances(cov, "full"))


def test_worst_rows_skip_zero_weights_and_break_ties_by_row():
    X = np.array([[0.0, 0], [50, 50], [-50, -50], [50, 50], [5, 5], [-50, -50]])
    w = np.array([1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    backend = get_backend("numpy")
    scores, indices, rows = worst_rows(backend, _params(), X, w, 2)
    # Rows 2 and 5 are the same point, the worst of those with weight: the first comes first.
    np.testing.assert_array_equal(indices, [2, 5])
    np.testing.assert_array_equal(rows, X[[2, 5]])
    assert scores[0] == scores[1]
    # Unweighted, rows 1 and 3 (50, 50) count too; they are nearer the mean (5, 5) than (-50, -50) is to (0, 0).
    _, indices, _ = worst_rows(backend, _params(), X, None, 3)
    np.testing.assert_array_equal(indices, [2, 5, 1])


def test_worst_explained_of_chunks_equals_the_array():
    X = make_blobs(5000, 2, 2, seed=3) * 3
    backend = get_backend("numpy")
    whole = ArraySource(X).worst_explained(backend, _params(), 4)
    chunked = ChunkSource(Chunks([X[:1234], X[1234:1235], X[1235:]])).worst_explained(backend, _params(), 4)
    np.testing.assert_array_equal(chunked, whole)
    # Fewer rows of positive weight than components to re-seed: the rows found are used again.
    w = np.zeros(5000)
    w[17] = 1.0
    np.testing.assert_array_equal(ArraySource(X, w).worst_explained(backend, _params(), 3), X[[17, 17, 17]])


# --------------------------------------------------------------------------------------------------- atomic fit


def test_real_keyboard_interrupt_during_a_long_fit_leaves_the_model_as_it_was():
    """Ctrl-C (SIGINT turned into KeyboardInterrupt by Python) half a second into a fit of many iterations: the
    previously fitted estimator keeps every attribute, bit for bit, and still predicts the same."""
    import _thread
    import threading
    import time

    small = make_blobs(500, 3, 3, seed=50)
    model = GaussianMixture(3, random_state=0).fit(small)
    before = {key: (value.copy() if isinstance(value, np.ndarray) else value) for key, value in vars(model).items()}
    labels = model.predict(small)

    big = make_blobs(200_000, 4, 6, seed=51)
    # The kernels of the long fit compiled first, so that the interrupt lands in its EM iterations, as the test
    # means. In a pytest-xdist worker that had not fitted this shape it landed in Numba's compiler instead, and the
    # worker died of SIGSEGV in llvmlite, disposing of a half-built LLVM module when the traceback was freed (an
    # interrupt during a compilation is a hazard of its own, not this test's subject).
    GaussianMixture(6, random_state=0, tol=0, max_iter=2).fit(big)
    model.set_params(n_components=6, tol=0, max_iter=100_000)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    # Python's own Ctrl-C handler for the test, whatever the process inherited: a runner started in the background
    # without job control ignores SIGINT, and interrupt_main() then does nothing.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(big)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, inherited)
    assert time.perf_counter() - started < 60  # interrupted, not run to max_iter

    model.set_params(n_components=3, tol=1e-3, max_iter=100)
    assert set(vars(model)) == set(before)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(vars(model)[key], value)
        else:
            assert vars(model)[key] == value, key
    np.testing.assert_array_equal(model.predict(small), labels)
