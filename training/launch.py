"""Start the training job in SageMaker: ``python -m training.launch --stage dev|prod ...``.

The manual twin of the pipeline's training step: the same derived training image (built by
the TrainingPipeline stack's CodeBuild project, stack output ``TrainingImageUri``), the same
deterministic ``sourcedir.tar.gz``, and the hyperparameters, environment, metric definitions,
stopping condition and checkpoint settings of :mod:`training.job_spec`, and the same
protection: output and volumes under the data key (``--kms-key-id``), the private subnets
(``--subnet-ids``, ``--security-group-ids``), encrypted traffic between instances, network
isolation (the archive reaches the container as the ``code`` channel). A launch
without a key or without the subnets is refused unless ``--allow-aws-managed-key`` or
``--allow-no-vpc`` says so. The stage's compute comes from ``cdk.json``, as the stack's
does. Built on the SageMaker SDK v3's ``TrainingJob`` resource (``sagemaker-core``) in
bring-your-own-container mode: the image's training toolkit runs ``training/train.py`` under
torchrun on every GPU of every instance. ``training_job_request`` is pure (the request from
:mod:`training.job_spec`'s parts), which lets the tests check it and drive it against moto.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_config.stage import load_stage_config
from training import job_spec
from training.source_archive import build_training_source_archive

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_CONFIG = REPO_ROOT / "cdk.json"
BASE_JOB_NAME = "readmission-train"
SOURCE_ARCHIVE = "sourcedir.tar.gz"
#: ``<account>.dkr.ecr.<region>.<suffix>/<repository>:<tag>``: a private ECR image, by tag.
ECR_IMAGE_PATTERN = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*:[\w][\w.-]{0,127}$"
)
SECONDS_PER_HOUR = 3600
#: A KMS key ARN, alias ARN, key id or alias name (what SageMaker's ``KmsKeyId`` accepts).
KMS_KEY_PATTERN = re.compile(
    r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[\w-]+|alias/[\w/-]+)"
    r"|(mrk-)?[0-9a-f]{32}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|alias/[\w/-]+)$"
)
SUBNET_PATTERN = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP_PATTERN = re.compile(r"^sg-[0-9a-f]{8,17}$")
#: CreateTrainingJob's limits on ``VpcConfig``.
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5

# Kept importable from here for existing callers; job_spec is the source.
FRAMEWORK_VERSION = job_spec.FRAMEWORK_VERSION
PY_VERSION = job_spec.PY_VERSION
ENTRY_SCRIPT = job_spec.ENTRY_SCRIPT
CONTAINER_CHECKPOINT_DIR = job_spec.CONTAINER_CHECKPOINT_DIR


@dataclass(frozen=True)
class StageDefaults:
    """A stage's training compute, as ``cdk.json`` configures it for the pipeline."""

    instance_type: str
    instance_count: int
    use_spot: bool
    max_run_seconds: int
    alert_budget: float


def stage_defaults(path: Path = CDK_CONFIG) -> dict[str, StageDefaults]:
    """Every stage's training compute, read and validated as the stacks read it."""
    context = json.loads(path.read_text())["context"]
    defaults = {}
    for name in context["stages"]:
        training = load_stage_config(context, name).training
        defaults[name] = StageDefaults(
            instance_type=training.instance_type,
            instance_count=training.instance_count,
            use_spot=training.use_spot,
            max_run_seconds=training.max_runtime_hours * SECONDS_PER_HOUR,
            alert_budget=training.alert_budget,
        )
    return defaults


STAGES: dict[str, StageDefaults] = stage_defaults()


