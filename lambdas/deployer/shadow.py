"""What the shadow stage reads and remembers: captured pairs, variant load, decisions.

A candidate runs as a SageMaker shadow variant beside the serving (production) variant: SageMaker
sends it a copy of the requests and captures its answers, which it never returns
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-shadow-deployment.html; "a shadow variant
that receives a percentage of the incoming requests, replicated from the production variant,
but does not return any responses", .../dg/shadow-tests-create.html). The endpoint's
DataCaptureConfig captures both variants, each under its own variant folder
(``<capture>/<endpoint>/<variant>/yyyy/mm/dd/hh/``).

* :func:`captured_pairs` joins the two variants' captured answers on the encounter key (the
  keyed hash the API puts on every record, contracts.serving.ENCOUNTER_KEY): one pair per
  encounter both scored, the health probe left out;
* :func:`variant_load` reads each variant's invocations, 5xx errors and ModelLatency p95 over the
  shadow period from CloudWatch (AWS/SageMaker, dimensions EndpointName and VariantName);
* :func:`decision_threshold` reads the decision threshold from ``calibration.json`` in the
  version's ``model.tar.gz`` (what the serving container itself uses for the risk band);
* decisions are kept in S3 beside the failure markers (:func:`record_decision`), keyed by the
  candidate's config and approval stamp: a held candidate is not tried again until it is
  approved again (a new stamp) or an operator writes ``promote`` (docs/operations.md).
"""

from __future__ import annotations

import json
import math
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from contracts.model_artifact import (
    CALIBRATION_FILE,
    ArtifactContractError,
    Calibration,
    root_member,
)
from contracts.serving import (
    ENCOUNTER_KEY,
    HEALTH_PROBE_INFERENCE_ID,
    HEALTH_PROBE_PATIENT_KEY,
    PATIENT_KEY,
    PREDICTIONS_KEY,
    PROBABILITY,
)
from lambdas.deployer.baseline import split_s3_uri
from lambdas.deployer.comparison import HOLD, PROMOTE, Pair, VariantLoad

MAX_CALIBRATION_BYTES = 1024 * 1024
#: Bounds one evaluation's work: lines read per variant.
MAX_CAPTURE_LINES = 200_000
MICROSECONDS_PER_MS = 1000.0
_ABSENT_CODES = ("404", "NoSuchKey", "NotFound")
DECISIONS = (HOLD, PROMOTE)


class ShadowArtifactError(RuntimeError):
    """The candidate's or serving version's artifact holds no usable decision threshold."""


def decision_key(endpoint_name: str, config_name: str, approval_stamp: str) -> str:
    """Where the shadow decision of one approval of one candidate is kept."""
    return f"baselines/{endpoint_name}/shadow-decisions/{config_name}@{approval_stamp}.json"


@dataclass(frozen=True)
class DecisionRecord:
    """A shadow decision as kept in S3: ``hold`` or ``promote``, and why (aggregates only)."""

    decision: str
    comparison: Mapping[str, Any]
    reasons: tuple[str, ...] = ()


