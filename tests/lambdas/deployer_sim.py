"""A scripted SageMaker account for the deployer: registry, endpoint states, alarms, queue.

moto creates endpoints InService at once, implements no UpdateEndpoint and no asynchronous
states, and accepts requests SageMaker refuses. This fake keeps what the deployer's correctness
depends on, as AWS documents it:

* DescribeEndpoint: ``Creating`` / ``Updating`` (with ``PendingDeploymentSummary``) /
  ``Deleting`` / ``InService`` / ``Failed`` (API_DescribeEndpoint, EndpointStatus);
* UpdateEndpoint and CreateEndpoint refuse a busy endpoint; a ``Failed`` endpoint accepts
  DeleteEndpoint only ("DeleteEndpoint is the only operation that can be performed on a failed
  endpoint", API_DescribeEndpoint);
* a blue/green update rolls back to the old fleet if any alarm of its AutoRollbackConfiguration
  is in ALARM during the shift or the baking period (deployment-guardrails-configuration), and
  an update that fails leaves the endpoint InService on the old config;
* every status change emits a "SageMaker Endpoint State Change" event
  (automating-sagemaker-with-eventbridge).

* CreateEndpointConfig with ShadowProductionVariants: one production and one shadow variant
  (API_CreateEndpointConfig); the shadow's answers are captured, never returned
  (model-shadow-deployment);
* Application Auto Scaling: RegisterScalableTarget creates or updates a target (min, max,
  SuspendedState), PutScalingPolicy needs a registered target (ObjectNotFoundException
  otherwise, API_PutScalingPolicy), deleting an endpoint deregisters its variants
  (endpoint-delete-with-scaling), and an UpdateEndpoint that changes the instance type of a
  registered variant fails (endpoint-scaling-update).

The endpoint moves only when the test calls :meth:`FakeSageMaker.tick`, so a test decides exactly
where in a deployment each event arrives. S3 (model archives, baselines, capture) is moto's.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from contracts.deployment import (
    ENDPOINT_STATE_CHANGE,
    MODEL_PACKAGE_STATE_CHANGE,
    SCHEDULED_EVENT,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
APPROVER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/readmission-approver"
REGISTRAR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/readmission-registrar"
#: How many ticks a creation or update takes before it completes.
CHANGE_TICKS = 2


def _error(code: str, operation: str, message: str = "refused") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _session(role_arn: str) -> str:
    name = role_arn.rsplit("/", 1)[-1]
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/session-1"


@dataclass
class Endpoint:
    name: str
    status: str
    config: str
    tags: dict[str, str]
    pending: str | None = None
    deployment: dict[str, Any] = field(default_factory=dict)
    ticks_left: int = CHANGE_TICKS

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{self.name}"


class Paginator:
    def __init__(self, fake: FakeSageMaker) -> None:
        self.fake = fake

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        group = kwargs["ModelPackageGroupName"]
        status = kwargs.get("ModelApprovalStatus")
        summaries = [
            {
                "ModelPackageArn": p["ModelPackageArn"],
                "ModelPackageVersion": p["ModelPackageVersion"],
                "ModelApprovalStatus": p["ModelApprovalStatus"],
            }
            for p in self.fake.packages.values()
            if p["ModelPackageGroupName"] == group
            and (status is None or p["ModelApprovalStatus"] == status)
        ]
        # Two pages, to exercise pagination.
        return [
            {"ModelPackageSummaryList": summaries[:1]},
            {"ModelPackageSummaryList": summaries[1:]},
        ]


class FakeCloudWatch:
    """Alarm states, published metrics, and scripted AWS/SageMaker variant statistics."""

    def __init__(self) -> None:
        self.alarm_states: dict[str, str] = {}
        self.metrics: list[dict[str, Any]] = []
        self.set_state_calls: list[str] = []
        #: (variant, metric name) -> value the statistics report (Sum, or p95 for ModelLatency).
        self.variant_statistics: dict[tuple[str, str], float] = {}

    def get_metric_statistics(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["Namespace"] == "AWS/SageMaker"
        assert kwargs["Period"] % 60 == 0
        dims = {d["Name"]: d["Value"] for d in kwargs["Dimensions"]}
        value = self.variant_statistics.get((dims["VariantName"], kwargs["MetricName"]))
        if value is None:
            return {"Datapoints": []}
        if "ExtendedStatistics" in kwargs:
            [statistic] = kwargs["ExtendedStatistics"]
            return {"Datapoints": [{"ExtendedStatistics": {statistic: value}}]}
        return {"Datapoints": [{"Sum": value}]}

    def published(self, metric_name: str) -> list[float]:
        return [
            item["Value"]
            for call in self.metrics
            for item in call["MetricData"]
            if item["MetricName"] == metric_name
        ]

    def put_metric_data(self, **kwargs: Any) -> None:
        self.metrics.append(kwargs)

    def set_alarm_state(self, **kwargs: Any) -> None:
        self.alarm_states[kwargs["AlarmName"]] = kwargs["StateValue"]
        self.set_state_calls.append(kwargs["AlarmName"])


class FakeSNS:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> None:
        self.messages.append({"subject": kwargs["Subject"], **json.loads(kwargs["Message"])})

    @property
    def statuses(self) -> list[str]:
        return [m["status"] for m in self.messages]


class FakeSageMaker:
    """Registry, models, configs and one endpoint, with scripted asynchronous states."""

    def __init__(self, group: str, events: deque[str], cloudwatch: FakeCloudWatch) -> None:
        self.group = group
        self.events = events
        self.cloudwatch = cloudwatch
        self.packages: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoint: Endpoint | None = None
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.clock = itertools.count(1)
        #: Configs of versions whose creation ends Failed / whose update fails and rolls back.
        self.fail_create_versions: set[int] = set()
        self.fail_update_versions: set[int] = set()
        self.bad_image_versions: set[int] = set()
        #: What DescribeEndpoint reports as the production variant's CurrentInstanceCount.
        self.instance_count = 1
        self.autoscaling: FakeAutoScaling | None = None

    # -- registry --------------------------------------------------------------------------

    def register(self, version: int, model_data_url: str, status: str, by: str) -> str:
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{self.group}/{version}"
        image = "bad-image" if version in self.bad_image_versions else "serving-image:1"
        self.packages[arn] = {
            "ModelPackageArn": arn,
            "ModelPackageGroupName": self.group,
            "ModelPackageVersion": version,
            "ModelApprovalStatus": status,
            "CreationTime": self._now(),
            "CreatedBy": {"IamIdentity": {"Arn": _session(by)}},
            "InferenceSpecification": {
                "Containers": [{"Image": image, "ModelDataUrl": model_data_url}]
            },
        }
        return arn

    def set_status(self, arn: str, status: str, by: str) -> None:
        package = self.packages[arn]
        package["ModelApprovalStatus"] = status
        package["LastModifiedTime"] = self._now()
        package["LastModifiedBy"] = {"IamIdentity": {"Arn": _session(by)}}

    def _now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=next(self.clock))

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803
        if ModelPackageName not in self.packages:
            raise _error("ValidationException", "DescribeModelPackage", "Could not find")
        return dict(self.packages[ModelPackageName])

    def get_paginator(self, name: str) -> Paginator:
        assert name == "list_model_packages"
        return Paginator(self)

    # -- models and configs ----------------------------------------------------------------

    def describe_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803
        if ModelName not in self.models:
            raise _error("ValidationException", "DescribeModel", "Could not find model")
        return self.models[ModelName]

    def create_model(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("CreateModel", request))
        if request["PrimaryContainer"]["Image"] == "bad-image":
            raise _error("ValidationException", "CreateModel", "image does not exist")
        self.models[request["ModelName"]] = request
        return {"ModelArn": f"arn:model/{request['ModelName']}"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803
        if EndpointConfigName not in self.configs:
            raise _error("ValidationException", "DescribeEndpointConfig", "Could not find")
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{EndpointConfigName}"
        return {**self.configs[EndpointConfigName], "EndpointConfigArn": arn}

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("CreateEndpointConfig", request))
        shadows = request.get("ShadowProductionVariants", [])
        if shadows and (len(shadows) != 1 or len(request["ProductionVariants"]) != 1):
            raise _error("ValidationException", "CreateEndpointConfig", "one and one variant")
        for variant in [*request["ProductionVariants"], *shadows]:
            if variant["ModelName"] not in self.models:
                raise _error("ValidationException", "CreateEndpointConfig", "Could not find")
        self.configs[request["EndpointConfigName"]] = request
        return {}

    def list_tags(self, ResourceArn: str) -> dict[str, Any]:  # noqa: N803
        kind, _, name = ResourceArn.rsplit(":", 1)[-1].partition("/")
        if kind == "endpoint-config":
            tags = self.configs[name].get("Tags", [])
        elif kind == "endpoint" and self.endpoint is not None and self.endpoint.name == name:
            tags = [{"Key": k, "Value": v} for k, v in self.endpoint.tags.items()]
        else:
            raise _error("ValidationException", "ListTags", "Could not find")
        return {"Tags": list(tags)}

    def add_tags(self, ResourceArn: str, Tags: list[dict[str, str]]) -> None:  # noqa: N803
        self.calls.append(("AddTags", {"ResourceArn": ResourceArn, "Tags": Tags}))
        assert self.endpoint is not None
        assert ResourceArn == self.endpoint.arn
        for item in Tags:
            self.endpoint.tags[item["Key"]] = item["Value"]

    # -- the endpoint ----------------------------------------------------------------------

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:  # noqa: N803
        endpoint = self.endpoint
        if endpoint is None or endpoint.name != EndpointName:
            raise _error("ValidationException", "DescribeEndpoint", "Could not find endpoint")
        variant = self.configs[endpoint.config]["ProductionVariants"][0]
        description: dict[str, Any] = {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointStatus": endpoint.status,
            "EndpointConfigName": endpoint.config,
            "ProductionVariants": [
                {
                    "VariantName": variant["VariantName"],
                    "CurrentInstanceCount": self.instance_count,
                }
            ],
        }
        if endpoint.pending is not None:
            description["PendingDeploymentSummary"] = {"EndpointConfigName": endpoint.pending}
        return description

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("CreateEndpoint", request))
        if self.endpoint is not None:
            raise _error("ValidationException", "CreateEndpoint", "Cannot create already existing")
        if request["EndpointConfigName"] not in self.configs:
            raise _error("ValidationException", "CreateEndpoint", "Could not find config")
        tags = {t["Key"]: t["Value"] for t in request.get("Tags", [])}
        self.endpoint = Endpoint(
            request["EndpointName"], "Creating", request["EndpointConfigName"], tags
        )
        self._emit()
        return {"EndpointArn": self.endpoint.arn}

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("UpdateEndpoint", request))
        endpoint = self.endpoint
        if endpoint is None or endpoint.status != "InService":
            raise _error("ValidationException", "UpdateEndpoint", "Cannot update in-progress")
        if request["EndpointConfigName"] not in self.configs:
            raise _error("ValidationException", "UpdateEndpoint", "Could not find config")
        new_type = self.configs[request["EndpointConfigName"]]["ProductionVariants"][0]
        old_type = self.configs[endpoint.config]["ProductionVariants"][0]
        if (
            self.autoscaling is not None
            and self.autoscaling.targets
            and new_type["InstanceType"] != old_type["InstanceType"]
        ):
            raise _error("ValidationException", "UpdateEndpoint", "deregister auto scaling first")
        endpoint.status = "Updating"
        endpoint.pending = request["EndpointConfigName"]
        endpoint.deployment = request.get("DeploymentConfig", {})
        endpoint.ticks_left = CHANGE_TICKS
        self._emit()
        return {"EndpointArn": endpoint.arn}

    def delete_endpoint(self, EndpointName: str) -> None:  # noqa: N803
        self.calls.append(("DeleteEndpoint", {"EndpointName": EndpointName}))
        endpoint = self.endpoint
        if endpoint is None or endpoint.status not in ("InService", "Failed", "OutOfService"):
            raise _error("ValidationException", "DeleteEndpoint", "Cannot delete")
        endpoint.status = "Deleting"
        endpoint.ticks_left = 1
        self._emit()

    def version_of_config(self, config_name: str) -> int:
        tags = {t["Key"]: t["Value"] for t in self.configs[config_name]["Tags"]}
        return int(tags["readmission:model-version"])

    def tick(self) -> None:
        """Let time pass: the endpoint's change advances one step (and may complete)."""
        endpoint = self.endpoint
        if endpoint is None or endpoint.status not in ("Creating", "Updating", "Deleting"):
            return
        if endpoint.status == "Updating" and self._rollback_alarm_firing(endpoint):
            endpoint.status, endpoint.pending = "InService", None
            self._emit()
            return
        endpoint.ticks_left -= 1
        if endpoint.ticks_left > 0:
            return
        if endpoint.status == "Deleting":
            self.endpoint = None
            if self.autoscaling is not None:
                self.autoscaling.targets.clear()
                self.autoscaling.policies.clear()
            self._emit(deleted=endpoint)
            return
        if endpoint.status == "Creating":
            failed = self.version_of_config(endpoint.config) in self.fail_create_versions
            endpoint.status = "Failed" if failed else "InService"
        else:
            assert endpoint.pending is not None
            if self.version_of_config(endpoint.pending) not in self.fail_update_versions:
                endpoint.config = endpoint.pending
            endpoint.status, endpoint.pending = "InService", None
        self._emit()

    def _rollback_alarm_firing(self, endpoint: Endpoint) -> bool:
        alarms = endpoint.deployment.get("AutoRollbackConfiguration", {}).get("Alarms", [])
        return any(self.cloudwatch.alarm_states.get(a["AlarmName"]) == "ALARM" for a in alarms)

    def _emit(self, deleted: Endpoint | None = None) -> None:
        endpoint = self.endpoint or deleted
        assert endpoint is not None
        self.events.append(
            envelope(
                ENDPOINT_STATE_CHANGE,
                {
                    "EndpointName": endpoint.name,
                    "EndpointStatus": "Deleted" if deleted else endpoint.status,
                },
            )
        )

    # -- what serves -----------------------------------------------------------------------

    def serving_version(self) -> int | None:
        """The version an InService endpoint serves; ``None`` when nothing serves."""
        if self.endpoint is None or self.endpoint.status != "InService":
            return None
        return self.version_of_config(self.endpoint.config)

    def shadow_version(self) -> int | None:
        """The version running in shadow on an InService endpoint, if any."""
        if self.endpoint is None or self.endpoint.status != "InService":
            return None
        config = self.configs[self.endpoint.config]
        shadows = config.get("ShadowProductionVariants", [])
        if not shadows:
            return None
        model = self.models[shadows[0]["ModelName"]]
        tags = {t["Key"]: t["Value"] for t in model["Tags"]}
        return int(tags["readmission:model-version"])


