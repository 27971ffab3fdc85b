"""The compiled kernels are cached on disk (``cache=True``) and, with ``backend='auto'``, compiled by a background
process while the Cython kernels serve: a fresh environment never waits for Numba, and later processes load the
kernels, whatever their thread count, and fit the same model. Caching parallel kernels once crashed processes
whose thread count differed from the one that wrote the cache (numba issue 7518, fixed in numba 0.56; pynndescent
dropped its caches over it). Each process here has a timeout, so a hang fails instead of blocking the suite.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("numba")
pytest.importorskip("fastgmm.kernels._cython")

_CHILD = """
import time, numpy as np
from fastgmm import GaussianMixture, _background_compile
from numba.core.dispatcher import Dispatcher
from fastgmm.kernels import numba_
# Enough rows for the parallel kernels (numba_.PARALLEL_WORK), whatever the thread count.
X = np.random.default_rng(0).normal(size=(200_000, 3))
assert X.shape[0] * 2 * 16 >= numba_.PARALLEL_WORK
start = time.perf_counter()
model = GaussianMixture(2, random_state=0, max_iter=5).fit(X)
seconds = time.perf_counter() - start
in_memory = sum(len(kernel.overloads) for kernel in numba_._KERNELS.values())
# Every compiled function of the module, called from Python or not: a compilation in this process is a miss.
misses = sum(len(f.stats.cache_misses) for f in vars(numba_).values() if isinstance(f, Dispatcher))
done = _background_compile.wait(timeout=500)
hits = sum(len(kernel.stats.cache_hits) for kernel in numba_._KERNELS.values())
print(model.backend_, done, in_memory, hits, misses, seconds, *model.means_.ravel())
"""


def _fit_in_fresh_process(cache_dir, n_threads):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS=str(n_threads),
               FASTGMM_BACKGROUND_COMPILE="1")
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    backend, done, in_memory, hits, misses, seconds, *means = out.stdout.split()
    assert misses == "0", "a kernel compiled in the process that called it"
    return backend, done == "True", int(in_memory), int(hits), float(seconds), np.array(means, dtype=float)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One Numba cache for the module: empty for the first test, and what it compiled spares the warmup test a
    part of its own compilation (cold compilations are most of this module's minutes)."""
    return tmp_path_factory.mktemp("numba_cache")


def test_first_fit_is_served_while_numba_compiles_in_the_background(cache_dir, tmp_path):
    if not any(os.scandir(cache_dir)):  # run first, as in the module's order: leave the compiled kernels there
        tmp_path = cache_dir
    backend, done, in_memory, hits, seconds, first = _fit_in_fresh_process(tmp_path, 1)
    assert backend == "cython", "the first fit in an empty cache waited for Numba"
    assert in_memory == 0 and hits == 0, "the first process compiled or found kernels in an empty cache"
    assert done, "the background compilation did not finish"
    assert seconds < 30, f"the first fit took {seconds:.1f} s"
    assert any(name.endswith(".nbi") for _, _, files in os.walk(tmp_path) for name in files)

    backend, _, _, hits, _, second = _fit_in_fresh_process(tmp_path, 2)
    assert backend == "numba", "the next process did not run the kernels compiled in the background"
    assert hits > 0, "the next process compiled again instead of loading the cache"
    np.testing.assert_allclose(second, first, rtol=1e-9)

    backend, _, _, hits, _, third = _fit_in_fresh_process(tmp_path, 1)
    assert backend == "numba" and hits > 0
    # The parallel kernels written under one thread count, loaded under another, give the same bits.
    np.testing.assert_array_equal(third, second)


_AFTER_WARMUP = """
import numpy as np
from fastgmm import GaussianMixture, _background_compile
X = np.random.default_rng(0).normal(size=(10_000, 3))
for covariance_type in ("full", "tied", "diag", "spherical"):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    model.predict(X)
    print(model.backend_)
print(len(_background_compile._asked))
"""


