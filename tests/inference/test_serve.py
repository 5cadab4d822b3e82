"""The local endpoint server through the real boto3 sagemaker-runtime client and plain HTTP."""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from contracts.deployment import VARIANT_NAME
from inference.handler import input_fn, output_fn, predict_fn
from inference.local_endpoint import LocalEndpoint, serve
from inference.predictor import ServingModel
from inference.serve import MAX_PAYLOAD_BYTES
from lambdas.drift_monitor.capture import decode_capture_line
from training.synthetic import synthetic_records

ENDPOINT = "readmission-local-test"
SECRET = "DISTINCTIVE-VALUE-7731"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("capture")


@pytest.fixture(scope="module")
def endpoint(serving_model: ServingModel, capture_dir: Path) -> Iterator[LocalEndpoint]:
    with serve(serving=serving_model, endpoint_name=ENDPOINT, capture_dir=capture_dir) as running:
        yield running


@pytest.fixture
def runtime(endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A sagemaker-runtime client that reaches the server through the documented variable."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint.url)
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


def records(n: int, seed: int = 41) -> list[dict[str, Any]]:
    return synthetic_records(n, seed=seed, with_notes=True)[0]


def in_process(serving: ServingModel, body: dict[str, Any]) -> dict[str, Any]:
    text, _ = output_fn(predict_fn(input_fn(json.dumps(body), "application/json"), serving), "")
    return dict(json.loads(text))


def post(
    endpoint: LocalEndpoint, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Status, headers (names case-insensitive, as HTTP's are) and body of one request."""
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_ping_answers_200_once_the_model_is_loaded(endpoint: LocalEndpoint) -> None:
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=10)
    connection.request("GET", "/ping")
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {"status": "healthy"}


def test_boto3_invoke_endpoint_gets_the_hooks_answer(
    runtime: Any, serving_model: ServingModel
) -> None:
    body = {"instances": records(3)}
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(body).encode("utf-8"),
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == VARIANT_NAME
    assert json.loads(response["Body"].read()) == in_process(serving_model, body)


def test_container_route_serves_the_same_answer(
    endpoint: LocalEndpoint, serving_model: ServingModel
) -> None:
    record = records(1)[0]
    status, headers, raw = post(
        endpoint, "/invocations", json.dumps(record).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(raw) == in_process(serving_model, record)


def test_unscorable_record_is_a_model_error_naming_the_field(runtime: Any) -> None:
    batch = records(2)
    batch[1]["age_years"] = SECRET
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(batch)
        )
    response = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert response["OriginalMessage"] == "field 'instances.1.age_years': must be a number"
    assert SECRET not in json.dumps(response, default=str)


def test_unknown_endpoint_name_is_a_validation_error(runtime: Any) -> None:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName="some-other-endpoint", ContentType="application/json", Body=b"{}"
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == "Endpoint some-other-endpoint of account 123456789012 not found."


def test_runtime_route_reports_an_unsupported_content_type(runtime: Any) -> None:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=b"1,2")
    assert caught.value.response["OriginalStatusCode"] == 415


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"age,sex", "text/csv", 415, "unsupported_media_type"),
        (b"{oops", "application/json", 400, "invalid_request"),
        (json.dumps([{}] * 101).encode(), "application/json", 413, "payload_too_large"),
    ],
)
def test_container_route_error_statuses(
    endpoint: LocalEndpoint, body: bytes, content_type: str, status: int, error: str
) -> None:
    got, _, raw = post(endpoint, "/invocations", body, {"Content-Type": content_type})
    assert got == status
    assert json.loads(raw)["error"] == error


def test_a_body_over_the_payload_limit_is_refused_unread(endpoint: LocalEndpoint) -> None:
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_PAYLOAD_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert response.getheader("Connection") == "close"
    connection.close()


def test_unknown_paths_are_404(endpoint: LocalEndpoint) -> None:
    status, _, raw = post(endpoint, "/predict", b"{}", {"Content-Type": "application/json"})
    assert status == 404
    assert json.loads(raw) == {"error": "not_found"}


