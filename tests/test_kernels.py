"""Kernels: the NumPy reference against scipy and naive N x K formulas; every backend against the reference."""

import numpy as np
import pytest

from fastgmm._backends import get_backend
from fastgmm._parameters import MixtureParameters, precision_cholesky_from_covariances
from fastgmm.kernels import numpy_ as reference

from .conftest import USABLE_BACKENDS
from .oracles import make_blobs, oracle_statistics, oracle_weighted_log_prob, random_params


def assert_statistics_close(actual, expected, rtol):
    names = ("log_likelihood", "total_weight", "nk", "s1", "s2")
    scale = max(np.abs(expected[4]).max(), 1.0)
    for name, a, e in zip(names, actual, expected):
        # s1 sums to ~0 about the means of a converged model: compare against the scale of s2 too.
        atol = rtol * scale if name in ("s1", "s2") else 0
        if name == "nk":
            # Compiled kernels drop shares below 2^-100 (see numba_._LOG_NEGLIGIBLE): an empty component may get
            # N_k = 0 where the reference sums a few 1e-33.
            atol = expected[1] * 2.0**-100
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(500, 3, 4), (300, 1, 1), (257, 5, 1), (100, 1, 3)])
def test_reference_statistics_match_naive_oracle(covariance_type, weighted, shape):
    n, d, k = shape
    X = make_blobs(n, d, max(k, 1), seed=1)
    params = random_params(covariance_type, k, d, seed=2)
    w = np.random.RandomState(3).uniform(0, 3, n) if weighted else None
    # A small block size exercises the reduction over several blocks.
    actual = reference.accumulate(X, w, *params.kernel_arguments(), block_size=64)
    assert_statistics_close(actual, oracle_statistics(X, w, params), rtol=1e-10)


def test_reference_log_prob_matches_scipy(covariance_type):
    X = make_blobs(200, 4, 3, seed=5)
    params = random_params(covariance_type, 3, 4, seed=6)
    out = np.empty((200, 3))
    reference.weighted_log_prob(X, *params.kernel_arguments(), out)
    np.testing.assert_allclose(out, oracle_weighted_log_prob(X, params), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 1e6])
