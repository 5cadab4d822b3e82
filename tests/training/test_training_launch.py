"""The launcher's CreateTrainingJob request, sent to moto: p3.8xlarge, the count, torchrun."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from training.launch import (
    CONTAINER_CODE_DIR,
    ENTRY_SCRIPT,
    FRAMEWORK_VERSION,
    LaunchConfig,
    launch,
    parse_args,
)
from training.metrics import METRIC_DEFINITIONS

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "SAGEMAKER_VALIDATE_ROLE": "false",  # moto has no iam:SimulatePrincipalPolicy
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="etl")
        role = boto3.client("iam").create_role(RoleName="training", AssumeRolePolicyDocument="{}")
        yield {"role_arn": role["Role"]["Arn"]}


def _send(config: LaunchConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Launch against moto; return the captured request and the described job."""
    from sagemaker.core.helper.session_helper import Session

    boto_session = boto3.Session(region_name=REGION)
    captured: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.update(params)

    boto_session.events.register("provide-client-params.sagemaker.CreateTrainingJob", capture)
    name = launch(config, Session(boto_session=boto_session))
    described = boto3.client("sagemaker", region_name=REGION).describe_training_job(
        TrainingJobName=name
    )
    return captured, described


def _drivers_object(request: dict[str, Any], file_name: str) -> str:
    channel = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "sm_drivers")
    uri = channel["DataSource"]["S3DataSource"]["S3Uri"].removeprefix("s3://")
    bucket, _, prefix = uri.partition("/")
    s3 = boto3.client("s3", region_name=REGION)
    key = f"{prefix.rstrip('/')}/{file_name}"
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def test_prod_request_runs_torchrun_on_the_requested_p3_instances(aws: dict[str, Any]) -> None:
    config = LaunchConfig.for_stage(
        "prod",
        region=REGION,
        role_arn=aws["role_arn"],
        data_s3_uri="s3://etl/uci/features",
        protected_s3_uri="s3://etl/uci/protected",
        output_s3_uri="s3://etl/models",
        instance_count=3,
        hyperparameters={"epochs": 5, "batch_size": 512},
    )
    request, described = _send(config)
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.8xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 3
    assert described["ResourceConfig"]["InstanceCount"] == 3
    image = request["AlgorithmSpecification"]["TrainingImage"]
    assert (
        image == f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch-training:"
        f"{FRAMEWORK_VERSION}-gpu-py312"
    )
    assert request["HyperParameters"] == {"epochs": "5", "batch_size": "512"}
    assert request["Environment"]["PYTHONPATH"] == CONTAINER_CODE_DIR
    assert [d["Name"] for d in request["AlgorithmSpecification"]["MetricDefinitions"]] == [
        d["Name"] for d in METRIC_DEFINITIONS
    ]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in request["InputDataConfig"]
    }
    assert channels["train"] == "s3://etl/uci/features/split=train/"
    assert channels["test"] == "s3://etl/uci/features/split=test/"
    assert channels["protected"] == "s3://etl/uci/protected/split=test/"
    assert {"code", "sm_drivers", "validation"} <= set(channels)
    assert request.get("EnableManagedSpotTraining") is False
    # The container's bootstrap runs the SDK's torchrun driver on our entry script.
    train_script = _drivers_object(request, "sm_train.sh")
    assert "torchrun_driver.py" in train_script
    source = json.loads(_drivers_object(request, "sourcecode.json"))
    assert source["entry_script"] == ENTRY_SCRIPT
    assert json.loads(_drivers_object(request, "distributed.json")) == {
        "process_count_per_node": None,
        "smp": None,
    }


def test_dev_request_uses_spot_with_checkpoints(aws: dict[str, Any]) -> None:
    config = parse_args(
        [
            "--stage", "dev", "--region", REGION, "--role-arn", aws["role_arn"],
            "--data-s3-uri", "s3://etl/uci/features", "--output-s3-uri", "s3://etl/models",
            "--checkpoint-s3-uri", "s3://etl/checkpoints",
        ]
    )  # fmt: skip
    request, _ = _send(config)
    assert request["EnableManagedSpotTraining"] is True
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://etl/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    stopping = request["StoppingCondition"]
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"]


def test_spot_without_checkpoints_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint_s3_uri"):
        LaunchConfig.for_stage(
            "dev",
            region=REGION,
            role_arn="arn:aws:iam::123456789012:role/x",
            data_s3_uri="s3://etl/f",
            output_s3_uri="s3://etl/m",
        )
