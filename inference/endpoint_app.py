"""The endpoint's ASGI app: the SageMaker container contract over the serving hooks.

A thin adapter: it reads the body within its limits, hands it to the four hooks
(``inference.handler``) on a worker thread and writes their answer back. Routes:

* ``GET /ping``: 200 once this worker has loaded the model (the app exists only then);
* ``POST /invocations``: the container contract; the hooks' status and JSON error body;
* ``POST /endpoints/{name}/invocations``: the sagemaker-runtime ``InvokeEndpoint`` route, so
  that boto3 with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` reaches the same program; answers as
  the runtime service does (``ModelError`` 424 for a container error, ``ValidationError`` 400
  for an unknown endpoint or an oversized payload).

Every error, the framework's own included (404, 405, 500), is ``application/json`` with an
``error`` code and never a byte of the request. Logs carry method, route, status, duration
and record count, never a payload, path or header value.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.deployment import VARIANT_NAME
from contracts.serving import CONTENT_TYPE_JSON
from inference.capture import DataCapture
from inference.errors import InferenceError
from inference.handler import input_fn, output_fn, predict_fn
from inference.predictor import ServingModel

log = logging.getLogger("inference.serve")

PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
RUNTIME_PATH = "/endpoints/{name}/invocations"
#: The deployer's single production variant (contracts.deployment.VARIANT_NAME).
DEFAULT_VARIANT_NAME = VARIANT_NAME
#: Endpoint name used for capture of ``/invocations`` calls when none is configured.
DEFAULT_ENDPOINT_NAME = "local-endpoint"
#: SageMaker's real-time payload limit (InvokeEndpoint's Body: 6 MB).
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: Largest request head (request line and headers, in bytes); larger is a 431.
MAX_HEAD_BYTES = 16 * 1024
#: Account shown in the runtime route's error messages (moto's default account).
LOCAL_ACCOUNT_ID = "123456789012"
#: Seconds after which a waiting client is told to retry (503).
RETRY_AFTER_S = 1

_ERROR_TYPE_HEADER = "x-amzn-ErrorType"
_VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
_REQUEST_ID_HEADER = "x-amzn-RequestId"
_CORAL_SERVICE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
_CORAL_VALIDATE = "http://internal.amazon.com/coral/com.amazon.coral.validate/"
_ENDPOINT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")

#: The ``error`` code of each status the server itself (not the hooks) answers with.
ERROR_CODES = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_TIMEOUT: "request_timeout",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "headers_too_large",
    HTTPStatus.INTERNAL_SERVER_ERROR: "internal_error",
    HTTPStatus.SERVICE_UNAVAILABLE: "busy",
}


@dataclass(frozen=True)
class AppLimits:
    """What one request may take: body size, time to send it, time to wait for a slot."""

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_head_bytes: int = MAX_HEAD_BYTES
    body_timeout_s: float = 30.0
    #: SAGEMAKER_MODEL_SERVER_TIMEOUT: the longest a request waits for a scoring slot.
    queue_timeout_s: float = 60.0
    #: Requests scored at once per worker process (each on one torch thread).
    scoring_slots: int = 1
    #: Accept used when a request carries none (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT).
    default_accept: str = CONTENT_TYPE_JSON


@dataclass(frozen=True)
class Outcome:
    """The container's answer to one invocation."""

    status: int
    body: bytes
    content_type: str = CONTENT_TYPE_JSON
    records: int = 0


class RefusedRequestError(Exception):
    """The request is answered before scoring (body too large, too slow, unreadable)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def error_body(status: int, message: str | None = None) -> bytes:
    """``{"error": code[, "message": text]}``; ``message`` is ours, never the caller's."""
    document = {"error": ERROR_CODES.get(HTTPStatus(status), HTTPStatus(status).phrase.lower())}
    if message:
        document["message"] = message
    return json_bytes(document)


def log_unexpected(error: BaseException) -> None:
    """Type and frames only: the message of an unexpected error may quote the request."""
    frames = [
        f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(error.__traceback__)
    ]
    log.error("unexpected error %s at %s", type(error).__name__, " < ".join(reversed(frames)))


def invoke(serving: ServingModel, body: bytes, content_type: str, accept: str) -> Outcome:
    """Run the hooks on one request; every failure becomes a status and a safe body."""
    try:
        batch = input_fn(body, content_type)
        text, response_type = output_fn(predict_fn(batch, serving), accept)
    except InferenceError as e:
        return Outcome(int(e.status), json_bytes({"error": e.code, "message": e.message}))
    except Exception as e:
        log_unexpected(e)
        return Outcome(HTTPStatus.INTERNAL_SERVER_ERROR, error_body(500))
    return Outcome(HTTPStatus.OK, text.encode("utf-8"), response_type, len(batch.records))


