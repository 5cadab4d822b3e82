"""Call the SageMaker endpoint and turn its failures into the API's typed errors.

The error codes are those of botocore's sagemaker-runtime model (service-2.json): throttling
comes back as ``ThrottlingException`` (HTTP 400) or ``ServiceUnavailable`` (503); a missing
endpoint as ``ValidationError`` "... not found"; a container failure as ``ModelError`` (424)
carrying the container's own status in ``OriginalStatusCode``.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import ValidationError

from contracts.serving import CONTENT_TYPE_JSON, INSTANCES_KEY
from lambdas.predict.deadline import Cancellation
from lambdas.predict.errors import (
    EndpointContractError,
    EndpointThrottledError,
    EndpointUnavailableError,
)
from lambdas.predict.schema import EndpointResponse, Prediction

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable"}
)
UNAVAILABLE_CODES = frozenset(
    {"ModelNotReadyException", "InternalFailure", "InternalDependencyException"}
)
VALIDATION_ERROR = "ValidationError"
MODEL_ERROR = "ModelError"
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVICE_UNAVAILABLE = 503


def invoke_endpoint(
    runtime_client: Any,
    endpoint_name: str,
    records: list[dict[str, Any]],
    cancellation: Cancellation | None = None,
    *,
    inference_id: str | None = None,
) -> list[Prediction]:
    """Score de-identified ``records`` on the endpoint; predictions come back in order.

    Blocking: run it under ``deadline.run_within``. When that gives up, ``cancellation`` closes
    the response stream, so a read in progress ends at its next byte instead of trickling on.
    ``inference_id`` is recorded with the request in the endpoint's data capture (the health
    probe labels itself with it).
    """
    body = json.dumps({INSTANCES_KEY: records}, separators=(",", ":"), allow_nan=False)
    request: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "ContentType": CONTENT_TYPE_JSON,
        "Accept": CONTENT_TYPE_JSON,
        "Body": body.encode("utf-8"),
    }
    if inference_id is not None:
        request["InferenceId"] = inference_id
    try:
        response = runtime_client.invoke_endpoint(**request)
        stream = response["Body"]
        if cancellation is not None:
            cancellation.on_cancel(lambda: abort_stream(stream))
        payload = stream.read()
    except ClientError as e:
        raise classify_client_error(e) from e
    except (BotoConnectionError, HTTPClientError) as e:
        # Refused, reset, timed out (botocore has already retried): the endpoint is down.
        raise EndpointUnavailableError(f"endpoint unreachable: {type(e).__name__}") from e
    return parse_predictions(payload, expected=len(records))


def abort_stream(stream: Any) -> None:
    """End a response read in progress on another thread, at once.

    botocore has no public way to abort a read: closing its ``StreamingBody`` waits for the
    buffered read to return. Shutting the socket down wakes that read up (it sees the end of
    the stream and raises). The socket is reached through the urllib3 response botocore wraps
    (``HTTPResponse.connection.sock``); if a version lays it out differently, closing the
    stream is all that is left, and the abandoned read ends at botocore's read timeout.
    """
    connection = getattr(getattr(stream, "_raw_stream", None), "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    stream.close()


def classify_client_error(error: ClientError) -> Exception:
    """Map a sagemaker-runtime error to 429, 503 or (a bug on our side) a plain 500."""
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in UNAVAILABLE_CODES:
        return EndpointUnavailableError(f"endpoint unavailable: {code}")
    if code in THROTTLING_CODES:
        return EndpointThrottledError(f"endpoint throttled: {code}")
    if code == VALIDATION_ERROR and "not found" in str(details.get("Message", "")).lower():
        return EndpointUnavailableError("endpoint not found")
    if code == MODEL_ERROR:
        original = error.response.get("OriginalStatusCode")
        if original == HTTP_SERVICE_UNAVAILABLE:
            return EndpointUnavailableError("model container unavailable (503)")
        if original == HTTP_TOO_MANY_REQUESTS:
            return EndpointThrottledError("model container throttled (429)")
        return EndpointContractError(f"model container failed ({original})")
    if status == HTTP_TOO_MANY_REQUESTS:
        return EndpointThrottledError(f"endpoint throttled: HTTP {status}")
    return EndpointContractError(f"endpoint call rejected: {code or status}")


def parse_predictions(payload: bytes, expected: int) -> list[Prediction]:
    """Check the endpoint's answer against contracts.serving, one prediction per record."""
    try:
        predictions = EndpointResponse.model_validate_json(payload).predictions
    except ValidationError as e:
        raise EndpointContractError("endpoint response does not match the contract") from e
    if len(predictions) != expected:
        raise EndpointContractError("endpoint returned a different number of predictions")
    return predictions
