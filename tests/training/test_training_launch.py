"""The launcher's CreateTrainingJob request, sent to moto: the derived image, the stage's
compute from cdk.json, torchrun through the toolkit, the uploaded source archive."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from training import job_spec
from training.launch import (
    CDK_CONFIG,
    STAGES,
    LaunchConfig,
    launch,
    parse_args,
)

REGION = "us-east-1"
IMAGE = (
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/readmission-prod-training:2.6.0-gpu-py312-0123"
)


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


def send(config: LaunchConfig) -> tuple[dict[str, Any], dict[str, Any]]:
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


def test_stage_defaults_are_the_stacks_training_config() -> None:
    stages = json.loads(CDK_CONFIG.read_text())["context"]["stages"]
    for name, defaults in STAGES.items():
        training = stages[name]["training"]
        assert defaults.instance_type == training["instance_type"]
        assert defaults.instance_count == training["instance_count"]
        assert defaults.use_spot is training["use_spot"]
        assert defaults.max_run_seconds == training["max_runtime_hours"] * 3600
    assert (STAGES["dev"].instance_count, STAGES["prod"].instance_count) == (1, 4)


def test_prod_request_runs_torchrun_on_the_derived_image(aws: dict[str, Any]) -> None:
    config = LaunchConfig.for_stage(
        "prod",
        region=REGION,
        role_arn=aws["role_arn"],
        image_uri=IMAGE,
        data_s3_uri="s3://etl/uci/features",
        protected_s3_uri="s3://etl/uci/protected",
        output_s3_uri="s3://etl/models",
        instance_count=3,
        hyperparameters={"epochs": 5, "batch_size": 512, "use_notes": False},
    )
    request, described = send(config)
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.8xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 3
    assert described["ResourceConfig"]["InstanceCount"] == 3
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    # The image's own toolkit entry point runs the job (no SDK driver scripts).
    assert "ContainerEntrypoint" not in algorithm
    hyper = request["HyperParameters"]
    source_uri = hyper["sagemaker_submit_directory"]
    assert hyper == {
        "sagemaker_program": "training/train.py",
        "sagemaker_submit_directory": source_uri,
        "sagemaker_torch_distributed_enabled": "true",
        "sagemaker_region": REGION,
        "sagemaker_container_log_level": "20",
        "epochs": "5",
        "batch_size": "512",
        "use_notes": "false",
    }
    assert request["Environment"] == {
        "PYTHONPATH": "/opt/ml/code",
        "SM_CHECKPOINT_DIR": "/opt/ml/checkpoints",
    }
    assert algorithm["MetricDefinitions"] == job_spec.metric_definitions()
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in request["InputDataConfig"]
    }
    assert channels == {
        "train": "s3://etl/uci/features/split=train/",
        "validation": "s3://etl/uci/features/split=validation/",
        "test": "s3://etl/uci/features/split=test/",
        "protected": "s3://etl/uci/protected/split=test/",
    }
    assert request.get("EnableManagedSpotTraining") is False
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 8 * 3600}
    # The archive the toolkit downloads is uploaded, content-addressed, under the output path.
    bucket, _, key = source_uri.removeprefix("s3://").partition("/")
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256(body.read()).hexdigest()
    assert source_uri == f"s3://etl/models/source/{digest[:16]}/sourcedir.tar.gz"


def test_dev_request_uses_spot_with_checkpoints(aws: dict[str, Any]) -> None:
    config = parse_args(
        [
            "--stage", "dev", "--region", REGION, "--role-arn", aws["role_arn"],
            "--image-uri", IMAGE, "--data-s3-uri", "s3://etl/uci/features",
            "--output-s3-uri", "s3://etl/models", "--checkpoint-s3-uri", "s3://etl/checkpoints",
        ]
    )  # fmt: skip
    request, _ = send(config)
    assert request["EnableManagedSpotTraining"] is True
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://etl/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 4 * 3600,
        "MaxWaitTimeInSeconds": 8 * 3600,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "checkpoint_s3_uri"),
        ({"checkpoint_s3_uri": "s3://etl/c", "image_uri": "pytorch-training:2.6"}, "image_uri"),
        (
            {"checkpoint_s3_uri": "s3://etl/c", "hyperparameters": {"sagemaker_program": "x"}},
            "toolkit settings",
        ),
    ],
)
def test_bad_launch_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "region": REGION,
        "role_arn": "arn:aws:iam::123456789012:role/x",
        "image_uri": IMAGE,
        "data_s3_uri": "s3://etl/f",
        "output_s3_uri": "s3://etl/m",
    }
    with pytest.raises(ValueError, match=message):
        LaunchConfig.for_stage("dev", **{**values, **overrides})
