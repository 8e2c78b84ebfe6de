"""numba kernels: arrays in, arrays out. Nothing here knows about estimators."""

from .estep import (
    _GROUP,
    DIAG,
    FULL,
    TIED,
    estep_rows,
    estep_rows_serial,
    estep_stats,
    estep_stats_serial,
)

# Chunks per reduction group: a block whose length is a whole number of groups
# ends on a group boundary, so how a pass is cut into blocks does not change
# its sums.
GROUP_CHUNKS = _GROUP

__all__ = [
    "GROUP_CHUNKS",
    "FULL",
    "TIED",
    "DIAG",
    "estep_stats",
    "estep_stats_serial",
    "estep_rows",
    "estep_rows_serial",
]
