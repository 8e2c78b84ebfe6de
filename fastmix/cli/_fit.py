"""``fastmix fit`` and ``fastmix predict``: fit a mixture to a data file; label data with it."""

import collections
import contextlib
import json
import os
import time
import warnings

import numpy as np

from .._sources import BlockSource
from .._validation import check_sample_weight
from ._pictures import check_out_and_plot, write_pictures
from ._readers import (
    TEXT_DELIMITERS,
    check_feature_names,
    keep_feature_names,
    naming_non_finite,
    read_table,
    read_weights,
)
from ._report import ProgressReporter, finite_or_none, progress_mode, warn_lines
from ._usage import UsageError, check_input_file, check_output, extension, streams
from ._warmup import first_run_note

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")

_BAYESIAN_OPTIONS = (
    "weight_concentration_prior_type",
    "weight_concentration_prior",
    "mean_precision_prior",
    "degrees_of_freedom_prior",
)


def _build_model(args):
    from .. import BayesianGaussianMixture, GaussianMixture

    params = dict(
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        max_iter=args.max_iter,
        tol=args.tol,
        reg_covar=args.reg_covar,
        min_responsibility=args.min_responsibility,
        n_init=args.n_init,
        init_params=args.init_params,
        random_state=args.random_state,
    )
    if not args.online and (args.batch_size != 65536 or args.passes != 1):
        raise UsageError("--batch-size and --passes need --online")
    for option, name, default in (
        ("--max-iter", "max_iter", 100), ("--n-init", "n_init", 1), ("--tol", "tol", 1e-3)
    ):  # fmt: skip
        if args.online and getattr(args, name) != default:
            # partial_fit initialises once, from the first block, and steps once a
            # block until the passes end: no trials, no convergence test.
            raise UsageError(
                f"{option} has no effect with --online (one partial_fit step per block); "
                "--passes sets how many times the data are read"
            )
    if args.plot is None and args.plot_dims != (0, 1):
        raise UsageError("--plot-dims has no effect without --plot: give --plot PATH too")
    if args.online and args.batch_size < max(2, args.n_components):
        # The first partial_fit initialises from one block.
        raise UsageError(
            f"--batch-size {args.batch_size} is too small: the first block initialises "
            f"the fit and needs at least {max(2, args.n_components)} rows (2, and -k); "
            f"give --batch-size {max(2, args.n_components)} or more"
        )
    given = [name for name in _BAYESIAN_OPTIONS if getattr(args, name) is not None]
    if not args.bayesian:
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} needs --bayesian")
        return GaussianMixture(**params)
    params.update({name: getattr(args, name) for name in given})
    return BayesianGaussianMixture(**params)


def _floats(values):
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _format_mean(mean, shown=6):
    cells = ", ".join(f"{v:.4g}" for v in mean[:shown])
    return f"({cells}{', ...' if len(mean) > shown else ''})"


