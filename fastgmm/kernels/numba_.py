"""Numba kernels: the one-pass statistics and the per-component log-probabilities, compiled, parallel over row
blocks.

Layout of the work. Rows are cut into blocks whose boundaries depend on N only (the caller's ``block_size``); a
thread takes whole blocks and writes the block's own partial statistics, and the partials are summed in block
order afterwards, so the result is bit-identical whatever the number of threads. Inside a block, rows go through
in tiles of ``TILE`` rows held transposed, (D, TILE) in float64, so that every inner loop runs over the rows of a
tile: contiguous, independent, and vectorised by LLVM (SIMD over points, not over the short feature axis).

Per tile and component, with ``diff = x - mu_k`` (D, T) formed as the rows are loaded: ``y = U_k^T diff`` through
the upper triangle (D^2/2 FMAs per point); ``a_k = log_const_k - |y|^2 / 2``. Then a log-sum-exp over components
per point and the responsibilities (only components within 2^-100 of a point's best one count), and per component
``s1 += sum_n r diff``, ``s2[i, j] += sum_n r diff_i diff_j`` for ``i <= j`` (D^2/2 FMAs per kept pair). A tile
goes one of two ways, by the fraction of its (point, component) pairs that count (``_passes.dense_live``): sparse,
where a point keeps one or two components (the pairs gathered, exp over them alone, staged by component for long
reductions), or dense, where components overlap (one exp sweep over every pair, the moments straight from the
tile's columns).

Arguments travel in groups, tuples that cost nothing to pack and unpack (LLVM sees through them), each named once:
``model`` ``(cov, means, U, log_const)``, the components in the kernel layouts (``_prepare``); ``plan`` how a pass
cuts and routes the work; ``partials`` a pass's per-block statistics; ``tile``, ``resp`` and ``staging`` a thread's
buffers (``_e_step_buffers``). X comes first and alone, for ``_as_compiled``.

Every kernel is compiled with ``cache=True``. Measured here, the first fit of a fresh process takes ~30 s of
compilation with an empty cache and 0.75 s with a warm one, so the cache is worth its known risk: parallel kernels
loaded from a cache written under another thread count used to crash (numba issue 7518, the reason pynndescent
removed ``cache=True`` from its parallel functions in its pull request 175); numba fixed that in 0.56, below our
minimum, and ``tests/test_compile_cache.py`` checks it in fresh processes. No kernel takes a function argument,
whose type would make every call a cache miss (pynndescent pull request 226).
"""

import contextlib
import contextvars
import ctypes
import functools
import hashlib
import math
import os
import signal
import sys
import threading
import types

import numpy as np
from filelock import FileLock, Timeout
from numba import config, get_num_threads, njit, prange, threading_layer
from numba.core import sigutils
from numba.core import types as numba_types
from numba.core.compiler_lock import global_compiler_lock
from numba.core.dispatcher import Dispatcher

from .._threads import numba_threads as threads  # noqa: F401 (the backend's thread policy)
from . import _passes
from ._constants import (EXP_MIN, EXP_SHIFTER, LN2_HI, LN2_LO, LOG2E, LOG_CHUNK, LOG_NEGLIGIBLE, MAX_SMALL_FEATURES,
                         MAX_STATIC_DIAGONAL, MAX_STATIC_TRIANGLE, TILE)
from ._layouts import CODES, DIAG, FULL, SPHERICAL, TIED, as_3d, finish_s2, from_3d, s2_block_shape
from ._passes import n_blocks, reduce_in_rounds, staged_components, sum_in_order
from .numpy_ import responsibility_moments  # noqa: F401 (the reference's: one pass per random initialisation)

if config.DISABLE_JIT:
    # The kernels would run as interpreted Python, hundreds of times slower than the NumPy reference.
    raise ImportError("NUMBA_DISABLE_JIT is set")

NAME = "numba"


def runtime_summary():
    """Numba's default thread count and threading layer (and the one in use, once a parallel kernel ran), and
    where the kernels' on-disk cache is and whether this process can write there."""
    try:
        in_use = f", in use: {threading_layer()}"
    except ValueError:  # no parallel kernel has run yet in this process
        in_use = ""
    path = _accumulate.parallel._cache._cache_path
    probe = path
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.access(probe, os.W_OK):
        cache = f"{path} (writable)"
    else:
        cache = (f"{path} (not writable: every process compiles again; set NUMBA_CACHE_DIR to a writable directory, "
                 "or run `fastgmm warmup` where it is writable)")
    return {"threads": f"{get_num_threads()} (threading layer {config.THREADING_LAYER}{in_use})", "cache": cache}


def _load_pip_tbb():
    """Make pip's TBB loadable: the ``tbb`` wheel puts libtbb.so.12 in ``<prefix>/lib``, outside the loader's path,
    so Numba's TBB layer fails to import ("Unknown import problem"); loaded by path first, the name resolves."""
    if not sys.platform.startswith("linux"):
        return
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = os.path.join(prefix, "lib", "libtbb.so.12")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:  # another architecture, a broken file: Numba then picks another layer
                pass


# The threading layer, unless the user chose one (NUMBA_THREADING_LAYER): 'forksafe' is TBB where it loads (thread-
# and fork-safe; a dependency on Linux x86-64), else workqueue, never GNU OpenMP, under which Numba kills a process
# forked after a parallel kernel ran ("fork() called from a process already using GNU OpenMP, this is unsafe":
# measured, both children of a multiprocessing 'fork' pool terminated). Per EM iteration at N=1e5, D=2, K=4
# (benchmarks/threading_layers.py): TBB 1.53 ms, omp 1.50, workqueue 2.22; alike at N=1e6. It takes effect at
# the first parallel launch of the process.
_load_pip_tbb()
if "NUMBA_THREADING_LAYER" not in os.environ:
    config.THREADING_LAYER = "forksafe"

# workqueue aborts the process when two Python threads launch parallel kernels at once: one launch at a time,
# whichever layer loaded (two kernels at once would only share the same cores).
_launch_lock = threading.RLock()


# Below this much work per call a kernel runs serial: one parallel launch costs more than the whole call there
# (measured: ~1 ms per launch under workqueue, against 0.05 ms of work for 10,000 x 4 points and 3 components; a
# default fit of that size made 13 launches). Each wrapper estimates its own call's work in multiply-adds: points x
# components x (features + 1)^2 for the EM passes, points x centres x features for k-means, points x features for
# the distance update; the crossover measured for the EM pass was at about 3e4 x 4 features x 3 components.
PARALLEL_WORK = 2_000_000


class NotCompiled(Exception):
    """Raised inside ``cached_only()`` by a kernel whose compilation for the call's argument types is neither in
    memory nor in Numba's on-disk cache; ``kernel`` names it (see ``compile_kernel``) and ``signature`` is the
    tuple of Numba types, picklable."""

    def __init__(self, kernel, signature):
        super().__init__(f"{kernel} is not compiled for {signature}")
        self.kernel = kernel
        self.signature = signature


_cached_only = contextvars.ContextVar("fastgmm_numba_cached_only", default=False)


@contextlib.contextmanager
def cached_only():
    """Within the block (in this thread or task), kernel calls that would compile raise ``NotCompiled`` instead;
    compilations in Numba's on-disk cache are loaded as usual."""
    token = _cached_only.set(True)
    try:
        yield
    finally:
        _cached_only.reset(token)


def _as_compiled(args):
    """The argument types a kernel is compiled for, given those of a call: X (the first) read-only (no kernel
    writes it), C-contiguous or of any layout.

    Numba compiles a function for each type of its arguments, and an array's type holds its layout (C, F or any)
    and whether it is writable: six copies of every kernel per dtype and D, each several seconds of compilation,
    for the same loops (pandas' Fortran-ordered arrays, read-only memmaps, column slices). Two serve them all; only
    C-contiguous data, the common case, keep loads compiled for unit strides."""
    X = args[0] if args else None
    if not isinstance(X, numba_types.Array) or X.ndim != 2:
        return args
    return (X.copy(layout="C" if X.layout == "C" else "A", readonly=True),) + tuple(args[1:])


def _load_or_refuse(dispatcher, name):
    """A replacement of ``dispatcher.compile``, which Numba calls only when no compiled version matches the call:
    the compilation for ``_as_compiled``'s types, which the call's types then reach directly (Numba's own dispatch
    would compile again); inside ``cached_only()``, what ``Dispatcher.compile`` does when the on-disk cache has the
    signature, else ``NotCompiled``."""
    compile_ = dispatcher.compile
    aliased = set()

    def compile_as(signature):
        args, _ = sigutils.normalize_signature(signature)
        args = tuple(args)
        compiled = _as_compiled(args)
        if compiled == args or not hasattr(dispatcher, "_insert"):  # a Numba without it: one compilation per type
            return load_or_refuse(args)
        with global_compiler_lock:  # reentrant; one insertion per type even with several threads compiling
            entry_point = load_or_refuse(compiled)
            if args not in aliased:
                # The call's types dispatch, in Numba's C dispatcher, straight to the compiled function: its wrapper
                # reads any array of the same dtype and rank, and a read-only type only forbids writing.
                dispatcher._insert([arg._code for arg in args], entry_point,
                                   dispatcher.overloads[compiled].objectmode)
                aliased.add(args)
            return entry_point

    def load_or_refuse(signature):
        if not _cached_only.get():
            return _compile_once(dispatcher, compile_, signature)
        args, _ = sigutils.normalize_signature(signature)
        if tuple(args) in dispatcher.overloads:
            return compile_(signature)
        # No index file, no cached compilation: refused before Numba's cache lookup, whose first call in a process
        # sets up the whole compilation target (0.6 s here), so that a first call in an empty cache does not wait
        # for it either.
        index = getattr(getattr(dispatcher._cache, "_cache_file", None), "_index_path", None)
        if index is not None and not os.path.exists(index):
            raise NotCompiled(name, tuple(args))
        with global_compiler_lock:
            cres = dispatcher._cache.load_overload(signature, dispatcher.targetctx)
            if cres is None:
                raise NotCompiled(name, tuple(args))
            dispatcher._cache_hits[signature] += 1
            dispatcher.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            dispatcher.add_overload(cres)
            return cres.entry_point

    dispatcher.compile = compile_as


# How long a process waits for another one's compilation of the same kernel and signature before compiling it too.
_COMPILE_WAIT = 600


def _compile_once(dispatcher, compile_, signature):
    """``compile_(signature)``, one process at a time per kernel and signature, so that processes starting together
    (pool workers, pytest-xdist, a background compilation beside a fit with ``backend='numba'``) compile a kernel
    once: the others wait under an inter-process lock, then load it from the cache (Numba's compile looks there
    first). Without a writable cache, or after ``_COMPILE_WAIT`` seconds, each compiles for itself."""
    args, _ = sigutils.normalize_signature(signature)
    index = getattr(getattr(dispatcher._cache, "_cache_file", None), "_index_path", None)
    # The file lock is taken under Numba's compiler lock, which every compilation in this process holds (reentrant:
    # a kernel's callees lock theirs inside it), so that no two threads of a process wait on one file; callers lock
    # before callees in every process, so no two processes wait on each other.
    with global_compiler_lock, contextlib.ExitStack() as held:
        if index is not None and tuple(args) not in dispatcher.overloads:
            key = hashlib.sha256(repr(tuple(args)).encode()).hexdigest()[:16]
            try:
                held.enter_context(FileLock(f"{index}.{key}.compiling", timeout=_COMPILE_WAIT))
            except (OSError, Timeout):
                pass  # compiled here as well
        with _interrupts_after_compiling():
            return compile_(signature)


@contextlib.contextmanager
def _interrupts_after_compiling():
    """Ctrl-C (SIGINT) in the block raised as KeyboardInterrupt once the block is done, in the main thread under
    Python's default handler (elsewhere nothing changes): a KeyboardInterrupt inside Numba's compiler leaves
    half-built LLVM modules, and disposing of one segfaulted (a pytest-xdist worker died so). A compilation takes
    seconds; the interrupt then comes as the kernel is ready."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield  # another thread, or inside this block already, or the user's own handler
        return
    interrupted = []
    signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if interrupted:
        raise KeyboardInterrupt


def _lock_cache_writes(dispatcher):
    """Make the saves of ``dispatcher`` into Numba's on-disk cache one process at a time; return it.

    Numba saves a compilation by reading the function's index, naming the data file by the first free number and
    writing the index back: two processes saving two signatures of one function at once (background compilations,
    ``fastgmm warmup`` with several jobs, pool workers, pytest-xdist) both take the same number, and the index then
    sends one signature to the other's machine code, a segfault at its next load (numba issue 4807, open;
    tests/test_compile_cache.py makes two saves meet and sees an entry lost without the lock). Under an
    inter-process lock on the index, the second saver reads the first one's entry. Loads need no lock: files are
    replaced whole, and with names unique per key an entry only ever points to its own code."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    index = getattr(cache_file, "_index_path", None)
    if index is None or getattr(cache_file, "_fastgmm_locked", False):
        return dispatcher
    save = cache_file.save

    def save_locked(key, data):
        try:
            lock = FileLock(index + ".lock", timeout=60)
            lock.acquire()
        except (OSError, Timeout):
            return  # not saved: compiled again by a later process, never a wrong entry
        try:
            save(key, data)
        finally:
            lock.release()

    cache_file.save = save_locked
    cache_file._fastgmm_locked = True
    return dispatcher


_KERNELS = {}


def compile_kernel(kernel, signature):
    """Compile ``kernel`` (a ``NotCompiled.kernel``) for ``signature`` into Numba's on-disk cache, unless it is
    there already; for a process that compiles on behalf of another."""
    with cached_only():
        try:
            _KERNELS[kernel].compile(signature)
            return
        except NotCompiled:
            pass
    _KERNELS[kernel].compile(signature)


class _SerialAndParallel:
    """One kernel body compiled twice, with ``parallel=True`` and serial (``prange`` is ``range`` there), as umap's
    layouts.py does; a call picks by the amount of work. Both write the same per-block partials, so the result is
    bit-identical either way. The serial copy has a name of its own, so that the two do not share a cache entry."""

    def __init__(self, function):
        self.parallel = _register(njit(parallel=True, cache=True)(function), f"{function.__name__}.parallel")
        self.serial = _register(_compiled_copy(function, "serial", function.__globals__),
                                f"{function.__name__}.serial")

    def __call__(self, work, *args):
        return (self.parallel if work >= PARALLEL_WORK else self.serial)(*args)


def _compiled_copy(function, variant, namespace):
    """``function`` compiled with ``namespace`` as its globals, under a name and qualname of its own (suffixed
    ``_variant``): its own cache entry. A ``parallel`` variant is called through ``_with_threads_started``."""
    clone = types.FunctionType(function.__code__, namespace, f"{function.__name__}_{variant}", function.__defaults__,
                               function.__closure__)
    clone.__qualname__ = f"{function.__qualname__}_{variant}"
    return _lock_cache_writes(njit(cache=True)(clone))


