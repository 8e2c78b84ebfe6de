"""Progress of a fit, reported from the Python loop between kernel calls.

The fit loop (:meth:`fastmix._base.BaseMixture._fit_inplace`) calls
:func:`notify` once per EM iteration. Nothing happens unless a callback was
registered with :func:`report_progress` in the calling context, so by default
a fit prints only scikit-learn's ``verbose`` messages. The callback lives in a
:class:`contextvars.ContextVar`, never on the estimator: estimator state stays
arrays only, and clone, pickle and save/load are unaffected (STYLE habits 14
and 15). Kernels never report anything.

A ``ContextVar`` is per thread (and per asyncio task): a callback registered
in one thread does not see fits running in another.
"""

import contextvars
from contextlib import contextmanager

__all__ = ["notify", "report_progress"]

_CALLBACK = contextvars.ContextVar("fastmix_progress_callback", default=None)


@contextmanager
def report_progress(callback):
    """Call ``callback`` after every EM iteration of the fits run inside the block.

    Parameters
    ----------
    callback : callable or None
        Called as ``callback(init, n_iter, max_iter, lower_bound, change)``
        after each iteration's M-step: ``init`` is the 0-based index of the
        initialisation (``0 <= init < n_init``), ``n_iter`` the 1-based
        iteration within it, ``max_iter`` the estimator's ``max_iter``,
        ``lower_bound`` the lower bound after the iteration (the mean
        log-likelihood per sample for ``GaussianMixture``, the ELBO for
        ``BayesianGaussianMixture``) and ``change`` its change from the
        previous iteration (``inf`` on the first iteration of a fresh
        initialisation). None registers nothing (fits inside report nothing).
        An exception raised by the callback propagates out of ``fit``.

    Yields
    ------
    None

    Examples
    --------
    >>> from fastmix._progress import report_progress
    >>> seen = []
    >>> with report_progress(lambda *event: seen.append(event)):
    ...     model.fit(X)  # doctest: +SKIP
    """
    token = _CALLBACK.set(callback)
    try:
        yield
    finally:
        _CALLBACK.reset(token)


def notify(init, n_iter, max_iter, lower_bound, change):
    """Pass one iteration's progress to the registered callback, if any.

    Parameters
    ----------
    init : int
        0-based index of the initialisation.
    n_iter : int
        1-based iteration within the initialisation.
    max_iter : int
        The estimator's ``max_iter``.
    lower_bound : float
        The lower bound after this iteration.
    change : float
        ``lower_bound`` minus the previous iteration's.
    """
    callback = _CALLBACK.get()
    if callback is not None:
        callback(init, n_iter, max_iter, float(lower_bound), float(change))