class FakeAutoScaling:
    """Application Auto Scaling's targets and policies of SageMaker variants."""

    def __init__(self) -> None:
        self.targets: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def register_scalable_target(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("RegisterScalableTarget", request))
        assert request["ServiceNamespace"] == "sagemaker"
        assert request["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        target = self.targets.setdefault(request["ResourceId"], {})
        target.update(request)
        return {}

    def put_scaling_policy(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("PutScalingPolicy", request))
        if request["ResourceId"] not in self.targets:
            raise _error("ObjectNotFoundException", "PutScalingPolicy", "No scalable target")
        self.policies[request["ResourceId"]] = request
        return {}

    def deregister_scalable_target(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("DeregisterScalableTarget", request))
        if request["ResourceId"] not in self.targets:
            raise _error("ObjectNotFoundException", "DeregisterScalableTarget", "No target")
        del self.targets[request["ResourceId"]]
        self.policies.pop(request["ResourceId"], None)
        return {}


_ids = itertools.count(1)


def envelope(detail_type: str, detail: dict[str, Any], source: str = "aws.sagemaker") -> str:
    """An EventBridge event as the queue message body carries it."""
    return json.dumps(
        {
            "version": "0",
            "id": f"00000000-0000-4000-8000-{next(_ids):012d}",
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT,
            "time": "2026-01-01T00:00:00Z",
            "region": REGION,
            "resources": [],
            "detail": detail,
        }
    )


def package_event(package: dict[str, Any]) -> str:
    return envelope(
        MODEL_PACKAGE_STATE_CHANGE,
        {
            "ModelPackageGroupName": package["ModelPackageGroupName"],
            "ModelPackageVersion": package["ModelPackageVersion"],
            "ModelPackageArn": package["ModelPackageArn"],
            "ModelApprovalStatus": package["ModelApprovalStatus"],
            "ModelPackageStatus": "Completed",
        },
    )


def sweep_event() -> str:
    return envelope(SCHEDULED_EVENT, {}, source="aws.events")


class FakeSqs:
    """Records the visibility changes the handler asks for."""

    def __init__(self) -> None:
        self.visibility_changes: list[int] = []

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.visibility_changes.append(kwargs["VisibilityTimeout"])
