"""The local API Gateway turns HTTP into REST proxy events and back, as API Gateway does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from local_platform.gateway import LocalApiGateway, Route
from local_platform.lambda_runtime import LocalLambdaContext


def _echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = {
        "method": event["httpMethod"],
        "resource": event["resource"],
        "body": event["body"],
        "request_id_set": bool(event["requestContext"]["requestId"]),
        "function": context.function_name,
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
        "content_type": event["headers"].get("Content-Type"),
    }
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-Test": "1"},
        "body": json.dumps(body),
    }


def _crashing_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("secret detail that must not reach the client")


def _request(url: str, method: str, body: bytes | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def gateway() -> Any:
    routes = [
        Route("POST", "/predict", _echo_handler, "predict"),
        Route("GET", "/crash", _crashing_handler, "crash"),
    ]
    with LocalApiGateway(routes) as running:
        yield running


def test_request_reaches_the_handler_as_a_rest_proxy_event(gateway: LocalApiGateway) -> None:
    status, headers, body = _request(f"{gateway.url}/predict", "POST", b'{"a": 1}')
    assert status == 201
    assert headers["X-Test"] == "1"
    assert json.loads(body) == {
        "method": "POST",
        "resource": "/predict",
        "body": '{"a": 1}',
        "request_id_set": True,
        "function": "predict",
        "remaining_ms_positive": True,
        "content_type": "application/json",
    }


def test_unknown_resource_and_wrong_method_answer_like_api_gateway(
    gateway: LocalApiGateway,
) -> None:
    assert _request(f"{gateway.url}/nope", "GET")[0] == 403
    assert _request(f"{gateway.url}/predict", "GET")[0] == 405


def test_a_crashing_handler_gives_502_without_detail(gateway: LocalApiGateway) -> None:
    status, _, body = _request(f"{gateway.url}/crash", "GET")
    assert status == 502
    assert "secret" not in body


def test_context_counts_down_from_the_timeout() -> None:
    context = LocalLambdaContext(function_name="f", timeout_seconds=0.0)
    assert context.get_remaining_time_in_millis() == 0
    assert context.invoked_function_arn.endswith(":function:f")
