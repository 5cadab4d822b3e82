"""The demo's shadow step (local_platform/shadow.py): a candidate served beside the serving model,
the same de-identified requests sent to both, the capture read back through the deployer's own
units, and the deployer's decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from contracts.deployment import SHADOW_VARIANT_NAME
from contracts.model_artifact import CALIBRATION_FILE, METADATA_FILE, WEIGHTS_FILE
from inference.local_endpoint import LocalEndpoint, serve
from lambdas.deployer import comparison
from lambdas.deployer.deployment import VARIANT_NAME
from local_platform import resources, shadow, traffic
from tests.inference.artifacts import tiny_model_dir
from training.synthetic import synthetic_records

ENDPOINT = "readmission-local-endpoint"
BUCKET = "capture"
REQUESTS = 40


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def requests(n: int) -> list[dict[str, Any]]:
    return [
        traffic.as_request(record, i)
        for i, record in enumerate(synthetic_records(n, seed=17, with_notes=True)[0])
    ]


def run_shadow(
    model_dir: Path, tmp_path: Path, s3: Any, temperature_factor: float
) -> tuple[comparison.Comparison, comparison.Decision, shadow.Mirrored]:
    candidate_dir = shadow.make_candidate(model_dir, tmp_path / "candidate", temperature_factor)
    capture = tmp_path / "capture"
    since = datetime.now(UTC).replace(microsecond=0)
    served: LocalEndpoint
    with (
        serve(model_dir, capture_dir=capture, endpoint_name=ENDPOINT) as served,
        serve(
            candidate_dir,
            capture_dir=capture,
            endpoint_name=ENDPOINT,
            variant_name=SHADOW_VARIANT_NAME,
        ) as candidate,
    ):
        mirrored = shadow.mirror(requests(REQUESTS), served.url, candidate.url)
    resources.upload_folder(s3, capture, BUCKET, "capture")
    found, decision = shadow.compare_captured(
        s3,
        f"s3://{BUCKET}/capture",
        ENDPOINT,
        since,
        mirrored,
        (shadow.threshold_of(model_dir), shadow.threshold_of(candidate_dir)),
        minimum_pairs=REQUESTS // 2,
    )
    return found, decision, mirrored


def test_the_candidate_copy_changes_only_its_calibration_and_version(
    model_dir: Path, tmp_path: Path
) -> None:
    candidate = shadow.make_candidate(model_dir, tmp_path / "c", 1.5)
    old = json.loads((model_dir / CALIBRATION_FILE).read_text())
    new = json.loads((candidate / CALIBRATION_FILE).read_text())
    assert new["temperature"] == pytest.approx(old["temperature"] * 1.5)
    assert new["threshold"] == old["threshold"]
    version = json.loads((model_dir / METADATA_FILE).read_text())["model_version"]
    assert json.loads((candidate / METADATA_FILE).read_text())["model_version"] == (
        f"{version}-candidate"
    )
    assert (candidate / WEIGHTS_FILE).read_bytes() == (model_dir / WEIGHTS_FILE).read_bytes()


def test_mirrored_traffic_is_captured_by_both_variants_and_compared(
    model_dir: Path, tmp_path: Path, s3: Any
) -> None:
    found, decision, mirrored = run_shadow(model_dir, tmp_path, s3, 1.0)

    assert mirrored.serving.invocations == mirrored.candidate.invocations == REQUESTS
    assert mirrored.candidate.errors == 0
    assert found.pairs == REQUESTS  # every encounter answered by both, joined on its key
    assert found.pearson == pytest.approx(1.0)
    assert found.band_agreement == 1.0
    assert decision.verdict == comparison.PROMOTE, (decision.reasons, found.as_dict())
    folders = {
        p.parent.relative_to(tmp_path / "capture").parts[1]
        for p in (tmp_path / "capture").rglob("*.jsonl")
    }
    assert folders == {VARIANT_NAME, SHADOW_VARIANT_NAME}
    captured = "".join(p.read_text() for p in (tmp_path / "capture").rglob("*.jsonl"))
    assert "demo-patient-" not in captured  # only keyed hashes reach either server


def test_a_candidate_that_moves_the_risk_bands_is_held(
    model_dir: Path, tmp_path: Path, s3: Any
) -> None:
    """A far softer calibration pulls every score towards one half: the bands and the alert
    rate at the threshold move, and the deployer's bounds hold it."""
    _, decision, _ = run_shadow(model_dir, tmp_path, s3, 25.0)

    assert decision.verdict == comparison.HOLD
    assert decision.reasons
