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

    from ._backends import auto_summary, backend_status, get_backend

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
    print(f"     auto: {auto_summary()}")
    summaries = {name: get_backend(name).runtime_summary() for name, reason in status.items() if reason is None}
    for name, summary in summaries.items():
        if "cache" in summary:
            print(f"  {name + ' cache':>13}: {summary['cache']}")
    print("\nThreads:")
    for name, summary in summaries.items():
        if "threads" in summary:
            print(f"  {name:>7}: {summary['threads']}")
    for pool in threadpool_info():
        print(f"  {pool['user_api']:>7}: {pool['num_threads']} ({pool['internal_api']} {pool.get('version') or ''})")
