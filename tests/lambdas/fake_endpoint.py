"""A tiny stand-in for a SageMaker endpoint, reached by the real boto3 sagemaker-runtime client.

It serves ``POST /endpoints/<name>/invocations`` over HTTP with a transparent scoring rule
(logistic of prior admissions and age) and can fail the way the real service fails: the
error bodies and ``x-amzn-ErrorType`` headers follow botocore's sagemaker-runtime model
(service-2.json), so the API's error mapping is tested against what botocore really parses.
It records every body it receives, so tests can assert what left the Lambda.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import threading
import time
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contracts.encounter import field
from contracts.serving import (
    DIRECTION_DECREASES,
    DIRECTION_INCREASES,
    FACTOR_CONTRIBUTION,
    FACTOR_DIRECTION,
    FACTOR_FEATURE,
    INSTANCES_KEY,
    PREDICTIONS_KEY,
    risk_band,
)

#: The scoring rule: logit = BIAS + PRIOR_WEIGHT * prior admissions + AGE_WEIGHT * (age - 50).
BIAS = -2.0
PRIOR_WEIGHT = 0.6
AGE_WEIGHT = 0.03
AGE_CENTRE = 50
THRESHOLD = 0.4
MODEL_VERSION = "fake-model-7"
ACCOUNT_ID = "123456789012"

_INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")
_RAW_IDENTIFIERS = ("patient_id", "encounter_id")
_AVAILABILITY = "http://internal.amazon.com/coral/com.amazon.coral.availability/"
_VALIDATE = "http://internal.amazon.com/coral/com.amazon.coral.validate/"
_SERVICE = "http://internal.amazon.com/coral/com.amazon.coral.service/"


class Mode(StrEnum):
    """How the fake answers the next invocations."""

    OK = "ok"
    THROTTLED = "throttled"  # ThrottlingException, HTTP 400, as the real service sends it
    SERVICE_UNAVAILABLE = "service_unavailable"  # ServiceUnavailable, HTTP 503
    MODEL_NOT_READY = "model_not_ready"  # ModelNotReadyException, HTTP 429
    INTERNAL_FAILURE = "internal_failure"  # InternalFailure, HTTP 500
    MODEL_ERROR_500 = "model_error_500"  # ModelError 424, the container answered 500
    MODEL_ERROR_503 = "model_error_503"  # ModelError 424, the container answered 503
    MALFORMED = "malformed"  # 200 with a body that breaks contracts.serving
    SLOW = "slow"  # answers after SLOW_SECONDS
    TRICKLE = "trickle"  # a 200 whose body comes a byte every TRICKLE_INTERVAL_S
    HANG = "hang"  # reads the request and never answers (until stopped)


SLOW_SECONDS = 2.0
#: Each byte well inside any read timeout, so only a per-request deadline can stop the read.
TRICKLE_INTERVAL_S = 0.05


def score_record(record: dict[str, Any]) -> dict[str, Any]:
    """Return the fake model's prediction for one de-identified record."""
    contributions = {
        "prior_admissions_12m": PRIOR_WEIGHT * record["prior_admissions_12m"],
        "age_years": AGE_WEIGHT * (record["age_years"] - AGE_CENTRE),
    }
    probability = 1.0 / (1.0 + math.exp(-(BIAS + sum(contributions.values()))))
    factors = [
        {
            FACTOR_FEATURE: field(name).readable_name,
            FACTOR_DIRECTION: DIRECTION_INCREASES if value > 0 else DIRECTION_DECREASES,
            FACTOR_CONTRIBUTION: round(value, 6),
        }
        for name, value in sorted(contributions.items(), key=lambda item: -abs(item[1]))
        if value != 0
    ]
    return {
        "encounter_key": record.get("encounter_key"),
        "probability": round(probability, 6),
        "risk_band": risk_band(probability, THRESHOLD),
        "model_version": MODEL_VERSION,
        "top_factors": factors,
    }