def read_decision(
    s3: Any, bucket: str, endpoint_name: str, config_name: str, approval_stamp: str
) -> DecisionRecord | None:
    """The recorded decision, or ``None`` (none yet, or not one the deployer understands)."""
    try:
        body = s3.get_object(
            Bucket=bucket, Key=decision_key(endpoint_name, config_name, approval_stamp)
        )["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _ABSENT_CODES:
            return None
        raise
    try:
        document = json.loads(body)
    except ValueError:
        return None
    decision = document.get("decision") if isinstance(document, dict) else None
    if decision not in DECISIONS:
        return None
    comparison = document.get("comparison")
    reasons = document.get("reasons")
    return DecisionRecord(
        decision,
        comparison if isinstance(comparison, dict) else {},
        tuple(str(r) for r in reasons) if isinstance(reasons, list) else (),
    )


def record_decision(
    s3: Any,
    bucket: str,
    endpoint_name: str,
    config_name: str,
    approval_stamp: str,
    record: DecisionRecord,
    kms_key: str,
) -> None:
    """Keep a decision (KMS-encrypted, like every object the deployer writes)."""
    s3.put_object(
        Bucket=bucket,
        Key=decision_key(endpoint_name, config_name, approval_stamp),
        Body=json.dumps(
            {
                "decision": record.decision,
                "comparison": dict(record.comparison),
                "reasons": list(record.reasons),
            }
        ).encode(),
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key,
    )


def decision_threshold(s3: Any, model_data_url: str) -> float:
    """The decision threshold in the artifact's calibration (streamed, never held)."""
    bucket, key = split_s3_uri(model_data_url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if root_member(member.name) != CALIBRATION_FILE:
                    continue
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is None or member.size > MAX_CALIBRATION_BYTES:
                    break
                return _threshold(extracted.read())
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ShadowArtifactError("the model artifact is not a readable tar.gz") from error
    finally:
        body.close()
    raise ShadowArtifactError(f"the model artifact holds no usable {CALIBRATION_FILE}")


def _threshold(content: bytes) -> float:
    try:
        document = json.loads(content)
    except ValueError as error:
        raise ShadowArtifactError(f"{CALIBRATION_FILE} is malformed") from error
    try:
        return Calibration.from_dict(document).threshold
    except ArtifactContractError as error:
        raise ShadowArtifactError(str(error)) from error


# -- captured pairs ------------------------------------------------------------------------


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour <= end:
        yield hour
        hour += timedelta(hours=1)


def _lines(s3: Any, bucket: str, prefix: str) -> Iterator[bytes]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"]
            try:
                yield from body.iter_lines()
            finally:
                body.close()


def _answers(line: bytes, start: datetime) -> list[tuple[str, float]]:
    """``(encounter key, probability)`` of each patient record one capture line holds, if it was
    captured at or after ``start`` (files are per hour; the period need not start on one)."""
    try:
        document = json.loads(line)
        metadata = document.get("eventMetadata") or {}
        if metadata.get("inferenceId") == HEALTH_PROBE_INFERENCE_ID:
            return []
        when = datetime.strptime(metadata["inferenceTime"][:19], "%Y-%m-%dT%H:%M:%S")
        if when.replace(tzinfo=UTC) < start.replace(microsecond=0):
            return []
        capture = document["captureData"]
        request = json.loads(capture["endpointInput"]["data"])
        response = json.loads(capture["endpointOutput"]["data"])
        instances = request.get("instances", [request]) if isinstance(request, dict) else request
        predictions = response.get(PREDICTIONS_KEY) if isinstance(response, dict) else response
    except (ValueError, KeyError, TypeError, AttributeError):
        return []  # not a readable answer: the variant's error metrics count failures
    if not isinstance(instances, list) or not isinstance(predictions, list):
        return []
    answers = []
    for instance, prediction in zip(instances, predictions, strict=False):
        if not isinstance(prediction, dict) or not isinstance(instance, dict):
            continue
        if instance.get(PATIENT_KEY) == HEALTH_PROBE_PATIENT_KEY:
            continue
        key = prediction.get(ENCOUNTER_KEY) or instance.get(ENCOUNTER_KEY)
        probability = prediction.get(PROBABILITY)
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            continue
        if isinstance(key, str) and math.isfinite(probability):
            answers.append((key, float(probability)))
    return answers


def variant_answers(
    s3: Any, capture_uri: str, endpoint_name: str, variant: str, start: datetime, end: datetime
) -> dict[str, float]:
    """Encounter key -> the variant's first captured probability for it, from ``start``."""
    bucket, root = split_s3_uri(capture_uri.rstrip("/") + "/x")
    root = root[: -len("x")]
    found: dict[str, float] = {}
    lines = 0
    for hour in _hours(start, end):
        prefix = f"{root}{endpoint_name}/{variant}/{hour:%Y/%m/%d/%H}/"
        for line in _lines(s3, bucket, prefix):
            lines += 1
            if lines > MAX_CAPTURE_LINES:
                return found
            for key, probability in _answers(line, start):
                found.setdefault(key, probability)
    return found


def captured_pairs(serving: Mapping[str, float], candidate: Mapping[str, float]) -> list[Pair]:
    """One pair per encounter both variants answered, in a stable (key) order."""
    return [Pair(serving[key], candidate[key]) for key in sorted(serving.keys() & candidate)]


# -- variant load --------------------------------------------------------------------------


def _statistic(
    cloudwatch: Any,
    endpoint_name: str,
    variant: str,
    metric: str,
    start: datetime,
    end: datetime,
    *,
    percentile: str | None = None,
) -> float | None:
    seconds = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    request: dict[str, Any] = {
        "Namespace": "AWS/SageMaker",
        "MetricName": metric,
        "Dimensions": [
            {"Name": "EndpointName", "Value": endpoint_name},
            {"Name": "VariantName", "Value": variant},
        ],
        "StartTime": start,
        "EndTime": end,
        "Period": seconds,
    }
    if percentile is not None:
        request["ExtendedStatistics"] = [percentile]
    else:
        request["Statistics"] = ["Sum"]
    points = cloudwatch.get_metric_statistics(**request).get("Datapoints", [])
    if not points:
        return None
    if percentile is not None:
        return max(float(p["ExtendedStatistics"][percentile]) for p in points)
    return sum(float(p["Sum"]) for p in points)


def variant_load(
    cloudwatch: Any, endpoint_name: str, variant: str, start: datetime, end: datetime
) -> VariantLoad:
    """Invocations, 5xx errors and ModelLatency p95 (reported in microseconds) of a variant."""
    invocations = _statistic(cloudwatch, endpoint_name, variant, "Invocations", start, end)
    errors = _statistic(cloudwatch, endpoint_name, variant, "Invocation5XXErrors", start, end)
    latency = _statistic(
        cloudwatch, endpoint_name, variant, "ModelLatency", start, end, percentile="p95"
    )
    return VariantLoad(
        invocations=int(invocations or 0),
        errors=int(errors or 0),
        latency_p95_ms=None if latency is None else latency / MICROSECONDS_PER_MS,
    )
