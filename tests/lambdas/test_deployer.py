"""The deployer against moto: approval, idempotency, rollback, no-ops and clean failure.

moto 5.2 implements the registry (model package groups, packages, approval updates, listing),
models, endpoint configs, endpoints, tags, S3 and SNS, but not UpdateEndpoint (it raises
NotImplementedError) and not the asynchronous endpoint states. ``UpdateEndpointEmulator``
answers UpdateEndpoint the way a successful blue/green update ends (the endpoint on the new
config) and records the request, so the policy sent is asserted exactly.
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
from contracts.serving import TAG_MODEL_PACKAGE_ARN, TAG_MODEL_VERSION
from lambdas.deployer import app
from lambdas.deployer.baseline import VERSION_METADATA_KEY, versioned_baseline_key
from lambdas.deployer.deployment import (
    ALREADY_DEPLOYING,
    ALREADY_SERVING,
    DEPLOYING,
    IGNORED,
    NO_APPROVED_VERSION,
    ROLLING_BACK,
    Clients,
    DeploymentError,
    EndpointBusyError,
    deployment_config,
    handle_state_change,
    resource_name,
)
from lambdas.deployer.events import ModelPackageStateChange
from lambdas.deployer.settings import DeployerSettings, SettingsError
from tests.contracts.test_drift import record
from tests.lambdas.conftest import ACCOUNT_ID, REGION, FakeLambdaContext

GROUP = "readmission-models"
ENDPOINT = "readmission-test"
CAPTURE_BUCKET = "capture-bucket"
MODEL_BUCKET = "model-bucket"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/11111111-2222-3333-4444-555555555555"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/sagemaker-execution"
ALARMS = ("readmission-test-5xx", "readmission-test-latency")
IMAGE = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/pytorch-inference:2.5-cpu"


def model_archive(*, with_baseline: bool = True) -> bytes:
    """A model.tar.gz as training writes it: weights plus drift_baseline.json at the root."""
    baseline = build_baseline([record(age_years=a) for a in (30, 50, 70)], [0.1, 0.2, 0.3])
    files = {"./model.safetensors": b"\x00" * 64, "./config.json": b"{}"}
    if with_baseline:
        files["./drift_baseline.json"] = json.dumps(baseline).encode()
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

    def set_status(self, version: int, status: str) -> ModelPackageStateChange:
        self.sagemaker.update_model_package(
            ModelPackageArn=self.arns[version], ModelApprovalStatus=status
        )
        return ModelPackageStateChange(
            ModelPackageArn=self.arns[version],
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus=status,
            ModelPackageVersion=version,
        )


@pytest.fixture
def settings() -> DeployerSettings:
    return DeployerSettings.from_env(deployer_env())


def topic_arn() -> str:
    return f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:deployments"


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
        "SNS_TOPIC_ARN": topic_arn(),
        "MODEL_PACKAGE_GROUP_NAME": GROUP,
    }


@pytest.fixture
def aws(mocked_aws: None) -> dict[str, Any]:
    """Buckets, an SNS topic delivering into a queue we can read, and the clients."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=CAPTURE_BUCKET)
    s3.create_bucket(Bucket=MODEL_BUCKET)
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="deployments")["TopicArn"]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="notices")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sagemaker = boto3.client("sagemaker")
    return {
        "s3": s3,
        "sns": sns,
        "sqs": sqs,
        "queue_url": queue_url,
        "sagemaker": sagemaker,
        "clients": Clients(sagemaker=sagemaker, s3=s3, sns=sns),
        "registry": Registry(sagemaker, s3),
        "emulator": UpdateEndpointEmulator(sagemaker),
    }


def notices(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """Every SNS message published so far, as (subject, parsed message)."""
    found: list[dict[str, Any]] = []
    while True:
        batch = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)
        messages = batch.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            envelope = json.loads(message["Body"])
            found.append({"subject": envelope["Subject"], **json.loads(envelope["Message"])})
            aws["sqs"].delete_message(
                QueueUrl=aws["queue_url"], ReceiptHandle=message["ReceiptHandle"]
            )


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


def model_names(aws: dict[str, Any]) -> list[str]:
    return sorted(m["ModelName"] for m in aws["sagemaker"].list_models()["Models"])


def config_names(aws: dict[str, Any]) -> list[str]:
    configs = aws["sagemaker"].list_endpoint_configs()["EndpointConfigs"]
    return sorted(c["EndpointConfigName"] for c in configs)


