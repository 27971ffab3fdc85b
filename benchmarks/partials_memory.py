"""Peak memory of one statistics pass at large K D^2 (full covariances), where the per-block partial statistics are
the largest buffers: they are filled a bounded round of blocks at a time (``fastgmm/kernels/_passes.py``).

    python benchmarks/partials_memory.py numba      # or cython

Prints the process's peak resident memory after one pass over N=100,000 rows, D=512, K=16 (X itself is 391 MiB;
one block's partial s2 is 32 MiB, 25 blocks), the seconds of the pass and its log-likelihood.
"""

import resource
import sys
import time

import numpy as np

from fastgmm._backends import get_backend
from fastgmm._parameters import MixtureParameters, precision_cholesky_from_covariances
from fastgmm.sources.blocks import statistics_block_size


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "numba"
    n, d, k = 100_000, 512, 16
    X = np.random.RandomState(0).standard_normal((n, d))
    # Any valid model does: the pass's memory depends on K and D only. Unit covariances about random means.
    covariances = np.repeat(np.eye(d)[None], k, axis=0)
    params = MixtureParameters("full", np.full(k, 1.0 / k), np.random.RandomState(1).uniform(-1, 1, size=(k, d)),
                               covariances, precision_cholesky_from_covariances(covariances, "full"))
    kernel = get_backend(name)
    args = params.kernel_arguments()
    kernel.accumulate(X[:5000], None, *args, statistics_block_size(5000))  # compile or load the kernels
    start = time.perf_counter()
    result = kernel.accumulate(X, None, *args, statistics_block_size(n))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name}: peak RSS {peak:.0f} MiB (X is {X.nbytes / 2**20:.0f} MiB), {time.perf_counter() - start:.1f} s, "
          f"log-likelihood {result[0]:.6e}")


if __name__ == "__main__":
    main()
