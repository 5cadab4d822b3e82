"""Publish the API's OpenAPI document (``docs/openapi.json``) from the resolver itself.

``python -m lambdas.predict.openapi [PATH]`` rewrites it; a test fails when the committed file
differs from a fresh generation, so the document cannot go stale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import Server, ServerVariable

from contracts.encounter import SCHEMA_VERSION
from lambdas.predict.app import app

DEFAULT_PATH = Path("docs/openapi.json")
TITLE = "Readmission risk prediction API"
#: The API's version follows the encounter schema it accepts.
API_VERSION = SCHEMA_VERSION
DESCRIPTION = (
    "30-day readmission risk for hospital encounters. Requests carry raw hospital "
    "identifiers, which the API replaces by keyed hashes before anything leaves it; "
    "errors name the fields at fault and never echo a value."
)
#: Powertools documents its own validation errors; this API answers 400/500 with ErrorResponse.
_POWERTOOLS_ONLY_RESPONSES = ("422",)
_POWERTOOLS_ONLY_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
_ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document of the API as it behaves."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=API_VERSION,
            description=DESCRIPTION,
            servers=[
                Server(
                    url="https://{apiId}.execute-api.{region}.amazonaws.com/{stage}",
                    description="API Gateway stage (filled in by the deployment).",
                    variables={
                        "apiId": ServerVariable(default="api-id"),
                        "region": ServerVariable(default="us-east-1"),
                        "stage": ServerVariable(default="prod"),
                    },
                )
            ],
        )
    )
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            for status in _POWERTOOLS_ONLY_RESPONSES:
                responses.pop(status, None)
            responses["500"] = {
                "description": "A bug or a misconfiguration; quote request_id.",
                "content": {"application/json": {"schema": _ERROR_SCHEMA_REF}},
            }
    schemas = document["components"]["schemas"]
    for name in _POWERTOOLS_ONLY_SCHEMAS:
        schemas.pop(name, None)
    _document_gateway_limit(document)
    _document_fhir_and_cds_hooks(document)
    return document


def _document_gateway_limit(document: dict[str, Any]) -> None:
    """A body over API Gateway's 10 MB payload limit never reaches the function: the gateway
    answers 413 itself with ``{"message": ...}`` (API Gateway quotas, "Payload size": 10 MB;
    https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html)."""
    document["components"]["schemas"]["GatewayMessage"] = {
        "title": "GatewayMessage",
        "description": "API Gateway's own answer, before the function runs.",
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
    }
    predict = document["paths"]["/predict"]["post"]
    too_large = predict["responses"].get("413")
    if too_large is None:
        return
    too_large["description"] += " Over API Gateway's 10 MB payload limit: the gateway's message."
    too_large["content"]["application/json"] = {
        "schema": {"oneOf": [_ERROR_SCHEMA_REF, _ref("GatewayMessage")]}
    }


_FHIR = "application/fhir+json"
_FHIR_SCHEMAS: dict[str, Any] = {
    "FhirBundle": {
        "type": "object",
        "description": "A FHIR R4 Bundle (collection or transaction) of one patient's stay: "
        "Patient, the inpatient Encounter (and earlier Encounters), its Conditions, "
        "Procedures, MedicationRequests, Observations and discharge-summary "
        "DocumentReference. Mapped as docs/api.md describes.",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle"]},
            "type": {"type": "string", "enum": ["collection", "transaction"]},
            "entry": {"type": "array", "items": {"type": "object"}},
        },
    },
    "RiskAssessment": {
        "type": "object",
        "description": "FHIR R4 RiskAssessment: status final, subject and encounter as the "
        "request referenced them, method.coding.version the model version, "
        "prediction[0].probabilityDecimal, qualitativeRisk in "
        "http://terminology.hl7.org/CodeSystem/risk-probability, the top factors as "
        "rationale and note.",
        "required": ["resourceType", "status", "subject", "prediction"],
        "properties": {"resourceType": {"type": "string", "enum": ["RiskAssessment"]}},
    },
    "OperationOutcome": {
        "type": "object",
        "description": "FHIR R4 OperationOutcome: one issue, the platform's reason code in "
        "details.coding, fixed diagnostics with the request id, the element at fault as "
        "expression; never a value sent.",
        "required": ["resourceType", "issue"],
        "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]}},
    },
    "CdsHooksResponse": {
        "type": "object",
        "description": "CDS Hooks 2.0 response: one card (summary, indicator, Markdown "
        "detail, source, and a link to the worklist page where configured).",
        "required": ["cards"],
        "properties": {"cards": {"type": "array", "items": {"type": "object"}}},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _document_fhir_and_cds_hooks(document: dict[str, Any]) -> None:
    """The FHIR media types of POST /predict and the CDS routes' JWT scheme, which the
    resolver's route signatures cannot express."""
    document["components"]["schemas"].update(_FHIR_SCHEMAS)
    document["components"].setdefault("securitySchemes", {})["cdsHooksJwt"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The EHR's JWT (RS384 or ES384) as CDS Hooks 2.0 specifies; checked by "
        "the API's Lambda authorizer against the stage's trusted issuers.",
    }
    predict = document["paths"]["/predict"]["post"]
    predict["requestBody"]["content"][_FHIR] = {"schema": _ref("FhirBundle")}
    predict["responses"]["200"].setdefault("content", {})[_FHIR] = {
        "schema": _ref("RiskAssessment")
    }
    outcome = {_FHIR: {"schema": _ref("OperationOutcome")}}
    for status, response in predict["responses"].items():
        if status != "200":
            response.setdefault("content", {}).update(outcome)
    predict["responses"]["422"] = {
        "description": "A FHIR Bundle that does not describe a stay the contract can score.",
        "content": outcome,
    }
    for path in ("/cds-services", "/cds-services/readmission-risk"):
        for operation in document["paths"][path].values():
            operation["security"] = [{"cdsHooksJwt": []}]
    hook = document["paths"]["/cds-services/readmission-risk"]["post"]
    hook["responses"]["200"]["content"] = {"application/json": {"schema": _ref("CdsHooksResponse")}}
    hook["responses"]["422"] = {
        "description": "The prefetch is not a stay to score (the reason code is the error).",
        "content": {"application/json": {"schema": _ERROR_SCHEMA_REF}},
    }


def openapi_json() -> str:
    """Return the document as the text committed in docs/openapi.json."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Write the document to PATH (default docs/openapi.json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    args.path.write_text(openapi_json(), encoding="utf-8")


if __name__ == "__main__":
    main()