# D = 14 and 21 run the generic tile (no compiled-for-D unrolling) for full and tied, and for all types at 21.
@pytest.mark.parametrize("shape", [(5000, 3, 4), (4099, 1, 1), (777, 7, 2), (20000, 2, 3), (1500, 14, 3), (600, 21, 2)])
def test_backend_accumulate_matches_reference(backend, covariance_type, dtype, weighted, offset, shape):
    n, d, k = shape
    X = make_blobs(n, d, k, seed=7, offset=offset).astype(dtype)
    params = random_params(covariance_type, k, d, seed=8, offset=offset)
    w = np.random.RandomState(9).uniform(0, 2, n) if weighted else None
    kernel = get_backend(backend)
    args = params.kernel_arguments()
    expected = reference.accumulate(X, w, *args, block_size=4096)
    actual = kernel.accumulate(X, w, *args, block_size=4096)
    assert_statistics_close(actual, expected, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_backend_sparse_responsibilities_match_reference(backend, covariance_type, weighted):
    """Far-apart components (one non-negligible responsibility per point), points exactly halfway between two
    (a tie for the best component), points at shares near the negligible threshold, and zero weights."""
    rng = np.random.RandomState(12)
    base = random_params(covariance_type, 4, 3, seed=13)
    # Components 0 and 1 differ only by their means, so the point halfway between them is an exact tie.
    covariances = base.covariances.copy()
    if covariance_type != "tied":
        covariances[1] = covariances[0]
    means = np.array([[0.0, 0, 0], [60, 0, 0], [0, 60, 0], [60, 60, 0]])
    params = MixtureParameters(
        covariance_type, np.full(4, 0.25), means, covariances,
        precision_cholesky_from_covariances(covariances, covariance_type),
    )
    inside = params.means[rng.randint(4, size=3000)] + rng.normal(size=(3000, 3))
    halfway = np.repeat(params.means[:2].mean(axis=0, keepdims=True), 50, axis=0)
    edges = np.linspace([0, 0, 0], [60, 60, 0], 2000)
    X = np.concatenate([inside, halfway, edges])
    w = rng.uniform(0, 2, len(X)) if weighted else None
    if weighted:
        w[::7] = 0.0
    args = params.kernel_arguments()
    expected = reference.accumulate(X, w, *args, block_size=1024)
    actual = get_backend(backend).accumulate(X, w, *args, block_size=1024)
    assert_statistics_close(actual, expected, rtol=1e-10)


def overlapping_params(covariance_type, n_components, n_features, seed, offset=0.0, spread=0.3):
    """Components whose means lie ``spread`` standard deviations apart, so that every point keeps all of them live
    (the dense path of the compiled kernels)."""
    base = random_params(covariance_type, n_components, n_features, seed=seed)
    rng = np.random.RandomState(seed + 1)
    means = offset + spread * rng.normal(size=(n_components, n_features))
    return MixtureParameters(
        covariance_type, base.weights, means, base.covariances,
        precision_cholesky_from_covariances(base.covariances, covariance_type),
    )


@pytest.mark.parametrize(("dtype", "weighted", "offset"), [(np.float64, False, 0.0), (np.float32, True, 1e6)])
# D = 1-4 sum the moments point by point, 5-8 in the three register sweeps of eight rows (with and without padding
# rows), 14 and 21 by Gram blocks and the generic log-probability tile; K = 1 is dense by definition.
@pytest.mark.parametrize("shape", [(3000, 1, 3), (2600, 2, 4), (1000, 3, 5), (1100, 4, 2), (900, 7, 3), (800, 8, 6),
                                   (700, 14, 3), (600, 21, 2), (1000, 5, 1)])
def test_backend_dense_responsibilities_match_reference(backend, covariance_type, dtype, weighted, offset, shape):
    """Overlapping components: every tile takes the compiled kernels' dense path (all responsibilities live)."""
    n, d, k = shape
    params = overlapping_params(covariance_type, k, d, seed=40, offset=offset)
    rng = np.random.RandomState(41)
    X = (params.means[rng.randint(k, size=n)] + rng.normal(size=(n, d))).astype(dtype)
    w = rng.uniform(0, 2, n) if weighted else None
    if weighted:
        w[::5] = 0.0
    args = params.kernel_arguments()
    expected = reference.accumulate(X, w, *args, block_size=512)
    actual = get_backend(backend).accumulate(X, w, *args, block_size=512)
    assert_statistics_close(actual, expected, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("dense_live", [0.0, 1.0])
@pytest.mark.parametrize("shape", [(1500, 2, 3), (1100, 6, 4), (600, 14, 3)])
@pytest.mark.parametrize("backend", [name for name in USABLE_BACKENDS if name != "numpy"])
def test_compiled_dense_and_sparse_paths_match_reference(backend, covariance_type, weighted, overlap, dense_live,
                                                         shape):
    """Every tile forced down one path (``dense_live`` 0: all dense, 1: all sparse), whatever the overlap."""
    n, d, k = shape
    params = overlapping_params(covariance_type, k, d, seed=44, spread=0.3 if overlap else 30.0)
    rng = np.random.RandomState(45)
    X = params.means[rng.randint(k, size=n)] + rng.normal(size=(n, d))
    w = rng.uniform(0, 2, n) if weighted else None
    args = params.kernel_arguments()
    expected = reference.accumulate(X, w, *args, block_size=512)
    actual = get_backend(backend).accumulate(X, w, *args, block_size=512, dense_live=dense_live)
    assert_statistics_close(actual, expected, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_backend_mixes_dense_and_sparse_tiles(backend, covariance_type, weighted):
    """Runs of overlapping points (dense tiles) between runs of points that only one component explains (sparse
    tiles), in one block: both paths add to the same partials and stages."""
    d, k = 3, 4
    params = overlapping_params(covariance_type, k, d, seed=42)
    means = params.means.copy()
    means[3] += 80.0  # one far component: its points keep it alone
    params = MixtureParameters(covariance_type, params.weights, means, params.covariances, params.precisions_cholesky)
    rng = np.random.RandomState(43)
    runs = [means[rng.randint(3, size=300)] if i % 2 else np.repeat(means[3:], 300, axis=0) for i in range(8)]
    X = np.concatenate(runs) + rng.normal(size=(2400, d))
    w = rng.uniform(0, 2, len(X)) if weighted else None
    args = params.kernel_arguments()
    expected = reference.accumulate(X, w, *args, block_size=4096)
    actual = get_backend(backend).accumulate(X, w, *args, block_size=4096)
    assert_statistics_close(actual, expected, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_features", [5, 14, 21])
def test_backend_log_prob_matches_reference(backend, covariance_type, dtype, n_features):
    X = make_blobs(3000, n_features, 4, seed=10).astype(dtype)
    params = random_params(covariance_type, 4, n_features, seed=11)
    expected = reference.weighted_log_prob(X, *params.kernel_arguments(), np.empty((3000, 4)))
    actual = get_backend(backend).weighted_log_prob(X, *params.kernel_arguments(), np.empty((3000, 4)))
    np.testing.assert_allclose(actual, expected, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("overlap", [False, True])
def test_statistics_bit_identical_for_any_thread_count(backend, covariance_type, weighted, overlap):
    """Blocks depend on N only and partials are summed in block order: 1 thread and 2 threads, same bits (with
    overlapping components too: the compiled kernels' dense path)."""
    from fastgmm.sources.blocks import statistics_block_size

    X = make_blobs(50_000, 4, 3, seed=12)
    params = (overlapping_params(covariance_type, 3, 4, seed=13, spread=0.5) if overlap
              else random_params(covariance_type, 3, 4, seed=13))
    w = np.random.RandomState(14).uniform(0, 2, 50_000) if weighted else None
    kernel = get_backend(backend)
    results = []
    for n_jobs in (1, 2, 1):
        with kernel.threads(n_jobs):
            results.append(kernel.accumulate(X, w, *params.kernel_arguments(), statistics_block_size(50_000)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weighted", [False, True])
def test_numba_serial_and_parallel_kernels_give_the_same_bits(covariance_type, weighted, monkeypatch):
    """Small calls run the serial compilation of each kernel body: the same partials, so the same bits."""
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    from fastgmm.sources.blocks import statistics_block_size

    X = make_blobs(20_000, 3, 3, seed=15)
    params = random_params(covariance_type, 3, 3, seed=16)
    w = np.random.RandomState(17).uniform(0, 2, 20_000) if weighted else None
    labels = np.random.RandomState(18).randint(-1, 3, 20_000).astype(np.int32)
    results = []
    for threshold in (0, 10**18):  # everything parallel, then everything serial
        monkeypatch.setattr(numba_, "PARALLEL_WORK", threshold)
        with numba_.threads(2):
            results.append([
                numba_.accumulate(X, w, *params.kernel_arguments(), statistics_block_size(20_000)),
                numba_.weighted_log_prob(X, *params.kernel_arguments(), np.empty((20_000, 3))),
                numba_.lloyd_step(X, w, params.means, labels.copy(), 4096),
                numba_.label_statistics(X, w, labels, params.means, covariance_type, 4096),
            ])
    parallel, serial = results
    assert numba_._accumulate.serial.signatures and numba_._accumulate.parallel.signatures
    for a, b in zip(parallel, serial):
        for x, y in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
            np.testing.assert_array_equal(x, y)


def test_numba_thread_policy_sets_and_restores():
    numba = pytest.importorskip("numba")
    from threadpoolctl import threadpool_info

    from fastgmm._threads import numba_threads

    before = numba.get_num_threads()
    blas_before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    with numba_threads(1):
        assert numba.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    with numba_threads(None):
        assert numba.get_num_threads() == before
    assert numba.get_num_threads() == before
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == blas_before


@pytest.mark.parametrize("backend_name", ["numba", "cython"])
def test_compiled_exp_is_accurate_and_underflows_to_zero(backend_name):
    x = np.concatenate([-np.logspace(-12, np.log10(707.9), 5000), [0.0, -708.5, -745.2, -1e4, -np.inf]])
    out = np.empty_like(x)
    if backend_name == "numba":
        numba_ = pytest.importorskip("fastgmm.kernels.numba_")
        numba_._exp_nonpositive(x, out, x.size, np.empty_like(x))
    else:
        _cython = pytest.importorskip("fastgmm.kernels._cython")
        _cython.exp_nonpositive(x, out)
    finite = x > -708
    np.testing.assert_allclose(out[finite], np.exp(x[finite]), rtol=4.5e-16, atol=0)
    np.testing.assert_array_equal(out[~finite], 0.0)


def test_numba_dense_responsibilities_are_exact_where_live_and_zero_where_negligible():
    """The dense path's unnormalised responsibilities: exp(a - top) where a component lies within LOG_NEGLIGIBLE of
    the point's best one, exactly zero below (as the sparse path leaves those pairs out), the totals their sums, and
    NaN for a point that no component explains."""
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    from fastgmm.kernels._constants import LOG_NEGLIGIBLE

    n_components, n = 5, numba_.TILE
    rng = np.random.default_rng(46)
    a = rng.uniform(-60.0, 0.0, (n_components, n)) + rng.uniform(-1e3, 1e3, n)
    a[1, ::3] = a[:, ::3].max(axis=0) + LOG_NEGLIGIBLE - rng.uniform(1e-9, 800.0, a[1, ::3].shape)
    a[2, ::7] = -np.inf
    a[:, 10] = -np.inf
    resp = numba_._e_step_buffers(n_components, 3, n_components)[1]
    numba_._live_components(a, n, resp)
    numba_._responsibilities_dense(a, n, resp)
    r = resp[8][: n_components * n].reshape(n_components, n)
    top = a.max(axis=0)
    live = a > top + LOG_NEGLIGIBLE
    assert (~live[1, ::3]).all() and live.sum() > n * 3
    with np.errstate(invalid="ignore"):  # -inf - -inf in the unexplained point's column
        expected = np.exp(a - top)
    np.testing.assert_allclose(r[live], expected[live], rtol=4.5e-16, atol=0)
    np.testing.assert_array_equal(r[~live], 0.0)
    explained = np.isfinite(top)
    np.testing.assert_allclose(resp[4][:n][explained], r.sum(axis=0)[explained], rtol=1e-15)
    assert np.isnan(resp[4][10]) and explained.sum() == n - 1


@pytest.mark.parametrize("layout", ["fortran", "strided", "read_only"])
def test_backend_reads_any_layout(backend, covariance_type, layout):
    """Fortran-ordered, strided and read-only X give the statistics of the C-ordered copy."""
    wide = make_blobs(3000, 6, 3, seed=20)
    X = {
        "fortran": np.asfortranarray(wide[:, :3]),
        "strided": wide[::2, ::2],
        "read_only": wide[:, :3].copy(),
    }[layout]
    X.setflags(write=False)
    params = random_params(covariance_type, 3, 3, seed=21)
    args = params.kernel_arguments()
    kernel = get_backend(backend)
    expected = reference.accumulate(np.ascontiguousarray(X), None, *args, block_size=512)
    assert_statistics_close(kernel.accumulate(X, None, *args, block_size=512), expected, rtol=1e-10)
    out = kernel.weighted_log_prob(X, *args, np.empty((X.shape[0], 3)))
    np.testing.assert_allclose(out, reference.weighted_log_prob(X, *args, np.empty((X.shape[0], 3))), rtol=1e-10)


def test_numba_compiles_two_copies_for_every_layout():
    """C-ordered data get one compilation and every other layout, writable or not, one more: not one each (a fit
    of each layout of one shape would otherwise compile six copies of every kernel it runs)."""
    numba_ = pytest.importorskip("fastgmm.kernels.numba_")
    from numba.core import types

    X = make_blobs(2000, 5, 3, seed=24)
    wide = np.zeros((2000, 10))
    wide[:, ::2] = X
    read_only_c, read_only_f = X.copy(), np.asfortranarray(X)
    read_only_c.setflags(write=False)
    read_only_f.setflags(write=False)
    layouts = [X, np.asfortranarray(X), wide[:, ::2], read_only_c, read_only_f]
    params = random_params("diag", 3, 5, seed=25)
    expected = reference.accumulate(layouts[0], None, *params.kernel_arguments(), block_size=512)
    for layout in layouts:
        assert_statistics_close(numba_.accumulate(layout, None, *params.kernel_arguments(), block_size=512), expected,
                                rtol=1e-10)
    seen = {signature[0] for signature in numba_._accumulate.serial.signatures if signature[0].dtype == types.float64}
    assert {(array.layout, array.mutable) for array in seen} == {("C", False), ("A", False)}


@pytest.mark.skipif(not {"numba", "cython"} <= set(USABLE_BACKENDS), reason="needs both compiled backends")
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(30000, 8, 16), (3000, 2, 4), (2000, 32, 8), (1000, 64, 5)])
def test_cython_and_numba_agree(covariance_type, weighted, shape):
    """The two compiled backends against each other, directly, at 1e-10 relative (each is also tested against the
    reference): small D through both compiled-for-D tiles, large D through both generic ones."""
    n, d, k = shape
    X = make_blobs(n, d, k, seed=21)
    params = random_params(covariance_type, k, d, seed=22)
    w = np.random.RandomState(23).uniform(0, 2, n) if weighted else None
    args = params.kernel_arguments()
    from_numba = get_backend("numba").accumulate(X, w, *args, block_size=4096)
    from_cython = get_backend("cython").accumulate(X, w, *args, block_size=4096)
    assert_statistics_close(from_cython, from_numba, rtol=1e-10)
    out_numba, out_cython = np.empty((n, k)), np.empty((n, k))
    get_backend("numba").weighted_log_prob(X, *args, out_numba)
    get_backend("cython").weighted_log_prob(X, *args, out_cython)
    np.testing.assert_allclose(out_cython, out_numba, rtol=1e-10)


@pytest.mark.parametrize("shape", [(245, 1), (245, 2), (245, 3), (245, 16, 8, 8), (245, 16, 1), (3, 1)])
def test_sum_in_order_adds_block_after_block(shape):
    from fastgmm.kernels._passes import sum_in_order

    partials = np.random.RandomState(0).standard_normal(shape) * 10.0 ** np.random.RandomState(1).randint(-8, 8, shape)
    expected = partials[0].copy()
    for block in partials[1:]:
        expected += block
    np.testing.assert_array_equal(sum_in_order(partials), expected)


COMPILED = [name for name in USABLE_BACKENDS if name != "numpy"]


@pytest.mark.parametrize("backend_name", COMPILED)
@pytest.mark.parametrize("weighted", [False, True])
def test_bounded_rounds_of_partials_give_the_same_bits(monkeypatch, backend_name, covariance_type, weighted):
    """Partials reduced a round of blocks at a time (the memory bound at large K D^2) add in the same order as all
    blocks at once: bit-identical statistics, for the EM pass and for the initial hard assignments."""
    from fastgmm.kernels import _passes

    X = make_blobs(3000, 3, 4, seed=30)
    params = random_params(covariance_type, 4, 3, seed=31)
    w = np.random.RandomState(32).uniform(0, 2, 3000) if weighted else None
    labels = np.random.RandomState(33).randint(-1, 4, 3000).astype(np.int32)
    kernel = get_backend(backend_name)
    args = params.kernel_arguments()
    whole = kernel.accumulate(X, w, *args, block_size=64)
    whole_labels = kernel.label_statistics(X, w, labels, params.means, covariance_type, 64)
    monkeypatch.setattr(_passes, "PARTIALS_BYTES", 1)  # as few blocks per round as there are threads
    rounds = kernel.accumulate(X, w, *args, block_size=64)
    rounds_labels = kernel.label_statistics(X, w, labels, params.means, covariance_type, 64)
    for a, b in zip(rounds + rounds_labels, whole + whole_labels):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend_name", COMPILED)
@pytest.mark.parametrize("shape", [(3000, 3, 4), (1500, 21, 3)])
def test_unstaged_moments_match_reference(monkeypatch, backend_name, covariance_type, shape):
    """Above the staging budget (large K D) each tile's rows are reduced at once; the statistics stay the
    reference's."""
    from fastgmm.kernels import _passes

    n, d, k = shape
    monkeypatch.setattr(_passes, "STAGE_BYTES", 0)
    assert _passes.staged_components(k, d, 256) == 1
    X = make_blobs(n, d, k, seed=34, offset=1e3)
    params = random_params(covariance_type, k, d, seed=35, offset=1e3)
    w = np.random.RandomState(36).uniform(0, 2, n)
    args = params.kernel_arguments()
    expected = reference.accumulate(X, w, *args, block_size=256)
    assert_statistics_close(get_backend(backend_name).accumulate(X, w, *args, block_size=256), expected, rtol=1e-10)


def test_every_copy_of_the_gram_layout_agrees():
    """The padded row count of the centred-column buffers is written in ``_layouts`` (which sizes the Cython stages),
    in Numba's ``_gram_buffer`` and in the Cython extension: a disagreement would read or write past a buffer."""
    from fastgmm.kernels import _layouts

    expected = [_layouts.gram_rows(D) for D in range(1, 70)]
    assert all(rows >= D and rows % 4 == 0 and rows - D < 4 for D, rows in enumerate(expected, start=1))
    if "numba" in USABLE_BACKENDS:
        from fastgmm.kernels import numba_

        assert [numba_._gram_buffer(1, 1, D).shape[1] for D in range(1, 70)] == expected
    if "cython" in USABLE_BACKENDS:
        from fastgmm.kernels import _cython

        assert [_cython.gram_rows(D) for D in range(1, 70)] == expected