def eventbridge_event(change: ModelPackageStateChange) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "4b5a1c0e-0000-4000-8000-000000000000",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT_ID,
        "time": "2024-05-01T10:00:00Z",
        "region": REGION,
        "resources": [change.model_package_arn],
        "detail": {
            "ModelPackageGroupName": change.model_package_group_name,
            "ModelPackageVersion": change.model_package_version,
            "ModelPackageArn": change.model_package_arn,
            "ModelApprovalStatus": change.model_approval_status,
            "ModelPackageStatus": "Completed",
        },
    }


@pytest.fixture
def handler_env(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in deployer_env().items():
        monkeypatch.setenv(name, value)


def test_first_approval_creates_the_endpoint(
    aws: dict[str, Any], handler_env: None, lambda_context: FakeLambdaContext
) -> None:
    registry = aws["registry"]
    version = registry.register()
    change = registry.set_status(version, "Approved")

    result = app.lambda_handler(eventbridge_event(change), lambda_context)

    assert result["action"] == DEPLOYING
    assert result["model_package_version"] == 1
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
    assert [n["status"] for n in notices(aws)] == ["deploying started"]


def test_newer_approval_updates_blue_green_with_rollback_alarms(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    v1_config = serving(aws)["config"]

    outcome = handle_state_change(
        registry.set_status(registry.register(), "Approved"), settings, clients
    )

    assert outcome.action == DEPLOYING
    assert outcome.model_package_version == 2
    assert serving(aws)[TAG_MODEL_VERSION] == "2"
    assert serving(aws)["config"] != v1_config
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
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in ALARMS]},
    }
    assert active_baseline_version(aws) == "2"
    assert len(model_names(aws)) == 2


