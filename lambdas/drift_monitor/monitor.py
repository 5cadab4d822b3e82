"""One drift check: stream a window of capture through the baseline, publish the results.

Everything here takes its boto3 clients as arguments, so tests run it against moto.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from contracts.drift import (
    DIMENSION_ENDPOINT,
    DIMENSION_FEATURE,
    METRIC_CALIBRATION_ERROR,
    METRIC_CORRUPT_RECORDS,
    METRIC_DRIFTED_FEATURES,
    METRIC_EMPTY_WINDOW,
    METRIC_FEATURE_PSI,
    METRIC_LABELLED_RECORDS,
    METRIC_MAX_FEATURE_PSI,
    METRIC_MEAN_PREDICTED_RISK,
    METRIC_OBSERVED_READMISSION_RATE,
    METRIC_PREDICTION_PSI,
    METRIC_REALISED_AUROC,
    METRIC_RECORDS_ANALYSED,
    METRIC_TRUNCATED_WINDOW,
    PREDICTION_SCORE,
    DriftAccumulator,
    DriftInputError,
)
from contracts.fairness import (
    DIMENSION_ATTRIBUTE,
    DIMENSION_GROUP,
    DIMENSION_METRIC,
    METRIC_FAIRNESS_GAP,
    METRIC_GROUPS_COMPARED,
    METRIC_SUBGROUP_ALERT_RATE,
    METRIC_SUBGROUP_AUROC,
    METRIC_SUBGROUP_CALIBRATION,
    METRIC_SUBGROUP_ECE,
    METRIC_SUBGROUP_OUTCOMES,
    METRIC_SUBGROUP_PATIENTS,
)
from lambdas.drift_monitor.capture import CaptureStats, ScoredRecord, read_window
from lambdas.drift_monitor.fairness import (
    FairnessResult,
    assess,
    join_outcomes,
    scored_encounters,
)
from lambdas.drift_monitor.ground_truth import (
    LabelStats,
    Performance,
    join_labels,
    performance,
    read_labels,
)
from lambdas.drift_monitor.settings import MonitorSettings
from lambdas.drift_monitor.window import (
    TimeWindow,
    event_time,
    fairness_window,
    requested_window,
)

#: PutMetricData accepts more per call today; 20 stays within every documented limit.
METRICS_PER_CALL = 20


class BaselineMissingError(RuntimeError):
    """The baseline the deployer should have written is not in the capture bucket."""


class FairnessNotConfiguredError(RuntimeError):
    """A fairness run was asked for, but the monitor has no ground-truth prefix."""


@dataclass
class DriftReport:
    """What one run found; feature names and counts only, no record content."""

    window: TimeWindow
    capture: CaptureStats
    records_analysed: int = 0
    invalid_records: int = 0
    feature_psi: dict[str, float] = field(default_factory=dict)
    prediction_psi: float | None = None
    drifted_features: tuple[str, ...] = ()
    label_window: TimeWindow | None = None
    labels: LabelStats | None = None
    performance: Performance | None = None

    @property
    def corrupt_records(self) -> int:
        """Unreadable capture lines plus readable records that failed validation."""
        return self.capture.corrupt_lines + self.invalid_records

    @property
    def empty(self) -> bool:
        """No usable record in the window (no traffic, capture off, or all corrupt)."""
        return self.records_analysed == 0

    @property
    def max_feature_psi(self) -> float | None:
        """The largest feature PSI, the figure the drift alarm watches."""
        return max(self.feature_psi.values()) if self.feature_psi else None

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable result of the invocation (no record content)."""
        return {
            "window": self.window.as_dict(),
            "files": self.capture.files,
            "records_analysed": self.records_analysed,
            "corrupt_records": self.corrupt_records,
            "out_of_window_lines": self.capture.out_of_window_lines,
            "empty_window": self.empty,
            "truncated": self.capture.truncated,
            "max_feature_psi": self.max_feature_psi,
            "prediction_psi": self.prediction_psi,
            "drifted_features": list(self.drifted_features),
            "labelled_records": self.performance.labelled if self.performance else 0,
            "realised_auroc": self.performance.auroc if self.performance else None,
        }


