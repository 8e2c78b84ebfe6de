"""numba kernels: arrays in, arrays out. Nothing here knows about estimators."""

from .estep import DIAG, FULL, TIED, estep_rows, estep_stats

__all__ = ["FULL", "TIED", "DIAG", "estep_stats", "estep_rows"]
