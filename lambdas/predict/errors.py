"""Typed errors of the API and the one place that turns validation errors into field paths.

No message built here ever contains a value from a request, an identifier or a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from contracts.encounter import model_input_fields
from contracts.serving import INSTANCES_KEY
from lambdas.predict.schema import BATCH_TAG, ENCOUNTER_ID, PATIENT_ID, SINGLE_TAG

BODY = "body"
UNKNOWN_FIELD = "<unknown>"
EXTRA_FORBIDDEN = "extra_forbidden"
TOO_LONG = "too_long"

#: Every name a field path may contain; anything else in a location is a pydantic detail
#: (a union member's label) or, for an unknown field, a name the caller chose.
_KNOWN_NAMES = frozenset(
    {INSTANCES_KEY, PATIENT_ID, ENCOUNTER_ID} | {spec.name for spec in model_input_fields()}
)
_SKIPPED_LOC_PARTS = frozenset({BODY, SINGLE_TAG, BATCH_TAG})


class ApiError(Exception):
    """An error with a fixed HTTP status and error code; ``str()`` is safe to log.

    ``headers`` are sent with the error response (``Allow`` on a 405, ``Accept-Encoding`` on a
    415 for a content coding); they never carry anything the caller sent.
    """

    status_code = 500
    code = "internal_error"
    retry_after = False

    def __init__(self, reason: str = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason or self.code)
        self.headers: dict[str, str] = dict(headers or {})


class MethodNotAllowedError(ApiError):
    """The path exists but not with this method (methods are case-sensitive, RFC 9110 9.1)."""

    status_code = 405
    code = "method_not_allowed"

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__("method not allowed", {"Allow": ", ".join(allowed)})


class UnsupportedMediaTypeError(ApiError):
    """The body is not declared as UTF-8 ``application/json``, or its content coding is unknown."""

    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(ApiError):
    """The body or the batch is over the API's limit."""

    status_code = 413
    code = "payload_too_large"


class EndpointThrottledError(ApiError):
    """The endpoint is over capacity; the caller should retry later."""

    status_code = 429
    code = "throttled"
    retry_after = True


class EndpointUnavailableError(ApiError):
    """The endpoint is missing, not in service, unreachable or failing; retry later."""

    status_code = 503
    code = "endpoint_unavailable"
    retry_after = True


class DeadlineExceededError(EndpointUnavailableError):
    """The request's deadline passed before the work it waited for finished; retry later."""

    code = "deadline_exceeded"


class ServiceMisconfiguredError(ApiError):
    """The function cannot run safely as deployed (e.g. no de-identification key)."""

    status_code = 500
    code = "service_misconfigured"


class EndpointContractError(ApiError):
    """The endpoint answered with something that breaks contracts.serving: a bug."""

    status_code = 500
    code = "internal_error"


def field_path(loc: Sequence[Any], error_type: str) -> str:
    """Return the dotted path of a validation error's location, e.g. ``instances.0.sex``.

    Only contract field names and list indexes are kept, so a path can never carry a key
    or value the caller sent: an unknown field shows as ``<unknown>`` under its parent.
    """
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            if parts:  # an index at the root is a JSON parser's offset, not a path
                parts.append(str(part))
            continue
        if part in _SKIPPED_LOC_PARTS and not parts:
            continue
        if part in _KNOWN_NAMES:
            parts.append(str(part))
            continue
        if error_type == EXTRA_FORBIDDEN:
            parts.append(UNKNOWN_FIELD)
        break
    return ".".join(parts) or BODY


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Return unique ``(path, error type)`` pairs of pydantic-style errors, in order."""
    seen: dict[tuple[str, str], None] = {}
    for error in errors:
        error_type = str(error.get("type", "invalid"))
        seen[(field_path(error.get("loc", ()), error_type), error_type)] = None
    return list(seen)


def is_batch_too_large(errors: Iterable[Mapping[str, Any]]) -> bool:
    """Tell whether the validation failed because the batch has too many instances."""
    return any(
        error.get("type") == TOO_LONG
        and field_path(error.get("loc", ()), TOO_LONG) == INSTANCES_KEY
        for error in errors
    )
