"""The data-source layer (issue 11): one interface, one block driver, shared passes.

A pass takes a list of parameter sets so that several models share one read
of the data; each set's statistics must equal those of a pass of its own,
bitwise, on every kind of source. The layers point down: nothing below the
estimators imports them.
"""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import COV_TYPES, assert_stats_close, fit_quiet

import fastmix
from fastmix import GaussianMixture
from fastmix._kernels import GROUP_CHUNKS
from fastmix._sources import ArraySource, BlockSource, block_rows
from fastmix._sources._driver import CHUNK_ROWS, pass_rows

PACKAGE = pathlib.Path(fastmix.__file__).parent


def _data(n=5000, n_features=4, seed=0):
    rng = np.random.RandomState(seed)
    centres = 5.0 * rng.randn(6, n_features)
    X = centres[rng.randint(0, 6, size=n)] + rng.randn(n, n_features)
    return X, rng.uniform(0.0, 2.0, size=n)


def _params(X, n_components, covariance_type, seed):
    """Kernel inputs of a model fitted briefly: realistic, distinct parameter sets."""
    gm = GaussianMixture(
        n_components, covariance_type=covariance_type, max_iter=2, random_state=seed
    )
    return fit_quiet(gm, X)._kernel_params(X.dtype)


def _assert_stats_equal(a, b):
    assert_stats_close(a, b, rtol=0)


@pytest.fixture(scope="module")
def shared_case():
    X, w = _data()
    params = [
        _params(X, k, cov, seed)
        for seed, (k, cov) in enumerate([(1, "full"), (3, "tied"), (7, "diag"), (2, "spherical")])
    ]
    return X, w, params


@pytest.mark.parametrize("weighted", [False, True])
def test_shared_pass_equals_separate_passes_in_memory(shared_case, weighted):
    X, w, params = shared_case
    source = ArraySource(X, w if weighted else None)
    together = source.estep_pass(params)
    assert len(together) == len(params)
    for p, got in zip(params, together, strict=True):
        _assert_stats_equal(got, source.estep_pass([p])[0])


def test_shared_pass_reads_a_memmap_once(shared_case, tmp_path):
    """One pass for four models reads each block of the file once, and each
    model's statistics are bitwise those of its own pass."""
    X, w, params = shared_case
    path = os.fspath(tmp_path / "x.npy")
    np.save(path, X)
    source = BlockSource(np.load(path, mmap_mode="r"), X.dtype, sample_weight=w)
    reads = []
    read = source._read
    source._read = lambda start, stop: reads.append((start, stop)) or read(start, stop)
    together = source.estep_pass(params)
    assert sum(stop - start for start, stop in reads) == len(X)
    for p, got in zip(params, together, strict=True):
        _assert_stats_equal(got, ArraySource(X, w).estep_pass([p])[0])


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_pass_does_not_depend_on_the_block_length(covariance_type):
    """Blocks of whole reduction groups: any such block length gives bitwise
    the same statistics (what lets candidates of different K share a read)."""
    X, w = _data(n=3 * GROUP_CHUNKS * CHUNK_ROWS + 777)
    (p,) = [_params(X, 3, covariance_type, 0)]
    source = ArraySource(X, w)
    group = GROUP_CHUNKS * CHUNK_ROWS
    base = source.estep_pass([p], rows_per_block=group)[0]
    for rows in (2 * group, 3 * group, 10 * group):
        _assert_stats_equal(source.estep_pass([p], rows_per_block=rows)[0], base)


@pytest.mark.parametrize(("n_components", "n_features"), [(1, 1), (16, 16), (256, 64), (7, 200)])
def test_block_rows_are_whole_reduction_groups(n_components, n_features):
    from fastmix._kernels import DIAG, FULL, TIED

    for code in (FULL, TIED, DIAG):
        assert block_rows(n_components, n_features, code) % (GROUP_CHUNKS * CHUNK_ROWS) == 0
    X = np.zeros((2, n_features))
    small = _params_stub(X, 1)
    large = _params_stub(X, n_components)
    want = min(block_rows(1, n_features, DIAG), block_rows(n_components, n_features, DIAG))
    assert pass_rows([small, large]) == want


def _params_stub(X, n_components):
    from fastmix._kernels import DIAG
    from fastmix._stats import KernelParams

    n_features = X.shape[1]
    shift = np.zeros((n_components, n_features))
    ones = np.ones((n_components, n_features))
    return KernelParams.build(DIAG, shift, ones, np.zeros(n_components), X.dtype)


# ----------------------------------------------------------------- layering
# Layer of each module (ARCHITECTURE.md): an import may only point to a layer
# at or below its own.
_LAYERS = {
    "_numba": 0,
    "_kernels": 1,
    "_stats": 2,
    "_update": 2,
    "_variational": 2,
    "_predictive": 2,
    "_validation": 2,
    "_kmeans": 2,
    "_synthetic": 2,
    "_sources": 3,
    "_format": 3,
    "_progress": 3,
    "_blas": 3,
    "_base": 4,
    "_selection": 4,
    "_gaussian_mixture": 4,
    "_bayesian_mixture": 4,
    "_io": 5,
    "plot": 5,
    "cli": 5,
    "__main__": 5,
}


def _fastmix_imports(path):
    """The first-level fastmix modules that ``path`` imports (at any depth of its code)."""
    module_parts = path.relative_to(PACKAGE).with_suffix("").parts
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "fastmix" and len(parts) > 1:
                    found.add(parts[1])
                continue
            base = list(module_parts[: len(module_parts) - node.level])
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
            else:  # from . import name
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "fastmix" and len(parts) > 1:
                    found.add(parts[1])
    return found


def _own_layer(path):
    first = path.relative_to(PACKAGE).with_suffix("").parts[0]
    return first, _LAYERS.get(first)


def test_layers_point_down():
    """No kernel, update, source or format module imports an estimator, the
    model-file reader or the command line."""
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name, layer = _own_layer(path)
        if name == "__init__":
            continue  # the package's lazy public names
        assert layer is not None, f"{path.name}: give this module a layer in _LAYERS"
        for target in _fastmix_imports(path):
            target_layer = _LAYERS.get(target, -1 if target == "__version__" else None)
            if target_layer is not None and target_layer > layer:
                offences.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert offences == []


def test_no_duck_typed_dispatch_between_layers():
    """The estimators hold a DataSource; nothing asks ``hasattr(X, 'estep_...')``."""
    for path in PACKAGE.rglob("*.py"):
        assert 'hasattr(X, "estep' not in path.read_text(), path


def test_saving_does_not_import_the_reader():
    """``model.save`` writes through fastmix._format; the reader (which imports
    both estimators to rebuild them) stays unimported, so there is no cycle."""
    code = textwrap.dedent(
        """
        import sys, tempfile, os
        import numpy as np
        from fastmix._gaussian_mixture import GaussianMixture
        gm = GaussianMixture(2, random_state=0).fit(np.random.RandomState(0).randn(50, 2))
        gm.save(os.path.join(tempfile.mkdtemp(), "m.npz"))
        assert "fastmix._io" not in sys.modules, "save imported the reader"
        assert "fastmix._bayesian_mixture" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_fastmix_save_beside_load(tmp_path):
    X, _ = _data(n=300)
    gm = GaussianMixture(2, random_state=0).fit(X)
    path = tmp_path / "m.npz"
    fastmix.save(gm, path)
    assert "save" in fastmix.__all__
    np.testing.assert_array_equal(fastmix.load(path).score_samples(X), gm.score_samples(X))