def test_the_same_event_twice_deploys_once(
    aws: dict[str, Any], handler_env: None, lambda_context: FakeLambdaContext
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    settings = DeployerSettings.from_env()
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    change = registry.set_status(registry.register(), "Approved")

    first = handle_state_change(change, settings, clients)
    second = handle_state_change(change, settings, clients)

    assert first.action == DEPLOYING
    assert second.action == ALREADY_SERVING
    assert second.endpoint_config_name == first.endpoint_config_name
    assert len(aws["emulator"].requests) == 1
    assert len(model_names(aws)) == 2
    assert len(config_names(aws)) == 2
    statuses = [n["status"] for n in notices(aws)]
    assert statuses == ["deploying started", "deploying started"]  # v1, then v2 once


def test_an_older_approval_does_not_displace_the_newest(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    old = registry.register()
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)

    outcome = handle_state_change(registry.set_status(old, "Approved"), settings, clients)

    assert outcome.action == ALREADY_SERVING
    assert outcome.model_package_version == 2
    assert aws["emulator"].requests == []


def test_rejecting_the_served_version_rolls_back_to_the_latest_approved(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    v1_config = serving(aws)["config"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    models_before = model_names(aws)

    outcome = handle_state_change(registry.set_status(2, "Rejected"), settings, clients)

    assert outcome.action == ROLLING_BACK
    assert outcome.model_package_version == 1
    assert serving(aws)["config"] == v1_config  # v1's model and config are reused
    assert model_names(aws) == models_before
    rollback_request = aws["emulator"].requests[-1]
    assert rollback_request["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
            "TerminationWaitInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": 3600,
        }
    }
    assert active_baseline_version(aws) == "1"


def test_rejecting_a_version_not_served_changes_nothing(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    unserved = registry.register()

    outcome = handle_state_change(registry.set_status(unserved, "Rejected"), settings, clients)

    assert outcome.action == IGNORED
    assert serving(aws)[TAG_MODEL_VERSION] == "1"
    assert aws["emulator"].requests == []


def test_rejecting_the_only_version_notifies_and_keeps_serving(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    notices(aws)

    outcome = handle_state_change(registry.set_status(1, "Rejected"), settings, clients)

    assert outcome.action == NO_APPROVED_VERSION
    assert serving(aws)[TAG_MODEL_VERSION] == "1"
    [notice] = notices(aws)
    assert notice["status"] == "served version rejected, no approved version to roll back to"
    assert notice["rejected_version"] == 1


def test_pending_manual_approval_does_nothing(
    aws: dict[str, Any], handler_env: None, lambda_context: FakeLambdaContext
) -> None:
    registry = aws["registry"]
    change = registry.set_status(registry.register(), "PendingManualApproval")

    result = app.lambda_handler(eventbridge_event(change), lambda_context)

    assert result["action"] == IGNORED
    assert model_names(aws) == []
    assert config_names(aws) == []
    assert aws["sagemaker"].list_endpoints()["Endpoints"] == []
    assert notices(aws) == []


def test_failure_in_the_middle_cleans_up_and_keeps_the_old_endpoint(
    aws: dict[str, Any], handler_env: None, settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    before = {"models": model_names(aws), "configs": config_names(aws), "serving": serving(aws)}
    notices(aws)
    aws["emulator"].fail_with = "ResourceLimitExceeded"

    with pytest.raises(DeploymentError):
        handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)

    assert len(aws["emulator"].requests) == 1  # the update was attempted ...
    assert model_names(aws) == before["models"]  # ... and v2's model and config are gone
    assert config_names(aws) == before["configs"]
    assert serving(aws) == before["serving"]
    assert active_baseline_version(aws) == "1"
    [notice] = notices(aws)
    assert notice["status"] == "deploying failed, previous endpoint config still serving"
    assert notice["error_type"] == "ClientError"
    assert notice["error_code"] == "ResourceLimitExceeded"
    assert notice["model_package_version"] == 2
    assert notice["left_over_resources"] == []


def test_the_handler_marks_a_failed_deployment_as_failed(
    aws: dict[str, Any], handler_env: None, lambda_context: FakeLambdaContext
) -> None:
    registry = aws["registry"]
    change = registry.set_status(registry.register(with_baseline=False), "Approved")

    with pytest.raises(DeploymentError):
        app.lambda_handler(eventbridge_event(change), lambda_context)

    assert model_names(aws) == []  # the missing baseline stopped it before anything existed
    assert aws["sagemaker"].list_endpoints()["Endpoints"] == []
    [notice] = notices(aws)
    assert notice["error_type"] == "BaselineArtifactError"


def test_a_busy_endpoint_is_left_alone(aws: dict[str, Any], settings: DeployerSettings) -> None:
    registry, clients = aws["registry"], aws["clients"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    models = model_names(aws)

    def updating(parsed: dict[str, Any], **_: Any) -> None:
        parsed["EndpointStatus"] = "Updating"

    aws["sagemaker"].meta.events.register("after-call.sagemaker.DescribeEndpoint", updating)
    with pytest.raises(EndpointBusyError):
        handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)

    assert model_names(aws) == models
    assert aws["emulator"].requests == []


def test_an_update_already_moving_to_the_version_is_not_repeated(
    aws: dict[str, Any], settings: DeployerSettings
) -> None:
    registry, clients = aws["registry"], aws["clients"]
    handle_state_change(registry.set_status(registry.register(), "Approved"), settings, clients)
    v1_config = serving(aws)["config"]
    change = registry.set_status(registry.register(), "Approved")
    started = handle_state_change(change, settings, clients)

    def in_progress(parsed: dict[str, Any], **_: Any) -> None:
        parsed["EndpointStatus"] = "Updating"
        parsed["EndpointConfigName"] = v1_config
        parsed["PendingDeploymentSummary"] = {"EndpointConfigName": started.endpoint_config_name}

    aws["sagemaker"].meta.events.register("after-call.sagemaker.DescribeEndpoint", in_progress)
    repeat = handle_state_change(change, settings, clients)

    assert repeat.action == ALREADY_DEPLOYING
    assert len(aws["emulator"].requests) == 1


def test_resource_names_are_deterministic_and_fit_sagemaker_limits() -> None:
    long_endpoint = "e" * 63
    name = resource_name(long_endpoint, 123, {"a": 1})
    assert len(name) == 63
    assert name == resource_name(long_endpoint, 123, {"a": 1})
    assert name != resource_name(long_endpoint, 123, {"a": 2})
    assert resource_name("ep", 4, {"a": 1}).startswith("ep-v4-")


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
    with pytest.raises(SettingsError, match="VPC_SUBNET_IDS"):
        DeployerSettings.from_env({**env, "VPC_SUBNET_IDS": "subnet-1"})
    with pytest.raises(SettingsError, match="INSTANCE_COUNT"):
        DeployerSettings.from_env({**env, "INSTANCE_COUNT": "two"})
    assert linear.capture_bucket == CAPTURE_BUCKET
    assert versioned_baseline_key(ENDPOINT, 7) == (
        f"baselines/{ENDPOINT}/versions/7/drift_baseline.json"
    )


def test_a_lost_notice_does_not_fail_the_deployment(aws: dict[str, Any]) -> None:
    missing_topic = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:no-such-topic"
    settings = DeployerSettings.from_env({**deployer_env(), "SNS_TOPIC_ARN": missing_topic})
    registry = aws["registry"]

    outcome = handle_state_change(
        registry.set_status(registry.register(), "Approved"), settings, aws["clients"]
    )

    assert outcome.action == DEPLOYING
    assert serving(aws)[TAG_MODEL_VERSION] == "1"
