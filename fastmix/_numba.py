"""The one place that owns numba's options for fastmix.

Every kernel is declared through :func:`jit` so that the fastmath flag set, the
``nogil`` policy and the on-disk cache policy are decided once.

Cache policy
------------
Kernels are cached on disk (``cache=True``): a first fit otherwise spends
several seconds compiling (see ``docs/performance.md`` for the measurement).
numba raises at *decoration* time when it finds no writable cache location
(for instance a read-only site-packages and no writable home), which would
break ``import fastmix``; :func:`jit` then falls back to an uncached
dispatcher. ``FASTMIX_NUMBA_CACHE=0`` switches caching off explicitly.
Decoration never compiles: kernels compile lazily on their first call. Under
numba's debugging switch ``NUMBA_DISABLE_JIT=1`` :func:`jit` returns the
Python function itself and :func:`prefer_wide_vectors` is a no-op, so every
kernel runs as Python (slowly; for debugging).

A damaged cache entry is a miss, never a failure: numba unpickles its index
unguarded (a truncated ``.nbi`` raises ``EOFError`` at the first call) and
hands a data file's object code to LLVM unchecked (flipped bytes abort the
process). Every fastmix kernel's cache file is a :class:`_CheckedCacheFile`,
which treats an unreadable index as empty and stores each data file behind a
SHA-256 digest checked before anything is unpickled; a miss recompiles and
overwrites the damaged entry.

Launching parallel kernels
--------------------------
numba's ``workqueue`` threading layer aborts the process when two threads are
inside parallel kernels at once, and GNU OpenMP hangs or aborts in a child
forked after the parent used it. :func:`parallel_launch` is asked before every
parallel launch: it grants one launch at a time in the process, and none in a
child forked after the parent had started numba's threading layer. A caller
refused a launch runs the kernel's serial twin, which gives bitwise the same
result. The threading layer itself is left as the user chose it.
"""

import hashlib
import os
import pickle
import signal
import threading
import types as _pytypes
from contextlib import contextmanager

import numba
import numpy as np
from numba.core import types
from numba.core.caching import IndexDataCacheFile
from numba.extending import intrinsic

__all__ = [
    "FASTMATH",
    "is_cached",
    "jit",
    "kernel_view",
    "launch",
    "parallel_launch",
    "prange",
    "prefer_wide_vectors",
    "serial_twin",
    "vector_registers",
]

prange = numba.prange

# Value-safe subset of fastmath: no 'nnan'/'ninf' (they turn isnan/isinf checks
# into constants) and no 'afn' (approximate libm calls would move exp/log away
# from the reference implementation by more than the pinned tolerance).
# 'reassoc' lets LLVM vectorise reductions; the reduction order still depends
# only on the data layout, never on the thread count.
FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})


def _cache_wanted():
    return os.environ.get("FASTMIX_NUMBA_CACHE", "1").strip().lower() not in {
        "0",
        "false",
        "no",
        "off",
    }