@dataclass(frozen=True)
class LaunchConfig:
    """Everything one training job needs; validated on construction."""

    stage: str
    region: str
    role_arn: str
    image_uri: str  # the derived training image (stack output TrainingImageUri)
    data_s3_uri: str  # the ETL output's features/ prefix (holding split=train|validation|test)
    output_s3_uri: str
    instance_type: str
    instance_count: int
    use_spot: bool
    max_run_seconds: int
    protected_s3_uri: str = ""  # the ETL output's protected/ prefix, for subgroup metrics
    checkpoint_s3_uri: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    volume_size_gb: int = job_spec.TRAINING_VOLUME_GB
    base_job_name: str = BASE_JOB_NAME
    kms_key_id: str = ""  # the data key (stack output DataKeyArn): output and volumes
    subnet_ids: tuple[str, ...] = ()  # the private subnets the pipeline trains in
    security_group_ids: tuple[str, ...] = ()  # the workload security group
    allow_aws_managed_key: bool = False  # explicitly launch without kms_key_id
    allow_no_vpc: bool = False  # explicitly launch outside the VPC

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {sorted(STAGES)}")
        for name in ("data_s3_uri", "output_s3_uri"):
            if not getattr(self, name).startswith("s3://"):
                raise ValueError(f"{name} must be an s3:// URI")
        for name in ("protected_s3_uri", "checkpoint_s3_uri"):
            value = getattr(self, name)
            if value and not value.startswith("s3://"):
                raise ValueError(f"{name} must be an s3:// URI")
        if not self.role_arn.startswith("arn:"):
            raise ValueError("role_arn must be an IAM role ARN")
        if not ECR_IMAGE_PATTERN.match(self.image_uri):
            raise ValueError("image_uri must be a private ECR image with a tag")
        if self.instance_count < 1 or self.max_run_seconds < 60:
            raise ValueError("instance_count must be >= 1 and max_run_seconds >= 60")
        if self.use_spot and not self.checkpoint_s3_uri:
            raise ValueError("spot training needs checkpoint_s3_uri so that it can resume")
        # Fails here, not in SageMaker, on a reserved (sagemaker_*) name.
        job_spec.hyperparameters(SOURCE_ARCHIVE, self.region, self.hyperparameters)
        self._check_protection()

    def _check_protection(self) -> None:
        """The pipeline's key and subnets, or an explicit opt-out (values never quoted)."""
        if self.kms_key_id and self.allow_aws_managed_key:
            raise ValueError("give kms_key_id or allow_aws_managed_key, not both")
        if not self.kms_key_id and not self.allow_aws_managed_key:
            raise ValueError(
                "kms_key_id (--kms-key-id) is required: the job reads patient data, so its "
                "output and volumes are encrypted with the data key (stack output "
                f"Readmission-{self.stage}-DataLake.DataKeyArn) as the pipeline's are; pass "
                "--allow-aws-managed-key to launch with SageMaker's default keys instead"
            )
        if self.kms_key_id and not KMS_KEY_PATTERN.match(self.kms_key_id):
            raise ValueError("kms_key_id must be a KMS key ARN, alias ARN, key id or alias name")
        vpc = bool(self.subnet_ids or self.security_group_ids)
        if vpc and self.allow_no_vpc:
            raise ValueError("give subnet_ids and security_group_ids or allow_no_vpc, not both")
        if not vpc and not self.allow_no_vpc:
            raise ValueError(
                "subnet_ids (--subnet-ids) and security_group_ids (--security-group-ids) are "
                "required: the pipeline trains in the stage's private subnets, with no route to "
                "the internet; pass --allow-no-vpc to launch outside the VPC instead"
            )
        if vpc and not (self.subnet_ids and self.security_group_ids):
            raise ValueError("subnet_ids and security_group_ids go together")
        for name, pattern, form, limit in (
            ("subnet_ids", SUBNET_PATTERN, "subnet-<hex>", MAX_SUBNETS),
            ("security_group_ids", SECURITY_GROUP_PATTERN, "sg-<hex>", MAX_SECURITY_GROUPS),
        ):
            values = getattr(self, name)
            if not isinstance(values, tuple):
                raise ValueError(f"{name} must be a tuple of ids")
            if len(values) > limit or not all(pattern.match(value) for value in values):
                raise ValueError(f"{name} must be at most {limit} ids of the form {form}")

    @classmethod
    def for_stage(cls, stage: str, **overrides: Any) -> LaunchConfig:
        """The stage's defaults with explicit (non-``None``) overrides."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {sorted(STAGES)}")
        defaults = STAGES[stage]
        values: dict[str, Any] = {
            "instance_type": defaults.instance_type,
            "instance_count": defaults.instance_count,
            "use_spot": defaults.use_spot,
            "max_run_seconds": defaults.max_run_seconds,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        # The stage's settings (its alert budget) under any explicit hyperparameter.
        values["hyperparameters"] = {
            **job_spec.stage_hyperparameters(defaults.alert_budget),
            **dict(values.get("hyperparameters") or {}),
        }
        return cls(stage=stage, **values)


def build_source_archive(build_root: Path) -> Path:
    """The pipeline's deterministic ``sourcedir.tar.gz`` (same packer, same bytes)."""
    return build_training_source_archive(build_root)


