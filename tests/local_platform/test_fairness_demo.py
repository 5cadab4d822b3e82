"""The demo's fairness step: the injected subgroup shift makes exactly the sex AUROC and
calibration alarms fire, through the real drift monitor, capture format and CloudWatch."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from contracts.deployment import VARIANT_NAME
from lambdas.drift_monitor import app as drift_app
from lambdas.drift_monitor.settings import MonitorSettings
from local_platform import fairness as demo
from local_platform.gateway import LocalApiGateway, Route
from local_platform.traffic import EXAMPLE_REQUEST
from stacks.config import FairnessConfig
from tests.stacks.cdk_helpers import cdk_context

BUCKET = "capture"
ENDPOINT = "readmission-dev-endpoint"
NOW = datetime(2024, 6, 3, 15, 30, tzinfo=UTC)
STAGE_FAIRNESS = FairnessConfig(
    **cdk_context()["stages"]["dev"]["fairness"],
)


class _Context:
    function_name = "drift-monitor"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:drift-monitor"
    aws_request_id = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def test_fairness_environment_is_what_the_monitor_reads() -> None:
    settings = MonitorSettings.from_env(
        {"ENDPOINT_NAME": ENDPOINT, "CAPTURE_BUCKET": BUCKET}
        | demo.fairness_environment(STAGE_FAIRNESS)
    )
    assert settings.fairness_window_days == STAGE_FAIRNESS.window_days
    assert settings.fairness.auroc_gap == STAGE_FAIRNESS.auroc_gap
    assert settings.fairness.calibration_gap == STAGE_FAIRNESS.calibration_gap
    assert settings.fairness.alert_rate_gap == STAGE_FAIRNESS.alert_rate_gap
    assert settings.fairness.min_patients == STAGE_FAIRNESS.min_patients
    assert settings.fairness.min_outcomes == STAGE_FAIRNESS.min_outcomes
    assert settings.ground_truth_prefix == "ground-truth"


def test_the_event_asks_for_the_window_that_holds_today() -> None:
    assert demo.fairness_event(NOW) == {"check": "fairness", "window_end": "2024-06-04T00:00:00Z"}


def test_a_group_is_enough_with_the_minimums_and_a_margin_of_outcomes() -> None:
    small = FairnessConfig(30, 0.1, 0.05, 0.1, min_patients=100, min_outcomes=10)
    assert not demo.enough([0.5] * 99, small, None)  # too few patients
    assert not demo.enough([0.1] * 100, small, None)  # 10 expected < 1.5 x 10
    assert demo.enough([0.15] * 100, small, None)
    assert demo.enough([0.0] * 100, small, 0.35)  # the shifted group: its own rate
    assert not demo.enough([0.99] * 100, small, None)  # too few non-readmissions


def test_outcomes_follow_scores_only_in_the_reference_group() -> None:
    rng = random.Random(1)
    scored = [(f"k{i}", group, p) for i in range(4000) for group, p in (("M", 0.9), ("F", 0.9))]
    scored += [(f"l{i}", group, 0.05) for i in range(4000) for group in ("M", "F")]
    labels = demo.label_lines(scored, rng)
    assert set(labels[0]) == {"encounter_key", "readmitted_30d", "sex"}

    def rate(group: str, p: float) -> float:
        chosen = [
            lbl["readmitted_30d"]
            for lbl, (_, g, score) in zip(labels, scored, strict=True)
            if g == group and score == p
        ]
        return sum(chosen) / len(chosen)

    assert rate("M", 0.9) == pytest.approx(0.9, abs=0.03)
    assert rate("M", 0.05) == pytest.approx(0.05, abs=0.03)
    assert rate("F", 0.9) == pytest.approx(demo.SHIFTED_RATE, abs=0.03)
    assert rate("F", 0.05) == pytest.approx(demo.SHIFTED_RATE, abs=0.03)


def test_firing_compares_each_gap_with_its_own_bound() -> None:
    gaps = {
        ("sex", "auroc"): 0.2,
        ("sex", "alert_rate"): 0.05,
        ("age_band", "calibration_in_the_large"): 0.05,  # at the bound: not above it
        ("race", "calibration_in_the_large"): 0.051,
    }
    assert demo.firing(gaps, STAGE_FAIRNESS) == ["race-calibration_in_the_large", "sex-auroc"]


# --- the cohort through an API -------------------------------------------------------------


def _predict(event: dict[str, Any], context: Any) -> dict[str, Any]:
    instances = json.loads(event["body"])["instances"]
    predictions = [
        {"encounter_key": f"h-{i['encounter_id']}", "probability": 0.2, "risk_band": "moderate"}
        for i in instances
    ]
    return {"statusCode": 200, "body": json.dumps({"predictions": predictions})}


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with LocalApiGateway([Route("POST", "/predict", _predict, "predict")]) as gateway:
        yield gateway.url


def test_a_group_is_scored_until_it_meets_the_minimums(api: str) -> None:
    small = FairnessConfig(30, 0.1, 0.05, 0.1, min_patients=150, min_outcomes=20)
    records = [dict(EXAMPLE_REQUEST, sex="M"), dict(EXAMPLE_REQUEST, sex="F")]
    requests = demo.requests_of_group(records, "M", random.Random(2), 500)
    scored = demo.score_cohort(api, requests, "M", small, None)
    # 0.2 each: 150 patients give 30 expected readmissions (= 1.5 x 20): two batches of 100
    assert len(scored) == 200
    assert {group for _, group, _ in scored} == {"M"}
    assert scored[0] == ("h-demo-encounter-500", "M", 0.2)


def test_a_sex_missing_from_the_split_is_a_clear_error() -> None:
    with pytest.raises(demo.FairnessDemoError, match="no encounter with sex F"):
        next(demo.requests_of_group([dict(EXAMPLE_REQUEST, sex="M")], "F", random.Random(1), 0))


# --- the whole check, against moto ---------------------------------------------------------


def _capture_line(key: str, sex: str, age: int, p: float, moment: datetime) -> str:
    record = {"encounter_key": key, "sex": sex, "age_years": age}
    band = "high" if p >= 0.5 else "low"
    prediction = {"encounter_key": key, "probability": p, "risk_band": band}
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"data": json.dumps({"instances": [record]}), "encoding": "JSON"},
                "endpointOutput": {
                    "data": json.dumps({"predictions": [prediction]}),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"inferenceTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "ENDPOINT_NAME": ENDPOINT,
        "CAPTURE_BUCKET": BUCKET,
        "CAPTURE_PREFIX": "capture",
        **demo.fairness_environment(STAGE_FAIRNESS),
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


def test_the_injected_shift_fires_the_sex_auroc_and_calibration_alarms(aws: None) -> None:
    """The stage's real bounds and minimums; the shift as the demo injects it."""
    rng = random.Random(3)
    s3 = boto3.client("s3")
    scored = []
    lines = []
    for index in range(1100):
        group = "M" if index % 2 else "F"
        key = f"{index:064x}"
        p = round(rng.betavariate(2, 5), 4)
        moment = NOW - timedelta(minutes=index % 300)
        scored.append((key, group, p))
        lines.append((moment, _capture_line(key, group, 40 + index % 50, p, moment)))
    for hour in {m.replace(minute=0, second=0) for m, _ in lines}:
        body = "\n".join(line for m, line in lines if m.replace(minute=0, second=0) == hour)
        s3.put_object(
            Bucket=BUCKET,
            Key=f"capture/{ENDPOINT}/{VARIANT_NAME}/{hour:%Y/%m/%d/%H}/part.jsonl",
            Body=body.encode(),
        )
    demo.write_labels(s3, BUCKET, demo.label_lines(scored, rng), NOW)

    result = drift_app.lambda_handler(demo.fairness_event(NOW), _Context())

    assert result["labelled_records"] == 1100
    assert result["groups_compared"]["sex"] == ["F", "M"]
    alarms = demo.firing(demo.read_gaps(ENDPOINT, NOW), STAGE_FAIRNESS)
    assert "sex-auroc" in alarms
    assert "sex-calibration_in_the_large" in alarms
    assert "sex-alert_rate" not in alarms  # the scores themselves did not shift
