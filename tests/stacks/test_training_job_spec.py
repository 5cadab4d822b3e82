"""The two ways a training job starts agree: the launcher's request and the pipeline's task.

Both are built from ``training/job_spec.py``; this compares what each actually sends (the
launcher's CreateTrainingJob request captured against moto, the synthesized state machine's
Train state) field by field, the data key and the network settings included. Where the
pipeline holds a CloudFormation reference (rendered ``<ref>``) or a run-time value, any text
matches there and the rest must be equal.
"""

from __future__ import annotations

import ast
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks.components import training_pipeline as tp
from stacks.packaging import TRAINING_PACKAGES
from stacks.training_source import build_training_source_archive
from tests.stacks.conftest import Synthesized, only, state_machine_definition
from tests.training.test_training_launch import REGION, protection, send
from training import job_spec
from training.launch import LaunchConfig

SOURCE = "sagemaker_submit_directory"
#: What a reference or a ``${AWS::...}`` substitution stands for.
_PLACEHOLDER = re.compile(r"<ref>|\$\{[^}]+\}")


def _matches(pipeline: str, launcher: str) -> bool:
    parts = [re.escape(part) for part in _PLACEHOLDER.split(pipeline)]
    return re.fullmatch(".+".join(parts), launcher) is not None


@pytest.fixture(scope="module")
def launched(dev: Synthesized) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(launcher request, pipeline Train parameters) for the dev stage."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "SAGEMAKER_VALIDATE_ROLE": "false",
        }.items():
            monkeypatch.setenv(name, value)
        yield _launch(dev)


def _launch(dev: Synthesized) -> tuple[dict[str, Any], dict[str, Any]]:
    pipeline = state_machine_definition(dev["TrainingPipeline"])["States"][tp.TRAIN]["Parameters"]
    project = only(dev["TrainingPipeline"], "AWS::CodeBuild::Project")
    tag = next(
        v["Value"]
        for v in project["Environment"]["EnvironmentVariables"]
        if v["Name"] == "TRAINING_IMAGE_TAG"
    )
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="artifacts")
        role = boto3.client("iam").create_role(RoleName="training", AssumeRolePolicyDocument="{}")
        config = LaunchConfig.for_stage(
            "dev",
            region=REGION,
            role_arn=role["Role"]["Arn"],
            image_uri=f"123456789012.dkr.ecr.{REGION}.amazonaws.com/readmission-dev-training:{tag}",
            data_s3_uri="s3://curated/features",
            protected_s3_uri="s3://curated/protected",
            output_s3_uri="s3://artifacts/training",
            checkpoint_s3_uri="s3://artifacts/training/manual-1/checkpoints/",
            **protection(),
        )
        request, _ = send(config)
        archive = _channel(request, job_spec.CODE_CHANNEL)
        bucket, _, key = archive.removeprefix("s3://").partition("/")
        body = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"]
        request["_archive_bytes"] = body.read()
        return request, pipeline


def _channel(spec: dict[str, Any], name: str) -> str:
    """The S3 URI of a request's input channel."""
    [uri] = [
        c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in spec["InputDataConfig"]
        if c["ChannelName"] == name
    ]
    return str(uri)


