"""Evaluate a finished training job's model and register it as PendingManualApproval.

``evaluate`` streams ``model.tar.gz`` from S3 (never holding it in memory), takes the
documents training wrote into it (``evaluation.json``, ``metadata.json``,
``drift_baseline.json``, ``model_card.html``), stores the report beside the archive and applies
the quality gate: test AUROC at least the configured minimum and above the logistic
baseline's. A model that passes gets its evidence written beside the report
(:mod:`lambdas.registrar.evidence`): the SageMaker model card, bias and explainability reports,
the drift baseline, a de-identified sample request, the HTML card. ``register`` creates the
model package version carrying all of it, after checking the request against botocore's
service model (:mod:`lambdas.registrar.validation`). Both take their boto3 clients as
arguments.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from contracts.drift import BASELINE_FILE_NAME
from contracts.model_artifact import (
    CODE_DIR,
    EVALUATION_FILE,
    METADATA_FILE,
    SERVING_ENTRY,
    root_member,
)
from contracts.model_artifact import MODEL_CARD_FILE as HTML_CARD_FILE
from lambdas.registrar import evidence, validation
from lambdas.registrar.settings import SOURCE_COMMIT_ENV, SOURCE_REPOSITORY_ENV, RegistrarSettings

#: What the registrar writes beside the report (the archive's copies stay where they are).
CARD_FILE = "model_card.json"
BIAS_FILE = "bias_report.json"
EXPLAINABILITY_FILE = "explainability_report.json"
SAMPLE_PAYLOAD_FILE = "sample_payload.tar.gz"
SAMPLE_PAYLOAD_MEMBER = "sample_payload.json"
#: Archive members the registrar reads, besides the report.
ARCHIVE_DOCUMENTS = (EVALUATION_FILE, METADATA_FILE, BASELINE_FILE_NAME, HTML_CARD_FILE)
CONTENT_TYPE_HTML = "text/html"
CONTENT_TYPE_GZIP = "application/gzip"
MODEL_CARD_STATUS = "PendingReview"
#: CreateModelPackage's Domain and Task as SageMaker names them for tabular classification.
DOMAIN = "MACHINE_LEARNING"
TASK = "CLASSIFICATION"
#: ModelLifeCycle at registration; the approver's decision moves it on.
LIFECYCLE = {
    "Stage": "Development",
    "StageStatus": "PendingApproval",
    "StageDescription": "Registered by the training pipeline; approve or reject in Studio",
}
GENERATED_BY = "SageMaker training job {job} (readmission training pipeline)"
#: CustomerMetadataProperties values are at most 256 characters.
METADATA_VALUE_CHARS = 256
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


def read_documents(s3: Any, model_data_url: str) -> dict[str, bytes]:
    """Stream the model archive once and return the :data:`ARCHIVE_DOCUMENTS` it holds."""
    bucket, key = split_s3_uri(model_data_url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                name = root_member(member.name)
                if name not in ARCHIVE_DOCUMENTS:
                    continue
                if not member.isfile() or member.size > MAX_EVALUATION_BYTES:
                    raise RegistrationError(f"{name} in the archive is not a document")
                handle = archive.extractfile(member)
                if handle is None:
                    raise RegistrationError(f"{name} in the model archive is unreadable")
                found[name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise RegistrationError("the model archive is not a readable tar.gz") from error
    return found


def _json_object(documents: Mapping[str, bytes], name: str) -> dict[str, Any]:
    try:
        document = json.loads(documents[name])
    except json.JSONDecodeError as error:
        raise RegistrationError(f"{name} is not valid JSON") from error
    if not isinstance(document, dict):
        raise RegistrationError(f"{name} must hold a JSON object")
    return document


def read_evaluation(s3: Any, model_data_url: str) -> dict[str, Any]:
    """Stream the model archive and return its top-level ``evaluation.json``."""
    documents = read_documents(s3, model_data_url)
    if EVALUATION_FILE not in documents:
        raise RegistrationError(f"the model archive holds no {EVALUATION_FILE}")
    return _json_object(documents, EVALUATION_FILE)


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


def _beside(report_uri: str, name: str) -> str:
    return f"{report_uri.rpartition('/')[0]}/{name}"


def put_document(
    s3: Any, settings: RegistrarSettings, uri: str, body: bytes, content_type: str
) -> str:
    """Write one document, KMS-encrypted with the data key; returns its URI."""
    bucket, key = split_s3_uri(uri)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=settings.kms_key_arn,
    )
    return uri


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True, allow_nan=False).encode()


def evaluate(
    s3: Any, settings: RegistrarSettings, model_data_url: str, training_job_name: str
) -> dict[str, Any]:
    """Extract, store and gate the evaluation of one training job's model.

    A model that passes also gets its evidence prepared (``evidence`` in the result); evidence
    that cannot be attached is named there and on the card, and evidence no version may lack
    (a report section, the drift baseline) fails the step with the reason.
    """
    documents = read_documents(s3, model_data_url)
    if EVALUATION_FILE not in documents:
        raise RegistrationError(f"the model archive holds no {EVALUATION_FILE}")
    evaluation = _json_object(documents, EVALUATION_FILE)
    report_uri = evaluation_uri(model_data_url)
    put_document(s3, settings, report_uri, _json_bytes(evaluation), CONTENT_TYPE_JSON)
    verdict = quality_gate(evaluation, settings.min_test_auroc)
    result = {
        **asdict(verdict),
        "reasons": list(verdict.reasons),
        "evaluation_s3_uri": report_uri,
        "model_data_url": model_data_url,
        "training_job_name": training_job_name,
    }
    if verdict.passed:
        result["evidence"] = prepare_evidence(
            s3, settings, documents, evaluation, report_uri, model_data_url, training_job_name
        )
    return result


def read_manifest(s3: Any, uri: str) -> tuple[dict[str, Any], str] | None:
    """The ETL manifest and its sha256, or ``None`` when it cannot be read."""
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_EVALUATION_BYTES + 1)
    except ClientError:
        return None
    try:
        manifest = json.loads(body) if len(body) <= MAX_EVALUATION_BYTES else None
    except json.JSONDecodeError:
        manifest = None
    if not isinstance(manifest, dict):
        return None
    return manifest, hashlib.sha256(body).hexdigest()


def sample_payload_archive(baseline: Mapping[str, Any]) -> bytes:
    """``SamplePayloadUrl`` must name one gzip-compressed tar archive: one JSON request in it."""
    body = json.dumps(evidence.sample_payload(baseline), indent=1).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(SAMPLE_PAYLOAD_MEMBER)
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@dataclass(frozen=True)
class _Beside:
    """Writes documents beside the evaluation report."""

    s3: Any
    settings: RegistrarSettings
    report_uri: str

    def put(self, name: str, body: bytes, content_type: str = CONTENT_TYPE_JSON) -> str:
        uri = _beside(self.report_uri, name)
        return put_document(self.s3, self.settings, uri, body, content_type)


def _required_evidence(documents: Mapping[str, bytes], evaluation: Mapping[str, Any]) -> Any:
    """The drift baseline, once the report has every section no version may lack."""
    try:
        evidence.check_required(evaluation)
    except evidence.EvidenceError as error:
        raise RegistrationError(str(error)) from error
    if BASELINE_FILE_NAME not in documents:
        raise RegistrationError(f"the model archive holds no {BASELINE_FILE_NAME}: not registered")
    return _json_object(documents, BASELINE_FILE_NAME)


def _lineage_omissions(settings: RegistrarSettings) -> list[str]:
    return [
        f"{what} ({name} not set)"
        for value, what, name in (
            (settings.source_commit, "source commit", SOURCE_COMMIT_ENV),
            (settings.source_repository, "source repository", SOURCE_REPOSITORY_ENV),
        )
        if not value
    ]


def _store_card(out: _Beside, card: evidence.Card, links: evidence.EvidenceLinks) -> str:
    """Fit the card to SageMaker's limit, check it against the schema, write it."""
    try:
        evidence.shrink_to_fit(card, links, validation.max_content_chars(), card_chars)
    except evidence.EvidenceError as error:
        raise RegistrationError(str(error)) from error
    problems = validation.card_errors(card.content)
    if problems:
        raise RegistrationError("the model card does not follow the schema: " + "; ".join(problems))
    return out.put(CARD_FILE, card_text(card.content).encode())