def run_fit(args, out=None, err=None):
    """Fit a mixture to a data file; print a summary; save the model and a picture.

    Parameters
    ----------
    args : argparse.Namespace
        As parsed by ``fastmix fit``.
    out, err : file-like, optional
        Where the summary goes, and where progress and warnings go (stdout and stderr
        when omitted).

    Returns
    -------
    status : int
        0 once the model is fitted, and saved and drawn when asked.
    """
    from .._progress import report_progress

    out, err = streams(out, err)
    prog = "fastmix fit"
    # Every check that can fail does so before the data are read and fitted.
    model = _build_model(args)
    model._validate_params()
    mode = progress_mode(args.progress)
    check_out_and_plot(args)
    X, names = read_table(args.data, key=args.key, shape=args.shape, dtype=args.dtype)
    n_samples, n_features = X.shape
    if args.plot is not None and n_features >= 2 and max(args.plot_dims) >= n_features:
        raise UsageError(
            f"--plot-dims {args.plot_dims[0]},{args.plot_dims[1]}: DATA has {n_features} "
            f"features (indices 0 to {n_features - 1})"
        )
    sample_weight = None
    if args.sample_weight is not None:
        sample_weight = read_weights(args.sample_weight, n_samples)

    intro = (
        f"{prog}: {' '.join(repr(model).split())} on {n_samples:,} x {n_features} "
        f"{X.dtype.name} from {args.data}"
    )
    first_run_note(prog, err)
    method = "VI" if args.bayesian else "EM"
    reporter = ProgressReporter(
        mode, args.n_init, args.tol, err, prog, intro=intro, method=method, online=args.online
    )
    reporter_or_none = None if mode == "none" else reporter
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with naming_non_finite(X, args.data), report_progress(reporter_or_none):
                t0 = time.perf_counter()
                if args.online:
                    fit_online(model, X, sample_weight, args, reporter)
                else:
                    model.fit(X, sample_weight=sample_weight)
                seconds = time.perf_counter() - t0
        finally:
            reporter.close()
        bayesian = args.bayesian
        # Not after an online fit: the BIC is one more pass over DATA, which
        # --online exists to read only --passes times.
        bic = None if bayesian or args.online else float(model.bic(X))
    warn_lines(caught, prog, err)

    pictures = []
    if args.plot is not None:
        pictures = write_pictures(model, X, path=args.plot, dims=args.plot_dims)
    keep_feature_names(model, names)
    if args.out is not None:
        model.save(args.out)

    summary = {
        "model": type(model).__name__,
        "data": os.fspath(args.data),
        "n_samples": n_samples,
        "n_features": n_features,
        "dtype": X.dtype.name,
        "n_components": model.n_components,
        "covariance_type": model.covariance_type,
        "sample_weight": args.sample_weight,
        "weights": _floats(model.weights_),
        "means": np.asarray(model.means_, dtype=np.float64).tolist(),
        # -inf (max_iter=0: no iteration ran) is null: JSON has no infinities.
        "lower_bound": finite_or_none(model.lower_bound_),
        "lower_bound_kind": "elbo" if bayesian else "log_likelihood_per_sample",
        "lower_bounds": _floats(model.lower_bounds_),
        "bic": bic,
        "n_iter": int(model.n_iter_),
        "online": bool(args.online),
        "converged": bool(model.converged_),
        "max_iter": model.max_iter,
        "tol": model.tol,
        "seconds": seconds,
        "out": args.out,
        "plot": args.plot,
    }
    if args.json:
        json.dump(summary, out, indent=2)
        out.write("\n")
        out.flush()
        return 0

    def say(line=""):
        print(line, file=out, flush=True)

    say(
        f"{summary['model']} ({model.covariance_type}, K={model.n_components}) fitted to "
        f"{n_samples:,} x {n_features} {X.dtype.name} from {args.data}"
        + (f", weighted by {args.sample_weight}" if args.sample_weight else "")
    )
    say()
    say(f"{'component':>9}  {'weight':>7}  mean")
    for k, (weight, mean) in enumerate(zip(summary["weights"], summary["means"], strict=True)):
        say(f"{k:>9d}  {weight:7.4f}  {_format_mean(mean)}")
    say()
    if bayesian:
        say(f"lower bound (ELBO):     {float(model.lower_bound_):.6f}")
    else:
        say(f"log-likelihood / point: {float(model.lower_bound_):.6f} (lower_bound_)")
        if bic is None:
            say("BIC:                    not computed (one more pass over DATA; --online)")
        else:
            say(f"BIC:                    {bic:.6g}")
    if args.online:
        say(
            f"batches:                {model.n_batches_} (online: {args.passes} pass(es), "
            f"{args.batch_size:,} rows per batch)"
        )
    else:
        say(
            f"iterations:             {model.n_iter_} (max_iter={model.max_iter}, tol={model.tol})"
        )
        say(f"converged:              {model.converged_}")
    say(f"fit seconds:            {seconds:.3f}")
    if args.out is not None:
        say(f"model written to:       {args.out}")
    for path in pictures:
        say(f"plot written to:        {path}")
    return 0


