"""API tests generated from docs/openapi.json by schemathesis, run against the real handler
through the local API Gateway on loopback (moto and the fake endpoint behind it).

Positive cases (valid by the document) must be answered 2xx; negative cases (broken by
schemathesis: wrong types, missing fields, out-of-range values, bad media types, undocumented
methods) must be rejected with a documented 4xx; and every answer must match the document:
its status, its content type, its headers and its body's schema. No answer may be a 5xx.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from lambdas.predict import app as predict_app
from local_platform.gateway import LocalApiGateway, Route
from tests.lambdas.predict_fixtures import predict_api

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
#: Examples per operation and generation mode: enough to cover every status, under a minute.
MAX_EXAMPLES = 40


def _json_routes_document() -> dict[str, Any]:
    """The document without what JSON Schema cannot generate valid cases for: a FHIR Bundle
    that maps to a scorable stay, and the CDS Hooks routes (a signed JWT, a coherent
    prefetch). Those have their own tests (test_predict_fhir.py, test_cds_hooks.py,
    tests/fhir_mapping), generated bundles included."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    for path in [p for p in document["paths"] if p.startswith("/cds-services")]:
        del document["paths"][path]
    for operation in document["paths"]["/predict"].values():
        operation.get("requestBody", {}).get("content", {}).pop("application/fhir+json", None)
    return document


schema = schemathesis.openapi.from_dict(_json_routes_document())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    database="none",
)
# A batch over MAX_BATCH_SIZE breaks the document's maxItems and is answered with the 413 the
# document names for it (body or batch over the limit), not with a 400.
schema.config.checks.negative_data_rejection.expected_statuses = [
    *schema.config.checks.negative_data_rejection.expected_statuses,
    "413",
]

#: Statuses answered, per operation, across the generated cases (checked by the last test).
SEEN: dict[str, Counter[int]] = {}

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    """The handler behind the local gateway, with moto and a fake endpoint behind it."""
    with predict_api() as api:
        routes = [
            Route(method, path, predict_app.lambda_handler, "prediction-api")
            for path, methods in predict_app.ROUTES.items()
            for method in methods
        ]
        with LocalApiGateway(routes) as gateway:
            yield gateway.url
        assert api.fake.invocations > 0  # valid requests did reach the endpoint


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document(case: schemathesis.Case, gateway_url: str) -> None:
    response = case.call_and_validate(base_url=gateway_url)
    SEEN.setdefault(f"{case.operation.method.upper()} {case.operation.path}", Counter())[
        response.status_code
    ] += 1


def test_the_generated_cases_reached_every_kind_of_answer() -> None:
    """The run above was not vacuous: valid, invalid and wrong-method requests all happened."""
    if set(SEEN) != {"POST /predict", "GET /health"}:
        pytest.skip("runs only after both generated tests (not under -k)")
    assert {200, 400, 405} <= set(SEEN["POST /predict"]), SEEN
    assert {200, 405} <= set(SEEN["GET /health"]), SEEN


def test_a_body_over_the_gateways_limit_gets_the_gateways_documented_413(
    gateway_url: str,
) -> None:
    """Over 10 MB API Gateway answers itself ({"message": ...}); the document says so (a
    generated case of 12.8 MB once failed the check above when it said ErrorResponse only)."""
    import contextlib
    import http.client
    from urllib.parse import urlsplit

    import jsonschema

    document = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
    body = json.dumps({"instances": [{"note_text": "P" * 10_500_000}]}).encode()
    address = urlsplit(gateway_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    # The gateway may answer from the headers and close before the body is all sent.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        connection.send(body)
    response = connection.getresponse()
    assert response.status == 413
    answer = json.loads(response.read())
    connection.close()
    schema_413 = document["paths"]["/predict"]["post"]["responses"]["413"]["content"][
        "application/json"
    ]["schema"]
    jsonschema.validate(answer, {**schema_413, "components": document["components"]})
