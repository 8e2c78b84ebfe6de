"""numba kernels: arrays in, arrays out. Nothing here knows about estimators."""

from .estep import (
    DIAG,
    FULL,
    TIED,
    estep_rows,
    estep_rows_serial,
    estep_stats,
    estep_stats_serial,
)

__all__ = [
    "FULL",
    "TIED",
    "DIAG",
    "estep_stats",
    "estep_stats_serial",
    "estep_rows",
    "estep_rows_serial",
]
