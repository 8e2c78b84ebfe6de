"""BLAS held to one thread while fastmix fits: one process-wide, reference-counted limit.

The updates call BLAS on tiny matrices between parallel kernels; a BLAS pool
spinning beside numba's threads starves them (STYLE habit 13). Two things go
wrong with a ``threadpool_limits`` context per call:

- it scans the process's loaded libraries every time (about 10 ms here, 25
  times the E-step of a 1e4 x 16 batch: the whole cost of a ``partial_fit``);
- concurrent fits in several Python threads restore the limits they found in
  the order they finish, so the last to leave can restore the *limited* value
  another fit had set, leaving the user's NumPy on one thread for the rest of
  the process.

:func:`single_threaded_blas` therefore keeps one ``ThreadpoolController``
(built on first use: the BLAS libraries are those loaded by then, NumPy's
included) and one limit shared by every fit in flight: the first to enter sets
it, the last to leave restores what the first found.
"""

import os
import threading

from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded_blas"]

_lock = threading.Lock()
_state = {"depth": 0, "libs": None, "found": []}


def _release(found):
    """Leave OpenBLAS's thread count settable from any thread again.

    threadpoolctl (3.8) lets only the first thread that sets a pthreads
    OpenBLAS's count set it later ("the controlling thread"), until that is
    cleared; its own contexts clear it on exit. Without this, the thread of
    fastmix's first fit kept control: ``threadpool_limits`` in any other
    thread (the user's, joblib's, scikit-learn's KMeans) silently did nothing.
    Only clears what this thread holds: a user's limit in force elsewhere stays.
    """
    for lib, _ in found:
        clear = getattr(type(lib), "clear_controlling_thread", None)  # threadpoolctl >= 3.8
        if clear is not None:
            clear()


def _after_fork_in_child():
    global _lock
    # A fit in another thread may have held the lock at fork time; that thread
    # does not exist in the child, so the lock would never be released.
    _lock = threading.Lock()
    # Nor would its limit: the child would keep BLAS on one thread for good
    # (its own fits counting from the parent's depth never reach 0). Start
    # the child as the parent was before the fits in flight.
    found, _state["found"], _state["depth"] = _state["found"], [], 0
    for lib, n in found:
        try:
            lib.set_num_threads(n)
        except Exception:  # pragma: no cover - only a thread count
            pass
    _release(found)


os.register_at_fork(after_in_child=_after_fork_in_child)


class _SingleThreadedBlas:
    """The context :func:`single_threaded_blas` returns (one object for every caller).

    The BLAS libraries' own ``get_num_threads``/``set_num_threads`` through
    threadpoolctl's per-library controllers: a ``limit()`` object per entry
    cost 7 us, a noticeable part of a small ``partial_fit``'s Python time.
    """

    __slots__ = ()

    def __enter__(self):
        with _lock:
            if _state["depth"] == 0:
                if _state["libs"] is None:
                    _state["libs"] = ThreadpoolController().select(user_api="blas").lib_controllers
                found = [(lib, lib.get_num_threads()) for lib in _state["libs"]]
                _state["found"] = [(lib, n) for lib, n in found if n is not None]
                for lib, _ in _state["found"]:
                    lib.set_num_threads(1)
                _release(_state["found"])
            _state["depth"] += 1
        return self

    def __exit__(self, *exc_info):
        with _lock:
            if _state["depth"] == 0:
                return False  # reset by a fork inside this fit: nothing to undo
            _state["depth"] -= 1
            if _state["depth"] == 0:
                for lib, n in _state["found"]:
                    lib.set_num_threads(n)
                _release(_state["found"])
                _state["found"] = []
        return False


_CONTEXT = _SingleThreadedBlas()


def single_threaded_blas():
    """Context in which BLAS runs on one thread; nests and overlaps across threads."""
    return _CONTEXT
