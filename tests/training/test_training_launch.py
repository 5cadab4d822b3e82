"""The launcher's CreateTrainingJob request, sent to moto: the derived image, the stage's
compute from cdk.json, torchrun through the toolkit, the uploaded source archive, the data
key on output and volumes, the private subnets; and the refusals without them."""

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
        yield {"role_arn": role["Role"]["Arn"], **protection()}


def protection() -> dict[str, Any]:
    """A moto KMS key, two subnets and a security group, as LaunchConfig takes them."""
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i * 4}.0/22")["Subnet"]["SubnetId"]
        for i in range(2)
    )
    group = ec2.create_security_group(GroupName="workloads", Description="w", VpcId=vpc)
    return {
        "kms_key_id": key,
        "subnet_ids": subnets,
        "security_group_ids": (group["GroupId"],),
    }


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


def _channels(request: dict[str, Any]) -> dict[str, str]:
    """Input channel name -> S3 URI."""
    return {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in request["InputDataConfig"]
    }


def test_stage_defaults_are_the_stacks_training_config() -> None:
    stages = json.loads(CDK_CONFIG.read_text())["context"]["stages"]
    for name, defaults in STAGES.items():
        training = stages[name]["training"]
        assert defaults.instance_type == training["instance_type"]
        assert defaults.instance_count == training["instance_count"]
        assert defaults.use_spot is training["use_spot"]
        assert defaults.max_run_seconds == training["max_runtime_hours"] * 3600
        assert defaults.alert_budget == training["alert_budget"]
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
        kms_key_id=aws["kms_key_id"],
        subnet_ids=aws["subnet_ids"],
        security_group_ids=aws["security_group_ids"],
    )
    request, described = send(config)
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.p3.8xlarge",
        "InstanceCount": 3,
        "VolumeSizeInGB": 50,
        "VolumeKmsKeyId": aws["kms_key_id"],
    }
    assert described["ResourceConfig"]["InstanceCount"] == 3
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    # The image's own toolkit entry point runs the job (no SDK driver scripts).
    assert "ContainerEntrypoint" not in algorithm
    hyper = request["HyperParameters"]
    source_uri = _channels(request)["code"]
    assert hyper == {
        "sagemaker_program": "training/train.py",
        # The isolated container cannot download: the toolkit unpacks the code channel's copy.
        "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz",
        "sagemaker_torch_distributed_enabled": "true",
        "sagemaker_region": REGION,
        "sagemaker_container_log_level": "20",
        "epochs": "5",
        "batch_size": "512",
        "use_notes": "false",
        "alert_budget": "0.1",  # the stage's (cdk.json), as the pipeline passes it
    }
    assert request["Environment"] == {
        "PYTHONPATH": "/opt/ml/code",
        "SM_CHECKPOINT_DIR": "/opt/ml/checkpoints",
    }
    assert algorithm["MetricDefinitions"] == job_spec.metric_definitions()
    assert _channels(request) == {
        "train": "s3://etl/uci/features/split=train/",
        "validation": "s3://etl/uci/features/split=validation/",
        "test": "s3://etl/uci/features/split=test/",
        "protected": "s3://etl/uci/protected/split=test/",
        "code": source_uri,
    }
    assert request.get("EnableManagedSpotTraining") is False
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 8 * 3600}
    # Locked down as the pipeline's job: the data key, the private subnets, encrypted NCCL.
    assert request["OutputDataConfig"] == {
        "S3OutputPath": "s3://etl/models",
        "KmsKeyId": aws["kms_key_id"],
        "CompressionType": "GZIP",
    }
    assert request["VpcConfig"] == {
        "Subnets": list(aws["subnet_ids"]),
        "SecurityGroupIds": list(aws["security_group_ids"]),
    }
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["EnableNetworkIsolation"] is True
    assert described["OutputDataConfig"]["KmsKeyId"] == aws["kms_key_id"]
    assert described["VpcConfig"]["Subnets"] == list(aws["subnet_ids"])
    # The archive SageMaker copies in is uploaded, content-addressed, under the output path,
    # encrypted with the job's key.
    bucket, _, key = source_uri.removeprefix("s3://").partition("/")
    stored = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)
    digest = hashlib.sha256(stored["Body"].read()).hexdigest()
    assert source_uri == f"s3://etl/models/source/{digest[:16]}/sourcedir.tar.gz"
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["SSEKMSKeyId"] == aws["kms_key_id"]


def test_dev_request_uses_spot_with_checkpoints(aws: dict[str, Any]) -> None:
    config = parse_args(
        [
            "--stage", "dev", "--region", REGION, "--role-arn", aws["role_arn"],
            "--image-uri", IMAGE, "--data-s3-uri", "s3://etl/uci/features",
            "--output-s3-uri", "s3://etl/models", "--checkpoint-s3-uri", "s3://etl/checkpoints",
            "--kms-key-id", aws["kms_key_id"], "--subnet-ids", ",".join(aws["subnet_ids"]),
            # As `aws ec2 describe-security-groups --output text` prints ids: tab-separated.
            "--security-group-ids", "\t".join(aws["security_group_ids"]),
        ]
    )  # fmt: skip
    assert config.subnet_ids == aws["subnet_ids"]
    request, _ = send(config)
    assert request["EnableManagedSpotTraining"] is True
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == aws["kms_key_id"]
    assert request["OutputDataConfig"]["KmsKeyId"] == aws["kms_key_id"]
    assert request["VpcConfig"]["Subnets"] == list(aws["subnet_ids"])
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://etl/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 4 * 3600,
        "MaxWaitTimeInSeconds": 8 * 3600,
    }


