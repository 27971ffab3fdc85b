"""Seconds per EM iteration of the Numba backend with the iterations fused into one compiled call (the default
when nothing reports per iteration) and through fastgmm's Python loop (forced here by a callback), on small and
medium data, from the same start.

    python benchmarks/fused_iterations.py [--repeats 5]

A per-iteration time is ``(t(max_iter=1+m) - t(max_iter=1)) / m`` with ``tol=0``, the median of interleaved
repeats, after a warm-up that compiles or loads the kernels.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_iris

from fastgmm import GaussianMixture


def _cases():
    yield "iris, K=3, full", load_iris().data, 3, "full", 500
    yield "iris, K=3, diag", load_iris().data, 3, "diag", 500
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 2))
    X[:50_000] += 4  # two blobs, four components: every point keeps several live components
    yield "1e5 x 2 overlapping, K=4, full", X, 4, "full", 50


def _seconds(X, n_components, covariance_type, max_iter, callback):
    model = GaussianMixture(n_components, covariance_type=covariance_type, tol=0, max_iter=max_iter, random_state=0,
                            init_params="random_from_data", backend="numba", callback=callback)
    start = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name, X, n_components, covariance_type, m in _cases():
        ways = {"fused": None, "python loop": lambda row: None}
        for callback in ways.values():
            _seconds(X, n_components, covariance_type, 2, callback)
        per_iteration = {way: [] for way in ways}
        for _ in range(args.repeats):
            for way, callback in ways.items():
                long = _seconds(X, n_components, covariance_type, 1 + m, callback)
                short = _seconds(X, n_components, covariance_type, 1, callback)
                per_iteration[way].append((long - short) / m)
        medians = {way: float(np.median(times)) for way, times in per_iteration.items()}
        print(f"{name}: " + ", ".join(f"{way} {value * 1e6:.1f} us/iteration" for way, value in medians.items())
              + f" ({medians['python loop'] / medians['fused']:.1f}x)")


if __name__ == "__main__":
    main()
