"""MixtureSelector (issue 13): K x covariance structure by BIC / AIC / ICL in one estimator.

Pinned: it recovers K and the structure of well-separated mixtures drawn with
known ones; every candidate equals the same GaussianMixture fitted alone, so
sharing the reads changes nothing; a memmap is read about max n_iter times
for the whole sweep and a dask array computed once per round.
"""

import os

import numpy as np
import pytest
from conftest import COV_TYPES, fit_quiet
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from fastmix import GaussianMixture, MixtureSelector
from fastmix._sources import BlockSource

_MEANS = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 12.0]])
_TRUTH = {
    "spherical": [np.eye(2) * s for s in (0.3, 1.0, 2.0)],
    "diag": [np.diag(d) for d in ([0.3, 2.5], [2.0, 0.4], [1.0, 1.0])],
    "tied": [np.array([[1.0, 0.8], [0.8, 1.0]])] * 3,
    "tied-diagonal": [np.diag([0.3, 2.5])] * 3,
    "tied-spherical": [np.eye(2) * 1.5] * 3,
    "full": [
        np.array([[1.0, 0.8], [0.8, 1.0]]),
        np.array([[1.0, -0.7], [-0.7, 1.0]]),
        np.array([[2.0, 0.0], [0.0, 0.5]]),
    ],
}


def _draw(structure, n=10_000, seed=0):
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 3, size=n)
    X = np.empty((n, 2))
    for k, cov in enumerate(_TRUTH[structure]):
        rows = labels == k
        X[rows] = rng.multivariate_normal(_MEANS[k], cov, size=rows.sum())
    return X


@pytest.mark.parametrize("structure", _TRUTH)
def test_selector_recovers_k_and_the_structure(structure):
    """Every structure, the two tied ones among the candidates when asked."""
    X = _draw(structure)
    sel = MixtureSelector(n_components=range(1, 6), covariance_types=_TRUTH, random_state=0)
    fit_quiet(sel, X)
    assert sel.best_params_ == {"n_components": 3, "covariance_type": structure}
    assert isinstance(sel.best_estimator_, GaussianMixture)
    assert sel.predict(X[:5]).shape == (5,)


def test_every_candidate_equals_its_fit_alone():
    """Shared reads change nothing: each candidate's lower bound, iterations and
    criteria equal those of the same GaussianMixture fitted alone."""
    X = _draw("full", n=3000, seed=1)
    sel = fit_quiet(MixtureSelector(n_components=range(1, 5), random_state=0, criterion="aic"), X)
    r = sel.results_
    assert len(r["bic"]) == 16 and all(len(v) == 16 for v in r.values())
    for i in range(16):
        k, cov = int(r["n_components"][i]), r["covariance_type"][i]
        alone = fit_quiet(GaussianMixture(k, covariance_type=cov, random_state=0), X)
        assert r["n_iter"][i] == alone.n_iter_
        assert bool(r["converged"][i]) == alone.converged_
        assert_allclose(r["lower_bound"][i], alone.lower_bound_, rtol=1e-10)
        assert_allclose(r["bic"][i], alone.bic(X), rtol=1e-10)
        assert_allclose(r["aic"][i], alone.aic(X), rtol=1e-10)
        assert_allclose(r["icl"][i], alone.icl(X), rtol=1e-10)
        assert r["fit_time"][i] > 0
    best = int(np.argmin(r["aic"]))
    assert sel.best_params_["n_components"] == r["n_components"][best]
    alone = fit_quiet(GaussianMixture(covariance_type="full", random_state=0).set_params(
        n_components=sel.best_params_["n_components"],
        covariance_type=sel.best_params_["covariance_type"],
    ), X)  # fmt: skip
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_allclose(getattr(sel.best_estimator_, name), getattr(alone, name), rtol=1e-10)
    assert sel.score(X) == pytest.approx(alone.score(X), rel=1e-12)
    assert sel.bic(X) == pytest.approx(alone.bic(X), rel=1e-12)


def test_integer_weights_give_the_criteria_of_repeated_rows():
    X = _draw("diag", n=600, seed=2)
    w = np.random.RandomState(3).randint(0, 3, size=len(X))
    kw = dict(n_components=(2, 3), covariance_types=("diag",), random_state=0)
    weighted = fit_quiet(MixtureSelector(**kw), X, sample_weight=w)
    repeated = fit_quiet(MixtureSelector(**kw), np.repeat(X, w, axis=0))
    for name in ("bic", "aic", "icl", "lower_bound"):
        assert_allclose(weighted.results_[name], repeated.results_[name], rtol=1e-6)


