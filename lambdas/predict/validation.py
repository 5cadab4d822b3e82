"""Request-body validation in front of a route: media type, body text, then one pydantic pass.

Powertools' own validation (``enable_validation=True``) does the same job through its OpenAPI
machinery, which adds to the function's cold import and, on every request, decodes the body
with ``json.loads``, validates the Python objects and then validates and re-encodes the
response. Here the raw body goes straight to pydantic's JSON validator (strict, as the models
say), and the validated model is handed to the route as its argument, so the route keeps the
typed signature from which the OpenAPI document is generated.

The order of checks is the order of the answers: 415 unless the body is declared UTF-8
``application/json`` (Content-Type parsed as RFC 9110 defines it, so ``application/jsonp`` or
``application/json, text/plain`` is not JSON), then 400/413/415 for a body that cannot be read
(``body.py``), then 400 for JSON that is not a valid request, including an object that names
the same key twice (RFC 8259 4 leaves its meaning to the parser; for a patient record there is
none). No error carries a value from the body (``include_input=False``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from contracts.serving import CONTENT_TYPE_JSON
from lambdas.predict.body import BODY, UNICODE_INVALID, invalid_body, request_text
from lambdas.predict.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from lambdas.predict.headers import CONTENT_TYPE, HeaderError, header_values, parse_media_type

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

#: Where Powertools keeps the keyword arguments it calls the route with (its own validation
#: middleware writes the validated body there the same way). Private to Powertools: no public
#: API hands a middleware's value to the route as an argument, and the route's signature is
#: what the OpenAPI document's request body comes from. Pinned with the layer at the exact
#: version of requirements.txt; tests/lambdas/test_powertools_contract.py fails if a release
#: moves it. Only :func:`pass_to_route` writes it.
ROUTE_ARGS = "_route_args"
CHARSET = "charset"
UTF8 = "utf-8"
DUPLICATE_KEY = "duplicate_key"
JSON_INVALID = "json_invalid"

Middleware = Callable[["APIGatewayRestResolver", "NextMiddleware"], "Response[Any]"]


def is_json(content_type: str | None) -> bool:
    """Whether one Content-Type value declares a body this API reads: UTF-8 application/json.

    JSON has no charset parameter (RFC 8259 11); one saying anything but UTF-8 means the bytes
    are not what we would decode, so it is refused rather than guessed at.
    """
    if content_type is None:
        return False
    try:
        media_type = parse_media_type(content_type)
    except HeaderError:
        return False
    charset = media_type.parameters.get(CHARSET, UTF8)
    return media_type.essence == CONTENT_TYPE_JSON and charset.lower() == UTF8


def require_json(event: Mapping[str, Any]) -> None:
    """Raise a 415 unless every Content-Type the request carries declares UTF-8 JSON."""
    values = header_values(event, CONTENT_TYPE)
    if not values:
        raise UnsupportedMediaTypeError("no Content-Type")
    if not all(is_json(value) for value in values):
        raise UnsupportedMediaTypeError("Content-Type is not application/json")


def parse_body(body: str | bytes | None, model: type[BaseModel], max_bytes: int) -> BaseModel:
    """Validate a raw JSON body as ``model``.

    Raises ``PayloadTooLargeError`` over ``max_bytes`` (before parsing anything) and
    ``RequestValidationError`` with pydantic's error types and locations, never the input.
    """
    data = body or b""
    if isinstance(data, str):
        if len(data) > max_bytes:
            raise PayloadTooLargeError("request body over the limit")
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid_body(UNICODE_INVALID) from None
    if len(data) > max_bytes:
        raise PayloadTooLargeError("request body over the limit")
    try:
        request = model.model_validate_json(data)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_context=False, include_input=False)
        # Not chained: pydantic's message quotes the input, and a logged traceback would too.
        raise RequestValidationError(errors) from None
    duplicates = duplicate_keys(data)
    if duplicates:
        raise RequestValidationError(
            [{"loc": (BODY, *path), "type": DUPLICATE_KEY} for path in duplicates]
        )
    return request


class _Object(dict[str, Any]):
    """A JSON object that remembers the names it saw more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        counts = Counter(name for name, _ in pairs)
        obj.duplicates = tuple(name for name, count in counts.items() if count > 1)
    return obj


def duplicate_keys(data: bytes | str) -> list[tuple[str | int, ...]]:
    """Paths of every key that appears twice in one object, e.g. ``("instances", 2, "sex")``.

    Run after pydantic accepted the body, so the document is small and shallow; the standard
    parser is used because pydantic's keeps the last value of a repeated key without a word.
    """
    try:
        document = json.loads(data, object_pairs_hook=_object)
    except (ValueError, RecursionError):  # pydantic accepted it first, so only in theory
        raise invalid_body(JSON_INVALID) from None
    found: list[tuple[str | int, ...]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Object):
            found.extend((*path, name) for name in value.duplicates)
            stack.extend(((*path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
    return found


def validated_body(model: type[BaseModel], argument: str, max_bytes: int) -> Middleware:
    """A route middleware that passes the body, validated as ``model``, as ``argument``."""

    def validate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event.raw_event
        require_json(event)
        request = parse_body(request_text(event, max_bytes), model, max_bytes)
        pass_to_route(app, argument, request)
        return next_middleware(app)

    return validate


def pass_to_route(app: APIGatewayRestResolver, argument: str, value: Any) -> None:
    """Have Powertools call the route with ``argument=value``, beside its path parameters.

    Written through the resolver's public ``append_context`` (cleared after every event).
    """
    app.append_context(**{ROUTE_ARGS: {**app.context.get(ROUTE_ARGS, {}), argument: value}})
