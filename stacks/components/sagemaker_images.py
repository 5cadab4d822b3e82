"""URIs of the AWS Deep Learning Container images the derived images are built FROM.

Framework version and Python come from ``training/job_spec.py``; the region is a
CloudFormation token, so the URI is composed from the DLC registry's account. A test asserts
it agrees with what the SageMaker SDK resolves for a concrete region.
"""

from __future__ import annotations

from aws_cdk import Aws

from training.job_spec import FRAMEWORK_VERSION, PY_VERSION

#: The DLC registry account of the commercial regions (a few opt-in regions differ).
DLC_ACCOUNT = "763104351884"
#: SageMaker instance families with NVIDIA GPUs (ml.p3, ml.g5, ...); others use the CPU image.
GPU_FAMILIES = ("p", "g")
#: The DLC repositories are ``pytorch-<scope>``.
DLC_SCOPES = ("training", "inference")


def is_gpu_instance(instance_type: str) -> bool:
    """``ml.p3.8xlarge`` -> True, ``ml.m5.large`` -> False."""
    return instance_type.split(".")[1].startswith(GPU_FAMILIES)


def _check_scope(scope: str) -> None:
    if scope not in DLC_SCOPES:
        raise ValueError(f"scope must be one of {DLC_SCOPES}")


def processor(instance_type: str) -> str:
    """``gpu`` or ``cpu``: which build of an image an instance type runs."""
    return "gpu" if is_gpu_instance(instance_type) else "cpu"


def pytorch_image_tag(instance_type: str) -> str:
    """``<version>-<gpu|cpu>-<py>``, the DLC tag for an instance type."""
    return f"{FRAMEWORK_VERSION}-{processor(instance_type)}-{PY_VERSION}"


def pytorch_repository_arn(scope: str, region: str = Aws.REGION) -> str:
    """ARN of the DLC repository ``pytorch-<scope>`` (what pulling the base image needs)."""
    _check_scope(scope)
    return f"arn:{Aws.PARTITION}:ecr:{region}:{DLC_ACCOUNT}:repository/pytorch-{scope}"


def pytorch_image_uri(
    scope: str,
    instance_type: str,
    region: str = Aws.REGION,
    url_suffix: str = Aws.URL_SUFFIX,
) -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/pytorch-<scope>:<version>-<gpu|cpu>-<py>``."""
    _check_scope(scope)
    return f"{DLC_ACCOUNT}.dkr.ecr.{region}.{url_suffix}/pytorch-{scope}:" + pytorch_image_tag(
        instance_type
    )
