"""Reconcile the endpoint with the model registry: serve the latest approved version.

* ``Approved``: deploy the group's latest approved version (normally the one just approved; an
  older version approved late does not displace a newer one).
* ``Rejected`` of the version being served: redeploy the latest version still approved.
* anything else, or a rejection of a version not being served: nothing.

Models and endpoint configs are named from the package version and a digest of their settings,
so a repeated event finds the endpoint already on (or moving to) that config and does nothing.
A failure before SageMaker accepts the create/update deletes what this run created, leaves the
old endpoint serving, notifies SNS and re-raises. Everything takes its boto3 clients as
arguments, so tests run it against moto.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from contracts.serving import CONTENT_TYPE_JSON, TAG_MODEL_PACKAGE_ARN, TAG_MODEL_VERSION
from lambdas.deployer.baseline import activate_baseline, stage_baseline
from lambdas.deployer.events import APPROVED, REJECTED, ModelPackageStateChange
from lambdas.deployer.settings import DeployerSettings

logger = Logger(service="deployer", child=True)

VARIANT_NAME = "AllTraffic"
IN_SERVICE = "InService"
#: Statuses in which an endpoint answers requests with its current config.
SERVING_STATUSES = (IN_SERVICE, "SystemUpdating", "Updating", "RollingBack")
MAX_RESOURCE_NAME = 63
DIGEST_CHARS = 8
SNS_SUBJECT_MAX = 100

# Outcomes of one event.
IGNORED = "ignored"
ALREADY_SERVING = "already_serving"
ALREADY_DEPLOYING = "already_deploying"
DEPLOYING = "deploying"
ROLLING_BACK = "rolling_back"
NO_APPROVED_VERSION = "no_approved_version"


class DeploymentError(RuntimeError):
    """The deployment did not start; the old endpoint, if any, keeps serving."""


class EndpointBusyError(DeploymentError):
    """The endpoint is not in a state that accepts an update (creating, updating, failed)."""


class ModelPackageError(DeploymentError):
    """The model package cannot be deployed as it is (not approved, no single container)."""


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the deployer uses."""

    sagemaker: Any
    s3: Any
    sns: Any


@dataclass(frozen=True)
class ModelPackage:
    """What the deployer needs from one model package version."""

    arn: str
    group: str
    version: int
    image: str
    model_data_url: str
    environment: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> ModelPackage:
        """Build from DescribeModelPackage; only approved single-container packages deploy."""
        if description.get("ModelApprovalStatus") != APPROVED:
            raise ModelPackageError("the model package version is not approved")
        containers = description.get("InferenceSpecification", {}).get("Containers", [])
        if len(containers) != 1:
            raise ModelPackageError("the model package must have exactly one container")
        container = containers[0]
        if not container.get("Image") or not container.get("ModelDataUrl"):
            raise ModelPackageError("the model package container needs an image and model data")
        return cls(
            arn=description["ModelPackageArn"],
            group=description["ModelPackageGroupName"],
            version=int(description["ModelPackageVersion"]),
            image=container["Image"],
            model_data_url=container["ModelDataUrl"],
            environment=dict(container.get("Environment", {})),
        )


@dataclass(frozen=True)
class Outcome:
    """What one event led to; no identifiers beyond resource names."""

    action: str
    reason: str
    model_package_version: int | None = None
    endpoint_config_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, returned by the handler."""
        return asdict(self)


def resource_name(endpoint_name: str, version: int, spec: Mapping[str, Any]) -> str:
    """``<endpoint>-v<version>-<digest of spec>``, within SageMaker's 63-character limit."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    suffix = f"-v{version}-{digest[:DIGEST_CHARS]}"
    return endpoint_name[: MAX_RESOURCE_NAME - len(suffix)].rstrip("-") + suffix


def _tags(package: ModelPackage) -> list[dict[str, str]]:
    return [
        {"Key": TAG_MODEL_VERSION, "Value": str(package.version)},
        {"Key": TAG_MODEL_PACKAGE_ARN, "Value": package.arn},
    ]


def model_request(package: ModelPackage, settings: DeployerSettings) -> dict[str, Any]:
    """CreateModel arguments (name included) for a package version."""
    spec: dict[str, Any] = {
        "ExecutionRoleArn": settings.execution_role_arn,
        "PrimaryContainer": {
            "Image": package.image,
            "ModelDataUrl": package.model_data_url,
            "Environment": dict(package.environment),
        },
        "EnableNetworkIsolation": settings.network_isolation,
    }
    if settings.vpc_subnet_ids:
        spec["VpcConfig"] = {
            "Subnets": list(settings.vpc_subnet_ids),
            "SecurityGroupIds": list(settings.vpc_security_group_ids),
        }
    name = resource_name(settings.endpoint_name, package.version, spec)
    return {"ModelName": name, **spec, "Tags": _tags(package)}


