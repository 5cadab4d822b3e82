"""Exact routing in front of every route: the path as sent, the method as sent.

Powertools' REST resolver matches ``/predict/`` and ``/predict//`` as ``/predict`` and upper-cases
the method, so ``post`` would score. This API answers only what it documents, as API Gateway
does: a path is a resource only when it is exactly one of the API's paths (``/predict/`` is
another resource, as ``/predict`` and ``/Predict`` are, RFC 3986 6.2.2.1), and a method only
when it is exactly one of the resource's methods (methods are case-sensitive, RFC 9110 9.1).
Any other path is 404; any other method on a known path is 405 with ``Allow`` (RFC 9110 15.5.6),
HEAD and OPTIONS included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from lambdas.predict.errors import MethodNotAllowedError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

Middleware = Callable[["APIGatewayRestResolver", "NextMiddleware"], "Response[Any]"]


def allowed_methods(routes: Mapping[str, Sequence[str]], method: Any, path: Any) -> None:
    """Raise 404 unless ``path`` is a route, 405 unless ``method`` is one of its methods."""
    allowed = routes.get(path) if isinstance(path, str) else None
    if allowed is None:
        raise NotFoundError()
    if method not in allowed:
        raise MethodNotAllowedError(allowed)


def exact_routes(routes: Mapping[str, Sequence[str]]) -> Middleware:
    """A global middleware that lets a request through only on an exact path and method."""

    def check(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        event = app.current_event.raw_event
        allowed_methods(routes, event.get("httpMethod"), event.get("path"))
        return next_middleware(app)

    return check
