"""The package version, alone in its module so that the build reads it without importing fastgmm."""

__version__ = "0.1.0.dev0"
