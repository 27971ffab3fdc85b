"""The compiled backends against each other: seconds of one statistics pass (the work of an EM iteration) per
backend, the backends interleaved, medians of ``--repeat``.

    python benchmarks/compare_backends.py                      # the benchmark shapes of the Numba issue
    python benchmarks/compare_backends.py full:1e6/8/16 diag:1e6/8/16
    python benchmarks/compare_backends.py --family overlapping   # compare_sklearn.py's overlapping data and start

A case is ``covariance:N/D/K``. ``separated`` (the default): blobs, with the parameters of a short fastgmm fit of
the first 20,000 rows (a point keeps about one live component); ``overlapping``: the data of
``compare_sklearn.py --family overlapping`` (K = 4 x the natural clusters) with the parameters of one EM iteration
of the first 20,000 rows from its start (every component still over the whole data set).
"""

import argparse
import time
import warnings

import numpy as np

CASES = ["full:1e5/2/4", "full:1e6/8/16", "full:1e6/32/8", "full:2e5/64/16", "diag:1e6/8/16", "spherical:1e6/8/16",
         "tied:1e6/8/16"]


def measure(case, backends, repeat, family="separated"):
    """Median seconds of one ``accumulate`` pass per backend name for one case."""
    from compare_sklearn import case_data, make_data, parse_case

    from fastgmm import GaussianMixture
    from fastgmm._backends import get_backend
    from fastgmm.sources.blocks import statistics_block_size

    covariance_type, n, d, k = parse_case(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family == "overlapping":
            X, init = case_data(family, covariance_type, n, d, k)
            start = GaussianMixture(k, covariance_type=covariance_type, max_iter=1, tol=0, **init).fit(X[:20_000])
        else:
            X = make_data(n, d, k)
            start = GaussianMixture(k, covariance_type=covariance_type, max_iter=2, random_state=0).fit(X[:20_000])
    args = start._parameters().kernel_arguments()
    block_size = statistics_block_size(n)
    modules = {name: get_backend(name) for name in backends}
    times = {name: [] for name in backends}
    for repetition in range(repeat + 1):
        for name, module in modules.items():
            with module.threads(None):
                t0 = time.perf_counter()
                module.accumulate(X, None, *args, block_size)
                if repetition:  # the first round compiles and warms up
                    times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", default=CASES)
    parser.add_argument("--backends", nargs="+", default=["numba", "cython"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--family", choices=("separated", "overlapping"), default="separated")
    args = parser.parse_args(argv)
    first = args.backends[0]
    print("| case | " + " | ".join(f"{name} s" for name in args.backends) + " | "
          + " | ".join(f"{name}/{first}" for name in args.backends[1:]) + " |")
    print("|---" * (2 * len(args.backends)) + "|")
    for case in args.cases:
        t = measure(case, args.backends, args.repeat, args.family)
        ratios = [f"{t[name] / t[first]:.2f}" for name in args.backends[1:]]
        print(f"| {case} | " + " | ".join(f"{t[name]:.4f}" for name in args.backends) + " | " + " | ".join(ratios)
              + " |", flush=True)


if __name__ == "__main__":
    main()
