"""Typed errors of the serving hooks, each with the HTTP status the container answers with.

In the SageMaker PyTorch container, an exception deriving from the inference toolkit's
``BaseInferenceToolkitError`` is answered with its own status (anything else is a 500), so these
errors derive from it when the toolkit is installed and from a stand-in with the same
attributes otherwise (tests, the local endpoint server). Messages name a field or a part of the
request, never a value from it: the toolkit returns them to the caller and logs them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


def _toolkit_base() -> Any:
    """Return the toolkit's error base class, or a stand-in with the same constructor."""
    try:
        from sagemaker_inference.errors import BaseInferenceToolkitError

        return BaseInferenceToolkitError
    except ImportError:

        class StandInToolkitError(Exception):
            """Mirror of ``sagemaker_inference.errors.BaseInferenceToolkitError``."""

            def __init__(self, status_code: int, message: str, phrase: str) -> None:
                super().__init__(message)
                self.status_code = status_code
                self.message = message
                self.phrase = phrase

        return StandInToolkitError


_ToolkitError: Any = _toolkit_base()


class InferenceError(_ToolkitError):
    """Base of the hooks' errors; ``status`` is the HTTP status, ``code`` a stable name."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(int(self.status), message, self.status.phrase)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidRequestError(InferenceError):
    """The request or one of its records cannot be scored; ``field`` names the culprit."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field '{field}': {reason}")
        self.field = field
        self.reason = reason


class UnsupportedContentTypeError(InferenceError):
    """The request body is not ``application/json``."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class UnsupportedAcceptError(InferenceError):
    """The caller accepts no JSON answer."""

    status = HTTPStatus.NOT_ACCEPTABLE
    code = "not_acceptable"


class PayloadTooLargeError(InferenceError):
    """Too many records in one request, or a body over the endpoint's limit."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class ModelArtifactError(InferenceError):
    """The model directory is incomplete or inconsistent; names the file, not its content."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "model_artifact_error"