def load_baseline(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """Read the baseline JSON the deployer copied next to the capture."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey as error:
        raise BaselineMissingError("no drift baseline at the configured key") from error
    document = json.loads(body)
    if not isinstance(document, dict):
        raise BaselineMissingError("the drift baseline is not a JSON object")
    return document


def accumulate(records: Iterable[ScoredRecord], accumulator: DriftAccumulator) -> int:
    """Add every record to ``accumulator``; return how many failed validation."""
    invalid = 0
    add = accumulator.add
    for scored in records:
        try:
            add(scored.record, scored.probability)
        except DriftInputError:
            invalid += 1
    return invalid


def scored_keys(records: Iterable[ScoredRecord]) -> dict[str, float]:
    """Encounter key -> probability of every validly scored record (the last score wins)."""
    scored: dict[str, float] = {}
    for item in records:
        probability = item.probability
        if (
            item.encounter_key is not None
            and probability is not None
            and math.isfinite(probability)
            and 0.0 <= probability <= 1.0
        ):
            scored[item.encounter_key] = probability
    return scored


def run_drift_check(
    s3: Any,
    settings: MonitorSettings,
    window: TimeWindow,
    baseline: Mapping[str, Any],
    deadline: float | None = None,
) -> DriftReport:
    """Compare ``window``'s capture with ``baseline``; add realised metrics if labels exist.

    Past ``deadline`` (``time.monotonic()``) reading stops and the report is marked truncated:
    the PSI of what was read is still published rather than losing the run to a timeout.
    """
    accumulator = DriftAccumulator(baseline)
    stats = CaptureStats()
    records = read_window(
        s3,
        settings.capture_bucket,
        settings.capture_prefix,
        settings.endpoint_name,
        window,
        stats,
        deadline,
    )
    report = DriftReport(window=window, capture=stats)
    report.invalid_records = accumulate(records, accumulator)
    report.records_analysed = accumulator.record_count
    result = accumulator.psi()
    report.feature_psi = {
        name: result[name] for name in accumulator.feature_names if name in result
    }
    report.prediction_psi = result.get(PREDICTION_SCORE)
    report.drifted_features = tuple(
        name for name, value in report.feature_psi.items() if value > settings.psi_threshold
    )
    if settings.ground_truth_prefix:
        add_realised_performance(s3, settings, settings.ground_truth_prefix, report, deadline)
    return report


def add_realised_performance(
    s3: Any,
    settings: MonitorSettings,
    label_prefix: str,
    report: DriftReport,
    deadline: float | None = None,
) -> None:
    """Join the window scored ``ground_truth_delay_days`` ago to its labels, if any arrived."""
    label_window = report.window.shifted(-timedelta(days=settings.ground_truth_delay_days))
    scored = scored_keys(
        read_window(
            s3,
            settings.capture_bucket,
            settings.capture_prefix,
            settings.endpoint_name,
            label_window,
            CaptureStats(),
            deadline,
        )
    )
    label_stats = LabelStats()
    report.label_window = label_window
    report.labels = label_stats
    if not scored:
        return
    lines = read_labels(s3, settings.capture_bucket, label_prefix, label_window, label_stats)
    scores, labels = join_labels(scored, lines, label_stats)
    if scores:
        report.performance = performance(scores, labels)


def metric_data(
    report: DriftReport, endpoint_name: str, timestamp: datetime
) -> list[dict[str, Any]]:
    """The CloudWatch datums of a report: PSI only for a non-empty window, counts always."""
    endpoint = {"Name": DIMENSION_ENDPOINT, "Value": endpoint_name}

    def datum(name: str, value: float, unit: str = "None", **extra: str) -> dict[str, Any]:
        dimensions = [endpoint, *({"Name": k, "Value": v} for k, v in extra.items())]
        return {
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Value": float(value),
            "Unit": unit,
        }

    data = [
        datum(METRIC_RECORDS_ANALYSED, report.records_analysed, "Count"),
        datum(METRIC_CORRUPT_RECORDS, report.corrupt_records, "Count"),
        datum(METRIC_EMPTY_WINDOW, 1.0 if report.empty else 0.0, "Count"),
        datum(METRIC_TRUNCATED_WINDOW, 1.0 if report.capture.truncated else 0.0, "Count"),
    ]
    if not report.empty:
        for name, value in report.feature_psi.items():
            data.append(datum(METRIC_FEATURE_PSI, value, **{DIMENSION_FEATURE: name}))
        if report.max_feature_psi is not None:
            data.append(datum(METRIC_MAX_FEATURE_PSI, report.max_feature_psi))
        data.append(datum(METRIC_DRIFTED_FEATURES, len(report.drifted_features), "Count"))
        if report.prediction_psi is not None:
            data.append(datum(METRIC_PREDICTION_PSI, report.prediction_psi))
    realised = report.performance
    if realised is not None:
        data.append(datum(METRIC_LABELLED_RECORDS, realised.labelled, "Count"))
        data.append(datum(METRIC_CALIBRATION_ERROR, realised.expected_calibration_error))
        data.append(datum(METRIC_MEAN_PREDICTED_RISK, realised.mean_predicted))
        data.append(datum(METRIC_OBSERVED_READMISSION_RATE, realised.observed_rate))
        if realised.auroc is not None:
            data.append(datum(METRIC_REALISED_AUROC, realised.auroc))
    return data


def publish_metrics(cloudwatch: Any, namespace: str, data: list[dict[str, Any]]) -> int:
    """Put ``data`` in batches; returns the number of PutMetricData calls."""
    calls = 0
    for start in range(0, len(data), METRICS_PER_CALL):
        cloudwatch.put_metric_data(
            Namespace=namespace, MetricData=data[start : start + METRICS_PER_CALL]
        )
        calls += 1
    return calls


def check(
    event: Mapping[str, Any],
    settings: MonitorSettings,
    *,
    s3: Any,
    cloudwatch: Any,
    now: datetime,
    deadline: float | None = None,
) -> DriftReport:
    """The whole run: pick the window, load the baseline, analyse, publish."""
    window = requested_window(event, now, settings.window_minutes, settings.capture_delay_minutes)
    baseline = load_baseline(s3, settings.capture_bucket, settings.resolved_baseline_key)
    report = run_drift_check(s3, settings, window, baseline, deadline)
    publish_metrics(
        cloudwatch,
        settings.metric_namespace,
        metric_data(report, settings.endpoint_name, event_time(event, now)),
    )
    return report


@dataclass
class FairnessReport:
    """What one fairness run found: counts, groups and gaps only, no record content."""

    window: TimeWindow
    capture: CaptureStats
    labels: LabelStats
    result: FairnessResult

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable result of the invocation (group names and numbers only)."""
        return {
            "check": "fairness",
            "window": self.window.as_dict(),
            "records_scored": self.capture.records,
            "truncated": self.capture.truncated,
            "labelled_records": self.labels.matched,
            "corrupt_label_lines": self.labels.corrupt_lines,
            "invalid_subgroup_values": self.labels.invalid_subgroups,
            "groups_compared": {k: list(v) for k, v in self.result.compared.items()},
            "gaps": [
                {
                    "attribute": gap.attribute,
                    "metric": gap.metric,
                    "gap": gap.value,
                    "bound": gap.bound,
                    "highest": gap.highest,
                    "lowest": gap.lowest,
                    "exceeded": gap.exceeded,
                }
                for gap in self.result.gaps
            ],
        }


def run_fairness_check(
    s3: Any,
    settings: MonitorSettings,
    label_prefix: str,
    window: TimeWindow,
    deadline: float | None = None,
) -> FairnessReport:
    """Join ``window``'s scored encounters to their outcomes and compare the subgroups."""
    capture_stats = CaptureStats()
    scored = scored_encounters(
        read_window(
            s3,
            settings.capture_bucket,
            settings.capture_prefix,
            settings.endpoint_name,
            window,
            capture_stats,
            deadline,
        )
    )
    label_stats = LabelStats()
    outcomes = []
    if scored:
        lines = read_labels(s3, settings.capture_bucket, label_prefix, window, label_stats)
        outcomes = join_outcomes(scored, lines, label_stats)
    return FairnessReport(window, capture_stats, label_stats, assess(outcomes, settings.fairness))


def fairness_metric_data(
    result: FairnessResult, endpoint_name: str, timestamp: datetime
) -> list[dict[str, Any]]:
    """Per-group metrics (``Attribute``, ``Group``), groups compared per attribute, and each
    gap (``Attribute``, ``Metric``); a gap is absent when fewer than two groups qualify."""

    def datum(name: str, value: float, unit: str, **dimensions: str) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": [
                {"Name": DIMENSION_ENDPOINT, "Value": endpoint_name},
                *({"Name": k, "Value": v} for k, v in dimensions.items()),
            ],
            "Timestamp": timestamp,
            "Value": float(value),
            "Unit": unit,
        }

    data: list[dict[str, Any]] = []
    for attribute, groups in result.subgroups.items():
        for group, metrics in groups.items():
            where = {DIMENSION_ATTRIBUTE: attribute, DIMENSION_GROUP: group}
            data.append(datum(METRIC_SUBGROUP_PATIENTS, metrics.patients, "Count", **where))
            data.append(datum(METRIC_SUBGROUP_OUTCOMES, metrics.outcomes, "Count", **where))
            data.append(
                datum(
                    METRIC_SUBGROUP_CALIBRATION, metrics.calibration_in_the_large, "None", **where
                )
            )
            data.append(
                datum(METRIC_SUBGROUP_ECE, metrics.expected_calibration_error, "None", **where)
            )
            if metrics.auroc is not None:
                data.append(datum(METRIC_SUBGROUP_AUROC, metrics.auroc, "None", **where))
            if metrics.alert_rate is not None:
                data.append(datum(METRIC_SUBGROUP_ALERT_RATE, metrics.alert_rate, "None", **where))
    for attribute, compared in result.compared.items():
        data.append(
            datum(
                METRIC_GROUPS_COMPARED, len(compared), "Count", **{DIMENSION_ATTRIBUTE: attribute}
            )
        )
    for gap in result.gaps:
        data.append(
            datum(
                METRIC_FAIRNESS_GAP,
                gap.value,
                "None",
                **{DIMENSION_ATTRIBUTE: gap.attribute, DIMENSION_METRIC: gap.metric},
            )
        )
    return data


def check_fairness(
    event: Mapping[str, Any],
    settings: MonitorSettings,
    *,
    s3: Any,
    cloudwatch: Any,
    now: datetime,
    deadline: float | None = None,
) -> FairnessReport:
    """The daily fairness run: pick the scored window, join outcomes, publish."""
    window = fairness_window(
        event, now, settings.fairness_window_days, settings.ground_truth_delay_days
    )
    label_prefix = settings.ground_truth_prefix
    if not label_prefix:
        raise FairnessNotConfiguredError("the fairness check needs a ground-truth prefix")
    report = run_fairness_check(s3, settings, label_prefix, window, deadline)
    publish_metrics(
        cloudwatch,
        settings.metric_namespace,
        fairness_metric_data(report.result, settings.endpoint_name, event_time(event, now)),
    )
    return report
