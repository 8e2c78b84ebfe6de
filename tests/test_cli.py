"""The ``fastmix`` command line, run as a user runs it: in a subprocess."""

import json
import os
import pickle
import re
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import numba
import numpy as np
import pytest
from conftest import labelled_blobs
from sklearn.base import clone

import fastmix
from fastmix.cli import demo_mixture, main
from fastmix.cli._warmup import main_kernels_cached

TIMEOUT = 120


def run_fastmix(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "fastmix", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
    )


# One row of the demo's table:
# "  found true |  weight  true | ( x, y)  ( x, y) | sd, sd, angle deg  sd, sd, angle deg"
_NUM = r"(-?\d+(?:\.\d+)?)"
_ROW = re.compile(
    rf"^\s*(\d+)\s+(\d+)\s+\|\s+{_NUM}\s+{_NUM}\s+\|"
    rf"\s+\(\s*{_NUM},\s*{_NUM}\)\s+\(\s*{_NUM},\s*{_NUM}\)\s+\|"
    rf"\s+{_NUM},\s+{_NUM},\s+{_NUM} deg\s+{_NUM},\s+{_NUM},\s+{_NUM} deg\s*$"
)


def test_demo_finds_the_true_mixture(tmp_path):
    # Run in a scratch folder: the demo draws fastmix-demo.png into the current one.
    proc = run_fastmix("demo", "--n-samples", "20000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = [m.groups() for m in map(_ROW.match, proc.stdout.splitlines()) if m]
    assert len(rows) == 5, proc.stdout

    weights, means, covariances = demo_mixture()
    matched = sorted(int(r[1]) for r in rows)
    assert matched == [0, 1, 2, 3, 4], "every true component is found exactly once"
    for row in rows:
        k = int(row[1])
        found_weight, true_weight = float(row[2]), float(row[3])
        found_mean = np.array([float(row[4]), float(row[5])])
        printed_true_mean = np.array([float(row[6]), float(row[7])])
        sd_found = np.array([float(row[8]), float(row[9])])
        sd_true = np.array([float(row[11]), float(row[12])])
        # The printed truth is the built-in truth.
        assert true_weight == pytest.approx(weights[k], abs=1e-4)
        np.testing.assert_allclose(printed_true_mean, means[k], atol=1e-3)
        np.testing.assert_allclose(
            sd_true, np.sqrt(np.linalg.eigvalsh(covariances[k])[::-1]), atol=1e-3
        )
        # And what was found is close to it: 20,000 points, standard errors ~0.02.
        assert abs(found_weight - true_weight) < 0.02
        np.testing.assert_allclose(found_mean, means[k], atol=0.15)
        np.testing.assert_allclose(sd_found, sd_true, rtol=0.1)

    assert re.search(r"^converged:\s+True$", proc.stdout, re.M), proc.stdout
    iterations = int(re.search(r"^iterations:\s+(\d+)", proc.stdout, re.M).group(1))
    assert 1 <= iterations <= 100
    found_ll = float(re.search(r"^log-likelihood / point:\s+(\S+)", proc.stdout, re.M).group(1))
    true_ll = float(re.search(r"under the true model:\s+(\S+)", proc.stdout).group(1))
    # A maximum-likelihood fit is at least as likely as the truth on its own data.
    assert found_ll >= true_ll - 1e-3
    assert found_ll - true_ll < 0.05
    per_iter = float(re.search(r"^seconds per iteration:\s+(\S+)", proc.stdout, re.M).group(1))
    assert per_iter > 0
    if _have_matplotlib():
        assert re.search(r"^plot written to:\s+fastmix-demo.png$", proc.stdout, re.M)
        _check_png(tmp_path / "fastmix-demo.png", min_size=(1000, 400))
    else:
        assert "no plot: matplotlib is not installed" in proc.stdout


def test_bench_json_compares_the_same_work():
    proc = run_fastmix("bench", "-n", "5000", "-d", "3", "-k", "3", "--iters", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # --json prints the document and nothing else
    assert (doc["n_samples"], doc["n_features"], doc["n_components"]) == (5000, 3, 3)
    assert doc["iters"] == 3 and doc["dtype"] == "float64"
    assert doc["threads"]["fastmix_numba"] >= 1
    results = {r["covariance_type"]: r for r in doc["results"]}
    assert sorted(results) == ["diag", "full", "spherical", "tied"]
    for row in results.values():
        assert row["fastmix_seconds_per_iter"] > 0
        assert row["sklearn_seconds_per_iter"] > 0
        assert row["ratio"] == pytest.approx(
            row["sklearn_seconds_per_iter"] / row["fastmix_seconds_per_iter"]
        )
        # tol=0 and the same explicit init: both ran exactly 3 iterations of the same EM.
        assert row["n_iter"] == {"fastmix": 3, "sklearn": 3}
        assert row["max_abs_lower_bound_diff"] < 1e-8
        assert np.isfinite(row["fastmix_lower_bound"])


def test_bench_table_and_options():
    proc = run_fastmix(
        "bench", "-n", "3000", "-d", "2", "-k", "2", "--iters", "2",
        "--covariance-types", "diag,spherical", "--repeats", "2", "--threads", "1",
        "--dtype", "float32",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "threads: fastmix (numba) 1" in proc.stdout
    table = {
        line.split()[0]: line.split()
        for line in lines
        if line.split()[:1] in (["diag"], ["spherical"])
    }
    assert sorted(table) == ["diag", "spherical"]
    for cells in table.values():
        fm, sk, ratio = float(cells[1]), float(cells[2]), float(cells[3].rstrip("x"))
        assert fm > 0 and sk > 0 and ratio > 0
        assert float(cells[4]) < 1e-3  # float32: the same work to float32 accuracy


def test_bench_shape_dtypes_and_gflops(capsys):
    from fastmix._synthetic import flops_per_iteration

    args = ["bench", "--shape", "600,3,2", "--iters", "2", "--covariance-types", "full,diag",
            "--dtype", "float64,float32"]  # fmt: skip
    status, out, err = _main([*args, "--json"], capsys)
    assert status == 0, err
    doc = json.loads(out)
    assert (doc["n_samples"], doc["n_features"], doc["n_components"]) == (600, 3, 2)
    assert doc["dtypes"] == ["float64", "float32"]
    rows = {(r["dtype"], r["covariance_type"]): r for r in doc["results"]}
    assert sorted(rows) == [(d, c) for d in ("float32", "float64") for c in ("diag", "full")]
    for (dtype, cov_type), row in rows.items():
        assert row["n_iter"] == {"fastmix": 2, "sklearn": 2}
        assert row["max_abs_lower_bound_diff"] < (1e-3 if dtype == "float32" else 1e-8)
        flop = flops_per_iteration(cov_type, 600, 3, 2)[0]
        assert row["gflop_per_iter"] == pytest.approx(flop / 1e9)
        assert row["fastmix_gflops"] == pytest.approx(flop / row["fastmix_seconds_per_iter"] / 1e9)
        assert row["sklearn_gflops"] == pytest.approx(flop / row["sklearn_seconds_per_iter"] / 1e9)
    # The dense model: 8 N K D for diag, 4 N K D^2 for full.
    assert rows["float64", "diag"]["gflop_per_iter"] == pytest.approx(8 * 600 * 2 * 3 / 1e9)
    assert rows["float64", "full"]["gflop_per_iter"] == pytest.approx(4 * 600 * 2 * 9 / 1e9)

    # The table: one per dtype, GFLOP/s beside s/iter, ratio and lower-bound difference.
    status, out, err = _main(args[:-2] + ["--dtype", "float32"], capsys)
    assert status == 0, err
    assert "600 x 3, K=2, float32," in out
    assert "fastmix GFLOP/s" in out.splitlines()[4]
    table = [line.split() for line in out.splitlines() if line.split()[:1] in (["full"], ["diag"])]
    assert [cells[0] for cells in table] == ["full", "diag"]
    for cells in table:
        assert len(cells) == 6 and float(cells[5]) > 0

    # --shape is -n/-d/-k in one option: the same data, the same work.
    status, out, err = _main(
        ["bench", "-n", "600", "-d", "3", "-k", "2", "--iters", "2", "--covariance-types",
         "diag", "--json"], capsys,
    )  # fmt: skip
    assert status == 0, err
    same = json.loads(out)["results"][0]
    assert same["fastmix_lower_bound"] == rows["float64", "diag"]["fastmix_lower_bound"]


@pytest.mark.parametrize("command", [[], ["demo"], ["bench"]])
def test_help(command):
    proc = run_fastmix(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: fastmix" + "".join(" " + c for c in command))
    expected = {
        (): ["demo", "bench", "--version"],
        ("demo",): ["--n-samples", "--n-components", "--covariance-type", "--random-state",
                    "--dtype"],
        ("bench",): ["--n-samples", "--n-features", "--n-components", "--dtype", "--iters",
                     "--covariance-types", "--repeats", "--threads", "--json", "-n", "-d", "-k",
                     "--shape"],
    }[tuple(command)]  # fmt: skip
    for option in expected:
        assert option in proc.stdout


_USAGE_ERRORS = [
    ([], "COMMAND"),
    (["nope"], "invalid choice"),
    (["demo", "--dtype", "float16"], "--dtype"),
    (["demo", "--n-samples", "3", "--n-components", "5"], "--n-samples"),
    (["bench", "-n", "0"], "-n/--n-samples"),
    (["bench", "-n", "2", "-k", "3"], "--n-components"),
    (["bench", "--covariance-types", "full,oops"], "'oops'"),
    (["bench", "--iters", "-1"], "--iters"),
    (["bench", "--threads", "100000"], "--threads"),
    (["bench", "--no-such-option"], "--no-such-option"),
    # --shape N,D,K: each mistake says how to write it.
    (["bench", "--shape", "600,2"], "expected N,D,K (rows, features, components)"),
    (["bench", "--shape", "600,2,x"], "e.g. --shape 100000,16,16; got '600,2,x'"),
    (["bench", "--shape", "600,0,2"], "three positive integers"),
    (["bench", "--shape", "2,2,3"], "--shape 2,2,3: N (2) must be at least 2 and at least K (3)"),
    (["bench", "--shape", "2,2,3"], "e.g. --shape 3,2,3"),
    (["bench", "--shape", "600,2,2", "-k", "3"], "give either --shape or -n/-d/-k"),
    (["bench", "--dtype", "float64,float16"], "unknown dtype 'float16'"),
    # The report fits the true mixture's 5 components too (it failed after the report).
    (["demo", "--n-samples", "4", "--n-components", "2", "--no-plot"], "at least 5 (the true"),
]


def _check_one_line(status, out, err, fragment):
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastmix") and "error:" in lines[0]
    assert "Traceback" not in err
    assert fragment in lines[0]


@pytest.mark.parametrize("index", [3, 9])  # one checked by the command, one by argparse
def test_usage_error_exit_status_and_one_line(index):
    args, fragment = _USAGE_ERRORS[index]
    proc = run_fastmix(*args)
    _check_one_line(proc.returncode, proc.stdout, proc.stderr, fragment)


@pytest.mark.parametrize("args, fragment", _USAGE_ERRORS)
def test_usage_errors_in_process(args, fragment, capsys):
    # The same contract through main() itself, without an interpreter start per case.
    try:
        status = main(args)
    except SystemExit as exc:  # argparse exits; the commands' own checks return 2
        status = exc.code
    captured = capsys.readouterr()
    _check_one_line(status, captured.out, captured.err, fragment)


def test_console_script():
    script = Path(sys.executable).with_name("fastmix")
    if not script.exists():
        pytest.skip("the fastmix console script is not installed beside this interpreter")
    proc = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("fastmix ")


# ------------------------------------------------------- fit, predict, progress
# Helpers shared by the tests below (and the demo test above).
def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _check_png(path, min_size):
    """A real picture: a PNG at least ``min_size`` pixels, with many colours drawn."""
    width, height = _png_size(path)
    assert width >= min_size[0] and height >= min_size[1], (width, height)
    import matplotlib.image

    pixels = matplotlib.image.imread(path)[..., :3].reshape(-1, 3)
    colours = np.unique((pixels * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50, "the picture is (nearly) blank"
    non_white = np.any(pixels < 0.95, axis=1).mean()
    assert 0.01 < non_white < 0.9


# 600 x 2: three fixed centres, noise 0.7, seed 0.
_blobs = partial(labelled_blobs, 0, 600, centres=[[-4.0, 0.0], [3.0, 3.0], [2.0, -4.0]], noise=0.7)


@pytest.fixture
def data(tmp_path):
    """The same 600 x 2 data as .npy, .csv (with a header), .tsv, .npz and raw float32."""
    X = _blobs()
    files = {
        "X": X,
        "npy": tmp_path / "data.npy",
        "csv": tmp_path / "data.csv",
        "tsv": tmp_path / "data.tsv",
        "npz": tmp_path / "data.npz",
        "raw": tmp_path / "data.f32",
    }
    np.save(files["npy"], X)
    np.savetxt(files["csv"], X, delimiter=",", header="x,y", comments="", fmt="%.17g")
    np.savetxt(files["tsv"], X, delimiter="\t", fmt="%.17g")
    np.savez(files["npz"], labels=np.arange(3), X=X)
    X.astype(np.float32).tofile(files["raw"])
    return files


def _main(args, capsys):
    """main() in this process: (status, stdout, stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _fit_json(args, capsys):
    status, out, err = _main(["fit", *args, "--json", "--progress", "none"], capsys)
    assert status == 0, err
    return json.loads(out)


def test_fit_predict_round_trip_in_subprocesses(data, tmp_path):
    from fastmix import GaussianMixture, load

    model_path = tmp_path / "model.npz"
    proc = run_fastmix(
        "fit", data["csv"], "-k", "3", "--out", model_path, "--json", "--progress", "none"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    summary = json.loads(proc.stdout)  # nothing else on stdout

    X = data["X"]
    model = load(model_path)
    # Fitted on the CSV's named columns: an array of the rows warns, as in scikit-learn.
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        bic, predicted = model.bic(X), model.predict(X)
    reference = GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-12)
    assert summary["model"] == "GaussianMixture"
    assert (summary["n_samples"], summary["n_features"], summary["dtype"]) == (600, 2, "float64")
    assert summary["n_components"] == 3 and summary["covariance_type"] == "full"
    np.testing.assert_allclose(summary["weights"], model.weights_, rtol=1e-12)
    assert sum(summary["weights"]) == pytest.approx(1.0)
    np.testing.assert_allclose(summary["means"], model.means_, rtol=1e-12)
    assert summary["lower_bound"] == pytest.approx(model.lower_bound_, rel=1e-12)
    assert summary["lower_bound_kind"] == "log_likelihood_per_sample"
    assert summary["lower_bounds"] == pytest.approx(model.lower_bounds_, rel=1e-12)
    assert summary["bic"] == pytest.approx(bic, rel=1e-10)
    assert summary["n_iter"] == model.n_iter_ >= 1
    assert summary["converged"] is True
    assert summary["seconds"] > 0
    assert summary["out"] == str(model_path)

    labels_path = tmp_path / "labels.npy"
    proc = run_fastmix("predict", model_path, data["npy"], "--out", labels_path)
    assert proc.returncode == 0, proc.stderr
    assert "labels of 600 rows" in proc.stdout
    labels = np.load(labels_path)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, predicted)
    np.testing.assert_array_equal(labels, reference.predict(X))


def test_predict_proba_csv(data, tmp_path, capsys):
    from fastmix import load

    model_path = tmp_path / "model.npz"
    _fit_json([data["npy"], "-k", "3", "--out", model_path], capsys)
    for out in (tmp_path / "proba.csv", tmp_path / "proba.npy"):
        status, stdout, err = _main(
            ["predict", model_path, data["tsv"], "--out", out, "--proba"], capsys
        )
        assert status == 0, err
        assert "probabilities of 600 rows" in stdout
        if out.suffix == ".csv":
            assert out.read_text().splitlines()[0] == "component_0,component_1,component_2"
            proba = np.loadtxt(out, delimiter=",", skiprows=1)
        else:
            proba = np.load(out)
        np.testing.assert_allclose(
            proba, load(model_path).predict_proba(data["X"]), rtol=1e-14, atol=1e-300
        )
    status, _, err = _main(
        ["predict", model_path, data["csv"], "--out", tmp_path / "l.csv"], capsys
    )
    assert status == 0, err
    labels = np.loadtxt(tmp_path / "l.csv", skiprows=1, dtype=np.int64)
    np.testing.assert_array_equal(labels, load(model_path).predict(data["X"]))


@pytest.mark.parametrize("fmt", ["npy", "csv", "tsv", "npz", "raw"])
def test_fit_reads_every_format(fmt, data, capsys):
    from fastmix import GaussianMixture

    args = [data[fmt], "-k", "3", "--covariance-type", "diag"]
    if fmt == "raw":
        args += ["--shape", "600,2", "--dtype", "float32"]
    if fmt == "npz":
        args += ["--key", "X"]
    summary = _fit_json(args, capsys)
    dtype = np.float32 if fmt == "raw" else np.float64
    assert summary["dtype"] == np.dtype(dtype).name
    assert (summary["n_samples"], summary["n_features"]) == (600, 2)
    reference = GaussianMixture(3, covariance_type="diag", random_state=0).fit(
        data["X"].astype(dtype)
    )
    # .npy and raw files are memory-mapped and streamed: the same fit to round-off.
    rtol = 1e-4 if fmt == "raw" else 1e-10
    np.testing.assert_allclose(summary["means"], reference.means_, rtol=rtol)
    np.testing.assert_allclose(summary["weights"], reference.weights_, rtol=rtol)


def test_fit_passes_the_estimator_options(data, tmp_path, capsys):
    from fastmix import BayesianGaussianMixture, GaussianMixture, load

    weights = np.random.default_rng(1).integers(0, 3, size=600).astype(float)
    np.savetxt(tmp_path / "w.csv", weights, header="weight", comments="")
    model_path = tmp_path / "m.npz"
    summary = _fit_json(
        [
            data["npy"], "-k", "4", "--covariance-type", "tied", "--max-iter", "7",
            "--tol", "0", "--reg-covar", "1e-4", "--n-init", "2", "--init-params",
            "random_from_data", "--random-state", "5", "--sample-weight", tmp_path / "w.csv",
            "--min-responsibility", "1e-6", "--out", model_path,
        ],
        capsys,
    )  # fmt: skip
    params = dict(
        n_components=4, covariance_type="tied", max_iter=7, tol=0.0, reg_covar=1e-4,
        n_init=2, init_params="random_from_data", random_state=5, min_responsibility=1e-6,
    )  # fmt: skip
    model = load(model_path)
    assert {k: model.get_params()[k] for k in params} == params
    with pytest.warns(Warning):  # tol=0 never converges
        reference = GaussianMixture(**params).fit(data["X"], sample_weight=weights)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-10)
    assert summary["n_iter"] == 7 and summary["converged"] is False
    assert summary["sample_weight"] == str(tmp_path / "w.csv")

    bayes = dict(
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=0.5, mean_precision_prior=2.0,
        degrees_of_freedom_prior=3.0,
    )  # fmt: skip
    summary = _fit_json(
        [data["npy"], "-k", "3", "--bayesian", "--out", model_path]
        + [f"--{k.replace('_', '-')}={v}" for k, v in bayes.items()],
        capsys,
    )
    model = load(model_path)
    assert isinstance(model, BayesianGaussianMixture)
    assert {k: model.get_params()[k] for k in bayes} == bayes
    assert summary["model"] == "BayesianGaussianMixture"
    assert summary["lower_bound_kind"] == "elbo" and summary["bic"] is None
    assert summary["lower_bound"] == pytest.approx(model.lower_bound_)
    reference = BayesianGaussianMixture(n_components=3, random_state=0, **bayes).fit(data["X"])
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-10)


def test_fit_text_summary(data, capsys):
    status, out, err = _main(["fit", data["npy"], "-k", "3", "--progress", "none"], capsys)
    assert status == 0, err
    assert err == ""
    assert out.startswith("GaussianMixture (full, K=3) fitted to 600 x 2 float64 from ")
    rows = re.findall(r"^\s+(\d)\s+(0\.\d{4})\s+\(", out, re.M)
    assert [int(k) for k, _ in rows] == [0, 1, 2]
    assert sum(float(w) for _, w in rows) == pytest.approx(1.0, abs=1e-3)
    for label in ("log-likelihood / point:", "BIC:", "iterations:", "converged:", "fit seconds:"):
        assert re.search(rf"^{re.escape(label)}\s+\S", out, re.M), label


_PROGRESS_LINE = re.compile(
    r"^fastmix fit: EM, iteration (\d+)/100: lower bound (-?\d+\.\d+), change (\S+)"
)


def test_fit_progress_bar_on_stderr(data):
    pytest.importorskip("tqdm")
    proc = run_fastmix("fit", data["npy"], "-k", "3", "--tol", "1e-8")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.replace("\r", "\n").splitlines()
    assert lines[0].startswith("fastmix fit: GaussianMixture(n_components=3, random_state=0")
    # tqdm's bar: "EM: 100%|...| n/n [..., lower bound ..., converged]"
    final = [line for line in lines if line.startswith("EM:") and "converged" in line]
    assert final, proc.stderr
    assert re.search(r"\b(\d+)/\1 \[", final[-1])
    assert "lower bound -" in final[-1]
    assert proc.stdout.startswith("GaussianMixture (full, K=3)")


def test_fit_progress_text_without_tqdm(data):
    # tqdm hidden from the interpreter: --progress auto falls back to text lines.
    code = (
        "import sys; sys.modules['tqdm'] = None\n"
        "from fastmix.cli import main\n"
        f"raise SystemExit(main(['fit', {str(data['npy'])!r}, '-k', '3', '--tol', '1e-8']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("fastmix fit: GaussianMixture(")
    events = [_PROGRESS_LINE.match(line) for line in lines[1:]]
    assert all(events), proc.stderr
    iterations = [int(m.group(1)) for m in events]
    assert iterations[0] == 1 and iterations == sorted(iterations)
    assert lines[-1].endswith("(converged)")
    n_iter = int(re.search(r"^iterations:\s+(\d+)", proc.stdout, re.M).group(1))
    assert iterations[-1] == n_iter


def test_fit_progress_modes_in_process(data, capsys):
    status, _, err = _main(
        ["fit", data["npy"], "-k", "3", "--progress", "text", "--n-init", "2"], capsys
    )
    assert status == 0
    assert re.search(r"^fastmix fit: init 1/2, iteration 1/100: ", err, re.M)
    assert re.search(r"^fastmix fit: init 2/2, iteration 1/100: ", err, re.M)
    status, _, err = _main(["fit", data["npy"], "-k", "3", "--progress", "none"], capsys)
    assert status == 0 and err == ""
    # A fit that stops at max_iter says so, and its ConvergenceWarning is one line.
    status, _, err = _main(
        ["fit", data["npy"], "-k", "3", "--progress", "text", "--max-iter", "2", "--tol", "0"],
        capsys,
    )
    assert status == 0
    assert "iteration 2/2" in err and "(max_iter reached)" in err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert warning == [
        "fastmix fit: warning: Best performing initialization did not converge. Try "
        "different init parameters, or increase max_iter, tol, or check for degenerate data."
    ]


def test_fit_plot_writes_png(data, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "fit.png"
    status, out, err = _main(
        ["fit", data["csv"], "-k", "3", "--plot", figure, "--progress", "none"], capsys
    )
    assert status == 0, err
    assert f"plot written to:        {figure}" in out
    # Mixture and convergence side by side: 12 x 5 inches at 100 dpi.
    assert _png_size(figure) == (1200, 500)
    _check_png(figure, min_size=(1200, 500))


def test_plot_without_matplotlib_is_one_line(data, tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    status, out, err = _main(["fit", data["npy"], "--plot", tmp_path / "f.png"], capsys)
    _check_one_line(status, out, err, 'pip install "fastmix[plot]"')
    assert not (tmp_path / "f.png").exists()
    status, out, err = _main(["demo", "--n-samples", "500", "--plot-dir", tmp_path], capsys)
    _check_one_line(status, out, err, "--plot-dir needs matplotlib")
    # By default the demo just says it drew nothing.
    monkeypatch.chdir(tmp_path)
    status, out, err = _main(["demo", "--n-samples", "2000"], capsys)
    assert status == 0, err
    assert "no plot: matplotlib is not installed" in out
    assert not list(tmp_path.glob("*.png"))


def test_progress_bar_without_tqdm_is_one_line(data, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    status, out, err = _main(["fit", data["npy"], "--progress", "bar"], capsys)
    _check_one_line(status, out, err, 'pip install "fastmix[cli]"')


def test_demo_plot_dir_writes_the_readme_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "img"
    status, out, err = _main(
        ["demo", "--n-samples", "20000", "--tol", "1e-8", "--plot-dir", folder], capsys
    )
    assert status == 0, err
    mixture, convergence = folder / "demo-mixture.png", folder / "demo-convergence.png"
    assert f"plot written to:        {mixture}" in out
    assert f"plot written to:        {convergence}" in out
    assert not (tmp_path / "fastmix-demo.png").exists()  # --plot-dir alone: just the two
    for picture in (mixture, convergence):
        assert _png_size(picture) == (600, 500)
        _check_png(picture, min_size=(600, 500))
        assert picture.stat().st_size < 200_000  # small enough to commit
    status, out, err = _main(["demo", "--n-samples", "2000", "--no-plot"], capsys)
    assert status == 0 and "no plot: --no-plot" in out


def test_readme_pictures_exist_and_are_small():
    img = Path(__file__).resolve().parents[1] / "docs" / "img"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "fastmix demo --tol 1e-8 --plot-dir docs/img" in readme
    for name in ("demo-mixture.png", "demo-convergence.png"):
        assert f"(docs/img/{name})" in readme
        assert _png_size(img / name) == (600, 500)
        assert (img / name).stat().st_size < 200_000


def _write(path, text):
    path.write_text(text)
    return path


def _damaged_numpy_files(tmp_path, X):
    """.npy and .npz files NumPy's readers fail on with other errors than ValueError."""
    import struct
    import zipfile

    np.save(tmp_path / "ok.npy", X)
    raw = bytearray((tmp_path / "ok.npy").read_bytes())
    end = raw.index(b"\n")
    header = raw[:end].replace(b"), }", b",  }")  # the same length: a malformed tuple
    assert len(header) == end
    (tmp_path / "header.npy").write_bytes(bytes(header + raw[end:]))
    np.savez(tmp_path / "ok.npz", X=X)
    raw = bytearray((tmp_path / "ok.npz").read_bytes())
    central = raw.find(b"PK\x01\x02")
    encrypted = bytearray(raw)
    encrypted[central + 8] |= 1  # the member's "encrypted" flag
    (tmp_path / "encrypted.npz").write_bytes(bytes(encrypted))
    method = bytearray(raw)  # a compression method zipfile does not know
    local = method.find(b"PK\x03\x04")
    method[local + 8 : local + 10] = method[central + 10 : central + 12] = struct.pack("<H", 99)
    (tmp_path / "method.npz").write_bytes(bytes(method))
    np.savez_compressed(tmp_path / "deflated.npz", X=X)
    raw = bytearray((tmp_path / "deflated.npz").read_bytes())
    start = raw.find(b"PK\x03\x04") + 30 + len("X.npy")
    raw[start + 10 : start + 40] = b"\xff" * 30  # the deflated stream, not the zip's records
    (tmp_path / "deflated.npz").write_bytes(bytes(raw))
    with zipfile.ZipFile(tmp_path / "text.npz", "w") as archive:
        archive.writestr("readme.txt", "not an array")
        archive.writestr("X.npy", (tmp_path / "ok.npy").read_bytes())
    names = ("header.npy", "encrypted.npz", "method.npz", "deflated.npz", "text.npz")
    return {name.replace(".", "_"): tmp_path / name for name in names}


@pytest.fixture
def bad_files(tmp_path, data):
    from fastmix import GaussianMixture

    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    GaussianMixture(2, random_state=0).fit(data["X"]).save(tmp_path / "model.npz")
    np.save(tmp_path / "three.npy", np.ones((10, 3)))
    np.save(tmp_path / "short_w.npy", np.ones(5))
    with_inf = data["X"].copy()
    with_inf[400, 1] = -np.inf
    np.save(tmp_path / "inf.npy", with_inf)
    damaged = _damaged_numpy_files(tmp_path, data["X"])
    return {
        **damaged,
        "missing": tmp_path / "missing.npy",
        "ragged": _write(tmp_path / "ragged.csv", "a,b\n1,2\n3,4,5\n"),
        "nan_csv": _write(tmp_path / "nan.csv", "x,y\n1,2\n# comment\n3,nan\n"),
        "names": _write(tmp_path / "names.csv", "x,name\n1,a\n2,b\n"),
        "hole": _write(tmp_path / "hole.tsv", "1\t2\n3\t\n"),
        "header_only": _write(tmp_path / "header.csv", "x,y\n"),
        "semicolons": _write(tmp_path / "semi.csv", "x;y\n1;2\n"),
        "unknown": _write(tmp_path / "data.xyz", "1 2\n"),
        "fake_npy": _write(tmp_path / "fake.npy", "not numpy\n"),
        "objects": tmp_path / "objects.npy",
        "model": tmp_path / "model.npz",
        "three": tmp_path / "three.npy",
        "short_w": tmp_path / "short_w.npy",
        "inf_npy": tmp_path / "inf.npy",
        "tmp": tmp_path,
    }


_FILE_ERRORS = [
    (["fit", "{missing}"], "missing.npy: no such file"),
    (["fit", "{ragged}"], "malformed CSV: line 3 has 3 fields, the lines before it 2"),
    (["fit", "{names}"], "column 2 ('name') is not numeric: 'a' on line 2"),
    (["fit", "{hole}"], "malformed TSV: line 2, column 2 is empty"),
    (["fit", "{header_only}"], "malformed CSV: no rows of numbers"),
    (["fit", "{semicolons}"], "(the delimiter of a .csv file is ',')"),
    (["fit", "{unknown}"], "unknown extension '.xyz'"),
    (["fit", "{fake_npy}"], "not a readable .npy file"),
    (["fit", "{objects}"], "holds Python objects"),
    (["fit", "{header_npy}"], "not a readable .npy file (TokenError"),
    (["fit", "{encrypted_npz}"], "the array 'X' is damaged (RuntimeError"),
    (["fit", "{method_npz}"], "the array 'X' is damaged (NotImplementedError"),
    (["fit", "{deflated_npz}"], "the array 'X' is damaged (error"),
    (["fit", "{text_npz}"], "the member 'readme.txt' is not a .npy array; name the array"),
    (["fit", "{npy}", "--sample-weight", "{encrypted_npz}"], "the array 'X' is damaged"),
    (["predict", "{encrypted_npz}", "{npy}"], "not a fastmix model file"),
    (["predict", "{header_npy}", "{npy}"], "not a fastmix model file"),
    (["fit", "{nan_csv}"], "nan.csv: line 4, column 2 ('y') is nan"),
    (["fit", "{raw}", "--shape", "601,2", "--dtype", "float32"], "wrong --shape"),
    # Forgetting --dtype: refused (a float64 file of N rows is a float32 file of
    # 2N rows), with both readings of the file's size named.
    (["fit", "{raw}", "--shape", "600,2"], "needs --dtype float32 or --dtype float64"),
    (["fit", "{raw}", "--shape", "300,2"], "as --shape 600,2 --dtype float32"),
    (["fit", "{raw}", "--shape", "600,2", "--dtype", "float64"], "of float64 needs 9,600"),
    (
        ["fit", "{raw}", "--shape", "600,2", "--dtype", "float64"],
        "reads as --shape 300,2 --dtype float64 or as --shape 600,2 --dtype float32",
    ),
    (["fit", "{raw}", "--shape", "600,7", "--dtype", "float32"], "not a whole number"),
    (["fit", "{raw}", "--shape", "600"], "--shape"),
    (["fit", "{npy}", "--shape", "600,2"], "--shape is for raw binary files"),
    (["fit", "{npz}", "--key", "nope"], "no array named 'nope' (its arrays: labels, X)"),
    (["fit", "{npy}", "--key", "X"], "--key is for .npz archives"),
    (["fit", "{npy}", "-k", "601"], "n_components = 601"),
    (["fit", "{npy}", "--mean-precision-prior", "1"], "--mean-precision-prior needs --bayesian"),
    (["fit", "{npy}", "--bayesian", "--degrees-of-freedom-prior", "0.5"], "degrees_of_freedom"),
    (["fit", "{npy}", "--sample-weight", "{short_w}"], "5 weights for 600 rows"),
    (["fit", "{npy}", "--sample-weight", "{three}"], "one column of weights, got 3"),
    (["fit", "{npy}", "--out", "{tmp}/no/such/folder/m.npz"], "does not exist"),
    (["fit", "{npy}", "--plot", "{tmp}/fig.nope"], "matplotlib cannot write .nope"),
    (["fit", "{npy}", "--plot", "{tmp}/f.png", "--plot-dims", "0,2"], "--plot-dims 0,2"),
    (["fit", "{npy}", "--tol", "-1"], "--tol"),
    # Options partial_fit cannot honour (they were ignored without a word).
    (["fit", "{npy}", "--online", "--max-iter", "5"], "--max-iter has no effect with --online"),
    (["fit", "{npy}", "--online", "--n-init", "3"], "--n-init has no effect with --online"),
    (["fit", "{npy}", "--online", "--tol", "0.1"], "--tol has no effect with --online"),
    # Non-finite values in a binary file: named by row and column (scikit-learn's
    # message named neither, and pointed at imputers).
    (["fit", "{inf_npy}", "-k", "2"], "inf.npy: row 401, column 2 is -inf: the data must be"),
    (["fit", "{inf_npy}", "-k", "2", "--online"], "inf.npy: row 401, column 2 is -inf"),
    (["select", "{inf_npy}", "-k", "1,2"], "inf.npy: row 401, column 2 is -inf"),
    (["predict", "{model}", "{inf_npy}"], "inf.npy: row 401, column 2 is -inf"),
    (["fit", "{npy}", "--plot-dims", "1,0"], "--plot-dims has no effect without --plot"),
    (["fit", "{npy}", "-k", "1e300"], "'1e300' is too large: at most 2**63 - 1"),
    (["fit", "{npy}", "--min-responsibility", "1"], "expected a number in [0, 1), got '1'"),
    (["predict", "{model}", "{three}", "--out", "{tmp}/l.npy"], "but the model"),
    (["predict", "{missing}", "{npy}", "--out", "{tmp}/l.npy"], "MODEL"),
    (["predict", "{npy}", "{npy}", "--out", "{tmp}/l.npy"], "not a fastmix model file"),
    (["predict", "{model}", "{npy}", "--out", "{tmp}/l.txt"], "--out"),
    (["predict", "{model}", "{ragged}", "--out", "{tmp}/l.npy"], "malformed CSV"),
    (["demo", "--no-plot", "--plot", "x.png"], "--no-plot contradicts"),
]


@pytest.mark.parametrize("args, fragment", _FILE_ERRORS)
def test_file_errors_are_one_line(args, fragment, data, bad_files, capsys):
    if "--plot" in args and not _have_matplotlib():
        pytest.skip("the --plot checks past 'needs matplotlib' need matplotlib")
    paths = {**{k: v for k, v in data.items() if k != "X"}, **bad_files}
    status, out, err = _main([a.format(**paths) for a in args], capsys)
    _check_one_line(status, out, err, fragment)
    assert not (bad_files["tmp"] / "l.npy").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "{npy}", "--out", "{ro}/m.npz"],
        ["fit", "{npy}", "--plot", "{ro}/f.png"],
        ["select", "{npy}", "-k", "1,2", "--out", "{ro}/m.npz"],
        ["predict", "{model}", "{npy}", "--out", "{ro}/l.npy"],
        ["demo", "--n-samples", "600", "--plot-dir", "{ro}"],
    ],
)
def test_unwritable_output_folder_is_refused_before_the_work(
    args, data, bad_files, monkeypatch, capsys
):
    """An output folder that refuses new files is found before the data are
    read and fitted, not after (the message named save's temporary file)."""
    import tempfile

    from fastmix.cli import _fit, _usage

    if "--plot" in args or "--plot-dir" in args:
        if not _have_matplotlib():
            pytest.skip("needs matplotlib")
    ro = bad_files["tmp"] / "ro"
    ro.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):  # a read-only folder, for root too
        if dir is not None and os.path.samefile(dir, ro):
            raise PermissionError(13, "Permission denied")
        return real(*a, dir=dir, **k)

    def no_reading(*a, **k):
        raise AssertionError("the data were read before the output was checked")

    monkeypatch.setattr(_usage.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(_fit, "read_table", no_reading)
    paths = {**{k: v for k, v in data.items() if k != "X"}, **bad_files, "ro": ro}
    status, out, err = _main([a.format(**paths) for a in args], capsys)
    _check_one_line(status, out, err, "cannot write in the folder")
    assert "Permission denied" in err and list(ro.iterdir()) == []


def test_empty_output_path_is_refused(data, capsys):
    status, out, err = _main(["fit", str(data["npy"]), "--out", ""], capsys)
    _check_one_line(status, out, err, "--out: the path is empty; give a file name")


def test_file_error_in_a_subprocess(bad_files):
    proc = run_fastmix("fit", bad_files["names"])
    _check_one_line(proc.returncode, proc.stdout, proc.stderr, "is not numeric")


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_help_fit_predict(command, capsys):
    status, out, _ = _main([command, "--help"], capsys)
    assert status == 0
    assert out.startswith(f"usage: fastmix {command}")
    expected = {
        "fit": ["DATA", "--n-components", "-k", "--covariance-type", "--bayesian",
                "--weight-concentration-prior-type", "--weight-concentration-prior",
                "--mean-precision-prior", "--degrees-of-freedom-prior", "--max-iter", "--tol",
                "--reg-covar", "--min-responsibility", "--n-init", "--init-params",
                "--random-state",
                "--sample-weight", "--out", "--plot", "--progress", "--json", "--key",
                "--shape", "--dtype"],
        "predict": ["MODEL", "DATA", "--out", "--proba", "--key", "--shape", "--dtype"],
    }[command]  # fmt: skip
    for option in expected:
        assert option in out
    status, out, _ = _main(["--help"], capsys)
    assert "fit" in out and "predict" in out


# ---------------------------------------------------------- the progress hook
def _events_of(model, X, **fit_kwargs):
    from fastmix._progress import report_progress

    events = []
    with report_progress(lambda *event: events.append(event)):
        model.fit(X, **fit_kwargs)
    return events


def _fitted_state(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_")}


def _assert_same_state(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        if isinstance(a[name], tuple):
            for x, y in zip(a[name], b[name], strict=True):
                np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
def test_report_progress_once_per_iteration(estimator):
    cls = getattr(fastmix, estimator)
    X = _blobs()
    params = dict(n_components=3, n_init=2, max_iter=6, tol=0.0, random_state=0)
    with pytest.warns(Warning):
        model = cls(**params)
        events = _events_of(model, X)
    assert len(events) == 2 * 6  # n_init x max_iter with tol=0
    for init in (0, 1):
        mine = [e for e in events if e[0] == init]
        assert [e[1] for e in mine] == list(range(1, 7))  # n_iter increases from 1
        assert all(e[2] == 6 for e in mine)
        assert mine[0][4] == np.inf  # the first change is from -inf
        for previous, event in zip(mine[:-1], mine[1:], strict=True):
            assert event[4] == pytest.approx(event[3] - previous[3])
    best_init = max((0, 1), key=lambda i: [e for e in events if e[0] == i][-1][3])
    best = [e for e in events if e[0] == best_init]
    assert [e[3] for e in best] == pytest.approx(model.lower_bounds_)

    # The fitted model is the same with and without the hook, and carries no trace of it.
    with pytest.warns(Warning):
        plain = cls(**params).fit(X)
    _assert_same_state(_fitted_state(model), _fitted_state(plain))
    assert sorted(vars(model)) == sorted(vars(plain))
    restored = pickle.loads(pickle.dumps(model))
    _assert_same_state(_fitted_state(restored), _fitted_state(plain))
    assert clone(model).get_params() == clone(plain).get_params()


def test_report_progress_leaves_verbose_and_nesting_alone(capsys):
    from fastmix import GaussianMixture
    from fastmix._progress import notify, report_progress

    X = _blobs()
    GaussianMixture(3, verbose=1, random_state=0).fit(X)
    plain = capsys.readouterr().out
    events = _events_of(GaussianMixture(3, verbose=1, random_state=0), X)
    assert capsys.readouterr().out == plain  # scikit-learn's verbose output as it was
    assert "Initialization converged" in plain and len(events) >= 1

    outer, inner = [], []
    with report_progress(lambda *e: outer.append(e)):
        with report_progress(lambda *e: inner.append(e)):
            notify(0, 1, 10, -1.0, np.inf)
        notify(0, 2, 10, -0.5, 0.5)
        with report_progress(None):  # None: nothing reported inside
            notify(0, 3, 10, -0.4, 0.1)
        # Another thread does not see this thread's callback.
        thread = threading.Thread(target=notify, args=(0, 9, 10, 0.0, 0.0))
        thread.start()
        thread.join()
    notify(0, 4, 10, -0.3, 0.1)  # no callback registered: nothing happens
    assert inner == [(0, 1, 10, -1.0, np.inf)]
    assert outer == [(0, 2, 10, -0.5, 0.5)]


def test_report_progress_callback_error_leaves_the_model_alone():
    from fastmix import GaussianMixture
    from fastmix._progress import report_progress

    X = _blobs()
    model = GaussianMixture(3, random_state=0).fit(X)
    before = _fitted_state(model)

    class Stop(Exception):
        pass

    def stop(init, n_iter, max_iter, lower_bound, change):
        raise Stop

    with pytest.raises(Stop), report_progress(stop):
        model.set_params(random_state=1).fit(X)
    _assert_same_state(_fitted_state(model), before)


def test_bayesian_progress_says_vi_and_o_is_out(data, tmp_path):
    """A Bayesian fit is variational: its progress reads "VI", not "EM"; -o is --out."""
    model = tmp_path / "m.npz"
    proc = run_fastmix(
        "fit", data["npy"], "-k", "3", "--bayesian", "--progress", "text", "-o", str(model)
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^fastmix fit: VI, iteration 1/", proc.stderr, re.M), proc.stderr
    assert "EM," not in proc.stderr
    labels = tmp_path / "labels.npy"
    proc = run_fastmix("predict", str(model), data["npy"], "-o", str(labels))
    assert proc.returncode == 0, proc.stderr
    assert np.load(labels).shape == (np.load(data["npy"]).shape[0],)


def test_predict_without_out_prints_the_labels(data, tmp_path):
    """No --out: one label per line on stdout (main required --out)."""
    model = tmp_path / "m.npz"
    assert run_fastmix("fit", data["npy"], "-k", "3", "-o", str(model)).returncode == 0
    proc = run_fastmix("predict", str(model), data["npy"])
    assert proc.returncode == 0, proc.stderr
    expected = fastmix.load(model).predict(np.load(data["npy"]))
    assert proc.stdout.split() == [str(v) for v in expected]


def test_pandas_index_column_is_dropped_with_a_note(data, tmp_path, capsys):
    """A CSV written by DataFrame.to_csv (header ',x,y', the index first) is read
    as its named columns only (main fitted the index as a feature)."""
    X = np.load(data["npy"])
    path = tmp_path / "indexed.csv"
    lines = [",x,y"] + [f"{i},{float(a)!r},{float(b)!r}" for i, (a, b) in enumerate(X)]
    path.write_text("\n".join(lines) + "\n")
    from fastmix.cli._readers import read_data
    from fastmix.cli._usage import UsageError

    np.testing.assert_array_equal(read_data(path), X)
    assert "pandas index" in capsys.readouterr().err
    # A bad cell is named by its own column, the index counted as the file's first
    # (the message named the column to its right, or blamed a string index).
    bad = tmp_path / "bad.csv"
    bad.write_text(",x,y\n0,1,2\n1,oops,4\n")
    with pytest.raises(UsageError, match=r"column 2 \('x'\) is not numeric: 'oops' on line 3"):
        read_data(bad)
    bad.write_text(",x,y\na,1,2\nb,3,oops\n")
    with pytest.raises(UsageError, match=r"column 3 \('y'\) is not numeric: 'oops' on line 3"):
        read_data(bad)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1.0,,3.0\n1,2,3\n4,5,6\n", "line 1, column 2 is empty"),
        ("1.0,NA,3.0\n1,2,3\n4,5,6\n", "column 2 is not numeric: 'NA' on line 1"),
        (",2.0,3.0\n1,2,3\n4,5,6\n", "line 1, column 1 is empty"),
        ("1,2,\n3,4,\n", "line 1, column 3 is empty"),
        (",a,b\n0,1,2,100\n1,3,4,200\n", "the header has 3 fields but the rows have 4"),
        ("NA,NA,1.5\n1,2,3\n4,5,6\n", "'NA' on line 1"),
    ],
    ids=[
        "empty_cell",
        "na_cell",
        "empty_first_cell",
        "trailing_comma",
        "index_and_extra",
        "mostly_missing",
    ],
)
def test_a_first_row_of_data_with_a_bad_cell_is_not_a_header(text, match, tmp_path):
    """A first row with one empty or 'NA' cell among numbers was taken as a
    header: the row was lost (predict gave a label fewer than its rows), its
    cells became feature names, and an empty first cell dropped the whole
    first column as a pandas index. Under an index column, longer rows lost
    their extra columns silently."""
    from fastmix.cli._readers import read_data
    from fastmix.cli._usage import UsageError

    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=match):
        read_data(path)


@pytest.mark.parametrize(
    ("text", "names", "index"),
    [
        (",0,1\n0,1.5,2\n1,3,4\n", ["0", "1"], True),  # DataFrame(X).to_csv()
        (",1,2\n0,1.5,2\n1,3,4\n", ["1", "2"], True),  # ... after a column was dropped
        ("id,0,1\n7,1.5,2\n8,3,4\n", ["id", "0", "1"], False),  # rename_axis("id")
        ("x,400,410\n7,1.5,2\n8,3,4\n", ["x", "400", "410"], False),  # spectra, years
    ],
    ids=["pandas_default", "pandas_dropped", "named_index", "numbered_columns"],
)
def test_headers_of_numbered_columns(text, names, index, tmp_path, capsys):
    """A header whose column names are numbers is still a header: any name
    that is not a number or a missing-value cell makes one, and so does an
    empty first cell before integer labels (DataFrame.to_csv's index)."""
    from fastmix.cli._readers import read_table

    path = tmp_path / "x.csv"
    path.write_text(text)
    X, got = read_table(path)
    assert got == names
    assert X.shape == (2, len(names))
    assert ("pandas index" in capsys.readouterr().err) == index


def _first_stderr_line(args, env, timeout=120):
    """A child's first line on stderr ("" if none in ``timeout`` s); the child is then killed."""
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    line = []
    reader = threading.Thread(target=lambda: line.append(proc.stderr.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    proc.kill()
    proc.wait()
    reader.join()  # the kill closed the pipe: readline has returned
    proc.stderr.close()
    return line[0] if line else ""


def test_first_run_says_it_compiles(data, tmp_path, capsys):
    """An empty numba cache: the first fit announces the compilation before it
    starts; a run that finds the kernels cached says nothing of it."""
    # The cheapest fit to compile (no k-means, no full factors).
    fit = ["fit", str(data["npy"]), "-k", "3", "--covariance-type", "diag"]
    fit += ["--init-params", "random_from_data", "--max-iter", "2", "--progress", "none"]
    child = [sys.executable, "-m", "fastmix", *fit]
    empty = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    empty.pop("FASTMIX_NUMBA_CACHE", None)
    # The note comes before anything compiles, so the child is stopped once it
    # has said it: its compilation (a minute) is the one this process makes.
    note = "fastmix fit: compiling fastmix kernels (first run only, ~"
    line = _first_stderr_line(child, empty)
    assert line.startswith(note), line

    # The same fit here leaves its kernels in this process's numba cache, which
    # a child shares: it loads them and says nothing.
    status, _, err = _main(fit, capsys)
    assert status == 0, err
    env = dict(os.environ)
    if not main_kernels_cached():  # this process caches nothing (e.g. FASTMIX_NUMBA_CACHE=0)
        env = empty
        first = subprocess.run(child, capture_output=True, text=True, timeout=600, env=env)
        assert first.returncode == 0, first.stderr
        assert first.stderr.startswith(note), first.stderr
    again = subprocess.run(child, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr
    assert "compiling" not in again.stderr


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled")
def test_first_run_note_says_when_nothing_can_be_cached(monkeypatch):
    """A read-only install and HOME leave jit no cache folder: every run
    compiles, and the note said "first run only" all the same."""
    import io

    from fastmix import _numba
    from fastmix.cli import _warmup

    monkeypatch.setattr(_warmup, "main_kernels_cached", lambda: False)
    notes = {}
    for case, can in (("cacheable", True), ("no folder", False)):
        monkeypatch.setattr(_numba, "can_cache", lambda kernel, can=can: can)
        out = io.StringIO()
        _warmup.first_run_note("fastmix fit", out)
        notes[case] = out.getvalue()
    assert "(first run only, ~" in notes["cacheable"]
    assert "every run: no writable cache folder; set NUMBA_CACHE_DIR" in notes["no folder"]
    monkeypatch.setenv("FASTMIX_NUMBA_CACHE", "0")
    out = io.StringIO()
    _warmup.first_run_note("fastmix fit", out)
    assert "every run: FASTMIX_NUMBA_CACHE is off" in out.getvalue()


def test_csv_header_names_become_feature_names(data, tmp_path, capsys):
    """A CSV header is kept as feature_names_in_ (as a DataFrame's columns are);
    predict on a file with the same header neither warns nor refuses, and a
    different header is refused with both lists of names."""
    model = tmp_path / "m.npz"
    status, _, err = _main(
        ["fit", data["csv"], "-k", "3", "-o", model, "--progress", "none"], capsys
    )
    assert status == 0, err
    fitted = fastmix.load(model)
    assert list(fitted.feature_names_in_) == ["x", "y"]

    labels = tmp_path / "labels.npy"
    status, _, err = _main(["predict", model, data["csv"], "-o", labels], capsys)
    assert status == 0, err
    assert "feature names" not in err
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        expected = fitted.predict(data["X"])  # an array: scikit-learn warns, the CLI not
    np.testing.assert_array_equal(np.load(labels), expected)

    # A header-less array is taken column by column, as scikit-learn takes one.
    status, _, err = _main(["predict", model, data["npy"], "-o", labels], capsys)
    assert (status, err) == (0, "")

    swapped = tmp_path / "swapped.csv"
    np.savetxt(swapped, data["X"], delimiter=",", header="y,x", comments="", fmt="%.17g")
    status, _, err = _main(["predict", model, swapped, "-o", labels], capsys)
    assert status == 2
    assert "the header names ('y', 'x') are not the feature names the model" in err
    assert "('x', 'y')" in err
