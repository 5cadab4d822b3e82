"""Fairness in production: subgroups, the metrics compared across them, and the sample sizes
that make a gap between groups worth an alarm.

The drift monitor (``lambdas/drift_monitor/fairness.py``) computes realised AUROC, calibration
and alert rate per subgroup once outcomes arrive and publishes them under
:data:`contracts.drift.DEFAULT_METRIC_NAMESPACE`; the Monitoring stack alarms on the gaps; the
stage config (``stacks/config.py``, section ``fairness``) sets bounds and minimums, and refuses
minimums too small for its bounds (:func:`minimum_outcomes`, :func:`minimum_patients`).

Subgroup labels reach the monitor without a raw identifier: the ground-truth record carries
the HMAC ``encounter_key`` and, optionally, ``sex``, ``age_band`` and ``race``
(docs/data-contract.md, "Ground truth"); sex and age band otherwise come from the captured
request (they are model inputs). Race is never a model input, so it is compared only where the
ground-truth feed carries it. Stdlib only: the Lambda, the stacks and the demo share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from contracts.encounter import RACE_CATEGORIES, SEX_CATEGORIES, UNKNOWN

#: Subgroup attributes, as named in the ground-truth record and in the metric dimension.
ATTRIBUTE_SEX = "sex"
ATTRIBUTE_AGE_BAND = "age_band"
ATTRIBUTE_RACE = "race"
ATTRIBUTES = (ATTRIBUTE_SEX, ATTRIBUTE_AGE_BAND, ATTRIBUTE_RACE)

#: Age bands: ``(label, lowest age in the band)``, ascending; the last band is open-ended.
AGE_BANDS: tuple[tuple[str, int], ...] = (("0-44", 0), ("45-64", 45), ("65-79", 65), ("80+", 80))

#: The groups each attribute may take; ``unknown`` is carried but never compared (a group of
#: patients whose attribute is missing says nothing about a protected group).
GROUPS: Mapping[str, tuple[str, ...]] = {
    ATTRIBUTE_SEX: SEX_CATEGORIES,
    ATTRIBUTE_AGE_BAND: (*(label for label, _ in AGE_BANDS), UNKNOWN),
    ATTRIBUTE_RACE: RACE_CATEGORIES,
}

#: The compared metrics, as named in the gap metric's ``Metric`` dimension.
GAP_AUROC = "auroc"
#: Calibration in the large: observed readmission rate minus mean predicted risk (O - E).
GAP_CALIBRATION = "calibration_in_the_large"
#: Share of patients at or above the model's decision threshold (risk band ``high``).
GAP_ALERT_RATE = "alert_rate"
GAP_METRICS = (GAP_AUROC, GAP_CALIBRATION, GAP_ALERT_RATE)

#: CloudWatch names. Per-group metrics carry ``EndpointName``, ``Attribute`` and ``Group``;
#: the gap carries ``EndpointName``, ``Attribute`` and ``Metric``, and is published only when
#: at least two groups of the attribute meet the minimums (so a missing gap is not a breach).
DIMENSION_ATTRIBUTE = "Attribute"
DIMENSION_GROUP = "Group"
DIMENSION_METRIC = "Metric"
METRIC_SUBGROUP_PATIENTS = "SubgroupPatients"
METRIC_SUBGROUP_OUTCOMES = "SubgroupOutcomes"
METRIC_SUBGROUP_AUROC = "SubgroupAUROC"
METRIC_SUBGROUP_CALIBRATION = "SubgroupCalibrationInTheLarge"
METRIC_SUBGROUP_ECE = "SubgroupECE"
METRIC_SUBGROUP_ALERT_RATE = "SubgroupAlertRate"
METRIC_FAIRNESS_GAP = "FairnessGap"
METRIC_GROUPS_COMPARED = "FairnessGroupsCompared"

#: The invocation event of the daily fairness run (the hourly drift run has no ``check``).
FAIRNESS_CHECK_EVENT: Mapping[str, str] = {"check": "fairness"}

#: The drift monitor's fairness variables: the Monitoring stack and the demo set them with
#: :func:`monitor_environment`, the monitor reads them (lambdas/drift_monitor/settings.py).
WINDOW_DAYS_ENV = "FAIRNESS_WINDOW_DAYS"
AUROC_GAP_ENV = "FAIRNESS_AUROC_GAP"
CALIBRATION_GAP_ENV = "FAIRNESS_CALIBRATION_GAP"
ALERT_RATE_GAP_ENV = "FAIRNESS_ALERT_RATE_GAP"
MIN_PATIENTS_ENV = "FAIRNESS_MIN_PATIENTS"
MIN_OUTCOMES_ENV = "FAIRNESS_MIN_OUTCOMES"

#: Planning assumptions behind the minimums (docs/operations.md, "A fairness alarm"): a model
#: AUROC near 0.7 and a 30-day readmission rate near 11% (UCI Diabetes-130's, data-contract).
PLANNING_AUROC = 0.7
PLANNING_PREVALENCE = 0.11
#: Alert-rate planning uses the worst case p(1 - p) (p = 0.5): it holds for any threshold.
PLANNING_ALERT_RATE = 0.5
#: Two-sided 95%: a gap this many standard errors wide is unlikely between equal groups.
PLANNING_Z = 1.96
_MAX_SEARCH = 10_000_000


def monitor_environment(
    *,
    window_days: int,
    auroc_gap: float,
    calibration_gap: float,
    alert_rate_gap: float,
    min_patients: int,
    min_outcomes: int,
) -> dict[str, str]:
    """The drift monitor's fairness variables for a stage's ``fairness`` settings."""
    return {
        WINDOW_DAYS_ENV: str(window_days),
        AUROC_GAP_ENV: str(auroc_gap),
        CALIBRATION_GAP_ENV: str(calibration_gap),
        ALERT_RATE_GAP_ENV: str(alert_rate_gap),
        MIN_PATIENTS_ENV: str(min_patients),
        MIN_OUTCOMES_ENV: str(min_outcomes),
    }


def age_band(age_years: object) -> str | None:
    """The band of an age in years, ``None`` for a missing or non-numeric age."""
    if isinstance(age_years, bool) or not isinstance(age_years, int | float):
        return None
    if not math.isfinite(age_years) or age_years < 0:
        return None
    band = AGE_BANDS[0][0]
    for label, lowest in AGE_BANDS:
        if age_years >= lowest:
            band = label
    return band


def auroc_standard_error(auroc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUROC from ``positives`` and ``negatives``.

    ``SE^2 = (A(1-A) + (n1-1)(Q1-A^2) + (n2-1)(Q2-A^2)) / (n1 n2)``, ``Q1 = A/(2-A)``,
    ``Q2 = 2A^2/(1+A)``. Radiology 143:29-36, doi:10.1148/radiology.143.1.7063747.
    """
    if positives < 1 or negatives < 1:
        raise ValueError("an AUROC needs at least one positive and one negative")
    if not 0.0 <= auroc <= 1.0:
        raise ValueError("auroc must lie in [0, 1]")
    q1 = auroc / (2 - auroc)
    q2 = 2 * auroc**2 / (1 + auroc)
    variance = (
        auroc * (1 - auroc) + (positives - 1) * (q1 - auroc**2) + (negatives - 1) * (q2 - auroc**2)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def _smallest(fits: Callable[[int], bool], limit: int = _MAX_SEARCH) -> int:
    """Smallest ``n >= 1`` with ``fits(n)`` (monotone), by doubling then bisection."""
    high = 1
    while not fits(high):
        high *= 2
        if high > limit:
            raise ValueError("no sample size up to the search limit is enough")
    low = high // 2
    while low + 1 < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle
    return high


def minimum_outcomes(
    bound: float,
    auroc: float = PLANNING_AUROC,
    prevalence: float = PLANNING_PREVALENCE,
    z: float = PLANNING_Z,
) -> int:
    """Fewest readmissions per group so that two groups of equal true AUROC differ by more
    than ``bound`` less than the ``z``-level of the time.

    The difference of two independent AUROCs has standard error ``sqrt(2) * SE``; each group
    holds ``n`` positives and ``n (1 - p) / p`` negatives. Returns the smallest ``n`` with
    ``z * sqrt(2) * SE(auroc, n, n (1 - p) / p) <= bound``.
    """
    if bound <= 0 or not 0 < prevalence < 1:
        raise ValueError("bound must be positive and prevalence in (0, 1)")

    def fits(n: int) -> bool:
        negatives = max(1, math.ceil(n * (1 - prevalence) / prevalence))
        return z * math.sqrt(2) * auroc_standard_error(auroc, n, negatives) <= bound

    return _smallest(fits)


def minimum_patients(bound: float, rate: float, z: float = PLANNING_Z) -> int:
    """Fewest patients per group so that two groups of equal true ``rate`` (alert rate, or
    readmission rate for calibration in the large) differ by more than ``bound`` less than the
    ``z``-level of the time: ``z * sqrt(2 rate (1 - rate) / n) <= bound``."""
    if bound <= 0 or not 0 < rate < 1:
        raise ValueError("bound must be positive and rate in (0, 1)")
    return _smallest(lambda n: z * math.sqrt(2 * rate * (1 - rate) / n) <= bound)
