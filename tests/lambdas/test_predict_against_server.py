"""The prediction API against the real model: API Gateway events -> the predict Lambda ->
boto3 sagemaker-runtime -> the local endpoint server -> the serving hooks on a trained model.

moto stands in for SageMaker's control plane; the data path is all real code. The server's
data capture records exactly what left the Lambda, which is how these tests see that only
keyed hashes reach the endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from moto import mock_aws

from contracts.deidentify import keyed_hash
from contracts.serving import HEALTH_PROBE_PATIENT_KEY
from inference.handler import input_fn, model_fn, output_fn, predict_fn
from inference.local_endpoint import LocalEndpoint, serve
from inference.predictor import ServingModel
from lambdas.predict import app as predict_app
from lambdas.predict.probe import probe_record
from lambdas.predict.records import to_endpoint_records
from tests.inference.artifacts import tiny_model_dir
from tests.lambdas.predict_fixtures import (
    ENDPOINT_NAME,
    GATEWAY_REQUEST_ID,
    TEST_KEY,
    LambdaContextStub,
    api_gateway_event,
    create_endpoint,
    valid_record,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

RAW_IDS = ("MRN-0042", "ADM-9001", "MRN-0043", "ADM-9002", "MRN-0044", "ADM-9003")
RARE_SERVICE = "rare-service-xyz"


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingModel]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield model_fn(str(tiny_model_dir(tmp_path_factory)))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-capture")


@pytest.fixture(scope="module")
def endpoint(serving: ServingModel, capture_dir: Path) -> Iterator[LocalEndpoint]:
    with serve(serving=serving, endpoint_name=ENDPOINT_NAME, capture_dir=capture_dir) as running:
        yield running


@contextmanager
def lambda_against(url: str) -> Iterator[None]:
    """The Lambda's environment pointed at ``url``, with moto behind the control plane."""
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url,
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "DEID_KEY": TEST_KEY,
        "ENDPOINT_MAX_ATTEMPTS": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    with mock_aws(), mock.patch.dict(os.environ, env):
        os.environ.pop("DEID_SECRET_ARN", None)
        create_endpoint()
        predict_app.reset_state()
        try:
            yield
        finally:
            predict_app.reset_state()


def call(body: Any) -> tuple[int, dict[str, str], Any]:
    response = predict_app.lambda_handler(
        api_gateway_event("POST", "/predict", body), LambdaContextStub()
    )
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), values[0])
    return response["statusCode"], headers, json.loads(response["body"])


def expected_predictions(serving: ServingModel, raw: list[dict[str, Any]]) -> list[Any]:
    """The hooks' answer, in process, for the records the Lambda sends after hashing."""
    body = json.dumps({"instances": to_endpoint_records(raw, TEST_KEY)})
    text, _ = output_fn(predict_fn(input_fn(body, "application/json"), serving), "")
    return list(json.loads(text)["predictions"])


def captured_records(capture_dir: Path) -> list[dict[str, Any]]:
    lines = [
        line
        for path in sorted(capture_dir.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    bodies = [
        json.loads(json.loads(line)["captureData"]["endpointInput"]["data"]) for line in lines
    ]
    return [record for body in bodies for record in body["instances"]]


def batch() -> list[dict[str, Any]]:
    return [
        valid_record(),
        valid_record(patient_id="MRN-0043", encounter_id="ADM-9002", prior_admissions_12m=5),
        valid_record(patient_id="MRN-0044", encounter_id="ADM-9003", admitting_service=None),
    ]


def test_a_single_encounter_is_scored_by_the_model(
    endpoint: LocalEndpoint, serving: ServingModel
) -> None:
    with lambda_against(endpoint.url):
        status, _, body = call(valid_record())
    assert status == 200
    assert body["request_id"] == GATEWAY_REQUEST_ID
    [prediction] = body["predictions"]
    assert prediction == expected_predictions(serving, [valid_record()])[0]
    assert prediction["encounter_key"] == keyed_hash(TEST_KEY, "encounter", "ADM-9001")
    assert prediction["model_version"] == serving.model_version
    assert 1 <= len(prediction["top_factors"]) <= 5


def test_a_batch_is_scored_in_request_order(endpoint: LocalEndpoint, serving: ServingModel) -> None:
    with lambda_against(endpoint.url):
        status, _, body = call({"instances": batch()})
    assert status == 200
    assert body["predictions"] == expected_predictions(serving, batch())
    keys = [p["encounter_key"] for p in body["predictions"]]
    assert keys == [keyed_hash(TEST_KEY, "encounter", r["encounter_id"]) for r in batch()]


def test_the_endpoint_only_receives_keyed_hashes(
    endpoint: LocalEndpoint, capture_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with lambda_against(endpoint.url):
        status, _, _ = call({"instances": [*batch(), valid_record(admitting_service=RARE_SERVICE)]})
    assert status == 200
    received = captured_records(capture_dir)
    assert received
    for record in received:
        assert "patient_id" not in record
        assert "encounter_id" not in record
    patients = {r["patient_key"] for r in received}
    assert patients <= {keyed_hash(TEST_KEY, "patient", p) for p in RAW_IDS[::2]}
    captured_text = "".join(p.read_text() for p in capture_dir.rglob("*.jsonl"))
    logs = capsys.readouterr()
    for raw in RAW_IDS:
        assert raw not in captured_text
        assert raw not in logs.out + logs.err
    assert RARE_SERVICE not in logs.out + logs.err


def test_a_stopped_endpoint_is_503_with_retry_after(serving: ServingModel) -> None:
    stopped = serve(serving=serving, endpoint_name=ENDPOINT_NAME)
    url = stopped.url
    stopped.stop()
    with lambda_against(url):
        status, headers, body = call(valid_record())
    assert status == 503
    assert headers["retry-after"] == "5"
    assert body == {"error": "endpoint_unavailable", "request_id": GATEWAY_REQUEST_ID}


def test_the_health_probe_is_answered_by_the_real_model(
    endpoint: LocalEndpoint, capture_dir: Path
) -> None:
    """The synthetic probe record is one the real serving hooks score, not only the fake."""
    with lambda_against(endpoint.url):
        response = predict_app.lambda_handler(
            api_gateway_event("GET", "/health"), LambdaContextStub()
        )
    body = json.loads(response["body"])
    assert (response["statusCode"], body["status"]) == (200, "ok")
    assert body["probe"]["status"] == "ok"
    assert body["probe"]["model_version"]
    probes = [
        r for r in captured_records(capture_dir) if r["patient_key"] == HEALTH_PROBE_PATIENT_KEY
    ]
    assert probes == [probe_record()]