def jit(func=None, *, parallel=False, reassoc=True, inline=False, exact=False):
    """Compile ``func`` lazily with fastmix's numba options.

    Parameters
    ----------
    func : callable, optional
        The Python function to compile. When omitted, returns a decorator.
    parallel : bool, default=False
        Enable ``numba.prange`` parallel loops.
    reassoc : bool, default=True
        Allow reassociation. Switch it off where the order of operations
        carries precision (e.g. a Cody-Waite argument reduction).
    inline : bool, default=False
        Inline into every caller at numba's IR level (``inline='always'``).
        numba compiles a helper once per argument-type tuple, and a constant
        argument is typed as its literal value: ``_scratch(1, m, x, False)``
        and ``_scratch(4, m, x, False)`` were two compiles (15 of
        ``_scratch`` in a first fit). Inlined helpers have no compilation of
        their own; for small helpers only, as each caller retypes the body.

    exact : bool, default=False
        No fastmath flag at all: every operation rounded as written. For
        results that must equal NumPy's bit for bit: with 'arcp', LLVM may
        turn ``1 / sqrt(x)`` into a reciprocal-square-root estimate on some
        targets (POWER does; x86-64 and AArch64 keep the exact division).

    Returns
    -------
    dispatcher : numba.core.registry.CPUDispatcher
        A dispatcher that compiles on first call (never at import).
    """
    if func is None:
        return lambda f: jit(f, parallel=parallel, reassoc=reassoc, inline=inline, exact=exact)
    if numba.config.DISABLE_JIT:
        # numba's debugging switch: the kernels run as the Python they are.
        return func
    flags = set(FASTMATH) if reassoc else set(FASTMATH) - {"reassoc"}
    if exact:
        flags = set()
    options = dict(nogil=True, fastmath=flags, parallel=parallel, error_model="numpy")
    if inline:
        options["inline"] = "always"
    if _cache_wanted():
        try:
            dispatcher = numba.njit(cache=True, **options)(func)
        except (RuntimeError, OSError):
            # No writable cache locator: compile per process instead of failing.
            pass
        else:
            cache_file = getattr(dispatcher._cache, "_cache_file", None)
            if type(cache_file) is IndexDataCacheFile:
                cache_file.__class__ = _CheckedCacheFile
            return _interruptible(dispatcher)
    return _interruptible(numba.njit(cache=False, **options)(func))


def _interruptible(dispatcher):
    """Make Ctrl-C during ``dispatcher``'s compilation a ``KeyboardInterrupt``.

    numba's dispatcher looks ``_compile_for_args`` up on the instance at a
    miss (compilation or a cache load); the wrapper runs it under
    :func:`_ctrl_c_kept`. Calls that find a compiled signature never reach it.
    """
    compile_for_args = dispatcher._compile_for_args

    def _compile_for_args(*args, **kws):
        with _ctrl_c_kept():
            return compile_for_args(*args, **kws)

    dispatcher._compile_for_args = _compile_for_args
    return dispatcher


class _CtrlC:
    """A SIGINT handler that raises ``KeyboardInterrupt`` and remembers it did."""

    def __init__(self):
        self.pressed = False

    def __call__(self, signum, frame):
        self.pressed = True
        raise KeyboardInterrupt


