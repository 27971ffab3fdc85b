"""fastgmm against scikit-learn, measured in one run on this machine; prints the tables README.md quotes.

    python asv_benchmarks/compare_sklearn.py            # everything (about 17 minutes on 2 cores)
    python asv_benchmarks/compare_sklearn.py --quick    # small shapes only, a smoke test
    python asv_benchmarks/compare_sklearn.py --backend numba cython --iterations-only   # both compiled backends
    python asv_benchmarks/compare_sklearn.py --cases full:1e6/8/16 --iterations-only    # one case

With several backends, each is a column of the iteration table, all interleaved with scikit-learn in the same run,
with each backend's time as a multiple of the first's; the whole-fit, memory and first-fit sections use the first.

Every ratio compares the two libraries on the same data, from the same initial parameters (weights_init,
means_init, precisions_init), with tol=0 so that both run exactly the same iterations. A per-iteration time is
(t(max_iter=1 + m) - t(max_iter=1)) / m, which removes validation and set-up; each figure is the median of
``--repeat`` runs, the two libraries interleaved. Machine rates (a float64 matmul, a large array sum) are measured
in the same run, and the time of a full-covariance iteration is reported as a multiple of the lower bound
max(2 N K D^2 / flop rate, N D 8 / bandwidth) of DESIGN.md section 2.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import numpy as np

# Per-iteration cases: (covariance_type, n_samples, n_features, n_components).
CASES = [
    ("full", 100_000, 2, 4),
    ("full", 1_000_000, 8, 16),
    ("full", 1_000_000, 32, 8),
    ("full", 200_000, 64, 16),
    ("diag", 1_000_000, 8, 16),
    ("spherical", 1_000_000, 8, 16),
    ("tied", 1_000_000, 8, 16),
]
QUICK_CASES = [("full", 100_000, 2, 4), ("diag", 100_000, 8, 16)]


def make_data(n_samples, n_features, n_components, seed=0, dtype=np.float64):
    """Gaussian blobs with random covariances (the data of ``fastgmm demo``)."""
    from fastgmm.__main__ import _synthetic

    return _synthetic(n_samples, n_features, n_components, seed)[0].astype(dtype, copy=False)


def machine_rates():
    """(float64 matmul GFLOP/s, array-sum GB/s), medians of 5."""
    a = np.random.rand(2000, 2000)
    a @ a
    flops = []
    for _ in range(5):
        t = time.perf_counter()
        a @ a
        flops.append(2 * 2000**3 / (time.perf_counter() - t) / 1e9)
    x = np.random.rand(2**26)
    x.sum()
    bandwidth = []
    for _ in range(5):
        t = time.perf_counter()
        x.sum()
        bandwidth.append(x.nbytes / (time.perf_counter() - t) / 1e9)
    return float(np.median(flops)), float(np.median(bandwidth))


def shared_init(X, covariance_type, n_components):
    from sklearn.mixture import GaussianMixture

    start = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=2, random_state=0)
    start.fit(X[: min(len(X), 20_000)])
    return dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)


def per_iteration(estimators, X, extra_iterations, repeat):
    """Median per-iteration seconds of each named estimator factory ``f(max_iter)``, runs interleaved."""
    times = {name: [] for name in estimators}
    for _ in range(repeat):
        for name, factory in estimators.items():
            # Let the other library's BLAS threads stop spinning before timing this one.
            time.sleep(0.3)
            t0 = time.perf_counter()
            factory(1).fit(X)
            t1 = time.perf_counter()
            factory(1 + extra_iterations).fit(X)
            t2 = time.perf_counter()
            times[name].append(((t2 - t1) - (t1 - t0)) / extra_iterations)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def parse_case(text):
    """``'full:1e6/8/16'`` -> ``('full', 1000000, 8, 16)``."""
    covariance_type, shape = text.split(":")
    n, d, k = (int(float(v)) for v in shape.split("/"))
    return covariance_type, n, d, k


def iteration_table(cases, repeat, flop_rate, bandwidth, backends):
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    from fastgmm import GaussianMixture
    from fastgmm._backends import warm_up

    rows = []
    for covariance_type, n, d, k in cases:
        X = make_data(n, d, k)
        init = shared_init(X, covariance_type, k)
        settings = dict(n_components=k, covariance_type=covariance_type, tol=0, **init)
        for backend in backends:
            warm_up(GaussianMixture(max_iter=1, backend=backend, **settings), X)  # compile outside the timing
        # Enough iterations that the steady state dominates (and not what the other library left behind).
        work = n * k * d * d
        extra = 20 if work < 1e8 else 5 if work < 1e9 else 3
        factories = {
            backend: (lambda m, backend=backend: GaussianMixture(max_iter=m, backend=backend, **settings))
            for backend in backends
        }
        factories["sklearn"] = lambda m: SklearnGaussianMixture(max_iter=m, **settings)
        measured = per_iteration(factories, X, extra, repeat)
        bound = None
        if covariance_type == "full":
            bound = max(2 * n * k * d * d / (flop_rate * 1e9), n * d * 8 / (bandwidth * 1e9))
        rows.append((covariance_type, n, d, k, measured["sklearn"], [measured[b] for b in backends], bound))
        print(_iteration_row(rows[-1]), flush=True)
    return rows


def _iteration_header(backends):
    columns = ["covariance", "N", "D", "K", "scikit-learn s/iter"]
    for backend in backends:
        label = "fastgmm" if backends == ["auto"] else backend
        columns += [f"{label} s/iter", "speed-up"]
    columns += [f"{backend}/{backends[0]}" for backend in backends[1:]]
    columns.append("x lower bound")
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def _iteration_row(row):
    covariance_type, n, d, k, sk, fastgmm_times, bound = row
    cells = [covariance_type, f"{n:,}", str(d), str(k), f"{sk:.3f}"]
    for fg in fastgmm_times:
        cells += [f"{fg:.4f}", f"**{sk / fg:.0f}x**"]
    cells += [f"{fg / fastgmm_times[0]:.2f}" for fg in fastgmm_times[1:]]
    cells.append(f"{fastgmm_times[0] / bound:.1f}x" if bound else "-")
    return "| " + " | ".join(cells) + " |"


def default_fit(n, d, k, repeat, backend):
    """End-to-end default fit (init_params='kmeans', default tol) of both, same random_state."""
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    from fastgmm import GaussianMixture
    from fastgmm._backends import warm_up

    X = make_data(n, d, k)
    warm_up(GaussianMixture(k, random_state=0, backend=backend), X)
    times = {"fastgmm": [], "sklearn": []}
    iterations = {}
    for _ in range(repeat):
        for name, make in (
            ("fastgmm", lambda: GaussianMixture(k, random_state=0, backend=backend)),
            ("sklearn", lambda: SklearnGaussianMixture(k, random_state=0)),
        ):
            t = time.perf_counter()
            model = make().fit(X)
            times[name].append(time.perf_counter() - t)
            iterations[name] = (model.n_iter_, model.lower_bound_)
    return {name: float(np.median(ts)) for name, ts in times.items()}, iterations


_MEMORY_CHILD = """
import os, sys, threading, time, warnings, numpy as np
warnings.simplefilter("ignore")
library, path, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
X = np.load(path)
if library == "fastgmm":
    from fastgmm import GaussianMixture