def _with_threads_started(kernel):
    """``kernel``, once Numba's threading layer is started (``get_num_threads`` starts it; nothing to do once it
    is): for the ``parallel`` variants of ``_with_steps``, which call parallel kernels.

    Loading a parallel kernel from the cache starts the layer. Loading its caller does so only if the caller's
    compilation recorded that it must, which it inherits from a kernel compiled in the same process, not from one
    that process loaded from the cache. So a caller compiled in a process that had loaded its kernel from the cache
    (after another process compiled only that kernel), loaded by the next process, ran the kernel on a layer never
    started: a segfault (as in numba issue 8578; tests/test_compile_cache.py reproduces it). Compiling the callers
    through Numba's parallel pipeline records it too, but measured 0.6 ms slower per EM iteration at 1e5 x 2, K=4."""
    get_num_threads()
    return kernel


def _register(dispatcher, name):
    """A compiled function called from Python: inside ``cached_only()`` it raises ``NotCompiled`` rather than
    compile, and ``compile_kernel`` knows it by ``name``."""
    _load_or_refuse(dispatcher, name)
    _KERNELS[name] = dispatcher
    return dispatcher


def _with_steps(function, variant, **steps):
    """``function`` compiled with the global names in ``steps`` bound to the given compiled functions (the serial
    or the parallel variants of ``_SerialAndParallel`` kernels)."""
    return _compiled_copy(function, variant, dict(function.__globals__, **steps))


def _bound_to(function, variant, **steps):
    """``_with_steps`` for a function called from Python (``_register``)."""
    return _register(_with_steps(function, variant, **steps), f"{function.__name__}.{variant}")


def _one_launch_at_a_time(function):
    @functools.wraps(function)
    def serialised(*args, **kwargs):
        with _launch_lock:
            return function(*args, **kwargs)

    return serialised

# Reductions over the rows of a tile vectorise only if LLVM may reassociate the sum; 'contract' allows FMAs. NaN and
# inf semantics are kept (no 'nnan'/'ninf'): log-likelihoods may legitimately be -inf.
_REDUCE_MATH = {"reassoc", "contract"}


@njit(cache=True, inline="always")
def _load_tile(X, start, n, xt):
    """Copy rows ``start:start+n`` of X into the first n columns of the transposed float64 tile ``xt``."""
    # Four features per sweep: a loop over all D features of a row per column measured 2.9x slower at D = 4 and at
    # D = 20 (0.8-1.6 ns per entry), a cost every pass over X pays.
    n_features = X.shape[1]
    i = 0
    while i + 4 <= n_features:
        for p in range(n):
            xt[i, p] = X[start + p, i]
            xt[i + 1, p] = X[start + p, i + 1]
            xt[i + 2, p] = X[start + p, i + 2]
            xt[i + 3, p] = X[start + p, i + 3]
        i += 4
    while i < n_features:
        for p in range(n):
            xt[i, p] = X[start + p, i]
        i += 1


@njit(cache=True, fastmath={"contract"})
def _add_mahalanobis(xt, mu, n, U, kk, y, ak):
    """``ak[p] += |U_kk^T (x_p - mu)|^2`` for the first n columns of the tile ``xt``, through the upper triangle of
    ``U_kk``; ``y`` is (4, TILE) scratch.

    Four columns of ``U^T (x - mu)`` per sweep over the points, four rows of ``xt`` at a time: sixteen FMAs per point
    for four loads of ``xt`` and four loads and stores of ``y``, where one column per sweep made 1.5 memory
    operations per FMA and waited on the load ports (measured on an AMD Zen 4, one core, K = 8: the log-probabilities
    of 1e5 rows 39 -> 27 ms at D = 32, 285 -> 178 ms at D = 64 with K = 16). Entries below the diagonal are never
    read: each group of four columns starts with the ten products of its diagonal block, where a 4 x 4 block with
    zeros made sixteen (Zen 4, one core, K = 8, 1e5 rows: 23.3 -> 20.3 ms at D = 32). The rows are centred as they
    are loaded, beside the FMAs, not stored centred beforehand: that sweep cost as much as a fifth of the product
    (Zen 4, one core, K = 8, 1e5 rows: 23.8 -> 20.7 ms at D = 32, 17.0 -> 13.0 ms at D = 16, the same bits). (The
    loop over points keeps the sums in memory: LLVM vectorises only the innermost loop. The C kernels keep them in
    registers, ``_tile_math.h``.)"""
    n_features = U.shape[1]
    j0 = 0
    while j0 + 4 <= n_features:
        # The diagonal block first: its ten products start the sums.
        u00, u01, u02, u03 = U[kk, j0, j0], U[kk, j0, j0 + 1], U[kk, j0, j0 + 2], U[kk, j0, j0 + 3]
        u11, u12, u13 = U[kk, j0 + 1, j0 + 1], U[kk, j0 + 1, j0 + 2], U[kk, j0 + 1, j0 + 3]
        u22, u23, u33 = U[kk, j0 + 2, j0 + 2], U[kk, j0 + 2, j0 + 3], U[kk, j0 + 3, j0 + 3]
        m0, m1, m2, m3 = mu[j0], mu[j0 + 1], mu[j0 + 2], mu[j0 + 3]
        for p in range(n):
            d0, d1, d2, d3 = xt[j0, p] - m0, xt[j0 + 1, p] - m1, xt[j0 + 2, p] - m2, xt[j0 + 3, p] - m3
            y[0, p] = u00 * d0
            y[1, p] = u01 * d0 + u11 * d1
            y[2, p] = u02 * d0 + u12 * d1 + u22 * d2
            y[3, p] = u03 * d0 + u13 * d1 + u23 * d2 + u33 * d3
        for i in range(0, j0, 4):
            # Row i + r, column j0 + c.
            u00, u01, u02, u03 = U[kk, i, j0], U[kk, i, j0 + 1], U[kk, i, j0 + 2], U[kk, i, j0 + 3]
            u10, u11, u12, u13 = U[kk, i + 1, j0], U[kk, i + 1, j0 + 1], U[kk, i + 1, j0 + 2], U[kk, i + 1, j0 + 3]
            u20, u21, u22, u23 = U[kk, i + 2, j0], U[kk, i + 2, j0 + 1], U[kk, i + 2, j0 + 2], U[kk, i + 2, j0 + 3]
            u30, u31, u32, u33 = U[kk, i + 3, j0], U[kk, i + 3, j0 + 1], U[kk, i + 3, j0 + 2], U[kk, i + 3, j0 + 3]
            m0, m1, m2, m3 = mu[i], mu[i + 1], mu[i + 2], mu[i + 3]
            for p in range(n):
                d0, d1, d2, d3 = xt[i, p] - m0, xt[i + 1, p] - m1, xt[i + 2, p] - m2, xt[i + 3, p] - m3
                y[0, p] += u00 * d0 + u10 * d1 + u20 * d2 + u30 * d3
                y[1, p] += u01 * d0 + u11 * d1 + u21 * d2 + u31 * d3
                y[2, p] += u02 * d0 + u12 * d1 + u22 * d2 + u32 * d3
                y[3, p] += u03 * d0 + u13 * d1 + u23 * d2 + u33 * d3
        for p in range(n):
            ak[p] += (y[0, p] * y[0, p] + y[1, p] * y[1, p]) + (y[2, p] * y[2, p] + y[3, p] * y[3, p])
        j0 += 4
    # The last D % 4 columns one at a time.
    for j in range(j0, n_features):
        for p in range(n):
            y[0, p] = 0.0
        i = 0
        while i + 4 <= j + 1:
            u0, u1, u2, u3 = U[kk, i, j], U[kk, i + 1, j], U[kk, i + 2, j], U[kk, i + 3, j]
            m0, m1, m2, m3 = mu[i], mu[i + 1], mu[i + 2], mu[i + 3]
            for p in range(n):
                y[0, p] += (u0 * (xt[i, p] - m0) + u1 * (xt[i + 1, p] - m1) + u2 * (xt[i + 2, p] - m2)
                            + u3 * (xt[i + 3, p] - m3))
            i += 4
        while i <= j:
            u0, m0 = U[kk, i, j], mu[i]
            for p in range(n):
                y[0, p] += u0 * (xt[i, p] - m0)
            i += 1
        for p in range(n):
            ak[p] += y[0, p] * y[0, p]


@njit(cache=True, fastmath={"contract"})
def _log_prob_tile(xt, n, cov, means, U, log_const, y, a):
    """``a[k, p] = log_const_k - |U_k^T (x_p - mu_k)|^2 / 2`` for the first n columns of the tile; ``y`` is (4,
    TILE) scratch."""
    n_components, n_features = means.shape
    for k in range(n_components):
        for p in range(n):
            a[k, p] = 0.0
        if cov == FULL or cov == TIED:
            _add_mahalanobis(xt, means[k], n, U, 0 if cov == TIED else k, y, a[k])
        else:
            for i in range(n_features):
                u = U[k, i, 0] if cov == DIAG else U[k, 0, 0]
                m = means[k, i]
                for p in range(n):
                    t = u * (xt[i, p] - m)
                    a[k, p] += t * t
        c = log_const[k]
        for p in range(n):
            a[k, p] = c - 0.5 * a[k, p]


# LOG_NEGLIGIBLE (``_constants``): why a share below 2^-100 of a point's best one is dropped exactly.


# Up to this many features the kernels are compiled for the exact D: the loops over features unroll, the loop over
# the points of a tile becomes the innermost one and vectorises, and the running sums stay in registers. D reaches
# the compiler as the length of a tuple ``(0,) * D``, a type (a literal int would become a plain int64 inside the
# outlined body of a prange loop). The triangular product of full and tied runs out of registers sooner: measured by
# ``benchmarks/kernel_paths.py`` (K=8), the compiled-for-D tile is 1.7x faster than the generic one up to D=12
# and 2x slower at D=14 and 16; for diag the whole statistics pass at D=16, K=16 is still 1.3x faster compiled-for-D.
# The same script measured the large-D alternative, BLAS per tile, and found no D where it gains beyond the noise.
_MAX_STATIC_FEATURES = {FULL: MAX_STATIC_TRIANGLE, TIED: MAX_STATIC_TRIANGLE, DIAG: MAX_STATIC_DIAGONAL,
                        SPHERICAL: MAX_STATIC_DIAGONAL}


@njit(cache=True, fastmath={"contract"})
def _log_prob_tile_static(xt, n, cov, means, U, log_const, a, features):
    """``_log_prob_tile`` for a compile-time number of features, ``len(features)``: point-major, no buffers."""
    D = len(features)
    n_components = means.shape[0]
    for k in range(n_components):
        kk = 0 if cov == TIED else k
        c = log_const[k]
        if cov == FULL or cov == TIED:
            for p in range(n):
                acc = 0.0
                for j in range(D):
                    s = 0.0
                    for i in range(j + 1):
                        s += U[kk, i, j] * (xt[i, p] - means[k, i])
                    acc += s * s
                a[k, p] = c - 0.5 * acc
        elif cov == DIAG:
            for p in range(n):
                acc = 0.0
                for i in range(D):
                    t = U[k, i, 0] * (xt[i, p] - means[k, i])
                    acc += t * t
                a[k, p] = c - 0.5 * acc
        else:
            u2 = U[k, 0, 0] * U[k, 0, 0]
            for p in range(n):
                acc = 0.0
                for i in range(D):
                    t = xt[i, p] - means[k, i]
                    acc += t * t
                a[k, p] = c - 0.5 * u2 * acc