@contextmanager
def _ctrl_c_kept():
    """Ctrl-C while numba compiles ends the call as ``KeyboardInterrupt``, always.

    Python raises ``KeyboardInterrupt`` at the next bytecode, which during a
    compilation is often inside one of llvmlite's ctypes callbacks: ctypes
    prints "Exception ignored" and the compilation goes on (the Ctrl-C is
    lost), or a C caller returns with the exception set (``SystemError``).
    Here Ctrl-C is remembered: a ``SystemError`` or any other exception after
    it becomes ``KeyboardInterrupt``, and a compilation that swallowed it
    raises it on return. Only in the main thread, and only where SIGINT has
    Python's default handler (a program's own handler is left alone).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    ctrl_c = _CtrlC()
    signal.signal(signal.SIGINT, ctrl_c)
    try:
        yield
    except Exception as exc:
        if ctrl_c.pressed:
            raise KeyboardInterrupt from exc
        raise
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if ctrl_c.pressed:
        raise KeyboardInterrupt


class _CheckedCacheFile(IndexDataCacheFile):
    """numba's index/data cache files, where damage reads as a cache miss.

    The data files carry a magic and the SHA-256 digest of their pickle; a
    file that fails the check (truncated, flipped bytes, written by an
    earlier fastmix without the digest) raises ``OSError``, which numba's
    ``load`` already turns into a miss. An index that cannot be unpickled is
    an empty index; the next save rewrites it.
    """

    _MAGIC = b"fastmix-nbc-sha256\n"

    def _load_index(self):
        try:
            return super()._load_index()
        except Exception:
            # EOFError, UnpicklingError, or garbage that unpickles to a wrong
            # shape: nothing in it can be trusted.
            return {}

    def _save_data(self, name, data):
        payload = self._dump(data)
        with self._open_for_write(self._data_path(name)) as f:
            f.write(self._MAGIC + hashlib.sha256(payload).digest() + payload)

    def _load_data(self, name):
        with open(self._data_path(name), "rb") as f:
            blob = f.read()
        head = len(self._MAGIC)
        digest, payload = blob[head : head + 32], blob[head + 32 :]
        if blob[:head] != self._MAGIC or hashlib.sha256(payload).digest() != digest:
            raise OSError(f"damaged numba cache file {self._data_path(name)}")
        return pickle.loads(payload)


def can_cache(dispatcher):
    """Whether ``dispatcher`` writes numba's on-disk cache (False: it compiles in every process).

    False when caching is off (``FASTMIX_NUMBA_CACHE=0``) or when :func:`jit`
    found no writable cache folder and fell back to an uncached kernel.
    """
    cache = getattr(dispatcher, "_cache", None)
    return cache is not None and type(cache).__name__ != "NullCache"


def is_cached(dispatcher):
    """Whether ``dispatcher`` has current entries in numba's on-disk cache.

    True when its cache index exists and matches the kernel's source file
    (numba drops an index whose source changed, or written by another numba
    version). Used to tell a user that a first run will compile; numba's
    private cache objects are read defensively, so any surprise reads as
    "not cached".
    """
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except Exception:
        return False


def serial_twin(dispatcher, name):
    """The serial compilation of a ``parallel=True`` kernel, under its own name.

    The same source compiled with ``parallel=False`` (``prange`` is then
    ``range``): the loop over reduction groups runs in order on the calling
    thread and every group's partial slot is filled as in the parallel
    kernel, so the result is bitwise the same. A copy of the Python function
    named ``name`` keeps the twin's on-disk cache entries apart from the
    parallel kernel's (numba's cache index does not key on ``parallel``).
    """
    f = getattr(dispatcher, "py_func", dispatcher)  # a plain function under NUMBA_DISABLE_JIT
    twin = _pytypes.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__ = name
    twin.__doc__ = f"Serial twin of :func:`{f.__name__}` (same arguments and result)."
    options = getattr(dispatcher, "targetoptions", {})
    return jit(twin, parallel=False, reassoc="reassoc" in options.get("fastmath", FASTMATH))


_launch_lock = threading.Lock()
# Set in a forked child whose parent had started numba's threading layer.
_serial_only = {"forked": False}


def _threading_layer_started():
    try:
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - numba internals moved
        return True
    return bool(getattr(parallel, "_is_initialized", True))


def _after_fork_in_child():
    global _launch_lock
    # A lock held by another thread at fork time would stay held for ever.
    _launch_lock = threading.Lock()
    if _threading_layer_started():
        _serial_only["forked"] = True


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def parallel_launch(wanted=True):
    """Whether the caller may launch a parallel kernel now; one at a time.

    Parameters
    ----------
    wanted : bool, default=True
        False skips the question (small calls, Dask workers).

    Yields
    ------
    granted : bool
        True while the caller holds the process's one parallel launch;
        False when another thread is inside a parallel kernel, or in a
        child forked after numba's threading layer started: run the serial
        twin then.
    """
    lock = _launch_lock
    if not wanted or _serial_only["forked"] or not lock.acquire(blocking=False):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def launch(kernel, twin, *args, wanted=True):
    """Call the parallel ``kernel`` when :func:`parallel_launch` grants it, else ``twin``.

    Array arguments go through :func:`kernel_view`: these kernels never
    write their read-only inputs, so they never need a read-only compilation.
    """
    # kernel_view's own test inline: a call per argument would cost 2 us a launch.
    args = [
        a if not isinstance(a, np.ndarray) or a.flags.writeable else kernel_view(a) for a in args
    ]
    with parallel_launch(wanted) as granted:
        return (kernel if granted else twin)(*args)


class _WriteableInterface:
    """An array's memory offered as writeable; the view numpy makes keeps this (and the array)."""

    def __init__(self, array):
        self.array = array
        interface = dict(array.__array_interface__)
        interface["data"] = (interface["data"][0], False)  # (address, read-only flag)
        self.__array_interface__ = interface


