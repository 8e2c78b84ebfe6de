"""The Examples sections of fastmix's docstrings run and print what they show.

numpydoc asks every public function for an Examples section; run here, a
change that breaks one (a renamed attribute, a moved number) fails a test
instead of misleading a reader.
"""

import doctest
import importlib
import inspect
import io
import pkgutil

import pytest

import fastmix

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(fastmix.__path__, "fastmix."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "fastmix.plot":
        matplotlib = pytest.importorskip("matplotlib")
        matplotlib.use("Agg")
    module = importlib.import_module(name)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()


def _public_callables():
    """fastmix's public functions and the public methods its classes define."""
    from fastmix import plot

    found = {f"plot.{name}": getattr(plot, name) for name in plot.__all__}
    for name in fastmix.__all__:
        obj = getattr(fastmix, name)
        if inspect.isclass(obj):
            for attr, value in inspect.getmembers(obj, callable):
                # Those written here, not scikit-learn's (get_params, ...).
                if not attr.startswith("_") and value.__module__.startswith("fastmix"):
                    found[f"{name}.{attr}"] = value
        elif callable(obj):
            found[name] = obj
    return found


def test_the_public_api_has_examples():
    """Every public function and method shows an example (numpydoc's EX01)."""
    pytest.importorskip("matplotlib")
    missing = [n for n, f in _public_callables().items() if "Examples\n" not in (f.__doc__ or "")]
    assert not missing, f"no Examples section: {missing}"
