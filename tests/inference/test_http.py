"""The endpoint server as an HTTP stack: what a malformed, slow, huge or concurrent client gets.

Every answer the server gives on its own (not the hooks') must be a JSON error with an
``error`` code, never a byte of the request, and the server must stay healthy afterwards.
The server runs in this process on 127.0.0.1 with an ephemeral port (``inference.serve``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inference.endpoint_app import AppLimits
from inference.local_endpoint import LocalEndpoint, serve
from inference.predictor import ServingModel
from inference.serve import MAX_PAYLOAD_BYTES, ServerSettings
from training.synthetic import synthetic_records

SECRET = "SECRET-7731-XYZZY"


@pytest.fixture(scope="module")
def endpoint(serving_model: ServingModel) -> Iterator[LocalEndpoint]:
    with serve(serving=serving_model, endpoint_name="readmission-http-test") as running:
        yield running


@pytest.fixture(scope="module")
def impatient(serving_model: ServingModel) -> Iterator[LocalEndpoint]:
    """A server with one-second deadlines for a request's head and body."""
    settings = ServerSettings(
        model_dir=Path("."),
        port=0,
        header_timeout_s=1.0,
        limits=AppLimits(body_timeout_s=1.0),
    )
    with serve(serving=serving_model, settings=settings) as running:
        yield running


def record(seed: int = 3) -> dict[str, Any]:
    return dict(synthetic_records(1, seed=seed, with_notes=True)[0][0])


