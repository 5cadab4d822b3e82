"""What every SageMaker training job of the project is, whoever starts it.

The Step Functions pipeline (``stacks/components/training_pipeline.py``) and the manual
launcher (``training/launch.py``) both start the job through the SageMaker training toolkit
of the PyTorch image: it unpacks ``sagemaker_submit_directory`` (the deterministic
``sourcedir.tar.gz``, copied in as the ``code`` channel) into ``/opt/ml/code`` and runs
``sagemaker_program`` under torchrun on every GPU of every instance. Both take the
hyperparameters, environment, metric definitions, stopping condition and checkpoint settings
from here, in the shape of the CreateTrainingJob API, so the two requests cannot drift apart.
Standard library only (plus the metric log format), so that CDK synthesis can import it.

The job reads patient data, so both also take its protection from here: output and
volumes under the data key (KMS), the private subnets, encrypted traffic between the
instances, and network isolation. An isolated container makes no network call at all (not
even to S3) and gets no AWS credentials; SageMaker itself downloads the channels and uploads
the model and checkpoints with the execution role, through the VPC, and instances of one job
still reach each other (torchrun/NCCL). So the source archive travels as the ``code``
channel and ``sagemaker_submit_directory`` names its local copy (the toolkit unpacks a local
tar.gz as it would an S3 one, as the SageMaker SDK does for isolated jobs), and nothing the
job runs may download: the derived training image already holds every package, the archive
holds no ``requirements.txt``, and hyperparameters that would fetch from the internet are
refused here. See "Run Training and Inference Containers in Internet-Free Mode",
https://docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.metric_log import METRIC_DEFINITIONS

#: PyTorch 2.6 is the newest SageMaker PyTorch training image whose CUDA 12.6 build still ships
#: Volta (sm_70) kernels for ml.p3, and the oldest that transformers 5 accepts (torch>=2.6).
#: See docs/model.md. The derived images of ``containers/`` are built FROM these.
FRAMEWORK_VERSION = "2.6.0"
PY_VERSION = "py312"
ENTRY_SCRIPT = "training/train.py"
#: Where the toolkit unpacks the source; on PYTHONPATH so ``training`` imports as a package.
CONTAINER_SOURCE_DIR = "/opt/ml/code"
CONTAINER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
#: logging.INFO for the toolkit's own log lines.
CONTAINER_LOG_LEVEL = "20"
#: Hyperparameters with this prefix steer the toolkit; the training script never sees them.
TOOLKIT_PREFIX = "sagemaker_"
#: Spot jobs may wait for capacity as long as they may run.
SPOT_WAIT_FACTOR = 2
#: Each instance's ML storage volume (data channels, checkpoints, the model before upload).
TRAINING_VOLUME_GB = 50
#: The model archive is ``model.tar.gz``.
OUTPUT_COMPRESSION = "GZIP"
#: Multi-node torchrun (NCCL) exchanges gradients between instances: encrypted in transit
#: (IPsec: the security group admits UDP 500 and ESP between its members, see
#: https://docs.aws.amazon.com/sagemaker/latest/dg/train-encrypt.html). A single-instance job
#: sends nothing between instances, so the setting costs it nothing.
INTER_CONTAINER_TRAFFIC_ENCRYPTION = True
#: The container reaches nothing but the job's other instances (see above).
NETWORK_ISOLATION = True
#: The input channel that carries the source archive, and where SageMaker puts channels.
CODE_CHANNEL = "code"
CONTAINER_INPUT_DIR = "/opt/ml/input/data"
#: Training settings (``training/config.py`` names) that download at run time, which an
#: isolated job cannot do: the value would only fail the job hours later.
DOWNLOADING_HYPERPARAMETERS = ("pretrained_code_encoder",)
#: The stage's alert budget (``cdk.json`` ``stages.<stage>.training.alert_budget``) reaches the
#: job as this hyperparameter, ``HyperParameters.alert_budget`` of ``training/config.py``.
ALERT_BUDGET_HYPERPARAMETER = "alert_budget"


def container_source_path(archive_name: str) -> str:
    """Where the ``code`` channel puts the source archive ``archive_name`` in the container.

    A channel whose S3 URI is one object's key lands as that object's file name.
    """
    if not archive_name or "/" in archive_name or archive_name in (".", ".."):
        raise ValueError("archive_name must be the source archive's file name")
    return f"{CONTAINER_INPUT_DIR}/{CODE_CHANNEL}/{archive_name}"


def code_channel(source_uri: str) -> dict[str, Any]:
    """The ``code`` input channel: the source archive's S3 object, copied in by SageMaker."""
    if not source_uri:
        raise ValueError("the source archive's S3 URI is missing")
    return {
        "ChannelName": CODE_CHANNEL,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": source_uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def stage_hyperparameters(alert_budget: float) -> dict[str, Any]:
    """The stage's training settings that the job reads as hyperparameters.

    The pipeline's Train state and the manual launcher both start from these, so a stage
    trains with the alert budget its ``cdk.json`` sets whoever starts the job.
    """
    if isinstance(alert_budget, bool) or not 0.0 < alert_budget <= 1.0:
        raise ValueError("the alert budget must be a share in (0, 1]")
    return {ALERT_BUDGET_HYPERPARAMETER: alert_budget}


def toolkit_hyperparameters(archive_name: str, region: str) -> dict[str, str]:
    """The toolkit's settings: the source archive (its local copy), entry script, torchrun."""
    return {
        "sagemaker_program": ENTRY_SCRIPT,
        "sagemaker_submit_directory": container_source_path(archive_name),
        "sagemaker_torch_distributed_enabled": "true",
        "sagemaker_region": region,
        "sagemaker_container_log_level": CONTAINER_LOG_LEVEL,
    }


def hyperparameters(
    archive_name: str, region: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Toolkit settings plus the training overrides (``training/config.py`` names), as strings.

    SageMaker passes every hyperparameter as a string; booleans are written the way
    ``training.config`` parses them. Settings that would download at run time are refused
    (the job is network-isolated).
    """
    user = dict(overrides or {})
    reserved = sorted(name for name in user if name.startswith(TOOLKIT_PREFIX))
    if reserved:
        raise ValueError(f"hyperparameters may not set toolkit settings: {reserved}")
    downloading = sorted(name for name in DOWNLOADING_HYPERPARAMETERS if user.get(name))
    if downloading:
        raise ValueError(
            f"hyperparameters {downloading} download at run time, which a network-isolated "
            "training job cannot do"
        )
    as_text = {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in user.items()
    }
    return {**toolkit_hyperparameters(archive_name, region), **as_text}


def environment() -> dict[str, str]:
    """The container environment: the source on PYTHONPATH and where checkpoints live."""
    return {"PYTHONPATH": CONTAINER_SOURCE_DIR, "SM_CHECKPOINT_DIR": CONTAINER_CHECKPOINT_DIR}


def metric_definitions() -> list[dict[str, str]]:
    """One ``{"Name", "Regex"}`` per metric line the training script prints."""
    return [dict(definition) for definition in METRIC_DEFINITIONS]


def stopping_condition(max_run_seconds: int, use_spot: bool) -> dict[str, int]:
    """``StoppingCondition``; a spot job also gets its wait time."""
    condition = {"MaxRuntimeInSeconds": max_run_seconds}
    if use_spot:
        condition["MaxWaitTimeInSeconds"] = SPOT_WAIT_FACTOR * max_run_seconds
    return condition


def checkpoint_s3_uri(output_uri: str, job_name: str) -> str:
    """Where a job's checkpoints go: beside its model, so a resumed spot job finds them."""
    return f"{output_uri.rstrip('/')}/{job_name}/checkpoints/"


def checkpoint_config(s3_uri: str) -> dict[str, str]:
    """``CheckpointConfig``: SageMaker syncs ``LocalPath`` with ``S3Uri`` (spot resumption)."""
    return {"S3Uri": s3_uri, "LocalPath": CONTAINER_CHECKPOINT_DIR}


def output_data_config(output_uri: str, kms_key_id: str | None) -> dict[str, str]:
    """``OutputDataConfig``: where ``model.tar.gz`` goes and the key that encrypts it.

    GZIP is the API's default, spelled out: the registrar opens ``model.tar.gz``.
    """
    config = {"S3OutputPath": output_uri, "CompressionType": OUTPUT_COMPRESSION}
    if kms_key_id:
        config["KmsKeyId"] = kms_key_id
    return config


def resource_config(
    instance_type: str,
    instance_count: int,
    kms_key_id: str | None,
    volume_size_gb: int = TRAINING_VOLUME_GB,
) -> dict[str, Any]:
    """``ResourceConfig``: the compute and its storage volumes, under the same key as the output."""
    config: dict[str, Any] = {
        "InstanceType": instance_type,
        "InstanceCount": instance_count,
        "VolumeSizeInGB": volume_size_gb,
    }
    if kms_key_id:
        config["VolumeKmsKeyId"] = kms_key_id
    return config


def network_config(subnet_ids: Sequence[str], security_group_ids: Sequence[str]) -> dict[str, Any]:
    """``VpcConfig`` (when subnets are given) and the two traffic switches of the request.

    Network isolation and a VPC go together: SageMaker's own downloads and uploads then go
    through the subnets (and their S3 endpoint), while the container stays isolated.
    """
    config: dict[str, Any] = {
        "EnableInterContainerTrafficEncryption": INTER_CONTAINER_TRAFFIC_ENCRYPTION,
        "EnableNetworkIsolation": NETWORK_ISOLATION,
    }
    if subnet_ids or security_group_ids:
        if not (subnet_ids and security_group_ids):
            raise ValueError("a VPC config needs both subnet ids and security group ids")
        config["VpcConfig"] = {
            "Subnets": list(subnet_ids),
            "SecurityGroupIds": list(security_group_ids),
        }
    return config
