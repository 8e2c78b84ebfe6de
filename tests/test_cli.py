"""The ``fastmix`` command line, run as a user runs it: in a subprocess."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastmix.cli import demo_mixture, main

TIMEOUT = 120


def run_fastmix(*args):
    return subprocess.run(
        [sys.executable, "-m", "fastmix", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


# One row of the demo's table:
# "  found true |  weight  true | ( x, y)  ( x, y) | sd, sd, angle deg  sd, sd, angle deg"
_NUM = r"(-?\d+(?:\.\d+)?)"
_ROW = re.compile(
    rf"^\s*(\d+)\s+(\d+)\s+\|\s+{_NUM}\s+{_NUM}\s+\|"
    rf"\s+\(\s*{_NUM},\s*{_NUM}\)\s+\(\s*{_NUM},\s*{_NUM}\)\s+\|"
    rf"\s+{_NUM},\s+{_NUM},\s+{_NUM} deg\s+{_NUM},\s+{_NUM},\s+{_NUM} deg\s*$"
)


def test_demo_finds_the_true_mixture():
    proc = run_fastmix("demo", "--n-samples", "20000")
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
                     "--covariance-types", "--repeats", "--threads", "--json", "-n", "-d", "-k"],
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
