"""``fastmix select``: choose K and the covariance structure of a data file."""

import json
import os
import time
import warnings

from ._pictures import check_out_and_plot
from ._readers import keep_feature_names, naming_non_finite, read_table, read_weights
from ._report import finite_or_none, warn_lines
from ._usage import UsageError, streams


def parse_k_range(text):
    """``1-20``, ``2,4,8`` or a mix (``1-5,8``): the numbers of components to try.

    Raises
    ------
    ValueError
        With the expected form, for anything else.
    """
    ks = []
    for part in (p.strip() for p in text.split(",")):
        bounds = part.split("-")
        try:
            if len(bounds) == 1:
                ks.append(int(bounds[0]))
            elif len(bounds) == 2:
                low, high = int(bounds[0]), int(bounds[1])
                if high < low:
                    raise ValueError
                ks.extend(range(low, high + 1))
            else:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"expected K values as a range or a list, e.g. -k 1-20 or -k 2,4,8; got {text!r}"
            ) from None
    if not ks or min(ks) < 1:
        raise ValueError(f"K values must be positive integers, got {text!r}")
    return list(dict.fromkeys(ks))


def _write_picture(selector, path):
    from matplotlib.figure import Figure

    from .. import plot

    figure = Figure(figsize=(7, 5))
    plot.selection(selector, ax=figure.add_subplot())
    figure.tight_layout()
    figure.savefig(path)


def run_select(args, out=None, err=None):
    """Fit every candidate of the grid to a data file; print the table and the choice.

    Parameters
    ----------
    args : argparse.Namespace
        As parsed by ``fastmix select``.
    out, err : file-like, optional
        Where the table goes, and where warnings go (stdout and stderr
        when omitted).

    Returns
    -------
    status : int
        0 once every candidate is fitted and the table printed.
    """
    from .. import GaussianMixture, MixtureSelector

    out, err = streams(out, err)
    prog = "fastmix select"
    estimator = GaussianMixture(
        max_iter=args.max_iter,
        tol=args.tol,
        reg_covar=args.reg_covar,
        min_responsibility=args.min_responsibility,
        n_init=args.n_init,
        init_params=args.init_params,
    )
    selector = MixtureSelector(
        n_components=args.n_components,
        covariance_types=args.covariance_types,
        criterion=args.criterion,
        estimator=estimator,
        random_state=args.random_state,
    )
    check_out_and_plot(args)
    X, names = read_table(args.data, key=args.key, shape=args.shape, dtype=args.dtype)
    if max(args.n_components) > X.shape[0]:
        raise UsageError(
            f"-k asks for up to {max(args.n_components)} components but DATA has {X.shape[0]} rows"
        )
    sample_weight = None
    if args.sample_weight is not None:
        sample_weight = read_weights(args.sample_weight, X.shape[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        with naming_non_finite(X, args.data):
            selector.fit(X, sample_weight=sample_weight)
        seconds = time.perf_counter() - t0
    warn_lines(caught, prog, err)
    if args.plot is not None:
        _write_picture(selector, args.plot)
    keep_feature_names(selector.best_estimator_, names)
    if args.out is not None:
        selector.best_estimator_.save(args.out)

    r = selector.results_
    rows = [
        {
            "n_components": int(r["n_components"][i]),
            "covariance_type": str(r["covariance_type"][i]),
            # A failed candidate's NaN, max_iter=0's -inf bound: null.
            **{name: finite_or_none(r[name][i]) for name in ("bic", "aic", "icl", "lower_bound")},
            "n_iter": int(r["n_iter"][i]),
            "converged": bool(r["converged"][i]),
        }
        for i in range(len(r["bic"]))
    ]
    if args.json:
        document = {
            "data": os.fspath(args.data),
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "criterion": args.criterion,
            "best": selector.best_params_,
            "candidates": rows,
            "seconds": seconds,
            "out": args.out,
            "plot": args.plot,
        }
        json.dump(document, out, indent=2, allow_nan=False)
        out.write("\n")
        return 0
    best = selector.best_params_
    chosen = next(
        i
        for i in range(len(rows))
        if (r["n_components"][i], r["covariance_type"][i])
        == (best["n_components"], best["covariance_type"])
    )
    print(
        f"{len(rows)} candidates fitted to {X.shape[0]:,} x {X.shape[1]} {X.dtype.name} from "
        f"{args.data} in {seconds:.2f} s",
        file=out,
    )
    print(f"{'K':>4}  {'covariance':<14} {'bic':>14} {'aic':>14} {'icl':>14}  iter", file=out)
    for i in range(len(rows)):
        mark = "  <- chosen" if i == chosen else ""
        print(
            f"{r['n_components'][i]:>4}  {r['covariance_type'][i]:<14} {r['bic'][i]:14.6g} "
            f"{r['aic'][i]:14.6g} {r['icl'][i]:14.6g}  {r['n_iter'][i]:>4}{mark}",
            file=out,
        )
    print(
        f"chosen by {args.criterion}: K={best['n_components']}, {best['covariance_type']} "
        f"({args.criterion} {r[args.criterion][chosen]:.6g})",
        file=out,
    )
    if args.out is not None:
        print(f"best model written to: {args.out}", file=out)
    if args.plot is not None:
        print(f"plot written to: {args.plot}", file=out)
    return 0
