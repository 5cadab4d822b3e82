"""The deployer's requests against moto, and its pure units.

moto 5.2 implements the registry (model package groups, packages, approval updates, listing),
models, endpoint configs, endpoints, tags, S3 and SNS, but not UpdateEndpoint (it raises
NotImplementedError) and not the asynchronous endpoint states (it creates endpoints InService at
once). ``UpdateEndpointEmulator`` answers UpdateEndpoint the way a successful blue/green update
ends and records the request, so the policy sent is asserted exactly. The asynchronous behaviour
(an event arriving mid-update, a Failed endpoint, a rollback) is covered by the scripted account
of tests/lambdas/test_deployer_scenarios.py.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from contracts.drift import baseline_s3_key, build_baseline
from contracts.model_artifact import DRIFT_BASELINE_FILE, WEIGHTS_FILE
from contracts.serving import TAG_MODEL_PACKAGE_ARN, TAG_MODEL_VERSION
from lambdas.deployer.baseline import VERSION_METADATA_KEY, versioned_baseline_key
from lambdas.deployer.deployment import (
    ALREADY_SERVING,
    CREATING,
    DEPLOYING,
    NOTHING_TO_SERVE,
    Clients,
    deployment_config,
    reconcile,
    resource_name,
)
from lambdas.deployer.events import TriggerError, parse_trigger
from lambdas.deployer.registry import made_by_role
from lambdas.deployer.settings import DeployerSettings, SettingsError
from tests.contracts.test_drift import record
from tests.lambdas.conftest import ACCOUNT_ID, REGION
from tests.lambdas.deployer_sim import package_event, sweep_event

GROUP = "readmission-models"
ENDPOINT = "readmission-test"
CAPTURE_BUCKET = "capture-bucket"
MODEL_BUCKET = "model-bucket"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/11111111-2222-3333-4444-555555555555"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/sagemaker-execution"
ALARMS = ("readmission-test-5xx", "readmission-test-latency")
REJECTION_ALARM = "readmission-test-rejected-rollout"
IMAGE = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/pytorch-inference:2.5-cpu"


def model_archive(*, with_baseline: bool = True) -> bytes:
    """A model.tar.gz as training writes it: weights plus drift_baseline.json at the root."""
    baseline = build_baseline([record(age_years=a) for a in (30, 50, 70)], [0.1, 0.2, 0.3])
    files = {f"./{WEIGHTS_FILE}": b"\x00" * 64, "./config.json": b"{}"}
    if with_baseline:
        files[f"./{DRIFT_BASELINE_FILE}"] = json.dumps(baseline).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class UpdateEndpointEmulator:
    """Answers UpdateEndpoint on one client as a completed blue/green update, or fails it."""

    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker
        self.requests: list[dict[str, Any]] = []
        self.fail_with: str | None = None
        sagemaker.meta.events.register("before-call.sagemaker.UpdateEndpoint", self._update)

    def _update(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = json.loads(params["body"])
        self.requests.append(request)
        if self.fail_with is not None:
            raise ClientError(
                {"Error": {"Code": self.fail_with, "Message": "injected"}}, "UpdateEndpoint"
            )
        name = request["EndpointName"]
        self.sagemaker.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])
        self.sagemaker.delete_endpoint(EndpointName=name)
        self.sagemaker.create_endpoint(
            EndpointName=name, EndpointConfigName=request["EndpointConfigName"]
        )
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:endpoint/{name}"
        return AWSResponse("https://sagemaker", 200, {}, None), {"EndpointArn": arn}


class Registry:
    """Model package versions in one group, each with its own artifact."""

    def __init__(self, sagemaker: Any, s3: Any) -> None:
        self.sagemaker = sagemaker
        self.s3 = s3
        self.arns: dict[int, str] = {}
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)

    def register(self, *, with_baseline: bool = True) -> int:
        version = len(self.arns) + 1
        key = f"models/v{version}/model.tar.gz"
        self.s3.put_object(
            Bucket=MODEL_BUCKET, Key=key, Body=model_archive(with_baseline=with_baseline)
        )
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": IMAGE,
                        "ModelDataUrl": f"s3://{MODEL_BUCKET}/{key}",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                    }
                ],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
        self.arns[version] = arn
        return version

    def set_status(self, version: int, status: str) -> None:
        self.sagemaker.update_model_package(
            ModelPackageArn=self.arns[version], ModelApprovalStatus=status
        )


@pytest.fixture
def settings() -> DeployerSettings:
    return DeployerSettings.from_env(deployer_env())


def deployer_env() -> dict[str, str]:
    return {
        "ENDPOINT_NAME": ENDPOINT,
        "EXECUTION_ROLE_ARN": ROLE,
        "INSTANCE_TYPE": "ml.m5.large",
        "INSTANCE_COUNT": "2",
        "DATA_CAPTURE_S3_URI": f"s3://{CAPTURE_BUCKET}/datacapture",
        "KMS_KEY_ARN": KMS_KEY,
        "CAPTURE_SAMPLING_PERCENT": "50",
        "ROLLBACK_ALARM_NAMES": ",".join(ALARMS),
        "REJECTION_ALARM_NAME": REJECTION_ALARM,
        "SNS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:deployments",
        "MODEL_PACKAGE_GROUP_NAME": GROUP,
    }


@pytest.fixture
def aws(mocked_aws: None) -> dict[str, Any]:
    """Buckets, an SNS topic, and the clients (moto)."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=CAPTURE_BUCKET)
    s3.create_bucket(Bucket=MODEL_BUCKET)
    sns = boto3.client("sns")
    sns.create_topic(Name="deployments")
    sagemaker = boto3.client("sagemaker")
    return {
        "s3": s3,
        "sagemaker": sagemaker,
        "clients": Clients(
            sagemaker=sagemaker, s3=s3, sns=sns, cloudwatch=boto3.client("cloudwatch")
        ),
        "registry": Registry(sagemaker, s3),
        "emulator": UpdateEndpointEmulator(sagemaker),
    }