class _TrackingServer(ThreadingHTTPServer):
    """Remembers open connections, so that stopping also cuts kept-alive ones."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self.connections_lock:
            self.connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class FakeEndpoint:
    """A threaded HTTP server on 127.0.0.1 with a free port; ``mode`` switches failures."""

    def __init__(self, endpoint_name: str) -> None:
        self.endpoint_name = endpoint_name
        self.mode = Mode.OK
        self.received: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.inference_ids: list[str | None] = []
        self.invocations = 0
        #: Answers cut short because the client went away (a trickle the client abandoned).
        self.abandoned = 0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server = _TrackingServer(("127.0.0.1", 0), self._handler_class())
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        """The base URL to put in AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeEndpoint:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (later calls get connection refused)."""
        if self._stopped:
            return
        self._stopped = True
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.cut_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def received_records(self) -> list[dict[str, Any]]:
        """Every record of every body received so far, in order."""
        return [record for body in self.received for record in body.get(INSTANCES_KEY, [])]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                match = _INVOCATIONS.match(self.path)
                with fake._lock:
                    fake.invocations += 1
                    mode = fake.mode
                if match is None or match["name"] != fake.endpoint_name:
                    name = match["name"] if match else "?"
                    message = f"Endpoint {name} of account {ACCOUNT_ID} not found."
                    self._error(400, "ValidationError", _VALIDATE, {"message": message})
                    return
                body = json.loads(raw)
                with fake._lock:
                    fake.received.append(body)
                    fake.content_types.append(self.headers.get("Content-Type", ""))
                    fake.inference_ids.append(self.headers.get("X-Amzn-SageMaker-Inference-Id"))
                self._answer(mode, body)

            def _answer(self, mode: Mode, body: dict[str, Any]) -> None:
                if mode == Mode.THROTTLED:
                    self._error(400, "ThrottlingException", _AVAILABILITY, {"message": None})
                elif mode == Mode.SERVICE_UNAVAILABLE:
                    self._error(503, "ServiceUnavailable", _AVAILABILITY, {"message": None})
                elif mode == Mode.MODEL_NOT_READY:
                    message = "Model is not ready yet."
                    self._error(429, "ModelNotReadyException", _SERVICE, {"message": message})
                elif mode == Mode.INTERNAL_FAILURE:
                    self._error(500, "InternalFailure", _SERVICE, {"message": None})
                elif mode in (Mode.MODEL_ERROR_500, Mode.MODEL_ERROR_503):
                    # Containers often quote the input they choke on: the API must not pass it on.
                    quoted = json.dumps(body.get(INSTANCES_KEY, [None])[0])[:200]
                    status = 500 if mode == Mode.MODEL_ERROR_500 else 503
                    self._model_error(status, f"cannot score {quoted}")
                elif mode == Mode.MALFORMED:
                    self._send(200, {PREDICTIONS_KEY: [{"probability": "high"}]}, {})
                elif mode == Mode.HANG:
                    fake._released.wait()
                elif mode == Mode.TRICKLE:
                    self._trickle(body)
                else:
                    if mode == Mode.SLOW:
                        time.sleep(SLOW_SECONDS)
                    self._score(body)

            def _score(self, body: dict[str, Any]) -> None:
                records = body.get(INSTANCES_KEY)
                if not isinstance(records, list) or not all(_is_deidentified(r) for r in records):
                    self._model_error(400, "records must carry hashed keys only")
                    return
                predictions = [score_record(record) for record in records]
                self._send(200, {PREDICTIONS_KEY: predictions}, {})

            def _trickle(self, body: dict[str, Any]) -> None:
                records = body.get(INSTANCES_KEY) or []
                payload = json.dumps(
                    {PREDICTIONS_KEY: [score_record(record) for record in records]}
                ).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.flush()
                try:
                    for index in range(len(payload)):
                        if fake._released.wait(TRICKLE_INTERVAL_S):
                            return
                        self.wfile.write(payload[index : index + 1])
                        self.wfile.flush()
                except OSError:  # the client shut the connection: it gave up on the answer
                    with fake._lock:
                        fake.abandoned += 1

            def _model_error(self, original_status: int, original_message: str) -> None:
                # What SageMaker sends when the container itself answers with an error.
                self._error(
                    424,
                    "ModelError",
                    _SERVICE,
                    {
                        "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
                        "Message": f"Received error ({original_status}) from primary with "
                        f'message "{original_message}".',
                        "OriginalMessage": original_message,
                        "OriginalStatusCode": original_status,
                        "LogStreamArn": f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:/aws/"
                        f"sagemaker/Endpoints/{fake.endpoint_name}",
                    },
                )

            def _error(self, status: int, code: str, namespace: str, body: dict[str, Any]) -> None:
                self._send(status, body, {"x-amzn-ErrorType": f"{code}:{namespace}"})

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                payload = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "fake-runtime-request")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the default per-request stderr line."""

        return Handler


def _is_deidentified(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and bool(_HEX_KEY.match(str(record.get("patient_key", ""))))
        and not any(name in record for name in _RAW_IDENTIFIERS)
    )


def main() -> None:
    """Serve a fake endpoint until killed, printing its base URL (used by the API benchmark)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--name", required=True, help="endpoint name to answer for")
    args = parser.parse_args()
    fake = FakeEndpoint(args.name).start()
    print(fake.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
