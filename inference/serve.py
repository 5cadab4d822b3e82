"""The local endpoint server: the serving hooks over HTTP, as SageMaker exposes them.

    python -m inference.serve --model-dir PATH --port 8080 [--host 127.0.0.1] [--capture-dir PATH]

Routes:

* ``GET /ping`` and ``POST /invocations``: the SageMaker container contract. Errors carry the
  hooks' own status (400 naming the field, 406, 413, 415, 500 without detail).
* ``POST /endpoints/<name>/invocations``: the sagemaker-runtime ``InvokeEndpoint`` route, so
  that boto3 with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:PORT`` reaches this
  server. Answers as the runtime service does: the body with ``Content-Type`` and
  ``x-Amzn-Invoked-Production-Variant``; a container error becomes ``ModelError`` (HTTP 424
  with ``OriginalStatusCode``); an unknown endpoint or an oversized payload ``ValidationError``.

Stdlib only (``ThreadingHTTPServer``). Log lines carry the route, status, duration and record
count, never a payload. ``serve()`` starts it in a thread for tests and the benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

from contracts.serving import CONTENT_TYPE_JSON
from inference.capture import DataCapture
from inference.errors import InferenceError
from inference.handler import input_fn, model_fn, output_fn, predict_fn
from inference.predictor import ServingModel

log = logging.getLogger("inference.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: The deployer's single production variant (lambdas.deployer.deployment.VARIANT_NAME).
DEFAULT_VARIANT_NAME = "AllTraffic"
#: Endpoint name used for capture of ``/invocations`` calls when none is configured.
DEFAULT_ENDPOINT_NAME = "local-endpoint"
#: SageMaker's real-time payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: Seconds an idle keep-alive connection may hold a worker thread.
CONNECTION_TIMEOUT_S = 60
#: One intra-op thread per request: requests already run in parallel threads, and on a small
#: machine OpenMP's spinning threads slow small forward passes down many times over.
DEFAULT_TORCH_THREADS = 1
#: Account shown in the runtime route's error messages (moto's default account).
LOCAL_ACCOUNT_ID = "123456789012"

PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
_RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations/?$")
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ERROR_TYPE_HEADER = "x-amzn-ErrorType"
_VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
_CORAL_SERVICE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
_CORAL_VALIDATE = "http://internal.amazon.com/coral/com.amazon.coral.validate/"


@dataclass(frozen=True)
class Outcome:
    """The container's answer to one invocation."""

    status: int
    body: bytes
    content_type: str = CONTENT_TYPE_JSON
    records: int = 0


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def invoke(serving: ServingModel, body: bytes, content_type: str, accept: str) -> Outcome:
    """Run the four hooks on one request; every failure becomes a status and a safe body."""
    try:
        batch = input_fn(body, content_type)
        text, response_type = output_fn(predict_fn(batch, serving), accept)
    except InferenceError as e:
        return Outcome(int(e.status), _json_bytes({"error": e.code, "message": e.message}))
    except Exception as e:
        # The message of an unexpected error may quote the request: log type and frames only.
        frames = [
            f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(e.__traceback__)
        ]
        log.error("unexpected error %s at %s", type(e).__name__, " < ".join(reversed(frames)))
        return Outcome(HTTPStatus.INTERNAL_SERVER_ERROR, _json_bytes({"error": "internal_error"}))
    return Outcome(HTTPStatus.OK, text.encode("utf-8"), response_type, len(batch.records))


def model_error(outcome: Outcome, endpoint_name: str) -> tuple[int, bytes, dict[str, str]]:
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
    return (
        HTTPStatus.FAILED_DEPENDENCY,
        _json_bytes(body),
        {_ERROR_TYPE_HEADER: _error_type("ModelError", _CORAL_SERVICE)},
    )