else:
    from sklearn.mixture import GaussianMixture
GaussianMixture(k, random_state=0, max_iter=2).fit(X[:5000])
before = rss()
peak = [before]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.001)
sampler = threading.Thread(target=sample)
sampler.start()
GaussianMixture(k, random_state=0).fit(X)
done.set()
sampler.join()
print(max(peak[0], rss()) - before)
"""


def peak_memory(n, d, k, backend):
    """Peak resident memory of a default fit minus that of the process just before it (sampled every
    millisecond from /proc/self/statm), in a fresh process that loaded X from a file, so nothing of the data's
    creation counts."""
    X = make_data(n, d, k)
    result = {"X.nbytes": X.nbytes}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        np.save(path, X)
        del X
        for library in ("fastgmm", "sklearn"):
            out = subprocess.run(
                [sys.executable, "-c", _MEMORY_CHILD, library, path, str(k)], capture_output=True, text=True,
                env=dict(os.environ, FASTGMM_BACKEND=backend),
            )
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
            result[library] = int(out.stdout.strip())
    return result


_FIRST_FIT_CHILD = """
import time
t0 = time.perf_counter()
import numpy as np
from fastgmm import GaussianMixture
t1 = time.perf_counter()
X = np.random.default_rng(0).normal(size=(2000, 3))
GaussianMixture(3, random_state=0).fit(X)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def first_fit_latency(repeat, backend):
    """Seconds of (import, first fit) in fresh processes: with an empty compile cache, then with a warm one."""
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTGMM_BACKEND=backend)
        runs = []
        for attempt in range(repeat + 1):
            out = subprocess.run([sys.executable, "-c", _FIRST_FIT_CHILD], capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
            runs.append(tuple(float(v) for v in out.stdout.split()))
        results["cold"] = runs[0]
        results["warm"] = tuple(float(np.median(column)) for column in zip(*runs[1:]))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", nargs="+", default=["auto"], help="fastgmm backends, each a column")
    parser.add_argument("--cases", nargs="+", help="iteration cases as covariance:N/D/K (default: all)")
    parser.add_argument("--iterations-only", action="store_true", help="the per-iteration table alone")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import numba
    import sklearn

    import fastgmm
    from fastgmm._backends import get_backend

    backends = args.backend
    names = ", ".join(get_backend(backend).NAME for backend in backends)
    flop_rate, bandwidth = machine_rates()
    print(
        textwrap.dedent(
            f"""
            Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; float64 matmul
            {flop_rate:.0f} GFLOP/s, array sum {bandwidth:.1f} GB/s. fastgmm {fastgmm.__version__} (backend
            {names}), scikit-learn {sklearn.__version__}, numba {numba.__version__},
            numpy {np.__version__}; medians of {args.repeat}.
            """
        ).strip()
    )
    print("\n" + _iteration_header(backends))
    cases = [parse_case(case) for case in args.cases] if args.cases else QUICK_CASES if args.quick else CASES
    iteration_table(cases, args.repeat, flop_rate, bandwidth, backends)
    if args.iterations_only:
        return

    backend = backends[0]
    n, d, k = (100_000, 8, 16) if args.quick else (1_000_000, 8, 16)
    times, iterations = default_fit(n, d, k, args.repeat, backend)
    print(f"\nDefault fit (init_params='kmeans', tol=1e-3, random_state=0), N={n:,}, D={d}, K={k}:")
    for name in ("sklearn", "fastgmm"):
        print(f"  {name}: {times[name]:.2f} s ({iterations[name][0]} iterations, lower bound {iterations[name][1]:.6f})")
    print(f"  speed-up: {times['sklearn'] / times['fastgmm']:.1f}x")

    memory = peak_memory(n, d, k, backend)
    print(f"\nPeak extra resident memory of a default fit, N={n:,}, D={d}, K={k} (X.nbytes = {memory['X.nbytes'] / 2**20:.0f} MiB):")
    for name in ("fastgmm", "sklearn"):
        print(f"  {name}: {memory[name] / 2**20:.1f} MiB ({memory[name] / memory['X.nbytes']:.2f} x X.nbytes)")

    latency = first_fit_latency(args.repeat, backend)
    for kind in ("cold", "warm"):
        imp, fit = latency[kind]
        print(f"\nFirst fit in a fresh process, {kind} compile cache: import {imp:.2f} s, first fit (N=2000) {fit:.2f} s")


if __name__ == "__main__":
    main()
