"""Autoscaling of the endpoint's production variant: the deployer's rights, the capacity alarm,
and the rollout widgets of the health dashboard.

The scalable target and its target tracking policy are registered by the deployer
(lambdas/deployer/autoscaling.py), not declared here: the endpoint does not exist when
CloudFormation runs (the deployer creates it once a version is approved), RegisterScalableTarget
needs it to, and deleting the endpoint deregisters its variants
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-delete-with-scaling.html), which would
leave a CloudFormation-declared target silently gone after the deployer recreates the endpoint.
This construct grants what registration needs, as "Auto scaling prerequisites" lists it
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html), and
alarms when the variant stays at its maximum instance count.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from contracts.deployment import (
    AT_MAX_CAPACITY_METRIC,
    ENDPOINT_DIMENSION,
    METRIC_NAMESPACE,
    SHADOW_COMPARISON_METRICS,
    SHADOW_HELD_METRIC,
)
from stacks.config import AutoscalingConfig
from stacks.naming import ResourceNames
from stacks.wildcards import acknowledge_wildcards

#: Application Auto Scaling's service principal for SageMaker variants (its service-linked role).
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SERVICE_LINKED_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
WIDGET_WIDTH = 12
WIDGET_HEIGHT = 6


def deployment_metric(
    name: str, endpoint_name: str, period: Duration, label: str | None = None
) -> cloudwatch.Metric:
    """One of the deployer's own metrics of the endpoint (Maximum over ``period``)."""
    return cloudwatch.Metric(
        namespace=METRIC_NAMESPACE,
        metric_name=name,
        dimensions_map={ENDPOINT_DIMENSION: endpoint_name},
        statistic="Maximum",
        period=period,
        label=label,
    )


def rollout_widgets(endpoint_name: str) -> list[cloudwatch.IWidget]:
    """Dashboard widgets: each shadow decision's comparison, and capacity at its maximum."""
    day = Duration.days(1)
    return [
        cloudwatch.GraphWidget(
            title="Shadow candidate vs serving (per decision)",
            left=[
                deployment_metric(metric, endpoint_name, day, label=metric)
                for metric in SHADOW_COMPARISON_METRICS.values()
            ],
            right=[deployment_metric(SHADOW_HELD_METRIC, endpoint_name, day, label="held")],
            width=WIDGET_WIDTH,
            height=WIDGET_HEIGHT,
        ),
        cloudwatch.GraphWidget(
            title="Endpoint at maximum instance count",
            left=[deployment_metric(AT_MAX_CAPACITY_METRIC, endpoint_name, Duration.minutes(15))],
            width=WIDGET_WIDTH,
            height=WIDGET_HEIGHT,
        ),
    ]


class EndpointAutoscaling(Construct):
    """The deployer's autoscaling rights and the sustained-max-capacity alarm.

    Exposes ``max_capacity_alarm``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        autoscaling: AutoscalingConfig,
        deployer_role: iam.IRole,
        alert_topic: sns.ITopic,
        sweep_minutes: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._grant(deployer_role)
        periods = max(1, autoscaling.max_capacity_alarm_minutes // sweep_minutes)
        self.max_capacity_alarm = deployment_metric(
            AT_MAX_CAPACITY_METRIC, names.endpoint, Duration.minutes(sweep_minutes)
        ).create_alarm(
            self,
            "SustainedMaxCapacity",
            alarm_name=names.alarm("endpoint-sustained-max-capacity"),
            alarm_description=(
                f"The endpoint has run at its maximum of {autoscaling.max_instances} instances "
                f"for {periods * sweep_minutes} minutes: raise rollout.autoscaling.max_instances "
                "(docs/deploy.md, Capacity)"
            ),
            threshold=1,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.max_capacity_alarm.add_alarm_action(actions.SnsAction(alert_topic))

    @staticmethod
    def _grant(role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ScaleTheEndpointVariant",
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                ],
                # The service names a scalable target by an id it assigns at registration
                # (resource type scalable-target in the Service Authorization Reference).
                resources=[
                    f"arn:{Aws.PARTITION}:application-autoscaling:{Aws.REGION}:"
                    f"{Aws.ACCOUNT_ID}:scalable-target/*"
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CreateTheScalingServiceLinkedRole",
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/"
                    f"{SCALING_SERVICE}/{SERVICE_LINKED_ROLE}"
                ],
                conditions={"StringLike": {"iam:AWSServiceName": SCALING_SERVICE}},
            )
        )
        acknowledge_wildcards(
            role,
            "Application Auto Scaling assigns a scalable target's id at registration, so its ARN "
            "cannot be named in advance (this account and region only).",
            "Resource::arn:<AWS::Partition>:application-autoscaling:<AWS::Region>:"
            "<AWS::AccountId>:scalable-target/*",
        )