def prepare_evidence(
    s3: Any,
    settings: RegistrarSettings,
    documents: Mapping[str, bytes],
    evaluation: Mapping[str, Any],
    report_uri: str,
    model_data_url: str,
    job: str,
) -> dict[str, Any]:
    """Write the version's evidence beside the report; return where it is and what is missing."""
    baseline = _required_evidence(documents, evaluation)
    out = _Beside(s3, settings, report_uri)
    evaluation, omitted = evidence.screen(evaluation)
    metadata = _json_object(documents, METADATA_FILE) if METADATA_FILE in documents else {}
    if not metadata:
        omitted.append(f"training details ({METADATA_FILE} not in the archive)")
    html = documents.get(HTML_CARD_FILE)
    if html is None:
        omitted.append(f"HTML model card ({HTML_CARD_FILE} not in the archive)")
    manifest = read_manifest(s3, settings.manifest_s3_uri)
    if manifest is None:
        omitted.append("ETL manifest lineage (the manifest could not be read)")
    links = evidence.EvidenceLinks(
        model_data_url=model_data_url,
        evaluation=report_uri,
        html_card="" if html is None else out.put(HTML_CARD_FILE, html, CONTENT_TYPE_HTML),
        bias=out.put(BIAS_FILE, _json_bytes(evidence.bias_report(evaluation)))
        if evidence.SUBGROUPS in evaluation
        else "",
        explainability=out.put(
            EXPLAINABILITY_FILE, _json_bytes(evidence.explainability_report(evaluation))
        )
        if evidence.EXPLAINABILITY in evaluation
        else "",
        manifest=settings.manifest_s3_uri if manifest else "",
        training_image_tag=settings.training_image_tag,
    )
    omitted.extend(_lineage_omissions(settings))
    card = evidence.build_card(
        evaluation, metadata, manifest[0] if manifest else {}, links, job, omitted
    )
    return {
        "model_card_s3_uri": _store_card(out, card, links),
        "html_card_s3_uri": links.html_card,
        "bias_s3_uri": links.bias,
        "explainability_s3_uri": links.explainability,
        "drift_baseline_s3_uri": out.put(BASELINE_FILE_NAME, documents[BASELINE_FILE_NAME]),
        "sample_payload_s3_uri": out.put(
            SAMPLE_PAYLOAD_FILE, sample_payload_archive(baseline), CONTENT_TYPE_GZIP
        ),
        "manifest_s3_uri": links.manifest,
        "manifest_sha256": manifest[1] if manifest else "",
        "contract_version": str(metadata.get("schema_version", baseline.get("schema_version", ""))),
        "omitted": card.omitted,
        "headline": evidence.headline(evaluation),
        "gaps": evidence.gaps(evaluation),
    }