def serving(aws: dict[str, Any]) -> dict[str, str]:
    """The endpoint's current config name and its version tags."""
    sagemaker = aws["sagemaker"]
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    tags = sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]
    return {"config": endpoint["EndpointConfigName"], **{t["Key"]: t["Value"] for t in tags}}


def active_baseline_version(aws: dict[str, Any]) -> str:
    head = aws["s3"].head_object(Bucket=CAPTURE_BUCKET, Key=baseline_s3_key(ENDPOINT))
    return str(head["Metadata"][VERSION_METADATA_KEY])


def test_first_approval_creates_the_endpoint_as_specified(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    registry.set_status(registry.register(), "Approved")

    first = reconcile(settings, clients)
    second = reconcile(settings, clients)  # moto's endpoint is InService at once

    assert first.action == CREATING
    assert not first.settled
    assert second.action == ALREADY_SERVING
    assert second.settled
    now = serving(aws)
    assert now[TAG_MODEL_VERSION] == "1"
    assert now[TAG_MODEL_PACKAGE_ARN] == registry.arns[1]
    config = aws["sagemaker"].describe_endpoint_config(EndpointConfigName=now["config"])
    assert config["KmsKeyId"] == KMS_KEY
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    capture = config["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{CAPTURE_BUCKET}/datacapture"
    assert capture["InitialSamplingPercentage"] == 50
    assert capture["KmsKeyId"] == KMS_KEY
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json"]}
    model = aws["sagemaker"].describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert (
        model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{MODEL_BUCKET}/models/v1/model.tar.gz"
    )
    assert model["ExecutionRoleArn"] == ROLE
    assert active_baseline_version(aws) == "1"
    assert aws["emulator"].requests == []  # created, not updated


def test_newer_approval_updates_blue_green_with_every_rollback_alarm(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    registry.set_status(registry.register(), "Approved")
    reconcile(settings, clients)
    reconcile(settings, clients)
    registry.set_status(registry.register(), "Approved")

    outcome = reconcile(settings, clients)

    assert outcome.action == DEPLOYING
    assert outcome.model_package_version == 2
    assert active_baseline_version(aws) == "1"  # v2 does not serve until the update completes
    [request] = aws["emulator"].requests
    assert request["EndpointConfigName"] == outcome.endpoint_config_name
    assert request["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 600,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": name} for name in (REJECTION_ALARM, *ALARMS)]
        },
    }
    assert reconcile(settings, clients).action == ALREADY_SERVING
    assert active_baseline_version(aws) == "2"


