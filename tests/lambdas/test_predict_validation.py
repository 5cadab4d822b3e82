"""Request validation in front of /predict: one pydantic pass over the raw body, no Powertools
OpenAPI machinery at run time, and nothing from the body in any error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from lambdas.predict.errors import PayloadTooLargeError, field_errors
from lambdas.predict.schema import BatchRequest, EncounterRequest, PredictRequest
from lambdas.predict.validation import is_json, parse_body
from tests.lambdas.predict_fixtures import valid_record

LIMIT = 1_000_000


def _errors(body: str) -> list[tuple[str, str]]:
    with pytest.raises(RequestValidationError) as caught:
        parse_body(body, PredictRequest, LIMIT)
    return field_errors(caught.value.errors())


def test_a_single_record_and_a_batch_are_told_apart() -> None:
    single = cast(Any, parse_body(json.dumps(valid_record()), PredictRequest, LIMIT))
    assert isinstance(single.root, EncounterRequest)
    body = json.dumps({"instances": [valid_record()] * 2})
    batch = cast(Any, parse_body(body, PredictRequest, LIMIT))
    assert isinstance(batch.root, BatchRequest)
    assert len(batch.root.instances) == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", [("body", "json_invalid")]),
        ('{"patient_id": "MRN-1', [("body", "json_invalid")]),
        (json.dumps([valid_record()]), [("body", "union_tag_not_found")]),
        ('"a string"', [("body", "union_tag_not_found")]),
        (json.dumps(valid_record(age_years="67")), [("age_years", "int_type")]),
        (json.dumps(valid_record(age_years=True)), [("age_years", "int_type")]),
        (
            json.dumps({"instances": [valid_record(sex="x")]}),
            [("instances.0.sex", "literal_error")],
        ),
        ('{"instances": []}', [("instances", "too_short")]),
    ],
)
def test_bad_bodies_name_the_field_and_the_reason(
    body: str, expected: list[tuple[str, str]]
) -> None:
    assert _errors(body) == expected


def test_errors_carry_no_value_and_no_chained_pydantic_message() -> None:
    body = json.dumps(valid_record(patient_id=["MRN-7731"], age_years="sixty-seven"))
    with pytest.raises(RequestValidationError) as caught:
        parse_body(body, PredictRequest, LIMIT)
    assert "MRN-7731" not in repr(caught.value.errors())
    assert "sixty-seven" not in repr(caught.value.errors())
    assert all("input" not in error for error in caught.value.errors())
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_size_is_checked_in_bytes_before_parsing() -> None:
    with pytest.raises(PayloadTooLargeError):
        parse_body('{"patient_id": "' + "x" * 40, PredictRequest, 32)  # not even JSON
    with pytest.raises(PayloadTooLargeError):
        parse_body(json.dumps({"n": "é" * 10}, ensure_ascii=False), PredictRequest, 25)
    # Under the real limit the same body is parsed, and rejected as a record.
    parsed = _errors(json.dumps({"n": "é" * 10}, ensure_ascii=False))
    assert ("<unknown>", "extra_forbidden") in parsed


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        (None, False),
        ("", False),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ('application/json;charset="UTF-8"', True),
        ("application/json ; charset=utf-8 ; version=2", True),
        ("application/json;;", True),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("application/jsonp", False),
        ("application/json-seq", False),
        ("application/json+x", False),
        ("application/merge-patch+json", False),
        ("application/json, text/plain", False),
        ("application/json; charset=latin-1", False),
        ("application/json; charset=utf8", False),
        ("application/json; charset=utf-8; charset=latin-1", False),
        ("application/json; charset", False),
        ("application/json; =utf-8", False),
        ('application/json; charset="utf-8', False),
        ("application /json", False),
        ("application/json\r\nX-Injected: 1", False),
        ("application/json\x00", False),
        ("application", False),
        ("*/*", False),
    ],
)
def test_only_json_content_types_are_accepted(content_type: str | None, accepted: bool) -> None:
    assert is_json(content_type) is accepted


_SERVE_ONE_OF_EACH = """
import json, sys
import lambdas.predict.app as app
from tests.lambdas.predict_fixtures import LambdaContextStub, api_gateway_event, valid_record

class Body:
    def __init__(self, data): self.data = data
    def read(self): return self.data

class Runtime:
    def invoke_endpoint(self, **kwargs):
        prediction = {"encounter_key": None, "probability": 0.2, "risk_band": "low",
                      "model_version": "1", "top_factors": []}
        return {"Body": Body(json.dumps({"predictions": [prediction]}).encode())}

app.clients._clients["sagemaker-runtime"] = Runtime()
context = LambdaContextStub()
ok = app.lambda_handler(api_gateway_event("POST", "/predict", valid_record()), context)
bad = app.lambda_handler(api_gateway_event("POST", "/predict", {"instances": []}), context)
print(ok["statusCode"], bad["statusCode"], file=sys.stderr)
print(" ".join(sorted(sys.modules)))
"""

#: Powertools' OpenAPI validation machinery: only the document generator needs it.
OPENAPI_MACHINERY = (
    "aws_lambda_powertools.event_handler.openapi.compat",
    "aws_lambda_powertools.event_handler.openapi.params",
    "aws_lambda_powertools.event_handler.openapi.dependant",
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
)


def test_serving_requests_never_loads_the_openapi_machinery() -> None:
    env: dict[str, Any] = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "ENDPOINT_NAME": "validation-test",
        "DEID_KEY": "validation-test-key",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    out = subprocess.run(
        [sys.executable, "-c", _SERVE_ONE_OF_EACH],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "200 400" in out.stderr
    loaded = set(out.stdout.split())
    assert "lambdas.predict.validation" in loaded
    assert not loaded & set(OPENAPI_MACHINERY)