def model_error(outcome: Outcome, endpoint_name: str) -> Response:
    """What sagemaker-runtime sends when the container answers with an error: ModelError 424."""
    original = json.loads(outcome.body).get("message") or HTTPStatus(outcome.status).phrase
    kind = "client" if outcome.status < HTTPStatus.INTERNAL_SERVER_ERROR else "server"
    log_group = f"arn:aws:logs:local:{LOCAL_ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/"
    body = {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": log_group + endpoint_name,
        "Message": f'Received {kind} error ({outcome.status}) from primary with message "'
        f'{original}". See the server log for more information.',
        "OriginalMessage": original,
        "OriginalStatusCode": outcome.status,
    }
    headers = {_ERROR_TYPE_HEADER: f"ModelError:{_CORAL_SERVICE}"}
    return _json(HTTPStatus.FAILED_DEPENDENCY, json_bytes(body), headers)


def validation_error(message: str) -> Response:
    """sagemaker-runtime's ``ValidationError`` (HTTP 400)."""
    headers = {_ERROR_TYPE_HEADER: f"ValidationError:{_CORAL_VALIDATE}", "Connection": "close"}
    return _json(HTTPStatus.BAD_REQUEST, json_bytes({"message": message}), headers)


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    all_headers = {_REQUEST_ID_HEADER: str(uuid.uuid4()), **(headers or {})}
    return Response(body, status_code=status, media_type=CONTENT_TYPE_JSON, headers=all_headers)


def refusal(error: RefusedRequestError) -> Response:
    """A request answered before its body was fully read: the connection closes after it."""
    headers = {"Connection": "close"}
    if error.status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers = {"Retry-After": str(RETRY_AFTER_S)}
    return _json(error.status, error_body(error.status, error.message), headers)


class EndpointApp:
    """The model, the capture and the names that the routes share; ``app`` is the ASGI app."""

    def __init__(
        self,
        serving: ServingModel,
        *,
        endpoint_name: str | None = None,
        variant_name: str = DEFAULT_VARIANT_NAME,
        capture: DataCapture | None = None,
        limits: AppLimits = AppLimits(),
    ) -> None:
        self.serving = serving
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self.capture = capture
        self.limits = limits
        self._slots: anyio.Semaphore | None = None  # created in the event loop
        routes = [
            Route(PING_PATH, self.ping, methods=["GET"]),
            Route(INVOCATIONS_PATH, self.invocations, methods=["POST"]),
            Route(RUNTIME_PATH, self.runtime_invocations, methods=["POST"]),
        ]
        handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
            HTTPException: self._http_error,
            Exception: self._internal_error,
        }
        starlette = Starlette(routes=routes, exception_handlers=handlers)
        starlette.router.redirect_slashes = False  # /invocations/ is a 404, not a redirect
        self.app = _NeverRaise(starlette, limits.max_head_bytes)

    # ----- routes -----
    async def ping(self, request: Request) -> Response:
        started = time.perf_counter()
        response = _json(HTTPStatus.OK, json_bytes({"status": "healthy"}))
        self._log(request, PING_PATH, HTTPStatus.OK, started)
        return response

    async def invocations(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await self._read_body(request)
            outcome = await self._score(request, body, self._capture_name())
        except RefusedRequestError as e:
            self._log(request, INVOCATIONS_PATH, e.status, started)
            return refusal(e)
        self._log(request, INVOCATIONS_PATH, outcome.status, started, outcome.records)
        return _json(outcome.status, outcome.body, {"Content-Type": outcome.content_type})

    async def runtime_invocations(self, request: Request) -> Response:
        started = time.perf_counter()
        name = str(request.path_params["name"])
        if self.endpoint_name is not None and name != self.endpoint_name:
            shown = name if _is_endpoint_name(name) else "(invalid name)"
            self._log(request, RUNTIME_PATH, HTTPStatus.BAD_REQUEST, started)
            return validation_error(f"Endpoint {shown} of account {LOCAL_ACCOUNT_ID} not found.")
        try:
            body = await self._read_body(request)
            outcome = await self._score(request, body, name)
        except RefusedRequestError as e:
            self._log(request, RUNTIME_PATH, e.status, started)
            if e.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                limit = self.limits.max_payload_bytes
                return validation_error(
                    f"Received payload size exceeds the maximum of {limit} bytes."
                )
            return refusal(e)
        self._log(request, RUNTIME_PATH, outcome.status, started, outcome.records)
        if outcome.status != HTTPStatus.OK:
            return model_error(outcome, name)
        headers = {"Content-Type": outcome.content_type, _VARIANT_HEADER: self.variant_name}
        return _json(outcome.status, outcome.body, headers)

    # ----- the body and the hooks -----
    async def _read_body(self, request: Request) -> bytes:
        """The whole body within the size limit and the time limit, or ``RefusedRequestError``."""
        limit = self.limits.max_payload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RefusedRequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {limit} bytes"
            )
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.limits.body_timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise RefusedRequestError(
                            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {limit} bytes"
                        )
                    chunks.append(chunk)
        except TimeoutError as e:
            raise RefusedRequestError(
                HTTPStatus.REQUEST_TIMEOUT, "body not received in time"
            ) from e
        except ClientDisconnect as e:
            raise RefusedRequestError(HTTPStatus.BAD_REQUEST, "connection closed mid-body") from e
        return b"".join(chunks)

    async def _score(self, request: Request, body: bytes, capture_name: str) -> Outcome:
        """The hooks on a worker thread, at most ``scoring_slots`` at once in this process."""
        content_type = request.headers.get("content-type", "")
        accept = request.headers.get("accept") or self.limits.default_accept
        if self._slots is None:
            self._slots = anyio.Semaphore(self.limits.scoring_slots)
        try:
            with anyio.fail_after(self.limits.queue_timeout_s):
                await self._slots.acquire()
        except TimeoutError as e:
            raise RefusedRequestError(
                HTTPStatus.SERVICE_UNAVAILABLE, "no scoring slot in time"
            ) from e
        try:
            return await anyio.to_thread.run_sync(
                self._score_and_capture, body, content_type, accept, capture_name
            )
        finally:
            self._slots.release()

    def _score_and_capture(
        self, body: bytes, content_type: str, accept: str, capture_name: str
    ) -> Outcome:
        outcome = invoke(self.serving, body, content_type, accept)
        if outcome.status == HTTPStatus.OK and self.capture is not None:
            try:
                self.capture.record(
                    capture_name,
                    body.decode("utf-8"),
                    content_type or CONTENT_TYPE_JSON,
                    outcome.body.decode("utf-8"),
                    outcome.content_type,
                )
            except OSError as e:
                # As in SageMaker, a capture failure never fails the invocation.
                log.warning("data capture failed: %s", type(e).__name__)
        return outcome

    def _capture_name(self) -> str:
        return self.endpoint_name or DEFAULT_ENDPOINT_NAME

    # ----- errors and logs -----
    async def _http_error(self, request: Request, error: Exception) -> Response:
        """The framework's 404/405 (and any HTTPException) as JSON, its headers kept."""
        status = error.status_code if isinstance(error, HTTPException) else 500
        headers = dict(error.headers or {}) if isinstance(error, HTTPException) else {}
        self._log(request, "other", status, time.perf_counter())
        return _json(status, error_body(status), headers)

    async def _internal_error(self, request: Request, error: Exception) -> Response:
        return _json(HTTPStatus.INTERNAL_SERVER_ERROR, error_body(500), {"Connection": "close"})

    def _log(
        self, request: Request, route: str, status: int, started: float, records: int = 0
    ) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        method = request.method if request.method.isalpha() else "?"
        log.info("%s %s %d %.1f ms records=%d", method, route, status, elapsed_ms, records)


