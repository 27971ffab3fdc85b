"""The compiled kernels are cached on disk (``cache=True``): the second process must load them, whatever its
thread count, and fit the same model. Caching parallel kernels once crashed processes whose thread count differed
from the one that wrote the cache (numba issue 7518, fixed in numba 0.56; pynndescent dropped its caches over it).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

_CHILD = """
import sys, numpy as np
from fastgmm import GaussianMixture
from fastgmm.kernels import numba_
# Enough rows for the parallel kernels (numba_.PARALLEL_WORK), whatever the thread count.
X = np.random.default_rng(0).normal(size=(200_000, 3))
assert X.shape[0] * 2 * 16 >= numba_.PARALLEL_WORK
model = GaussianMixture(2, random_state=0, init_params="random_from_data", backend="numba", max_iter=5).fit(X)
print(numba_._accumulate.parallel.stats.cache_hits.__len__(), *model.means_.ravel())
"""


def _fit_in_fresh_process(cache_dir, n_threads):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS=str(n_threads))
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    hits, *means = out.stdout.split()
    return int(hits), np.array(means, dtype=float)


def test_cached_kernels_load_under_another_thread_count(tmp_path):
    hits_first, first = _fit_in_fresh_process(tmp_path, 1)
    hits_second, second = _fit_in_fresh_process(tmp_path, 2)
    assert hits_first == 0, "the first process found a cache in an empty directory"
    assert hits_second > 0, "the second process compiled again instead of loading the cache"
    assert any(name.endswith(".nbi") for _, _, files in os.walk(tmp_path) for name in files)
    np.testing.assert_array_equal(first, second)
