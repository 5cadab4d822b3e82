"""The prediction API end to end: API Gateway events -> handler -> boto3 -> a real local HTTP
endpoint, with moto for SageMaker's control plane and Secrets Manager."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from contracts.deidentify import keyed_hash
from contracts.encounter import model_input_fields
from contracts.serving import MAX_BATCH_SIZE, MAX_BODY_BYTES
from lambdas.predict import app as predict_app
from tests.lambdas.fake_endpoint import Mode
from tests.lambdas.predict_fixtures import (
    GATEWAY_REQUEST_ID,
    LAMBDA_REQUEST_ID,
    TEST_KEY,
    PredictApi,
    api_gateway_event,
    predict_api,
    valid_record,
)


@pytest.fixture(scope="module")
def shared_api() -> Iterator[PredictApi]:
    """One endpoint, moto account and fake for the tests that change none of them."""
    with predict_api() as harness:
        yield harness


@pytest.fixture
def api(shared_api: PredictApi) -> PredictApi:
    shared_api.reset()
    return shared_api


pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def _error(code: str) -> dict[str, str]:
    return {"error": code, "request_id": GATEWAY_REQUEST_ID}


# --- happy paths ---------------------------------------------------------------------------------


def test_single_encounter_is_scored(api: PredictApi) -> None:
    result = api.predict(valid_record())
    assert result.status == 200
    assert result.body == {
        "request_id": GATEWAY_REQUEST_ID,
        "predictions": [
            {
                "encounter_key": keyed_hash(TEST_KEY, "encounter", "ADM-9001"),
                # logistic(-2 + 0.6 * 2 prior admissions + 0.03 * (67 - 50))
                "probability": 0.428004,
                "risk_band": "high",
                "model_version": "fake-model-7",
                "top_factors": [
                    {
                        "feature": "admissions in the prior 12 months",
                        "direction": "increases_risk",
                        "contribution": 1.2,
                    },
                    {"feature": "age", "direction": "increases_risk", "contribution": 0.51},
                ],
            }
        ],
    }


def test_batch_is_scored_in_request_order_with_bands(api: PredictApi) -> None:
    batch = {
        "instances": [
            valid_record(encounter_id="A", prior_admissions_12m=0, age_years=50),
            valid_record(encounter_id="B", prior_admissions_12m=1, age_years=60),
            valid_record(encounter_id="C", prior_admissions_12m=3, age_years=95),
        ]
    }
    result = api.predict(batch)
    assert result.status == 200
    predictions = result.body["predictions"]
    assert [p["encounter_key"] for p in predictions] == [
        keyed_hash(TEST_KEY, "encounter", name) for name in "ABC"
    ]
    # The third is scored at age 90 (the ETL's cap), not 95: logistic(1.0), not logistic(1.15).
    assert [p["probability"] for p in predictions] == [0.119203, 0.24974, 0.731059]
    assert [p["risk_band"] for p in predictions] == ["low", "moderate", "high"]
    assert predictions[0]["top_factors"] == []


def test_endpoint_only_ever_receives_keyed_hashes(api: PredictApi) -> None:
    body = {
        "instances": [
            valid_record(patient_id="MRN-0042", encounter_id="ADM-9001"),
            valid_record(patient_id=771234, encounter_id=None),
        ]
    }
    assert api.predict(body).status == 200
    received = api.fake.received_records()
    assert [r["patient_key"] for r in received] == [
        keyed_hash(TEST_KEY, "patient", "MRN-0042"),
        keyed_hash(TEST_KEY, "patient", "771234"),
    ]
    assert [r["encounter_key"] for r in received] == [
        keyed_hash(TEST_KEY, "encounter", "ADM-9001"),
        None,
    ]
    sent = json.dumps(api.fake.received)
    for raw in ("MRN-0042", "ADM-9001", "771234", "patient_id", "encounter_id"):
        assert raw not in sent
    assert api.fake.content_types == ["application/json"]


def test_endpoint_receives_the_full_canonical_record(api: PredictApi) -> None:
    record = valid_record()
    del record["note_text"]
    assert api.predict(record).status == 200
    (received,) = api.fake.received_records()
    expected = {k: v for k, v in record.items() if k not in ("patient_id", "encounter_id")}
    # Every nullable contract field not sent arrives as null (note_text among them).
    omitted = {spec.name: None for spec in model_input_fields() if spec.name not in record}
    assert "note_text" in omitted
    assert {k: v for k, v in received.items() if k not in ("patient_key", "encounter_key")} == {
        **expected,
        **omitted,
    }


def test_largest_batch_is_accepted(api: PredictApi) -> None:
    batch = {"instances": [valid_record(encounter_id=str(i)) for i in range(MAX_BATCH_SIZE)]}
    result = api.predict(batch)
    assert result.status == 200
    assert len(result.body["predictions"]) == MAX_BATCH_SIZE


def test_base64_encoded_body_is_accepted(api: PredictApi) -> None:
    event = api_gateway_event("POST", "/predict", valid_record(), base64_encoded=True)
    assert api.invoke(event).status == 200


def test_metrics_count_predictions_batch_and_high_risk(
    api: PredictApi, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = {
        "instances": [
            valid_record(prior_admissions_12m=0, age_years=50),
            valid_record(prior_admissions_12m=3, age_years=80),
            valid_record(prior_admissions_12m=4, age_years=70),
        ]
    }
    capsys.readouterr()
    assert api.predict(batch).status == 200
    assert api.predict({"instances": []}).status == 400
    metrics = _emitted_metrics(capsys.readouterr().out)
    assert metrics["PredictionsServed"] == [3.0]
    assert metrics["BatchSize"] == [3.0]
    assert metrics["RiskBandHigh"] == [2.0]
    assert metrics["ValidationErrors"] == [1.0]


def _emitted_metrics(stdout: str) -> dict[str, list[float]]:
    """Metric values from the CloudWatch EMF lines Powertools prints, in the namespace."""
    found: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob: dict[str, Any] = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "ReadmissionPlatform/API"
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found.setdefault(metric["Name"], []).extend(
                    value if isinstance(value, list) else [value]
                )
    return found


# --- bad input: 400, 413, 415, 404 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (valid_record(age_years=131), ["age_years"]),
        (valid_record(age_years=-1, sex="female"), ["age_years", "sex"]),
        (valid_record(length_of_stay_days="4.5"), ["length_of_stay_days"]),
        (valid_record(charlson_index=None), ["charlson_index"]),
        ({k: v for k, v in valid_record().items() if k != "patient_id"}, ["patient_id"]),
        (
            {"instances": [valid_record(), valid_record(discharge_disposition="moon")]},
            ["instances.1.discharge_disposition"],
        ),
        ({"instances": [valid_record(medications=["a", 7])]}, ["instances.0.medications.1"]),
        ({"instances": []}, ["instances"]),
        ({"instances": "all of them"}, ["instances"]),
        ([valid_record()], ["body"]),
        ("just a string", ["body"]),
    ],
)
def test_invalid_body_is_400_naming_the_fields(
    api: PredictApi, body: Any, fields: list[str]
) -> None:
    result = api.predict(body)
    assert result.status == 400
    assert result.body["error"] == "invalid_request"
    assert result.body["request_id"] == GATEWAY_REQUEST_ID
    assert result.body["fields"] == fields
    assert [d["field"] for d in result.body["details"]] == fields
    assert api.fake.invocations == 0


def test_unknown_field_is_400_without_echoing_its_name(api: PredictApi) -> None:
    result = api.predict(valid_record(**{"Jane Doe, DOB 1957-03-02": "x"}))
    assert result.status == 400
    assert result.body["fields"] == ["<unknown>"]
    assert result.body["details"] == [{"field": "<unknown>", "reason": "extra_forbidden"}]
    assert "Jane" not in result.raw_body
    assert "1957" not in result.raw_body


def test_malformed_json_is_400(api: PredictApi) -> None:
    result = api.invoke(api_gateway_event("POST", "/predict", raw_body='{"patient_id": "MRN-1'))
    assert result.status == 400
    assert result.body["fields"] == ["body"]
    assert "MRN-1" not in result.raw_body


def test_batch_over_the_limit_is_413(api: PredictApi) -> None:
    batch = {"instances": [valid_record()] * (MAX_BATCH_SIZE + 1)}
    result = api.predict(batch)
    assert (result.status, result.body) == (413, _error("payload_too_large"))
    assert api.fake.invocations == 0


def test_valid_body_over_the_byte_limit_is_413(api: PredictApi) -> None:
    note = "n" * 190_000
    batch = {"instances": [valid_record(note_text=note) for _ in range(6)]}
    assert len(json.dumps(batch)) > MAX_BODY_BYTES
    result = api.predict(batch)
    assert (result.status, result.body) == (413, _error("payload_too_large"))
    assert api.fake.invocations == 0


def test_invalid_body_over_the_byte_limit_is_413(api: PredictApi) -> None:
    raw = '{"patient_id": "' + "x" * (MAX_BODY_BYTES + 10)
    result = api.invoke(api_gateway_event("POST", "/predict", raw_body=raw))
    assert (result.status, result.body) == (413, _error("payload_too_large"))


def test_non_json_content_type_is_415(api: PredictApi) -> None:
    event = api_gateway_event(
        "POST", "/predict", valid_record(), headers={"Content-Type": "text/plain"}
    )
    result = api.invoke(event)
    assert (result.status, result.body) == (415, _error("unsupported_media_type"))


def test_missing_content_type_is_415(api: PredictApi) -> None:
    event = api_gateway_event("POST", "/predict", valid_record(), headers={"Content-Type": None})
    result = api.invoke(event)
    assert (result.status, result.body) == (415, _error("unsupported_media_type"))
    assert api.fake.invocations == 0


def test_unknown_route_is_404(api: PredictApi) -> None:
    result = api.invoke(api_gateway_event("GET", "/patients/MRN-0042"))
    assert (result.status, result.body) == (404, _error("not_found"))
    assert "MRN" not in result.raw_body


# --- the endpoint failing: 429, 503, 500 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        (Mode.THROTTLED, 429, "throttled"),
        (Mode.SERVICE_UNAVAILABLE, 429, "throttled"),
        (Mode.MODEL_NOT_READY, 503, "endpoint_unavailable"),
        (Mode.INTERNAL_FAILURE, 503, "endpoint_unavailable"),
        (Mode.MODEL_ERROR_503, 503, "endpoint_unavailable"),
    ],
)
def test_endpoint_pressure_and_outages_ask_for_a_retry(
    api: PredictApi, mode: Mode, status: int, code: str
) -> None:
    api.fake.mode = mode
    result = api.predict(valid_record())
    assert (result.status, result.body) == (status, _error(code))
    assert result.headers["retry-after"] == "5"


@pytest.mark.parametrize("mode", [Mode.MODEL_ERROR_500, Mode.MALFORMED])
def test_endpoint_contract_breaks_are_500_without_detail(api: PredictApi, mode: Mode) -> None:
    api.fake.mode = mode
    result = api.predict(valid_record())
    assert (result.status, result.body) == (500, _error("internal_error"))
    assert "retry-after" not in result.headers


def test_unexpected_bug_is_500_without_detail(
    api: PredictApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(records: list[dict[str, Any]], key: str | bytes) -> list[dict[str, Any]]:
        raise ValueError(f"cannot handle {records[0]['patient_id']}")

    monkeypatch.setattr(predict_app, "to_endpoint_records", broken)
    result = api.predict(valid_record())
    assert (result.status, result.body) == (500, _error("internal_error"))
    assert "MRN-0042" not in result.raw_body


# --- /health -------------------------------------------------------------------------------------


def test_health_reports_status_serving_model_version_and_the_probe(api: PredictApi) -> None:
    result = api.health()
    checked_at = result.body.pop("checked_at")
    assert (result.status, result.body) == (
        200,
        {
            "status": "ok",
            "endpoint_status": "InService",
            "model_version": "3",
            "probe": {
                "status": "ok",
                "model_version": "fake-model-7",
                "latency_ms": result.body["probe"]["latency_ms"],
            },
        },
    )
    assert datetime.fromisoformat(checked_at).tzinfo is not None
    assert isinstance(result.body["probe"]["latency_ms"], int)
    assert "retry-after" not in result.headers


def test_request_id_falls_back_to_the_lambda_request_id(api: PredictApi) -> None:
    event = api_gateway_event("POST", "/predict", {"instances": []})
    del event["requestContext"]
    result = api.invoke(event)
    assert result.status == 400
    assert result.body["request_id"] == LAMBDA_REQUEST_ID