def test_an_unexpected_error_is_500_without_detail(
    serving_model: ServingModel, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenExplainer:
        def explain(self, *args: Any) -> Any:
            raise RuntimeError(f"internal state {SECRET}")

    broken = dataclasses.replace(serving_model, explainer=BrokenExplainer())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO), serve(serving=broken) as running:
        status, _, raw = post(
            running,
            "/invocations",
            json.dumps(records(1)[0]).encode(),
            {"Content-Type": "application/json"},
        )
    assert status == 500
    assert json.loads(raw) == {"error": "internal_error"}
    assert "RuntimeError" in caplog.text
    assert SECRET not in caplog.text


def test_capture_is_written_where_and_how_the_drift_monitor_reads_it(
    runtime: Any, serving_model: ServingModel, capture_dir: Path
) -> None:
    batch = records(2, seed=77)
    runtime.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(batch)
    )
    files = sorted((capture_dir / ENDPOINT / VARIANT_NAME).glob("*/*/*/*/*.jsonl"))
    assert files
    lines = [line for path in files for line in path.read_text().splitlines()]
    decoded = [decode_capture_line(line) for line in lines]
    matching = [scored for _, scored in decoded if [s.record for s in scored] == batch]
    assert len(matching) == 1
    expected = in_process(serving_model, {"instances": batch})["predictions"]
    assert [s.probability for s in matching[0]] == [p["probability"] for p in expected]
    assert [s.encounter_key for s in matching[0]] == [r["encounter_key"] for r in batch]
    relative = files[0].relative_to(capture_dir / ENDPOINT / VARIANT_NAME)
    year, month, day, hour = relative.parts[:4]
    assert (len(year), len(month), len(day), len(hour)) == (4, 2, 2, 2)
    first = json.loads(lines[0])
    assert set(first["eventMetadata"]) == {"eventId", "inferenceTime"}
    assert first["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert first["captureData"]["endpointOutput"]["observedContentType"] == "application/json"


def test_logs_never_carry_identifiers_or_clinical_values(
    runtime: Any, caplog: pytest.LogCaptureFixture
) -> None:
    record = {**records(1, seed=5)[0], "admitting_service": "rare-service-xyz"}
    with caplog.at_level(logging.DEBUG, logger="inference"):
        runtime.invoke_endpoint(
            EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(record)
        )
        record["age_years"] = SECRET
        with pytest.raises(ClientError):
            runtime.invoke_endpoint(
                EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(record)
            )
    assert "records=1" in caplog.text
    for value in (record["patient_key"], record["encounter_key"], "rare-service-xyz", SECRET):
        assert value not in caplog.text


def test_the_command_line_server_runs_workers_and_stops_cleanly_on_sigterm(
    model_dir: Path,
) -> None:
    """``python -m inference.serve`` as the container runs it: settings from ``SAGEMAKER_*``,
    two worker processes behind one port, both answering, exit 0 on SIGTERM."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
    }
    command = [
        sys.executable, "-m", "inference.serve", "--model-dir", str(model_dir), "--port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        url, ready = "", set[str]()
        deadline = time.monotonic() + 240  # two workers import torch on a shared machine
        while len(ready) < 2 and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            if "serving on " in line:
                url = line.strip().rsplit("serving on ", 1)[1]
            if " ready (model " in line:
                ready.add(line.split("worker ", 1)[1].split(" ", 1)[0])
        assert url.startswith("http://127.0.0.1:")
        assert len(ready) == 2
        host, port = url.removeprefix("http://").split(":")
        body = json.dumps(records(1)[0]).encode()
        for _ in range(4):
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            connection.request(
                "POST", "/invocations", body=body, headers={"Content-Type": "application/json"}
            )
            assert connection.getresponse().status == 200
            connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _nodelay_of_accepted(listener: Any) -> int:
    """TCP_NODELAY of a connection accepted the way uvicorn accepts (``create_server`` on the
    given listening socket)."""
    import asyncio
    import socket

    async def run() -> int:
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[int] = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Probe, sock=listener)
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    return asyncio.run(run())


def test_the_servers_connections_have_nagle_off() -> None:
    """Every response is two writes (head, then body): with Nagle's algorithm on, the second
    waits for the client's delayed ACK, about 40 ms a call. asyncio turns it off only on
    sockets that say they are TCP, which a plain ``socket(AF_INET, SOCK_STREAM)`` does not."""
    import socket

    from inference.serve import bind

    assert _nodelay_of_accepted(bind("127.0.0.1", 0)) == 1
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # what bind() used to make
    plain.bind(("127.0.0.1", 0))
    plain.listen(8)
    assert _nodelay_of_accepted(plain) == 0
