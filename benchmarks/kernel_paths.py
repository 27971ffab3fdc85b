"""The crossovers between the Numba kernel's ways of computing the per-component log-probabilities of a tile, the
part of an EM iteration that costs ~ N K D^2 (docs/design.md section 2):

- ``static``: the tile compiled for the exact D (loops unrolled, sums in registers), used up to
  ``numba_._MAX_STATIC_FEATURES``;
- ``loops``: the generic tile (four rows of the triangular factor per sweep over the points), used above it;
- ``blas``: per tile and component one gemm ``U_k^T (x - mu_k)`` through ``np.dot`` inside the parallel loop (BLAS
  single-threaded inside Numba's threads), the large-D path the design card proposes. It does the full square
  product, twice the flops of the triangular loops, in exchange for BLAS's higher rate.

    python benchmarks/kernel_paths.py            # D = 4 .. 256 at ~1e8 K D^2 each (about 2 minutes)
    python benchmarks/kernel_paths.py --d 16 64  # chosen D

Each figure is the median of ``--repeat`` timings of one pass over N rows (2 threads), the paths interleaved; the
winner per D is what ``fastgmm.kernels.numba_`` should use. Measured on 2026-11-22 (2-core EPYC, AVX2, noisy VM),
full covariance, K=8 (seconds per million rows): ``static`` beats ``loops`` up to D=12 (0.021 vs 0.035 at D=8) and
loses from D=14 (0.18 vs 0.09: the unrolled triangle spills registers); ``loops`` beats ``blas`` from D=14 to 96 by
1.1-1.9x; from D=128 to 256 ``blas`` was ahead by 3-9%. Measured again on 2026-12-07 on an AMD EPYC Zen 4 with
AVX-512 (where BLAS has the wider vectors too), after the loops took four columns of the triangle per sweep
(``numba_._add_mahalanobis``), ``python benchmarks/kernel_paths.py --d 8 16 32 64 128``: static 0.0145 at D=8
(loops 0.0299, blas 0.0341); loops against blas 0.0865 / 0.1135 at D=16, 0.2546 / 0.3674 at D=32, 0.8306 / 1.4122
at D=64, 3.0476 / 5.6873 at D=128: the loops ahead by 1.3-1.9x everywhere. So the package has no BLAS path: the
gemm does the whole square, twice the triangle's flops, and at these sizes its rate does not make up for it.
"""

import argparse
import time

import numpy as np
from numba import njit, prange

from fastgmm.kernels import numba_
from fastgmm.kernels._layouts import TIED
from fastgmm.kernels.numba_ import TILE, _load_tile, _tile_log_prob


@njit(cache=True)
def _log_prob_tile_blas(xt, cov, means, Ut, log_const, diff, y, a):
    """``numba_._log_prob_tile`` through one gemm per component over the whole (D, TILE) tile."""
    n_components, n_features = means.shape
    for k in range(n_components):
        kk = 0 if cov == TIED else k
        for i in range(n_features):
            for p in range(TILE):
                diff[i, p] = xt[i, p] - means[k, i]
        np.dot(Ut[kk], diff, y)
        for p in range(TILE):
            a[k, p] = 0.0
        for j in range(n_features):
            for p in range(TILE):
                a[k, p] += y[j, p] * y[j, p]
        for p in range(TILE):
            a[k, p] = log_const[k] - 0.5 * a[k, p]


@njit(parallel=True, cache=True)
def _log_prob_pass(X, cov, means, U, Ut, log_const, blas, features, checksum):
    """Every full tile's log-probabilities by the chosen path; ``checksum[t]`` keeps the work observable."""
    n_features = X.shape[1]
    n_components = means.shape[0]
    for t in prange(X.shape[0] // TILE):
        xt = np.zeros((n_features, TILE))
        diff = np.zeros((n_features, TILE))
        a = np.empty((n_components, TILE))
        if blas:
            _load_tile(X, t * TILE, TILE, xt)
            _log_prob_tile_blas(xt, cov, means, Ut, log_const, diff, np.empty((n_features, TILE)), a)
        else:
            _tile_log_prob(X, t * TILE, TILE, (cov, means, U, log_const), features, (xt, np.empty((4, TILE)), a))
        checksum[t] = a[0, 0] + a[n_components - 1, TILE - 1]


def measure(n_features, n_components, repeat, budget=1e8):
    """Median seconds per million rows of each path at this D (static only where it is compiled for D <= 16)."""
    from fastgmm._parameters import MixtureParameters, precision_cholesky_from_covariances

    rng = np.random.default_rng(0)
    n_samples = max(TILE * 64, int(budget / (n_components * n_features**2)) // TILE * TILE)
    X = rng.standard_normal((n_samples, n_features))
    A = rng.standard_normal((n_components, n_features, n_features))
    covariances = A @ A.transpose(0, 2, 1) / n_features + np.eye(n_features)
    params = MixtureParameters(
        "full", np.full(n_components, 1 / n_components), rng.standard_normal((n_components, n_features)),
        covariances, precision_cholesky_from_covariances(covariances, "full"),
    )
    cov, means, U, log_const = numba_._prepare(X, *params.kernel_arguments())
    Ut = np.ascontiguousarray(U.transpose(0, 2, 1))
    checksum = np.empty(n_samples // TILE)
    paths = {"loops": (False, ()), "blas": (True, ())}
    if n_features <= 16:
        paths = {"static": (False, (0,) * n_features), **paths}
    times = {name: [] for name in paths}
    with numba_.threads(None):
        for name, (blas, features) in paths.items():
            _log_prob_pass(X, cov, means, U, Ut, log_const, blas, features, checksum)  # compile
        for _ in range(repeat):
            for name, (blas, features) in paths.items():
                start = time.perf_counter()
                _log_prob_pass(X, cov, means, U, Ut, log_const, blas, features, checksum)
                times[name].append((time.perf_counter() - start) / n_samples * 1e6)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", type=int, nargs="+", default=[4, 8, 12, 14, 16, 24, 32, 48, 64, 96, 128, 192, 256])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"full covariance, K={args.k}: seconds per million rows (median of {args.repeat}), 2 threads")
    print("| D | static | loops | blas | fastest |")
    print("|---|---|---|---|---|")
    for d in args.d:
        t = measure(d, args.k, args.repeat)
        cells = [f"{t[name]:.4f}" if name in t else "-" for name in ("static", "loops", "blas")]
        print(f"| {d} | " + " | ".join(cells) + f" | {min(t, key=t.get)} |", flush=True)


if __name__ == "__main__":
    main()
