"""Fit a memory-mapped float32 file larger than the memory the fit may use, and report seconds per iteration and the
peak anonymous (not file-backed) resident memory of the process.

    python benchmarks/out_of_core.py --rows 100000000 --path /tmp/fastgmm-1e8.f32

The file is written once (seeded blobs, in slabs) and reused. Resident memory is sampled every 10 ms from
/proc/self/status (RssAnon: the pages the process owns; the mapped file's pages are RssFile and belong to the page
cache, which the kernel can drop and re-read).
"""

import argparse
import contextlib
import io
import os
import re
import threading
import time

import numpy as np

from fastgmm import GaussianMixture

_SLAB = 1_000_000


def rss_anon_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


class PeakSampler(threading.Thread):
    """Largest RssAnon seen while running."""

    def __init__(self, interval=0.01):
        super().__init__(daemon=True)
        self.interval, self.peak, self._stop_event = interval, rss_anon_bytes(), threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_anon_bytes())
            time.sleep(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()
        return max(self.peak, rss_anon_bytes())


def write_blobs(path, n_rows, n_features, n_components, seed=0):
    """Seeded Gaussian blobs written slab by slab into a float32 file of shape (n_rows, n_features)."""
    rng = np.random.RandomState(seed)
    centers = rng.uniform(-10, 10, size=(n_components, n_features))
    scales = rng.uniform(0.5, 2.0, size=n_components)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    for start in range(0, n_rows, _SLAB):
        stop = min(start + _SLAB, n_rows)
        labels = rng.randint(n_components, size=stop - start)
        out[start:stop] = centers[labels] + scales[labels, None] * rng.standard_normal((stop - start, n_features))
    out.flush()
    del out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--path", default="/tmp/fastgmm-out-of-core.npy")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    expected = (args.rows, args.features)
    if not os.path.exists(args.path) or np.load(args.path, mmap_mode="r").shape != expected:
        started = time.perf_counter()
        write_blobs(args.path, args.rows, args.features, args.components)
        print(f"wrote {args.path} ({os.path.getsize(args.path) / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
    X = np.load(args.path, mmap_mode="r")
    print(f"X: memmap {X.shape} {X.dtype}, {X.nbytes / 1e9:.2f} GB")
    print(f"RssAnon before fit {rss_anon_bytes() / 2**20:.0f} MiB")

    gm = GaussianMixture(
        args.components, max_iter=args.iterations, tol=0, random_state=0, backend=args.backend,
        verbose=2, verbose_interval=1,
    )
    sampler = PeakSampler()
    sampler.start()
    log = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(log):
        gm.fit(X)
    elapsed = time.perf_counter() - started
    peak = sampler.stop()
    # verbose=2 prints each iteration's wall time: the per-iteration figures, without the initialisation.
    per_iteration = [float(m) for m in re.findall(r"time lapse ([0-9.]+)s\t ll change", log.getvalue())]
    print(f"fit: {elapsed:.1f} s for initialisation + {gm.n_iter_} iterations, lower bound {gm.lower_bound_:.6f}")
    listed = ", ".join(f"{t:.2f}" for t in per_iteration)
    print(f"seconds per iteration: {listed}; median {np.median(per_iteration):.2f}")
    print(f"peak RssAnon during fit: {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