def test_nothing_approved_nothing_created(aws: dict[str, Any], settings: DeployerSettings) -> None:
    registry = aws["registry"]
    registry.set_status(registry.register(), "PendingManualApproval")

    outcome = reconcile(settings, aws["clients"])

    assert outcome.action == NOTHING_TO_SERVE
    assert outcome.settled
    assert aws["sagemaker"].list_endpoints()["Endpoints"] == []
    assert aws["sagemaker"].list_models()["Models"] == []


def test_a_lost_notice_does_not_fail_the_deployment(aws: dict[str, Any]) -> None:
    missing_topic = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:no-such-topic"
    settings = DeployerSettings.from_env({**deployer_env(), "SNS_TOPIC_ARN": missing_topic})
    registry = aws["registry"]
    registry.set_status(registry.register(), "Approved")

    outcome = reconcile(settings, aws["clients"])

    assert outcome.action == CREATING
    assert serving(aws)[TAG_MODEL_VERSION] == "1"


def test_resource_names_are_deterministic_and_fit_sagemaker_limits() -> None:
    long_endpoint = "e" * 63
    name = resource_name(long_endpoint, 123, {"a": 1})
    assert len(name) == 63
    assert name == resource_name(long_endpoint, 123, {"a": 1})
    assert name != resource_name(long_endpoint, 123, {"a": 2})
    assert resource_name("ep", 4, {"a": 1}).startswith("ep-v4-")


def test_rollback_routing_lists_only_the_rejection_alarm(settings: DeployerSettings) -> None:
    config = deployment_config(settings, rollback=True)

    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 600,
    }
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": REJECTION_ALARM}]}


