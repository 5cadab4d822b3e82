"""Evaluate a finished training job's model and register it as PendingManualApproval.

``evaluate`` streams ``model.tar.gz`` from S3 (never holding it in memory), takes the
``evaluation.json`` that training wrote into it (training/evaluation.py), stores it beside the
archive and applies the quality gate: test AUROC at least the configured minimum and above the
logistic baseline's. ``register`` creates the model package version with the report as its
model-quality statistics. Both take their boto3 client as an argument.
"""

from __future__ import annotations

import json
import math
import tarfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from contracts.model_artifact import CODE_DIR, EVALUATION_FILE, SERVING_ENTRY, root_member
from lambdas.registrar.settings import RegistrarSettings

#: An evaluation report is tens of kilobytes; anything far larger is not one.
MAX_EVALUATION_BYTES = 5 * 1024 * 1024
CONTENT_TYPE_JSON = "application/json"
PENDING_MANUAL_APPROVAL = "PendingManualApproval"
#: Where SageMaker unpacks ``model.tar.gz`` in the serving container.
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
#: How the PyTorch serving image finds the hooks inside model.tar.gz (training/artifact.py).
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": SERVING_ENTRY,
    "SAGEMAKER_SUBMIT_DIRECTORY": f"{SAGEMAKER_MODEL_DIR}/{CODE_DIR}",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}
#: CreateModelPackage's ClientToken is at most 36 characters.
CLIENT_TOKEN_CHARS = 36


class RegistrationError(RuntimeError):
    """The model cannot be evaluated or registered; the message names the part at fault."""