@njit(cache=True)
def _gram_buffer(rows, columns, n_features):
    """A ``(rows, _layouts.gram_rows(D), columns)`` buffer for ``_gram_upper``, zero after row D."""
    buffer = np.empty((rows, (n_features + 3) // 4 * 4, columns))
    buffer[:, n_features:, :] = 0.0
    return buffer


@njit(cache=True, fastmath=_REDUCE_MATH)
def _gram_upper(d, shift, rw, m, n_features, rd, gram, s1k):
    """With ``e = d - shift`` (the columns centred) and ``rd = rw e`` (weighted): ``gram[i, j] = sum_q rd[i, q] e[j,
    q]`` over the first m columns for ``i <= j``, and ``s1k[i] += sum_q rd[i, q]`` for i < D. ``d`` and ``rd`` have
    ``_layouts.gram_rows(D)`` rows and ``shift`` as many entries, all zero after row D; ``rd`` is scratch; entries of
    ``gram`` below the diagonal are left as they were.

    Per group of four rows, one sweep over the columns for the 10 products of the diagonal 4 x 4 block, which also
    weights the group's rows into ``rd`` and sums them (where a sweep of its own did that for every row first: Zen 4,
    one core, 1e5 rows, K = 8, D = 32, the moments 23.0 -> 20.2 ms), then blocks of 2 x 4 entries right of it that read
    them. Each sweep keeps eight or ten independent sums (enough to hide the FMA latency; one
    sum per sweep ran at a quarter of the FMA rate). Covering the diagonal with 2 x 4 blocks too made 16 products
    where 10 count, 576 FMAs per column at D = 32 where these sweeps make 528 (Zen 4, one core, 1e5 rows, K = 8:
    20.2 -> 18.8 ms at D = 32, 10.4 -> 9.0 ms at D = 16 with K = 16, the same bits). The sums go to ``gram``, not
    straight into the partials: adding each where it belongs, between the sweeps, made the product 2.5x slower. The
    columns are centred here, not stored centred beforehand: the subtractions run beside the FMAs, where storing the
    centred columns was half of the stores of the sweep before the product, which the stores bounded (measured on an
    AMD Zen 4 at D = 8, K = 16, the dense tile's moments: 1.18 -> 1.01 us per component, medians of 4 interleaved
    runs)."""
    for i0 in range(0, n_features, 4):
        c0, c1, c2, c3 = shift[i0], shift[i0 + 1], shift[i0 + 2], shift[i0 + 3]
        t00 = t01 = t02 = t03 = t11 = t12 = t13 = t22 = t23 = t33 = 0.0
        f0 = f1 = f2 = f3 = 0.0
        for q in range(m):
            c = rw[q]
            b0, b1, b2, b3 = d[i0, q] - c0, d[i0 + 1, q] - c1, d[i0 + 2, q] - c2, d[i0 + 3, q] - c3
            a0, a1, a2, a3 = c * b0, c * b1, c * b2, c * b3
            rd[i0, q], rd[i0 + 1, q], rd[i0 + 2, q], rd[i0 + 3, q] = a0, a1, a2, a3
            f0 += a0
            f1 += a1
            f2 += a2
            f3 += a3
            t00 += a0 * b0
            t01 += a0 * b1
            t02 += a0 * b2
            t03 += a0 * b3
            t11 += a1 * b1
            t12 += a1 * b2
            t13 += a1 * b3
            t22 += a2 * b2
            t23 += a2 * b3
            t33 += a3 * b3
        gram[i0, i0], gram[i0, i0 + 1], gram[i0, i0 + 2], gram[i0, i0 + 3] = t00, t01, t02, t03
        gram[i0 + 1, i0 + 1], gram[i0 + 1, i0 + 2], gram[i0 + 1, i0 + 3] = t11, t12, t13
        gram[i0 + 2, i0 + 2], gram[i0 + 2, i0 + 3], gram[i0 + 3, i0 + 3] = t22, t23, t33
        s1k[i0] += f0
        if i0 + 1 < n_features:
            s1k[i0 + 1] += f1
        if i0 + 2 < n_features:
            s1k[i0 + 2] += f2
        if i0 + 3 < n_features:
            s1k[i0 + 3] += f3
        for i in range(i0, i0 + 4, 2):
            for j in range(i0 + 4, n_features, 4):
                t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = 0.0
                c0, c1, c2, c3 = shift[j], shift[j + 1], shift[j + 2], shift[j + 3]
                for q in range(m):
                    a0, a1 = rd[i, q], rd[i + 1, q]
                    b0, b1, b2, b3 = d[j, q] - c0, d[j + 1, q] - c1, d[j + 2, q] - c2, d[j + 3, q] - c3
                    t00 += a0 * b0
                    t01 += a0 * b1
                    t02 += a0 * b2
                    t03 += a0 * b3
                    t10 += a1 * b0
                    t11 += a1 * b1
                    t12 += a1 * b2
                    t13 += a1 * b3
                gram[i, j], gram[i, j + 1], gram[i, j + 2], gram[i, j + 3] = t00, t01, t02, t03
                gram[i + 1, j], gram[i + 1, j + 1], gram[i + 1, j + 2], gram[i + 1, j + 3] = t10, t11, t12, t13


@njit(cache=True)
def _add_upper(gram, n_features, kk, s2):
    for i in range(n_features):
        for j in range(i, n_features):
            s2[kk, i, j] += gram[i, j]


@njit(cache=True, fastmath=_REDUCE_MATH, inline="always")
def _four_rows(d, r, shift, rw, m):
    """The register sums of rows r to r + 3 of ``m`` weighted columns ``d`` centred on ``shift[r:r + 4]``: the total
    weight, the four first moments and the ten products of the upper triangle (row by row), as a tuple."""
    m0, m1, m2, m3 = shift[r], shift[r + 1], shift[r + 2], shift[r + 3]
    c_ = f0 = f1 = f2 = f3 = 0.0
    g00 = g01 = g02 = g03 = g11 = g12 = g13 = g22 = g23 = g33 = 0.0
    for p in range(m):
        c = rw[p]
        d0, d1, d2, d3 = d[r, p] - m0, d[r + 1, p] - m1, d[r + 2, p] - m2, d[r + 3, p] - m3
        u0, u1, u2, u3 = c * d0, c * d1, c * d2, c * d3
        c_ += c
        f0 += u0
        f1 += u1
        f2 += u2
        f3 += u3
        g00 += u0 * d0
        g01 += u0 * d1
        g02 += u0 * d2
        g03 += u0 * d3
        g11 += u1 * d1
        g12 += u1 * d2
        g13 += u1 * d3
        g22 += u2 * d2
        g23 += u2 * d3
        g33 += u3 * d3
    return c_, f0, f1, f2, f3, g00, g01, g02, g03, g11, g12, g13, g22, g23, g33


@njit(cache=True, fastmath=_REDUCE_MATH)
def _moments_eight(d, shift, rw, m, k, kk, gram, partials):
    """``_moments_dense`` for ``_layouts.gram_rows(D) == 8`` (5 <= D <= 8): the 36 products of the upper triangle,
    S1 and N_k summed in registers in three sweeps over the columns (rows 0-1 against 0-7, rows 2-3 against 2-7, rows
    4-7 against 4-7), each column centred as it is loaded; ``gram`` receives the triangle for ``_add_upper``.

    The Gram blocks of ``_gram_upper`` make 48 FMAs per column of which 36 count, and need the weighted columns
    stored by a sweep of their own (53 loads and 8 stores per column in all); these sweeps load 21 values per column
    and store nothing.
    """
    nk, s1, s2 = partials
    n_features = s1.shape[1]
    c0, c1, c2, c3, c4, c5, c6, c7 = shift[0], shift[1], shift[2], shift[3], shift[4], shift[5], shift[6], shift[7]
    t = f0 = f1 = 0.0
    g00 = g01 = g02 = g03 = g04 = g05 = g06 = g07 = 0.0
    g11 = g12 = g13 = g14 = g15 = g16 = g17 = 0.0
    for q in range(m):
        c = rw[q]
        e0, e1, e2, e3 = d[0, q] - c0, d[1, q] - c1, d[2, q] - c2, d[3, q] - c3
        e4, e5, e6, e7 = d[4, q] - c4, d[5, q] - c5, d[6, q] - c6, d[7, q] - c7
        u0, u1 = c * e0, c * e1
        t += c
        f0 += u0
        f1 += u1
        g00 += u0 * e0
        g01 += u0 * e1
        g02 += u0 * e2
        g03 += u0 * e3
        g04 += u0 * e4
        g05 += u0 * e5
        g06 += u0 * e6
        g07 += u0 * e7
        g11 += u1 * e1
        g12 += u1 * e2
        g13 += u1 * e3
        g14 += u1 * e4
        g15 += u1 * e5
        g16 += u1 * e6
        g17 += u1 * e7
    gram[0, 0], gram[0, 1], gram[0, 2], gram[0, 3], gram[0, 4], gram[0, 5], gram[0, 6], gram[0, 7] = (
        g00, g01, g02, g03, g04, g05, g06, g07)
    gram[1, 1], gram[1, 2], gram[1, 3], gram[1, 4], gram[1, 5], gram[1, 6], gram[1, 7] = (
        g11, g12, g13, g14, g15, g16, g17)
    f2 = f3 = 0.0
    g22 = g23 = g24 = g25 = g26 = g27 = 0.0
    g33 = g34 = g35 = g36 = g37 = 0.0
    for q in range(m):
        c = rw[q]
        e2, e3 = d[2, q] - c2, d[3, q] - c3
        e4, e5, e6, e7 = d[4, q] - c4, d[5, q] - c5, d[6, q] - c6, d[7, q] - c7
        u2, u3 = c * e2, c * e3
        f2 += u2
        f3 += u3
        g22 += u2 * e2
        g23 += u2 * e3
        g24 += u2 * e4
        g25 += u2 * e5
        g26 += u2 * e6
        g27 += u2 * e7
        g33 += u3 * e3
        g34 += u3 * e4
        g35 += u3 * e5
        g36 += u3 * e6
        g37 += u3 * e7
    gram[2, 2], gram[2, 3], gram[2, 4], gram[2, 5], gram[2, 6], gram[2, 7] = g22, g23, g24, g25, g26, g27
    gram[3, 3], gram[3, 4], gram[3, 5], gram[3, 6], gram[3, 7] = g33, g34, g35, g36, g37
    _, f4, f5, f6, f7, g44, g45, g46, g47, g55, g56, g57, g66, g67, g77 = _four_rows(d, 4, shift, rw, m)
    gram[4, 4], gram[4, 5], gram[4, 6], gram[4, 7] = g44, g45, g46, g47
    gram[5, 5], gram[5, 6], gram[5, 7] = g55, g56, g57
    gram[6, 6], gram[6, 7] = g66, g67
    gram[7, 7] = g77
    nk[k] += t
    s1[k, 0] += f0
    s1[k, 1] += f1
    s1[k, 2] += f2
    s1[k, 3] += f3
    s1[k, 4] += f4
    if n_features > 5:
        s1[k, 5] += f5
    if n_features > 6:
        s1[k, 6] += f6
    if n_features > 7:
        s1[k, 7] += f7
    _add_upper(gram, n_features, kk, s2)


@njit(cache=True, fastmath=_REDUCE_MATH)
def _moments_dense(d, shift, rw, m, cov, k, rd, gram, partials):
    """Add the full/tied moments of ``m`` columns ``d`` (``_layouts.gram_rows(D)`` rows, >= m columns, zero after
    row D; see ``_gram_buffer``) about ``shift`` (component k's mean, as many entries, zero after D) with weights
    ``rw`` to component k's partials; ``rd`` is scratch of d's shape, zero after row D, ``gram`` (gram_rows(D),
    gram_rows(D)) scratch. ``partials`` is ``(nk, s1, s2)``. With eight padded rows (5 <= D <= 8) all of it is
    ``_moments_eight``'s register sums; otherwise S1 and S2's upper triangle are ``_gram_upper``'s."""
    nk, s1, s2 = partials
    n_features = s1.shape[1]
    if d.shape[0] == 8:
        _moments_eight(d, shift, rw, m, k, 0 if cov == TIED else k, gram, partials)
        return
    total = 0.0
    for q in range(m):
        total += rw[q]
    nk[k] += total
    _gram_upper(d, shift, rw, m, n_features, rd, gram, s1[k])
    _add_upper(gram, n_features, 0 if cov == TIED else k, s2)


@njit(cache=True, fastmath=_REDUCE_MATH)
def _moments_gathered(xt, order, order_w, bounds, means, partials):
    """Diagonal moments straight from the tile's rows grouped by component (``_stage_tile``): with 3 D operations
    per row there is nothing for staging to amortise."""
    nk, s1, s2 = partials
    n_components, n_features = means.shape
    for k in range(n_components):
        first, last = bounds[k], bounds[k + 1]
        if first == last:
            continue
        total = 0.0
        for q in range(first, last):
            total += order_w[q]
        nk[k] += total
        for i in range(n_features):
            mu = means[k, i]
            t1 = 0.0
            t2 = 0.0
            for q in range(first, last):
                d = xt[i, order[q]] - mu
                v = order_w[q] * d
                t1 += v
                t2 += v * d
            s1[k, i] += t1
            s2[k, i, 0] += t2


@njit(cache=True)
def _stage_tile(xt, n, wt, resp, n_pairs, cov, means, staging, partials):
    """Stage every (row, component) pair of the tile with a non-negligible responsibility, each row's best component
    (responsibility ``1 / total``) and the other pairs (see ``_responsibilities_tile``), in the component's staging
    columns (centred on the component's mean, ``staging``'s ``shift``, by ``_gram_upper``); a full stage is first
    reduced into the block's partials.

    With well-separated components a tile holds only a few rows per component: staging keeps the reductions running
    over long, vectorisable columns all the same. The pairs are grouped by component with a counting sort (``order``,
    ``order_w``, ``bounds``) so that each component's rows are copied in one sweep of contiguous stores; a store per
    row and feature scattered over the whole stage measured 3x slower.
    """
    _, best, _, n_kept, total, pair_p, pair_k, _, pair_r, _ = resp
    order, order_w, bounds, stage_d, stage_w, count, rd, gram, shift = staging
    n_components, n_features = means.shape
    capacity = stage_w.shape[1]
    # From here on ``wt`` is the weight over the responsibility sum: w_p / total_p (NaN where total is).
    for p in range(n):
        wt[p] = wt[p] / total[p]
    for k in range(n_components + 1):
        bounds[k] = 0
    for p in range(n):
        if n_kept[p] > 0 and wt[p] > 0.0:
            bounds[best[p] + 1] += 1
    for q in range(n_pairs):
        if wt[pair_p[q]] > 0.0:
            bounds[pair_k[q] + 1] += 1
    for k in range(n_components):
        bounds[k + 1] += bounds[k]
    # Fill each component's run, advancing its start; then shift the starts back.
    for p in range(n):
        if n_kept[p] > 0 and wt[p] > 0.0:
            k = best[p]
            order[bounds[k]] = p
            order_w[bounds[k]] = wt[p]
            bounds[k] += 1
    for q in range(n_pairs):
        p = pair_p[q]
        if wt[p] > 0.0:
            k = pair_k[q]
            order[bounds[k]] = p
            order_w[bounds[k]] = pair_r[q] * wt[p]
            bounds[k] += 1
    for k in range(n_components, 0, -1):
        bounds[k] = bounds[k - 1]
    bounds[0] = 0
    if cov == DIAG or cov == SPHERICAL:
        _moments_gathered(xt, order, order_w, bounds, means, partials)
        return
    direct = stage_w.shape[0] < n_components
    for k in range(n_components):
        first = bounds[k]
        m = bounds[k + 1] - first
        if m == 0:
            continue
        # Direct: one shared stage, reduced at once (the stages of all components would not fit, see
        # ``staged_components``).
        s = 0 if direct else k
        if not direct and count[k] + m > capacity:
            _moments_dense(stage_d[k], shift[k], stage_w[k], count[k], cov, k, rd, gram, partials)
            count[k] = 0
        c = 0 if direct else count[k]
        for i in range(n_features):
            for q in range(m):
                stage_d[s, i, c + q] = xt[i, order[first + q]]
        for q in range(m):
            stage_w[s, c + q] = order_w[first + q]
        if direct:
            _moments_dense(stage_d[0], shift[k], stage_w[0], m, cov, k, rd, gram, partials)
        else:
            count[k] = c + m


@njit(cache=True)
def _flush_stages(cov, staging, partials):
    _, _, _, stage_d, stage_w, count, rd, gram, shift = staging
    for k in range(count.shape[0]):
        if count[k] > 0:
            _moments_dense(stage_d[k], shift[k], stage_w[k], count[k], cov, k, rd, gram, partials)
            count[k] = 0


# MAX_SMALL_FEATURES (``_constants``): up to it, full and tied moments of a dense tile are register sums.


@njit(cache=True, fastmath=_REDUCE_MATH)
def _moments_small(xt, n, rw, means, k, kk, partials, features):
    """Full/tied moments of component k over a tile's columns with weights ``rw``, for ``len(features)`` <=
    ``MAX_SMALL_FEATURES`` (a compile-time constant: the other branches are compiled away)."""
    nk, s1, s2 = partials
    D = len(features)
    if D == 1:
        m0 = means[k, 0]
        c_ = f0 = g00 = 0.0
        for p in range(n):
            c = rw[p]
            d0 = xt[0, p] - m0
            u0 = c * d0
            c_ += c
            f0 += u0
            g00 += u0 * d0
        nk[k] += c_
        s1[k, 0] += f0
        s2[kk, 0, 0] += g00
    elif D == 2:
        m0, m1 = means[k, 0], means[k, 1]
        c_ = f0 = f1 = g00 = g01 = g11 = 0.0
        for p in range(n):
            c = rw[p]
            d0, d1 = xt[0, p] - m0, xt[1, p] - m1
            u0, u1 = c * d0, c * d1
            c_ += c
            f0 += u0
            f1 += u1
            g00 += u0 * d0
            g01 += u0 * d1
            g11 += u1 * d1
        nk[k] += c_
        s1[k, 0] += f0
        s1[k, 1] += f1
        s2[kk, 0, 0] += g00
        s2[kk, 0, 1] += g01
        s2[kk, 1, 1] += g11
    elif D == 3:
        m0, m1, m2 = means[k, 0], means[k, 1], means[k, 2]
        c_ = f0 = f1 = f2 = g00 = g01 = g02 = g11 = g12 = g22 = 0.0
        for p in range(n):
            c = rw[p]
            d0, d1, d2 = xt[0, p] - m0, xt[1, p] - m1, xt[2, p] - m2
            u0, u1, u2 = c * d0, c * d1, c * d2
            c_ += c
            f0 += u0
            f1 += u1
            f2 += u2
            g00 += u0 * d0
            g01 += u0 * d1
            g02 += u0 * d2
            g11 += u1 * d1
            g12 += u1 * d2
            g22 += u2 * d2
        nk[k] += c_
        s1[k, 0] += f0
        s1[k, 1] += f1
        s1[k, 2] += f2
        s2[kk, 0, 0] += g00
        s2[kk, 0, 1] += g01
        s2[kk, 0, 2] += g02
        s2[kk, 1, 1] += g11
        s2[kk, 1, 2] += g12
        s2[kk, 2, 2] += g22
    elif D == 4:
        c_, f0, f1, f2, f3, g00, g01, g02, g03, g11, g12, g13, g22, g23, g33 = _four_rows(xt, 0, means[k], rw, n)
        nk[k] += c_
        s1[k, 0] += f0
        s1[k, 1] += f1
        s1[k, 2] += f2
        s1[k, 3] += f3
        s2[kk, 0, 0] += g00
        s2[kk, 0, 1] += g01
        s2[kk, 0, 2] += g02
        s2[kk, 0, 3] += g03
        s2[kk, 1, 1] += g11
        s2[kk, 1, 2] += g12
        s2[kk, 1, 3] += g13
        s2[kk, 2, 2] += g22
        s2[kk, 2, 3] += g23
        s2[kk, 3, 3] += g33


@njit(cache=True, fastmath=_REDUCE_MATH)
def _moments_tile(xt, n, r, wt, total, cov, means, scratch, partials, features):
    """Add the moments of the whole tile, every component, to the block's partials ``(nk, s1, s2)``, from the dense
    responsibilities ``r`` (``_responsibilities_dense``): the rows are already contiguous columns of ``xt``, so
    there is nothing to stage (``xt`` has ``_layouts.gram_rows(D)`` rows, zero after row D). ``scratch`` is ``(rw,
    shift, rd, gram)``: a row of weights and ``_moments_dense``'s arguments (``shift`` the means, zero after column
    D); ``features`` as for ``_accumulate``. A row of weight zero or without a live component (total NaN) adds
    nothing."""
    rw, shift, rd, gram = scratch
    nk, s1, s2 = partials
    n_components, n_features = means.shape
    for p in range(n):
        wt[p] = wt[p] / total[p]
    for k in range(n_components):
        for p in range(n):
            c = r[k * n + p] * wt[p]
            rw[p] = c if wt[p] > 0.0 else 0.0
        if (cov == FULL or cov == TIED) and 0 < len(features) <= MAX_SMALL_FEATURES:
            _moments_small(xt, n, rw, means, k, 0 if cov == TIED else k, partials, features)
            continue
        if (cov == FULL or cov == TIED) and xt.shape[0] == 8:
            # Straight to the register sums, not through _moments_dense: that call layer cost a tenth of the
            # dense moments at D = 8, K = 16 (Zen 4, one core, 1e5 rows: 4.10 -> 3.67 ms, the same bits).
            _moments_eight(xt, shift[k], rw, n, k, 0 if cov == TIED else k, gram, partials)
            continue
        if cov == FULL or cov == TIED:
            _moments_dense(xt, shift[k], rw, n, cov, k, rd, gram, partials)
            continue
        total_k = 0.0
        for p in range(n):
            total_k += rw[p]
        nk[k] += total_k
        # Diagonal moments four features per sweep: eight independent sums.
        i = 0
        while i + 4 <= n_features:
            m0, m1, m2, m3 = means[k, i], means[k, i + 1], means[k, i + 2], means[k, i + 3]
            f0 = f1 = f2 = f3 = g0 = g1 = g2 = g3 = 0.0
            for p in range(n):
                c = rw[p]
                d0, d1, d2, d3 = xt[i, p] - m0, xt[i + 1, p] - m1, xt[i + 2, p] - m2, xt[i + 3, p] - m3
                u0, u1, u2, u3 = c * d0, c * d1, c * d2, c * d3
                f0 += u0
                f1 += u1
                f2 += u2
                f3 += u3
                g0 += u0 * d0
                g1 += u1 * d1
                g2 += u2 * d2
                g3 += u3 * d3
            s1[k, i] += f0
            s1[k, i + 1] += f1
            s1[k, i + 2] += f2
            s1[k, i + 3] += f3
            s2[k, i, 0] += g0
            s2[k, i + 1, 0] += g1
            s2[k, i + 2, 0] += g2
            s2[k, i + 3, 0] += g3
            i += 4
        while i < n_features:
            mu = means[k, i]
            f0 = g0 = 0.0
            for p in range(n):
                d0 = xt[i, p] - mu
                u0 = rw[p] * d0
                f0 += u0
                g0 += u0 * d0
            s1[k, i] += f0
            s2[k, i, 0] += g0
            i += 1


# exp(x) for x <= 0 as exp(r) 2^m, m = round(x / ln 2), |r| <= ln(2)/2, exp(r) by its degree-13 Taylor polynomial
# (truncation error < 1e-17 relative). Written so that LLVM vectorises it over the rows of a tile: numba's scalar
# math.exp does not vectorise and costs ~7x more. 2^m is built from the bits of the double x / ln 2 + 1.5 * 2^52,
# whose low mantissa bits hold m (AVX2 has no double-to-int64 vector conversion). Below -708 the result is 0: exact
# to the last bit for the responsibilities, whose largest term is 1.
# Its constants (LOG2E, LN2_HI, LN2_LO, EXP_SHIFTER = 1.5 * 2^52, EXP_MIN) are in ``_constants``.


@njit(cache=True, fastmath={"contract"}, inline="always")
def _exp_parts(v):
    """For ``EXP_MIN <= v <= 0``: ``(t, q)`` with ``exp(v) = q 2^m``, where the low bits of the double ``t`` hold m
    (``_exp_nonpositive`` turns them into 2^m)."""
    t = v * LOG2E + EXP_SHIFTER
    m = t - EXP_SHIFTER
    r = (v - m * LN2_HI) - m * LN2_LO
    # Estrin's scheme: the same polynomial in four dependent steps instead of Horner's thirteen, so that the loop
    # runs at the FMA rate rather than at its latency.
    r2 = r * r
    r4 = r2 * r2
    q0 = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6.0))
    q1 = (1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0))
    q2 = (1.0 / 40320.0 + r * (1.0 / 362880.0)) + r2 * (1.0 / 3628800.0 + r * (1.0 / 39916800.0))
    q3 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    return t, (q0 + r4 * q1) + (r4 * r4) * (q2 + r4 * q3)