def test_linear_routing_and_settings_errors() -> None:
    env = deployer_env()
    linear = DeployerSettings.from_env({**env, "TRAFFIC_ROUTING": "linear"})
    routing = deployment_config(linear, rollback=False)["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 600,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    with pytest.raises(SettingsError, match="KMS_KEY_ARN"):
        DeployerSettings.from_env({k: v for k, v in env.items() if k != "KMS_KEY_ARN"})
    with pytest.raises(SettingsError, match="REJECTION_ALARM_NAME"):
        DeployerSettings.from_env({k: v for k, v in env.items() if k != "REJECTION_ALARM_NAME"})
    with pytest.raises(SettingsError, match="VPC_SUBNET_IDS"):
        DeployerSettings.from_env({**env, "VPC_SUBNET_IDS": "subnet-1"})
    with pytest.raises(SettingsError, match="INSTANCE_COUNT"):
        DeployerSettings.from_env({**env, "INSTANCE_COUNT": "two"})
    with pytest.raises(SettingsError, match="ROLLBACK_ALARM_NAMES"):
        DeployerSettings.from_env(
            {**env, "ROLLBACK_ALARM_NAMES": ",".join(f"a{i}" for i in range(10))}
        )
    with pytest.raises(SettingsError, match="RETRY_SECONDS"):
        DeployerSettings.from_env({**env, "RETRY_SECONDS": "0"})
    assert linear.capture_bucket == CAPTURE_BUCKET
    assert versioned_baseline_key(ENDPOINT, 7) == (
        f"baselines/{ENDPOINT}/versions/7/{DRIFT_BASELINE_FILE}"
    )


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/approver/SageMaker", True),
        (f"arn:aws:iam::{ACCOUNT_ID}:role/team/approver", True),
        (f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/approver-not/SageMaker", False),
        (f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/registrar/approver", False),
        ("arn:aws:sts::999999999999:assumed-role/approver/SageMaker", False),
        (f"arn:aws-cn:sts::{ACCOUNT_ID}:assumed-role/approver/SageMaker", False),
        (f"arn:aws:sts::{ACCOUNT_ID}:federated-user/approver", False),
        ("", False),
        (None, False),
    ],
)
def test_an_approval_counts_only_from_the_approver_role(
    identity: str | None, expected: bool
) -> None:
    assert made_by_role(identity, f"arn:aws:iam::{ACCOUNT_ID}:role/team/approver") is expected


def test_triggers_are_parsed_and_anything_else_is_refused() -> None:
    package = {
        "ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/g/3",
        "ModelPackageGroupName": "g",
        "ModelPackageVersion": 3,
        "ModelApprovalStatus": "Rejected",
    }
    trigger = parse_trigger(package_event(package))
    assert (trigger.kind, trigger.model_package_version, trigger.approval_status) == (
        "package_change",
        3,
        "Rejected",
    )
    assert trigger.concerns("g", "endpoint")
    assert not trigger.concerns("other", "endpoint")
    assert parse_trigger(sweep_event()).concerns("g", "endpoint")
    for body in ("", "[]", "null", '{"detail-type": "Scheduled Event"}', "{" * 10_000):
        with pytest.raises(TriggerError):
            parse_trigger(body)


def test_shadow_and_autoscaling_settings_are_read_and_checked() -> None:
    env = {
        **deployer_env(),
        "SHADOW_ENABLED": "true",
        "SHADOW_TRAFFIC_PERCENT": "25",
        "SHADOW_MIN_PEARSON": "0.95",
        "AUTOSCALING_ENABLED": "yes",
        "AUTOSCALING_MIN_INSTANCES": "2",
        "AUTOSCALING_MAX_INSTANCES": "5",
    }
    settings = DeployerSettings.from_env(env)
    assert settings.shadow_enabled is True
    assert settings.shadow_traffic_percent == 25
    assert settings.shadow_bounds.min_pearson == 0.95
    assert settings.shadow_bounds.max_error_rate == 0.01  # default kept
    assert (settings.autoscaling_min_instances, settings.autoscaling_max_instances) == (2, 5)
    assert DeployerSettings.from_env(deployer_env()).shadow_enabled is False
    for name, value, message in (
        ("SHADOW_TRAFFIC_PERCENT", "0", "SHADOW_TRAFFIC_PERCENT"),
        ("SHADOW_TRAFFIC_PERCENT", "101", "SHADOW_TRAFFIC_PERCENT"),
        ("SHADOW_MINIMUM_PAIRS", "1", "SHADOW_MINIMUM_PAIRS"),
        ("SHADOW_MAX_ALERT_RATE_DIFFERENCE", "1.5", "SHADOW_MAX_ALERT_RATE_DIFFERENCE"),
        ("SHADOW_MAX_LATENCY_P95_RATIO", "0.5", "SHADOW_MAX_LATENCY_P95_RATIO"),
        ("SHADOW_MIN_SPEARMAN", "x", "SHADOW_MIN_SPEARMAN"),
        ("AUTOSCALING_MIN_INSTANCES", "6", "AUTOSCALING_MIN_INSTANCES"),
        ("AUTOSCALING_TARGET_INVOCATIONS_PER_INSTANCE", "0", "AUTOSCALING_TARGET"),
    ):
        with pytest.raises(SettingsError, match=message):
            DeployerSettings.from_env({**env, name: value})
