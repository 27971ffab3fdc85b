"""The EM loop: one pass of statistics per iteration, the M-step from them, and the stopping rule.

It runs exactly scikit-learn's sequence: the pass under the current parameters yields their mean log-likelihood
(the lower bound of the iteration) and the statistics of the next parameters; EM stops when the lower bound
changes by less than ``tol``. It knows nothing of backends or of where the data live. A component that collapses
is re-seeded (``fastgmm._collapse``).
"""

import math
import time
from dataclasses import dataclass, field
from functools import partial

from ._collapse import FUSED_LIMITS, m_step
from ._parameters import MixtureParameters, Statistics


@dataclass(frozen=True)
class EMResult:
    """Outcome of one EM run.

    Attributes
    ----------
    params : MixtureParameters
        Parameters after the last M-step.
    lower_bound : float
        Lower bound of the last iteration (-inf when no iteration ran).
    lower_bounds : list of float
        Lower bound of every iteration.
    converged : bool
    n_iter : int
    reseeded : list of (int, int)
        ``(iteration, components re-seeded)`` for every iteration whose M-step re-seeded collapsed components.
    """

    params: object
    lower_bound: float
    lower_bounds: list
    converged: bool
    n_iter: int
    reseeded: list = field(default_factory=list)


def run_em(source, backend, params, *, reg_covar, tol, max_iter, lower_bound=-math.inf, on_iteration=None,
           update=None):
    """Iterate EM, or another algorithm of one pass and one update per iteration, from ``params``.

    Parameters
    ----------
    source : data source
        Provides ``statistics(backend, params)``.
    backend : kernel module
    params : MixtureParameters
        Starting point.
    reg_covar, tol : float
    max_iter : int
    lower_bound : float, default=-inf
        Lower bound of the starting point, for a warm start.
    on_iteration : callable, optional
        Called as ``on_iteration(n_iter, lower_bound, change)`` after each iteration.
    update : callable, optional
        ``update(stats, params) -> (new_params, lower_bound)``: the step after each pass, in place of EM's M-step
        with its collapse policy (the variational mixture's); its lower bound is the one ``tol`` watches.

    Returns
    -------
    EMResult
    """
    if max_iter == 0:
        return EMResult(params, -math.inf, [], False, 0)
    fused = getattr(source, "em_iterations", None) if on_iteration is None and update is None else None
    lower_bounds = []
    reseeded = []
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        previous = lower_bound
        run = None if fused is None else fused(backend, params, reg_covar=reg_covar, tol=tol,
                                                max_iter=max_iter - n_iter, lower_bound=lower_bound, **FUSED_LIMITS)
        if run is None:
            fused = None  # not taken for this source and backend: not asked again
            stats = source.statistics(backend, params)
        else:
            # Iterations made in one compiled call, with the same E-step and M-step; it hands back the statistics
            # of an iteration whose M-step needs the collapse policy.
            bounds = run["lower_bounds"]
            if run["params"] is not None:
                params = MixtureParameters(params.covariance_type, *run["params"])
            if run["statistics"] is None:
                lower_bounds += bounds
                n_iter += len(bounds)
                lower_bound = bounds[-1]
                converged = run["converged"]
                if converged:
                    break
                continue
            lower_bounds += bounds[:-1]
            n_iter += len(bounds) - 1
            previous = bounds[-2] if len(bounds) > 1 else previous
            stats = Statistics(*run["statistics"])
        n_iter += 1
        if update is None:
            lower_bound = stats.mean_log_likelihood
            params, count, moved = m_step(
                stats, params.covariance_type, reg_covar, partial(source.worst_explained, backend, params)
            )
        else:
            params, lower_bound = update(stats, params)
            count, moved = 0, False
        if count:
            reseeded.append((n_iter, count))
        lower_bounds.append(lower_bound)
        change = lower_bound - previous
        if on_iteration is not None:
            on_iteration(n_iter, lower_bound, change)
        # Components just moved have not been through an E-step: never stop on them.
        if abs(change) < tol and not moved:
            converged = True
            break
    return EMResult(params, lower_bound, lower_bounds, converged, n_iter, reseeded)


class VerbosePrinter:
    """scikit-learn's ``verbose`` messages: 1 names initialisations and iterations, 2 adds times and changes."""

    def __init__(self, verbose, verbose_interval):
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    def init_begin(self, init):
        if self.verbose >= 1:
            print(f"Initialization {init}")
            self._init_start = self._iter_start = time.perf_counter()

    def iteration_end(self, n_iter, lower_bound, change):
        if self.verbose < 1 or n_iter % self.verbose_interval:
            return
        if self.verbose == 1:
            print(f"  Iteration {n_iter}")
        else:
            now = time.perf_counter()
            print(f"  Iteration {n_iter}\t time lapse {now - self._iter_start:.5f}s\t ll change {change:.5f}")
            self._iter_start = now

    def init_end(self, lower_bound, converged):
        message = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {message}.")
        elif self.verbose >= 2:
            elapsed = time.perf_counter() - self._init_start
            print(f"Initialization {message}. time lapse {elapsed:.5f}s\t lower bound {lower_bound:.5f}.")
