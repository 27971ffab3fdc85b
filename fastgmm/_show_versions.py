"""``fastgmm.show_versions()``: what a bug report needs (versions, backends and why, threads, BLAS)."""

import platform
import sys
from importlib.metadata import PackageNotFoundError, version


def _versions():
    found = {}
    for package in ("fastgmm", "numpy", "scipy", "scikit-learn", "numba", "llvmlite", "tbb", "Cython", "threadpoolctl",
                    "tqdm", "matplotlib", "pyarrow", "dask", "distributed", "skl2onnx", "onnxruntime"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def show_versions():
    """Print the versions of fastgmm and its dependencies, every backend (usable or not, and why), the backend
    ``backend='auto'`` picks, the default thread counts and the BLAS libraries."""
    import os

    from threadpoolctl import threadpool_info

    from ._auto_backend import AutoBackend
    from ._backends import backend_status, get_backend

    print("\nSystem:")
    print(f"    python: {sys.version.split()[0]} ({sys.executable})")
    print(f"  platform: {platform.platform()}")
    print(f"      cpus: {os.cpu_count()}")
    print("\nPython dependencies:")
    for package, found in _versions().items():
        print(f"  {package:>13}: {found or 'not installed'}")
    status = backend_status()
    print("\nBackends:")
    for name, reason in status.items():
        print(f"  {name:>7}: {'usable' if reason is None else 'not usable: ' + reason}")
    try:
        auto = get_backend("auto")
        if isinstance(auto, AutoBackend):
            print("     auto: numba where compiled (in memory or in Numba's cache), else cython while a background "
                  "process compiles numba's")
        else:
            print(f"     auto: {auto.NAME}")
    except RuntimeError as exc:
        print(f"     auto: {exc}")
    if status["numba"] is None:
        print(f"    numba cache: {_numba_cache()}")
    print("\nThreads:")
    if status["numba"] is None:
        import numba

        try:
            in_use = f", in use: {numba.threading_layer()}"
        except ValueError:  # no parallel kernel has run yet in this process
            in_use = ""
        print(f"    numba: {numba.get_num_threads()} (threading layer {numba.config.THREADING_LAYER}{in_use})")
    if status["cython"] is None:
        from .kernels import _cython

        print(f"   cython: {_cython.max_threads()} (OpenMP {'on' if _cython.OPENMP else 'off: built without it'})")
    for pool in threadpool_info():
        print(f"  {pool['user_api']:>7}: {pool['num_threads']} ({pool['internal_api']} {pool.get('version') or ''})")


def _numba_cache():
    """Where Numba caches fastgmm's kernels, and whether it can write there."""
    import os

    from .kernels import numba_

    path = numba_._accumulate.parallel._cache._cache_path
    probe = path
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.access(probe, os.W_OK):
        return f"{path} (writable)"
    return (f"{path} (not writable: every process compiles again; set NUMBA_CACHE_DIR to a writable directory, or "
            f"run `fastgmm warmup` where it is writable)")