def test_warmup_command_compiles_what_a_first_fit_needs(cache_dir):
    # The shape and dtype of the first test's fits: the kernels it compiled are loaded, the others compiled here.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), FASTGMM_BACKGROUND_COMPILE="1")
    out = subprocess.run([sys.executable, "-m", "fastgmm", "warmup", "--features", "3", "--dtypes", "float64",
                          "--jobs", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "3 features, float64" in out.stdout
    out = subprocess.run([sys.executable, "-c", _AFTER_WARMUP], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    *backends, asked = out.stdout.split()
    assert backends == ["numba"] * 4
    assert asked == "0", "kernels were still missing after warmup"


_REFUSE_COLD = """
import numpy as np
from numba.core import base
from fastgmm.kernels import numba_
refreshed = []
refresh = base.BaseContext.refresh
base.BaseContext.refresh = lambda self: refreshed.append(1) or refresh(self)
X = np.random.default_rng(0).normal(size=(500, 2))
try:
    with numba_.cached_only():
        numba_.update_closest(X, X[0], np.full(500, np.inf), 4096)
    print("compiled")
except numba_.NotCompiled as missing:
    print("refused", missing.kernel, len(refreshed))
"""


def test_an_empty_cache_refuses_without_setting_up_numbas_target(tmp_path):
    """In an empty cache a kernel is refused before Numba's cache lookup, whose first call in a process sets up the
    compilation target (0.6 s of a first call here)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _REFUSE_COLD], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "_update_closest.serial", "0"]


@pytest.mark.parametrize("layout", ["c", "any"])
def test_warmup_fits_data_of_each_layout_it_is_asked_for(monkeypatch, layout):
    """``fastgmm warmup --layouts c,any``: the second compilation of each kernel, for every layout but C order, is
    made by fitting data that are not C-ordered."""
    from fastgmm import _backends, _warmup
    from fastgmm._gaussian_mixture import GaussianMixture

    seen = []
    monkeypatch.setattr(_backends, "warm_up", lambda model, X: seen.append(X.flags.c_contiguous))
    monkeypatch.setattr(GaussianMixture, "fit", lambda self, X: seen.append(X.flags.c_contiguous) or self)
    monkeypatch.setattr(GaussianMixture, "predict", lambda self, X: seen.append(X.flags.c_contiguous))
    _warmup._compile_one(3, "float64", layout)
    assert seen == [layout == "c"] * 16
    with pytest.raises(ValueError, match="unknown layout 'f'"):
        _warmup.warmup([3], ["float64"], layouts=["f"])


_SAVE_AT_THE_SAME_TIME = """
import os, sys, time
import numpy as np
from numba.core import caching
from fastgmm.kernels import numba_

here, me, other = sys.argv[1], sys.argv[2], sys.argv[3]
kernel = numba_._KERNELS["_update_closest.serial"]
index = kernel._cache._cache_file._index_path
save_index = caching.IndexDataCacheFile._save_index

def save_index_when_both_are_here(self, overloads):
    # Both processes have read the index and chosen a data file name: the moment Numba's own saves collide.
    if self._index_path == index:
        open(os.path.join(here, me), "w").close()
        deadline = time.monotonic() + 15
        while not os.path.exists(os.path.join(here, other)) and time.monotonic() < deadline:
            time.sleep(0.05)
    save_index(self, overloads)

caching.IndexDataCacheFile._save_index = save_index_when_both_are_here
X = np.random.default_rng(0).normal(size=(300, 3)).astype(me)
numba_.update_closest(X, X[0], np.full(300, np.inf), 4096)
"""

_LOAD_BOTH = """
import numpy as np
from fastgmm.kernels import numba_
kernel = numba_._KERNELS["_update_closest.serial"]
for dtype in ("float64", "float32"):
    X = np.random.default_rng(1).normal(size=(300, 3)).astype(dtype)
    closest = np.full(300, np.inf)
    numba_.update_closest(X, X[0], closest, 4096)
    expected = ((X.astype(np.float64) - X[0].astype(np.float64)) ** 2).sum(axis=1)
    np.testing.assert_allclose(closest, expected, rtol=1e-5)
names = kernel._cache._cache_file._load_index()
print(len(kernel.stats.cache_hits), len(names), len(set(names.values())))
"""


def test_processes_saving_one_kernel_at_once_keep_each_signature_apart(tmp_path):
    """Two processes that save two signatures of one kernel into the cache at the same moment (as background
    compilations, ``fastgmm warmup --jobs 2`` and pool workers do) leave an index with both, each pointing to its
    own code: a third process loads both and computes right. (Numba alone lets the second save overwrite the
    first one's index entry, measured here as one of the two loads missing, or give both the same data file, so
    that one signature runs the other's code: numba issue 4807.)"""
    cache, meeting = tmp_path / "cache", tmp_path / "meeting"
    meeting.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    children = [subprocess.Popen([sys.executable, "-c", _SAVE_AT_THE_SAME_TIME, str(meeting), me, other], env=env,
                                 stderr=subprocess.PIPE, text=True)
                for me, other in (("float64", "float32"), ("float32", "float64"))]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    out = subprocess.run([sys.executable, "-c", _LOAD_BOTH], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-3000:]}"
    assert out.stdout.split() == ["2", "2", "2"], "both signatures loaded from the cache, from two data files"


_TOY_KERNELS = """
import numpy as np
from numba import prange
from fastgmm.kernels import numba_


@numba_._SerialAndParallel
def _block_sums(x, out):
    for b in prange(out.shape[0]):
        s = 0.0
        for i in range(b, x.shape[0], out.shape[0]):
            s += x[i]
        out[b] = s


def _passes(x, n_blocks):
    out = np.zeros(n_blocks)
    total = 0.0
    for _ in range(3):
        _block_sums_step(x, out)
        total += out.sum()
    return total


compiled_passes = numba_._with_steps(_passes, "parallel", _block_sums_step=_block_sums.parallel)


def passes(x, n_blocks):  # as numba_.em_iterations calls its parallel variant
    return numba_._with_threads_started(compiled_passes)(x, n_blocks)
"""

_TOY_CALL = """
import sys
import numpy as np
import toy_kernels
x = np.arange(100_000.0)
if sys.argv[1] == "kernel":
    out = np.zeros(8)
    toy_kernels._block_sums.parallel(x, out)
    print(out.sum())
else:
    print(toy_kernels.passes(x, 8), len(toy_kernels.compiled_passes.stats.cache_hits))
"""


def test_a_caller_compiled_over_a_cached_parallel_kernel_loads_from_the_cache(tmp_path):
    """A compiled function that calls a parallel kernel (the ``parallel`` variants of ``_with_steps``: the fused EM
    and k-means loops), compiled in a process that loaded that kernel from the cache, loads from the cache in the
    next process and runs when called as fastgmm calls it: without ``_with_threads_started`` it segfaulted there (the
    threading layer never started), as a process that fitted after another had compiled only the single pass did
    (pytest-xdist workers, background compilations). Toy kernels, so that it compiles in seconds."""
    (tmp_path / "toy_kernels.py").write_text(_TOY_KERNELS)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def run(what):
        out = subprocess.run([sys.executable, "-c", _TOY_CALL, what], cwd=tmp_path, capture_output=True, text=True,
                             env=env, timeout=300)
        assert out.returncode == 0, f"{what}: exit {out.returncode}: {out.stderr[-3000:]}"
        return out

    expected = float(np.arange(100_000.0).sum())
    assert float(run("kernel").stdout) == expected  # the kernel alone into the cache
    compiled = run("caller")  # the caller compiled, the kernel loaded from the cache
    assert compiled.stdout.split() == [repr(3 * expected), "0"]
    loaded = run("caller")
    assert loaded.stdout.split() == [repr(3 * expected), "1"], "the caller did not load from the cache"


_COMPILE_WHILE_ANOTHER_WAITS = """
import os, sys, time
import numpy as np
from fastgmm.kernels import numba_
here, role = sys.argv[1], sys.argv[2]
kernel = numba_._KERNELS["_update_closest.serial"]
if role == "first":
    acquire = numba_.FileLock.acquire

    def acquire_and_tell(self, *args, **kwargs):
        acquire(self, *args, **kwargs)
        if self.lock_file.endswith(".compiling"):
            open(os.path.join(here, "compiling"), "w").close()
            time.sleep(2)  # the second process is at the lock by now

    numba_.FileLock.acquire = acquire_and_tell
X = np.random.default_rng(0).normal(size=(300, 3))
closest = np.full(300, np.inf)
numba_.update_closest(X, X[0], closest, 4096)
np.testing.assert_allclose(closest, ((X - X[0]) ** 2).sum(axis=1))
print(len(kernel.stats.cache_misses), len(kernel.stats.cache_hits))
"""


def test_processes_compiling_one_kernel_at_once_compile_it_once(tmp_path):
    """A process that needs a kernel another process is compiling waits for it and loads it from the cache,
    instead of compiling it too (pool workers and pytest-xdist workers start on the same kernels)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = subprocess.Popen([sys.executable, "-c", _COMPILE_WHILE_ANOTHER_WAITS, str(tmp_path), "first"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "compiling").exists():
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the first process never took the compilation lock"
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-c", _COMPILE_WHILE_ANOTHER_WAITS, str(tmp_path), "second"],
                                env=env, capture_output=True, text=True, timeout=300)
        out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert out.split() == ["1", "0"], "the first process compiled the kernel"
    assert second.stdout.split() == ["0", "1"], "the second process compiled the kernel again"


_INTERRUPT_A_COMPILATION = """
import _thread
import signal
# Python's own Ctrl-C handler, whatever this process inherited: a shell that starts a job in the background without
# job control (``(... &)``) makes it ignore SIGINT, and then interrupt_main() does nothing.
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
from numba.core import compiler
from fastgmm.kernels import numba_
compile_extra = compiler.compile_extra

def interrupted_compile_extra(*args, **kwargs):
    _thread.interrupt_main()  # Ctrl-C, as Numba starts compiling
    return compile_extra(*args, **kwargs)

compiler.compile_extra = interrupted_compile_extra
kernel = numba_._KERNELS["_update_closest.serial"]
X = np.random.default_rng(0).normal(size=(300, 3))
closest = np.full(300, np.inf)
try:
    numba_.update_closest(X, X[0], closest, 4096)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted", len(kernel.overloads))
compiler.compile_extra = compile_extra
numba_.update_closest(X, X[0], closest, 4096)
np.testing.assert_allclose(closest, ((X - X[0]) ** 2).sum(axis=1))
"""


def test_ctrl_c_during_a_compilation_comes_once_the_kernel_is_compiled(tmp_path):
    """Ctrl-C while Numba compiles a kernel raises KeyboardInterrupt after the compilation, not inside it (where it
    left half-built LLVM modules whose disposal segfaulted); the kernel is then compiled and runs."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _INTERRUPT_A_COMPILATION], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-3000:]}"
    assert out.stdout.split() == ["interrupted", "1"]
