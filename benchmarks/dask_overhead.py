"""What a dask cluster costs per EM iteration, against the in-memory fit of the same rows on the same cores.

    python benchmarks/dask_overhead.py                      # N=1e7, D=8, K=16, 2 workers x 1 thread, 32 blocks
    python benchmarks/dask_overhead.py --overhead-only      # the fixed cost per iteration and per block

A ``distributed.LocalCluster`` of worker processes holds the data (generated on the workers and persisted); the
in-memory fit runs in this process on as many threads as the cluster has in all, while the workers sit idle. Both
start from the same parameters with ``tol=0``; seconds per iteration are the medians of the per-iteration times
that ``verbose=2`` prints, over ``--repeat`` interleaved fits. The second part fits tiny blocks, where the kernels
cost nothing, to measure the fixed cost of one iteration and of one block: the figures docs/scaling.md projects
from.
"""

import argparse
import contextlib
import io
import pickle
import re
import time

import numpy as np


def seconds_per_iteration(model, X):
    """Median of the per-iteration times of ``model.fit(X)`` (the first iteration left out: it warms caches)."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        model.fit(X)
    times = [float(t) for t in re.findall(r"time lapse ([0-9.]+)s\t ll change", log.getvalue())]
    return float(np.median(times[1:])), model


def shared_start(X_sample, n_components, seed=0):
    from fastgmm import GaussianMixture

    start = GaussianMixture(n_components, max_iter=2, random_state=seed).fit(X_sample)
    return {"weights_init": start.weights_, "means_init": start.means_, "precisions_init": start.precisions_}


def compare(client, n_rows, n_features, n_components, block_rows, iterations, repeat, n_threads):
    import dask.array as da
    from distributed import wait

    from fastgmm import GaussianMixture

    X = da.random.RandomState(0).standard_normal(size=(n_rows, n_features), chunks=(block_rows, n_features))
    X = X + 6 * (da.arange(n_rows, chunks=block_rows)[:, None] % n_components) / n_components
    X = client.persist(X)
    wait(X)
    X_local = X.compute()
    start = shared_start(X_local[:200_000], n_components)
    settings = dict(n_components=n_components, tol=0.0, max_iter=iterations, verbose=2, verbose_interval=1, **start)
    local, cluster = [], []
    for _ in range(repeat):
        t, in_memory = seconds_per_iteration(GaussianMixture(n_jobs=n_threads, **settings), X_local)
        local.append(t)
        t, on_dask = seconds_per_iteration(GaussianMixture(**settings), X)
        cluster.append(t)
    difference = np.max(np.abs(in_memory.means_ - on_dask.means_) / np.abs(in_memory.means_).max())
    n_blocks = X.numblocks[0]
    print(f"N={n_rows:.0e} D={n_features} K={n_components}, {n_blocks} blocks of {block_rows} rows")
    print(f"  in memory ({n_threads} threads): {np.median(local):.3f} s/iteration  {np.round(local, 3)}")
    print(f"  LocalCluster:                 {np.median(cluster):.3f} s/iteration  {np.round(cluster, 3)}")
    holders = [workers[0] for workers in client.who_has(X).values() if workers]
    placement = sorted(holders.count(worker) for worker in set(holders))
    print(f"  blocks held per worker: {placement}")
    print(f"  ratio cluster / in memory: {np.median(cluster) / np.median(local):.3f}; means agree to {difference:.1e}")
    params = on_dask._parameters()  # what each worker fetches per iteration
    from fastgmm.sources.blocks import array_statistics
    from fastgmm._backends import get_backend

    stats = array_statistics(get_backend(on_dask.backend_), params, X_local[:1000], None)  # what a block returns
    print(f"  pickled: parameters {len(pickle.dumps(params))} bytes, one block's statistics {len(pickle.dumps(stats))}")


def overhead(client, n_features, n_components, iterations, repeat):
    """Seconds per iteration on tiny blocks (the kernels take microseconds): the fixed costs of dask."""
    import dask.array as da
    from distributed import wait

    from fastgmm import GaussianMixture

    rows_per_block = 256
    results = {}
    for n_blocks in (2, 16, 64, 256):
        X = da.random.RandomState(1).standard_normal(
            size=(n_blocks * rows_per_block, n_features), chunks=(rows_per_block, n_features)
        )
        X = client.persist(X)
        wait(X)
        start = shared_start(X.compute(), n_components)
        settings = dict(n_components=n_components, tol=0.0, max_iter=iterations, verbose=2, verbose_interval=1)
        times = [seconds_per_iteration(GaussianMixture(**settings, **start), X)[0] for _ in range(repeat)]
        results[n_blocks] = float(np.median(times))
        listed = np.round(np.array(times) * 1e3, 1)
        print(f"  {n_blocks:4d} blocks: {results[n_blocks] * 1e3:7.1f} ms/iteration  {listed}")
    blocks = np.array(list(results))
    slope, intercept = np.polyfit(blocks, np.array(list(results.values())), 1)
    print(f"  fit: {intercept * 1e3:.1f} ms per iteration + {slope * 1e3:.2f} ms per block")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--block-rows", type=int, default=312_500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--overhead-only", action="store_true")
    parser.add_argument("--no-overhead", action="store_true", help="skip the tiny-block part")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=args.workers, threads_per_worker=args.threads_per_worker, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        started = time.perf_counter()
        if not args.overhead_only:
            compare(
                client, int(args.rows), args.features, args.components, args.block_rows, args.iterations,
                args.repeat, args.workers * args.threads_per_worker,
            )
        if not args.no_overhead:
            print("fixed costs (tiny blocks):")
            overhead(client, args.features, args.components, args.iterations, args.repeat)
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
