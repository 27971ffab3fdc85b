"""Build script. Metadata lives in pyproject.toml; this file exists for the compiled extensions, which the Cython
backend adds. Until then it builds the pure-Python package."""

from setuptools import setup

setup()
