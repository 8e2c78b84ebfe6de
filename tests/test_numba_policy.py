"""numba policy: nothing compiles at import, and the disk cache never breaks an install."""

import ctypes
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from conftest import fit_quiet, frozen_copy, read_only, run_python, three_blobs
from sklearn.base import clone

from fastmix import BayesianGaussianMixture, GaussianMixture, _numba
from fastmix._kernels import estep, kmeans, labels, update, variational


def _run(code, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=600,
    )


def test_import_compiles_nothing_and_stays_light():
    out = _run(
        """
        import sys
        import fastmix
        from fastmix._kernels import estep
        compiled = [n for n, f in vars(estep).items()
                    if hasattr(f, "signatures") and f.signatures]
        heavy = [m for m in ("sklearn.cluster", "matplotlib", "dask") if m in sys.modules]
        print(compiled, heavy)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


def test_bare_import_loads_neither_numba_nor_sklearn():
    """``import fastmix`` is light; the public names still resolve on access."""
    out = _run(
        """
        import sys
        import fastmix
        heavy = sorted(m for m in ("numba", "sklearn", "scipy") if m in sys.modules)
        from fastmix import *
        import fastmix._gaussian_mixture as g
        print(heavy, GaussianMixture is g.GaussianMixture,
              callable(load), BayesianGaussianMixture.__name__,
              "GaussianMixture" in dir(fastmix))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] True True BayesianGaussianMixture True"
    missing = _run("import fastmix; fastmix.GausianMixture")
    assert "has no attribute 'GausianMixture'" in missing.stderr


def test_cache_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("FASTMIX_NUMBA_CACHE", "0")

    def twice(x):
        return 2 * x

    disp = _numba.jit(twice)
    assert type(disp._cache).__name__ == "NullCache"
    assert not _numba.can_cache(disp)
    assert disp(21) == 42


_PURE_PYTHON_FITS = """
import inspect, json, sys, warnings
import numpy as np
from fastmix import BayesianGaussianMixture, GaussianMixture
from fastmix._kernels import estep
X = np.load(sys.argv[1])
out = {"python": inspect.isfunction(estep.estep_stats)}
warnings.simplefilter("ignore")
for cov in ("full", "tied", "diag", "spherical"):
    for cls in (GaussianMixture, BayesianGaussianMixture):
        m = cls(n_components=3, covariance_type=cov, max_iter=3, random_state=0).fit(X)
        out[cls.__name__ + " " + cov] = [float(m.lower_bound_), m.means_.tolist()]
print(json.dumps(out))
"""


def test_numba_disable_jit_runs_the_kernels_as_python(tmp_path):
    """numba's debugging switch, NUMBA_DISABLE_JIT=1: fastmix imports, its kernels
    run as the Python they are written in, and fits agree with the compiled ones
    (it raised AttributeError at import, where the on-disk cache was set up)."""
    X = three_blobs(n_per=30, n_features=2)
    np.save(tmp_path / "X.npy", X)
    got = run_python(_PURE_PYTHON_FITS, str(tmp_path / "X.npy"), env={"NUMBA_DISABLE_JIT": "1"})
    assert got.pop("python") is True
    for key, (bound, means) in got.items():
        name, cov = key.split()
        cls = {
            "GaussianMixture": GaussianMixture,
            "BayesianGaussianMixture": BayesianGaussianMixture,
        }
        m = fit_quiet(
            cls[name](n_components=3, covariance_type=cov, max_iter=3, random_state=0), X
        )
        np.testing.assert_allclose(bound, m.lower_bound_, rtol=1e-9, err_msg=key)
        np.testing.assert_allclose(means, m.means_, rtol=1e-9, atol=1e-12, err_msg=key)