@dataclass(frozen=True)
class GateResult:
    """The quality gate's verdict, returned to the state machine."""

    passed: bool
    test_auroc: float
    baseline_auroc: float
    min_test_auroc: float
    reasons: tuple[str, ...]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://"):
        raise RegistrationError("model_data_url must be an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise RegistrationError("model_data_url needs a bucket and a key")
    return bucket, key


def evaluation_uri(model_data_url: str) -> str:
    """Where the report is kept: beside ``model.tar.gz``."""
    bucket, key = split_s3_uri(model_data_url)
    folder = key.rpartition("/")[0]
    return f"s3://{bucket}/{folder + '/' if folder else ''}{EVALUATION_FILE}"


def read_evaluation(s3: Any, model_data_url: str) -> dict[str, Any]:
    """Stream the model archive and return its top-level ``evaluation.json``."""
    bucket, key = split_s3_uri(model_data_url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if root_member(member.name) != EVALUATION_FILE:
                    continue
                if not member.isfile() or member.size > MAX_EVALUATION_BYTES:
                    raise RegistrationError(f"{EVALUATION_FILE} in the archive is not a report")
                handle = archive.extractfile(member)
                if handle is None:
                    raise RegistrationError(f"{EVALUATION_FILE} in the model archive is unreadable")
                document = json.loads(handle.read())
                if not isinstance(document, dict):
                    raise RegistrationError(f"{EVALUATION_FILE} must hold a JSON object")
                return document
    except (tarfile.TarError, OSError, EOFError) as error:
        raise RegistrationError("the model archive is not a readable tar.gz") from error
    except json.JSONDecodeError as error:
        raise RegistrationError(f"{EVALUATION_FILE} is not valid JSON") from error
    raise RegistrationError(f"the model archive holds no {EVALUATION_FILE}")


def _metric(evaluation: Mapping[str, Any], section: str, name: str) -> float:
    block = evaluation.get(section)
    value = block.get(name) if isinstance(block, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RegistrationError(f"{EVALUATION_FILE}: {section}.{name} must be a finite number")
    return float(value)


def quality_gate(evaluation: Mapping[str, Any], min_test_auroc: float) -> GateResult:
    """Pass when test AUROC >= ``min_test_auroc`` and > the logistic baseline's test AUROC."""
    test_auroc = _metric(evaluation, "test", "auroc")
    baseline_auroc = _metric(evaluation, "baseline", "auroc")
    reasons = []
    if test_auroc < min_test_auroc:
        reasons.append(f"test AUROC {test_auroc:.4f} is below the minimum {min_test_auroc:.4f}")
    if test_auroc <= baseline_auroc:
        reasons.append(
            f"test AUROC {test_auroc:.4f} does not beat the logistic baseline {baseline_auroc:.4f}"
        )
    return GateResult(not reasons, test_auroc, baseline_auroc, min_test_auroc, tuple(reasons))


def evaluate(
    s3: Any, settings: RegistrarSettings, model_data_url: str, training_job_name: str
) -> dict[str, Any]:
    """Extract, store and gate the evaluation of one training job's model."""
    evaluation = read_evaluation(s3, model_data_url)
    report_uri = evaluation_uri(model_data_url)
    bucket, key = split_s3_uri(report_uri)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(evaluation, indent=1, sort_keys=True).encode(),
        ContentType=CONTENT_TYPE_JSON,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=settings.kms_key_arn,
    )
    verdict = quality_gate(evaluation, settings.min_test_auroc)
    return {
        **asdict(verdict),
        "reasons": list(verdict.reasons),
        "evaluation_s3_uri": report_uri,
        "model_data_url": model_data_url,
        "training_job_name": training_job_name,
    }


def package_request(
    settings: RegistrarSettings, evaluation: Mapping[str, Any], region: str
) -> dict[str, Any]:
    """CreateModelPackage arguments for a gated evaluation (see :func:`evaluate`)."""
    job = str(evaluation["training_job_name"])
    return {
        "ModelPackageGroupName": settings.model_package_group_name,
        "ModelPackageDescription": f"Trained by SageMaker job {job}"[:1024],
        "ModelApprovalStatus": PENDING_MANUAL_APPROVAL,
        "ClientToken": job[-CLIENT_TOKEN_CHARS:],
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": settings.inference_image_uri,
                    "ModelDataUrl": evaluation["model_data_url"],
                    "Environment": {**SERVING_ENVIRONMENT, "SAGEMAKER_REGION": region},
                }
            ],
            "SupportedContentTypes": [CONTENT_TYPE_JSON],
            "SupportedResponseMIMETypes": [CONTENT_TYPE_JSON],
            "SupportedRealtimeInferenceInstanceTypes": [settings.endpoint_instance_type],
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": CONTENT_TYPE_JSON,
                    "S3Uri": evaluation["evaluation_s3_uri"],
                }
            }
        },
        "CustomerMetadataProperties": {
            "training_job_name": job,
            "test_auroc": f"{float(evaluation['test_auroc']):.6f}",
            "baseline_auroc": f"{float(evaluation['baseline_auroc']):.6f}",
        },
    }


def register(
    sagemaker: Any, settings: RegistrarSettings, evaluation: Mapping[str, Any], region: str
) -> dict[str, Any]:
    """Create the model package version; refuses an evaluation that did not pass the gate.

    Idempotent: a retried call for the same training job finds the version it created.
    """
    if evaluation.get("passed") is not True:
        raise RegistrationError("the model did not pass the quality gate")
    request = package_request(settings, evaluation, region)
    existing = find_package(sagemaker, settings.model_package_group_name, request)
    if existing is not None:
        return {"model_package_arn": existing, "created": False}
    response = sagemaker.create_model_package(**request)
    return {"model_package_arn": response["ModelPackageArn"], "created": True}


def find_package(sagemaker: Any, group: str, request: Mapping[str, Any]) -> str | None:
    """The version already registered for this model archive, if any (newest first)."""
    model_data_url = request["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
    ):
        for summary in page.get("ModelPackageSummaryList", []):
            arn = summary["ModelPackageArn"]
            description = sagemaker.describe_model_package(ModelPackageName=arn)
            containers = description.get("InferenceSpecification", {}).get("Containers", [])
            if any(c.get("ModelDataUrl") == model_data_url for c in containers):
                return str(arn)
    return None
