"""scikit-learn's estimator checks, one test per check.

No check is expected to fail: fastmix's documented differences from
scikit-learn (sample_weight support, float32 kept as float32, covariances_
set when every init is given with max_iter=0) are all within what the checks
allow. A failing check is a bug.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastmix import GaussianMixture, MixtureSelector


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(covariance_type="diag"),
        MixtureSelector(n_components=(1, 2), covariance_types=("full", "diag")),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
