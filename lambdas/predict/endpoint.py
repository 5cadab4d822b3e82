"""Call the SageMaker endpoint and turn its failures into the API's typed errors.

The error codes are those of botocore's sagemaker-runtime model (service-2.json): throttling
comes back as ``ThrottlingException`` (HTTP 400) or ``ServiceUnavailable`` (503); a missing
endpoint as ``ValidationError`` "... not found"; a container failure as ``ModelError`` (424)
carrying the container's own status in ``OriginalStatusCode``.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import ValidationError

from contracts.serving import CONTENT_TYPE_JSON, INSTANCES_KEY
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
    runtime_client: Any, endpoint_name: str, records: list[dict[str, Any]]
) -> list[Prediction]:
    """Score de-identified ``records`` on the endpoint; predictions come back in order."""
    body = json.dumps({INSTANCES_KEY: records}, separators=(",", ":"), allow_nan=False)
    try:
        response = runtime_client.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType=CONTENT_TYPE_JSON,
            Accept=CONTENT_TYPE_JSON,
            Body=body.encode("utf-8"),
        )
        payload = response["Body"].read()
    except ClientError as e:
        raise classify_client_error(e) from e
    except (BotoConnectionError, HTTPClientError) as e:
        # Refused, reset, timed out (botocore has already retried): the endpoint is down.
        raise EndpointUnavailableError(f"endpoint unreachable: {type(e).__name__}") from e
    return parse_predictions(payload, expected=len(records))


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
