"""What the endpoint says: its status, the config it serves, the config it is moving to.

Which model package a config carries is read from the config's tags (the deployer tags every
config it creates). The deployer keeps two facts of its own as endpoint tags:

* ``readmission:deploy-attempt`` = ``<config>@<approval stamp>``: the deployment it last started,
  so that an endpoint found back on its old config afterwards is known to have rolled back
  (rather than being updated again, forever; see lambdas/deployer/failures.py);
* ``readmission:rejected-rollout`` = ``<config>``: the rollout of a rejected version it already
  stopped and reported, so that the on-call is told once;
* ``readmission:shadow-since`` = ``<config>@<epoch seconds>``: when the deployer first saw the
  endpoint InService with that shadow config, the start of the candidate's shadow period.

A shadow config (a candidate beside the serving version) carries the serving version's package
tag, like any config, plus the candidate's package and its own single-variant config name
(contracts.deployment.TAG_SHADOW_*).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from contracts.deployment import TAG_SHADOW_CANDIDATE_CONFIG, TAG_SHADOW_PACKAGE_ARN
from contracts.serving import TAG_MODEL_PACKAGE_ARN
from lambdas.deployer.registry import is_not_found

TAG_DEPLOY_ATTEMPT = "readmission:deploy-attempt"
TAG_REJECTED_ROLLOUT = "readmission:rejected-rollout"
TAG_SHADOW_SINCE = "readmission:shadow-since"
ATTEMPT_SEPARATOR = "@"

# Endpoint statuses (DescribeEndpoint's EndpointStatus).
IN_SERVICE = "InService"
CREATING = "Creating"
UPDATING = "Updating"
FAILED = "Failed"
DELETING = "Deleting"
UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"
#: Statuses in which SageMaker accepts no update: wait for the next state change.
TRANSITIONAL = (CREATING, UPDATING, "SystemUpdating", "RollingBack", DELETING, "OutOfService")


@dataclass(frozen=True)
class EndpointView:
    """One DescribeEndpoint, with the package ARNs of its current and pending configs."""

    name: str
    arn: str
    status: str
    config_name: str
    served_package_arn: str | None
    pending_config_name: str | None = None
    pending_package_arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The candidate running in shadow on the current config, and its single-variant config.
    shadow_package_arn: str | None = None
    shadow_candidate_config: str | None = None
    #: The production variant as DescribeEndpoint reports it.
    current_instance_count: int | None = None

    @property
    def incoming_package_arn(self) -> str | None:
        """The version being rolled out: the pending config's, or the config being created."""
        if self.status == UPDATING:
            return self.pending_package_arn
        if self.status == CREATING:
            return self.served_package_arn
        return None

    @property
    def attempt(self) -> str | None:
        return self.tags.get(TAG_DEPLOY_ATTEMPT)


def attempt_value(config_name: str, approval_stamp: str) -> str:
    """The endpoint tag that records one started deployment."""
    return f"{config_name}{ATTEMPT_SEPARATOR}{approval_stamp}"


def split_attempt(attempt: str | None) -> tuple[str, str] | None:
    """``(config name, approval stamp)`` of an attempt tag value."""
    if not attempt or ATTEMPT_SEPARATOR not in attempt:
        return None
    config_name, _, stamp = attempt.rpartition(ATTEMPT_SEPARATOR)
    return config_name, stamp


def _tags(sagemaker: Any, arn: str) -> dict[str, str]:
    tags = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    return {tag["Key"]: tag["Value"] for tag in tags}


def config_tags(sagemaker: Any, config_name: str) -> dict[str, str] | None:
    """The tags of an endpoint config, or ``None`` if the config does not exist."""
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise
    return _tags(sagemaker, config["EndpointConfigArn"])


def _package_of(sagemaker: Any, config_name: str | None) -> str | None:
    if not config_name:
        return None
    tags = config_tags(sagemaker, config_name)
    return None if tags is None else tags.get(TAG_MODEL_PACKAGE_ARN)


def _instance_count(endpoint: Mapping[str, Any]) -> int | None:
    variants = endpoint.get("ProductionVariants") or []
    if not variants:
        return None
    count = variants[0].get("CurrentInstanceCount")
    return None if count is None else int(count)


def observe(sagemaker: Any, endpoint_name: str) -> EndpointView | None:
    """The endpoint as it is now, or ``None`` if it does not exist."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    current = config_tags(sagemaker, endpoint["EndpointConfigName"]) or {}
    return EndpointView(
        name=endpoint_name,
        arn=endpoint["EndpointArn"],
        status=str(endpoint["EndpointStatus"]),
        config_name=str(endpoint["EndpointConfigName"]),
        served_package_arn=current.get(TAG_MODEL_PACKAGE_ARN),
        pending_config_name=pending,
        pending_package_arn=_package_of(sagemaker, pending),
        tags=_tags(sagemaker, endpoint["EndpointArn"]),
        shadow_package_arn=current.get(TAG_SHADOW_PACKAGE_ARN),
        shadow_candidate_config=current.get(TAG_SHADOW_CANDIDATE_CONFIG),
        current_instance_count=_instance_count(endpoint),
    )


def tag(sagemaker: Any, arn: str, key: str, value: str) -> None:
    """Set one tag on a SageMaker resource."""
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": value}])