def test_no_cache_locator_falls_back_to_uncached(monkeypatch):
    """numba raises at decoration when no cache directory is writable; jit must not."""
    real_njit = numba.njit

    def njit_without_locator(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file")
        return real_njit(*args, cache=cache, **kwargs)

    monkeypatch.setenv("FASTMIX_NUMBA_CACHE", "1")
    monkeypatch.setattr(numba, "njit", njit_without_locator)

    def plus_one(x):
        return x + 1

    disp = _numba.jit(plus_one)
    assert type(disp._cache).__name__ == "NullCache"
    assert not _numba.can_cache(disp)  # what the CLI's first-run note reads
    assert disp(41) == 42


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None,
    reason="needs root to make a read-only bind mount",
)
def test_read_only_install_imports_loads_and_predicts(tmp_path):
    """A package directory and HOME on a read-only file system: import, load and
    predict work, their kernel compiled uncached. Every kernel is declared
    through the same ``jit``, so one stands for all (a fit's would cost 45 s)."""
    import fastmix

    src = tmp_path / "src"
    ro = tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    shutil.copytree(
        os.path.dirname(fastmix.__file__),
        src / "fastmix",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    X = np.random.default_rng(0).normal(size=(600, 2))
    model = tmp_path / "model.npz"
    fitted = fastmix.GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    fitted.save(model)
    np.save(tmp_path / "X.npy", X)
    if subprocess.run(["mount", "--bind", str(src), str(ro)]).returncode != 0:
        pytest.skip("bind mounts are not permitted here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)]).returncode != 0:
            pytest.skip("read-only remount is not permitted here")
        out = _run(
            f"""
            import sys
            sys.path.insert(0, {str(ro)!r})
            import numpy as np
            import fastmix
            assert fastmix.__file__.startswith({str(ro)!r}), fastmix.__file__
            X = np.load({str(tmp_path / "X.npy")!r})
            print(fastmix.load({str(model)!r}).score_samples(X).tolist())
            """,
            env={
                "HOME": str(ro),
                "XDG_CACHE_HOME": str(ro / ".cache"),
                "NUMBA_CACHE_DIR": "",
                "FASTMIX_NUMBA_CACHE": "1",
            },
            cwd=str(tmp_path),
        )
    finally:
        subprocess.run(["umount", str(ro)])
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(json.loads(out.stdout), fitted.score_samples(X), rtol=1e-12)


_CACHED_KERNEL = """
from fastmix._numba import jit


@jit
def plus_one(x):
    return x + 1.0
"""

_CALL_CACHED_KERNEL = """
import kernel_mod
value = kernel_mod.plus_one(1.0)
print(value, kernel_mod.plus_one.stats.cache_hits.get(kernel_mod.plus_one.signatures[0], 0))
"""


def _damage(path, how):
    blob = path.read_bytes()
    if how == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    else:  # flip a run of bytes in the middle: pickled object code
        mid = len(blob) // 2
        flipped = bytes(b ^ 0xFF for b in blob[mid : mid + 64])
        path.write_bytes(blob[:mid] + flipped + blob[mid + 64 :])


@pytest.mark.parametrize(
    "target, how",
    [("nbi", "truncate"), ("nbi", "flip"), ("nbc", "truncate"), ("nbc", "flip")],
)
def test_damaged_cache_entry_is_recompiled(tmp_path, target, how):
    """A truncated or corrupted cache index or data file is a miss: recompiled, then cached."""
    (tmp_path / "kernel_mod.py").write_text(_CACHED_KERNEL)
    cache_dir = tmp_path / "numba_cache"
    env = {
        "NUMBA_CACHE_DIR": str(cache_dir),
        "FASTMIX_NUMBA_CACHE": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }

    def call():
        out = _run(_CALL_CACHED_KERNEL, env=env, cwd=str(tmp_path))
        assert out.returncode == 0, out.stderr[-2000:]
        value, hits = out.stdout.split()
        assert float(value) == 2.0
        return int(hits)

    assert call() == 0  # compiled and saved
    assert call() == 1  # loaded from the cache
    (entry,) = cache_dir.rglob(f"*plus_one*.{target}")
    _damage(entry, how)
    assert call() == 0  # the damaged entry is recompiled, not fatal
    assert call() == 1  # and the rewritten entry loads again


_INTERRUPTED_IMPORT = """
import json, sys

class Interrupt:
    # Ctrl-C at the moment one module starts to import (once).
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            sys.meta_path.remove(self)
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
try:
    from fastmix import GaussianMixture
    first = "imported"
except KeyboardInterrupt:
    first = "interrupted"
import numba
import sklearn.mixture
from fastmix import GaussianMixture
print(json.dumps([first, numba.njit(lambda x: x + 1)(1), GaussianMixture(2).n_components]))
"""


@pytest.mark.parametrize(
    "module",
    # Inside numba's own __init__ (a retry found 'numba.core' cached but not
    # bound: "module 'numba' has no attribute 'core'"), deeper in numba, and
    # two where a plain retry already worked.
    ["numba.core.decorators", "numba.core.typing.templates", "scipy.linalg", "fastmix._numba"],
)
def test_import_interrupted_by_ctrl_c_can_be_retried(module):
    """Ctrl-C during the lazy first import, then the same import again: it works."""
    assert run_python(_INTERRUPTED_IMPORT, module) == ["interrupted", 2, 2]


def _press_ctrl_c_in_a_callback():
    """SIGINT handled inside a ctypes callback, as in llvmlite's object-cache hooks.

    Python raises the KeyboardInterrupt inside the callback, where ctypes
    reports it to ``sys.unraisablehook`` and carries on: the Ctrl-C is lost.
    """

    def press():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs between these bytecodes
            pass

    ctypes.CFUNCTYPE(None)(press)()


def _interrupt_compilation(monkeypatch, kernel, then="compile"):
    """Make ``kernel``'s next compilation press Ctrl-C in a callback first."""
    compile_ = kernel.compile

    def interrupted(sig):
        _press_ctrl_c_in_a_callback()
        if then == "SystemError":
            raise SystemError("<built-in method> returned a result with an exception set")
        return compile_(sig)

    monkeypatch.setattr(kernel, "compile", interrupted)
    return compile_


@pytest.fixture
def python_sigint():
    """SIGINT handled as an interactive Python handles it, whoever started pytest.

    A shell starts a background job (``pytest &``, ``nohup``) with SIGINT
    ignored, and Python then installs no handler of its own: a Ctrl-C would
    never arrive.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("then", ["compile", "SystemError"])
def test_ctrl_c_during_compilation_is_a_keyboard_interrupt(monkeypatch, python_sigint, then):
    """Ctrl-C during a kernel's first call ends it as KeyboardInterrupt: not a
    finished call (the Ctrl-C lost in llvmlite's callback), not SystemError.
    The kernel compiles on the next call; SIGINT's handler is Python's again."""
    monkeypatch.setenv("FASTMIX_NUMBA_CACHE", "0")
    swallowed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: swallowed.append(u.exc_type))
    kernel = _numba.jit(lambda x: x + 1)
    compile_ = _interrupt_compilation(monkeypatch, kernel, then)
    with pytest.raises(KeyboardInterrupt):
        kernel(1)
    assert swallowed == [KeyboardInterrupt]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(kernel, "compile", compile_)
    assert kernel(1) == 2

    # A compilation error without Ctrl-C is itself.
    with pytest.raises(numba.core.errors.TypingError):
        _numba.jit(lambda x: x.no_such_attribute)(1)


def test_ctrl_c_during_compilation_reaches_a_programs_own_handler(monkeypatch):
    monkeypatch.setenv("FASTMIX_NUMBA_CACHE", "0")
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *args: seen.append("handled"))
    try:
        own = signal.getsignal(signal.SIGINT)
        kernel = _numba.jit(lambda x: x + 2)
        _interrupt_compilation(monkeypatch, kernel)
        assert kernel(1) == 3
        assert seen == ["handled"]
        assert signal.getsignal(signal.SIGINT) is own
    finally:
        signal.signal(signal.SIGINT, previous)


def _read_only_signatures():
    """``(kernel, signature)`` of every fastmix kernel compiled in this process for
    a read-only array argument."""
    found = []
    for module in (estep, kmeans, labels, update, variational):
        for kernel in vars(module).values():
            if isinstance(kernel, numba.core.registry.CPUDispatcher):
                found += [
                    (kernel.py_func.__qualname__, sig)
                    for sig in kernel.signatures
                    if any(isinstance(t, numba.types.Array) and not t.mutable for t in sig)
                ]
    return found


def test_read_only_inputs_run_the_kernels_compiled_for_writeable_ones():
    """numba types a read-only array apart from a writeable one, and would compile
    each kernel again for it (20-35 s for the statistics pass). Read-only X and
    sample weights, one component (its broadcast centre is a read-only array),
    ``reg_covar = 0`` (whose spread check reads the start's broadcast centre)
    and a model with read-only (memory-mapped) attributes all run the kernels
    compiled for writeable arrays, with the same results."""
    X = read_only(three_blobs(n_per=200))
    w = read_only(np.linspace(0.5, 2.0, X.shape[0]))
    cases = itertools.product(
        (GaussianMixture, BayesianGaussianMixture), ("full", "tied", "diag"), (1, 3), (1e-6, 0.0)
    )
    for estimator, covariance_type, n_components, reg_covar in cases:
        m = estimator(
            n_components=n_components, covariance_type=covariance_type, max_iter=2,
            reg_covar=reg_covar, random_state=0,
        )  # fmt: skip
        fit_quiet(m, X, sample_weight=w)
        m.partial_fit(X, sample_weight=w)
        writeable = fit_quiet(clone(m), X.copy(), sample_weight=w.copy())
        writeable.partial_fit(X.copy(), sample_weight=w.copy())
        np.testing.assert_array_equal(m.means_, writeable.means_)
        frozen = frozen_copy(m)
        np.testing.assert_array_equal(frozen.predict_proba(X), m.predict_proba(X))
        assert frozen.score(X) == m.score(X)
    assert _read_only_signatures() == []


def test_kernel_view_is_a_writeable_view_of_a_read_only_array():
    a = np.arange(12.0).reshape(3, 4)
    assert _numba.kernel_view(a) is a
    assert _numba.kernel_view(3.0) == 3.0
    for array in (read_only(a), read_only(np.asfortranarray(a)), read_only(a)[:, 1:3]):
        view = _numba.kernel_view(array)
        assert view.flags.writeable and np.shares_memory(view, array)
        assert view.strides == array.strides
        np.testing.assert_array_equal(view, array)
    view = _numba.kernel_view(read_only(a))  # the only reference to the read-only copy
    np.testing.assert_array_equal(view, a)  # still alive: the view holds it
    empty = _numba.kernel_view(read_only(np.empty((0, 4))))
    assert empty.flags.writeable and empty.shape == (0, 4)


@pytest.mark.parametrize(
    ("triple", "features", "count"),
    [
        ("x86_64-unknown-linux-gnu", "+64bit,+sse2,+avx2,+fma,-avx512f,-avx10.1", 16),  # Zen 3
        ("x86_64-unknown-linux-gnu", "+avx2,+fma,+avx512fp16", 16),  # no +sse2, no +avx512f
        ("x86_64-unknown-linux-gnu", "", 16),  # features not read (numba's AOT target)
        ("x86_64-pc-windows-msvc", "+64bit,+sse2,+avx2,+avx512f,+avx512vl", 32),  # AVX-512
        ("x86_64-apple-darwin", "+sse2,+avx2,-avx512f,+avx10.1", 32),  # AVX10
        ("aarch64-unknown-linux-gnu", "+neon,+fp-armv8", 32),
        ("powerpc64le-unknown-linux-gnu", "+vsx", 32),
    ],
)
def test_vector_register_count_from_target(triple, features, count):
    assert _numba._register_count(triple, features) == count


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled")
def test_vector_registers_is_the_compile_targets():
    """The kernels' register tiles read the CPU numba compiles for."""
    from numba.core.registry import cpu_target

    @numba.njit
    def registers():
        return _numba.vector_registers()

    codegen = cpu_target.target_context.codegen()
    expected = _numba._register_count(codegen._tm.triple, codegen._tm_features)
    assert registers() == expected
    assert estep._gram_cols() == (4 if expected >= 32 else 2)
