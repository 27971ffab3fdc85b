"""fastgmm.select_model against a loop over scikit-learn's GaussianMixture().bic on the data sets scikit-learn
ships (iris, wine): the same pairs, the same initialisations (random_state), the same criterion.

    python asv_benchmarks/select_vs_sklearn.py [--repeats 5] [--criterion bic]

Prints the pair each picks, the largest relative difference of the criteria, and the seconds of each (median of
interleaved repeats, after one warm-up run that compiles or loads fastgmm's kernels, timed apart).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris, load_wine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastgmm import select_model  # noqa: E402
from tests.oracles import sklearn_selection  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--criterion", default="bic", choices=["bic", "aic"])
    args = parser.parse_args()
    n_components = range(1, 11)
    for name, loader in (("iris", load_iris), ("wine", load_wine)):
        X = loader().data
        start = time.perf_counter()
        select_model(X, n_components, criterion=args.criterion, random_state=0)
        warm_up = time.perf_counter() - start
        ours, theirs = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            best, results = select_model(X, n_components, criterion=args.criterion, random_state=0)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            expected = sklearn_selection(X, n_components, args.criterion)
            theirs.append(time.perf_counter() - start)
        pick = min(expected, key=expected.get)
        rel = max(abs(v - expected[(k, c)]) / abs(expected[(k, c)])
                  for k, c, v in zip(results["n_components"], results["covariance_type"], results[args.criterion]))
        print(f"{name} {X.shape}: fastgmm picks ({best.n_components}, {best.covariance_type}), scikit-learn loop "
              f"picks {pick}; {args.criterion} differ by {rel:.1e} relative at most")
        print(f"  40 fits: fastgmm {np.median(ours):.3f} s, scikit-learn {np.median(theirs):.3f} s "
              f"(medians of {args.repeats}), {np.median(theirs) / np.median(ours):.2f}x; "
              f"fastgmm's first run (compiles or loads the kernels) {warm_up:.2f} s")
        print(f"  all runs: fastgmm {np.round(ours, 3).tolist()}, scikit-learn {np.round(theirs, 3).tolist()}")


if __name__ == "__main__":
    main()
