"""Numba compilations made by another process, so that no call waits for them.

The 'auto' backend (``fastgmm._auto_backend``) asks for the kernels it found neither compiled nor in Numba's
on-disk cache; a child process (``python -m fastgmm._background_compile``, at the lowest CPU priority) compiles
them into that cache, where later calls, in this process or the next, load them. A thread would not do: Numba
holds the GIL while it compiles (tens of seconds for a fresh cache), which would stall the very calls this spares.

One child runs at a time; what is asked meanwhile waits for the next one. The child outlives its parent, so a short
script still leaves its kernels compiled for the next run. ``FASTGMM_BACKGROUND_COMPILE=0`` turns all of this off
(the 'auto' backend then compiles in the calling process, at first use).
"""

import atexit
import os
import pickle
import subprocess
import sys
import threading

_lock = threading.Lock()
_pending = {}  # (kernel, signature) -> None, in request order
_asked = set()  # every request of this process: each is sent once
_running = None  # the Popen of the child at work
_worker = None  # the thread that waits for it and starts the next one
_idle = threading.Event()
_idle.set()


def enabled():
    """Whether calls may hand compilations to a background process (``FASTGMM_BACKGROUND_COMPILE`` is not 0)."""
    return os.environ.get("FASTGMM_BACKGROUND_COMPILE", "1").strip().lower() not in ("0", "false", "no", "off")


def request(kernel, signature):
    """Have ``kernel`` (``fastgmm.kernels.numba_.NotCompiled.kernel``) compiled for ``signature`` in the
    background; a repeated request is ignored."""
    global _worker
    with _lock:
        if (kernel, signature) in _asked:
            return
        _asked.add((kernel, signature))
        _pending[(kernel, signature)] = None
        _idle.clear()
        if _worker is None:
            _worker = threading.Thread(target=_serve, name="fastgmm-background-compile", daemon=True)
            _worker.start()


def _spawn(batch):
    """Start a child compiling ``batch``, detached (its own session: it survives its parent and the parent's
    terminal signals)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "fastgmm._background_compile"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        child.stdin.write(pickle.dumps(batch))
        child.stdin.close()
    except OSError:  # the child died at start; its kernels will be asked for again by the next process
        pass
    return child


def _serve():
    global _running, _worker
    while True:
        with _lock:
            batch = list(_pending)
            _pending.clear()
            if not batch:
                _running = _worker = None
                _idle.set()
                return
        try:
            child = _spawn(batch)
        except OSError:  # no process can be started here: the kernels stay uncompiled, 'auto' serves on
            continue
        with _lock:
            _running = child
        child.wait()


def busy():
    """Whether a compilation asked for by this process is still to be done."""
    return not _idle.is_set()


def wait(timeout=None):
    """Block until every requested compilation is done (True), or ``timeout`` seconds have passed (False)."""
    return _idle.wait(timeout)


def _start_what_is_pending():
    """At exit: a last child for the requests no child has taken yet (the waiting thread dies with the
    interpreter)."""
    with _lock:
        batch = list(_pending)
        _pending.clear()
    if batch:
        try:
            _spawn(batch)
        except OSError:
            pass


def _forget_in_child():
    """A forked child has none of its parent's threads or children: it starts with no requests."""
    global _lock, _running, _worker, _idle
    _lock = threading.Lock()
    _pending.clear()
    _asked.clear()
    _running = _worker = None
    _idle = threading.Event()
    _idle.set()


atexit.register(_start_what_is_pending)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def main():
    """The child: compile each (kernel, signature) read from stdin, at the lowest priority."""
    try:
        os.nice(19)
    except (AttributeError, OSError):
        pass
    batch = pickle.loads(sys.stdin.buffer.read())
    from .kernels import numba_

    for kernel, signature in batch:
        try:
            numba_.compile_kernel(kernel, signature)
        except Exception:  # noqa: BLE001 - one failed compilation must not cost the others
            pass


if __name__ == "__main__":
    main()
