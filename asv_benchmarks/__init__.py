"""asv benchmarks for fastmix (run from the repository root: ``asv run``)."""
