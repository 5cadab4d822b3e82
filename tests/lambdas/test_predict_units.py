"""The prediction API's small units, without a handler: schema, de-identification, error
mapping, key provider, health cache, settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Tracer
from botocore.exceptions import ClientError, EndpointConnectionError
from pydantic import ValidationError

from contracts.deidentify import keyed_hash
from contracts.encounter import FieldKind, model_input_fields
from lambdas.predict import schema
from lambdas.predict.endpoint import classify_client_error, parse_predictions
from lambdas.predict.errors import (
    EndpointContractError,
    EndpointThrottledError,
    EndpointUnavailableError,
    ServiceMisconfiguredError,
    field_errors,
    field_path,
    is_batch_too_large,
)
from lambdas.predict.health import EndpointHealth, HealthCache, check_endpoint
from lambdas.predict.keys import KeyProvider, KeyUnavailableError
from lambdas.predict.records import to_endpoint_record
from lambdas.predict.settings import Settings, SettingsError
from lambdas.predict.tracing import NoopProvider, make_tracer
from tests.lambdas.predict_fixtures import valid_record

KEY = "unit-key"


# --- request schema ------------------------------------------------------------------------------


def test_request_record_covers_exactly_the_contract_model_inputs() -> None:
    expected = {spec.name for spec in model_input_fields()} | {"patient_id", "encounter_id"}
    assert set(schema.EncounterRequest.model_fields) == expected


def test_request_bounds_categories_and_required_fields_follow_the_contract() -> None:
    properties = schema.EncounterRequest.model_json_schema()["properties"]
    required = set(schema.EncounterRequest.model_json_schema()["required"])
    for spec in model_input_fields():
        prop = properties[spec.name]
        branch = prop["anyOf"][0] if spec.nullable else prop
        if spec.kind == FieldKind.NUMERIC:
            assert (branch["minimum"], branch["maximum"]) == (spec.valid_min, spec.valid_max)
            assert branch["type"] == ("integer" if spec.dtype == "int" else "number")
        if spec.categories is not None:
            assert branch["enum"] == list(spec.categories)
        assert (spec.name in required) == (not spec.nullable), spec.name
    assert "patient_id" in required
    assert "encounter_id" not in required


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"age_years": "67"}, "age_years"),  # strict: no string-to-number coercion
        ({"age_years": True}, "age_years"),  # strict: a bool is not an int
        ({"age_years": 67.5}, "age_years"),
        ({"length_of_stay_days": float("nan")}, "length_of_stay_days"),
        ({"prior_admissions_12m": 10_001}, "prior_admissions_12m"),
        ({"sex": "female"}, "sex"),
        ({"diagnosis_codes": "4280"}, "diagnosis_codes"),
        ({"diagnosis_codes": ["4280", ""]}, "diagnosis_codes.1"),
        ({"patient_id": ""}, "patient_id"),
        ({"patient_id": -4}, "patient_id"),
        ({"note_text": "x" * 200_001}, "note_text"),
    ],
)
def test_request_record_rejects_bad_values(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        schema.EncounterRequest.model_validate(valid_record(**overrides))
    assert {field_path(e["loc"], e["type"]) for e in info.value.errors()} == {field}


def test_float_fields_accept_integers_and_nullable_fields_may_be_omitted() -> None:
    record = valid_record(length_of_stay_days=3)
    for name in ("admitting_service", "prior_outpatient_visits_12m", "note_text", "encounter_id"):
        del record[name]
    parsed = schema.EncounterRequest.model_validate(record).model_dump()
    assert parsed["length_of_stay_days"] == 3.0
    assert parsed["note_text"] is None
    assert parsed["encounter_id"] is None


def test_request_kind_tells_batch_from_single() -> None:
    assert schema.request_kind({"instances": []}) == "batch"
    assert schema.request_kind({"patient_id": "p"}) == "single"
    assert schema.request_kind([1]) is None
    assert schema.request_kind("x") is None


def test_request_records_keeps_batch_order() -> None:
    body = {"instances": [valid_record(patient_id="a"), valid_record(patient_id="b")]}
    records = schema.request_records(schema.PredictRequest.model_validate(body))
    assert [r["patient_id"] for r in records] == ["a", "b"]


# --- de-identification ---------------------------------------------------------------------------


def test_endpoint_record_carries_keyed_hashes_only_and_capped_age() -> None:
    record = schema.EncounterRequest.model_validate(valid_record(age_years=97)).model_dump()
    out = to_endpoint_record(record, KEY)
    assert out["patient_key"] == keyed_hash(KEY, "patient", "MRN-0042")
    assert out["encounter_key"] == keyed_hash(KEY, "encounter", "ADM-9001")
    assert "patient_id" not in out
    assert "encounter_id" not in out
    assert out["age_years"] == 90
    assert out["charlson_index"] == record["charlson_index"]


def test_integer_identifiers_hash_as_their_decimal_string() -> None:
    record = schema.EncounterRequest.model_validate(
        valid_record(patient_id=10006, encounter_id=None)
    ).model_dump()
    out = to_endpoint_record(record, KEY)
    assert out["patient_key"] == keyed_hash(KEY, "patient", "10006")
    assert out["encounter_key"] is None


# --- validation errors to field paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "error_type", "expected"),
    [
        (("body", "single", "age_years"), "less_than_equal", "age_years"),
        (("body", "batch", "instances", 3, "sex"), "literal_error", "instances.3.sex"),
        (
            ("body", "batch", "instances", 0, "diagnosis_codes", 7),
            "string_too_long",
            "instances.0.diagnosis_codes.7",
        ),
        (("body", "single", "patient_id", "constrained-str"), "string_too_short", "patient_id"),
        (("body", "single", "Jane Doe 1957-03-02"), "extra_forbidden", "<unknown>"),
        (
            ("body", "batch", "instances", 1, "MRN 12345"),
            "extra_forbidden",
            "instances.1.<unknown>",
        ),
        (("body", 17), "json_invalid", "body"),
        ((), "union_tag_not_found", "body"),
    ],
)
def test_field_path_keeps_only_contract_names_and_indexes(
    loc: tuple[Any, ...], error_type: str, expected: str
) -> None:
    assert field_path(loc, error_type) == expected


def test_field_errors_are_unique_and_ordered() -> None:
    errors = [
        {"loc": ("body", "single", "age_years"), "type": "missing"},
        {"loc": ("body", "single", "sex"), "type": "literal_error", "input": "secret"},
        {"loc": ("body", "single", "age_years"), "type": "missing"},
    ]
    assert field_errors(errors) == [("age_years", "missing"), ("sex", "literal_error")]


def test_batch_too_large_is_told_from_other_length_errors() -> None:
    assert is_batch_too_large([{"loc": ("body", "batch", "instances"), "type": "too_long"}])
    assert not is_batch_too_large(
        [{"loc": ("body", "single", "diagnosis_codes"), "type": "too_long"}]
    )
    assert not is_batch_too_large([{"loc": ("body", "batch", "instances"), "type": "too_short"}])


# --- endpoint errors -----------------------------------------------------------------------------


def _client_error(code: str, status: int, message: str = "", **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, "InvokeEndpoint")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("ThrottlingException", 400), EndpointThrottledError),
        (_client_error("ServiceUnavailable", 503), EndpointThrottledError),
        (_client_error("ModelNotReadyException", 429), EndpointUnavailableError),
        (_client_error("InternalFailure", 500), EndpointUnavailableError),
        (_client_error("InternalDependencyException", 530), EndpointUnavailableError),
        (
            _client_error("ValidationError", 400, "Endpoint x of account 1 not found."),
            EndpointUnavailableError,
        ),
        (_client_error("ValidationError", 400, "Body is too large"), EndpointContractError),
        (_client_error("ModelError", 424, OriginalStatusCode=503), EndpointUnavailableError),
        (_client_error("ModelError", 424, OriginalStatusCode=429), EndpointThrottledError),
        (_client_error("ModelError", 424, OriginalStatusCode=500), EndpointContractError),
        (_client_error("SomethingNew", 429), EndpointThrottledError),
        (_client_error("AccessDeniedException", 400), EndpointContractError),
    ],
)
def test_runtime_errors_map_to_api_errors(error: ClientError, expected: type[Exception]) -> None:
    assert type(classify_client_error(error)) is expected


def test_endpoint_answer_must_match_the_contract_and_the_record_count() -> None:
    prediction = (
        b'{"encounter_key": null, "probability": 0.25, "risk_band": "low",'
        b' "model_version": "1", "top_factors": []}'
    )
    assert parse_predictions(b'{"predictions": [' + prediction + b"]}", 1)[0].probability == 0.25
    with pytest.raises(EndpointContractError):
        parse_predictions(b'{"predictions": [' + prediction + b"]}", 2)
    with pytest.raises(EndpointContractError):
        parse_predictions(b'{"predictions": [{"probability": 2}]}', 1)
    with pytest.raises(EndpointContractError):
        parse_predictions(b"<html>", 1)


# --- the de-identification key -------------------------------------------------------------------


class _SecretsStub:
    def __init__(self, errors: list[ClientError] | None = None) -> None:
        self.calls = 0
        self.errors = errors or []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ARN": SecretId, "SecretString": "from-secrets-manager"}


def test_key_comes_from_the_secret_once_and_is_cached() -> None:
    stub = _SecretsStub()
    provider = KeyProvider(lambda: stub)
    settings = Settings(endpoint_name="ep", deid_secret_arn="arn:secret", deid_key="local")
    assert provider.get(settings) == "from-secrets-manager"
    assert provider.get(settings) == "from-secrets-manager"
    assert stub.calls == 1


def test_key_falls_back_to_the_local_variable_and_fails_closed_without_any() -> None:
    provider = KeyProvider(lambda: pytest.fail("no secret configured"))
    assert provider.get(Settings(endpoint_name="ep", deid_key="local")) == "local"
    provider.clear()
    with pytest.raises(ServiceMisconfiguredError):
        provider.get(Settings(endpoint_name="ep"))


def test_transient_secret_failures_are_503_and_not_cached() -> None:
    stub = _SecretsStub([_client_error("ThrottlingException", 400)])
    provider = KeyProvider(lambda: stub)
    settings = Settings(endpoint_name="ep", deid_secret_arn="arn:secret")
    with pytest.raises(KeyUnavailableError):
        provider.get(settings)
    assert provider.get(settings) == "from-secrets-manager"


def test_missing_secret_is_a_misconfiguration() -> None:
    stub = _SecretsStub([_client_error("ResourceNotFoundException", 400)])
    with pytest.raises(ServiceMisconfiguredError):
        KeyProvider(lambda: stub).get(Settings(endpoint_name="ep", deid_secret_arn="arn:x"))


# --- health --------------------------------------------------------------------------------------


class _SageMakerStub:
    def __init__(self, status: str = "InService", tags: list[dict[str, str]] | None = None) -> None:
        self.status = status
        self.tags = [{"Key": "readmission:model-version", "Value": "12"}] if tags is None else tags
        self.error: Exception | None = None

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:  # noqa: N803
        if self.error is not None:
            raise self.error
        return {"EndpointStatus": self.status, "EndpointConfigName": "cfg"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803
        return {"EndpointConfigArn": f"arn:aws:sagemaker:::endpoint-config/{EndpointConfigName}"}

    def list_tags(self, ResourceArn: str) -> dict[str, Any]:  # noqa: N803
        return {"Tags": self.tags}


@pytest.mark.parametrize(
    ("status", "serving"),
    [
        ("InService", True),
        ("Updating", True),
        ("Creating", False),
        ("Failed", False),
        ("OutOfService", False),
        ("Deleting", False),
    ],
)
def test_health_serving_follows_endpoint_status(status: str, serving: bool) -> None:
    health = check_endpoint(_SageMakerStub(status), "ep")
    assert health == EndpointHealth(status, "12")
    assert health.serving is serving


def test_health_without_version_tag_reports_none() -> None:
    assert check_endpoint(_SageMakerStub(tags=[]), "ep").model_version is None


def test_health_maps_missing_and_unreachable_endpoints() -> None:
    stub = _SageMakerStub()
    stub.error = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "Could not find endpoint 'ep'."}},
        "DescribeEndpoint",
    )
    assert check_endpoint(stub, "ep") == EndpointHealth("NotFound", None)
    stub.error = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert check_endpoint(stub, "ep") == EndpointHealth("Unknown", None)
    stub.error = ClientError({"Error": {"Code": "AccessDeniedException"}}, "DescribeEndpoint")
    with pytest.raises(ClientError):
        check_endpoint(stub, "ep")


def test_health_cache_recomputes_only_after_its_ttl() -> None:
    now = [100.0]
    cache = HealthCache(clock=lambda: now[0])
    answers = iter([EndpointHealth("InService", "1"), EndpointHealth("Failed", "1")])
    assert cache.get(30, lambda: next(answers)).endpoint_status == "InService"
    now[0] = 129.9
    assert cache.get(30, lambda: next(answers)).endpoint_status == "InService"
    now[0] = 130.0
    assert cache.get(30, lambda: next(answers)).endpoint_status == "Failed"


# --- settings ------------------------------------------------------------------------------------


def test_settings_defaults_and_overrides() -> None:
    settings = Settings.from_env({"ENDPOINT_NAME": "ep", "ENDPOINT_READ_TIMEOUT_S": "2.5"})
    assert settings == Settings(endpoint_name="ep", read_timeout_s=2.5)
    assert (settings.max_attempts, settings.health_cache_ttl_s, settings.retry_after_s) == (
        2,
        30.0,
        5,
    )
    assert settings.deadline_s == 8.0
    assert Settings.from_env({"ENDPOINT_NAME": "ep", "REQUEST_DEADLINE_S": "2.5"}).deadline_s == 2.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "ENDPOINT_NAME is not set"),
        (
            {"ENDPOINT_NAME": "ep", "ENDPOINT_MAX_ATTEMPTS": "lots"},
            "ENDPOINT_MAX_ATTEMPTS must be a number",
        ),
        ({"ENDPOINT_NAME": "ep", "ENDPOINT_MAX_ATTEMPTS": "0"}, "at least 1"),
        ({"ENDPOINT_NAME": "ep", "ENDPOINT_CONNECT_TIMEOUT_S": "-1"}, "must be positive"),
        ({"ENDPOINT_NAME": "ep", "REQUEST_DEADLINE_S": "0"}, "REQUEST_DEADLINE_S must be positive"),
        ({"ENDPOINT_NAME": "ep", "REQUEST_DEADLINE_S": "nan"}, "REQUEST_DEADLINE_S must be"),
    ],
)
def test_bad_settings_name_the_variable_not_the_value(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        Settings.from_env(env)
    assert "lots" not in str(info.value)


# --- tracing --------------------------------------------------------------------------------------


def test_tracer_is_a_no_op_when_tracing_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    tracer = make_tracer("prediction-api")
    assert isinstance(tracer.provider, NoopProvider)
    with tracer.provider.in_subsegment(name="## step") as segment:
        segment.put_annotation("ignored", "value")


def test_tracer_uses_x_ray_in_a_traced_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    Tracer._reset_config()  # Powertools caches the first Tracer's provider on the class
    try:
        tracer = make_tracer("prediction-api")
        assert type(tracer.provider).__module__.startswith("aws_xray_sdk")
        assert tracer.disabled is False
    finally:
        Tracer._reset_config()


# --- what the module imports ---------------------------------------------------------------------

#: What the Lambda Python runtime (boto3) and the Powertools v3 layer provide.
RUNTIME_AND_LAYER = {
    "annotated_types",
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "boto3",
    "botocore",
    "dateutil",
    "jmespath",
    "pydantic",
    "pydantic_core",
    "s3transfer",
    "typing_extensions",
    "typing_inspection",
    "urllib3",
    "wrapt",
}
_IMPORTED_ROOTS = (
    "import sys, lambdas.predict.app; "
    "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
)


def test_handler_module_imports_only_the_runtime_and_the_powertools_layer() -> None:
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
    out = subprocess.run(
        [sys.executable, "-c", _IMPORTED_ROOTS],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # The project packages the asset carries (stacks/packaging.py).
    from stacks.packaging import LAMBDA_EXTRA_PACKAGES

    shipped = {"lambdas", "contracts", *(p.split("/")[0] for p in LAMBDA_EXTRA_PACKAGES["predict"])}
    roots = set(out.stdout.split()) - set(sys.stdlib_module_names) - shipped
    roots = {root for root in roots if not root.startswith("_")}  # interpreter internals
    assert roots <= RUNTIME_AND_LAYER
    assert "pydantic" in roots  # the check does see third-party imports


def test_authorizer_imports_only_the_runtime_the_layer_and_its_vendored_pyjwt() -> None:
    """cryptography is in the Powertools v3 layer (its data masking utility's dependency);
    PyJWT is copied into the asset (stacks/packaging.py, LAMBDA_VENDORED)."""
    from stacks.packaging import LAMBDA_VENDORED

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORTED_ROOTS.replace("lambdas.predict.app", "lambdas.cds_authorizer.app"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    roots = set(out.stdout.split()) - set(sys.stdlib_module_names) - {"lambdas", "contracts"}
    # bcrypt: an optional import of cryptography's SSH key module (try/except ImportError).
    roots = {root for root in roots if not root.startswith("_")} - {"bcrypt"}
    allowed = RUNTIME_AND_LAYER | {"cryptography", "cffi"} | set(LAMBDA_VENDORED["cds_authorizer"])
    assert roots <= allowed
    assert "jwt" in roots
