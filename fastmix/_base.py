"""The shared estimator shell: validation, initialisation, the fit loop.

Mirrors ``sklearn.mixture._base.BaseMixture`` (same parameters, constraints,
random-number consumption, convergence rule, messages and final E-step) but the
loop body is one streaming pass returning :class:`~fastmix._stats.Stats`
followed by a closed-form update: no (n_samples, n_components) array is held
while fitting. Every ``X`` is turned into a data source (:mod:`fastmix._sources`)
once, at validation; from there on the loop sees only the source's interface.
"""

import contextlib
import math
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from ._blas import single_threaded_blas
from ._format import save
from ._progress import notify as _notify_progress
from ._sources import (
    ArraySource,
    InitRequest,
    is_out_of_core,
    open_for_fit,
    open_for_predict,
)
from ._stats import COV_CODES, KernelParams, Stats
from ._update import far_rows_error_message, precision_error_message, precisions_from_cholesky
from ._validation import check_2d, check_sample_weight

_FLOAT_DTYPES = (np.float64, np.float32)


def _fingerprint(array):
    """What :meth:`BaseMixture._recall` compares of an array: shape, dtype and bytes."""
    return array.shape, array.dtype, array.tobytes()


def _same_values(values, checked):
    """Whether a dict of parameter values equals the one last checked (None: never).

    An array among them (an invalid value) makes ``==`` raise: not the same.
    """
    try:
        return values == checked
    except (ValueError, TypeError):
        return False


def fit_in_lockstep(source, models, timings=None, failed=None):
    """Run the fit loops of ``models`` on ``source`` together, one read per round.

    Each round gathers what every unfinished model asks for (its
    :meth:`BaseMixture._fit_steps`): the initial statistics of the models that
    start a trial, in one initialisation pass, and the E-step of the models
    that iterate, in one ``estep_pass`` over the data. A model drops out when
    its loop ends (converged, or at ``max_iter``). Each model's passes give
    bitwise the statistics of a pass of its own (``fastmix._sources``), so
    every model ends as it would fitted alone. ``timings`` (an array, one
    entry per model) gets each model's seconds: its own updates, and each
    shared read split evenly among the models it served. With ``failed`` (a
    dict), a model whose own step raises a ``ValueError`` (an update that
    fails, such as an ill-defined covariance) drops out with its error put
    under its index, and the others go on; without it the error propagates.
    A shared read's error always propagates.
    """
    if timings is None:
        timings = np.zeros(len(models))
    steps = {i: model._fit_steps(source) for i, model in enumerate(models)}

    def advance(i, answer):
        """The next request of model ``i``, or None when its loop has ended."""
        try:
            return steps[i].send(answer)
        except StopIteration:
            return None
        except ValueError as exc:
            if failed is None:
                raise
            failed[i] = exc
            return None

    requests = {}
    for i in list(steps):
        request = advance(i, None)
        if request is not None:
            requests[i] = request
    while requests:
        answers = {}
        starting = [i for i, r in requests.items() if isinstance(r, InitRequest)]
        iterating = [i for i in requests if i not in starting]
        for served, serve in ((starting, source.initial_stats), (iterating, source.estep_pass)):
            if served:
                start = time()
                stats = serve([requests[i] for i in served])
                timings[served] += (time() - start) / len(served)
                answers.update(zip(served, stats, strict=True))
        for i, answer in answers.items():
            start = time()
            request = advance(i, answer)
            if request is None:
                del requests[i]
            else:
                requests[i] = request
            timings[i] += time() - start


