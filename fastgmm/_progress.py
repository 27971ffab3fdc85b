"""Reporting EM's progress while it runs: a tqdm bar with the current lower bound on a terminal, and the user's
per-iteration callback."""

import sys

# Seconds before the bar appears: fits quicker than this print nothing.
DELAY = 1.0
# Seconds between two redraws at most (tqdm's default).
MININTERVAL = 0.1


class Progress:
    """Per-iteration reports of one fit.

    Parameters
    ----------
    progress : bool or 'auto'
        Show a tqdm progress bar on stderr: 'auto' only when stderr is a terminal. The bar appears after one second,
        so quick fits print nothing.
    callback : callable or None
        Called after every EM iteration with a dict: ``init`` (0-based), ``iteration`` (1-based), ``lower_bound``
        and ``change`` (of the lower bound since the previous iteration).
    n_init, max_iter : int
    """

    def __init__(self, progress, callback, n_init, max_iter):
        self.callback = callback
        self.max_iter = max_iter
        self.bar = None
        show = sys.stderr is not None and sys.stderr.isatty() if progress == "auto" else bool(progress)
        if show and max_iter > 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n_init * max_iter, desc="EM", unit="it", delay=DELAY, leave=False, file=sys.stderr,
                            mininterval=MININTERVAL)

    @property
    def active(self):
        """Whether anything is reported per iteration (a bar or a callback)."""
        return self.bar is not None or self.callback is not None

    def iteration(self, init, n_iter, lower_bound, change):
        if self.bar is not None:
            self.bar.set_postfix(lower_bound=f"{lower_bound:.6g}", init=init, refresh=False)
            # update(), not a refresh: the bar keeps its one-second delay.
            self.bar.update(init * self.max_iter + n_iter - self.bar.n)
        if self.callback is not None:
            self.callback({"init": init, "iteration": n_iter, "lower_bound": lower_bound, "change": change})

    def close(self):
        if self.bar is not None:
            self.bar.close()