def kernel_view(value):
    """``value``, or where it is a read-only array, a writeable view of the same memory.

    numba types a read-only array apart from a writeable one and compiles a
    kernel again for it: 20-35 s for the statistics pass, the k-means and
    per-row kernels as much again. Read-only arrays are common inputs: an
    array another library froze (``np.frombuffer``, Arrow buffers), a
    memory-mapped model's attributes, a broadcast centre. Only for arguments
    the kernel reads and never writes. Nothing is copied but an empty array.
    """
    if not isinstance(value, np.ndarray) or value.flags.writeable:
        return value
    if not value.size:
        return value.copy()
    return np.asarray(_WriteableInterface(value))


# LLVM's x86 tuning prefers 256-bit vectors even where 512-bit ones exist
# (older AVX-512 parts lowered their clock for them). On the Emerald Rapids
# development machine 512-bit vectors make the full-covariance chunk 1.8x
# faster (docs/performance.md), so the hot kernels ask for them.
_WIDE_ATTRIBUTE = '"prefer-vector-width"="512"'


@intrinsic
def prefer_wide_vectors(typingctx):
    """Let LLVM vectorise the calling function with 512-bit registers.

    Call it first thing in a kernel whose loops should vectorise wide, and
    in every kernel that calls such a kernel: LLVM inlines callees and then
    vectorises them with the *caller's* attribute (without it in the chunk
    drivers the full-covariance pass ran 1.7x slower). It emits no code: it
    sets LLVM's ``prefer-vector-width`` attribute on the function being
    compiled, so it affects only that function (not the rest of the
    process's numba code). Where the CPU has no 512-bit vectors LLVM
    keeps to the widest it has. If the attribute cannot be set (a different
    llvmlite), the kernel compiles unchanged.
    """

    def codegen(context, builder, signature, args):
        try:
            # llvmlite validates names against enum attributes only; a string
            # attribute is written verbatim into the function's definition.
            set.add(builder.function.attributes, _WIDE_ATTRIBUTE)
        except Exception:  # pragma: no cover - depends on llvmlite internals
            pass
        return context.get_dummy_value()

    return types.none(), codegen


def _register_count(triple, features):
    """Vector registers of a target: its LLVM triple and feature string.

    x86-64 has 16 unless AVX-512 or AVX10 adds 16 more; AArch64 and POWER
    have 32 or more.
    """
    arch = triple.split("-", 1)[0]
    if arch in ("x86_64", "amd64", "i386", "i686"):
        enabled = set(features.split(","))
        return 32 if "+avx512f" in enabled or "+avx10.1" in enabled else 16
    return 32


@intrinsic
def vector_registers(typingctx):
    """The number of vector registers of the CPU the calling kernel is compiled for.

    A compile-time constant (LLVM folds the branches that test it), read
    from the module's target triple and numba's target features, so
    ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` count, and numba's cache,
    keyed by the CPU, never hands one CPU's choice to another. Register
    tiles size themselves by it: a tile whose running sums outnumber the
    registers keeps some in memory, and each pass then stores and reloads
    them (see :func:`fastmix._kernels.estep._gram_cols`). Where the features
    cannot be read, an x86 target counts 16: a tile that fits 16 fits 32.
    """

    def codegen(context, builder, signature, args):
        try:
            features = context.codegen()._tm_features
        except Exception:  # pragma: no cover - depends on numba internals
            features = ""
        count = _register_count(builder.module.triple or "", features)
        return context.get_constant(types.intp, count)

    return types.intp(), codegen


if numba.config.DISABLE_JIT:
    # Intrinsics cannot run as Python; with nothing compiled there is nothing to set.
    def vector_registers():  # noqa: F811
        """16 under NUMBA_DISABLE_JIT: see the compiled version's docstring."""
        return 16

    def prefer_wide_vectors():  # noqa: F811
        """No-op under NUMBA_DISABLE_JIT: see the compiled version's docstring."""
