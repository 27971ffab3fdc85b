"""Seconds per EM iteration of the Numba backend under each of Numba's threading layers, each in a process of its
own (the layer is fixed at a process's first parallel launch), the layers interleaved over the repeats.

    python benchmarks/threading_layers.py [--repeats 3] [--layers tbb omp workqueue]

Each process fits from one start with tol=0 and times 6 iterations minus 1 (so initialisation and the final
bookkeeping cancel), median of 5; the table is the median over the repeats. A layer that does not load here prints
its error instead.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

CASES = [(100_000, 2, 4), (30_000, 4, 3), (1_000_000, 2, 4), (1_000_000, 8, 16)]

_CHILD = """
import json, sys, time, warnings
import numpy as np
import numba
import fastgmm
warnings.simplefilter("ignore")
out = {}
for N, D, K in json.loads(sys.argv[1]):
    X = np.random.RandomState(0).randn(N, D)
    start = fastgmm.GaussianMixture(K, max_iter=0, random_state=0).fit(X[:5000])
    init = dict(weights_init=start.weights_ / start.weights_.sum(), means_init=start.means_,
                precisions_init=start.precisions_)
    model = fastgmm.GaussianMixture(K, tol=0, max_iter=2, backend="numba", **init).fit(X)
    times = []
    for _ in range(5):
        t = time.perf_counter(); model.set_params(max_iter=6).fit(X); six = time.perf_counter() - t
        t = time.perf_counter(); model.set_params(max_iter=1).fit(X); one = time.perf_counter() - t
        times.append((six - one) / 5)
    out[f"{N}-{D}-{K}"] = float(np.median(times))
print(json.dumps({"layer": numba.threading_layer(), "seconds": out}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", nargs="+", default=["tbb", "omp", "workqueue"])
    args = parser.parse_args()
    seconds = {layer: [] for layer in args.layers}
    for _ in range(args.repeats):
        for layer in args.layers:
            env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
            run = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(CASES)], capture_output=True, text=True,
                                 env=env, timeout=1800)
            if run.returncode != 0:
                print(f"{layer}: does not run here: {run.stderr.strip().splitlines()[-1]}")
                continue
            seconds[layer].append(json.loads(run.stdout)["seconds"])
    print(f"{'N, D, K':>18} " + " ".join(f"{layer:>10}" for layer in args.layers) + "   (ms per iteration)")
    for N, D, K in CASES:
        key = f"{N}-{D}-{K}"
        cells = [f"{1e3 * np.median([r[key] for r in seconds[layer]]):>10.2f}" if seconds[layer] else f"{'-':>10}"
                 for layer in args.layers]
        print(f"{key:>18} " + " ".join(cells))


if __name__ == "__main__":
    main()