def test_memmap_sweep_reads_the_file_about_max_n_iter_times(tmp_path, monkeypatch):
    """16 candidates on a memmap: the file is read at most max n_iter + 5 times in
    all (validation, the mean, the k-means sample - every row of data this small -,
    the initial statistics, the iterations, the criteria), not once per candidate
    and iteration; the results are the in-memory ones."""
    X = _draw("tied", n=4000, seed=4)
    path = os.fspath(tmp_path / "x.npy")
    np.save(path, X)
    rows_read = []
    read = BlockSource._read
    monkeypatch.setattr(
        BlockSource, "_read", lambda self, a, b: rows_read.append(b - a) or read(self, a, b)
    )
    kw = dict(n_components=range(1, 5), random_state=0)
    on_file = fit_quiet(MixtureSelector(**kw), np.load(path, mmap_mode="r"))
    full_reads = sum(rows_read) / len(X)
    max_iter = int(on_file.results_["n_iter"].max())
    assert full_reads <= max_iter + 5, (full_reads, max_iter)
    assert on_file.results_["n_iter"].sum() > 3 * max_iter  # a shared pass did save reads
    in_memory = fit_quiet(MixtureSelector(**kw), X)
    for name in ("bic", "lower_bound"):
        assert_allclose(on_file.results_[name], in_memory.results_[name], rtol=1e-10)


