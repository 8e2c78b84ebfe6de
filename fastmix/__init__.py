"""fastmix: Gaussian mixture models on streaming numba kernels.

Drop-in replacements for scikit-learn's ``GaussianMixture`` and
``BayesianGaussianMixture``, with sample weights, float32 kept as float32 and
no (n_samples, n_components) array while fitting.

The public names are imported on first access (PEP 562): ``import fastmix``
alone loads neither numba nor scikit-learn, whose import takes about a second
on its own; ``fastmix.GaussianMixture`` or ``from fastmix import
GaussianMixture`` pays it then.
"""

import importlib
import importlib.machinery
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "BayesianGaussianMixture",
    "GaussianMixture",
    "MixtureSelector",
    "__version__",
    "load",
    "save",
]

_LAZY = {
    "BayesianGaussianMixture": "._bayesian_mixture",
    "GaussianMixture": "._gaussian_mixture",
    "MixtureSelector": "._selection",
    "load": "._io",
    "save": "._io",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._bayesian_mixture import BayesianGaussianMixture
    from ._gaussian_mixture import GaussianMixture
    from ._io import load, save
    from ._selection import MixtureSelector


def _forget_orphans(added):
    """Drop the submodules a failed import left without their package.

    Ctrl-C halfway through the first import makes Python drop the modules
    being executed (``numba``, say) but keep their finished submodules
    (``numba.core``); a retry then re-runs the package, which finds the
    submodule cached and never binds it as an attribute: "module 'numba' has
    no attribute 'core'". Orphans written in Python are forgotten so the
    retry imports them afresh; extension modules stay (some refuse a second
    load, and a cached one is found by ``from . import``).
    """
    for name in sorted(added):
        parts = name.split(".")
        parents = (".".join(parts[:i]) for i in range(1, len(parts)))
        if any(parent not in sys.modules for parent in parents):
            module = sys.modules.get(name)
            loader = getattr(getattr(module, "__spec__", None), "loader", None)
            if not isinstance(loader, importlib.machinery.ExtensionFileLoader):
                sys.modules.pop(name, None)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    before = set(sys.modules)
    try:
        value = getattr(importlib.import_module(module, __name__), name)
    except BaseException:
        _forget_orphans(set(sys.modules) - before)
        raise
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
