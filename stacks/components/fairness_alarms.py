"""Fairness alarms: one per subgroup attribute and compared metric, on the daily gap.

The drift monitor publishes ``FairnessGap`` (contracts/fairness.py) once a day, and only when
two or more groups of the attribute have the configured minimum of patients and readmissions;
a missing datum is therefore "not enough patients to compare", never a breach.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from contracts.drift import DEFAULT_METRIC_NAMESPACE, DIMENSION_ENDPOINT
from contracts.fairness import (
    ATTRIBUTES,
    DIMENSION_ATTRIBUTE,
    DIMENSION_METRIC,
    GAP_ALERT_RATE,
    GAP_AUROC,
    GAP_CALIBRATION,
    GAP_METRICS,
    METRIC_FAIRNESS_GAP,
)
from stacks.config import FairnessConfig
from stacks.naming import ResourceNames

#: One fairness run a day: a one-day period holds exactly one gap. PutMetricAlarm allows
#: Period x EvaluationPeriods up to 604,800 s for periods of an hour or more:
#: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
FAIRNESS_PERIOD = Duration.days(1)

_DESCRIPTIONS = {
    GAP_AUROC: "realised AUROC",
    GAP_CALIBRATION: "calibration in the large (observed minus predicted readmission rate)",
    GAP_ALERT_RATE: "alert rate at the model's decision threshold",
}


def gap_metric(
    endpoint_name: str, attribute: str, metric: str, label: str | None = None
) -> cloudwatch.Metric:
    """The daily gap of ``metric`` across the groups of ``attribute`` (a label is for graphs
    only: an alarm on a labelled metric is written in the metric-math form)."""
    return cloudwatch.Metric(
        namespace=DEFAULT_METRIC_NAMESPACE,
        metric_name=METRIC_FAIRNESS_GAP,
        dimensions_map={
            DIMENSION_ENDPOINT: endpoint_name,
            DIMENSION_ATTRIBUTE: attribute,
            DIMENSION_METRIC: metric,
        },
        statistic="Maximum",
        period=FAIRNESS_PERIOD,
        label=label,
    )


def bound(fairness: FairnessConfig, metric: str) -> float:
    """The configured largest tolerated gap of ``metric``."""
    return {
        GAP_AUROC: fairness.auroc_gap,
        GAP_CALIBRATION: fairness.calibration_gap,
        GAP_ALERT_RATE: fairness.alert_rate_gap,
    }[metric]


class FairnessAlarms(Construct):
    """Exposes ``alarms``: ``(attribute, metric)`` -> alarm, each paging the alert topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        fairness: FairnessConfig,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        action = actions.SnsAction(topic)
        self.alarms: dict[tuple[str, str], cloudwatch.Alarm] = {}
        for attribute in ATTRIBUTES:
            for metric in GAP_METRICS:
                purpose = f"fairness-{attribute}-{metric}".replace("_", "-")
                alarm = gap_metric(names.endpoint, attribute, metric).create_alarm(
                    self,
                    "".join(part.capitalize() for part in purpose.split("-")),
                    alarm_name=names.alarm(purpose),
                    alarm_description=(
                        f"The {_DESCRIPTIONS[metric]} differs by more than "
                        f"{bound(fairness, metric)} between {attribute} groups of at least "
                        f"{fairness.min_patients} patients and {fairness.min_outcomes} "
                        f"readmissions each, over {fairness.window_days} days of outcomes. "
                        "See docs/operations.md, 'A fairness alarm'."
                    ),
                    threshold=bound(fairness, metric),
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)
                self.alarms[(attribute, metric)] = alarm