def _is_endpoint_name(name: str) -> bool:
    """SageMaker's endpoint name pattern: ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``."""
    return (
        0 < len(name) <= 63
        and set(name) <= _ENDPOINT_NAME_CHARS
        and name[0] != "-"
        and name[-1] != "-"
    )


_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]


class _NeverRaise:
    """Outermost ASGI layer. A request whose head is over ``max_head_bytes`` is answered 431
    here (h11 bounds a head that arrives in pieces, not one that arrives whole). An exception
    that escaped every handler is logged by type and frames only (Starlette re-raises after
    its 500 page and uvicorn would log the message, which may quote the request) and answered
    with the JSON 500 if nothing was sent yet."""

    def __init__(self, app: Any, max_head_bytes: int) -> None:
        self.app = app
        self.max_head_bytes = max_head_bytes

    async def __call__(
        self,
        scope: _Scope,
        receive: Callable[[], Awaitable[_Message]],
        send: Callable[[_Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and _head_size(scope) > self.max_head_bytes:
            log.info("? other 431 0.0 ms records=0")
            await _send_error(send, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        started = False

        async def tracking_send(message: _Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as e:
            log_unexpected(e)
            if scope["type"] == "http" and not started:
                await _send_error(send, HTTPStatus.INTERNAL_SERVER_ERROR)


def _head_size(scope: _Scope) -> int:
    """Bytes of the request line and headers as sent (give or take the separators)."""
    line = len(scope["method"]) + len(scope["raw_path"]) + len(scope["query_string"]) + 12
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


async def _send_error(send: Callable[[_Message], Awaitable[None]], status: HTTPStatus) -> None:
    """A JSON error sent on the raw ASGI channel, closing the connection."""
    body = error_body(status)
    await send(
        {
            "type": "http.response.start",
            "status": int(status),
            "headers": [
                (b"content-type", CONTENT_TYPE_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
