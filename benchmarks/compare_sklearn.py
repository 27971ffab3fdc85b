"""fastgmm against scikit-learn and Intel oneDAL, measured in one run on this machine; prints the tables README.md
quotes.

    python benchmarks/compare_sklearn.py            # everything (about 30 minutes on 2 cores)
    python benchmarks/compare_sklearn.py --quick    # small shapes only, a smoke test
    python benchmarks/compare_sklearn.py --backend numba cython --iterations-only   # both compiled backends
    python benchmarks/compare_sklearn.py --cases full:1e6/8/16 --iterations-only    # one case
    python benchmarks/compare_sklearn.py --family overlapping --iterations-only     # overlapping data only

Two families of per-iteration cases: ``separated`` starts from a two-iteration scikit-learn fit of blobs that are
well apart (a point keeps about one live component), ``overlapping`` has K = 4 x the natural clusters and starts
with every component over the whole data set (random points as means, the pooled covariance for all: every point
keeps K live components, as in the first iterations of any fit).

With several backends, each is a column of the iteration table, all interleaved with the peers in the same run,
with each backend's time as a multiple of the first's; the whole-fit, memory and first-fit sections use the first.
oneDAL (``daal4py.em_gmm``, from ``pip install scikit-learn-intelex``, the ``bench`` extra) is a column where it
is installed, for full and diagonal covariances (it has no others).

Every ratio compares the libraries on the same data, from the same initial parameters (weights_init, means_init,
precisions_init), with tol=0 so that all run exactly the same iterations. A per-iteration time is
(t(max_iter=1 + m) - t(max_iter=1)) / m, which removes validation and set-up; each figure is the median of
``--repeat`` runs, the libraries interleaved. Machine rates (a float64 matmul on all cores, NumPy's exp on one core
times the cores, a large array sum) are measured in the same run, and each iteration is reported as a multiple of
the lower bound max(flops / matmul rate + N K / exp rate, N D 8 / bandwidth), with 2 N K D^2 flops for full and
tied covariances (docs/design.md section 2) and 6 N K D for diagonal and spherical ones.
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
from pathlib import Path

import numpy as np

# The asv suite's package (asv_benchmarks/benchmarks/): its oneDAL wrapper and overlapping start, which the
# dashboard's series and these tables share.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_benchmarks"))

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
FAMILIES = ("separated", "overlapping")


def make_data(n_samples, n_features, n_components, seed=0, dtype=np.float64):
    """Gaussian blobs with random covariances (the data of ``fastgmm demo``)."""
    from fastgmm.__main__ import _synthetic

    return _synthetic(n_samples, n_features, n_components, seed)[0].astype(dtype, copy=False)


def exp_rate():
    """Exponentials per second on all cores: the faster of NumPy's vectorised exp and the compiled kernels' over
    16,384 doubles that stay in L2 (as a kernel's tiles do), 64 times on one core, median of 5; times the cores."""
    x = -np.random.rand(16384) * 50
    out = np.empty_like(x)
    candidates = [lambda: np.exp(x, out=out)]
    try:
        from fastgmm.kernels import numba_

        scratch = np.empty_like(x)
        candidates.append(lambda: numba_._exp_nonpositive(x, out, x.size, scratch))
    except ImportError:
        pass
    best = 0.0
    for run in candidates:
        run()
        rates = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(64):
                run()
            rates.append(64 * x.size / (time.perf_counter() - t))
        best = max(best, float(np.median(rates)))
    return best * os.cpu_count()


def lower_bound(covariance_type, n, d, k, flop_rate, exp_per_second, bandwidth):
    """Seconds per iteration below which no implementation can go here (see the module docstring)."""
    flops = 2 * n * k * d * d if covariance_type in ("full", "tied") else 6 * n * k * d
    return max(flops / (flop_rate * 1e9) + n * k / exp_per_second, n * d * 8 / (bandwidth * 1e9))


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


def case_data(family, covariance_type, n, d, k):
    """(X, initial parameters) of a per-iteration case of the family."""
    from benchmarks.datasets import overlapping_start

    if family == "overlapping":
        X = make_data(n, d, max(1, k // 4))
        return X, overlapping_start(X, covariance_type, k)
    X = make_data(n, d, k)
    return X, shared_init(X, covariance_type, k)


def per_iteration(estimators, X, extra_iterations, repeat):
    """Median per-iteration seconds of each named estimator factory ``f(max_iter)``, runs interleaved; NaN for one
    that stopped before running an extra iteration. The extra iterations are counted from the fits' ``n_iter_``:
    oneDAL stops once its log-likelihood no longer changes at all, even with a zero tolerance."""
    times = {name: [] for name in estimators}
    for _ in range(repeat):
        for name, factory in estimators.items():
            # Let the other library's BLAS threads stop spinning before timing this one.
            time.sleep(0.3)
            t0 = time.perf_counter()
            one = factory(1).fit(X)
            t1 = time.perf_counter()
            more = factory(1 + extra_iterations).fit(X)
            t2 = time.perf_counter()
            ran = more.n_iter_ - one.n_iter_
            times[name].append(((t2 - t1) - (t1 - t0)) / ran if ran > 0 else np.nan)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def _processor():
    """The CPU's model name (``lscpu``'s), and whether it has AVX-512: the kernels' speed depends on both."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return name
    for line in info.splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            break
    return f"{name} ({'AVX-512' if 'avx512f' in info else 'AVX2' if 'avx2' in info else 'no AVX2'})"


def parse_case(text):
    """``'full:1e6/8/16'`` -> ``('full', 1000000, 8, 16)``."""
    covariance_type, shape = text.split(":")
    n, d, k = (int(float(v)) for v in shape.split("/"))
    return covariance_type, n, d, k


def iteration_table(family, cases, repeat, rates, backends, onedal):
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    from benchmarks.common import OneDALMixture
    from fastgmm import GaussianMixture
    from fastgmm._backends import warm_up

    rows = []
    for covariance_type, n, d, k in cases:
        X, init = case_data(family, covariance_type, n, d, k)
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
        with_onedal = onedal and covariance_type in ("full", "diag")
        if with_onedal:
            factories["onedal"] = lambda m: OneDALMixture(max_iter=m, **settings)
        try:
            measured = per_iteration(factories, X, extra, repeat)
        except RuntimeError as error:  # oneDAL refuses some starts ("Ill-conditioned covariance matrix")
            if not with_onedal:
                raise
            print(f"(oneDAL failed on this case: {str(error).splitlines()[0]})", flush=True)
            del factories["onedal"]
            measured = per_iteration(factories, X, extra, repeat)
        bound = lower_bound(covariance_type, n, d, k, *rates)
        rows.append((covariance_type, n, d, k, measured["sklearn"], measured.get("onedal"),
                     [measured[b] for b in backends], bound))
        print(_iteration_row(rows[-1], onedal), flush=True)
    return rows


def _iteration_header(backends, onedal):
    columns = ["covariance", "N", "D", "K", "scikit-learn s/iter"] + (["oneDAL s/iter"] if onedal else [])
    for backend in backends:
        label = "fastgmm" if backends == ["auto"] else backend
        columns += [f"{label} s/iter", "vs scikit-learn"] + (["vs oneDAL"] if onedal else [])
    columns += [f"{backend}/{backends[0]}" for backend in backends[1:]]
    columns.append("x lower bound")
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def _iteration_row(row, onedal):
    covariance_type, n, d, k, sk, dal, fastgmm_times, bound = row
    cells = [covariance_type, f"{n:,}", str(d), str(k), f"{sk:.3f}"]
    # oneDAL: None where it does not run the case, NaN where it stopped early (converged to the last bit).
    measured = dal is not None and np.isfinite(dal)
    if onedal:
        cells.append(f"{dal:.4f}" if measured else "converged" if dal is not None else "-")
    for fg in fastgmm_times:
        cells += [f"{fg:.4f}", f"**{sk / fg:.0f}x**"]
        if onedal:
            cells.append(f"**{dal / fg:.2f}x**" if measured else "-")
    cells += [f"{fg / fastgmm_times[0]:.2f}" for fg in fastgmm_times[1:]]
    cells.append(f"{fastgmm_times[0] / bound:.1f}x")
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
    parser.add_argument("--family", choices=FAMILIES + ("both",), default="both",
                        help="per-iteration case family (default: both)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import numba
    import sklearn

    import fastgmm
    from benchmarks.common import onedal_available
    from fastgmm._backends import get_backend

    backends = args.backend
    names = ", ".join(get_backend(backend).NAME for backend in backends)
    flop_rate, bandwidth = machine_rates()
    exps = exp_rate()
    onedal = onedal_available()
    if onedal:
        from importlib.metadata import version

        peers = f"scikit-learn-intelex {version('scikit-learn-intelex')} (oneDAL), "
    else:
        peers = "oneDAL not installed (pip install scikit-learn-intelex), "
    print(
        textwrap.dedent(
            f"""
            Machine: {_processor()}, {os.cpu_count()} cores; float64 matmul {flop_rate:.0f} GFLOP/s, exp
            {exps / 1e9:.2f} G/s, array sum {bandwidth:.1f} GB/s. fastgmm {fastgmm.__version__} (backend {names}),
            scikit-learn {sklearn.__version__}, {peers}numba {numba.__version__}, numpy {np.__version__};
            medians of {args.repeat}.
            """
        ).strip()
    )
    cases = [parse_case(case) for case in args.cases] if args.cases else QUICK_CASES if args.quick else CASES
    for family in FAMILIES if args.family == "both" else (args.family,):
        print(f"\nPer EM iteration, {family} data:\n" + _iteration_header(backends, onedal))
        iteration_table(family, cases, args.repeat, (flop_rate, exps, bandwidth), backends, onedal)
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
