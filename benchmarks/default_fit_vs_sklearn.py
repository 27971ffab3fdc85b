"""A default fit, fastgmm against scikit-learn: ``GaussianMixture(3, random_state=0).fit(X)`` on 10,000 x 4 points
from ``sklearn.datasets.make_blobs(centers=3)``, every covariance type, both libraries with their default settings
(k-means start, tol=1e-3, max_iter=100) from the same start.

    python benchmarks/default_fit_vs_sklearn.py [--repeats 15] [--n-samples 10000] [--n-features 4]

Medians of interleaved repeats (each library first in every other one), after a warm-up fit that compiles or loads
fastgmm's kernels (timed apart) and three warm-up fits of each. Prints
the iterations each library made and the largest relative difference between their means.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from fastgmm import GaussianMixture


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--n-features", type=int, default=4)
    parser.add_argument("--n-components", type=int, default=3)
    args = parser.parse_args()
    X, _ = make_blobs(args.n_samples, args.n_features, centers=args.n_components, random_state=0)
    warnings.simplefilter("ignore")
    for covariance_type in ("full", "tied", "diag", "spherical"):
        params = dict(n_components=args.n_components, covariance_type=covariance_type, random_state=0)
        start = time.perf_counter()
        GaussianMixture(**params).fit(X)
        warm_up = time.perf_counter() - start
        # scikit-learn warms up too: its first fits in a process are several times slower than the later ones.
        for _ in range(3):
            GaussianMixture(**params).fit(X)
            SklearnGaussianMixture(**params).fit(X)
        times = {"fastgmm": [], "scikit-learn": []}
        for repeat in range(args.repeats):
            # Each goes first every other repeat: whatever one leaves behind (caches, spinning OpenMP threads)
            # falls on both alike.
            for name in ("fastgmm", "scikit-learn")[:: 1 if repeat % 2 == 0 else -1]:
                start = time.perf_counter()
                if name == "fastgmm":
                    ours = GaussianMixture(**params).fit(X)
                else:
                    theirs = SklearnGaussianMixture(**params).fit(X)
                times[name].append(time.perf_counter() - start)
        ours_s, theirs_s = (float(np.median(times[name])) for name in ("fastgmm", "scikit-learn"))
        rel = float(np.max(np.abs(ours.means_ - theirs.means_) / np.maximum(np.abs(theirs.means_), 1e-300)))
        print(f"{covariance_type:9s} {X.shape}, K={args.n_components}: fastgmm {ours_s * 1e3:.2f} ms "
              f"({ours.n_iter_} iterations, backend {ours.backend_}), scikit-learn {theirs_s * 1e3:.2f} ms "
              f"({theirs.n_iter_} iterations): {theirs_s / ours_s:.1f}x; means differ by {rel:.1e} relative at "
              f"most; first fit {warm_up:.2f} s (medians of {args.repeats})")


if __name__ == "__main__":
    main()