def endpoint_config_request(
    package: ModelPackage, model_name: str, settings: DeployerSettings
) -> dict[str, Any]:
    """CreateEndpointConfig arguments (name included): capture on, KMS, the version tags."""
    spec: dict[str, Any] = {
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model_name,
                "InstanceType": settings.instance_type,
                "InitialInstanceCount": settings.instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "InitialSamplingPercentage": settings.capture_sampling_percent,
            "DestinationS3Uri": settings.data_capture_s3_uri,
            "KmsKeyId": settings.kms_key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": [CONTENT_TYPE_JSON]},
        },
    }
    if settings.encrypt_volume_with_kms:
        spec["KmsKeyId"] = settings.kms_key_arn
    name = resource_name(settings.endpoint_name, package.version, spec)
    return {"EndpointConfigName": name, **spec, "Tags": _tags(package)}


def deployment_config(settings: DeployerSettings, *, rollback: bool) -> dict[str, Any]:
    """Blue/green update policy. A rollback shifts all at once and without the alarms: they
    may be firing because of the version being rolled back, and would undo the rollback."""
    routing: dict[str, Any] = {
        "Type": "ALL_AT_ONCE" if rollback else settings.traffic_routing,
        "WaitIntervalInSeconds": settings.traffic_wait_seconds,
    }
    step = {"Type": "CAPACITY_PERCENT", "Value": settings.traffic_step_percent}
    if routing["Type"] == "CANARY":
        routing["CanarySize"] = step
    elif routing["Type"] == "LINEAR":
        routing["LinearStepSize"] = step
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": settings.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": settings.max_execution_seconds,
        }
    }
    if settings.rollback_alarm_names and not rollback:
        config["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in settings.rollback_alarm_names]
        }
    return config


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_not_found(error: ClientError) -> bool:
    # SageMaker answers a missing resource with ValidationException ("Could not find ...").
    return _error_code(error) in ("ValidationException", "ResourceNotFound")


def describe_endpoint(sagemaker: Any, endpoint_name: str) -> dict[str, Any] | None:
    """The endpoint's description, or ``None`` if it does not exist yet."""
    try:
        return dict(sagemaker.describe_endpoint(EndpointName=endpoint_name))
    except ClientError as error:
        if _is_not_found(error):
            return None
        raise


def served_package_arn(sagemaker: Any, endpoint: Mapping[str, Any] | None) -> str | None:
    """The model package ARN tagged on the endpoint's current config, if any."""
    if endpoint is None:
        return None
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    tags = sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags", [])
    for tag in tags:
        if tag["Key"] == TAG_MODEL_PACKAGE_ARN:
            return str(tag["Value"])
    return None


def latest_approved_package(sagemaker: Any, group: str) -> str | None:
    """ARN of the highest approved version in ``group``, or ``None`` if none is approved."""
    paginator = sagemaker.get_paginator("list_model_packages")
    best: tuple[int, str] | None = None
    for page in paginator.paginate(
        ModelPackageGroupName=group, ModelApprovalStatus=APPROVED, ModelPackageType="Versioned"
    ):
        for summary in page.get("ModelPackageSummaryList", []):
            candidate = (int(summary.get("ModelPackageVersion", 0)), summary["ModelPackageArn"])
            if best is None or candidate[0] > best[0]:
                best = candidate
    return None if best is None else best[1]


def _exists(describe: Any, **name: str) -> bool:
    try:
        describe(**name)
    except ClientError as error:
        if _is_not_found(error):
            return False
        raise
    return True


def notify(sns: Any, settings: DeployerSettings, status: str, details: Mapping[str, Any]) -> None:
    """Publish a short JSON message: endpoint, status, version, error type; never raises."""
    subject = f"Readmission endpoint {settings.endpoint_name}: {status}"[:SNS_SUBJECT_MAX]
    message = {"endpoint": settings.endpoint_name, "status": status, **details}
    try:
        sns.publish(TopicArn=settings.sns_topic_arn, Subject=subject, Message=json.dumps(message))
    except ClientError as error:
        # The deployment's own outcome matters more than the notice: log, carry on.
        logger.warning("SNS notice not sent", extra={"error_code": _error_code(error)})


def handle_state_change(
    change: ModelPackageStateChange, settings: DeployerSettings, clients: Clients
) -> Outcome:
    """Decide what one model package state change means for the endpoint, and do it."""
    if change.model_package_group_name != settings.model_package_group_name:
        return Outcome(IGNORED, "model package group is not the one this endpoint serves")
    status = change.model_approval_status
    if status == APPROVED:
        target = latest_approved_package(clients.sagemaker, settings.model_package_group_name)
        if target is None:
            return Outcome(IGNORED, "no version is approved any more")
        return deploy(target, settings, clients, rollback=False)
    if status == REJECTED:
        endpoint = describe_endpoint(clients.sagemaker, settings.endpoint_name)
        if served_package_arn(clients.sagemaker, endpoint) != change.model_package_arn:
            return Outcome(IGNORED, "the rejected version is not the one being served")
        target = latest_approved_package(clients.sagemaker, settings.model_package_group_name)
        if target is None:
            notify(
                clients.sns,
                settings,
                "served version rejected, no approved version to roll back to",
                {"rejected_version": change.model_package_version},
            )
            return Outcome(NO_APPROVED_VERSION, "no approved version to roll back to")
        return deploy(target, settings, clients, rollback=True)
    return Outcome(IGNORED, "approval status needs no action")