@njit(cache=True, fastmath={"contract"})
def _exp_nonpositive(x, out, n, shifted):
    """``out[p] = exp(x[p])`` for the first n entries of x (all <= 0 or -inf); ``shifted`` is float64 scratch,
    distinct from x and out (aliasing would both corrupt the underflow test and stop the loops vectorising)."""
    bits = shifted.view(np.int64)
    for p in range(n):
        v = x[p]
        t, q = _exp_parts(v if v > EXP_MIN else EXP_MIN)
        shifted[p] = t
        out[p] = q if v > EXP_MIN else 0.0
    for p in range(n):
        bits[p] = (bits[p] + 1023) << 52
    for p in range(n):
        out[p] *= shifted[p]


@njit(cache=True)
def _live_components(a, n, resp):
    """Per point of a tile's weighted log-probabilities ``a`` (K, T), into ``resp``: ``top`` the largest, ``best`` its
    component,
    ``floor`` = top + ``LOG_NEGLIGIBLE``, ``n_kept`` how many components lie above the floor (0 when no component
    can explain the point: all -inf). Returns the tile's sum of ``n_kept``. The scans vectorise."""
    top, best, floor, n_kept = resp[0], resp[1], resp[2], resp[3]
    n_components = a.shape[0]
    for p in range(n):
        top[p] = a[0, p]
        best[p] = 0
    for k in range(1, n_components):
        for p in range(n):
            # Unconditional stores: the loop vectorises.
            v, t, j = a[k, p], top[p], best[p]
            top[p] = v if v > t else t
            best[p] = k if v > t else j
    for p in range(n):
        floor[p] = top[p] + LOG_NEGLIGIBLE
        n_kept[p] = 0
    for k in range(n_components):
        for p in range(n):
            n_kept[p] += a[k, p] > floor[p]
    live = 0
    for p in range(n):
        live += n_kept[p]
    return live


@njit(cache=True)
def _responsibilities_sparse(a, n, resp):
    """The responsibilities of a tile, sparse, after ``_live_components``: each point's best component has the
    unnormalised responsibility exp(0) = 1; the other non-negligible components come as pairs: rows ``pair_p``,
    components ``pair_k``, unnormalised responsibilities ``pair_r = exp(a - top)``. ``total`` is the sum of a point's
    unnormalised responsibilities (NaN when n_kept is 0, as in the reference): the responsibility is ``r / total``
    and the point's log-likelihood ``top + log(total)``. Returns the number of pairs; exp runs over them alone."""
    top, best, floor, n_kept, total, pair_p, pair_k, pair_v, pair_r, shifted = resp
    n_components = a.shape[0]
    n_pairs = 0
    for p in range(n):
        if n_kept[p] > 1:
            for k in range(n_components):
                if a[k, p] > floor[p] and k != best[p]:
                    pair_p[n_pairs] = p
                    pair_k[n_pairs] = k
                    pair_v[n_pairs] = a[k, p] - top[p]
                    n_pairs += 1
    _exp_nonpositive(pair_v, pair_r, n_pairs, shifted)
    for p in range(n):
        total[p] = 1.0 if n_kept[p] > 0 else np.nan
    for q in range(n_pairs):
        total[pair_p[q]] += pair_r[q]
    return n_pairs


@njit(cache=True, fastmath={"contract"})
def _responsibilities_dense(a, n, resp):
    """The responsibilities of a tile, dense, after ``_live_components``: ``r[k * n + p] = exp(a[k, p] - top[p])``
    in ``resp``'s ``pair_r``, zero where the component is negligible (as the sparse path leaves it out), and
    ``total`` as there. One exp sweep over all K n entries instead of the gather of pairs, when most of them are
    live: ``_exp_nonpositive``'s, with the differences formed as they are loaded and the totals summed as 2^m is
    applied (no sweeps of their own; Zen 4, one core, K = 16: 2.1 -> 1.9 ms per 1e5 rows, the same bits)."""
    top, _, floor, n_kept, total, _, _, _, r, shifted = resp
    n_components = a.shape[0]
    bits = shifted.view(np.int64)
    for k in range(n_components):
        for p in range(n):
            x = a[k, p]
            live = x > floor[p]
            # A live difference is above LOG_NEGLIGIBLE, far above EXP_MIN: no clamp.
            t, q = _exp_parts(x - top[p] if live else EXP_MIN)
            shifted[k * n + p] = t
            r[k * n + p] = q if live else 0.0
    for j in range(n_components * n):
        bits[j] = (bits[j] + 1023) << 52
    for p in range(n):
        total[p] = 0.0
    for k in range(n_components):
        for p in range(n):
            u = r[k * n + p] * shifted[k * n + p]
            r[k * n + p] = u
            total[p] += u
    for p in range(n):
        total[p] = total[p] if n_kept[p] > 0 else np.nan


# LOG_CHUNK (``_constants``): factors per product of likelihood sums, each in [1, K].


@njit(cache=True, fastmath=_REDUCE_MATH)
def _add_log_likelihood(top, total, n, w, start, weighted, wt, ll_tw):
    """Add ``sum_p w_p (top_p + log total_p)`` and ``sum_p w_p`` to ``ll_tw[0]`` and ``ll_tw[1]``; fill the tile's
    weights ``wt``. Without weights one log serves ``LOG_CHUNK`` points (a scalar log costs as much as the
    vectorised rest of a point's work): eight running products over interleaved points, so that the multiplications
    do not wait on each other, and the sum of ``top`` vectorised."""
    if weighted:
        for p in range(n):
            wp = w[start + p]
            wt[p] = wp
            # A zero-weight row adds nothing, even where its log-likelihood is -inf.
            if wp != 0.0:
                ll_tw[0] += wp * (top[p] + math.log(total[p]))
            ll_tw[1] += wp
        return
    s = 0.0
    for p in range(n):
        wt[p] = 1.0
        s += top[p]
    span = 8 * LOG_CHUNK
    for c in range(0, n - span + 1, span):
        p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = 1.0
        for q in range(c, c + span, 8):
            p0 *= total[q]
            p1 *= total[q + 1]
            p2 *= total[q + 2]
            p3 *= total[q + 3]
            p4 *= total[q + 4]
            p5 *= total[q + 5]
            p6 *= total[q + 6]
            p7 *= total[q + 7]
        s += ((math.log(p0) + math.log(p1)) + (math.log(p2) + math.log(p3))) + (
            (math.log(p4) + math.log(p5)) + (math.log(p6) + math.log(p7))
        )
    for c in range(n - n % span, n, LOG_CHUNK):
        product = 1.0
        for p in range(c, min(c + LOG_CHUNK, n)):
            product *= total[p]
        s += math.log(product)
    ll_tw[0] += s
    ll_tw[1] += n


@njit(cache=True)
def _tile_log_prob(X, start, n, model, features, tile):
    """Load rows ``start:start+n`` into the tile's ``xt`` and their weighted log-probabilities into its ``a``
    (K, T), by the compiled-for-D tile when ``features`` is non-empty."""
    cov, means, U, log_const = model
    xt, y, a = tile
    _load_tile(X, start, n, xt)
    if len(features) > 0:
        _log_prob_tile_static(xt, n, cov, means, U, log_const, a, features)
    else:
        _log_prob_tile(xt, n, cov, means, U, log_const, y, a)


@njit(cache=True)
def _e_step_buffers(n_components, n_features, stages):
    """A thread's buffers for ``_accumulate``: ``(tile, resp, staging)``, the groups of ``_tile_log_prob``, of the
    responsibilities and of ``_stage_tile``. The tile's rows and the stages have ``_layouts.gram_rows(D)`` rows, and
    staging's ``shift`` (the means, set by the caller) as many columns, zero after D (``_gram_upper``)."""
    tile = (_gram_buffer(1, TILE, n_features)[0], np.empty((4, TILE)), np.empty((n_components, TILE)))
    pairs = n_components * TILE
    resp = (np.empty(TILE), np.empty(TILE, dtype=np.int64), np.empty(TILE), np.empty(TILE, dtype=np.int64),
            np.empty(TILE), np.empty(pairs, dtype=np.int64), np.empty(pairs, dtype=np.int64), np.empty(pairs),
            np.empty(pairs), np.empty(pairs))
    rd = _gram_buffer(1, TILE, n_features)[0]
    staging = (np.empty(pairs, dtype=np.int64), np.empty(pairs), np.empty(n_components + 1, dtype=np.int64),
               _gram_buffer(stages, TILE, n_features), np.empty((stages, TILE)),
               np.zeros(n_components, dtype=np.int64), rd, np.empty((rd.shape[0], rd.shape[0])),
               np.zeros((n_components, rd.shape[0])))
    return tile, resp, staging


@_SerialAndParallel
def _accumulate(X, w, weighted, model, plan, partials):
    """The one-pass statistics, per block into the block's ``partials`` ``(ll_tw, nk, s1, s2)``. ``plan`` is
    ``(block_size, stages, features, dense_live)``: ``stages`` is K, or 1 to reduce each tile's rows at once
    (``staged_components``); ``features`` is ``(0,) * D`` when D is small enough for the compiled-for-D tile (one
    compilation per D), else ``()``; a tile whose points keep more than ``dense_live`` of the components live on
    average takes the dense path (``_passes.dense_live``)."""
    cov, means = model[0], model[1]
    block_size, stages, features, dense_live = plan
    ll_tw, nk, s1, s2 = partials
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_blocks = ll_tw.shape[0]
    for b in prange(n_blocks):
        tile, resp, staging = _e_step_buffers(n_components, n_features, stages)
        xt, y, a = tile
        top, total, wt = resp[0], resp[4], np.empty(TILE)
        rd, gram, shift = staging[6], staging[7], staging[8]
        shift[:, :n_features] = means
        block = (nk[b], s1[b], s2[b])
        block_end = min((b + 1) * block_size, n_samples)
        for start in range(b * block_size, block_end, TILE):
            n = min(TILE, block_end - start)
            _tile_log_prob(X, start, n, model, features, tile)
            live = _live_components(a, n, resp)
            if live > dense_live * n * n_components:
                _responsibilities_dense(a, n, resp)
                _add_log_likelihood(top, total, n, w, start, weighted, wt, ll_tw[b])
                _moments_tile(xt, n, resp[8], wt, total, cov, means, (y[0], shift, rd, gram), block, features)
                continue
            n_pairs = _responsibilities_sparse(a, n, resp)
            _add_log_likelihood(top, total, n, w, start, weighted, wt, ll_tw[b])
            _stage_tile(xt, n, wt, resp, n_pairs, cov, means, staging, block)
        _flush_stages(cov, staging, block)