def card_text(content: Mapping[str, Any]) -> str:
    """The card as ``ModelCardContent`` carries it: compact JSON."""
    return json.dumps(content, separators=(",", ":"), sort_keys=True, allow_nan=False)


def card_chars(content: Mapping[str, Any]) -> int:
    return len(card_text(content))


def _metrics_source(uri: str, content_type: str = CONTENT_TYPE_JSON) -> dict[str, str]:
    return {"ContentType": content_type, "S3Uri": uri}


def customer_metadata(
    settings: RegistrarSettings, gated: Mapping[str, Any], found: Mapping[str, Any]
) -> dict[str, str]:
    """Lineage and headline figures as ``CustomerMetadataProperties`` (256-character values)."""
    properties = {
        "training_job_name": str(gated["training_job_name"]),
        "test_auroc": f"{float(gated['test_auroc']):.6f}",
        "baseline_auroc": f"{float(gated['baseline_auroc']):.6f}",
        "features_manifest_s3_uri": found.get("manifest_s3_uri") or "not attached",
        "features_manifest_sha256": found.get("manifest_sha256") or "not attached",
        "contract_version": found.get("contract_version") or "unknown",
        "training_image_tag": settings.training_image_tag,
        "evidence_omitted": " / ".join(found.get("omitted", [])) or "none",
    }
    return {key: sanitized(value) for key, value in properties.items()}


