"""What every SageMaker training job of the project is, whoever starts it.

The Step Functions pipeline (``stacks/components/training_pipeline.py``) and the manual
launcher (``training/launch.py``) both start the job through the SageMaker training toolkit
of the PyTorch image: it downloads ``sagemaker_submit_directory`` (the deterministic
``sourcedir.tar.gz``), unpacks it into ``/opt/ml/code`` and runs ``sagemaker_program`` under
torchrun on every GPU of every instance. Both take the hyperparameters, environment, metric
definitions, stopping condition and checkpoint settings from here, in the shape of the
CreateTrainingJob API, so the two requests cannot drift apart. Standard library only (plus
the metric log format), so that CDK synthesis can import it.

The job reads patient data, so both also take its protection from here: output and
volumes under the data key (KMS), the private subnets, encrypted traffic between the
instances. Network isolation stays off in both: an isolated container has no S3 access, and
the toolkit itself downloads ``sagemaker_submit_directory``; the subnets (no internet route,
S3 through the gateway endpoint) are the boundary instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.metrics import METRIC_DEFINITIONS

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
#: Multi-node torchrun (NCCL) exchanges gradients between instances: encrypted in transit.
INTER_CONTAINER_TRAFFIC_ENCRYPTION = True
#: Off: the toolkit downloads the source archive from S3 inside the container (see above).
NETWORK_ISOLATION = False


def toolkit_hyperparameters(source_uri: str, region: str) -> dict[str, str]:
    """The toolkit's settings: the source archive, the entry script and torchrun on."""
    return {
        "sagemaker_program": ENTRY_SCRIPT,
        "sagemaker_submit_directory": source_uri,
        "sagemaker_torch_distributed_enabled": "true",
        "sagemaker_region": region,
        "sagemaker_container_log_level": CONTAINER_LOG_LEVEL,
    }


def hyperparameters(
    source_uri: str, region: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Toolkit settings plus the training overrides (``training/config.py`` names), as strings.

    SageMaker passes every hyperparameter as a string; booleans are written the way
    ``training.config`` parses them.
    """
    user = dict(overrides or {})
    reserved = sorted(name for name in user if name.startswith(TOOLKIT_PREFIX))
    if reserved:
        raise ValueError(f"hyperparameters may not set toolkit settings: {reserved}")
    as_text = {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in user.items()
    }
    return {**toolkit_hyperparameters(source_uri, region), **as_text}


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
    """``VpcConfig`` (when subnets are given) and the two traffic switches of the request."""
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
