"""First calls in a fresh environment: with an empty Numba cache, a new process imports fastgmm and makes the first
fit+predict of each shape, dtype and covariance type (10,000 x D points, K=3, ``backend='auto'``); then, once the
background compilation it started is done, a second process makes the same calls.

    python benchmarks/first_calls.py [--features 1 3 8 20 64]

Prints the seconds of each call and the backend that served it (``backend_``), for both processes.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

_CHILD = """
import sys, time
start = time.perf_counter()
import numpy as np
import fastgmm
from fastgmm import _background_compile
print(f"import {time.perf_counter() - start:.3f}", flush=True)
rng = np.random.default_rng(0)
for n_features in map(int, sys.argv[1:]):
    for dtype in ("float64", "float32"):
        X = (rng.normal(size=(10_000, n_features)) + 5 * rng.integers(3, size=(10_000, 1))).astype(dtype)
        for covariance_type in ("full", "tied", "diag", "spherical"):
            start = time.perf_counter()
            model = fastgmm.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
            model.predict(X)
            print(f"{n_features} {dtype} {covariance_type} {time.perf_counter() - start:.3f} {model.backend_}",
                  flush=True)
start = time.perf_counter()
done = _background_compile.wait(1800)
print(f"background {done} {time.perf_counter() - start:.1f}", flush=True)
"""


def _run(features, env):
    out = subprocess.run([sys.executable, "-c", _CHILD, *map(str, features)], env=env, capture_output=True,
                         text=True, timeout=3600)
    if out.returncode:
        raise SystemExit(out.stderr)
    return out.stdout.splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, nargs="+", default=[1, 3, 8, 20, 64])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fastgmm-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTGMM_BACKGROUND_COMPILE="1")
        env.pop("FASTGMM_BACKEND", None)
        start = time.perf_counter()
        first = _run(args.features, env)
        print(f"first process, empty cache ({time.perf_counter() - start:.1f} s in all):")
        print("  " + "\n  ".join(first))
        second = _run(args.features, env)
        print("second process:")
        print("  " + "\n  ".join(second))
        calls = [line.split() for line in first if line[0].isdigit()]
        slowest = max(calls, key=lambda c: float(c[3]))
        served = sorted({line.split()[-1] for line in second if line[0].isdigit()})
        print(f"slowest first call: {' '.join(slowest[:3])} {slowest[3]} s; the second process ran {served}")


if __name__ == "__main__":
    main()
