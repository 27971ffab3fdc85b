"""Helpers for tests that need a process of their own (a fresh interpreter, an import order, a blocked module)."""

import subprocess
import sys


def run_python(code, timeout=600):
    """Run ``code`` in a new interpreter of this environment; its stripped stdout, or AssertionError with stderr.

    The timeout makes a hang fail the test instead of blocking the suite.
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