def validation_error(message: str) -> tuple[int, bytes, dict[str, str]]:
    """sagemaker-runtime's ``ValidationError`` (HTTP 400)."""
    header = {_ERROR_TYPE_HEADER: _error_type("ValidationError", _CORAL_VALIDATE)}
    return HTTPStatus.BAD_REQUEST, _json_bytes({"message": message}), header


def _error_type(code: str, namespace: str) -> str:
    return f"{code}:{namespace}"


class EndpointHTTPServer(ThreadingHTTPServer):
    """The HTTP server and what its handlers share: the model, the capture, the names."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        serving: ServingModel,
        endpoint_name: str | None,
        variant_name: str,
        capture: DataCapture | None,
    ) -> None:
        super().__init__(address, _Handler)
        self.serving = serving
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self.capture = capture


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT_S
    # Headers and body leave in two writes; with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers (tens of milliseconds per response).
    disable_nagle_algorithm = True
    server: EndpointHTTPServer

    def do_GET(self) -> None:
        started = time.perf_counter()
        if urlsplit(self.path).path == PING_PATH:
            self._send(HTTPStatus.OK, _json_bytes({"status": "healthy"}))
            self._log(PING_PATH, HTTPStatus.OK, started)
            return
        self._send(HTTPStatus.NOT_FOUND, _json_bytes({"error": "not_found"}))
        self._log("other", HTTPStatus.NOT_FOUND, started)

    def do_POST(self) -> None:
        started = time.perf_counter()
        path = urlsplit(self.path).path
        runtime = _RUNTIME_PATH.match(path)
        if path != INVOCATIONS_PATH and runtime is None:
            self.close_connection = True  # the body is left unread
            self._send(HTTPStatus.NOT_FOUND, _json_bytes({"error": "not_found"}))
            self._log("other", HTTPStatus.NOT_FOUND, started)
            return
        if runtime is None:
            self._container_route(started)
        else:
            self._runtime_route(unquote(runtime["name"]), started)

    # ----- the two invocation routes -----
    def _container_route(self, started: float) -> None:
        body = self._read_body()
        if body is None:
            self._log(INVOCATIONS_PATH, self._status_sent, started)
            return
        outcome = self._invoke(body)
        if outcome.status == HTTPStatus.OK:
            self._capture(self.server.endpoint_name or DEFAULT_ENDPOINT_NAME, body, outcome)
        self._send(outcome.status, outcome.body, content_type=outcome.content_type)
        self._log(INVOCATIONS_PATH, outcome.status, started, outcome.records)

    def _runtime_route(self, name: str, started: float) -> None:
        route = "/endpoints/{name}/invocations"
        configured = self.server.endpoint_name
        if configured is not None and name != configured:
            shown = name if _ENDPOINT_NAME.match(name) else "(invalid name)"
            message = f"Endpoint {shown} of account {LOCAL_ACCOUNT_ID} not found."
            self.close_connection = True
            self._send_error_triple(validation_error(message))
            self._log(route, HTTPStatus.BAD_REQUEST, started)
            return
        body = self._read_body(runtime=True)
        if body is None:
            self._log(route, self._status_sent, started)
            return
        outcome = self._invoke(body)
        if outcome.status != HTTPStatus.OK:
            self._send_error_triple(model_error(outcome, name))
            self._log(route, HTTPStatus.FAILED_DEPENDENCY, started, outcome.records)
            return
        self._capture(name, body, outcome)
        headers = {_VARIANT_HEADER: self.server.variant_name}
        self._send(outcome.status, outcome.body, content_type=outcome.content_type, headers=headers)
        self._log(route, outcome.status, started, outcome.records)

    def _invoke(self, body: bytes) -> Outcome:
        content_type = self.headers.get("Content-Type", "")
        accept = self.headers.get("Accept", "")
        return invoke(self.server.serving, body, content_type, accept)

    def _capture(self, endpoint_name: str, body: bytes, outcome: Outcome) -> None:
        capture = self.server.capture
        if capture is None:
            return
        try:
            capture.record(
                endpoint_name,
                body.decode("utf-8"),
                self.headers.get("Content-Type", CONTENT_TYPE_JSON),
                outcome.body.decode("utf-8"),
                outcome.content_type,
            )
        except OSError as e:
            # As in SageMaker, a capture failure never fails the invocation.
            log.warning("data capture failed: %s", type(e).__name__)

    # ----- HTTP plumbing -----
    _status_sent: int = HTTPStatus.OK

    def _read_body(self, runtime: bool = False) -> bytes | None:
        """Return the body, or answer the request (and return None) when it cannot be read."""
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length") is None:
            self.close_connection = True
            self._send(HTTPStatus.LENGTH_REQUIRED, _json_bytes({"error": "length_required"}))
            return None
        try:
            length = int(self.headers["Content-Length"])
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(HTTPStatus.BAD_REQUEST, _json_bytes({"error": "invalid_content_length"}))
            return None
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            if runtime:
                limit = f"Received payload size exceeds the maximum of {MAX_PAYLOAD_BYTES} bytes."
                self._send_error_triple(validation_error(limit))
            else:
                self._send(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    _json_bytes({"error": "payload_too_large"}),
                )
            return None
        return self.rfile.read(length)

    def _send_error_triple(self, triple: tuple[int, bytes, dict[str, str]]) -> None:
        status, body, headers = triple
        self._send(status, body, headers=headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = CONTENT_TYPE_JSON,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._status_sent = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _log(self, route: str, status: int, started: float, records: int = 0) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        log.info("%s %s %d %.1f ms records=%d", self.command, route, status, elapsed_ms, records)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own lines (they quote the raw request line)."""


