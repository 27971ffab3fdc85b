"""Seconds per iteration of fastgmm's BayesianGaussianMixture against scikit-learn's and against fastgmm's own
GaussianMixture, from the same start, and the peak extra memory of a fastgmm fit.

    python benchmarks/bayesian_vs_sklearn.py [--n 1000000] [--features 8] [--components 16] [--repeats 3]

The data are ``--components`` Gaussian blobs (``fastgmm demo``'s generator, well separated). Every fit starts from
``init_params='random_from_data'`` with the same ``random_state`` (the same draws in both libraries), ``tol=0``,
so all run the same iterations; a per-iteration time is ``(t(max_iter=1+m) - t(max_iter=1)) / m``, the median of
interleaved repeats, after a warm-up fit that compiles or loads the kernels; fastgmm's two estimators also from
``init_params='kmeans'`` (the same k-means responsibilities for both). Beside each of fastgmm's ratios, the fraction
of (point, component) pairs each estimator's timed E-steps keep live: the two models move apart after their first
update, and an iteration's work grows with its live pairs. Then one default fit end to end
(``init_params='kmeans'``, default ``tol`` and ``max_iter``) of each library, and the peak memory a fastgmm fit
adds (the peak resident set of a child process that loads X from a file and fits, less that of one that only loads
X). ``--kmeans-iterations`` is m from k-means, where the state hardly moves.
"""

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
import warnings

import numpy as np
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesianGaussianMixture

from fastgmm import BayesianGaussianMixture, GaussianMixture
from fastgmm.__main__ import _synthetic


def demo_data(n_samples, n_features, n_components):
    """Gaussian blobs with random covariances (the data of ``fastgmm demo``)."""
    return _synthetic(n_samples, n_features, n_components, 0)[0]


def _seconds(cls, X, covariance_type, max_iter, init_params="random_from_data", **settings):
    model = cls(n_components=settings.pop("n_components"), covariance_type=covariance_type, tol=0, max_iter=max_iter,
                random_state=0, init_params=init_params, **settings)
    start = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - start


def _live_fraction(cls, X, covariance_type, m, init_params, n_components):
    """Fraction of (point, component) pairs the E-steps of the timed iterations (2 to 1 + m) keep live, i.e. with a
    responsibility above 2^-100 (``LOG_NEGLIGIBLE``): the work of a sparse iteration grows with it."""
    fractions = []
    for max_iter in range(1, 1 + m):
        model = cls(n_components=n_components, covariance_type=covariance_type, tol=0, max_iter=max_iter,
                    random_state=0, init_params=init_params).fit(X)
        fractions.append(float(np.mean(model.predict_proba(X) > 2.0**-100)))
    return " ".join(f"{fraction:.3f}" for fraction in fractions)


def _peak_rss(path, args, fit):
    """Peak resident MiB of a child process that loads X and, with ``fit``, fits fastgmm's Bayesian mixture."""
    warnings.simplefilter("ignore")
    X = np.load(path)
    if fit:
        BayesianGaussianMixture(n_components=args.components, covariance_type=args.covariance_type, max_iter=5,
                                random_state=0, init_params="random_from_data").fit(X)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--iterations", type=int, default=2, help="m, the extra iterations timed")
    parser.add_argument("--kmeans-iterations", type=int, default=10,
                        help="m of the two fastgmm estimators started from k-means")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-default-fit", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X = demo_data(args.n, args.features, args.components)
    K, m = args.components, args.iterations
    ways = {
        "scikit-learn BayesianGaussianMixture": (SklearnBayesianGaussianMixture, {}),
        "fastgmm BayesianGaussianMixture": (BayesianGaussianMixture, {}),
        "fastgmm GaussianMixture": (GaussianMixture, {}),
    }
    for cls, extra in ways.values():
        if cls is not SklearnBayesianGaussianMixture:
            _seconds(cls, X[:20_000], args.covariance_type, 2, n_components=K, **extra)
    times = {way: [] for way in ways}
    for _ in range(args.repeats):
        for way, (cls, extra) in ways.items():
            long = _seconds(cls, X, args.covariance_type, 1 + m, n_components=K, **extra)
            short = _seconds(cls, X, args.covariance_type, 1, n_components=K, **extra)
            times[way].append((long - short) / m)
    medians = {way: float(np.median(values)) for way, values in times.items()}
    print(f"N={args.n}, D={args.features}, K={K}, {args.covariance_type}: seconds per iteration, medians of "
          f"{args.repeats}")
    for way, value in medians.items():
        print(f"  {way}: {value:.4f}")
    sklearn, ours, em = (medians[way] for way in ways)
    print(f"  fastgmm / scikit-learn speed-up: {sklearn / ours:.1f}x; fastgmm Bayesian / GaussianMixture: "
          f"{ours / em:.2f}")
    for way in list(ways)[1:]:
        live = _live_fraction(ways[way][0], X, args.covariance_type, m, "random_from_data", K)
        print(f"    live pairs in the timed iterations, {way}: {live}")
    # From random points with a tiny covariance each, EM's components are sharp at once while the variational ones
    # take the covariance prior's breadth (more live pairs per point, the model's own work). From the same k-means
    # responsibilities both are in a like state: the ratio then shows what the variational step itself costs. There
    # the state hardly moves, so more iterations can be timed: two iterations (70 ms) beside the noise of a k-means
    # start made the ratio swing from 0.65 to 1.51 between runs on a 2-core machine.
    m_kmeans = args.kmeans_iterations
    kmeans = {way: [] for way in ways if "fastgmm" in way}
    for _ in range(args.repeats):
        for way in kmeans:
            cls = ways[way][0]
            long = _seconds(cls, X, args.covariance_type, 1 + m_kmeans, "kmeans", n_components=K)
            short = _seconds(cls, X, args.covariance_type, 1, "kmeans", n_components=K)
            kmeans[way].append((long - short) / m_kmeans)
    ours_k, em_k = (float(np.median(values)) for values in kmeans.values())
    print(f"  from k-means, m={m_kmeans}: fastgmm BayesianGaussianMixture {ours_k:.4f}, GaussianMixture {em_k:.4f}: "
          f"{ours_k / em_k:.2f}")
    for way in kmeans:
        live = _live_fraction(ways[way][0], X, args.covariance_type, m_kmeans, "kmeans", K)
        print(f"    live pairs in the timed iterations, {way}: {live}")
    if not args.no_default_fit:
        for cls in (SklearnBayesianGaussianMixture, BayesianGaussianMixture):
            model = cls(n_components=K, covariance_type=args.covariance_type, random_state=0)
            start = time.perf_counter()
            model.fit(X)
            print(f"  default fit, {cls.__module__.split('.')[0]}: {time.perf_counter() - start:.2f} s, "
                  f"{model.n_iter_} iterations, converged {model.converged_}")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "X.npy")
        np.save(path, X)
        peaks = []
        for fit in (False, True):
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                peaks.append(pool.apply(_peak_rss, (path, args, fit)))
    x_mib = X.nbytes / 2**20
    print(f"  peak memory a fastgmm fit adds: {peaks[1] - peaks[0]:.0f} MiB (X is {x_mib:.0f} MiB; bound "
          f"{0.1 * x_mib + 64:.0f} MiB)")


if __name__ == "__main__":
    main()