def source_location(output_s3_uri: str, archive: Path) -> tuple[str, str]:
    """``(bucket, key)`` for the archive: content-addressed under the output prefix."""
    bucket, _, prefix = output_s3_uri.removeprefix("s3://").partition("/")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    folder = f"{prefix.rstrip('/')}/source/{digest}" if prefix.strip("/") else f"source/{digest}"
    return bucket, f"{folder}/{SOURCE_ARCHIVE}"


def upload_source(s3: Any, output_s3_uri: str, archive: Path, kms_key_id: str = "") -> str:
    """Upload the archive and return its ``s3://`` URI.

    Encrypted with the job's key when there is one, else with the bucket's default key.
    """
    bucket, key = source_location(output_s3_uri, archive)
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else None
    s3.upload_file(str(archive), bucket, key, ExtraArgs=extra)
    return f"s3://{bucket}/{key}"


def _s3_channel(name: str, s3_uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": s3_uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def input_channels(config: LaunchConfig, source_uri: str) -> list[dict[str, Any]]:
    """The train/validation/test channels (and protected attributes for subgroup metrics),
    and the source archive's ``code`` channel (the isolated container cannot download it)."""
    features = config.data_s3_uri.rstrip("/")
    channels = [
        _s3_channel(split, f"{features}/split={split}/")
        for split in ("train", "validation", "test")
    ]
    if config.protected_s3_uri:
        protected = config.protected_s3_uri.rstrip("/")
        channels.append(_s3_channel("protected", f"{protected}/split=test/"))
    channels.append(job_spec.code_channel(source_uri))
    return channels


def training_job_request(config: LaunchConfig, source_uri: str, job_name: str) -> dict[str, Any]:
    """The CreateTrainingJob request of one job, assembled from :mod:`training.job_spec` (the
    pipeline's training state takes its parts from there too)."""
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "RoleArn": config.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": config.image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": job_spec.metric_definitions(),
        },
        "HyperParameters": job_spec.hyperparameters(
            SOURCE_ARCHIVE, config.region, config.hyperparameters
        ),
        "Environment": job_spec.environment(),
        "InputDataConfig": input_channels(config, source_uri),
        "OutputDataConfig": job_spec.output_data_config(config.output_s3_uri, config.kms_key_id),
        "ResourceConfig": job_spec.resource_config(
            config.instance_type, config.instance_count, config.kms_key_id, config.volume_size_gb
        ),
        "StoppingCondition": job_spec.stopping_condition(config.max_run_seconds, config.use_spot),
        "EnableManagedSpotTraining": config.use_spot,
        **job_spec.network_config(config.subnet_ids, config.security_group_ids),
        "Tags": [
            {"Key": "project", "Value": "readmission"},
            {"Key": "stage", "Value": config.stage},
        ],
    }
    if config.checkpoint_s3_uri:
        request["CheckpointConfig"] = job_spec.checkpoint_config(config.checkpoint_s3_uri)
    return request


