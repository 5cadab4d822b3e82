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
    return document


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
