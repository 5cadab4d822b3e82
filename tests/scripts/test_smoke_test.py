"""The post-deployment smoke test against the local API Gateway: signed calls, pass and fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.predict.schema import EncounterRequest
from local_platform.gateway import LocalApiGateway, Route
from scripts import smoke_test

EVENTS: list[dict[str, Any]] = []
#: What the scripted API answers next, per route.
REPLIES: dict[str, tuple[int, Any]] = {}

HEALTHY = {"status": "ok", "endpoint_status": "InService"}
PREDICTED = {
    "request_id": "r-1",
    "predictions": [{"probability": 0.31, "risk_band": "moderate", "model_version": "4"}],
}


def _scripted(route: str) -> Any:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        EVENTS.append(event)
        status, body = REPLIES[route]
        text = body if isinstance(body, str) else json.dumps(body)
        return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": text}

    return handler


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalApiGateway]:
    routes = [
        Route("GET", "/health", _scripted("health"), "predict"),
        Route("POST", "/predict", _scripted("predict"), "predict"),
    ]
    with LocalApiGateway(routes) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    EVENTS.clear()
    REPLIES.update(health=(200, HEALTHY), predict=(200, PREDICTED))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _headers(event: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in event["headers"].items()}


def test_a_serving_api_passes_with_both_calls_signed_for_execute_api(
    gateway: LocalApiGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = smoke_test.main(["--api-url", gateway.url + "/", "--region", "eu-west-1"])
    assert code == 0
    assert [e["httpMethod"] for e in EVENTS] == ["GET", "POST"]
    for event in EVENTS:
        authorization = _headers(event)["authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/execute-api/aws4_request" in authorization
        assert "x-amz-date" in _headers(event)
    sent = json.loads(EVENTS[1]["body"])
    assert sent == smoke_test.SMOKE_ENCOUNTER
    out = capsys.readouterr().out
    assert out.splitlines() == ["PASS GET /health: HTTP 200", "PASS POST /predict: HTTP 200"]


def test_the_encounter_it_sends_is_a_valid_prediction_request() -> None:
    """The prediction API's own request model accepts it (else the smoke test would fail on
    a 400 in every healthy deployment)."""
    EncounterRequest.model_validate(smoke_test.SMOKE_ENCOUNTER)


@pytest.mark.parametrize(
    ("route", "reply", "failing"),
    [
        ("health", (503, {"status": "unavailable"}), "GET /health"),
        ("health", (200, {"status": "unavailable"}), "GET /health"),
        ("health", (403, {"message": "Missing Authentication Token"}), "GET /health"),
        ("predict", (500, {"message": "internal error"}), "POST /predict"),
        ("predict", (200, {"predictions": []}), "POST /predict"),
        (
            "predict",
            (200, {"predictions": [{"probability": 1.5, "risk_band": "high"}]}),
            "POST /predict",
        ),
        (
            "predict",
            (200, {"predictions": [{"probability": 0.2, "risk_band": "red"}]}),
            "POST /predict",
        ),
        ("predict", (200, "not json"), "POST /predict"),
    ],
)
def test_any_broken_answer_fails_the_run_and_names_the_call(
    gateway: LocalApiGateway,
    capsys: pytest.CaptureFixture[str],
    route: str,
    reply: tuple[int, Any],
    failing: str,
) -> None:
    REPLIES[route] = reply
    code = smoke_test.main(["--api-url", gateway.url, "--region", "us-east-1"])
    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("FAIL")] == [
        line for line in lines if failing in line
    ]
    assert any(line.startswith(f"FAIL {failing}: HTTP {reply[0]}") for line in lines)
    # never a response body on the console
    assert not any('unavailable"' in line or "internal error" in line for line in lines)


def test_an_unreachable_api_fails_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = smoke_test.main(["--api-url", "http://127.0.0.1:9", "--region", "us-east-1"])
    assert code == 1
    out = capsys.readouterr().out
    assert "FAIL GET /health: unreachable" in out
    assert "FAIL POST /predict: unreachable" in out


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(RuntimeError, match="no AWS credentials"):
        smoke_test.sigv4_signer("us-east-1")