def launch(config: LaunchConfig, session: Any, wait: bool = False) -> str:
    """Upload the source archive, start the job and return its name.

    ``session`` is the SageMaker SDK's session (``sagemaker.core.helper.session_helper``);
    the job is created with the SDK's ``TrainingJob`` resource (``sagemaker-core``).
    """
    from sagemaker.core.common_utils import name_from_base
    from sagemaker.core.resources import TrainingJob
    from sagemaker.core.utils.utils import transform

    with tempfile.TemporaryDirectory(prefix="readmission-source-") as tmp:
        archive = build_source_archive(Path(tmp))
        s3 = session.boto_session.client("s3")
        source_uri = upload_source(s3, config.output_s3_uri, archive, config.kms_key_id)
    name = name_from_base(f"{config.base_job_name}-{config.stage}")
    request = training_job_request(config, source_uri, name)
    # The SDK's own mapping of the API's shapes onto its arguments (maps keep their keys).
    arguments = transform(request, "CreateTrainingJobRequest")
    job = TrainingJob.create(**arguments, session=session.boto_session, region=config.region)
    if wait:
        job.wait(logs=True)
    return str(job.training_job_name)


def _ids(text: str) -> tuple[str, ...]:
    """``a,b`` or ``a b`` (as ``aws ... --output text`` prints them) as a tuple."""
    return tuple(part for part in re.split(r"[\s,]+", text) if part)


def parse_args(argv: Sequence[str] | None = None) -> LaunchConfig:
    parser = argparse.ArgumentParser(prog="python -m training.launch", description=__doc__)
    parser.add_argument("--stage", required=True, choices=sorted(STAGES))
    parser.add_argument("--region", required=True)
    parser.add_argument("--role-arn", required=True)
    parser.add_argument(
        "--image-uri", required=True, help="stack output Readmission-<stage>-TrainingPipeline."
        "TrainingImageUri"
    )  # fmt: skip
    parser.add_argument("--data-s3-uri", required=True)
    parser.add_argument("--output-s3-uri", required=True)
    parser.add_argument("--protected-s3-uri", default="")
    parser.add_argument("--checkpoint-s3-uri", default="")
    parser.add_argument("--instance-type")
    parser.add_argument("--instance-count", type=int)
    parser.add_argument(
        "--spot", dest="use_spot", action=argparse.BooleanOptionalAction, default=None
    )
    parser.add_argument("--max-run-seconds", type=int)
    parser.add_argument("--hyperparameters", default="{}", help="JSON object")
    parser.add_argument(
        "--kms-key-id", default="", help="stack output Readmission-<stage>-DataLake.DataKeyArn"
    )
    parser.add_argument(
        "--subnet-ids", type=_ids, default=(), help="the private subnets (commas or spaces)"
    )
    parser.add_argument(
        "--security-group-ids", type=_ids, default=(), help="the workload security group"
    )
    parser.add_argument(
        "--allow-aws-managed-key", action="store_true", help="launch without --kms-key-id"
    )
    parser.add_argument("--allow-no-vpc", action="store_true", help="launch outside the VPC")
    parser.add_argument("--wait", action="store_true")
    args = vars(parser.parse_args(argv))
    args.pop("wait")
    hyperparameters = json.loads(args.pop("hyperparameters"))
    if not isinstance(hyperparameters, dict):
        raise ValueError("--hyperparameters must be a JSON object")
    return LaunchConfig.for_stage(args.pop("stage"), hyperparameters=hyperparameters, **args)


def main(argv: Sequence[str] | None = None) -> str:
    import boto3
    from sagemaker.core.helper.session_helper import Session

    config = parse_args(argv)
    wait = bool(argv and "--wait" in argv)
    session = Session(boto_session=boto3.Session(region_name=config.region))
    name = launch(config, session, wait=wait)
    print(f"started training job {name}")
    return name


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
