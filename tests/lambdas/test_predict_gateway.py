"""The local API Gateway in front of the prediction API, as a new user reaches it over HTTP:
any method token, repeated headers, non-UTF-8 and chunked bodies, malformed framing."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from local_platform.gateway import LocalApiGateway, Route

EVENTS: list[dict[str, Any]] = []


def _recording_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalApiGateway]:
    routes = [
        Route("POST", "/predict", _recording_handler, "predict"),
        Route("GET", "/health", _recording_handler, "predict"),
    ]
    with LocalApiGateway(routes) as running:
        yield running


def _raw(gateway: LocalApiGateway, request: bytes) -> bytes:
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _request(
    gateway: LocalApiGateway, method: str, path: str, body: bytes = b"", **headers: str
) -> http.client.HTTPResponse:
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request(method, path, body=body, headers=headers)
    return connection.getresponse()


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "OPTIONS", "TRACE", "QUERY", "FOO"])
def test_any_other_method_on_a_route_is_405_with_allow(
    gateway: LocalApiGateway, method: str
) -> None:
    response = _request(gateway, method, "/predict")
    assert response.status == 405
    assert response.getheader("Allow") == "POST"
    assert json.loads(response.read()) == {"message": "Method Not Allowed"}


def test_head_gets_headers_and_no_body(gateway: LocalApiGateway) -> None:
    raw = _raw(gateway, b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405")
    assert b"Allow: GET" in head
    assert body == b""


def test_unknown_paths_are_403_as_api_gateway_answers(gateway: LocalApiGateway) -> None:
    for path in ("/predict/", "/PREDICT", "/nope"):
        response = _request(gateway, "POST", path, b"{}")
        assert (response.status, json.loads(response.read())) == (
            403,
            {"message": "Missing Authentication Token"},
        )


def test_repeated_headers_reach_the_handler_with_every_value(gateway: LocalApiGateway) -> None:
    EVENTS.clear()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    assert _raw(gateway, request).startswith(b"HTTP/1.1 200")
    (event,) = EVENTS
    assert event["multiValueHeaders"]["Content-Type"] == ["text/plain", "application/json"]
    assert event["headers"]["Content-Type"] == "application/json"


def test_a_body_that_is_not_utf8_reaches_the_handler_as_base64(gateway: LocalApiGateway) -> None:
    EVENTS.clear()
    data = b'{"a": "\xff\xfe"}'
    assert _request(gateway, "POST", "/predict", data).status == 200
    (event,) = EVENTS
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == data
    EVENTS.clear()
    assert _request(gateway, "POST", "/predict", '{"a": "é"}'.encode()).status == 200
    assert (EVENTS[0]["body"], EVENTS[0]["isBase64Encoded"]) == ('{"a": "é"}', False)


def test_a_chunked_body_is_read_whole(gateway: LocalApiGateway) -> None:
    EVENTS.clear()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b'Connection: close\r\n\r\n4\r\n{"a"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
    )
    assert _raw(gateway, request).startswith(b"HTTP/1.1 200")
    assert EVENTS[0]["body"] == '{"a": 1}'


@pytest.mark.parametrize(
    ("length", "status"), [(b"abc", b"400"), (b"-5", b"400"), (b"99999999999", b"413")]
)
def test_malformed_or_huge_content_length_is_answered_by_the_gateway(
    gateway: LocalApiGateway, length: bytes, status: bytes
) -> None:
    EVENTS.clear()
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}"
    assert _raw(gateway, request).startswith(b"HTTP/1.1 " + status)
    assert EVENTS == []
