"""Request-body validation in front of a route: one pydantic pass over the raw JSON body.

Powertools' own validation (``enable_validation=True``) does the same job through its OpenAPI
machinery, which adds to the function's cold import and, on every request, decodes the body
with ``json.loads``, validates the Python objects and then validates and re-encodes the
response. Here the raw body goes straight to pydantic's JSON validator (strict, as the models
say), and the validated model is handed to the route as its argument, so the route keeps the
typed signature from which the OpenAPI document is generated.

Failures raise Powertools' own exception types, so the app's handlers shape every 400, 413
and 415; no error carries a value from the body (``include_input=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel, ValidationError

from contracts.serving import CONTENT_TYPE_JSON
from lambdas.predict.errors import PayloadTooLargeError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

#: Where Powertools keeps the keyword arguments it calls the route with (its own validation
#: middleware writes the validated body there the same way).
ROUTE_ARGS = "_route_args"
CONTENT_TYPE = "content-type"

Middleware = Callable[["APIGatewayRestResolver", "NextMiddleware"], "Response[Any]"]


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON; none at all counts as JSON, as in Powertools."""
    media_type = (content_type or "").strip().lower()
    return not media_type or media_type.startswith(CONTENT_TYPE_JSON)


def parse_body(body: str | None, model: type[BaseModel], max_bytes: int) -> BaseModel:
    """Validate a raw JSON body as ``model``.

    Raises ``PayloadTooLargeError`` over ``max_bytes`` (before parsing anything) and
    ``RequestValidationError`` with pydantic's error types and locations, never the input.
    """
    text = body or ""
    if len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        raise PayloadTooLargeError("request body over the limit")
    try:
        return model.model_validate_json(text)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_context=False, include_input=False)
        # Not chained: pydantic's message quotes the input, and a logged traceback would too.
        raise RequestValidationError(errors) from None


def validated_body(model: type[BaseModel], argument: str, max_bytes: int) -> Middleware:
    """A route middleware that passes the body, validated as ``model``, as ``argument``."""

    def validate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event
        if not is_json(event.headers.get(CONTENT_TYPE)):
            raise RequestUnsupportedContentType(
                "only application/json bodies are accepted",
                errors=[{"loc": ("body",), "type": "unsupported_content_type"}],
            )
        request = parse_body(event.decoded_body, model, max_bytes)
        app.context[ROUTE_ARGS] = {**app.context.get(ROUTE_ARGS, {}), argument: request}
        return next_middleware(app)

    return validate