def test_explicit_opt_outs_launch_with_default_keys_outside_the_vpc(
    aws: dict[str, Any],
) -> None:
    config = parse_args(
        [
            "--stage", "prod", "--region", REGION, "--role-arn", aws["role_arn"],
            "--image-uri", IMAGE, "--data-s3-uri", "s3://etl/uci/features",
            "--output-s3-uri", "s3://etl/models", "--allow-aws-managed-key", "--allow-no-vpc",
        ]
    )  # fmt: skip
    request, _ = send(config)
    assert request["OutputDataConfig"] == {
        "S3OutputPath": "s3://etl/models",
        "CompressionType": "GZIP",
    }
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]
    assert "VpcConfig" not in request
    # Traffic between the instances stays encrypted either way.
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["EnableNetworkIsolation"] is True
    source = _channels(request)["code"]
    bucket, _, key = source.removeprefix("s3://").partition("/")
    stored = boto3.client("s3", region_name=REGION).head_object(Bucket=bucket, Key=key)
    assert "SSEKMSKeyId" not in stored


KEY = "arn:aws:kms:us-east-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab"
SUBNETS = ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")
GROUPS = ("sg-0123456789abcdef0",)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"checkpoint_s3_uri": ""}, "checkpoint_s3_uri"),
        ({"image_uri": "pytorch-training:2.6"}, "image_uri"),
        ({"hyperparameters": {"sagemaker_program": "x"}}, "toolkit settings"),
        # An isolated job cannot fetch a hub encoder: refused at launch, not hours later.
        ({"hyperparameters": {"pretrained_code_encoder": "bert-base"}}, "network-isolated"),
        ({"kms_key_id": ""}, r"kms_key_id \(--kms-key-id\) is required.+--allow-aws-managed-key"),
        ({"allow_aws_managed_key": True}, "kms_key_id or allow_aws_managed_key, not both"),
        ({"kms_key_id": "secret-key-9"}, "kms_key_id must be a KMS key ARN"),
        (
            {"subnet_ids": (), "security_group_ids": ()},
            r"subnet_ids \(--subnet-ids\) and security_group_ids .+ required.+--allow-no-vpc",
        ),
        ({"allow_no_vpc": True}, "or allow_no_vpc, not both"),
        ({"security_group_ids": ()}, "go together"),
        ({"subnet_ids": ("subnet-XYZ",)}, "subnet_ids must be at most 16 ids"),
        ({"subnet_ids": ["subnet-0123456789abcdef0"]}, "subnet_ids must be a tuple"),
        ({"security_group_ids": GROUPS * 6}, "security_group_ids must be at most 5 ids"),
    ],
)
def test_bad_launch_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "region": REGION,
        "role_arn": "arn:aws:iam::123456789012:role/x",
        "image_uri": IMAGE,
        "data_s3_uri": "s3://etl/f",
        "output_s3_uri": "s3://etl/m",
        "checkpoint_s3_uri": "s3://etl/c",
        "kms_key_id": KEY,
        "subnet_ids": SUBNETS,
        "security_group_ids": GROUPS,
    }
    LaunchConfig.for_stage("dev", **values)  # the baseline is valid
    with pytest.raises(ValueError, match=message) as refused:
        LaunchConfig.for_stage("dev", **{**values, **overrides})
    # The message names the field, never the value given.
    for value in ("secret-key-9", "subnet-XYZ"):
        assert value not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("subnet-0123456789abcdef0,subnet-0123456789abcdef1", SUBNETS),
        ("subnet-0123456789abcdef0\tsubnet-0123456789abcdef1\n", SUBNETS),
        (" subnet-0123456789abcdef0 , subnet-0123456789abcdef1", SUBNETS),
    ],
)
def test_id_lists_parse_as_the_aws_cli_prints_them(text: str, ids: tuple[str, ...]) -> None:
    config = parse_args(
        [
            "--stage", "prod", "--region", REGION, "--role-arn", "arn:aws:iam::1:role/x",
            "--image-uri", IMAGE, "--data-s3-uri", "s3://etl/f", "--output-s3-uri", "s3://etl/m",
            "--kms-key-id", "alias/readmission-prod-data", "--subnet-ids", text,
            "--security-group-ids", GROUPS[0],
        ]
    )  # fmt: skip
    assert config.subnet_ids == ids
    assert config.security_group_ids == GROUPS
    assert config.kms_key_id == "alias/readmission-prod-data"