# ----------------------------------------------------------------------- predict
def _write_array(path, array, header):
    ext = extension(path)
    if ext == ".npy":
        with open(path, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        return
    # Enough digits to read the same float back.
    fmt = "%d" if array.dtype.kind in "iu" else ("%.9g" if array.dtype == np.float32 else "%.17g")
    np.savetxt(
        path,
        array,
        fmt=fmt,
        delimiter=TEXT_DELIMITERS[ext],
        header=TEXT_DELIMITERS[ext].join(header),
        comments="",
    )


def run_predict(args, out=None, err=None):
    """Label the rows of a data file with a saved model.

    Parameters
    ----------
    args : argparse.Namespace
        As parsed by ``fastmix predict``.
    out, err : file-like, optional
        Where the one-line report goes, and where warnings go (stdout and stderr
        when omitted).

    Returns
    -------
    status : int
        0 once every row is labelled.
    """
    from .. import load

    out, err = streams(out, err)
    prog = "fastmix predict"
    if args.out is not None:
        check_output(args.out, "--out", extensions=(".npy", *TEXT_DELIMITERS))
    check_input_file(args.model, "MODEL")
    model = load(args.model)
    X, names = read_table(args.data, key=args.key, shape=args.shape, dtype=args.dtype)
    if X.shape[1] != model.n_features_in_:
        raise UsageError(
            f"{args.data} has {X.shape[1]} feature{'s' if X.shape[1] != 1 else ''} per row, "
            f"but the model {args.model} was fitted on {model.n_features_in_}"
        )
    check_feature_names(model, names, args.data, args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # The names were checked above; the array itself carries none.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        with naming_non_finite(X, args.data):
            if args.proba:
                result = model.predict_proba(X)
                header = [f"component_{k}" for k in range(model.n_components)]
            else:
                result = model.predict(X)
                header = ["label"]
    warn_lines(caught, prog, err)
    if args.out is None:
        # Without --out the rows are the output (for a pipe): no header, no summary.
        fmt = "%d" if result.dtype.kind in "iu" else "%.9g"
        np.savetxt(out, result, fmt=fmt, delimiter=",")
        out.flush()
        return 0
    _write_array(args.out, result, header)
    what = "probabilities" if args.proba else "labels"
    print(
        f"{prog}: {what} of {X.shape[0]:,} rows ({result.dtype.name}, shape "
        f"{result.shape}) written to {args.out}",
        file=out,
        flush=True,
    )
    return 0


def fit_online(model, X, sample_weight, args, reporter):
    """``fastmix fit --online``: ``partial_fit`` over blocks of rows in a shuffled order.

    Each pass visits the blocks of ``args.batch_size`` rows in an order drawn
    from ``args.random_state``; rows inside a block stay in order, so a memmap
    is read in long sequential runs. The reporter gets one "iteration" per
    block (its bar or text lines per pass).
    """
    n_samples = X.shape[0]
    if sample_weight is not None:
        # The whole file's weights, checked as fit checks them: a file of zero
        # weights is refused here, a block of them skipped below (partial_fit
        # refuses a batch that carries no weight).
        check_sample_weight(sample_weight, n_samples, model.n_components)
    if hasattr(model, "total_samples"):
        # Stochastic VI: every batch stands for the whole file.
        model.set_params(total_samples=float(n_samples))
    starts = np.arange(0, n_samples, args.batch_size)
    stops = np.minimum(starts + args.batch_size, n_samples)
    positive = stops - starts
    if sample_weight is not None:
        positive = np.add.reduceat((sample_weight > 0).astype(np.int64), starts)
    # The first partial_fit initialises from its block, which needs
    # n_components rows of positive weight (and two rows): a block that can
    # start the fit leads the first pass, wherever the shuffle put it (the
    # short last block, or one of zero weights, cannot).
    opens = (stops - starts >= max(2, model.n_components)) & (positive >= model.n_components)
    rng = np.random.RandomState(args.random_state)
    reporter._label = lambda p: f"pass {p + 1}/{args.passes}"
    visits = collections.deque()  # (pass, place in the pass) of each range yielded

    # Blocks whose rows all weigh zero are skipped: the progress counts the others.
    n_visited = int(np.count_nonzero(positive))

    def ranges():
        # Each pass's order is drawn when its first block is asked for: the
        # reader asks one block ahead, across the passes' boundaries too.
        for p in range(args.passes):
            order = rng.permutation(len(starts))
            if p == 0 and opens.any():
                first = np.flatnonzero(opens[order])[0]
                order[[0, first]] = order[[first, 0]]
            for i, b in enumerate(order[positive[order] > 0]):
                visits.append((p, i))
                yield starts[b], stops[b]

    if isinstance(X, np.memmap):
        # Each block is read once, into memory, the next one while partial_fit
        # computes on this one (BlockSource.read_ahead); partial_fit gets an
        # ndarray: a memmap slice would be read twice, once for its finiteness check.
        blocks = BlockSource(X, X.dtype).read_ahead(ranges())
    else:
        blocks = ((start, stop, X[start:stop]) for start, stop in ranges())
    previous = -np.inf
    # closing: an error in partial_fit stops the reader (its thread and file) at once.
    with contextlib.closing(blocks):
        for start, stop, block in blocks:
            p, i = visits.popleft()
            w = None if sample_weight is None else sample_weight[start:stop]
            model.partial_fit(block, sample_weight=w)
            bound = model.lower_bound_
            reporter(p, i + 1, n_visited, bound, bound - previous if i > 0 else np.inf)
            previous = bound
