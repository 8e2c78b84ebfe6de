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


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