@_SerialAndParallel
def _weighted_log_prob(X, model, out, features):
    n_samples, n_features = X.shape
    n_components = model[1].shape[0]
    n_tiles = (n_samples + TILE - 1) // TILE
    for t in prange(n_tiles):
        xt = np.empty((n_features, TILE))
        y = np.empty((4, TILE))
        a = np.empty((n_components, TILE))
        start = t * TILE
        n = min(TILE, n_samples - start)
        _tile_log_prob(X, start, n, model, features, (xt, y, a))
        for p in range(n):
            for k in range(n_components):
                out[start + p, k] = a[k, p]


def _static(cov, n_features):
    return (0,) * n_features if n_features <= _MAX_STATIC_FEATURES[cov] else ()


def _prepare(X, covariance_type, means, precisions_cholesky, log_const):
    n_components, n_features = means.shape
    return (
        CODES[covariance_type],
        np.ascontiguousarray(means, dtype=np.float64),
        as_3d(covariance_type, precisions_cholesky, n_components, n_features),
        np.ascontiguousarray(log_const, dtype=np.float64),
    )


@_one_launch_at_a_time
def accumulate(X, sample_weight, covariance_type, means, precisions_cholesky, log_const, block_size,
               dense_live=None):
    """One pass over ``X``: log-likelihood and shifted statistics; see ``fastgmm.kernels.numpy_.accumulate``.
    ``dense_live`` moves the dense path's threshold (default ``_passes.dense_live``), for the tests and the
    crossover benchmark: 0 makes every tile dense, 1 every tile sparse."""
    model = _prepare(X, covariance_type, means, precisions_cholesky, log_const)
    cov, means = model[0], model[1]
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    weighted = sample_weight is not None
    if dense_live is None:
        dense_live = _passes.dense_live(covariance_type, n_features)
    plan = (block_size, staged_components(n_components, n_features, TILE), _static(cov, n_features),
            float(dense_live))

    def fill(rows, ll_tw, nk, s1, s2):
        w = sample_weight[rows] if weighted else np.empty(0)
        work = (rows.stop - rows.start) * n_components * (n_features + 1) ** 2
        _accumulate(work, X[rows], w, weighted, model, plan, (ll_tw, nk, s1, s2))

    shapes = [(2,), (n_components,), (n_components, n_features), s2_block_shape(cov, n_components, n_features)]
    ll_tw, nk, s1, s2 = reduce_in_rounds(fill, n_samples, block_size, shapes, get_num_threads())
    ll, tw = ll_tw
    return ll, tw, nk, s1, finish_s2(s2, covariance_type)


@_one_launch_at_a_time
def weighted_log_prob(X, covariance_type, means, precisions_cholesky, log_const, out):
    """Write ``log(pi_k) + log N(x_n | mu_k, Sigma_k)`` into ``out`` (N, K) and return it."""
    model = _prepare(X, covariance_type, means, precisions_cholesky, log_const)
    cov, means = model[0], model[1]
    work = X.shape[0] * means.shape[0] * (means.shape[1] + 1) ** 2
    _weighted_log_prob(work, X, model, out, _static(cov, means.shape[1]))
    return out


# ---------------------------------------------------------------------------------------------------------- k-means


@_SerialAndParallel
def _candidate_potentials(X, w, weighted, candidates, closest, block_size, partial):
    # Over transposed tiles, so that the distances vectorise over the rows (a loop over the few features of one row
    # per candidate measured ~3x slower); each candidate's sum still adds its rows in order.
    # Four candidates' sums per sweep over the rows: four independent chains of additions instead of one at a time.
    n_samples, n_features = X.shape
    n_candidates = candidates.shape[0]
    for b in prange(partial.shape[0]):
        xt = np.empty((n_features, TILE))
        dist = np.empty((n_candidates, TILE))
        block_end = min((b + 1) * block_size, n_samples)
        for start in range(b * block_size, block_end, TILE):
            n = min(TILE, block_end - start)
            _load_tile(X, start, n, xt)
            for c in range(n_candidates):
                _squared_distances(xt, n, candidates[c], dist[c])
            for c in range(0, n_candidates, 4):
                width = min(4, n_candidates - c)
                c1, c2, c3 = min(c + 1, n_candidates - 1), min(c + 2, n_candidates - 1), min(c + 3, n_candidates - 1)
                t0, t1, t2, t3 = partial[b, c], partial[b, c1], partial[b, c2], partial[b, c3]
                for p in range(n):
                    wn = w[start + p] if weighted else 1.0
                    near = closest[start + p]
                    t0 += wn * min(dist[c, p], near)
                    t1 += wn * min(dist[c1, p], near)
                    t2 += wn * min(dist[c2, p], near)
                    t3 += wn * min(dist[c3, p], near)
                # Beyond the last candidate the sums repeat the last one's and are not written back.
                partial[b, c] = t0
                if width > 1:
                    partial[b, c1] = t1
                if width > 2:
                    partial[b, c2] = t2
                if width > 3:
                    partial[b, c3] = t3


@_one_launch_at_a_time
def candidate_potentials(X, sample_weight, candidates, closest, block_size):
    """k-means++: for each candidate centre, ``sum_n w_n min(closest_n, |x_n - candidate|^2)``; shape (C,)."""
    partial = np.zeros((n_blocks(X.shape[0], block_size), candidates.shape[0]))
    weighted = sample_weight is not None
    _candidate_potentials(
        X.shape[0] * candidates.shape[0] * X.shape[1],
        X, sample_weight if weighted else np.empty(0), weighted, np.ascontiguousarray(candidates, np.float64),
        closest, block_size, partial,
    )
    return sum_in_order(partial)


@njit(cache=True, inline="always")
def _squared_distances(xt, n, center, dist):
    """``dist[p] = |x_p - center|^2`` for the first n columns of the transposed tile, features added in order."""
    n_features = xt.shape[0]
    for p in range(n):
        dist[p] = 0.0
    # Four features per sweep, still added one after another.
    i = 0
    while i + 4 <= n_features:
        c0, c1, c2, c3 = center[i], center[i + 1], center[i + 2], center[i + 3]
        for p in range(n):
            t0, t1, t2, t3 = xt[i, p] - c0, xt[i + 1, p] - c1, xt[i + 2, p] - c2, xt[i + 3, p] - c3
            dist[p] = (((dist[p] + t0 * t0) + t1 * t1) + t2 * t2) + t3 * t3
        i += 4
    while i < n_features:
        c = center[i]
        for p in range(n):
            t = xt[i, p] - c
            dist[p] += t * t
        i += 1