def test_hyperparameters_and_distribution_agree(
    launched: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    request, pipeline = launched
    assert set(request["HyperParameters"]) == set(pipeline["HyperParameters"])
    for name, value in pipeline["HyperParameters"].items():
        if name == SOURCE:
            continue  # the archives are named differently; the bytes are compared below
        assert _matches(value, request["HyperParameters"][name]), name
    for hyper in (request["HyperParameters"], pipeline["HyperParameters"]):
        # The local copy of the code channel (an isolated container cannot download).
        assert hyper[SOURCE].startswith(f"{job_spec.CONTAINER_INPUT_DIR}/{job_spec.CODE_CHANNEL}/")
        assert hyper[SOURCE].endswith(".gz")  # the toolkit opens it as a gzip'd tar
    # torchrun through the toolkit, on the same entry script, in both.
    assert pipeline["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    assert pipeline["HyperParameters"]["sagemaker_program"] == "training/train.py"


def test_environment_metrics_stopping_and_checkpoints_agree(
    launched: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    request, pipeline = launched
    assert request["Environment"] == pipeline["Environment"]
    assert (
        request["AlgorithmSpecification"]["MetricDefinitions"]
        == pipeline["AlgorithmSpecification"]["MetricDefinitions"]
    )
    assert request["StoppingCondition"] == pipeline["StoppingCondition"]
    assert request["EnableManagedSpotTraining"] == pipeline["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"]["LocalPath"] == pipeline["CheckpointConfig"]["LocalPath"]
    # Same layout: <output>/<job name>/checkpoints/ (the pipeline formats the name per run).
    pattern = re.search(r"'(.+)'", pipeline["CheckpointConfig"]["S3Uri.$"])
    assert pattern is not None
    formatted = pattern.group(1).replace("{}", "manual-1")
    assert _matches(formatted, request["CheckpointConfig"]["S3Uri"])


def test_image_compute_and_channels_agree(
    launched: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    request, pipeline = launched
    assert _matches(
        pipeline["AlgorithmSpecification"]["TrainingImage"],
        request["AlgorithmSpecification"]["TrainingImage"],
    )
    assert set(request["ResourceConfig"]) == set(pipeline["ResourceConfig"])
    for name in ("InstanceType", "InstanceCount", "VolumeSizeInGB"):
        assert request["ResourceConfig"][name] == pipeline["ResourceConfig"][name], name

    def channels(spec: dict[str, Any]) -> dict[str, str]:
        return {
            c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
            for c in spec["InputDataConfig"]
        }

    ours, theirs = channels(request), channels(pipeline)
    assert list(ours) == list(theirs)
    for name, uri in theirs.items():
        if name == job_spec.CODE_CHANNEL:
            continue  # the source archive, uploaded to different places: bytes compared below
        assert _matches(uri, ours[name]), name


def test_both_ship_the_same_source_archive(
    launched: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    request, _ = launched
    archive = build_training_source_archive(tmp_path)
    assert request["_archive_bytes"] == archive.read_bytes()
    with tarfile.open(archive, "r:gz") as tar:
        assert "requirements.txt" not in tar.getnames()


def test_encryption_and_network_agree(
    launched: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    request, pipeline = launched
    for spec in (request, pipeline):
        # One key (the data key) for the model output and the instances' volumes.
        assert spec["OutputDataConfig"]["KmsKeyId"] == spec["ResourceConfig"]["VolumeKmsKeyId"]
        assert spec["OutputDataConfig"]["CompressionType"] == "GZIP"
        assert spec["EnableInterContainerTrafficEncryption"] is True
        assert spec["EnableNetworkIsolation"] is True
    assert set(request["OutputDataConfig"]) == set(pipeline["OutputDataConfig"])
    for name, value in pipeline["OutputDataConfig"].items():
        assert _matches(value, request["OutputDataConfig"][name]), name
    assert _matches(
        pipeline["ResourceConfig"]["VolumeKmsKeyId"], request["ResourceConfig"]["VolumeKmsKeyId"]
    )
    assert (
        set(request["VpcConfig"])
        == set(pipeline["VpcConfig"])
        == {
            "Subnets",
            "SecurityGroupIds",
        }
    )
    for name, ids in pipeline["VpcConfig"].items():
        assert len(request["VpcConfig"][name]) == len(ids), name  # two subnets, one group
        for theirs, ours in zip(ids, request["VpcConfig"][name], strict=True):
            assert _matches(theirs, ours), name


def test_the_requests_set_the_same_fields(
    launched: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """No setting of one request is missing from the other (names as the API spells them)."""
    request, pipeline = launched
    ours = {name for name in request if not name.startswith("_")}
    theirs = {name.removesuffix(".$") for name in pipeline}
    # Only the launcher tags its job (project, stage): the pipeline's are known by name prefix.
    assert ours - theirs == {"Tags"}
    assert theirs - ours == set()


def test_each_isolated_job_unpacks_the_archive_its_code_channel_brings(
    launched: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The toolkit's ``sagemaker_submit_directory`` is the file the ``code`` channel's object
    lands as (its key's last part), in both requests."""
    for spec in launched:
        uri = _channel(spec, job_spec.CODE_CHANNEL)
        name = uri.rsplit("/", 1)[-1]
        assert spec["HyperParameters"][SOURCE] == job_spec.container_source_path(name)
        assert spec["EnableNetworkIsolation"] is True


@pytest.mark.parametrize("name", ["", "a/b.tar.gz", "..", "/abs.tar.gz"])
def test_the_archive_must_be_a_plain_file_name(name: str) -> None:
    with pytest.raises(ValueError, match="file name"):
        job_spec.container_source_path(name)


@pytest.mark.parametrize("value", ["bert-base-uncased", "emilyalsentzer/Bio_ClinicalBERT"])
def test_settings_that_download_are_refused_for_an_isolated_job(value: str) -> None:
    with pytest.raises(ValueError, match="network-isolated") as refused:
        job_spec.hyperparameters("s.tar.gz", REGION, {"pretrained_code_encoder": value})
    assert value not in str(refused.value)
    # Empty means "no hub encoder" (the default), which needs no network.
    assert job_spec.hyperparameters("s.tar.gz", REGION, {"pretrained_code_encoder": ""})


#: Client libraries that would reach the network (or AWS) from inside the training container,
#: where an isolated job has neither a route nor credentials.
NETWORK_CLIENTS = {
    "boto3",
    "botocore",
    "requests",
    "urllib3",
    "httpx",
    "aiohttp",
    "huggingface_hub",
    "sagemaker",
    "urllib.request",
    "http.client",
    "ftplib",
    "smtplib",
    "socket",
}


#: Modules of the archive that the training container never runs: the launcher runs on an
#: operator's machine, and the endpoint server (which binds a listening socket, and calls
#: nothing out) travels in the archive only because the model's code/ folder is copied from
#: it for the serving image.
NOT_RUN_IN_TRAINING = {"training/launch.py", "inference/serve.py"}


def test_the_training_source_imports_no_network_client(tmp_path: Path) -> None:
    """What the isolated container runs (the archive's packages) imports nothing that calls
    out; what it never runs (``NOT_RUN_IN_TRAINING``) is the exception."""
    archive = build_training_source_archive(tmp_path)
    with tarfile.open(archive, "r:gz") as tar:
        sources = {
            member.name: tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile() and member.name.endswith(".py")
        }
    assert {name.split("/")[0] for name in sources} == set(TRAINING_PACKAGES)
    offending = []
    for name, text in sources.items():
        if name in NOT_RUN_IN_TRAINING:
            continue
        for node in ast.walk(ast.parse(text)):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for module in modules:
                parts = module.split(".")
                if any(".".join(parts[: i + 1]) in NETWORK_CLIENTS for i in range(len(parts))):
                    offending.append(f"{name}: {module}")
    assert not offending, offending
