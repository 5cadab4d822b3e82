"""Application Auto Scaling of the endpoint's production variant, kept by the deployer.

Why here and not in the stack: the endpoint is created by the deployer at run time, and
RegisterScalableTarget needs it to exist; and deleting an endpoint deregisters its variants as
scalable targets ("If you delete an endpoint, Application Auto Scaling ... deregisters those
models as scalable targets without notifying you",
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-delete-with-scaling.html), so a
target declared in CloudFormation would silently vanish whenever the deployer deletes and
recreates the endpoint (a Failed endpoint, a retired version). The deployer registers it again
on every settled look instead (RegisterScalableTarget and PutScalingPolicy update in place).

Deployments, as AWS documents them
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html):

* an update that changes the model of a variant configured for auto scaling is allowed; one that
  changes its instance type (or removes it) fails unless the policies are deleted and the
  variant deregistered first: :func:`prepare_update` deregisters when the instance type changes;
* while an update is in progress auto scaling is off; before it starts, :func:`prepare_update`
  also suspends dynamic scale-in (SuspendedState.DynamicScalingInSuspended,
  https://docs.aws.amazon.com/autoscaling/application/APIReference/API_SuspendedState.html) so
  that the fleet is not shrunk under the shift; :func:`keep_registered` lifts it once the
  endpoint has settled.

Target tracking on ``SageMakerVariantInvocationsPerInstance``
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from contracts.deployment import (
    AT_MAX_CAPACITY_METRIC,
    ENDPOINT_DIMENSION,
    METRIC_NAMESPACE,
    SCALING_POLICY_NAME,
)
from lambdas.deployer.settings import DeployerSettings

SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
PREDEFINED_METRIC = "SageMakerVariantInvocationsPerInstance"


def resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's id of a SageMaker variant."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def _target(settings: DeployerSettings, variant_name: str) -> dict[str, str]:
    return {
        "ServiceNamespace": SERVICE_NAMESPACE,
        "ResourceId": resource_id(settings.endpoint_name, variant_name),
        "ScalableDimension": SCALABLE_DIMENSION,
    }


def register_request(
    settings: DeployerSettings, variant_name: str, *, scale_in_suspended: bool
) -> dict[str, Any]:
    """RegisterScalableTarget arguments: min/max from the stage, scale-in as asked."""
    return {
        **_target(settings, variant_name),
        "MinCapacity": settings.autoscaling_min_instances,
        "MaxCapacity": settings.autoscaling_max_instances,
        "SuspendedState": {
            "DynamicScalingInSuspended": scale_in_suspended,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        },
    }


def policy_request(settings: DeployerSettings, variant_name: str) -> dict[str, Any]:
    """PutScalingPolicy arguments: target tracking on invocations per instance."""
    return {
        **_target(settings, variant_name),
        "PolicyName": SCALING_POLICY_NAME,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": settings.autoscaling_target_invocations,
            "PredefinedMetricSpecification": {"PredefinedMetricType": PREDEFINED_METRIC},
            "ScaleInCooldown": settings.scale_in_cooldown_seconds,
            "ScaleOutCooldown": settings.scale_out_cooldown_seconds,
            "DisableScaleIn": False,
        },
    }


def keep_registered(autoscaling: Any, settings: DeployerSettings, variant_name: str) -> None:
    """Register the variant (scale-in allowed again) and put its policy; both idempotent."""
    autoscaling.register_scalable_target(
        **register_request(settings, variant_name, scale_in_suspended=False)
    )
    autoscaling.put_scaling_policy(**policy_request(settings, variant_name))


def prepare_update(
    autoscaling: Any,
    settings: DeployerSettings,
    variant_name: str,
    *,
    instance_type_changes: bool,
) -> None:
    """Before UpdateEndpoint: deregister if the instance type changes, else suspend scale-in."""
    if instance_type_changes:
        try:
            autoscaling.deregister_scalable_target(**_target(settings, variant_name))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ObjectNotFoundException":
                raise
        return
    autoscaling.register_scalable_target(
        **register_request(settings, variant_name, scale_in_suspended=True)
    )


def report_capacity(
    cloudwatch: Any, settings: DeployerSettings, current_instance_count: int | None
) -> None:
    """Publish 1 when the variant runs at its maximum instance count, else 0."""
    if current_instance_count is None:
        return
    at_max = current_instance_count >= settings.autoscaling_max_instances
    cloudwatch.put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[
            {
                "MetricName": AT_MAX_CAPACITY_METRIC,
                "Dimensions": [{"Name": ENDPOINT_DIMENSION, "Value": settings.endpoint_name}],
                "Value": 1.0 if at_max else 0.0,
                "Unit": "Count",
            }
        ],
    )