class BaseMixture(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class for fastmix's mixture models (not for direct use)."""

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "random", "random_from_data", "k-means++"})],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        # Online learning (partial_fit), named as LatentDirichletAllocation names them.
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        # At least 0, as scikit-learn's LatentDirichletAllocation: the first
        # blended batch is t = 2, so every step stays below 1.
        "learning_offset": [Interval(Real, 0.0, None, closed="left")],
        "min_responsibility": [Interval(Real, 0.0, 1.0, closed="left")],
    }

    # Parameters of the online step (and reg_covar, which every update adds, and
    # n_components, which must stay the fitted one), checked again by a
    # partial_fit that finds them changed.
    _online_parameters = (
        "learning_decay", "learning_offset", "total_samples", "min_responsibility",
        "reg_covar", "n_components", "covariance_type", "weight_concentration_prior_type",
    )  # fmt: skip
    # Of those, the ones that shape the fitted arrays: a later batch refuses a change.
    _structural_parameters = ("covariance_type", "weight_concentration_prior_type")
    # Fitted attributes of the online state: a fit starts afresh without them.
    _online_attributes = ("n_batches_", "n_samples_seen_", "online_stats_")

    def __init__(
        self,
        n_components,
        tol,
        reg_covar,
        max_iter,
        n_init,
        init_params,
        random_state,
        warm_start,
        verbose,
        verbose_interval,
    ):
        self.n_components = n_components
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ----------------------------------------------------------------- hooks
    @abstractmethod
    def _check_parameters(self, source):
        """Validate the subclass's parameters against the data source (whose
        rows and weights data-dependent defaults use); return the validated inits."""

    @abstractmethod
    def _initialize(self, source, stats, inits):
        """Set the parameters from initial statistics (``stats`` may be None)."""

    @abstractmethod
    def _needs_resp_init(self, inits):
        """Whether the initialisation needs responsibilities from ``init_params``."""

    @abstractmethod
    def _kernel_params(self, dtype):
        """The E-step kernel's inputs for the current parameters."""

    def _validate_params(self):
        super()._validate_params()
        self._check_min_responsibility()

    def _check_min_responsibility(self):
        """Refuse a ``min_responsibility`` that could drop every responsibility of a row."""
        limit = 1.0 / self.n_components
        if self.min_responsibility > limit:
            raise ValueError(
                f"min_responsibility={self.min_responsibility!r} is above 1/n_components = "
                f"{limit:.6g}: a row whose responsibilities are all below it would add "
                f"nothing to the fit. Use at most 1/n_components (e.g. 1e-8), or 0 to keep "
                f"every responsibility."
            )

    def _stats_params(self, dtype):
        """:meth:`_kernel_params` for a pass whose statistics feed an update.

        The inputs that the last update left (:meth:`_keep_estep_inputs`)
        when the fitted attributes they came from still hold the same values.
        Carries ``min_responsibility``: the responsibilities below it are left
        out of the statistics (not of the log-likelihood). Not for 'tied',
        whose pooled second moment takes every row whole: dropping mass from
        its between-component term alone would gain no time and leave the
        rows' responsibilities short of the pooled weight they stand for.
        """
        kept = self._kept_estep_inputs(dtype)
        if kept is not None:
            params = KernelParams(*kept)  # a fresh one: min_resp is set below
        else:
            params = self._kernel_params(dtype)
        if self.covariance_type != "tied":
            params.min_resp = float(self.min_responsibility)
        return params

    # The fitted attributes (and parameters) that :meth:`_kernel_params` reads.
    _estep_sources: tuple = ()

    def _estep_sources_values(self):
        """The :attr:`_estep_sources` values, a tuple attribute's items flattened."""
        values = ()
        for name in self._estep_sources:
            value = getattr(self, name)
            values += value if isinstance(value, tuple) else (value,)
        return values

    def _estep_key(self, dtype):
        """What :meth:`_kernel_params` reads: its :meth:`_recall` sources."""
        return (np.dtype(dtype), self.covariance_type, *self._estep_sources_values())

    def _keep_estep_inputs(self, params, dtype):
        """Leave ``params``, the next E-step's inputs from an update, to :meth:`_stats_params`.

        Call after the attributes are set: what is kept with ``params`` is
        taken from them. ``params`` must be :meth:`_kernel_params`' numbers
        from those attributes (the tests pin each update's against it), or
        None where the update computed none: an earlier update's are dead.
        """
        if params is None:
            self.__dict__.pop("_estep_inputs", None)
            return
        self._remember("_estep_inputs", self._estep_key(dtype), params.args())

    def _kept_estep_inputs(self, dtype):
        """:meth:`_keep_estep_inputs`' inputs (``KernelParams.args()``), or None unless they apply.

        About 3 us at K = D = 16, against 15-20 us to recompute.
        """
        return self._recall("_estep_inputs", self._estep_key(dtype))

    # The private attributes that _remember fills: caches, never pickled.
    _caches = ("_estep_inputs", "_prior")

    def _remember(self, name, sources, value):
        """Keep ``value``, computed from ``sources`` alone, for :meth:`_recall` under ``name``.

        ``sources`` is a tuple of everything it was computed from: fitted
        attributes, parameters, the data's dtype. The kept state is plain
        tuples of arrays and values, so the model stays comparable and
        copyable; ``name`` is one of :attr:`_caches`.
        """
        snapshot = tuple(_fingerprint(v) if isinstance(v, np.ndarray) else None for v in sources)
        self.__dict__[name] = (sources, snapshot, value)

    def _recall(self, name, sources):
        """:meth:`_remember`'s value under ``name``, or None unless it still applies.

        It applies while every source is as kept: an array the same object
        holding the same shape, dtype and bytes (an attribute edited in place
        changes its bytes), any other value equal. About 0.5 us per array of
        K x D = 16 x 16 values.
        """
        kept = self.__dict__.get(name)
        if kept is None:
            return None
        then, snapshot, value = kept
        if len(sources) != len(then):
            return None
        for now, was, snap in zip(sources, then, snapshot, strict=True):
            if snap is not None:
                if now is not was or snap != _fingerprint(now):
                    return None
            elif isinstance(now, np.ndarray) or type(now) is not type(was) or now != was:
                return None
        return value

    @abstractmethod
    def _m_step(self, stats, dtype, derive=True):
        """Update the parameters from one E-step's statistics.

        With ``derive``, the arrays derived from them too (as
        :meth:`_derive_parameters`, from what the update computed where it
        can); ``fit``'s iterations read none of them and pass False.
        Returns the ``terms`` that :meth:`_compute_lower_bound` may take
        (what the update already computed of the bound), or None.
        """

    @abstractmethod
    def _compute_lower_bound(self, stats, terms=None):
        """The quantity whose change decides convergence (``terms``: :meth:`_m_step`'s)."""

    # Fitted attributes that define the model: n_init keeps the best trial's.
    _parameter_names: tuple = ()

    def _get_parameters(self):
        return tuple(getattr(self, name) for name in self._parameter_names)

    def _set_parameters(self, params):
        self.__dict__.pop("_estep_inputs", None)  # another trial's, or these: both dead now
        for name, value in zip(self._parameter_names, params, strict=True):
            setattr(self, name, value)
        self._derive_parameters()

    def __copy__(self):
        """A shallow copy (as :func:`copy.copy` makes one) with a list of bounds of its own.

        Every fitted array is rebound when the model changes, so a shallow
        copy keeps the values it was taken with; ``lower_bounds_``, which
        :meth:`partial_fit` appends to, is copied for the same reason.
        """
        new = object.__new__(type(self))
        new.__setstate__(self.__getstate__())  # what copy.copy does, scikit-learn's protocol
        if isinstance(new.__dict__.get("lower_bounds_"), list):
            new.lower_bounds_ = list(new.lower_bounds_)
        return new

    def __dask_tokenize__(self):
        """dask's token of the model: its pickled state, ``lower_bounds_`` as one array.

        dask-ml's ``Incremental`` tokenizes the model at every
        ``partial_fit``; dask pickles a list of NumPy floats item by item (0.1
        s a call after 2e4 batches, as the list grows by one a batch).
        """
        from dask.base import normalize_token  # only dask calls this

        state = self.__getstate__()
        bounds = state.get("lower_bounds_")
        if isinstance(bounds, list):
            try:
                state = dict(state, lower_bounds_=np.asarray(bounds, dtype=np.float64))
            except (TypeError, ValueError):  # not numbers: dask's own way
                pass
        return f"{type(self).__module__}.{type(self).__qualname__}", normalize_token(state)

    def __getstate__(self):
        # The caches of values computed from the attributes: recomputed, never
        # pickled. A new dict: object.__getstate__ returns the instance's own
        # __dict__, which pickling must not change.
        state = super().__getstate__()
        return {name: value for name, value in state.items() if name not in self._caches}

    def _derive_parameters(self):
        """Set the fitted arrays that follow from the parameters (``precisions_``)."""
        prec_chol = self.precisions_cholesky_
        if self.covariance_type not in ("full", "tied"):
            # Squares: float32's, exact products rounded once, are the float64
            # squares rounded to float32 bit for bit, so no float64 round trip.
            # An array even when 0-d ('tied-spherical'), as covariances_ is.
            self.precisions_ = np.asarray(np.square(prec_chol))
            return
        precisions = precisions_from_cholesky(
            np.asarray(prec_chol, dtype=np.float64), self.covariance_type
        )
        self.precisions_ = np.asarray(precisions, dtype=prec_chol.dtype)

    # ------------------------------------------------------------ validation
    def _validate_batch(self, X, sample_weight):
        """A later ``partial_fit`` batch: the fitted features and dtype, one row or more.

        Returns the source and whether X's values were checked for NaN and
        infinity. An unweighted float ndarray of the fitted dtype and width
        is not: a non-finite value makes the batch's log-likelihood sum
        non-finite (every weight is 1), and :meth:`_partial_fit_inplace`
        validates X then, for scikit-learn's message. The scan would cost
        15 us of a 1e4 x 16 batch's 0.7 ms.
        """
        name = type(self).__name__
        dtype = np.asarray(self.means_).dtype
        if is_out_of_core(X):
            check_2d(X, name, min_samples=1)
            validate_data(self, X, reset=False, skip_check_array=True)
            source = open_for_fit(X, sample_weight, 1, name, min_samples=1, dtype=dtype)
            return source, True
        checked = True
        if self._plain_batch(X, dtype):
            checked = sample_weight is not None
            if checked and not np.isfinite(X).all():
                X = validate_data(self, X, reset=False, dtype=dtype)  # raises, naming the NaN
        else:
            X = validate_data(self, X, reset=False, dtype=dtype)
        return ArraySource(X, check_sample_weight(sample_weight, X.shape[0], 1)), checked

    def _plain_batch(self, X, dtype):
        """Whether X needs no conversion and no check but finiteness (the streaming case).

        scikit-learn's validate_data costs about a third of a 1e4-row E-step;
        anything unusual (another type, dtype or width, feature names) still
        goes through it, for its messages.
        """
        return (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype == dtype
            and X.shape[1] == self.n_features_in_
            and X.shape[0] > 0
            and not hasattr(self, "feature_names_in_")
        )

    def _validate_fit_data(self, X, sample_weight):
        """``X`` and ``sample_weight`` validated, as one data source."""
        if is_out_of_core(X):
            # memmap, row-sliceable array-like, dask array: validated block by
            # block and streamed (fastmix._sources); feature counts and names
            # checked here, without reading the data.
            check_2d(X, type(self).__name__, min_samples=2)
            if self.warm_start and hasattr(self, "converged_"):
                validate_data(self, X, reset=False, skip_check_array=True)
            validate_data(self, X, skip_check_array=True)
            return open_for_fit(X, sample_weight, self.n_components, type(self).__name__)
        if self.warm_start and hasattr(self, "converged_"):
            # A warm start continues from parameters of a fixed dimension.
            validate_data(self, X, reset=False, dtype=list(_FLOAT_DTYPES), skip_check_array=True)
        X = validate_data(self, X, dtype=list(_FLOAT_DTYPES), ensure_min_samples=2)
        if X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        sample_weight = check_sample_weight(sample_weight, X.shape[0], self.n_components)
        return ArraySource(X, sample_weight)

    def _validate_predict_data(self, X):
        """``X`` validated against the fitted model, as one data source.

        Read in NumPy's promotion of X's dtype and the model's, as scikit-learn
        computes: a float64 model's outputs of float32 rows are float64 sums
        (each block converted as it is read), not float32 ones with the
        parameters rounded to float32.
        """
        check_is_fitted(self)
        model_dtype = np.asarray(self.means_).dtype
        if is_out_of_core(X):
            # Its dimensions first: a 3-D memmap's "features" are not the problem.
            check_2d(X, type(self).__name__, min_samples=1)
            validate_data(self, X, reset=False, skip_check_array=True)
            return open_for_predict(X, type(self).__name__, model_dtype)
        X = validate_data(self, X, reset=False, dtype=list(_FLOAT_DTYPES))
        return ArraySource(X, dtype=np.result_type(X.dtype, model_dtype))

    # -------------------------------------------------------- initialisation
    def _initialize_parameters(self, source, random_state, inits):
        stats = None
        if self._needs_resp_init(inits):
            # Consumes random_state exactly as scikit-learn does (fastmix._sources._init).
            code = COV_CODES[self.covariance_type]
            request = InitRequest(self.init_params, self.n_components, code, random_state)
            (stats,) = source.initial_stats([request])
        self._initialize(source, stats, inits)

    # -------------------------------------------------------------- the loop
    def fit(self, X, y=None, sample_weight=None):
        """Estimate model parameters with the EM algorithm.

        The method fits the model ``n_init`` times and keeps the parameters with
        the largest likelihood or lower bound. Within each trial, it iterates
        between E-step and M-step ``max_iter`` times or until the change of the
        lower bound is less than ``tol``; otherwise a ``ConvergenceWarning`` is
        raised. With ``warm_start=True``, ``n_init`` is ignored and training
        continues from the previous fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, float64 or float32 (other types are converted to
            float64). float32 data are computed in float32 with float64
            accumulation, and the fitted arrays are float32.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative finite weights. An integer weight gives the model of
            the repeated row; a zero weight that of the dropped row.

        Returns
        -------
        self : object
            The fitted mixture.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.means_.round(2)
        array([[ 2.86,  2.89],
               [-3.  , -2.86]])
        >>> gm.converged_, gm.n_iter_
        (True, 2)
        """
        self._fit(X, sample_weight, want_labels=False)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Estimate model parameters using X and predict the labels for X.

        Same fit as :meth:`fit`, followed by a final E-step so that
        ``fit_predict(X)`` equals ``fit(X).predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative finite weights, as in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> labels = GaussianMixture(n_components=2, random_state=0).fit_predict(X)
        >>> np.bincount(labels)
        array([100, 100])
        """
        return self._fit(X, sample_weight, want_labels=True)

    def _fit(self, X, sample_weight, want_labels):
        self._validate_params()
        return self._on_a_copy(self._fit_inplace, X, sample_weight, want_labels)

    def _on_a_copy(self, method, *args, limit_blas=True):
        """Run ``method`` (of this model) on a shallow copy, then take the copy's state.

        An error anywhere leaves a fitted model untouched. BLAS is held to one
        thread meanwhile (unless ``limit_blas`` is False: for work that calls
        no BLAS, the limit's four library calls are 7-18 us of a 1e4-row
        ``partial_fit``): the updates call it on tiny matrices between
        parallel kernels, and a BLAS pool spinning beside numba's threads
        starves them (STYLE habit 13).
        """
        # A shallow copy: copy.copy's pickle protocol (scikit-learn's
        # __getstate__/__setstate__) costs 6 us of a 1e4-row partial_fit.
        work = object.__new__(type(self))
        work.__dict__.update(self.__dict__)
        with single_threaded_blas() if limit_blas else contextlib.nullcontext():
            result = getattr(work, method.__name__)(*args)
        self.__dict__.clear()
        self.__dict__.update(work.__dict__)
        return result

    def _fit_inplace(self, X, sample_weight, want_labels):
        source = self._validate_fit_data(X, sample_weight)
        for name in (*self._online_attributes, "_online_parameters_checked", "_estep_inputs"):
            # A fit starts afresh (scikit-learn's convention after partial_fit).
            self.__dict__.pop(name, None)
        fit_in_lockstep(source, [self])
        # Only warn when iterating: max_iter=0 asks for the initialisation alone.
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=4,  # the user's fit / fit_predict call
            )
        if not want_labels:
            return None
        # The final E-step makes fit_predict(X) equal fit(X).predict(X).
        params = self._kernel_params(source.dtype)
        _, labels, _ = source.estep_outputs(params, want_resp=False)
        return labels

    def _fit_steps(self, source):
        """The fit loop as a generator of the passes it needs.

        Yields an :class:`~fastmix._sources.InitRequest` when a trial needs
        initial statistics and a :class:`~fastmix._stats.KernelParams` when an
        iteration needs an E-step pass; receives the answer (a ``Stats``) by
        ``send``. :func:`fit_in_lockstep` serves one model (``fit``) or many at
        once, one read of the data per round (model selection). The loop is
        scikit-learn's: n_init trials, the change of the lower bound against
        ``tol``, verbose messages, the best trial kept.
        """
        inits = self._check_parameters(source)
        dtype = source.dtype
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1

        max_lower_bound = -np.inf
        best_lower_bounds = []
        self.converged_ = False
        random_state = check_random_state(self.random_state)

        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                stats = None
                if self._needs_resp_init(inits):
                    code = COV_CODES[self.covariance_type]
                    request = InitRequest(self.init_params, self.n_components, code, random_state)
                    stats = yield request
                self._initialize(source, stats, inits)
            lower_bound = -np.inf if do_init else self.lower_bound_
            current_lower_bounds = []

            if self.max_iter == 0:
                best_params = self._get_parameters()
                best_n_iter = 0
            else:
                converged = False
                for n_iter in range(1, self.max_iter + 1):
                    prev_lower_bound = lower_bound
                    stats = yield self._stats_params(dtype)
                    if not np.isfinite(stats.sum_wlogp):
                        raise ValueError(precision_error_message(dtype))
                    terms = self._m_step(stats, dtype, derive=False)
                    lower_bound = self._compute_lower_bound(stats, terms)
                    current_lower_bounds.append(lower_bound)

                    change = lower_bound - prev_lower_bound
                    self._print_verbose_msg_iter_end(n_iter, change)
                    _notify_progress(init, n_iter, self.max_iter, lower_bound, change)
                    if abs(change) < self.tol:
                        converged = True
                        break

                self._print_verbose_msg_init_end(lower_bound, converged)
                if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                    max_lower_bound = lower_bound
                    best_params = self._get_parameters()
                    best_n_iter = n_iter
                    best_lower_bounds = current_lower_bounds
                    self.converged_ = converged

        self._set_parameters(best_params)
        self.n_iter_ = best_n_iter
        self.lower_bound_ = max_lower_bound
        self.lower_bounds_ = best_lower_bounds

    # --------------------------------------------------------- online learning
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one batch of rows (stepwise EM / stochastic VI).

        The first call initialises from its batch exactly as :meth:`fit` does
        (``init_params``, the explicit inits, or with ``warm_start=True`` the
        fitted parameters; ``n_init`` trials, the best kept) and takes that
        batch's statistics whole: it equals ``fit`` with ``max_iter=1``.
        Each later call runs one E-step on its batch and blends the batch's
        statistics into the running statistics with step
        ``rho_t = (learning_offset + t) ** -learning_decay``, ``t`` counting
        batches from 1, then updates the parameters from them. A component
        whose running count has decayed to nothing while the batches bring it
        no rows keeps its mean and covariance (``GaussianMixture``; the
        Bayesian mixture falls back to its prior); its weight still decays.
        A :meth:`fit` afterwards starts afresh.

        Parameters
        ----------
        X : array-like of shape (n_batch, n_features)
            A batch: an ndarray, a memmap or a dask array (one step over the
            whole argument). The first batch needs at least ``n_components``
            rows; later ones are converted to the fitted dtype.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_batch,), default=None
            The batch rows' weights; an integer weight counts a row that many
            times in the running statistics too.

        Returns
        -------
        self : object
            The updated mixture.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> gm = GaussianMixture(n_components=2, random_state=0)
        >>> for _ in range(20):
        ...     batch = np.r_[rng.randn(100, 2) - 4, rng.randn(100, 2) + 4]
        ...     gm = gm.partial_fit(batch)
        >>> np.round(np.sort(gm.means_[:, 0]))
        array([-4.,  4.])
        >>> gm.n_batches_
        20
        """
        # scikit-learn's partial_fit convention: the parameters are validated
        # once, except the step's own, checked again whenever they differ from
        # the values last checked. The values checked are remembered by the
        # copy that _on_a_copy keeps only on success: a failed call leaves
        # the model as it was.
        values = self._online_parameter_values()
        names = list(values)
        if not hasattr(self, "n_batches_"):
            self._validate_params()
        elif not _same_values(values, self.__dict__.get("_online_parameters_checked")):
            validate_parameter_constraints(
                {n: self._parameter_constraints[n] for n in names},
                values,
                caller_name=type(self).__name__,
            )
            self._check_fitted_components("partial_fit continues that fit")
            checked = self.__dict__.get("_online_parameters_checked") or {}
            for name in self._structural_parameters:
                if name in checked and name in values and values[name] != checked[name]:
                    raise ValueError(
                        f"{name}={values[name]!r}, but this model's partial_fit started "
                        f"with {checked[name]!r}: partial_fit continues that fit. Set "
                        f"{name} back to {checked[name]!r}, or call fit to start afresh."
                    )
            self._check_min_responsibility()
        # Only the first call initialises (BLAS on the data's scale), so later
        # ones hold BLAS to one thread only where the update calls it.
        limit_blas = not hasattr(self, "n_batches_") or self._update_calls_blas()
        self._on_a_copy(self._partial_fit_inplace, X, sample_weight, values, limit_blas=limit_blas)
        # Appended in place, as scikit-learn's online estimators append their
        # curves (a new list per batch made every call O(batches seen): 45 us
        # at 1e4 batches, 0.28 ms at 1e5, against the 0.55 ms pass of a 1e4 x
        # 16 batch); here, once the call has succeeded, because the working
        # copy shares the list. A copy.copy of the model gets its own (__copy__).
        self.lower_bounds_.append(self.lower_bound_)
        return self

    def _online_parameter_values(self):
        """The values of this estimator's :attr:`_online_parameters`, by name."""
        names = [n for n in self._online_parameters if n in self._parameter_constraints]
        return {n: getattr(self, n) for n in names}

    def _check_fitted_components(self, why):
        """Refuse when ``n_components`` no longer matches the fitted model (``why`` it must)."""
        fitted = np.shape(self.weights_)[0]
        if self.n_components != fitted:
            raise ValueError(
                f"n_components={self.n_components!r}, but this model was fitted with "
                f"{fitted} components: {why}. Set n_components back to {fitted}, or "
                "call fit to start afresh."
            )

    def _update_calls_blas(self):
        """Whether the update from statistics (not the initialisation) calls BLAS."""
        return True

    def _partial_fit_inplace(self, X, sample_weight, checked_parameters):
        if not hasattr(self, "n_batches_"):
            source = self._validate_fit_data(X, sample_weight)
            running, lower_bound = self._first_batch(source)
            self.lower_bounds_ = []
            self.n_batches_ = 0
            self.n_samples_seen_ = 0
        else:
            source, checked = self._validate_batch(X, sample_weight)
            batch = self._online_batch(source, X, checked, far_rows_error_message)
            scale = self._online_scale(batch)
            rho = (self.learning_offset + self.n_batches_ + 1) ** -self.learning_decay
            previous = Stats.from_arrays(self.online_stats_)
            code = COV_CODES[self.covariance_type]
            running = previous.blended(rho, batch, scale * rho, code)
            terms = self._online_m_step(running, batch, source.dtype, later=True)
            lower_bound = self._online_lower_bound(batch, scale, terms)
        self.online_stats_ = running.to_arrays()
        self.n_batches_ += 1
        self.n_samples_seen_ += source.n_samples
        self.n_iter_ = self.n_batches_
        self.converged_ = False
        # The estimator's own bound on this batch (EM: its mean log-likelihood
        # per row; VI: the ELBO of the batch scaled to total_samples).
        self.lower_bound_ = lower_bound
        self._online_parameters_checked = checked_parameters
        # (partial_fit appends the bound to lower_bounds_ once this succeeded.)

    def _first_batch(self, source):
        """The first ``partial_fit``: :meth:`fit` with ``max_iter=1`` on the batch.

        ``n_init`` trials, each started as ``fit`` starts one (``random_state``
        consumed in the same order), the best by the batch's bound kept with
        its running statistics; with a warm start, one step from the fitted
        parameters. Returns ``(running statistics, bound)``.
        """
        inits = self._check_parameters(source)
        warm = self.warm_start and hasattr(self, "converged_")
        if warm:
            self._check_fitted_components("a warm-started partial_fit continues that fit")
        n_init = 1 if warm else self.n_init
        random_state = check_random_state(self.random_state)
        best_bound, best = -np.inf, None
        for trial in range(n_init):
            if not warm:
                self._initialize_parameters(source, random_state, inits)
            # X is finite: the start checks for overflow itself.
            batch = self._online_batch(source, None, True, precision_error_message)
            scale = self._online_scale(batch)
            running = batch.scaled(scale)
            terms = self._online_m_step(running, batch, source.dtype)
            bound = self._online_lower_bound(batch, scale, terms)
            # fit's rule for the best trial.
            if best is None or bound > best_bound or best_bound == -np.inf:
                best_bound = bound
                best = (trial, running, self._get_parameters())
        best_trial, running, parameters = best
        if best_trial != n_init - 1:
            self._set_parameters(parameters)
        return running, best_bound

    def _online_batch(self, source, X, checked, error_message):
        """One E-step pass over a ``partial_fit`` batch: its :class:`Stats`.

        A non-finite log-likelihood sum is refused: with scikit-learn's
        message for a NaN or infinity in an unchecked ``X``, else with
        ``error_message``'s.
        """
        dtype = source.dtype
        (batch,) = source.estep_pass([self._stats_params(dtype)])
        if not math.isfinite(batch.sum_wlogp):
            if not checked:
                validate_data(self, X, reset=False, dtype=dtype)  # NaN or inf in X: its message
            raise ValueError(error_message(dtype))
        return batch

    def _online_scale(self, batch):
        """Factor from a batch's statistics to the running statistics' units."""
        return 1.0 / batch.sum_w

    def _online_m_step(self, running, batch, dtype, later=False):
        """:meth:`_m_step` from the running statistics (in the batch's units for EM).

        ``later``: a later batch's update, not the first call's (which is
        ``fit``'s own update).
        """
        return self._m_step(running.scaled(batch.sum_w), dtype)

    def _online_lower_bound(self, batch, scale, terms=None):
        """The bound recorded for a batch: the estimator's own, at the running scale."""
        return self._compute_lower_bound(batch.scaled(scale), terms)

    # ------------------------------------------------------------ prediction
    def _outputs(self, X, want_resp):
        """``(log p(x), labels, responsibilities or None)``, floats in scikit-learn's dtype.

        scikit-learn computes in NumPy's promotion of X's and the parameters'
        dtypes (a float64 model given float32 rows answers in float64); the
        source forms each block's outputs in that dtype, so no whole-data
        float64 temporary is held beside the result.
        """
        source = self._validate_predict_data(X)
        params = self._kernel_params(source.dtype)
        dtype = np.result_type(source.dtype, self.means_.dtype)
        return source.estep_outputs(params, want_resp, dtype=dtype)

    def score_samples(self, X):
        """Compute the log-likelihood of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to score: an array, a memmap (read block by block) or a
            dask array (the result is then a dask array).

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Log-likelihood of each sample in `X` under the current model, in
            NumPy's promotion of X's and the model's dtypes (as scikit-learn).

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.score_samples([[-3, -3], [0, 0]]).round(2)
        array([ -2.58, -10.85])
        """
        log_prob_norm, _, _ = self._outputs(X, want_resp=False)
        return log_prob_norm

    def score(self, X, y=None):
        """Compute the per-sample average log-likelihood of the given data X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows whose mean log-likelihood is wanted (any X that
            :meth:`score_samples` takes).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        log_likelihood : float
            Log-likelihood of `X` under the Gaussian mixture model.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> round(gm.score(X), 3)
        -3.489
        """
        # As scikit-learn: the mean of score_samples, in their dtype.
        log_prob_norm, _, _ = self._outputs(X, want_resp=False)
        return float(log_prob_norm.mean())

    def predict(self, X):
        """Predict the labels for the data samples in X using trained model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows to label, one component each (the most responsible).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.predict([[-3, -3], [3, 3]])
        array([1, 0])
        """
        _, labels, _ = self._outputs(X, want_resp=False)
        return labels

    def predict_proba(self, X):
        """Evaluate the components' density for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows whose responsibilities are wanted: the only call that forms
            an (n_samples, n_components) array, because it is the answer.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Posterior probability of each component for each sample in X.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> gm.predict_proba([[-3, -3], [0, 0]]).round(3)
        array([[0.   , 1.   ],
               [0.173, 0.827]])
        """
        _, _, resp = self._outputs(X, want_resp=True)
        return resp

    def sample(self, n_samples=1):
        """Generate random samples from the fitted Gaussian distribution.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Randomly generated sample.
        y : ndarray of shape (n_samples,)
            Component labels.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> X_new, labels = gm.sample(4)
        >>> X_new.shape, labels
        ((4, 2), array([0, 0, 1, 1]))
        """
        check_is_fitted(self)
        if n_samples < 1:
            # scikit-learn's message, with n_samples where it shows n_components.
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (n_samples)
            )
        _, n_features = self.means_.shape
        rng = check_random_state(self.random_state)
        weights = np.asarray(self.weights_, np.float64)
        if weights[:-1].sum() > 1.0:
            # float32 weights (a float32 model's, with a tail of tiny ones) can
            # sum above 1 by their rounding, which multinomial refuses; scaled
            # to sum to 1 then only: elsewhere the draws stay scikit-learn's.
            weights = weights / weights.sum()
        n_samples_comp = rng.multinomial(n_samples, weights)
        if self.covariance_type == "full":
            X = np.vstack(
                [
                    rng.multivariate_normal(mean, covariance, int(sample))
                    for (mean, covariance, sample) in zip(
                        self.means_, self.covariances_, n_samples_comp, strict=True
                    )
                ]
            )
        elif self.covariance_type == "tied":
            X = np.vstack(
                [
                    rng.multivariate_normal(mean, self.covariances_, int(sample))
                    for (mean, sample) in zip(self.means_, n_samples_comp, strict=True)
                ]
            )
        else:
            covariances = self.covariances_
            if self.covariance_type in ("tied-diagonal", "tied-spherical"):
                covariances = [covariances] * len(self.means_)
            X = np.vstack(
                [
                    mean + rng.standard_normal(size=(sample, n_features)) * np.sqrt(covariance)
                    for (mean, covariance, sample) in zip(
                        self.means_, covariances, n_samples_comp, strict=True
                    )
                ]
            )
        y = np.concatenate(
            [np.full(sample, j, dtype=np.int64) for j, sample in enumerate(n_samples_comp)]
        )
        return np.asarray(X, dtype=np.float64), y

    # ----------------------------------------------------------- persistence
    def save(self, path):
        """Save the fitted model to ``path`` as an ``.npz`` file, without pickle.

        The file holds a format version, the class name, the constructor
        parameters and every fitted attribute as plain arrays (layout in
        ``docs/persistence.md``); :func:`fastmix.load` reads it back with
        ``allow_pickle=False`` into a model that predicts identically, dtypes
        kept.

        Parameters
        ----------
        path : str, bytes, path-like or writable binary file
            Where to write; the name is used as given (no suffix is added).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When the model is not fitted.
        ValueError
            When a parameter that shapes the fitted arrays (``n_components``,
            ``covariance_type``, the weight prior's type) was changed by
            ``set_params`` after the fit, or the file would not load back as
            this model (:func:`fastmix.save` has the details); nothing is
            written then.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
        >>> gm.save(path)
        >>> import fastmix
        >>> fastmix.load(path).predict([[3, 3]])
        array([0])
        """
        save(self, path)

    def _check_savable(self):
        """Refuse a model whose parameters no longer describe its fit (load would refuse it).

        The components' count, then the arrays predict reads, checked against
        the parameters before anything is written.
        """
        self._check_fitted_components("the file must describe that fit")
        # The shapes, in the model's dtype (a dtype that load refuses, e.g.
        # big-endian, is refused reading the file back).
        dtype = np.asarray(self.means_).dtype
        self._kernel_params(dtype if dtype in (np.float32, np.float64) else np.float64)

    # --------------------------------------------------------------- verbose
    def _print_verbose_msg_init_beg(self, n_init):
        if self.verbose == 1:
            print("Initialization %d" % n_init)
        elif self.verbose >= 2:
            print("Initialization %d" % n_init)
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter, diff_ll):
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % n_iter)
            elif self.verbose >= 2:
                cur_time = time()
                print(
                    "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
                    % (n_iter, cur_time - self._iter_prev_time, diff_ll)
                )
                self._iter_prev_time = cur_time

    def _print_verbose_msg_init_end(self, lb, init_has_converged):
        converged_msg = "converged" if init_has_converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(f"Initialization {converged_msg}. time lapse {t:.5f}s\t lower bound {lb:.5f}.")