@dataclass
class LocalEndpoint:
    """A running server: where it listens, and ``stop()`` (also on leaving a ``with`` block)."""

    server: EndpointHTTPServer
    thread: threading.Thread
    _stopped: bool = field(default=False, init=False)

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. for ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop accepting, finish the current requests, close the socket and capture files."""
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        if self.server.capture is not None:
            self.server.capture.close()

    def __enter__(self) -> LocalEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    model_dir: str | Path | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    capture_dir: str | Path | None = None,
    endpoint_name: str | None = None,
    variant_name: str = DEFAULT_VARIANT_NAME,
    serving: ServingModel | None = None,
) -> LocalEndpoint:
    """Load the model (or take a loaded one) and serve it from a daemon thread.

    ``port=0`` picks a free port (``LocalEndpoint.port``). With ``endpoint_name`` the runtime
    route serves that name only, as the real service does; without it, any name.
    """
    if serving is None:
        if model_dir is None:
            raise ValueError("model_dir or serving is required")
        serving = model_fn(str(model_dir))
    capture = DataCapture(capture_dir, variant_name) if capture_dir is not None else None
    server = EndpointHTTPServer((host, port), serving, endpoint_name, variant_name, capture)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="endpoint"
    )
    thread.start()
    return LocalEndpoint(server, thread)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of ``python -m inference.serve``."""
    parser = argparse.ArgumentParser(
        prog="python -m inference.serve", description=__doc__.splitlines()[0]
    )
    model_dir = os.environ.get("SM_MODEL_DIR")
    parser.add_argument("--model-dir", type=Path, default=model_dir, required=model_dir is None)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--capture-dir", type=Path, default=None, help="write data capture here")
    parser.add_argument("--endpoint-name", default=None, help="serve only this runtime name")
    parser.add_argument("--variant-name", default=DEFAULT_VARIANT_NAME)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=DEFAULT_TORCH_THREADS,
        help="intra-op threads per request (requests run in parallel threads)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then stop cleanly (exit status 0)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.torch_threads))
    endpoint = serve(
        args.model_dir,
        host=args.host,
        port=args.port,
        capture_dir=args.capture_dir,
        endpoint_name=args.endpoint_name,
        variant_name=args.variant_name,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("serving on %s", endpoint.url)
    while not stop.wait(0.2):
        pass
    endpoint.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
