"""What the Lambda service gives a handler: a context object and API Gateway proxy events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "us-east-1"


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 30.0
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def rest_api_proxy_event(
    method: str,
    path: str,
    resource: str,
    *,
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    stage: str = "local",
    multi_value_headers: Mapping[str, list[str]] | None = None,
    is_base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) Lambda proxy event, as API Gateway sends it.

    A header sent several times is in ``multi_value_headers`` with all its values; ``headers``
    then holds the last one, as API Gateway does.
    """
    header_map = dict(headers or {})
    multi = {key: [value] for key, value in header_map.items()}
    for key, values in (multi_value_headers or {}).items():
        multi[key] = list(values)
        header_map[key] = values[-1]
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": header_map,
        "multiValueHeaders": multi,
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": (
            {key: [value] for key, value in query.items()} if query else None
        ),
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": stage,
            "identity": {"sourceIp": source_ip, "userAgent": header_map.get("User-Agent", "")},
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    }


def response_body(response: Mapping[str, Any]) -> Any:
    """The decoded JSON body of a proxy response (``None`` when empty)."""
    body = response.get("body")
    return json.loads(body) if body else None
