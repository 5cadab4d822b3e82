"""The drift monitor's configuration, read once from its environment into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from contracts.drift import DEFAULT_METRIC_NAMESPACE, PSI_ALARM_THRESHOLD, baseline_s3_key
from contracts.encounter import READMISSION_WINDOW_DAYS
from contracts.fairness import (
    ALERT_RATE_GAP_ENV,
    AUROC_GAP_ENV,
    CALIBRATION_GAP_ENV,
    MIN_OUTCOMES_ENV,
    MIN_PATIENTS_ENV,
    WINDOW_DAYS_ENV,
)
from lambdas.drift_monitor.fairness import FairnessBounds
from lambdas.environment import EnvironmentNames, SettingsError, integer, number

ENDPOINT_NAME_ENV = "ENDPOINT_NAME"
CAPTURE_BUCKET_ENV = "CAPTURE_BUCKET"
CAPTURE_PREFIX_ENV = "CAPTURE_PREFIX"
WINDOW_MINUTES_ENV = "WINDOW_MINUTES"
METRIC_NAMESPACE_ENV = "METRIC_NAMESPACE"
BASELINE_KEY_ENV = "BASELINE_KEY"
GROUND_TRUTH_PREFIX_ENV = "GROUND_TRUTH_PREFIX"
GROUND_TRUTH_DELAY_DAYS_ENV = "GROUND_TRUTH_DELAY_DAYS"
CAPTURE_DELAY_MINUTES_ENV = "CAPTURE_DELAY_MINUTES"
PSI_THRESHOLD_ENV = "PSI_THRESHOLD"
#: What the stack sets (stacks/components/drift_monitor.py); the baseline key and the delays
#: keep their defaults there.
ENVIRONMENT = EnvironmentNames.of(
    required=(
        ENDPOINT_NAME_ENV,
        CAPTURE_BUCKET_ENV,
        CAPTURE_PREFIX_ENV,
        WINDOW_MINUTES_ENV,
        METRIC_NAMESPACE_ENV,
        GROUND_TRUTH_PREFIX_ENV,
        PSI_THRESHOLD_ENV,
        WINDOW_DAYS_ENV,
        AUROC_GAP_ENV,
        CALIBRATION_GAP_ENV,
        ALERT_RATE_GAP_ENV,
        MIN_PATIENTS_ENV,
        MIN_OUTCOMES_ENV,
    ),
    optional=(BASELINE_KEY_ENV, GROUND_TRUTH_DELAY_DAYS_ENV, CAPTURE_DELAY_MINUTES_ENV),
)

DEFAULT_WINDOW_MINUTES = 60
#: SageMaker writes capture files a few minutes after the requests; a window is analysed only
#: once this much time has passed after its end.
DEFAULT_CAPTURE_DELAY_MINUTES = 5
#: Labels are complete once the 30-day horizon has passed, plus a day for the label feed.
DEFAULT_GROUND_TRUTH_DELAY_DAYS = READMISSION_WINDOW_DAYS + 1
MINUTES_PER_DAY = 24 * 60
#: Fairness defaults (the stacks set every one from the stage's ``fairness`` section).
DEFAULT_FAIRNESS_WINDOW_DAYS = 30
DEFAULT_FAIRNESS_BOUNDS = FairnessBounds(
    auroc_gap=0.1, calibration_gap=0.05, alert_rate_gap=0.1, min_patients=400, min_outcomes=75
)
MAX_FAIRNESS_WINDOW_DAYS = 365


@dataclass(frozen=True)
class MonitorSettings:
    """Where the capture and the baseline are, how long a window is, where metrics go."""

    endpoint_name: str
    capture_bucket: str
    capture_prefix: str = ""
    baseline_key: str = ""
    window_minutes: int = DEFAULT_WINDOW_MINUTES
    metric_namespace: str = DEFAULT_METRIC_NAMESPACE
    ground_truth_prefix: str | None = None
    ground_truth_delay_days: int = DEFAULT_GROUND_TRUTH_DELAY_DAYS
    capture_delay_minutes: int = DEFAULT_CAPTURE_DELAY_MINUTES
    psi_threshold: float = PSI_ALARM_THRESHOLD
    fairness_window_days: int = DEFAULT_FAIRNESS_WINDOW_DAYS
    fairness: FairnessBounds = DEFAULT_FAIRNESS_BOUNDS

    def __post_init__(self) -> None:
        if not self.endpoint_name:
            raise SettingsError(f"{ENDPOINT_NAME_ENV} is not set")
        if not self.capture_bucket:
            raise SettingsError(f"{CAPTURE_BUCKET_ENV} is not set")
        if not 1 <= self.window_minutes <= MINUTES_PER_DAY:
            raise SettingsError(f"{WINDOW_MINUTES_ENV} must lie in [1, {MINUTES_PER_DAY}]")
        if MINUTES_PER_DAY % self.window_minutes:
            raise SettingsError(f"{WINDOW_MINUTES_ENV} must divide a day into whole windows")
        if self.ground_truth_delay_days < READMISSION_WINDOW_DAYS:
            raise SettingsError(
                f"{GROUND_TRUTH_DELAY_DAYS_ENV} must be at least {READMISSION_WINDOW_DAYS}"
            )
        if self.capture_delay_minutes < 0:
            raise SettingsError(f"{CAPTURE_DELAY_MINUTES_ENV} must not be negative")
        if self.psi_threshold <= 0:
            raise SettingsError(f"{PSI_THRESHOLD_ENV} must be positive")
        if not self.metric_namespace:
            raise SettingsError(f"{METRIC_NAMESPACE_ENV} must not be empty")
        if not 1 <= self.fairness_window_days <= MAX_FAIRNESS_WINDOW_DAYS:
            raise SettingsError(f"{WINDOW_DAYS_ENV} must lie in [1, {MAX_FAIRNESS_WINDOW_DAYS}]")
        for name, gap in (
            (AUROC_GAP_ENV, self.fairness.auroc_gap),
            (CALIBRATION_GAP_ENV, self.fairness.calibration_gap),
            (ALERT_RATE_GAP_ENV, self.fairness.alert_rate_gap),
        ):
            if not 0 < gap <= 1:
                raise SettingsError(f"{name} must lie in (0, 1]")
        if self.fairness.min_patients < 1:
            raise SettingsError(f"{MIN_PATIENTS_ENV} must be positive")
        if self.fairness.min_outcomes < 1:
            raise SettingsError(f"{MIN_OUTCOMES_ENV} must be positive")

    @property
    def resolved_baseline_key(self) -> str:
        """The baseline's key: the configured one, or where the deployer puts it."""
        return self.baseline_key or baseline_s3_key(self.endpoint_name)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MonitorSettings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        return cls(
            endpoint_name=env.get(ENDPOINT_NAME_ENV, ""),
            capture_bucket=env.get(CAPTURE_BUCKET_ENV, ""),
            capture_prefix=env.get(CAPTURE_PREFIX_ENV, "").strip("/"),
            baseline_key=env.get(BASELINE_KEY_ENV, "").lstrip("/"),
            window_minutes=integer(env, WINDOW_MINUTES_ENV, DEFAULT_WINDOW_MINUTES),
            metric_namespace=env.get(METRIC_NAMESPACE_ENV) or DEFAULT_METRIC_NAMESPACE,
            ground_truth_prefix=env.get(GROUND_TRUTH_PREFIX_ENV, "").strip("/") or None,
            ground_truth_delay_days=integer(
                env, GROUND_TRUTH_DELAY_DAYS_ENV, DEFAULT_GROUND_TRUTH_DELAY_DAYS
            ),
            capture_delay_minutes=integer(
                env, CAPTURE_DELAY_MINUTES_ENV, DEFAULT_CAPTURE_DELAY_MINUTES
            ),
            psi_threshold=number(env, PSI_THRESHOLD_ENV, PSI_ALARM_THRESHOLD),
            fairness_window_days=integer(env, WINDOW_DAYS_ENV, DEFAULT_FAIRNESS_WINDOW_DAYS),
            fairness=_fairness_bounds(env),
        )


def _fairness_bounds(env: Mapping[str, str]) -> FairnessBounds:
    default = DEFAULT_FAIRNESS_BOUNDS
    return FairnessBounds(
        auroc_gap=number(env, AUROC_GAP_ENV, default.auroc_gap),
        calibration_gap=number(env, CALIBRATION_GAP_ENV, default.calibration_gap),
        alert_rate_gap=number(env, ALERT_RATE_GAP_ENV, default.alert_rate_gap),
        min_patients=integer(env, MIN_PATIENTS_ENV, default.min_patients),
        min_outcomes=integer(env, MIN_OUTCOMES_ENV, default.min_outcomes),
    )