@_SerialAndParallel
def _update_closest(X, center, closest):
    n_samples, n_features = X.shape
    for tile in prange((n_samples + TILE - 1) // TILE):
        xt = np.empty((n_features, TILE))
        dist = np.empty(TILE)
        start = tile * TILE
        n = min(TILE, n_samples - start)
        _load_tile(X, start, n, xt)
        _squared_distances(xt, n, center, dist)
        for p in range(n):
            if dist[p] < closest[start + p]:
                closest[start + p] = dist[p]


@_one_launch_at_a_time
def update_closest(X, center, closest, block_size):
    """``closest = min(closest, |x - center|^2)`` in place."""
    _update_closest(X.shape[0] * X.shape[1], X, np.ascontiguousarray(center, np.float64), closest)


@_SerialAndParallel
def _lloyd_step(X, w, weighted, centers, labels, block_size, sums, weights):
    n_samples, n_features = X.shape
    n_clusters = centers.shape[0]
    for b in prange(sums.shape[0]):
        xt = np.empty((n_features, TILE))
        best = np.empty(TILE)
        dist = np.empty(TILE)
        nearest = np.empty(TILE, dtype=np.int64)
        stride = 1 + n_features
        acc = np.zeros(n_clusters * stride)
        block_end = min((b + 1) * block_size, n_samples)
        for start in range(b * block_size, block_end, TILE):
            n = min(TILE, block_end - start)
            _load_tile(X, start, n, xt)
            for k in range(n_clusters):
                _squared_distances(xt, n, centers[k], dist)
                for p in range(n):
                    # Unconditional stores: the loop vectorises.
                    better = k == 0 or dist[p] < best[p]
                    best[p] = dist[p] if better else best[p]
                    nearest[p] = k if better else nearest[p]
            # Into one flat buffer, added to the zeroed partials at the end (the same sums in the same order; as
            # in ``_label_statistics``).
            for p in range(n):
                k = nearest[p]
                labels[start + p] = k
                wp = w[start + p] if weighted else 1.0
                o = k * stride
                acc[o] += wp
                for i in range(n_features):
                    acc[o + 1 + i] += wp * xt[i, p]
        for k in range(n_clusters):
            weights[b, k] += acc[k * stride]
            for i in range(n_features):
                sums[b, k, i] += acc[k * stride + 1 + i]


@_one_launch_at_a_time
def lloyd_step(X, sample_weight, centers, labels, block_size):
    """One Lloyd assignment; see ``fastgmm.kernels.numpy_.lloyd_step``."""
    n_clusters, n_features = centers.shape
    blocks = n_blocks(X.shape[0], block_size)
    sums = np.zeros((blocks, n_clusters, n_features))
    weights = np.zeros((blocks, n_clusters))
    weighted = sample_weight is not None
    _lloyd_step(
        X.shape[0] * n_clusters * n_features,
        X, sample_weight if weighted else np.empty(0), weighted, np.ascontiguousarray(centers, np.float64), labels,
        block_size, sums, weights,
    )
    return sum_in_order(sums), sum_in_order(weights)


# Up to this many components the statistics of hard labels are the dense tile moments of one-hot responsibilities
# (vectorised over the tile's rows); beyond, row by row into the partials. Measured at 10,000 rows: the dense form
# 2x faster at K = 3 (D = 4), 2.7x at D = 16 and 3.8x at D = 64 (full), 1.6-1.8x (diag), and 1.5-2x slower from K = 8.
_LABEL_DENSE_COMPONENTS = 4


@_SerialAndParallel
def _label_statistics(X, w, weighted, labels, shift, cov, block_size, partials, features):
    nk, s1, s2 = partials
    n_samples, n_features = X.shape
    n_components = shift.shape[0]
    if n_components <= _LABEL_DENSE_COMPONENTS:
        for b in prange(nk.shape[0]):
            xt = _gram_buffer(1, TILE, n_features)[0]
            r = np.empty(n_components * TILE)
            wt = np.empty(TILE)
            total = np.ones(TILE)
            rw = np.empty(TILE)
            rd = _gram_buffer(1, TILE, n_features)[0]
            gram = np.empty((rd.shape[0], rd.shape[0]))
            padded = np.zeros((n_components, rd.shape[0]))
            padded[:, :n_features] = shift
            block_end = min((b + 1) * block_size, n_samples)
            for start in range(b * block_size, block_end, TILE):
                n = min(TILE, block_end - start)
                _load_tile(X, start, n, xt)
                for k in range(n_components):
                    for p in range(n):
                        r[k * n + p] = 1.0 if labels[start + p] == k else 0.0
                for p in range(n):
                    # A row without a label (-1) has weight 0: it adds nothing.
                    wp = w[start + p] if weighted else 1.0
                    wt[p] = wp if labels[start + p] >= 0 else 0.0
                _moments_tile(xt, n, r, wt, total, cov, shift, (rw, padded, rd, gram), (nk[b], s1[b], s2[b]),
                              features)
        return
    full = cov == FULL or cov == TIED
    # Each row's sums go to one flat buffer per block (N_k, S1_k, S2_k of component k side by side), added to the
    # zeroed partials at the end: the same additions in the same order as adding into the partials directly, with
    # flat offsets instead of 4-D indexing.
    s2_width = n_features * n_features if full else n_features
    stride = 1 + n_features + s2_width
    for b in prange(nk.shape[0]):
        acc = np.zeros(n_components * stride)
        d = np.empty(n_features)
        for n in range(b * block_size, min((b + 1) * block_size, n_samples)):
            k = labels[n]
            wn = w[n] if weighted else 1.0
            if k < 0 or wn == 0.0:
                continue
            o = k * stride
            acc[o] += wn
            for i in range(n_features):
                di = X[n, i] - shift[k, i]
                d[i] = di
                acc[o + 1 + i] += wn * di
            o2 = (0 if cov == TIED else k) * stride + 1 + n_features
            if full:
                for i in range(n_features):
                    u = wn * d[i]
                    for j in range(i, n_features):
                        acc[o2 + i * n_features + j] += u * d[j]
            else:
                for i in range(n_features):
                    acc[o2 + i] += wn * d[i] * d[i]
        for k in range(n_components):
            o = k * stride
            nk[b, k] += acc[o]
            for i in range(n_features):
                s1[b, k, i] += acc[o + 1 + i]
        for kk in range(s2.shape[1]):
            o2 = kk * stride + 1 + n_features
            for i in range(n_features):
                if full:
                    for j in range(i, n_features):
                        s2[b, kk, i, j] += acc[o2 + i * n_features + j]
                else:
                    s2[b, kk, i, 0] += acc[o2 + i]


@_one_launch_at_a_time
def label_statistics(X, sample_weight, labels, shift, covariance_type, block_size):
    """``(nk, s1, s2)`` of hard assignments; see ``fastgmm.kernels.numpy_.label_statistics``."""
    n_components, n_features = shift.shape
    cov = CODES[covariance_type]
    weighted = sample_weight is not None
    shift = np.ascontiguousarray(shift, np.float64)
    # The compiled-for-D tile moments are the register sums of full/tied up to MAX_SMALL_FEATURES; every other
    # shape takes the same path for any D, so one compilation serves them all (each D is one more of several
    # seconds).
    small = cov in (FULL, TIED) and n_features <= MAX_SMALL_FEATURES
    features = (0,) * n_features if small else ()

    def fill(rows, nk, s1, s2):
        w = sample_weight[rows] if weighted else np.empty(0)
        work = (rows.stop - rows.start) * (n_features + 1) ** 2
        _label_statistics(work, X[rows], w, weighted, labels[rows], shift, cov, block_size, (nk, s1, s2), features)

    shapes = [(n_components,), (n_components, n_features), s2_block_shape(cov, n_components, n_features)]
    nk, s1, s2 = reduce_in_rounds(fill, X.shape[0], block_size, shapes, get_num_threads())
    return nk, s1, finish_s2(s2, covariance_type)


# ------------------------------------------------------------------------------------------------ k-means, fused

# Returned by ``_lloyd_iterations``: why it stopped.
_LLOYD_RAN_ALL, _LLOYD_STRICT, _LLOYD_TOL, _LLOYD_EMPTY = 0, 1, 2, 3


def _seeding(X, w, weighted, plan, seeding, first_step, last_step, potential):
    """Steps ``first_step:last_step`` of k-means++ (``fastgmm._kmeans._seed_indices`` step by step, from its drawn
    ``uniforms``), updating ``indices``, ``closest`` and returning the potential; step 0 takes ``indices[0]``.
    ``plan`` is ``(block_size, n_blocks)``, ``seeding`` ``(uniforms, indices, closest, cumulative)``."""
    block_size, n_blocks_ = plan
    uniforms, indices, closest, cumulative = seeding
    n_samples, n_features = X.shape
    n_trials = uniforms.shape[1]
    center = np.empty(n_features)
    candidates = np.empty((n_trials, n_features))
    picks = np.empty(n_trials, dtype=np.int64)
    partial = np.zeros((n_blocks_, n_trials))
    for c in range(first_step, last_step):
        if c == 0:
            for i in range(n_features):
                center[i] = X[indices[0], i]
            _update_closest_step(X, center, closest)
            potential = 0.0
            for n in range(n_samples):
                potential += closest[n] * w[n] if weighted else closest[n]
            continue
        running = 0.0
        for n in range(n_samples):
            running += closest[n] * w[n] if weighted else closest[n]
            cumulative[n] = running
        for t in range(n_trials):
            picks[t] = min(np.searchsorted(cumulative, uniforms[c - 1, t] * potential), n_samples - 1)
            for i in range(n_features):
                candidates[t, i] = X[picks[t], i]
        partial[:] = 0.0
        _candidate_potentials_step(X, w, weighted, candidates, closest, block_size, partial)
        best, potential_best = 0, np.inf
        for t in range(n_trials):
            value = 0.0
            for b in range(n_blocks_):
                value += partial[b, t]
            if t == 0 or value < potential_best:
                best, potential_best = t, value
        potential = potential_best
        indices[c] = picks[best]
        _update_closest_step(X, candidates[best], closest)
    return potential


def _lloyd_iterations(X, w, weighted, plan, lloyd, tol, max_iter, last_call):
    """Up to ``max_iter`` Lloyd iterations as ``fastgmm._kmeans.lloyd`` makes them, ``centers``, ``labels`` and
    ``labels_old`` updated in place, then the final assignment where k-means stops without the labels converged
    (the shift below ``tol``, or the last iteration of the ``last_call``). Returns ``(iterations, why)``;
    ``_LLOYD_EMPTY`` when an assignment left a cluster empty: that iteration's sums and weights are in
    ``sums_out`` and ``weights_out`` for the caller's relocation rule. ``plan`` is ``(block_size, n_blocks)``,
    ``lloyd`` ``(centers, labels, labels_old, sums_out, weights_out)``."""
    block_size, n_blocks_ = plan
    centers, labels, labels_old, sums_out, weights_out = lloyd
    K, D = centers.shape
    sums = np.zeros((n_blocks_, K, D))
    weights = np.zeros((n_blocks_, K))
    iterations, why = max_iter, _LLOYD_RAN_ALL
    for it in range(max_iter):
        sums[:] = 0.0
        weights[:] = 0.0
        _lloyd_step_step(X, w, weighted, centers, labels, block_size, sums, weights)
        sums_out[:] = 0.0
        weights_out[:] = 0.0
        empty = False
        for k in range(K):
            for b in range(n_blocks_):
                weights_out[k] += weights[b, k]
                for i in range(D):
                    sums_out[k, i] += sums[b, k, i]
            empty = empty or weights_out[k] == 0.0
        if empty:
            return it, _LLOYD_EMPTY
        shift = 0.0
        for k in range(K):
            for i in range(D):
                new = sums_out[k, i] / weights_out[k]
                t = new - centers[k, i]
                shift += t * t
                centers[k, i] = new
        same = True
        for n in range(labels.shape[0]):
            if labels[n] != labels_old[n]:
                same = False
                break
        if same:
            return it + 1, _LLOYD_STRICT
        if shift <= tol:
            iterations, why = it + 1, _LLOYD_TOL
            break
        labels_old[:] = labels
    if why == _LLOYD_TOL or last_call:
        sums[:] = 0.0
        weights[:] = 0.0
        _lloyd_step_step(X, w, weighted, centers, labels, block_size, sums, weights)
    return iterations, why


@njit(cache=True)
def _column_moments(X, start, stop, moments):
    """Add the sums of ``X[start:stop] - X[0]`` and of its squares, per column and in float64, to ``moments[0]``
    and ``moments[1]``."""
    # Four features at a time in local sums: the same additions in the same order as summing into ``moments`` row
    # by row, without a store and a reload in each addition's chain (10,000 x 4: 74 -> 20 us).
    n_features = X.shape[1]
    i = 0
    while i < n_features:
        width = min(4, n_features - i)
        x0 = np.float64(X[0, i])
        x1 = np.float64(X[0, i + 1]) if width > 1 else 0.0
        x2 = np.float64(X[0, i + 2]) if width > 2 else 0.0
        x3 = np.float64(X[0, i + 3]) if width > 3 else 0.0
        a0, a1, a2, a3 = moments[0, i], 0.0, 0.0, 0.0
        b0, b1, b2, b3 = moments[1, i], 0.0, 0.0, 0.0
        if width > 1:
            a1, b1 = moments[0, i + 1], moments[1, i + 1]
        if width > 2:
            a2, b2 = moments[0, i + 2], moments[1, i + 2]
        if width > 3:
            a3, b3 = moments[0, i + 3], moments[1, i + 3]
        for n in range(start, stop):
            d0 = np.float64(X[n, i]) - x0
            a0 += d0
            b0 += d0 * d0
            if width > 1:
                d1 = np.float64(X[n, i + 1]) - x1
                a1 += d1
                b1 += d1 * d1
            if width > 2:
                d2 = np.float64(X[n, i + 2]) - x2
                a2 += d2
                b2 += d2 * d2
            if width > 3:
                d3 = np.float64(X[n, i + 3]) - x3
                a3 += d3
                b3 += d3 * d3
        moments[0, i], moments[1, i] = a0, b0
        if width > 1:
            moments[0, i + 1], moments[1, i + 1] = a1, b1
        if width > 2:
            moments[0, i + 2], moments[1, i + 2] = a2, b2
        if width > 3:
            moments[0, i + 3], moments[1, i + 3] = a3, b3
        i += 4


_SEEDING, _MOMENTS, _LLOYD = 0, 1, 2


def _kmeans_phase(X, w, weighted, plan, step, seeding, potential, moments, lloyd, stop):
    """One call of compiled k-means, ``step`` ``(phase, first, last)``: seeding steps ``first:last`` (``_SEEDING``,
    returns the potential), the tolerance's column moments of rows ``first:last`` (``_MOMENTS``), or
    ``last - first`` Lloyd iterations (``_LLOYD``, returns their count and why they stopped; ``stop`` is
    ``(tol, last_call)``). One entry point for all three, so that a process without its compilation learns so at
    the first call (``cached_only``) and asks for all of k-means at once. The groups as for ``_seeding`` and
    ``_lloyd_iterations``."""
    phase, first, last = step
    if phase == _SEEDING:
        potential = _seeding_step(X, w, weighted, plan, seeding, first, last, potential)
        return potential, 0, 0
    if phase == _MOMENTS:
        _column_moments(X, first, last, moments)
        return potential, 0, 0
    tol, last_call = stop
    iterations, why = _lloyd_iterations_step(X, w, weighted, plan, lloyd, tol, last - first, last_call)
    return potential, iterations, why


# Serial or parallel by the work of its largest pass (``PARALLEL_WORK``); the partials are the same either way.
_kmeans_phase_serial, _kmeans_phase_parallel = (
    _bound_to(
        _kmeans_phase, variant,
        _seeding_step=_with_steps(_seeding, variant, _update_closest_step=getattr(_update_closest, variant),
                                  _candidate_potentials_step=getattr(_candidate_potentials, variant)),
        _lloyd_iterations_step=_with_steps(_lloyd_iterations, variant, _lloyd_step_step=getattr(_lloyd_step, variant)),
    )
    for variant in ("serial", "parallel")
)


@_one_launch_at_a_time
def kmeans(X, sample_weight, first, uniforms, tol, max_iter, block_size):
    """k-means++ seeding from its drawn random numbers, then up to ``max_iter`` Lloyd iterations, in compiled calls
    of ``FUSED_CALL_WORK`` at most each: ``fastgmm._kmeans``'s Python loop over the single-pass kernels, step by
    step and with the same block partials. None when the partials of a Lloyd pass exceed ``PARTIALS_BYTES``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None
    first : int
        The first seed's row.
    uniforms : ndarray of shape (n_clusters - 1, n_trials)
        The uniform draws of the later seeding steps.
    tol : float
        Tolerance on the squared shift of the centres, relative to the mean variance of X's columns (scikit-learn's
        rule).
    max_iter : int
        Lloyd iterations at most; 0 seeds only.
    block_size : int

    Returns
    -------
    None or dict
        ``indices`` (the seeds' rows), ``centers`` (float64), ``labels`` and ``labels_old`` (int32),
        ``iterations`` (the Lloyd iterations completed), ``tol`` (the absolute tolerance) and ``pending``: None
        when k-means finished (the labels
        are the final assignment), else ``(sums, weights)`` of iteration ``iterations``, whose assignment left
        a cluster empty, for the caller to relocate and go on from.
    """
    n_samples, n_features = X.shape
    n_clusters = uniforms.shape[0] + 1
    blocks = n_blocks(n_samples, block_size)
    if 8 * blocks * n_clusters * (n_features + 1) > _passes.PARTIALS_BYTES:
        return None
    weighted = sample_weight is not None
    w = sample_weight if weighted else np.empty(0)
    uniforms = np.ascontiguousarray(uniforms, dtype=np.float64)
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = first
    closest = np.full(n_samples, np.inf)
    cumulative = np.empty(n_samples)
    moments = np.zeros((2, n_features))
    labels = np.full(n_samples, -1, dtype=np.int32)
    labels_old = labels.copy()
    centers = np.zeros((n_clusters, n_features))
    sums, weights = np.zeros((n_clusters, n_features)), np.zeros(n_clusters)
    step_work = n_samples * max(1, uniforms.shape[1]) * n_features
    pass_work = n_samples * n_clusters * n_features
    run = (_with_threads_started(_kmeans_phase_parallel) if max(step_work, pass_work) >= PARALLEL_WORK
           else _kmeans_phase_serial)

    def call(phase, first_, last, tol=0.0, last_call=False):
        seeding = (uniforms, indices, closest, cumulative)
        lloyd = (centers, labels, labels_old, sums, weights)
        return run(X, w, weighted, (block_size, blocks), (phase, first_, last), seeding, potential, moments, lloyd,
                   (float(tol), last_call))

    potential = 0.0
    steps = max(1, FUSED_CALL_WORK // step_work)
    for first_step in range(0, n_clusters, steps):
        potential, _, _ = call(_SEEDING, first_step, min(n_clusters, first_step + steps))
    closest = cumulative = np.empty(0)  # O(N) buffers of the seeding, not needed after it
    centers[:] = X[indices]
    if max_iter > 0:
        rows = max(1, FUSED_CALL_WORK // n_features)
        for start in range(0, n_samples, rows):
            call(_MOMENTS, start, min(n_samples, start + rows))
        tol = float(np.mean(moments[1] / n_samples - (moments[0] / n_samples) ** 2)) * tol
    per_call = max(1, FUSED_CALL_WORK // max(1, pass_work))
    done = 0
    pending = None
    while done < max_iter:
        count = min(per_call, max_iter - done)
        _, ran, why = call(_LLOYD, 0, count, tol, done + count == max_iter)
        done += ran
        if why == _LLOYD_EMPTY:
            pending = (sums, weights)
            break
        if why != _LLOYD_RAN_ALL:
            break
    return {"indices": indices, "centers": centers, "labels": labels, "labels_old": labels_old, "iterations": done,
            "tol": tol, "pending": pending}


# ------------------------------------------------------------------------------------------- EM iterations, fused

# Work (as estimated for PARALLEL_WORK) of one call of fused iterations at most: about 0.1 s here (iris, K=3,
# full: 13 us per iteration of 11,250), so that Ctrl-C interrupts a long fit within a fraction of a second.
FUSED_CALL_WORK = 100_000_000

# Returned by ``_em_iterations``: why it stopped.
_RAN_ALL, _CONVERGED, _NEEDS_POLICY = 0, 1, 2


@njit(cache=True)
def _precision_factor(C, L, Uk):
    """``Uk = L^-T`` with ``C = L L^T`` (the upper factor of the precision, as ``fastgmm._parameters`` computes it by
    LAPACK); False when C is not positive definite. ``Uk`` is written upper, zero below."""
    D = C.shape[0]
    for j in range(D):
        s = C[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not (s > 0.0) or not np.isfinite(s):
            return False
        L[j, j] = math.sqrt(s)
        for i in range(j + 1, D):
            t = C[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / L[j, j]
    # M = L^-1 (lower), column by column; Uk = M^T.
    for j in range(D):
        for i in range(D):
            Uk[i, j] = 0.0
    for j in range(D):
        Uk[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, D):
            t = 0.0
            for k in range(j, i):
                t -= L[i, k] * Uk[j, k]
            Uk[j, i] = t / L[i, i]
    return True


@njit(cache=True)
def _m_step_fused(cov, statistics, policy, params, work):
    """``fastgmm._parameters.estimate_moments`` and the precision factors from summed ``statistics``
    ``(nk, s1, s2, shift, total_weight)`` (s2 in the kernels' block layout, upper triangle) into ``params``
    ``(weights, means, covariances, U, log_const)``; False, with the outputs undefined, where
    ``fastgmm._collapse``'s policy must decide instead: a component below ``collapsed_weight`` of the total weight,
    a covariance not positive definite or at the ``rounding`` level of its mean, statistics not finite. ``policy``
    is ``(reg_covar, nk_eps, collapsed_weight, rounding)``, ``work`` ``(L, scratch)``: (D, D) and (K, D)."""
    nk, s1, s2, shift, total_weight = statistics
    reg_covar, nk_eps, collapsed_weight, rounding = policy
    weights, means, covariances, U, log_const = params
    L, scratch = work
    K, D = shift.shape
    n_eff_total = 0.0
    for k in range(K):
        n_eff_total += nk[k] + nk_eps
        if not (nk[k] >= collapsed_weight * total_weight):
            return False
    for k in range(K):
        for i in range(D):
            if not np.isfinite(s1[k, i]):
                return False
    for v in s2.ravel():
        if not np.isfinite(v):
            return False
    delta = scratch
    for k in range(K):
        n_eff = nk[k] + nk_eps
        weights[k] = n_eff / n_eff_total
        for i in range(D):
            delta[k, i] = s1[k, i] / n_eff
            means[k, i] = shift[k, i] + delta[k, i]
    if cov == FULL or cov == TIED:
        if cov == TIED:
            for i in range(D):
                for j in range(D):
                    covariances[0, i, j] = 0.0
        for k in range(K):
            n_eff = nk[k] + nk_eps
            correction = (2.0 * n_eff - nk[k]) / n_eff
            for i in range(D):
                for j in range(i, D):
                    if cov == FULL:
                        c = s2[k, i, j] / n_eff - correction * delta[k, i] * delta[k, j]
                        covariances[k, i, j] = c
                        covariances[k, j, i] = c
                    else:
                        c = covariances[0, i, j] - correction * n_eff * delta[k, i] * delta[k, j]
                        covariances[0, i, j] = c
        n_cov = K if cov == FULL else 1
        for c in range(n_cov):
            for i in range(D):
                for j in range(i, D):
                    v = covariances[c, i, j]
                    if cov == TIED:
                        v = (s2[0, i, j] + v) / n_eff_total
                    if i == j:
                        v += reg_covar
                    covariances[c, i, j] = v
                    covariances[c, j, i] = v
            if not _precision_factor(covariances[c], L, U[c]):
                return False
        for c in range(n_cov):
            floor = 0.0
            first, last = (0, K) if cov == TIED else (c, c + 1)
            for k in range(first, last):
                for i in range(D):
                    floor = max(floor, rounding * abs(means[k, i]))
            largest = 0.0
            for i in range(D):
                largest = max(largest, U[c, i, i] * U[c, i, i])
            if 1.0 / largest <= floor * floor:
                return False
    else:
        for k in range(K):
            n_eff = nk[k] + nk_eps
            correction = (2.0 * n_eff - nk[k]) / n_eff
            floor = 0.0
            for i in range(D):
                floor = max(floor, rounding * abs(means[k, i]))
            floor *= floor
            total = 0.0
            for i in range(D):
                v = s2[k, i, 0] / n_eff - correction * delta[k, i] * delta[k, i]
                if cov == DIAG:
                    v += reg_covar
                    if not (v > 0.0) or not np.isfinite(v) or v <= floor:
                        return False
                    covariances[k, i, 0] = v
                    U[k, i, 0] = 1.0 / math.sqrt(v)
                else:
                    total += s2[k, i, 0]
            if cov == SPHERICAL:
                d2 = 0.0
                for i in range(D):
                    d2 += delta[k, i] * delta[k, i]
                v = (total / n_eff - correction * d2) / D + reg_covar
                if not (v > 0.0) or not np.isfinite(v) or v <= floor:
                    return False
                covariances[k, 0, 0] = v
                U[k, 0, 0] = 1.0 / math.sqrt(v)
    half_log_2pi = 0.5 * D * math.log(2.0 * math.pi)
    for k in range(K):
        c = 0 if cov == TIED else k
        log_det = 0.0
        if cov == FULL or cov == TIED:
            for i in range(D):
                log_det += math.log(U[c, i, i])
        elif cov == DIAG:
            for i in range(D):
                log_det += math.log(U[k, i, 0])
        else:
            log_det = D * math.log(U[k, 0, 0])
        log_const[k] = math.log(weights[k]) + log_det - half_log_2pi
    return True


@njit(cache=True)
def _block_partials(n_blocks_, n_components, n_features, s2_like):
    """Zeroed per-block partials ``(ll_tw, nk, s1, s2)`` of ``n_blocks_`` blocks, s2 of ``s2_like``'s shape."""
    return (np.zeros((n_blocks_, 2)), np.zeros((n_blocks_, n_components)),
            np.zeros((n_blocks_, n_components, n_features)), np.zeros((n_blocks_,) + s2_like.shape))


@njit(cache=True)
def _sum_partials(partials, out):
    """The per-block partials ``(ll_tw, nk, s1, s2)`` summed in block order into ``out`` (the same four, one
    block's shapes; ll_tw as (1, 2)): the order that makes a result independent of the thread count."""
    ll_tw, nk, s1, s2 = partials
    ll_tw_out, nk_out, s1_out, s2_out = out
    ll_tw_out[:] = 0.0
    nk_out[:] = 0.0
    s1_out[:] = 0.0
    s2_out[:] = 0.0
    for b in range(ll_tw.shape[0]):
        ll_tw_out[0, 0] += ll_tw[b, 0]
        ll_tw_out[0, 1] += ll_tw[b, 1]
        nk_out += nk[b]
        s1_out += s1[b]
        s2_out += s2[b]


def _em_iterations(X, w, weighted, model, plan, policy, run, out):
    """Up to ``max_iter`` EM iterations in one call, the E-step by ``_accumulate_step`` (a compilation of
    ``_accumulate``, see ``_bound_to``; the same blocks, partials summed in block order). ``model``
    ``(cov, means, U, log_const)`` is updated in place, with ``weights`` and ``covariances`` (kernel layouts) of
    ``out`` ``(lower_bounds, weights, covariances, stats_nk, stats_s1, stats_s2, ll_tw_out)``; ``plan`` as for
    ``_accumulate``, ``policy`` as for ``_m_step_fused``, ``run`` ``(tol, max_iter, previous, n_blocks)``. Returns
    ``(iterations, why)``: ``_RAN_ALL``, ``_CONVERGED`` (the change of the lower bound below ``tol``), or
    ``_NEEDS_POLICY``, when the last iteration's M-step is for ``fastgmm._collapse`` to make: its statistics are
    then in ``stats_*`` and ``ll_tw_out``, taken about ``means``, which hold that iteration's parameters still."""
    cov, means, U, log_const = model
    tol, max_iter, previous, n_blocks_ = run
    lower_bounds, weights, covariances, stats_nk, stats_s1, stats_s2, ll_tw_out = out
    n_samples, n_features = X.shape
    K = means.shape[0]
    ll_tw, nk, s1, s2 = _block_partials(n_blocks_, K, n_features, stats_s2)
    new_means = np.empty_like(means)
    new_U = np.empty_like(U)
    new_log_const = np.empty_like(log_const)
    new_weights = np.empty_like(weights)
    new_covariances = np.empty_like(covariances)
    L = np.zeros((n_features, n_features))
    scratch = np.empty((K, n_features))
    for it in range(max_iter):
        ll_tw[:] = 0.0
        nk[:] = 0.0
        s1[:] = 0.0
        s2[:] = 0.0
        _accumulate_step(X, w, weighted, model, plan, (ll_tw, nk, s1, s2))
        _sum_partials((ll_tw, nk, s1, s2), (ll_tw_out, stats_nk, stats_s1, stats_s2))
        lower_bound = ll_tw_out[0, 0] / ll_tw_out[0, 1]
        lower_bounds[it] = lower_bound
        statistics = (stats_nk, stats_s1, stats_s2, means, ll_tw_out[0, 1])
        params = (new_weights, new_means, new_covariances, new_U, new_log_const)
        if not _m_step_fused(cov, statistics, policy, params, (L, scratch)):
            return it + 1, _NEEDS_POLICY
        weights[:] = new_weights
        covariances[:] = new_covariances
        means[:] = new_means
        U[:] = new_U
        log_const[:] = new_log_const
        change = lower_bound - previous
        previous = lower_bound
        if abs(change) < tol:
            return it + 1, _CONVERGED
    return max_iter, _RAN_ALL


# The E-step of a fused call runs serial or parallel by the same rule as a single pass (``PARALLEL_WORK``).
_em_iterations_serial = _bound_to(_em_iterations, "serial", _accumulate_step=_accumulate.serial)
_em_iterations_parallel = _bound_to(_em_iterations, "parallel", _accumulate_step=_accumulate.parallel)


@_one_launch_at_a_time
def em_iterations(X, sample_weight, covariance_type, means, precisions_cholesky, log_const, block_size, *, reg_covar,
                  tol, max_iter, lower_bound, nk_eps, collapsed_weight, rounding):
    """Up to ``max_iter`` EM iterations (fewer, ``FUSED_CALL_WORK`` at most) in one compiled call, for data whose
    per-block partials fit in ``PARTIALS_BYTES`` at once (None otherwise: each iteration then goes through Python,
    a round of blocks at a time). The E-step is the serial or the parallel ``_accumulate`` as for a single pass,
    so the result is the same
    whatever the thread count.

    The M-step is ``fastgmm._parameters.estimate_moments`` with the precision factors; the call stops at the first
    iteration whose M-step needs ``fastgmm._collapse``'s policy (a component below ``collapsed_weight`` of the
    weight, a covariance not positive definite or at the ``rounding`` level of its mean), and returns its
    statistics for the caller to decide.

    Returns
    -------
    None or dict
        ``lower_bounds`` (one per iteration run), ``converged`` (the last change below ``tol``), ``params``
        ``(weights, means, covariances, precisions_cholesky)`` in the reference layouts after the last M-step made
        here, and ``statistics`` ``(log_likelihood, total_weight, nk, s1, s2, shift)`` of the iteration left to the
        caller's M-step, or None.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    cov = CODES[covariance_type]
    shape = s2_block_shape(cov, n_components, n_features)
    blocks = n_blocks(n_samples, block_size)
    if max_iter < 1 or 8 * blocks * (3 + n_components * (1 + n_features) + math.prod(shape)) > _passes.PARTIALS_BYTES:
        return None
    work = n_samples * n_components * (n_features + 1) ** 2
    run = _with_threads_started(_em_iterations_parallel) if work >= PARALLEL_WORK else _em_iterations_serial
    # Python sees a KeyboardInterrupt only between calls: a call does about 0.1 s of work at most.
    max_iter = max(1, min(max_iter, FUSED_CALL_WORK // work))
    means = np.array(means, dtype=np.float64, order="C")
    U = as_3d(covariance_type, precisions_cholesky, n_components, n_features).copy()
    log_const = np.array(log_const, dtype=np.float64)
    weighted = sample_weight is not None
    cov_shape = {FULL: shape, TIED: shape, DIAG: shape, SPHERICAL: (n_components, 1, 1)}[cov]
    lower_bounds = np.empty(max_iter)
    new_weights = np.empty(n_components)
    covariances = np.empty(cov_shape)
    nk, s1, s2 = np.empty(n_components), np.empty((n_components, n_features)), np.empty(shape)
    ll_tw = np.zeros((1, 2))
    plan = (block_size, staged_components(n_components, n_features, TILE), _static(cov, n_features),
            float(_passes.dense_live(covariance_type, n_features)))
    policy = (float(reg_covar), float(nk_eps), float(collapsed_weight), float(rounding))
    ran, why = run(
        X, sample_weight if weighted else np.empty(0), weighted, (cov, means, U, log_const), plan, policy,
        (float(tol), int(max_iter), float(lower_bound), blocks),
        (lower_bounds, new_weights, covariances, nk, s1, s2, ll_tw),
    )
    made = ran - (why == _NEEDS_POLICY)
    params = None
    if made > 0:
        params = (new_weights, means, from_3d(covariance_type, covariances), from_3d(covariance_type, U))
    statistics = None
    if why == _NEEDS_POLICY:
        statistics = (float(ll_tw[0, 0]), float(ll_tw[0, 1]), nk, s1, finish_s2(s2, covariance_type), means)
    return {"lower_bounds": lower_bounds[:ran].tolist(), "converged": why == _CONVERGED, "params": params,
            "statistics": statistics}


_NO_WEIGHT, _STEPPED = 3, 4


@njit(cache=True)
def _mix_in(cov, batch, running, eta, has_running, nk_eps):
    """``fastgmm._online.recentred`` of the summed batch statistics ``batch`` ``(ll_tw, nk, s1, s2, shift)``
    (kernel layouts, s2's upper triangle), mixed into ``running`` ``(ll, nk, s2, shift)`` as ``combine`` does
    with weight ``eta`` (or taking its place without ``has_running``), in place. s2 stays in the kernel layout:
    spherical per feature, its trace the reference's."""
    ll_tw, nk, s1, s2, shift = batch
    r_ll, r_nk, r_s2, r_shift = running
    K, D = shift.shape
    W = ll_tw[0, 1]
    keep = 1.0 - eta if has_running else 0.0
    mix = eta if has_running else 1.0
    r_ll[0] = keep * r_ll[0] + mix * (ll_tw[0, 0] / W)
    if cov == TIED:
        for i in range(D):
            for j in range(i, D):
                r_s2[0, i, j] = keep * r_s2[0, i, j] + mix * (s2[0, i, j] / W)
    delta = np.empty(D)
    gap = np.empty(D)
    for k in range(K):
        nk_b = nk[k] / W
        for i in range(D):
            delta[i] = (s1[k, i] / W) / (nk_b + nk_eps)
        # The batch's own scatter about its mean, then the scatter of the two means (Chan's update).
        a = keep * r_nk[k]
        b = mix * nk_b
        n = a + b
        share = b / (n if n > 0 else 1.0)
        between = a * share
        for i in range(D):
            gap[i] = (shift[k, i] + delta[i]) - r_shift[k, i] if has_running else 0.0
        if cov == FULL:
            for i in range(D):
                for j in range(i, D):
                    batch_ij = s2[k, i, j] / W - nk_b * delta[i] * delta[j]
                    r_s2[k, i, j] = keep * r_s2[k, i, j] + mix * batch_ij + between * gap[i] * gap[j]
        elif cov == TIED:
            for i in range(D):
                for j in range(i, D):
                    r_s2[0, i, j] += -mix * nk_b * delta[i] * delta[j] + between * gap[i] * gap[j]
        else:
            for i in range(D):
                batch_i = s2[k, i, 0] / W - nk_b * delta[i] * delta[i]
                r_s2[k, i, 0] = keep * r_s2[k, i, 0] + mix * batch_i + between * gap[i] * gap[i]
        r_nk[k] = n
        for i in range(D):
            if has_running:
                r_shift[k, i] = r_shift[k, i] + share * gap[i]
            else:
                r_shift[k, i] = shift[k, i] + delta[i]


def _online_step(X, w, weighted, model, plan, policy, stream, out):
    """One online-EM step in one call: the batch's statistics by ``_accumulate_step`` (a compilation of
    ``_accumulate``, see ``_bound_to``; partials summed in block order), mixed into the running statistics by
    ``_mix_in`` and the M-step from them by ``_m_step_fused``. ``model`` and ``plan`` as for ``_accumulate``,
    ``policy`` as for ``_m_step_fused``, ``stream`` ``(eta, has_running, n_blocks)``; ``out`` is
    ``(batch, running, params)``: the summed batch statistics ``(ll_tw, nk, s1, s2)``, the running statistics
    ``(ll, nk, s2, shift)`` (updated in place) and the new parameters ``(weights, means, covariances, U,
    log_const)``. Returns ``_NO_WEIGHT`` (nothing changed), ``_STEPPED`` or ``_NEEDS_POLICY`` (the running
    statistics updated, the M-step for ``fastgmm._collapse`` to make)."""
    cov, means = model[0], model[1]
    eta, has_running, n_blocks_ = stream
    batch, running, params = out
    ll_tw_out, s2_out = batch[0], batch[3]
    n_samples, n_features = X.shape
    K = means.shape[0]
    partials = _block_partials(n_blocks_, K, n_features, s2_out)
    _accumulate_step(X, w, weighted, model, plan, partials)
    _sum_partials(partials, batch)
    if not ll_tw_out[0, 1] > 0.0:
        return _NO_WEIGHT
    reg_covar, nk_eps, collapsed_weight, rounding = policy
    _mix_in(cov, batch + (means,), running, eta, has_running, nk_eps)
    r_ll, r_nk, r_s2, r_shift = running
    statistics = (r_nk, np.zeros((K, n_features)), r_s2, r_shift, 1.0)
    L = np.zeros((n_features, n_features))
    scratch = np.empty((K, n_features))
    if not _m_step_fused(cov, statistics, policy, params, (L, scratch)):
        return _NEEDS_POLICY
    return _STEPPED


_online_step_serial = _bound_to(_online_step, "serial", _accumulate_step=_accumulate.serial)
_online_step_parallel = _bound_to(_online_step, "parallel", _accumulate_step=_accumulate.parallel)


def _running_as_kernel_layout(covariance_type, s2, n_components, n_features):
    """A copy of running statistics' s2 (reference layout) in the kernels' layout; spherical's trace as the
    first feature's."""
    if covariance_type == "spherical":
        out = np.zeros((n_components, n_features, 1))
        out[:, 0, 0] = s2
        return out
    return as_3d(covariance_type, s2, n_components, n_features).copy()


@_one_launch_at_a_time
def online_step(X, sample_weight, covariance_type, means, precisions_cholesky, log_const, block_size, *, running,
                eta, reg_covar, nk_eps, collapsed_weight, rounding):
    """One online-EM step on the batch ``X`` in one compiled call: ``fastgmm._online.online_step``'s pass,
    ``recentred``, ``combine`` and M-step (the M-step as ``em_iterations`` makes it), for a batch of at most
    ``FUSED_CALL_WORK`` whose partials fit in ``PARTIALS_BYTES`` (None otherwise). The E-step is the serial or
    the parallel ``_accumulate`` as for a single pass, so the result is the same whatever the thread count.

    Parameters
    ----------
    running : Statistics or None
        The running statistics (``recentred``, reference layouts), None before the first batch.
    eta : float
        The weight of this batch.

    Returns
    -------
    None or dict
        ``statistics``: the batch's ``(log_likelihood, total_weight, nk, s1, s2, shift)``; ``running``: the new
        running statistics' ``(log_likelihood, total_weight, nk, s1, s2, shift)`` (None for a batch without
        weight, which changes nothing); ``params``: ``(weights, means, covariances, precisions_cholesky)`` after
        the M-step, or None where ``fastgmm._collapse``'s policy must make it from ``running``.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    cov = CODES[covariance_type]
    shape = s2_block_shape(cov, n_components, n_features)
    blocks = n_blocks(n_samples, block_size)
    work = n_samples * n_components * (n_features + 1) ** 2
    if work > FUSED_CALL_WORK or 8 * blocks * (3 + n_components * (1 + n_features) + math.prod(shape)) > \
            _passes.PARTIALS_BYTES:
        return None
    run = _with_threads_started(_online_step_parallel) if work >= PARALLEL_WORK else _online_step_serial
    means = np.ascontiguousarray(means, dtype=np.float64)
    U = as_3d(covariance_type, precisions_cholesky, n_components, n_features)
    weighted = sample_weight is not None
    has_running = running is not None
    if has_running:
        r_ll = np.array([running.log_likelihood])
        r_nk = np.array(running.nk, dtype=np.float64)
        r_s2 = _running_as_kernel_layout(covariance_type, running.s2, n_components, n_features)
        r_shift = np.array(running.shift, dtype=np.float64, order="C")
    else:
        r_ll, r_nk, r_s2 = np.zeros(1), np.zeros(n_components), np.zeros(shape)
        r_shift = np.zeros((n_components, n_features))
    batch = (np.zeros((1, 2)), np.empty(n_components), np.empty((n_components, n_features)), np.empty(shape))
    cov_shape = shape if cov != SPHERICAL else (n_components, 1, 1)
    params = (np.empty(n_components), np.empty((n_components, n_features)), np.empty(cov_shape), np.empty_like(U),
              np.empty(n_components))
    plan = (block_size, staged_components(n_components, n_features, TILE), _static(cov, n_features),
            float(_passes.dense_live(covariance_type, n_features)))
    policy = (float(reg_covar), float(nk_eps), float(collapsed_weight), float(rounding))
    why = run(X, sample_weight if weighted else np.empty(0), weighted,
              (cov, means, np.ascontiguousarray(U, dtype=np.float64), np.ascontiguousarray(log_const, dtype=np.float64)),
              plan, policy, (float(eta), has_running, blocks), (batch, (r_ll, r_nk, r_s2, r_shift), params))
    ll_tw, nk, s1, s2 = batch
    statistics = (float(ll_tw[0, 0]), float(ll_tw[0, 1]), nk, s1, finish_s2(s2, covariance_type), means)
    if why == _NO_WEIGHT:
        return {"statistics": statistics, "running": None, "params": None}
    new_running = (float(r_ll[0]), 1.0, r_nk, np.zeros((n_components, n_features)), finish_s2(r_s2, covariance_type),
                   r_shift)
    new_params = None
    if why == _STEPPED:
        weights, new_means, covariances, new_U, _ = params
        new_params = (weights, new_means, from_3d(covariance_type, covariances), from_3d(covariance_type, new_U))
    return {"statistics": statistics, "running": new_running, "params": new_params}


# ------------------------------------------------------------------------------------- rows with missing entries


@njit(cache=True)
def _pattern_model(sigma, means, log_weights, obs, mis, pattern):
    """One pattern's model of its observed entries, into ``pattern`` ``(mu, U, log_const, Bm, C)``: per component
    the observed means (K, no), the upper factors ``U`` of Sigma_oo^-1 = U U^T (K, no, no) and the log-constants,
    as the complete rows' tiles take them (``_log_prob_tile``), ``Bm`` = U^T Sigma_om (K, no, nm), so that the
    conditional offsets of the missing entries are ``Bm^T U^T (x_o - mu_o)``, and ``C`` = Sigma_mm - Bm^T Bm
    (K, nm, nm), their conditional covariance. False when a Sigma_oo is not positive definite."""
    mu, U, log_const, Bm, C = pattern
    no, nm = obs.shape[0], mis.shape[0]
    S = np.empty((no, no))
    L = np.zeros((no, no))
    for k in range(means.shape[0]):
        for i in range(no):
            mu[k, i] = means[k, obs[i]]
            for j in range(no):
                S[i, j] = sigma[k, obs[i], obs[j]]
        if not _precision_factor(S, L, U[k]):
            return False
        log_det = 0.0
        for i in range(no):
            log_det += math.log(U[k, i, i])
        log_const[k] = log_weights[k] + log_det - 0.5 * no * math.log(2.0 * math.pi)
        for c in range(nm):
            for j in range(no):
                v = 0.0
                for i in range(j + 1):
                    v += U[k, i, j] * sigma[k, obs[i], mis[c]]
                Bm[k, j, c] = v
        for a in range(nm):
            for c in range(a, nm):
                v = sigma[k, mis[a], mis[c]]
                for j in range(no):
                    v -= Bm[k, j, a] * Bm[k, j, c]
                C[k, a, c] = v
    return True


@njit(cache=True, inline="always")  # called per live pair: no call (and no reference counts of its arrays)
def _stage_missing_row(k, t, rk, d, pattern, obs, mis, stage, z):
    """Stage row ``t`` of a tile for component ``k`` with responsibility ``rk`` (weight included): its offsets from
    the mean, the observed entries as they are and the missing ones ``Bm^T U^T (x_o - mu_o)`` (their conditional
    expectation less the mean)."""
    mu, U, _, Bm, _ = pattern
    staged, offsets, weights = stage
    no = obs.shape[0]
    column = staged[k]
    staged[k] = column + 1
    weights[k, column] = rk
    for i in range(no):
        offsets[k, obs[i], column] = d[i, t] - mu[k, i]
    for j in range(no):
        v = 0.0
        for i in range(j + 1):
            v += U[k, i, j] * (d[i, t] - mu[k, i])
        z[j] = v
    for c in range(mis.shape[0]):
        v = 0.0
        for j in range(no):
            v += Bm[k, j, c] * z[j]
        offsets[k, mis[c], column] = v


@njit(cache=True, fastmath=_REDUCE_MATH)
def _add_staged_moments(stage, rsum, block):
    """Add the staged rows of every component to its moments in ``block`` ``(nk, s1, s2)`` (s2's upper triangle);
    ``rsum`` collects the weight that takes the conditional covariance after the pattern."""
    staged, offsets, weights = stage
    nk, s1, s2 = block
    K, D = s1.shape
    for k in range(K):
        n = staged[k]
        if n == 0:
            continue
        r, E = weights[k], offsets[k]
        total = 0.0
        for t in range(n):
            total += r[t]
        nk[k] += total
        rsum[k] += total
        for i in range(D):
            acc = 0.0
            for t in range(n):
                acc += r[t] * E[i, t]
            s1[k, i] += acc
            for j in range(i, D):
                acc = 0.0
                for t in range(n):
                    acc += r[t] * E[i, t] * E[j, t]
                s2[k, i, j] += acc


@_SerialAndParallel
def _missing_statistics(X, w, weighted, model, layout, partials):
    """The one-pass statistics of rows with missing entries (NaN), per block of ``rows`` into ``partials``
    ``(ll_tw, nk, s1, s2)`` (s2 (K, D, D), upper triangle; about the means). ``model`` is ``(means, sigma,
    log_weights)`` with the dense covariances ``sigma`` (K, D, D); ``layout`` is ``(rows, starts, observed,
    block_size)``: the row numbers of X sorted by pattern, where each pattern's rows start (P + 1,), each pattern's
    observed columns (P, D) and the rows (of ``rows``) per block. A block makes each pattern's model of the observed
    entries once (``_pattern_model``), and then runs the complete rows' tile steps on them: log-probabilities
    (``_log_prob_tile``), the sparse E-step and the moments of the staged rows."""
    means, sigma, log_weights = model
    rows, starts, observed, block_size = layout
    ll_tw, nk, s1, s2 = partials
    D = X.shape[1]
    K = means.shape[0]
    T = TILE
    n_rows = rows.shape[0]
    for b in prange(ll_tw.shape[0]):
        y = np.empty((4, T))
        z = np.empty(D)
        lp = np.empty((K, T))
        rsum = np.empty(K)
        resp = _e_step_buffers(K, D, 1)[1]
        w_tile = np.empty(T)
        wt = np.empty(T)
        # Per component, the tile's rows it takes (offsets from its mean, D x rows) and their responsibilities,
        # added to the moments by dot products over the rows (vectorised) instead of row after row.
        staged = np.zeros(K, dtype=np.int64)
        stage = (staged, np.empty((K, D, T)), np.empty((K, T)))
        begin = b * block_size
        end = min(begin + block_size, n_rows)
        p = np.searchsorted(starts, begin, side="right") - 1
        r = begin
        while r < end:
            segment_end = min(starts[p + 1], end)
            obs = np.flatnonzero(observed[p])
            mis = np.flatnonzero(~observed[p])
            no, nm = obs.shape[0], mis.shape[0]
            pattern = (np.empty((K, no)), np.zeros((K, no, no)), np.empty(K), np.empty((K, no, nm)),
                       np.empty((K, nm, nm)))
            d = np.empty((no, T))  # of the pattern's width: the tile's loops know it
            if not _pattern_model(sigma, means, log_weights, obs, mis, pattern):
                ll_tw[b, 0] = np.nan  # not positive definite: the caller's statistics say so
                break
            rsum[:] = 0.0
            for t0 in range(r, segment_end, T):
                nt = min(T, segment_end - t0)
                for t in range(nt):  # row after row: each row's cache line is fetched once
                    row = rows[t0 + t]
                    for i in range(no):
                        d[i, t] = X[row, obs[i]]
                _log_prob_tile(d, nt, FULL, pattern[0], pattern[1], pattern[2], y, lp)
                # The sparse E-step of the complete rows' tiles: each row's best component and the other live ones.
                _live_components(lp, nt, resp)
                n_pairs = _responsibilities_sparse(lp, nt, resp)
                for t in range(nt):
                    w_tile[t] = w[rows[t0 + t]] if weighted else 1.0
                _add_log_likelihood(resp[0], resp[4], nt, w_tile, 0, weighted, wt, ll_tw[b])
                best, total = resp[1], resp[4]
                staged[:] = 0
                for t in range(nt):
                    if wt[t] != 0.0 and total[t] > 0.0:
                        _stage_missing_row(best[t], t, wt[t] / total[t], d, pattern, obs, mis, stage, z)
                pair_p, pair_k, pair_r = resp[5], resp[6], resp[8]
                for q in range(n_pairs):
                    t = pair_p[q]
                    if wt[t] != 0.0:
                        _stage_missing_row(pair_k[q], t, wt[t] * pair_r[q] / total[t], d, pattern, obs, mis, stage,
                                           z)
                _add_staged_moments(stage, rsum, (nk[b], s1[b], s2[b]))
            C = pattern[4]
            for k in range(K):
                for a in range(nm):
                    for c in range(a, nm):
                        s2[b, k, mis[a], mis[c]] += rsum[k] * C[k, a, c]
            r = segment_end
            p += 1


@_one_launch_at_a_time
def missing_statistics(X, sample_weight, means, covariances, log_weights, rows, starts, observed, block_size):
    """The one-pass statistics of the rows ``rows`` of X, which have missing entries (NaN), sorted by pattern (see
    ``_missing_statistics``); the compiled ``fastgmm._missing.observed_statistics``.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64
    sample_weight : ndarray of shape (n,) or None
    means : ndarray of shape (K, D)
    covariances : ndarray of shape (K, D, D)
        Dense, whatever the covariance type.
    log_weights : ndarray of shape (K,)
    rows : int64 ndarray
        Row numbers of X grouped by missingness pattern.
    starts : int64 ndarray of shape (P + 1,)
        Where each pattern's rows start in ``rows``, and their end.
    observed : bool ndarray of shape (P, D)
        Each pattern's observed columns; at least one per pattern.
    block_size : int
        Rows (of ``rows``) per block; the blocks depend on these arguments only, so the result on the thread
        count not at all.

    Returns
    -------
    log_likelihood, total_weight : float
    nk : (K,), s1 : (K, D), s2 : (K, D, D)
        About ``means``; s2 symmetric.
    """
    n_components, n_features = means.shape
    weighted = sample_weight is not None
    w = np.ascontiguousarray(sample_weight, dtype=np.float64) if weighted else np.empty(0)
    model = (np.ascontiguousarray(means, dtype=np.float64), np.ascontiguousarray(covariances, dtype=np.float64),
             np.ascontiguousarray(log_weights, dtype=np.float64))
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    observed = np.ascontiguousarray(observed, dtype=np.bool_)

    def fill(block_rows, ll_tw, nk, s1, s2):
        # A round's patterns: ``starts`` moved to the round's first row (a pattern cut there is factored again).
        local = np.clip(starts - block_rows.start, 0, block_rows.stop - block_rows.start)
        work = (block_rows.stop - block_rows.start) * n_components * (n_features + 1) ** 2
        _missing_statistics(work, X, w, weighted, model, (rows[block_rows], local, observed, block_size),
                            (ll_tw, nk, s1, s2))

    shapes = [(2,), (n_components,), (n_components, n_features), (n_components, n_features, n_features)]
    ll_tw, nk, s1, s2 = reduce_in_rounds(fill, len(rows), block_size, shapes, get_num_threads())
    ll, tw = ll_tw
    return ll, tw, nk, s1, finish_s2(s2, "full")


# Every compiled function of the module saves into the cache under the lock: callees too, whose cached code the
# kernels that call them load at their own compilation.
for _function in list(globals().values()) + list(_KERNELS.values()):
    if isinstance(_function, Dispatcher):
        _lock_cache_writes(_function)
del _function
