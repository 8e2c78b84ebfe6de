"""``import fastmix`` time, and a first fit's compile time with and without numba's disk cache.

Usage (from the repository root)::

    python benchmarks/import_compile.py
    python benchmarks/import_compile.py --repeats 5 --json import_compile.json

Every measurement runs in a fresh interpreter:

- ``import``: the seconds of ``import fastmix`` (measured inside the
  interpreter, so interpreter start-up is excluded; the whole ``python -c``
  wall time is reported too) and the number of kernel signatures compiled
  after the import (must be 0); then ``from fastmix import GaussianMixture``
  (the estimator imports scikit-learn) and ``import sklearn.mixture`` for scale.
- ``first fit``: ``GaussianMixture(16, covariance_type=COV)`` on 100,000 x 16
  rows, 2 iterations from an explicit start: the first fit, then the same fit
  again in the same process. first - second = the one-off cost (compilation,
  or loading from the cache). Three cache states:

  * ``off``: ``FASTMIX_NUMBA_CACHE=0`` (compile every time);
  * ``cold``: caching on, ``NUMBA_CACHE_DIR`` a new empty folder (compile and
    write the cache);
  * ``warm``: caching on, the folder ``cold`` filled (load from the cache).

  The variables are set in the subprocesses' environment only.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import _perf_common as pc

IMPORT_CHILD = """
import time
t0 = time.perf_counter()
{statement}
seconds = time.perf_counter() - t0
compiled = 0
if "fastmix" in "{statement}":
    import numba
    import fastmix._kernels.estep as estep
    for value in vars(estep).values():
        if isinstance(value, numba.core.dispatcher.Dispatcher):
            compiled += len(value.signatures)
print(seconds, compiled)
"""

FIT_CHILD = """
import sys, time, warnings
sys.path.insert(0, {here!r})
import _perf_common as pc
import fastmix
from fastmix import GaussianMixture  # imports scikit-learn: not compile time
warnings.simplefilter("ignore")
X = pc.make_data(100_000, 16, 16, "float64")
params = pc.gmm_params(16, {cov!r}, X, 2)
t0 = time.perf_counter()
fastmix.GaussianMixture(**params).fit(X)
first = time.perf_counter() - t0
t0 = time.perf_counter()
fastmix.GaussianMixture(**params).fit(X)
second = time.perf_counter() - t0
print(first, second)
"""


def _run(code, env=None):
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    wall = time.perf_counter() - t0
    return [float(v) for v in out.stdout.split()], wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))

    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    result = {}
    for statement in (
        "import fastmix",
        "from fastmix import GaussianMixture",
        "import sklearn.mixture",
    ):
        inside, walls, compiled = [], [], []
        for _ in range(args.repeats):
            (seconds, n_compiled), wall = _run(IMPORT_CHILD.format(statement=statement))
            inside.append(seconds)
            walls.append(wall)
            compiled.append(int(n_compiled))
        result[statement] = {
            "seconds": pc.median(inside),
            "wall_seconds": pc.median(walls),
            "all": inside,
            "compiled_signatures": max(compiled),
        }
        pc.say(
            f"{statement:<36} {pc.median(inside):6.3f} s (median of {args.repeats}; "
            f"'python -c' wall {pc.median(walls):.3f} s); kernel signatures compiled: "
            f"{max(compiled)}"
        )

    code = FIT_CHILD.format(here=here, cov=args.covariance_type)
    with tempfile.TemporaryDirectory(prefix="fastmix-numba-cache-") as tmp:
        states = {"off": [], "cold": [], "warm": []}
        warm_dir = os.path.join(tmp, "warm")
        for i in range(args.repeats):
            for state in states:
                env = dict(os.environ)
                if state == "off":
                    env["FASTMIX_NUMBA_CACHE"] = "0"
                else:
                    env["FASTMIX_NUMBA_CACHE"] = "1"
                    if state == "cold":
                        env["NUMBA_CACHE_DIR"] = os.path.join(tmp, f"cold{i}")
                    else:
                        if not os.path.isdir(warm_dir):  # fill it once, untimed
                            _run(code, dict(env, NUMBA_CACHE_DIR=warm_dir))
                        env["NUMBA_CACHE_DIR"] = warm_dir
                (first, second), wall = _run(code, env)
                states[state].append((first, second, wall))
        for state, runs in states.items():
            first = pc.median([r[0] for r in runs])
            second = pc.median([r[1] for r in runs])
            one_off = pc.median([r[0] - r[1] for r in runs])
            result[f"first fit, cache {state}"] = {
                "first_fit_seconds": first,
                "second_fit_seconds": second,
                "one_off_seconds": one_off,
                "process_wall_seconds": pc.median([r[2] for r in runs]),
                "all": runs,
            }
            pc.say(
                f"first fit, cache {state:<4}: first {first:6.2f} s, second {second:5.2f} s, "
                f"one-off {one_off:6.2f} s (median of {len(runs)}), whole process "
                f"{pc.median([r[2] for r in runs]):6.2f} s"
            )
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json({"machine": info, "args": vars(args), "results": result}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