def sanitized(value: str) -> str:
    """Fit a value to the service's character class and length (anything else becomes ``-``)."""
    allowed = "".join(c if c.isalnum() or c == " " or c in "_.:/=+-@" else "-" for c in value)
    return allowed[:METADATA_VALUE_CHARS]


def package_request(
    settings: RegistrarSettings,
    evaluation: Mapping[str, Any],
    region: str,
    card_content: str,
) -> dict[str, Any]:
    """CreateModelPackage arguments for a gated evaluation (see :func:`evaluate`)."""
    job = str(evaluation["training_job_name"])
    found = evaluation["evidence"]
    metrics: dict[str, Any] = {
        "ModelQuality": {"Statistics": _metrics_source(evaluation["evaluation_s3_uri"])}
    }
    if found.get("bias_s3_uri"):
        metrics["Bias"] = {"Report": _metrics_source(found["bias_s3_uri"])}
    if found.get("explainability_s3_uri"):
        metrics["Explainability"] = {"Report": _metrics_source(found["explainability_s3_uri"])}
    lineage = {
        "CommitId": settings.source_commit,
        "Repository": settings.source_repository,
        "GeneratedBy": GENERATED_BY.format(job=job),
    }
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
        "ModelMetrics": metrics,
        "DriftCheckBaselines": {
            "ModelDataQuality": {"Statistics": _metrics_source(found["drift_baseline_s3_uri"])}
        },
        "MetadataProperties": {key: value for key, value in lineage.items() if value},
        "CustomerMetadataProperties": customer_metadata(settings, evaluation, found),
        "Domain": DOMAIN,
        "Task": TASK,
        "SamplePayloadUrl": found["sample_payload_s3_uri"],
        "ModelCard": {"ModelCardContent": card_content, "ModelCardStatus": MODEL_CARD_STATUS},
        "ModelLifeCycle": dict(LIFECYCLE),
    }


def read_card(s3: Any, uri: str) -> str:
    """The card the evaluate step wrote, as text (at most the service's limit)."""
    bucket, key = split_s3_uri(uri)
    limit = validation.max_content_chars()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(4 * limit + 1)
    text = body.decode("utf-8")
    if len(text) > limit:
        raise RegistrationError(f"the model card is over SageMaker's {limit}-character limit")
    return text


def register(
    sagemaker: Any,
    s3: Any,
    settings: RegistrarSettings,
    evaluation: Mapping[str, Any],
    region: str,
) -> dict[str, Any]:
    """Create the model package version; refuses an evaluation that did not pass the gate.

    The request is checked against botocore's service model first, so a request SageMaker
    would refuse fails here with the member named. Idempotent: a retried call for the same
    training job finds the version it created.
    """
    if evaluation.get("passed") is not True:
        raise RegistrationError("the model did not pass the quality gate")
    found = evaluation.get("evidence")
    if not isinstance(found, Mapping) or not found.get("model_card_s3_uri"):
        raise RegistrationError("the evaluation carries no evidence: run the evaluate step again")
    request = package_request(
        settings, evaluation, region, read_card(s3, str(found["model_card_s3_uri"]))
    )
    try:
        validation.check_request(request)
    except validation.RequestInvalidError as error:
        raise RegistrationError(str(error)) from error
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