def deploy(
    package_arn: str, settings: DeployerSettings, clients: Clients, *, rollback: bool
) -> Outcome:
    """Bring the endpoint to ``package_arn``: create or blue/green update, at most once."""
    sagemaker = clients.sagemaker
    action = ROLLING_BACK if rollback else DEPLOYING
    created: list[tuple[str, str]] = []
    version: int | None = None
    try:
        package = ModelPackage.from_description(
            sagemaker.describe_model_package(ModelPackageName=package_arn)
        )
        version = package.version
        model = model_request(package, settings)
        config = endpoint_config_request(package, model["ModelName"], settings)
        config_name = config["EndpointConfigName"]
        endpoint = describe_endpoint(sagemaker, settings.endpoint_name)
        settled = _settled_outcome(endpoint, package, config_name)
        if settled is None:
            if endpoint is not None and endpoint.get("EndpointStatus") != IN_SERVICE:
                raise EndpointBusyError("the endpoint is not InService; no update was started")
            _stage(clients.s3, settings, package)
            if not _exists(sagemaker.describe_model, ModelName=model["ModelName"]):
                sagemaker.create_model(**model)
                created.append(("model", model["ModelName"]))
            if not _exists(sagemaker.describe_endpoint_config, EndpointConfigName=config_name):
                sagemaker.create_endpoint_config(**config)
                created.append(("endpoint_config", config_name))
            if endpoint is None:
                sagemaker.create_endpoint(
                    EndpointName=settings.endpoint_name, EndpointConfigName=config_name
                )
            else:
                sagemaker.update_endpoint(
                    EndpointName=settings.endpoint_name,
                    EndpointConfigName=config_name,
                    DeploymentConfig=deployment_config(settings, rollback=rollback),
                )
    except Exception as error:
        _report_failure(clients, settings, action, version, error, _clean_up(sagemaker, created))
        if isinstance(error, DeploymentError):
            raise
        raise DeploymentError(f"{action} of the model package version failed") from error
    _activate(clients, settings, package)
    if settled is not None:
        return settled
    notify(
        clients.sns,
        settings,
        f"{action} started",
        {"model_package_version": package.version, "endpoint_config": config_name},
    )
    reason = "rolled back to the latest approved version" if rollback else "deploying"
    return Outcome(action, reason, package.version, config_name)


def _stage(s3: Any, settings: DeployerSettings, package: ModelPackage) -> None:
    stage_baseline(
        s3,
        settings.capture_bucket,
        settings.endpoint_name,
        package.version,
        package.model_data_url,
        settings.kms_key_arn,
    )


def _activate(clients: Clients, settings: DeployerSettings, package: ModelPackage) -> None:
    """Point the drift monitor at the served version's baseline. Runs again on every repeat
    of the event, so a failure here heals on the retry."""
    try:
        _stage(clients.s3, settings, package)
        activate_baseline(
            clients.s3,
            settings.capture_bucket,
            settings.endpoint_name,
            package.version,
            settings.kms_key_arn,
        )
    except Exception as error:
        _report_failure(clients, settings, "drift baseline update", package.version, error, [])
        raise DeploymentError("the drift baseline of the served version was not set") from error


def _report_failure(
    clients: Clients,
    settings: DeployerSettings,
    action: str,
    version: int | None,
    error: BaseException,
    left_over: list[str],
) -> None:
    notify(
        clients.sns,
        settings,
        f"{action} failed, previous endpoint config still serving",
        {
            "model_package_version": version,
            "error_type": type(error).__name__,
            "error_code": _error_code(error) if isinstance(error, ClientError) else "",
            "left_over_resources": left_over,
        },
    )


def _settled_outcome(
    endpoint: Mapping[str, Any] | None, package: ModelPackage, config_name: str
) -> Outcome | None:
    """An outcome when the endpoint already serves, or is moving to, ``config_name``."""
    if endpoint is None:
        return None
    pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
    status = endpoint.get("EndpointStatus")
    moving = pending == config_name or (
        endpoint.get("EndpointConfigName") == config_name and status == "Creating"
    )
    if moving:
        return Outcome(
            ALREADY_DEPLOYING,
            "deployment of this version in progress",
            package.version,
            config_name,
        )
    if endpoint.get("EndpointConfigName") == config_name and status in SERVING_STATUSES:
        return Outcome(
            ALREADY_SERVING, "endpoint already serves this version", package.version, config_name
        )
    return None


def _clean_up(sagemaker: Any, created: list[tuple[str, str]]) -> list[str]:
    """Delete what this run created, newest first; return the names that could not go."""
    left_over: list[str] = []
    for kind, name in reversed(created):
        try:
            if kind == "endpoint_config":
                sagemaker.delete_endpoint_config(EndpointConfigName=name)
            else:
                sagemaker.delete_model(ModelName=name)
        except ClientError:
            left_over.append(name)
    return left_over
