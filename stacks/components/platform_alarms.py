"""The platform's CloudWatch alarms and failure events, all routed to the alert topic.

Everything is addressed by the physical names of :mod:`stacks.naming` (the endpoint exists
only once the deployer has run; the functions, state machine and Glue job live in stacks
that depend on this one).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from contracts import deployment
from contracts.drift import (
    DEFAULT_METRIC_NAMESPACE,
    DIMENSION_ENDPOINT,
    METRIC_MAX_FEATURE_PSI,
    METRIC_PREDICTION_PSI,
)
from stacks.config import AlarmThresholds
from stacks.naming import LAMBDA_FUNCTIONS, ResourceNames

#: The deployer's single production variant.
VARIANT_NAME = deployment.VARIANT_NAME
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
FIVE_MINUTES = Duration.minutes(5)
DRIFT_PERIOD = Duration.hours(1)
MICROSECONDS_PER_MS = 1000
#: Glue job states that mean the ETL did not produce its output.
GLUE_FAILED_STATES = ("FAILED", "TIMEOUT", "ERROR")

GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


def endpoint_metric(name: str, endpoint_name: str, statistic: str) -> cloudwatch.Metric:
    """A metric of the endpoint's only variant, over five minutes."""
    return cloudwatch.Metric(
        namespace=SAGEMAKER_NAMESPACE,
        metric_name=name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT_NAME},
        statistic=statistic,
        period=FIVE_MINUTES,
    )


def drift_metric(name: str, endpoint_name: str) -> cloudwatch.Metric:
    """A metric the drift monitor publishes once per hourly window."""
    return cloudwatch.Metric(
        namespace=DEFAULT_METRIC_NAMESPACE,
        metric_name=name,
        dimensions_map={DIMENSION_ENDPOINT: endpoint_name},
        statistic="Maximum",
        period=DRIFT_PERIOD,
    )


def function_metric(name: str, function_name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/Lambda",
        metric_name=name,
        dimensions_map={"FunctionName": function_name},
        statistic="Sum",
        period=FIVE_MINUTES,
    )


def state_machine_arn(names: ResourceNames) -> str:
    """The ARN the pipeline's state machine gets from its fixed name."""
    region, account = Aws.REGION, Aws.ACCOUNT_ID
    return f"arn:{Aws.PARTITION}:states:{region}:{account}:stateMachine:{names.state_machine}"


class PlatformAlarms(Construct):
    """Drift, endpoint, Lambda and pipeline alarms, and the Glue failure rule.

    Exposes ``alarms`` (purpose -> alarm), ``feature_drift_alarm`` and ``glue_failure_rule``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        thresholds: AlarmThresholds,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self._action = actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        endpoint = names.endpoint
        self._alarm(
            "feature-drift",
            drift_metric(METRIC_MAX_FEATURE_PSI, endpoint),
            thresholds.feature_psi,
            GT,
            "Largest per-feature PSI of the last window is above the threshold: the inputs "
            "no longer look like the training data. Retraining starts automatically.",
        )
        self._alarm(
            "prediction-drift",
            drift_metric(METRIC_PREDICTION_PSI, endpoint),
            thresholds.prediction_psi,
            GT,
            "PSI of the served risk scores against the training scores is above the threshold.",
        )
        self._alarm(
            "endpoint-latency-p95",
            endpoint_metric("ModelLatency", endpoint, "p95"),
            thresholds.latency_p95_ms * MICROSECONDS_PER_MS,
            GT,
            f"Endpoint p95 model latency above {thresholds.latency_p95_ms} ms "
            "(ModelLatency is reported in microseconds).",
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
        self._alarm(
            "endpoint-5xx",
            endpoint_metric("Invocation5XXErrors", endpoint, "Sum"),
            thresholds.endpoint_5xx_per_5min,
            GTE,
            "The endpoint answers with server errors.",
        )
        self._alarm(
            "endpoint-4xx",
            endpoint_metric("Invocation4XXErrors", endpoint, "Sum"),
            thresholds.endpoint_4xx_per_5min,
            GTE,
            "The endpoint rejects many requests: a client or contract mismatch.",
        )
        for folder in LAMBDA_FUNCTIONS:
            function_name = names.function(folder)
            self._alarm(
                f"{LAMBDA_FUNCTIONS[folder]}-errors",
                function_metric("Errors", function_name),
                thresholds.lambda_errors_per_5min,
                GTE,
                f"Lambda {function_name} fails.",
            )
            self._alarm(
                f"{LAMBDA_FUNCTIONS[folder]}-throttles",
                function_metric("Throttles", function_name),
                1,
                GTE,
                f"Lambda {function_name} is throttled (reserved concurrency or account limit).",
            )
        self._alarm(
            "training-pipeline-failed",
            cloudwatch.Metric(
                namespace="AWS/States",
                metric_name="ExecutionsFailed",
                dimensions_map={"StateMachineArn": state_machine_arn(names)},
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            1,
            GTE,
            "A training pipeline execution failed (ETL, training, quality gate or registration).",
        )
        self.feature_drift_alarm = self.alarms["feature-drift"]
        self.glue_failure_rule = events.Rule(
            self,
            "GlueJobFailed",
            description=f"Glue job {names.glue_job} failed or timed out",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [names.glue_job], "state": list(GLUE_FAILED_STATES)},
            ),
            targets=[
                targets.SnsTopic(
                    topic,
                    # With a role: the topic's key cannot confine EventBridge's service
                    # principal to this rule (stacks/components/alerts.py).
                    authorize_using_role=True,
                    message=events.RuleTargetInput.from_text(
                        f"Glue job {events.EventField.from_path('$.detail.jobName')} ended in "
                        f"state {events.EventField.from_path('$.detail.state')} "
                        f"(run {events.EventField.from_path('$.detail.jobRunId')})."
                    ),
                )
            ],
        )

    def _alarm(
        self,
        purpose: str,
        metric: cloudwatch.Metric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        *,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> None:
        alarm = metric.create_alarm(
            self,
            _construct_id(purpose),
            alarm_name=self._names.alarm(purpose),
            alarm_description=description,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[purpose] = alarm


def _construct_id(purpose: str) -> str:
    return "".join(part.capitalize() for part in purpose.split("-"))
