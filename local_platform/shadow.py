"""The shadow stage, locally: a candidate as a second model server beside the serving one.

In AWS the deployer runs a newly approved version as a SageMaker shadow variant: SageMaker copies
requests to it, captures both variants' answers, and the deployer compares them and promotes or
holds (lambdas/deployer/shadow.py, comparison.py). Locally there is no SageMaker to copy traffic,
so this step does SageMaker's part and reuses the deployer's:

1. the candidate is a recalibrated copy of the trained model (its calibration temperature
   changed by ``CANDIDATE_TEMPERATURE_FACTOR``), served by a second ``inference.serve`` with the
   shadow variant's name and the same capture folder;
2. the replayed encounters are mirrored: each de-identified request (as the predict Lambda
   sends it) goes to both servers; only the serving one's answer would reach a caller;
3. the capture goes to the control plane's S3, and the deployer's own units read the captured
   pairs, compare them (score correlation, risk-band agreement, alert-rate difference at each
   model's threshold, latency p95, errors) and decide under the stage's bounds;
4. promote: the decision is recorded where the deployer keeps it and the API shifts to the
   candidate, served as the production variant (the blue/green shift of a real endpoint);
   hold: the candidate is stopped and the serving model keeps serving. The local control
   plane (moto) has no UpdateEndpoint, so the registry and the endpoint config are left as
   they are: ``/health`` keeps naming the approved version.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from contracts.deidentify import DEMO_DEIDENTIFICATION_KEY
from contracts.deployment import SHADOW_VARIANT_NAME
from contracts.model_artifact import (
    CALIBRATION_FILE,
    META_MODEL_VERSION,
    METADATA_FILE,
    Calibration,
    model_version,
)
from lambdas.deployer import comparison, shadow
from lambdas.deployer.deployment import VARIANT_NAME
from lambdas.deployer.settings import DEFAULT_SHADOW_BOUNDS
from lambdas.predict import app as predict_app
from lambdas.predict.records import to_endpoint_record
from local_platform import report, resources, traffic
from local_platform.control_plane import free_port
from local_platform.processes import wait_for_http

CANDIDATE_DIR = "candidate-model"
#: The candidate: the same network with a 5 % softer calibration (what a recalibration gives).
CANDIDATE_TEMPERATURE_FACTOR = 1.05
#: Encounters mirrored to both servers, and the pairs the local decision needs.
MIRRORED_REQUESTS = 200
LOCAL_MINIMUM_PAIRS = 100
INVOCATIONS_PATH = "/invocations"
#: Mirrored encounters get made-up ids from here on, apart from the replayed day's.
MIRROR_ID_OFFSET = 1_000_000
SERVER_START_TIMEOUT_S = 180.0
#: The deployer's bounds, but a looser latency ratio: both servers share the demo machine's
#: few, busy cores, so a p95 over 200 loopback calls varies by more than the production bound.
LOCAL_BOUNDS = replace(DEFAULT_SHADOW_BOUNDS, max_latency_p95_ratio=4.0)
RUNTIME_URL_ENV = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"


@dataclass(frozen=True)
class Mirrored:
    """What each variant did with the mirrored requests."""

    serving: comparison.VariantLoad
    candidate: comparison.VariantLoad


def make_candidate(model_dir: Path, destination: Path, temperature_factor: float) -> Path:
    """A copy of ``model_dir`` with its calibration temperature scaled and its version marked."""
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(model_dir, destination)
    calibration_path = destination / CALIBRATION_FILE
    calibration = Calibration.from_dict(json.loads(calibration_path.read_text()))
    softer = replace(calibration, temperature=calibration.temperature * temperature_factor)
    calibration_path.write_text(json.dumps(softer.to_dict()))
    metadata_path = destination / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())
    metadata[META_MODEL_VERSION] = f"{model_version(metadata)}-candidate"
    metadata_path.write_text(json.dumps(metadata))
    return destination


def threshold_of(model_dir: Path) -> float:
    """The decision threshold the model's server uses (its calibration)."""
    return Calibration.from_dict(json.loads((model_dir / CALIBRATION_FILE).read_text())).threshold


def _load(latencies: list[float], errors: int) -> comparison.VariantLoad:
    ok = latencies or [0.0]
    return comparison.VariantLoad(
        invocations=len(latencies) + errors,
        errors=errors,
        latency_p95_ms=report.percentile(ok, 95) if latencies else None,
    )


def mirror(requests: Iterable[Mapping[str, Any]], serving_url: str, candidate_url: str) -> Mirrored:
    """Send each de-identified request to both servers, as SageMaker copies it to a shadow."""
    latencies: dict[str, list[float]] = {serving_url: [], candidate_url: []}
    errors = {serving_url: 0, candidate_url: 0}
    for request in requests:
        body = {"instances": [to_endpoint_record(request, DEMO_DEIDENTIFICATION_KEY)]}
        for url in (serving_url, candidate_url):
            reply = traffic.call(f"{url}{INVOCATIONS_PATH}", "POST", body)
            if reply.status == 200:
                latencies[url].append(reply.latency_ms)
            else:
                errors[url] += 1
    return Mirrored(
        serving=_load(latencies[serving_url], errors[serving_url]),
        candidate=_load(latencies[candidate_url], errors[candidate_url]),
    )


