"""The published OpenAPI document: current, valid, and saying what the API really does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from contracts.encounter import model_input_fields
from contracts.serving import MAX_BATCH_SIZE
from lambdas.predict.openapi import main, openapi_json

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_committed_document_equals_a_fresh_generation() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == openapi_json(), (
        "docs/openapi.json is stale: run python -m lambdas.predict.openapi"
    )


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_predict_documents_every_status_the_api_returns(document: dict[str, Any]) -> None:
    responses = document["paths"]["/predict"]["post"]["responses"]
    assert sorted(responses) == ["200", "400", "413", "415", "422", "429", "500", "503"]
    assert sorted(document["paths"]["/health"]["get"]["responses"]) == ["200", "500", "503"]
    for status in ("429", "503"):
        assert "Retry-After" in responses[status]["headers"]
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for status in ("400", "415", "429", "500", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == error_ref
    # 413: the function's ErrorResponse, or API Gateway's own message over its 10 MB limit.
    gateway_ref = {"$ref": "#/components/schemas/GatewayMessage"}
    too_large = responses["413"]["content"]["application/json"]["schema"]
    assert too_large == {"oneOf": [error_ref, gateway_ref]}


def test_request_schema_is_the_contract_with_raw_identifiers(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["PredictRequest"]["oneOf"] == [
        {"$ref": "#/components/schemas/EncounterRequest"},
        {"$ref": "#/components/schemas/BatchRequest"},
    ]
    record = schemas["EncounterRequest"]
    assert record["additionalProperties"] is False
    assert set(record["properties"]) == {spec.name for spec in model_input_fields()} | {
        "patient_id",
        "encounter_id",
    }
    assert set(record["required"]) == {"patient_id"} | {
        spec.name for spec in model_input_fields() if not spec.nullable
    }
    instances = schemas["BatchRequest"]["properties"]["instances"]
    assert (instances["minItems"], instances["maxItems"]) == (1, MAX_BATCH_SIZE)


def test_main_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    main([str(target)])
    assert target.read_text(encoding="utf-8") == openapi_json()


def test_health_documents_the_control_plane_and_the_probe(document: dict[str, Any]) -> None:
    health = document["paths"]["/health"]["get"]["responses"]
    assert "Retry-After" in health["503"]["headers"]
    schemas = document["components"]["schemas"]
    assert set(schemas["HealthResponse"]["required"]) == {
        "status",
        "endpoint_status",
        "model_version",
        "probe",
        "checked_at",
    }
    assert schemas["ProbeReport"]["properties"]["status"]["enum"] == [
        "ok",
        "failed",
        "timeout",
        "throttled",
        "not_run",
    ]


def test_integer_fields_are_json_schema_integers_with_their_bounds(
    document: dict[str, Any],
) -> None:
    properties = document["components"]["schemas"]["EncounterRequest"]["properties"]
    assert properties["age_years"] | {"description": None} == {
        "type": "integer",
        "minimum": 0,
        "maximum": 130,
        "title": "Age Years",
        "description": None,
    }
    identifier = properties["patient_id"]["anyOf"][1]
    assert (identifier["type"], identifier["minimum"]) == ("integer", 0)
    assert identifier["exclusiveMaximum"] == 1e128  # as many digits as a string id has chars
