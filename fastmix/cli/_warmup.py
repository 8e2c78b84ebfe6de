"""Compile (or load from numba's cache) the kernels a timed fit will use, before timing it.

``fastmix demo`` and ``fastmix bench`` report seconds of fitting; without this
the first fit would also carry numba's compilation.
"""

import warnings

import numpy as np

from .._synthetic import explicit_init

# Measured on the 2-core development machines (both cores shared), empty
# NUMBA_CACHE_DIR: a first default fit 37 s, the first demo 38-40 s on Zen 4/5
# (benchmarks/compile_profile.py), the demo 59-61 s on a Zen 3 without AVX-512
# (benchmarks/first_run.py), 70-78 s on another day's Zen 3 (the same with
# the previous session's tree, run alternately) and 87-92 s on a third, with
# the machine loaded (README's first command, fresh venv); a second run 0.1 s.
FIRST_RUN_SECONDS = "40-100"


def _main_kernels():
    from .._kernels import estep, kmeans

    return (
        estep.estep_stats, estep.estep_stats_serial, estep.estep_rows, estep.estep_rows_serial,
        kmeans.seed_trial, kmeans.lloyd_pass, kmeans.column_moments,
    )  # fmt: skip


def main_kernels_cached():
    """Whether any of the main kernels has a current on-disk cache entry.

    Any of them cached: not a first run (a run needing a kernel its
    predecessors did not, e.g. another dtype, compiles only that one).
    """
    from .. import _numba

    return any(_numba.is_cached(k) for k in _main_kernels())


def first_run_note(prog, stream):
    """Say, before anything compiles, that the kernels will be compiled now.

    Printed when none of the main kernels has a current on-disk cache entry
    (a first run, a new fastmix or numba version, caching switched off).
    """
    import numba

    from .. import _numba

    if numba.config.DISABLE_JIT or main_kernels_cached():
        return  # nothing will compile
    if not _numba._cache_wanted():
        when = "every run: FASTMIX_NUMBA_CACHE is off"
    elif not any(_numba.can_cache(k) for k in _main_kernels()):
        # jit found no writable cache folder (a read-only install and HOME).
        when = "every run: no writable cache folder; set NUMBA_CACHE_DIR to one"
    else:
        when = "first run only"
    print(
        f"{prog}: compiling fastmix kernels ({when}, ~{FIRST_RUN_SECONDS} s)",
        file=stream,
        flush=True,
    )


def warm_kernels(
    covariance_types, dtype, n_features, n_components, seed=0, sizes=None, predict=True,
    kmeans=False,
):  # fmt: skip
    """Compile (or load from numba's cache) the kernels a fit will use, on tiny inputs.

    By default two sizes, because a fit hands small blocks (a pass's last one,
    say) to a serial kernel and larger blocks to its parallel twin: both must
    be ready before anything is timed. The larger size is one the driver runs
    in parallel for this shape (``parallel_rows``). ``fit`` (and ``predict``
    unless told not to) runs on each.

    Parameters
    ----------
    covariance_types : list of str
    dtype : numpy dtype
    n_features, n_components : int
    seed : int, default=0
    sizes : tuple of int, optional
        Rows of the tiny inputs; default ``max(2 * n_components, 64)`` and
        the most of 4096 and every type's ``parallel_rows``.
    predict : bool, default=True
        Also warm the per-row kernels of ``predict``.
    kmeans : bool, default=False
        Also warm the k-means kernels of the default ``init_params='kmeans'``.
    """
    from .. import GaussianMixture

    if sizes is None:
        from .._sources._driver import parallel_rows
        from .._stats import COV_CODES

        parallel = max(
            parallel_rows(n_components, n_features, COV_CODES[t]) for t in covariance_types
        )
        sizes = (max(2 * n_components, 64), max(4096, parallel))
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_rows in sizes:
            X = rng.standard_normal((n_rows, n_features)).astype(dtype)
            init = explicit_init(X, n_components, covariance_types, seed)
            for cov_type in covariance_types:
                gm = GaussianMixture(
                    n_components, covariance_type=cov_type, max_iter=1, tol=0.0, **init[cov_type]
                )
                gm.fit(X)
                if predict:
                    gm.predict(X)
            if kmeans:
                GaussianMixture(n_components, max_iter=0, random_state=seed).fit(X)
