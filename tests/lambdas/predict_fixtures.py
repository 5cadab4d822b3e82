"""Helpers of the prediction API tests: API Gateway events, a Lambda context, a valid record,
and ``predict_api()``: the handler wired to moto (SageMaker, Secrets Manager) and to a
real local HTTP endpoint reached through the real boto3 sagemaker-runtime client.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from contracts.serving import TAG_MODEL_PACKAGE_ARN, TAG_MODEL_VERSION
from lambdas.predict import app as predict_app
from tests.lambdas.fake_endpoint import FakeEndpoint, Mode

ENDPOINT_NAME = "readmission-risk-test"
ENDPOINT_CONFIG_NAME = "readmission-risk-test-config-3"
SERVING_MODEL_VERSION = "3"
TEST_KEY = "unit-test-deidentification-key"
GATEWAY_REQUEST_ID = "gateway-request-id-for-tests"
LAMBDA_REQUEST_ID = "lambda-request-id-for-tests"
REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker-execution"
#: Variables of the function that a test must never inherit from the shell.
FUNCTION_ENV = (
    "DEID_SECRET_ARN",
    "ENDPOINT_CONNECT_TIMEOUT_S",
    "ENDPOINT_READ_TIMEOUT_S",
    "HEALTH_CACHE_TTL_S",
    "RETRY_AFTER_S",
    "REQUEST_DEADLINE_S",
)


@dataclass(frozen=True)
class LambdaContextStub:
    """The attributes of a Lambda context that Powertools reads."""

    function_name: str = "prediction-api-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:prediction-api"
    aws_request_id: str = LAMBDA_REQUEST_ID
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        """Plenty of time left, unless a test says otherwise."""
        return self.remaining_ms


def api_gateway_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw_body: str | None = None,
    headers: dict[str, str | None] | None = None,
    multi_headers: dict[str, list[str]] | None = None,
    base64_encoded: bool = False,
    request_id: str = GATEWAY_REQUEST_ID,
) -> dict[str, Any]:
    """Build a minimal API Gateway REST (v1) proxy event.

    ``body`` is JSON-encoded; ``raw_body`` is sent exactly as given (for malformed bodies).
    A header given as None is left out (``Content-Type`` is sent unless removed that way);
    ``multi_headers`` sets names that carry several values, as API Gateway passes them
    (``headers`` holds the last, ``multiValueHeaders`` all).
    """
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    if text is not None and base64_encoded:
        text = base64.b64encode(text.encode("utf-8")).decode("ascii")
    merged: dict[str, str | None] = {"Content-Type": "application/json", **(headers or {})}
    all_headers = {name: value for name, value in merged.items() if value is not None}
    multi = {name: [value] for name, value in all_headers.items()}
    for name, values in (multi_headers or {}).items():
        multi[name] = values
        all_headers[name] = values[-1]
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": multi,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "test",
            "path": f"/test{path}",
            "httpMethod": method,
            "resourcePath": path,
            "identity": {"sourceIp": "198.51.100.7"},
        },
        "body": text,
        "isBase64Encoded": base64_encoded,
    }


def valid_record(**overrides: Any) -> dict[str, Any]:
    """A complete, valid request record (raw identifiers included)."""
    record: dict[str, Any] = {
        "patient_id": "MRN-0042",
        "encounter_id": "ADM-9001",
        "age_years": 67,
        "sex": "F",
        "admission_type": "emergency",
        "admission_source": "emergency_department",
        "discharge_disposition": "home_health",
        "admitting_service": "cardiology",
        "length_of_stay_days": 4.5,
        "prior_admissions_12m": 2,
        "prior_ed_visits_12m": 1,
        "prior_outpatient_visits_12m": 6,
        "days_since_last_discharge": 41.0,
        "num_diagnoses": 9,
        "num_procedures": 2,
        "num_medications": 14,
        "num_lab_tests": 55,
        "num_abnormal_labs": 7,
        "hba1c_result": "above_7",
        "max_glucose_result": "normal",
        "charlson_index": 3,
        "diagnosis_codes": ["4280", "25000", "4019"],
        "procedure_codes": ["3995"],
        "medications": ["furosemide", "metformin"],
        "abnormal_labs": ["creatinine"],
        "note_text": "Discharged home with follow-up in cardiology clinic.",
    }
    record.update(overrides)
    return record


@dataclass
class ApiResult:
    """A handler answer, with the body parsed."""

    status: int
    headers: dict[str, str]
    body: Any
    raw_body: str


@dataclass
class PredictApi:
    """The handler under test, its fake endpoint and the moto account behind it."""

    fake: FakeEndpoint
    context: LambdaContextStub = field(default_factory=LambdaContextStub)

    def invoke(self, event: dict[str, Any]) -> ApiResult:
        """Run the Lambda handler on an event."""
        response = predict_app.lambda_handler(event, self.context)
        raw = response.get("body") or ""
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.setdefault(name.lower(), values[0])
        return ApiResult(response["statusCode"], headers, parsed, raw)

    def predict(self, body: Any) -> ApiResult:
        """POST /predict with a JSON body."""
        return self.invoke(api_gateway_event("POST", "/predict", body))

    def health(self) -> ApiResult:
        """GET /health."""
        return self.invoke(api_gateway_event("GET", "/health"))

    def reset(self) -> None:
        """Back to a fresh state between tests sharing this harness (clients are kept)."""
        self.fake.mode = Mode.OK
        self.fake.received.clear()
        self.fake.content_types.clear()
        self.fake.inference_ids.clear()
        self.fake.invocations = 0
        self.fake.abandoned = 0
        self.context = LambdaContextStub()
        predict_app.keys.clear()
        predict_app.health_cache.clear()

    def use_secret_key(self, value: str = TEST_KEY) -> str:
        """Store the key in (moto's) Secrets Manager and point the function at it."""
        arn = create_key_secret(value)
        os.environ["DEID_SECRET_ARN"] = arn
        os.environ.pop("DEID_KEY", None)
        predict_app.reset_state()
        return arn


def create_endpoint(model_version: str = SERVING_MODEL_VERSION) -> None:
    """Create in moto the endpoint the deployer would: model, tagged config, endpoint."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model(
        ModelName="readmission-model",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/pytorch:2"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=ENDPOINT_CONFIG_NAME,
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "readmission-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        Tags=[
            {"Key": TAG_MODEL_VERSION, "Value": model_version},
            {
                "Key": TAG_MODEL_PACKAGE_ARN,
                "Value": "arn:aws:sagemaker:us-east-1:123456789012:model-package/readmission/3",
            },
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT_NAME, EndpointConfigName=ENDPOINT_CONFIG_NAME)


def create_key_secret(value: str = TEST_KEY) -> str:
    """Store the de-identification key in moto's Secrets Manager; return its ARN."""
    secrets = boto3.client("secretsmanager", region_name=REGION)
    return str(secrets.create_secret(Name="readmission/deid-key", SecretString=value)["ARN"])


@contextmanager
def predict_api(
    *, with_endpoint: bool = True, env: dict[str, str] | None = None
) -> Iterator[PredictApi]:
    """The handler with a running fake endpoint, moto, and a clean module state.

    ``env`` overrides the function's environment (an empty value removes the variable).
    Retries are off by default (``ENDPOINT_MAX_ATTEMPTS=1``) to keep error tests fast.
    """
    fake = FakeEndpoint(ENDPOINT_NAME).start()
    base_env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake.url,
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "DEID_KEY": TEST_KEY,
        "ENDPOINT_MAX_ATTEMPTS": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **(env or {}),
    }
    removed = [name for name, value in base_env.items() if value == ""]
    removed += [name for name in FUNCTION_ENV if name not in base_env]
    try:
        with mock_aws(), mock.patch.dict(os.environ, base_env):
            for name in removed:
                os.environ.pop(name, None)
            if with_endpoint:
                create_endpoint()
            predict_app.reset_state()
            try:
                yield PredictApi(fake)
            finally:
                predict_app.reset_state()
    finally:
        fake.stop()
