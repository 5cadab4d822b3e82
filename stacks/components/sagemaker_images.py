"""URIs of the AWS Deep Learning Container images the training job and the endpoint run.

Same framework version and Python as ``training/launch.py`` (which asks the SageMaker SDK at
launch time); here the region is a CloudFormation token, so the URI is composed from the DLC
registry's account. A test asserts both agree for a concrete region.
"""

from __future__ import annotations

from aws_cdk import Aws

from training.launch import FRAMEWORK_VERSION, PY_VERSION

#: The DLC registry account of the commercial regions (a few opt-in regions differ).
DLC_ACCOUNT = "763104351884"
#: SageMaker instance families with NVIDIA GPUs (ml.p3, ml.g5, ...); others use the CPU image.
GPU_FAMILIES = ("p", "g")


def is_gpu_instance(instance_type: str) -> bool:
    """``ml.p3.8xlarge`` -> True, ``ml.m5.large`` -> False."""
    return instance_type.split(".")[1].startswith(GPU_FAMILIES)


def pytorch_image_uri(
    scope: str,
    instance_type: str,
    region: str = Aws.REGION,
    url_suffix: str = Aws.URL_SUFFIX,
) -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/pytorch-<scope>:<version>-<gpu|cpu>-<py>``."""
    if scope not in ("training", "inference"):
        raise ValueError("scope must be training or inference")
    processor = "gpu" if is_gpu_instance(instance_type) else "cpu"
    return (
        f"{DLC_ACCOUNT}.dkr.ecr.{region}.{url_suffix}/pytorch-{scope}:"
        f"{FRAMEWORK_VERSION}-{processor}-{PY_VERSION}"
    )