def raw(endpoint: LocalEndpoint, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are and read until the server closes (or ``timeout``)."""
    with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def parse(response: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and JSON body of one raw HTTP/1.1 response."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return status, headers, json.loads(body[:length])


def request(
    endpoint: LocalEndpoint,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def invoke(endpoint: LocalEndpoint, document: Any, **headers: str) -> tuple[int, Any]:
    status, _, body = request(
        endpoint,
        "POST",
        "/invocations",
        json.dumps(document).encode() if not isinstance(document, bytes) else document,
        {"Content-Type": "application/json", **headers},
    )
    return status, json.loads(body)


def assert_healthy(endpoint: LocalEndpoint) -> None:
    status, _, body = request(endpoint, "GET", "/ping")
    assert (status, json.loads(body)) == (200, {"status": "healthy"})


# ----- malformed HTTP -----
@pytest.mark.parametrize(
    "data",
    [
        f"GARBAGE {SECRET}\r\n\r\n".encode(),
        f"GET /ping HTTP/1.1\r\nHost: x\r\nBad Header {SECRET}\r\n\r\n".encode(),
        b"GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + SECRET.encode() + b"\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    ],
    ids=["request-line", "header", "negative-length", "two-lengths", "tls", "chunk"],
)
def test_unparsable_requests_get_a_json_400_quoting_nothing(
    endpoint: LocalEndpoint, data: bytes
) -> None:
    status, headers, body = parse(raw(endpoint, data))
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert body == {"error": "bad_request"}
    assert_healthy(endpoint)


def test_a_request_head_over_the_limit_sent_whole_is_a_json_431(endpoint: LocalEndpoint) -> None:
    big = "x" * (20 * 1024)
    data = f"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: {SECRET}{big}\r\n\r\n".encode()
    status, _, body = parse(raw(endpoint, data))
    assert status == 431
    assert body == {"error": "headers_too_large"}
    assert_healthy(endpoint)


def test_a_request_head_over_the_limit_sent_in_pieces_is_a_json_400(
    endpoint: LocalEndpoint,
) -> None:
    with socket.create_connection((endpoint.host, endpoint.port), timeout=10) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        try:
            for i in range(100):
                sock.sendall(f"X-Header-{i}: {SECRET}{'y' * 1000}\r\n".encode())
                time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = parse(read_all(sock))
    assert status == 400
    assert body == {"error": "bad_request"}
    assert_healthy(endpoint)


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", f"/{SECRET}", 404, "not_found"),
        ("POST", f"/predict?patient={SECRET}", 404, "not_found"),
        ("POST", "/invocations/", 404, "not_found"),
        ("GET", "/invocations", 405, "method_not_allowed"),
        ("POST", "/ping", 405, "method_not_allowed"),
        ("DELETE", "/invocations", 405, "method_not_allowed"),
        ("PATCH", "/endpoints/x/invocations", 405, "method_not_allowed"),
    ],
)
def test_the_frameworks_own_errors_are_json(
    endpoint: LocalEndpoint, method: str, path: str, status: int, error: str
) -> None:
    got, headers, body = request(endpoint, method, path, b"{}")
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": error}
    assert SECRET not in body.decode()
    if status == 405:
        assert headers["Allow"]


def test_head_of_ping_is_answered(endpoint: LocalEndpoint) -> None:
    status, _, body = request(endpoint, "HEAD", "/ping")
    assert status == 200
    assert body == b""


# ----- bodies: size, framing, time -----
def test_a_declared_body_over_the_limit_is_413_unread(endpoint: LocalEndpoint) -> None:
    data = (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_PAYLOAD_BYTES + 1}\r\n\r\n"
    ).encode()
    status, headers, body = parse(raw(endpoint, data))
    assert status == 413
    assert headers["connection"] == "close"
    assert body["error"] == "payload_too_large"


def test_a_chunked_body_over_the_limit_is_413(endpoint: LocalEndpoint) -> None:
    chunk = b"[" * 65536
    with socket.create_connection((endpoint.host, endpoint.port), timeout=30) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sent = 0
        try:
            while sent <= MAX_PAYLOAD_BYTES:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the client finished
        status, _, body = parse(read_all(sock))
    assert status == 413
    assert body["error"] == "payload_too_large"
    assert_healthy(endpoint)


def test_a_chunked_body_is_scored_like_a_sized_one(endpoint: LocalEndpoint) -> None:
    document = json.dumps(record()).encode()
    half = len(document) // 2
    chunks = [document[:half], document[half:]]
    data = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
        + b"0\r\n\r\n"
    )
    status, _, body = parse(raw(endpoint, data))
    assert status == 200
    assert body == invoke(endpoint, record())[1]


def test_a_slow_head_is_cut_off_with_408_while_others_are_served(
    impatient: LocalEndpoint,
) -> None:
    with socket.create_connection((impatient.host, impatient.port), timeout=10) as slow:
        slow.sendall(b"POST /invocations HTTP/1.1\r\nHo")
        started = time.monotonic()
        assert_healthy(impatient)  # a slow client holds no worker
        status, _, body = parse(read_all(slow))
    assert status == 408
    assert body == {"error": "request_timeout"}
    assert time.monotonic() - started < 8


def test_a_silent_connection_is_closed_with_408(impatient: LocalEndpoint) -> None:
    with socket.create_connection((impatient.host, impatient.port), timeout=10) as silent:
        status, _, body = parse(read_all(silent))
    assert (status, body) == (408, {"error": "request_timeout"})


def test_a_slow_body_is_cut_off_with_408(impatient: LocalEndpoint) -> None:
    with socket.create_connection((impatient.host, impatient.port), timeout=10) as slow:
        slow.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        status, headers, body = parse(read_all(slow))
    assert status == 408
    assert headers["connection"] == "close"
    assert body["error"] == "request_timeout"
    assert_healthy(impatient)


def test_keep_alive_serves_many_requests_on_one_connection(endpoint: LocalEndpoint) -> None:
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=30)
    body = json.dumps(record()).encode()
    try:
        answers = []
        for path in ("/ping", "/invocations", "/nowhere", "/invocations"):
            method = "GET" if path == "/ping" else "POST"
            headers = {"Content-Type": "application/json"}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
    finally:
        connection.close()
    assert [status for status, _ in answers] == [200, 200, 404, 200]
    assert answers[1] == answers[3]


# ----- content types and JSON -----
@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({"Content-Type": "application/jsonp"}, 415, "unsupported_media_type"),
        ({"Content-Type": "application/json; charset=latin-1"}, 415, "unsupported_media_type"),
        ({"Content-Type": "text/csv"}, 415, "unsupported_media_type"),
        ({"Content-Type": "application/json", "Accept": "text/csv"}, 406, "not_acceptable"),
    ],
)
def test_content_types_and_accepts_outside_the_contract(
    endpoint: LocalEndpoint, headers: dict[str, str], status: int, error: str
) -> None:
    got, _, body = request(endpoint, "POST", "/invocations", json.dumps(record()).encode(), headers)
    assert got == status
    assert json.loads(body)["error"] == error


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json; charset=UTF-8"},
        {"Content-Type": "Application/JSON", "Accept": "text/csv;q=0.5, application/json"},
        {"Content-Type": "application/json", "Accept": "*/*"},
        {"Content-Type": "application/json"},
    ],
)
def test_json_content_types_and_accepts_are_served(
    endpoint: LocalEndpoint, headers: dict[str, str]
) -> None:
    got, response_headers, body = request(
        endpoint, "POST", "/invocations", json.dumps(record()).encode(), headers
    )
    assert got == 200
    assert response_headers["Content-Type"] == "application/json"
    assert len(json.loads(body)["predictions"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"instances": ' + b"[" * 40 + b"{}" + b"]" * 40 + b"}",
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
    ],
    ids=["deep-list", "deep-instances", "deep-object"],
)
def test_deeply_nested_json_is_a_400(endpoint: LocalEndpoint, body: bytes) -> None:
    status, answer = invoke(endpoint, body)
    assert status == 400
    assert answer["error"] == "invalid_request"
    assert "nests deeper" in answer["message"]


def test_a_lone_surrogate_is_a_400(endpoint: LocalEndpoint) -> None:
    document = json.dumps({**record(), "admitting_service": "x"}).replace(
        '"admitting_service": "x"', '"admitting_service": "\\ud800"'
    )
    status, answer = invoke(endpoint, document.encode())
    assert status == 400
    assert answer["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("literal", "clipped_to"),
    [
        ("9" * 400, 130),
        ("1" + "0" * 100_000, 130),
        ("-" + "9" * 400, 0),
        ("1e999", 130),
        ("-1e999", 0),
        ("179769313486231570000000000" + "0" * 282, 130),
    ],
    ids=["400-digits", "100001-digits", "negative", "exponent", "negative-exponent", "max+"],
)
def test_numbers_beyond_float_range_are_clipped_as_documented(
    endpoint: LocalEndpoint, literal: str, clipped_to: int
) -> None:
    base = record()
    document = json.dumps({**base, "age_years": 12345}).replace("12345", literal)
    status, answer = invoke(endpoint, document.encode())
    assert status == 200
    assert answer == invoke(endpoint, {**base, "age_years": clipped_to})[1]


# ----- concurrency -----
def test_many_more_clients_than_workers_all_get_answers(endpoint: LocalEndpoint) -> None:
    """The stdlib server's listen backlog of 5 reset connections at 20 clients at once."""
    body = json.dumps(record()).encode()

    def one(_: int) -> int:
        status, _headers, raw_body = request(
            endpoint, "POST", "/invocations", body, {"Content-Type": "application/json"}
        )
        json.loads(raw_body)
        return status

    with concurrent.futures.ThreadPoolExecutor(max_workers=48) as pool:
        statuses = list(pool.map(one, range(96)))
    assert statuses == [200] * 96
    assert_healthy(endpoint)


def test_a_request_that_waits_too_long_for_a_slot_gets_503_with_retry_after(
    serving_model: ServingModel,
) -> None:
    class SlowExplainer:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def explain(self, *args: Any) -> Any:
            time.sleep(1.0)
            return self.inner.explain(*args)

    slow = dataclasses.replace(serving_model, explainer=SlowExplainer(serving_model.explainer))  # type: ignore[arg-type]
    settings = ServerSettings(model_dir=Path("."), limits=AppLimits(queue_timeout_s=0.2))
    with (
        serve(serving=slow, settings=settings) as running,
        concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool,
    ):
        results = list(
            pool.map(
                lambda _: request(
                    running,
                    "POST",
                    "/invocations",
                    json.dumps(record()).encode(),
                    {"Content-Type": "application/json"},
                ),
                range(3),
            )
        )
    statuses = sorted(status for status, _, _ in results)
    assert statuses[0] == 200
    busy = [(headers, body) for status, headers, body in results if status == 503]
    assert busy, statuses
    busy_headers, busy_body = busy[0]
    assert busy_headers["Retry-After"] == "1"
    assert json.loads(busy_body)["error"] == "busy"


# ----- nothing of the request in answers or logs -----
def test_no_error_answer_or_log_line_carries_the_request(
    endpoint: LocalEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        answers = [
            raw(endpoint, f"GET /{SECRET} HTTP/1.1\r\nHost: {SECRET}\r\n\r\n".encode(), 2),
            raw(endpoint, f"{SECRET} / HTTP/1.1\r\n\r\n".encode()),
            request(endpoint, "POST", f"/x/{SECRET}", SECRET.encode())[2],
            request(
                endpoint,
                "POST",
                "/invocations",
                json.dumps({**record(), "age_years": SECRET}).encode(),
                {"Content-Type": "application/json"},
            )[2],
            request(
                endpoint,
                "POST",
                "/invocations",
                SECRET.encode(),
                {"Content-Type": f"text/{SECRET}", "Accept": SECRET},
            )[2],
        ]
    for answer in answers:
        assert SECRET.encode() not in answer
    assert SECRET not in caplog.text
