"""fastmix: Gaussian mixture models on streaming numba kernels.

Drop-in replacements for scikit-learn's ``GaussianMixture`` and
``BayesianGaussianMixture``, with sample weights, float32 kept as float32 and
no (n_samples, n_components) array while fitting.
"""

from ._bayesian_mixture import BayesianGaussianMixture
from ._gaussian_mixture import GaussianMixture
from ._io import load

__version__ = "0.1.0"

__all__ = ["BayesianGaussianMixture", "GaussianMixture", "__version__", "load"]