def test_dask_sweep_computes_once_per_round(monkeypatch):
    da = pytest.importorskip("dask.array")
    dask_source = pytest.importorskip("fastmix._sources._dask")
    X = _draw("spherical", n=3000, seed=5)
    computes = []
    compute = dask_source._compute
    monkeypatch.setattr(dask_source, "_compute", lambda *a: computes.append(1) or compute(*a))
    kw = dict(n_components=range(1, 5), covariance_types=("spherical", "diag"), random_state=0)
    import dask

    with dask.config.set(scheduler="sync"):
        on_dask = fit_quiet(MixtureSelector(**kw), da.from_array(X, chunks=700))
    max_iter = int(on_dask.results_["n_iter"].max())
    # validation, the mean, the sample, the initial statistics, the criteria.
    assert len(computes) <= max_iter + 5, (len(computes), max_iter)
    in_memory = fit_quiet(MixtureSelector(**kw), X)
    assert_allclose(on_dask.results_["bic"], in_memory.results_["bic"], rtol=1e-8)
    assert on_dask.best_params_ == in_memory.best_params_


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_components": [0, 2]}, "positive integers"),
        ({"n_components": []}, "positive integers"),
        ({"n_components": [1.5]}, "positive integers"),
        ({"n_components": True}, "positive integers"),  # was a bare TypeError
        ({"covariance_types": [1]}, "covariance_types"),
        ({"covariance_types": ["full", "banana"]}, "covariance_types"),
        ({"criterion": "bayes"}, "criterion"),
        # scikit-learn's GaussianMixture has fit and bic, but not fastmix's steps
        # (it failed with a raw AttributeError).
        ({"estimator": SklearnGaussianMixture()}, "'estimator' parameter of MixtureSelector"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X = _draw("full", n=200)
    with pytest.raises(ValueError, match=match):
        MixtureSelector(**params).fit(X)


def test_a_value_listed_twice_is_one_candidate():
    X = _draw("diag", n=400)
    sel = fit_quiet(MixtureSelector([2, 1, 2], ["diag", "full", "diag"], random_state=0), X)
    pairs = list(zip(sel.results_["n_components"], sel.results_["covariance_type"], strict=True))
    assert pairs == [(2, "diag"), (1, "diag"), (2, "full"), (1, "full")]


def test_candidates_larger_than_the_data_are_skipped():
    X = _draw("full", n=4)
    selector = MixtureSelector(n_components=(1, 2, 8, 9), covariance_types=("spherical",))
    with pytest.warns(UserWarning, match="n_components=8, 9 above the 4 rows: .* skipped"):
        sel = selector.fit(X)
    assert list(sel.results_["n_components"]) == [1, 2]


def test_candidates_larger_than_the_rows_of_positive_weight_are_skipped():
    """A lone fit refuses K above the rows of positive weight; the selector
    used to fit such a candidate (empty components) and could choose it."""
    X = _draw("full", n=10)
    w = np.r_[np.ones(3), np.zeros(7)]
    selector = MixtureSelector(n_components=(1, 2, 5), covariance_types=("diag",), random_state=0)
    with pytest.warns(UserWarning, match="n_components=5 above the 3 rows of positive weight"):
        sel = selector.fit(X, sample_weight=w)
    assert list(sel.results_["n_components"]) == [1, 2]


def test_a_random_state_instance_is_copied_per_candidate():
    """Every candidate gets its own copy of a RandomState, so its result does
    not depend on the others in the grid (one shared stream did)."""
    X = _draw("diag", n=900, seed=4)
    kw = dict(covariance_types=("diag",), estimator=GaussianMixture(init_params="random"))
    one = fit_quiet(MixtureSelector((3,), random_state=np.random.RandomState(0), **kw), X)
    two = fit_quiet(MixtureSelector((2, 3), random_state=np.random.RandomState(0), **kw), X)
    alone = fit_quiet(
        GaussianMixture(3, covariance_type="diag", init_params="random",
                        random_state=np.random.RandomState(0)), X
    )  # fmt: skip
    assert one.results_["bic"][0] == two.results_["bic"][1]
    assert_allclose(two.results_["bic"][1], alone.bic(X), rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_failing_candidate_is_named_and_not_chosen():
    """A candidate whose fit fails (an ill-defined covariance at reg_covar=0)
    used to abort the whole selection with a message naming no candidate; it
    is now recorded as failed, named in a warning, and never chosen."""
    X = np.repeat(np.random.RandomState(0).randn(3, 2), 20, axis=0)
    base = GaussianMixture(reg_covar=0.0, covariance_type="diag", random_state=0)
    ks = (1, 2, 3, 5)
    failing = []
    for k in ks:
        try:
            fit_quiet(clone(base).set_params(n_components=k), X)
        except ValueError:
            failing.append(k)
    assert failing and failing != list(ks)
    sel = MixtureSelector(ks, ("diag",), estimator=base, random_state=0)
    with pytest.warns(FitFailedWarning, match=f"{len(failing)} of the 4 candidates failed") as w:
        fit_quiet(sel, X)
    message = str(next(x.message for x in w if issubclass(x.category, FitFailedWarning)))
    for k in failing:
        assert f"n_components={k}, covariance_type='diag': Fitting the mixture" in message
    r = sel.results_
    failed = np.isin(r["n_components"], failing)
    assert np.isnan(r["bic"][failed]).all() and np.isnan(r["lower_bound"][failed]).all()
    assert np.isfinite(r["bic"][~failed]).all() and not r["converged"][failed].any()
    assert sel.best_params_["n_components"] not in failing
    alone = fit_quiet(clone(base).set_params(n_components=sel.best_params_["n_components"]), X)
    assert_allclose(sel.best_estimator_.means_, alone.means_, rtol=1e-10)
    with pytest.raises(
        ValueError, match=f"Every candidate failed to fit; n_components={failing[0]}"
    ):
        MixtureSelector(failing, ("diag",), estimator=base).fit(X)


def test_feature_names_of_an_earlier_fit_are_dropped():
    pd = pytest.importorskip("pandas")
    X = _draw("diag", n=300)
    sel = fit_quiet(
        MixtureSelector((1, 2), ("diag",), random_state=0), pd.DataFrame(X, columns=["a", "b"])
    )
    assert list(sel.feature_names_in_) == ["a", "b"]
    fit_quiet(sel, X[:, :1])
    assert sel.n_features_in_ == 1 and not hasattr(sel, "feature_names_in_")


def test_verbose_prints_the_table(capsys):
    X = _draw("spherical", n=500)
    fit_quiet(MixtureSelector(n_components=(2, 3), covariance_types=("diag",), verbose=1), X)
    out = capsys.readouterr().out
    assert "best by bic" in out and out.count("  diag ") == 2
    assert "Initialization 0" not in out
    # 2 fits every candidate with verbose=2, as documented: its own messages too.
    fit_quiet(MixtureSelector(n_components=(2, 3), covariance_types=("diag",), verbose=2), X)
    out = capsys.readouterr().out
    assert out.count("Initialization 0") == 2 and "Initialization converged" in out


# ------------------------------------------------------------------- surfaces
def test_cli_select_prints_the_table_saves_and_draws(tmp_path):
    import json
    import subprocess
    import sys

    X = _draw("spherical", n=2000, seed=6)
    data = tmp_path / "x.npy"
    np.save(data, X)
    base = [sys.executable, "-m", "fastmix", "select", str(data), "-k", "1-4"]
    done = subprocess.run(
        [*base, "--covariance-types", "diag,spherical", "-o", str(tmp_path / "m.npz")]
        + ["--min-responsibility", "1e-8"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "chosen by bic: K=3, spherical" in done.stdout
    assert done.stdout.count("<- chosen") == 1
    import fastmix

    chosen = fastmix.load(tmp_path / "m.npz")
    assert (chosen.n_components, chosen.min_responsibility) == (3, 1e-8)
    as_json = subprocess.run([*base, "--json", "--criterion", "icl"], capture_output=True)
    document = json.loads(as_json.stdout)
    assert document["best"] == {"n_components": 3, "covariance_type": "spherical"}
    assert len(document["candidates"]) == 16
    bad = subprocess.run([*base[:-1], "0-3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "positive integers" in bad.stderr


def test_cli_select_reports_failed_candidates_as_null(tmp_path):
    """A failed candidate's NaN criteria made the chosen line read "(bic nan)"
    and --json write NaN, and max_iter=0's bounds -Infinity: not JSON."""
    import json
    import subprocess
    import sys

    X = np.repeat(np.random.RandomState(0).randn(3, 2), 20, axis=0)
    data = tmp_path / "x.npy"
    np.save(data, X)
    base = [sys.executable, "-m", "fastmix", "select", str(data), "-k", "1,2,3,5"]
    base += ["--covariance-types", "diag", "--reg-covar", "0"]
    done = subprocess.run(base, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    chosen = done.stdout.strip().splitlines()[-1]
    assert chosen.startswith("chosen by bic") and "nan" not in chosen
    as_json = subprocess.run([*base, "--json"], capture_output=True, text=True)

    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")

    document = json.loads(as_json.stdout, parse_constant=refuse)
    bics = [c["bic"] for c in document["candidates"]]
    assert None in bics and any(b is not None for b in bics)
    zero = subprocess.run([*base[:7], "--max-iter", "0", "--json"], capture_output=True, text=True)
    document = json.loads(zero.stdout, parse_constant=refuse)
    assert all(c["lower_bound"] is None for c in document["candidates"])


def test_plot_selection_draws_a_line_per_structure():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from fastmix import plot

    X = _draw("diag", n=800, seed=7)
    sel = fit_quiet(MixtureSelector(n_components=range(1, 5), random_state=0), X)
    ax = plot.selection(sel, criterion="aic")
    assert [line.get_label() for line in ax.lines] == [*COV_TYPES, "chosen"]
    for line, name in zip(ax.lines[:4], COV_TYPES, strict=True):
        rows = sel.results_["covariance_type"] == name
        assert_allclose(line.get_ydata(), sel.results_["aic"][rows])
    # A grid listed out of order still draws each line along K.
    sel = fit_quiet(MixtureSelector(n_components=[3, 1, 2], random_state=0), X)
    ax = plot.selection(sel)
    for line, name in zip(ax.lines[:4], COV_TYPES, strict=True):
        rows = np.flatnonzero(sel.results_["covariance_type"] == name)
        rows = rows[np.argsort(sel.results_["n_components"][rows])]
        assert list(line.get_xdata()) == [1, 2, 3]
        assert_allclose(line.get_ydata(), sel.results_["bic"][rows])


def test_kmeans_runs_once_per_k_for_candidates_seeded_alike(monkeypatch):
    """The k-means start depends on the data, K and the seed, not on the
    covariance type: a sweep runs it once per K, and every candidate still
    equals its fit alone (test_every_candidate_equals_its_fit_alone)."""
    import fastmix._sources._init as init

    calls = []
    kmeans = init.kmeans
    monkeypatch.setattr(init, "kmeans", lambda *a, **k: calls.append(a[1]) or kmeans(*a, **k))
    X = _draw("diag", n=1500, seed=8)
    fit_quiet(MixtureSelector(n_components=range(1, 5), random_state=0), X)
    assert sorted(calls) == [1, 2, 3, 4]
    calls.clear()
    # Without a common seed (None: each candidate its estimator's own None), no reuse.
    fit_quiet(MixtureSelector(n_components=(2, 3), covariance_types=("diag", "full")), X)
    assert sorted(calls) == [2, 2, 3, 3]