def compare_captured(
    s3: Any,
    capture_uri: str,
    endpoint_name: str,
    since: datetime,
    mirrored: Mirrored,
    thresholds: tuple[float, float],
    minimum_pairs: int = LOCAL_MINIMUM_PAIRS,
) -> tuple[comparison.Comparison, comparison.Decision]:
    """The deployer's comparison and decision on what the two variants captured since ``since``."""
    now = datetime.now(UTC)
    pairs = shadow.captured_pairs(
        shadow.variant_answers(s3, capture_uri, endpoint_name, VARIANT_NAME, since, now),
        shadow.variant_answers(s3, capture_uri, endpoint_name, SHADOW_VARIANT_NAME, since, now),
    )
    found = comparison.compare(
        pairs,
        mirrored.serving,
        mirrored.candidate,
        serving_threshold=thresholds[0],
        candidate_threshold=thresholds[1],
    )
    return found, comparison.decide(found, LOCAL_BOUNDS, minimum_pairs)


def mirrored_requests(features_dir: Path, count: int) -> list[dict[str, Any]]:
    """API-shaped requests of the test split (made-up raw ids, hashed before the servers)."""
    records = traffic.read_split(features_dir, "test")
    return [
        traffic.as_request(records[i % len(records)], MIRROR_ID_OFFSET + i) for i in range(count)
    ]


def print_comparison(progress: report.Progress, found: comparison.Comparison) -> None:
    """The comparison as the on-call would read it."""
    values = found.as_dict()
    progress.fact("captured pairs", values["pairs"])
    progress.fact(
        "score correlation", f"Pearson {values['pearson']}, Spearman {values['spearman']}"
    )
    progress.fact("risk-band agreement", values["band_agreement"])
    progress.fact(
        "alert rate",
        f"serving {values['serving_alert_rate']}, candidate {values['candidate_alert_rate']} "
        f"(difference {values['alert_rate_difference']})",
    )
    progress.fact(
        "latency p95 (ms)",
        f"serving {values['serving_latency_p95_ms']}, "
        f"candidate {values['candidate_latency_p95_ms']}",
    )
    progress.fact(
        "errors", f"serving {values['serving_errors']}, candidate {values['candidate_errors']}"
    )


def start_server(run: Any, model_dir: Path, variant_name: str) -> tuple[Any, str]:
    """An ``inference.serve`` of ``model_dir`` as ``variant_name``, capturing beside the other."""
    port = free_port()
    server = run.processes.start(
        [
            sys.executable,
            "-m",
            "inference.serve",
            "--model-dir",
            str(model_dir),
            "--port",
            str(port),
            "--capture-dir",
            str(run.capture_dir),
            "--endpoint-name",
            run.config.names.endpoint,
            "--variant-name",
            variant_name,
        ],
        run.child_environment(),
        run.progress.log_path,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/ping", SERVER_START_TIMEOUT_S, server)
    return server, url


def promote(run: Any, candidate_dir: Path) -> str:
    """Shift the API to the candidate, served as the production variant (the blue/green shift
    of a real endpoint; the old server is stopped with everything else when the demo ends)."""
    _, url = start_server(run, candidate_dir, VARIANT_NAME)
    os.environ[RUNTIME_URL_ENV] = url
    predict_app.clients.clear()
    run.endpoint_url = url
    return url


def shadow_then_promote(run: Any) -> dict[str, Any]:
    """The demo step: candidate server, mirrored traffic, comparison, then promote or hold."""
    progress, config = run.progress, run.config
    res = run.require_resources()
    progress.line("Shadow stage: the candidate beside the serving model, on mirrored traffic")
    candidate_dir = make_candidate(
        run.model_dir, run.run_dir / CANDIDATE_DIR, CANDIDATE_TEMPERATURE_FACTOR
    )
    since = datetime.now(UTC).replace(microsecond=0)
    candidate, candidate_url = start_server(run, candidate_dir, SHADOW_VARIANT_NAME)
    progress.fact("shadow model server", f"{candidate_url} (variant {SHADOW_VARIANT_NAME})")
    requests = mirrored_requests(run.features_dir, MIRRORED_REQUESTS)
    mirrored = mirror(requests, run.endpoint_url, candidate_url)
    run.processes.stop(candidate)
    progress.fact("mirrored requests", f"{len(requests)} to both servers")
    s3 = boto3.client("s3")
    resources.upload_folder(s3, run.capture_dir, res.buckets.capture, resources.CAPTURE_PREFIX)
    found, decision = compare_captured(
        s3,
        f"s3://{res.buckets.capture}/{resources.CAPTURE_PREFIX}",
        config.names.endpoint,
        since,
        mirrored,
        (threshold_of(run.model_dir), threshold_of(candidate_dir)),
    )
    print_comparison(progress, found)
    progress.fact("decision", " ".join((decision.verdict, *decision.reasons)))
    shadow.record_decision(
        s3,
        res.buckets.capture,
        config.names.endpoint,
        CANDIDATE_DIR,
        since.strftime("%Y%m%dT%H%M%S"),
        shadow.DecisionRecord(decision.verdict, found.as_dict(), decision.reasons),
        res.kms_key_arn,
    )
    if decision.verdict == comparison.PROMOTE:
        progress.fact(
            "promoted", f"the candidate now answers the API ({promote(run, candidate_dir)})"
        )
    else:
        progress.fact("held", "the candidate is stopped; the serving model keeps serving")
    return {
        "decision": decision.verdict,
        "reasons": list(decision.reasons),
        "comparison": found.as_dict(),
        "mirrored_requests": len(requests),
    }
