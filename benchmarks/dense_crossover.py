"""Where the compiled kernels' dense E-step path overtakes the sparse one: the measurement behind
``fastgmm.kernels._passes.dense_live``.

    python benchmarks/dense_crossover.py [--repeats 5] [--rows 200000] [--backends numba cython]

The K components come in groups of g whose means lie 0.3 standard deviations apart, the groups 60 apart, and every
point is drawn around a group: each point keeps g of the K components live (responsibility above 2^-100 of its
best one), a live fraction of g / K. One statistics pass (``accumulate``) is timed with every tile forced dense
(``dense_live=0``) and forced sparse (``dense_live=1``), interleaved, medians of the repeats. The table prints
milliseconds per pass and sparse / dense: above 1 the dense path is faster. ``dense_live`` gives the live fraction
above which a tile takes the dense path, per covariance type and D.
"""

import argparse
import time

import numpy as np

CASES = [("full", 2, 4), ("full", 3, 8), ("full", 8, 16), ("full", 32, 8), ("diag", 8, 16), ("tied", 8, 16),
         ("spherical", 8, 16)]


def grouped_problem(covariance_type, n_samples, n_features, n_components, group, seed=0):
    """(X, kernel arguments) where every point keeps ``group`` of the components live."""
    from fastgmm._parameters import MixtureParameters, precision_cholesky_from_covariances

    rng = np.random.default_rng(seed)
    n_groups = n_components // group
    centres = 60.0 * rng.normal(size=(n_groups, n_features))
    means = np.repeat(centres, group, axis=0) + 0.3 * rng.normal(size=(n_components, n_features))
    covariances = {
        "full": np.repeat(np.eye(n_features)[None], n_components, axis=0),
        "tied": np.eye(n_features),
        "diag": np.ones((n_components, n_features)),
        "spherical": np.ones(n_components),
    }[covariance_type]
    params = MixtureParameters(covariance_type, np.full(n_components, 1.0 / n_components), means, covariances,
                               precision_cholesky_from_covariances(covariances, covariance_type))
    X = centres[rng.integers(n_groups, size=n_samples)] + rng.normal(size=(n_samples, n_features))
    return X, params.kernel_arguments()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--backends", nargs="+", default=["numba", "cython"])
    args = parser.parse_args(argv)
    from fastgmm._backends import get_backend
    from fastgmm.sources.blocks import statistics_block_size
    from fastgmm.kernels._passes import dense_live as threshold

    print(f"{args.rows:,} rows, medians of {args.repeats}; 'threshold' is the dense path's (dense above it)")
    print("| backend | covariance | D | K | live fraction | threshold | dense ms | sparse ms | sparse / dense |")
    print("|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends:
        kernel = get_backend(backend)
        for covariance_type, d, k in CASES:
            for group in [g for g in range(1, k + 1) if k % g == 0]:
                X, kernel_args = grouped_problem(covariance_type, args.rows, d, k, group)
                block_size = statistics_block_size(len(X))
                times = {0.0: [], 1.0: []}
                for dense_live in times:
                    kernel.accumulate(X, None, *kernel_args, block_size, dense_live=dense_live)  # compile, warm
                for _ in range(args.repeats):
                    for dense_live, samples in times.items():
                        t = time.perf_counter()
                        kernel.accumulate(X, None, *kernel_args, block_size, dense_live=dense_live)
                        samples.append(time.perf_counter() - t)
                dense, sparse = (float(np.median(times[v])) for v in (0.0, 1.0))
                print(f"| {backend} | {covariance_type} | {d} | {k} | {group / k:.2f} | "
                      f"{threshold(covariance_type, d):.3f} | {dense * 1e3:.2f} | {sparse * 1e3:.2f} | "
                      f"{sparse / dense:.2f} |", flush=True)


if __name__ == "__main__":
    main()
