"""The CloudWatch dashboard that shows the model's health at a glance."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from contracts.drift import (
    DEFAULT_METRIC_NAMESPACE,
    DIMENSION_ENDPOINT,
    DIMENSION_FEATURE,
    METRIC_CALIBRATION_ERROR,
    METRIC_FEATURE_PSI,
    METRIC_PREDICTION_PSI,
    METRIC_REALISED_AUROC,
    drift_fields,
)
from contracts.encounter import UNKNOWN
from contracts.fairness import (
    ATTRIBUTES,
    DIMENSION_ATTRIBUTE,
    DIMENSION_GROUP,
    GAP_METRICS,
    GROUPS,
    METRIC_SUBGROUP_ALERT_RATE,
    METRIC_SUBGROUP_AUROC,
)
from stacks.components.endpoint_autoscaling import rollout_widgets
from stacks.components.fairness_alarms import FAIRNESS_PERIOD, bound, gap_metric
from stacks.components.platform_alarms import DRIFT_PERIOD, endpoint_metric
from stacks.config import FairnessConfig

WIDTH = 12
HEIGHT = 6
#: Ground truth arrives ~31 days after the scored window: realised quality is a daily view.
QUALITY_PERIOD = Duration.days(1)


class HealthDashboard(Construct):
    """Traffic, latency, errors, drift per feature, prediction PSI, realised quality, and
    fairness: the gap per metric with its bound, subgroup AUROC and alert rate.

    Exposes ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        endpoint_name: str,
        feature_psi_threshold: float,
        prediction_psi_threshold: float,
        fairness: FairnessConfig,
    ) -> None:
        super().__init__(scope, construct_id)

        def drift(
            name: str, feature: str | None = None, period: Duration = DRIFT_PERIOD
        ) -> cloudwatch.Metric:
            dimensions = {DIMENSION_ENDPOINT: endpoint_name}
            if feature is not None:
                dimensions[DIMENSION_FEATURE] = feature
            return cloudwatch.Metric(
                namespace=DEFAULT_METRIC_NAMESPACE,
                metric_name=name,
                dimensions_map=dimensions,
                statistic="Maximum",
                period=period,
                label=feature or name,
            )

        feature_line = cloudwatch.HorizontalAnnotation(
            value=feature_psi_threshold, label="feature drift alarm"
        )
        prediction_line = cloudwatch.HorizontalAnnotation(
            value=prediction_psi_threshold, label="prediction drift alarm"
        )
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=dashboard_name, default_interval=Duration.days(7)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Invocations",
                left=[endpoint_metric("Invocations", endpoint_name, "Sum")],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Model latency (microseconds)",
                left=[
                    endpoint_metric("ModelLatency", endpoint_name, "p50"),
                    endpoint_metric("ModelLatency", endpoint_name, "p95"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Endpoint errors",
                left=[
                    endpoint_metric("Invocation5XXErrors", endpoint_name, "Sum"),
                    endpoint_metric("Invocation4XXErrors", endpoint_name, "Sum"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Prediction PSI",
                left=[drift(METRIC_PREDICTION_PSI)],
                left_annotations=[prediction_line],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Feature PSI",
                left=[drift(METRIC_FEATURE_PSI, spec.name) for spec in drift_fields()],
                left_annotations=[feature_line],
                legend_position=cloudwatch.LegendPosition.RIGHT,
                width=2 * WIDTH,
                height=2 * HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Realised quality (labels 31 days later)",
                left=[drift(METRIC_REALISED_AUROC, period=QUALITY_PERIOD)],
                right=[drift(METRIC_CALIBRATION_ERROR, period=QUALITY_PERIOD)],
                width=2 * WIDTH,
                height=HEIGHT,
            ),
        )
        # Shadow decisions and capacity (issue #20, stacks/components/endpoint_autoscaling.py).
        self.dashboard.add_widgets(*rollout_widgets(endpoint_name))
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"Fairness gap: {metric} (max - min across groups)",
                    left=[
                        gap_metric(endpoint_name, attribute, metric, f"{attribute} {metric}")
                        for attribute in ATTRIBUTES
                    ],
                    left_annotations=[
                        cloudwatch.HorizontalAnnotation(
                            value=bound(fairness, metric), label="fairness alarm"
                        )
                    ],
                    width=2 * WIDTH // len(GAP_METRICS),
                    height=HEIGHT,
                )
                for metric in GAP_METRICS
            ),
            *(
                cloudwatch.GraphWidget(
                    title=title,
                    left=_subgroup_metrics(endpoint_name, name),
                    legend_position=cloudwatch.LegendPosition.RIGHT,
                    width=WIDTH,
                    height=HEIGHT,
                )
                for title, name in (
                    ("Subgroup AUROC", METRIC_SUBGROUP_AUROC),
                    ("Subgroup alert rate", METRIC_SUBGROUP_ALERT_RATE),
                )
            ),
        )


def _subgroup_metrics(endpoint_name: str, name: str) -> list[cloudwatch.IMetric]:
    """One line per known group of every attribute (``unknown`` is never compared)."""
    return [
        cloudwatch.Metric(
            namespace=DEFAULT_METRIC_NAMESPACE,
            metric_name=name,
            dimensions_map={
                DIMENSION_ENDPOINT: endpoint_name,
                DIMENSION_ATTRIBUTE: attribute,
                DIMENSION_GROUP: group,
            },
            statistic="Maximum",
            period=FAIRNESS_PERIOD,
            label=f"{attribute}={group}",
        )
        for attribute in ATTRIBUTES
        for group in GROUPS[attribute]
        if group != UNKNOWN
    ]
