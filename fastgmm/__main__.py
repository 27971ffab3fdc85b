"""Command line: ``python -m fastgmm demo`` (or the ``fastgmm`` console script)."""

import argparse
import sys
import time
import warnings


def _synthetic(n_samples, n_features, n_components, seed):
    """Well-separated Gaussian blobs with random covariances."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    mixing = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    noise = rng.standard_normal((n_samples, n_features))
    return centres[labels] + np.einsum("nd,nde->ne", noise, mixing[labels]), labels


def demo(args):
    """Fit a synthetic data set with fastgmm and, where installed, scikit-learn from the same seed."""
    import numpy as np

    from . import GaussianMixture

    X, _ = _synthetic(args.n_samples, args.n_features, args.n_components, args.seed)
    print(
        f"data: {X.shape[0]:,} points, {X.shape[1]} features, {args.n_components} components "
        f"({X.nbytes / 2**20:.0f} MiB float64)"
    )
    settings = dict(n_components=args.n_components, random_state=args.seed, max_iter=args.max_iter)

    # The compiled kernels are built on first use (and cached on disk): time that apart from the fit.
    start = time.perf_counter()
    GaussianMixture(backend=args.backend, **settings).fit(X[: 20 * args.n_components])
    print(f"fastgmm first call on {20 * args.n_components} points (compiles or loads the kernels): "
          f"{time.perf_counter() - start:.2f} s")

    start = time.perf_counter()
    ours = GaussianMixture(backend=args.backend, **settings).fit(X)
    elapsed = time.perf_counter() - start
    print(
        f"fastgmm:      {elapsed:8.2f} s  ({ours.n_iter_} iterations, converged={ours.converged_}, "
        f"lower bound {ours.lower_bound_:.6f})"
    )
    try:
        from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
    except ImportError:
        return 0
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SklearnGaussianMixture(**settings).fit(X)
    sk_elapsed = time.perf_counter() - start
    print(
        f"scikit-learn: {sk_elapsed:8.2f} s  ({theirs.n_iter_} iterations, converged={theirs.converged_}, "
        f"lower bound {theirs.lower_bound_:.6f})"
    )
    agree = np.mean(ours.predict(X) == theirs.predict(X))
    print(
        f"speed-up {sk_elapsed / elapsed:.1f}x; same labels for {100 * agree:.2f}% of the points; "
        f"lower bounds differ by {abs(ours.lower_bound_ - theirs.lower_bound_):.1e}"
    )
    return 0


def main(argv=None):
    """Entry point of ``fastgmm`` and ``python -m fastgmm``."""
    parser = argparse.ArgumentParser(prog="fastgmm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="fit a synthetic data set and compare with scikit-learn")
    p.add_argument("--n-samples", type=int, default=200_000)
    p.add_argument("--n-features", type=int, default=8)
    p.add_argument("--n-components", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto")
    p.set_defaults(func=demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
