"""Choosing the model: K x covariance structure by BIC, AIC or ICL, in one estimator.

Every candidate is a :class:`~fastmix.GaussianMixture` fitted exactly as it
would be alone, but the candidates run in lockstep
(:func:`fastmix._base.fit_in_lockstep`): each round reads the data once for
all the candidates still iterating, so a sweep over a memmap reads the file
about ``max n_iter + 5`` times (validation, mean, k-means sample, initial
statistics, criteria), not once per candidate and iteration, and a
sweep over a dask array computes once per round. A last round computes every
candidate's criteria from one more read.
"""

import copy
import math
import time
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, clone
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import fit_in_lockstep
from ._blas import single_threaded_blas
from ._gaussian_mixture import GaussianMixture

__all__ = ["MixtureSelector"]

_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_CRITERIA = ("bic", "aic", "icl")


class MixtureSelector(DensityMixin, BaseEstimator):
    """Fit Gaussian mixtures over a grid of K and covariance structures; keep the best.

    For every pair of ``n_components`` and ``covariance_types`` a
    :class:`GaussianMixture` (a clone of ``estimator`` with those two
    parameters, and ``random_state`` when given) is fitted on the same data;
    the one with the lowest ``criterion`` is kept. Each candidate equals the
    same model fitted alone, but the candidates share every read of the data:
    one pass per EM iteration serves all the candidates still iterating
    (those that converged drop out), so a memmap is read ``max n_iter + 5``
    times and a dask array computed once per iteration, whatever the number
    of candidates. Initialisations share the data's mean, and candidates
    seeded alike share the k-means sample; k-means itself runs per candidate.

    Parameters
    ----------
    n_components : array-like of int or int, default=(1, 2, ..., 10)
        The numbers of components to try (an int: that one).
    covariance_types : array-like of str, default=('full', 'tied', 'diag', 'spherical')
        The covariance structures to try.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        What decides: the Bayesian information criterion, Akaike's, or the
        integrated completed likelihood (BIC plus twice the entropy of the
        responsibilities). Lower is better, as in
        :meth:`GaussianMixture.bic`.
    estimator : GaussianMixture, default=None
        The other parameters of every candidate (``tol``, ``max_iter``,
        ``n_init``, ``init_params``, ``reg_covar``, ...); None means
        ``GaussianMixture()``.
    random_state : int, RandomState instance or None, default=None
        None: each candidate uses ``estimator``'s own ``random_state``.
        Otherwise every candidate gets it (a RandomState: its own copy, as
        ``clone`` gives it, so no candidate depends on the others).
    verbose : int, default=0
        1 or more prints the table of candidates after the fit; 2 or more
        also fits every candidate with that ``verbose`` (scikit-learn's
        messages per initialisation, and per iteration from 2).

    Attributes
    ----------
    best_estimator_ : GaussianMixture
        The fitted candidate with the lowest criterion (the first on ties).
    best_params_ : dict
        Its ``n_components`` and ``covariance_type``.
    results_ : dict of ndarray
        One entry per candidate, in the order of ``covariance_types`` then
        ``n_components``: ``n_components``, ``covariance_type``, ``bic``,
        ``aic``, ``icl``, ``lower_bound``, ``n_iter``, ``converged`` and
        ``fit_time`` (seconds; each shared read is split evenly among the
        candidates it served). A candidate whose fit failed (a
        ``FitFailedWarning`` names it and its error) has NaN criteria and
        lower bound and is never chosen.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string names.

    See Also
    --------
    GaussianMixture : One candidate.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmix import MixtureSelector
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.randn(300, 2) - 5, rng.randn(300, 2) + 5, rng.randn(300, 2)])
    >>> sel = MixtureSelector(n_components=range(1, 6), random_state=0).fit(X)
    >>> sel.best_params_
    {'n_components': 3, 'covariance_type': 'spherical'}
    >>> len(sel.results_["bic"])
    20
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "covariance_types": ["array-like"],
        "criterion": [StrOptions(set(_CRITERIA))],
        # fastmix's own: the lockstep fit drives its private steps.
        "estimator": [GaussianMixture, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=tuple(range(1, 11)),
        covariance_types=_COVARIANCE_TYPES,
        criterion="bic",
        estimator=None,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.criterion = criterion
        self.estimator = estimator
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ the grid
    def _grid(self):
        ks = _items(self.n_components) if not _is_int(self.n_components) else [self.n_components]
        if not ks or not all(_is_int(k) and k >= 1 for k in ks):
            raise ValueError(
                f"n_components must be a non-empty list of positive integers, got "
                f"{self.n_components!r}; e.g. n_components=range(1, 11)."
            )
        types = _items(self.covariance_types)
        known = set(GaussianMixture._parameter_constraints["covariance_type"][0].options)
        bad = [t for t in types if not isinstance(t, str) or t not in known]
        if not types or bad:
            raise ValueError(
                f"covariance_types must name covariance types among {sorted(known)}, got "
                f"{self.covariance_types!r}."
            )
        # A value listed twice is one candidate (as fastmix select reads -k 2,2).
        ks, types = dict.fromkeys(int(k) for k in ks), dict.fromkeys(types)
        return [(k, t) for t in types for k in ks]

    def _candidates(self, grid):
        base = GaussianMixture() if self.estimator is None else self.estimator
        # verbose >= 2 runs each candidate at that verbose (its own messages).
        extra = {"verbose": self.verbose if self.verbose >= 2 else 0}
        candidates = []
        for k, t in grid:
            candidate = clone(base).set_params(n_components=k, covariance_type=t, **extra)
            if self.random_state is not None:
                # Each its own copy of a RandomState (as clone copies the
                # estimator's): one shared stream would make a candidate
                # depend on the others in the grid.
                candidate.set_params(random_state=copy.deepcopy(self.random_state))
            candidates.append(candidate)
        return candidates

    # ----------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Fit every candidate on X (sharing the reads of X) and keep the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data: an ndarray, a memmap or a dask array, as
            :meth:`GaussianMixture.fit` takes it.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative finite weights. An integer weight counts a row that
            many times, in the fits and in the criteria (``n = sum w``: the
            criteria read the weights as frequencies, so their scale matters,
            unlike a fit's). A K above the number of rows of positive weight
            is skipped, with a warning.

        Returns
        -------
        self : object
            The fitted selector.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> sel.best_params_
        {'n_components': 2, 'covariance_type': 'spherical'}
        >>> len(sel.results_["bic"])  # one row per candidate
        6
        """
        self._validate_params()
        grid = self._grid()
        candidates = self._candidates(grid)
        for candidate in candidates:
            candidate._validate_params()
        # Validate once, against the smallest K; a K above the rows (of
        # positive weight) is skipped, as a lone fit would refuse it.
        probe = min(candidates, key=lambda c: c.n_components)
        source = probe._validate_fit_data(X, sample_weight)
        positive = None if sample_weight is None else source.positive_rows()
        usable = source.n_samples if positive is None else len(positive)
        keep = [i for i, c in enumerate(candidates) if c.n_components <= usable]
        skipped = sorted({c.n_components for c in candidates if c.n_components > usable})
        if skipped:
            rows = "rows" if positive is None else "rows of positive weight"
            warnings.warn(
                f"n_components={', '.join(map(str, skipped))} above the {usable} {rows}: "
                "those candidates are skipped (a mixture needs a row per component). "
                "List smaller values of n_components, or give more rows.",
                UserWarning,
                stacklevel=2,
            )
        grid = [grid[i] for i in keep]
        candidates = [candidates[i] for i in keep]
        fitted_names = [a for a in ("n_features_in_", "feature_names_in_") if hasattr(probe, a)]
        for candidate in candidates:
            for name in fitted_names:
                setattr(candidate, name, getattr(probe, name))
        timings = np.zeros(len(candidates))
        failed = {}
        with single_threaded_blas():
            fit_in_lockstep(source, candidates, timings, failed)
            fitted = [i for i in range(len(candidates)) if i not in failed]
            if not fitted:
                i, exc = min(failed.items())
                raise ValueError(
                    f"Every candidate failed to fit; {_named(grid[i])}: {exc}"
                ) from exc
            seconds = timings[fitted]  # a copy: _criteria adds its read's share to it
            criteria = self._criteria(source, [candidates[i] for i in fitted], seconds)
            timings[fitted] = seconds
        if failed:
            names = "; ".join(f"{_named(grid[i])}: {exc}" for i, exc in sorted(failed.items()))
            warnings.warn(
                f"{len(failed)} of the {len(candidates)} candidates failed to fit and are "
                f"not chosen (their criteria are NaN): {names}",
                FitFailedWarning,
                stacklevel=2,
            )
        self._record(grid, candidates, dict(zip(fitted, criteria, strict=True)), timings)
        for name in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(name, None)  # an earlier fit's, absent from this X
        for name in fitted_names:
            setattr(self, name, getattr(probe, name))
        if self.verbose:
            self._print_table()
        if not self.best_estimator_.converged_ and self.best_estimator_.max_iter > 0:
            warnings.warn(
                f"The best candidate ({self.best_params_}) did not converge. Increase "
                "max_iter or tol of the estimator, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    @staticmethod
    def _criteria(source, candidates, timings):
        """BIC, AIC and ICL of every candidate, from one read.

        Unweighted, they are :meth:`GaussianMixture.bic` and friends on X;
        with sample weights each row counts ``w`` times (``n = sum w``), so
        integer weights give the criteria of the repeated rows.
        """
        start = time.perf_counter()
        stats = source.estep_pass([c._kernel_params(source.dtype) for c in candidates])
        timings += (time.perf_counter() - start) / len(candidates)
        out = []
        for candidate, s in zip(candidates, stats, strict=True):
            p, n = candidate._n_parameters(), s.sum_w
            bic = -2 * s.sum_wlogp + p * math.log(n)
            # sum_wrlogr = sum w r log r: minus the entropy of the responsibilities.
            out.append((bic, -2 * s.sum_wlogp + 2 * p, bic - 2 * s.sum_wrlogr))
        return out

    def _record(self, grid, candidates, criteria, timings):
        """``results_`` and the best candidate; ``criteria``: index -> (bic, aic, icl)."""
        nan = (math.nan,) * 3
        rows = [criteria.get(i, nan) for i in range(len(candidates))]
        bic, aic, icl = (np.array(v, dtype=np.float64) for v in zip(*rows, strict=True))
        ok = [i in criteria for i in range(len(candidates))]
        self.results_ = {
            "n_components": np.array([k for k, _ in grid], dtype=np.int64),
            "covariance_type": np.array([t for _, t in grid], dtype=object),
            "bic": bic,
            "aic": aic,
            "icl": icl,
            "lower_bound": np.array(
                [c.lower_bound_ if f else math.nan for c, f in zip(candidates, ok, strict=True)],
                dtype=np.float64,
            ),
            "n_iter": np.array(
                [c.n_iter_ if f else 0 for c, f in zip(candidates, ok, strict=True)],
                dtype=np.int64,
            ),
            "converged": np.array(
                [c.converged_ if f else False for c, f in zip(candidates, ok, strict=True)],
                dtype=bool,
            ),
            "fit_time": timings,
        }
        best = int(np.nanargmin(self.results_[self.criterion]))
        self.best_estimator_ = candidates[best]
        self.best_params_ = {"n_components": grid[best][0], "covariance_type": grid[best][1]}

    def _print_table(self):
        r = self.results_
        print("  K  covariance           bic            aic            icl  n_iter  converged")
        for i in range(len(r["bic"])):
            print(
                f"{r['n_components'][i]:3d}  {r['covariance_type'][i]:<14} "
                f"{r['bic'][i]:14.4f} {r['aic'][i]:14.4f} {r['icl'][i]:14.4f} "
                f"{r['n_iter'][i]:6d}  {bool(r['converged'][i])}"
            )
        print(f"best by {self.criterion}: {self.best_params_}")

    # ----------------------------------------------------- the best model
    def _best(self):
        check_is_fitted(self)
        return self.best_estimator_

    def predict(self, X):
        """Component labels of X under the best model (:meth:`GaussianMixture.predict`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> sel.predict([[-3, -3], [3, 3]])
        array([1, 0])
        """
        return self._best().predict(X)

    def predict_proba(self, X):
        """Responsibilities of X under the best model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> sel.predict_proba([[-3, -3], [0, 0]]).round(3)
        array([[0. , 1. ],
               [0.3, 0.7]])
        """
        return self._best().predict_proba(X)

    def score_samples(self, X):
        """Log-likelihood of each row of X under the best model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> sel.score_samples([[-3, -3]]).round(2)
        array([-2.58])
        """
        return self._best().score_samples(X)

    def score(self, X, y=None):
        """Mean log-likelihood of X under the best model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        log_likelihood : float

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> round(sel.score(X), 3)
        -3.491
        """
        return self._best().score(X)

    def bic(self, X):
        """The best model's :meth:`GaussianMixture.bic` on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        bic : float

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> round(sel.bic(X), 1)
        1433.6
        """
        return self._best().bic(X)

    def aic(self, X):
        """The best model's :meth:`GaussianMixture.aic` on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        aic : float

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> round(sel.aic(X), 1)
        1410.5
        """
        return self._best().aic(X)

    def icl(self, X):
        """The best model's integrated completed likelihood on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        icl : float

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> round(sel.icl(X), 1)
        1433.6
        """
        return self._best().icl(X)

    def sample(self, n_samples=1):
        """Draw from the best model (:meth:`GaussianMixture.sample`).

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import MixtureSelector
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> sel = MixtureSelector([1, 2, 3], ["spherical", "full"], random_state=0).fit(X)
        >>> sel.sample(3)[0].shape
        (3, 2)
        """
        return self._best().sample(n_samples)


def _named(candidate):
    k, covariance_type = candidate
    return f"n_components={k}, covariance_type={covariance_type!r}"


def _is_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool)


def _items(values):
    """``values`` as a list, or an empty one where it is not a collection (then refused)."""
    try:
        return list(values)
    except TypeError:
        return []
