"""A local API Gateway: HTTP requests in, REST proxy events to the real handlers, HTTP out.

It does what the deployed REST API does between a client and the Lambda proxy integration
(routing, the 10 MB payload limit, header mapping, a route's authorizer) and nothing else; IAM
authentication is not emulated and is said so at start-up. How it maps a request:

- the path and method must match a route exactly (``/predict/`` is another resource): an
  unknown path is 403 "Missing Authentication Token", as API Gateway answers; another method
  on a known path is 405 with ``Allow``; any method token reaches this routing, none is
  answered by the HTTP server's own HTML error page;
- a header sent several times reaches the handler in ``multiValueHeaders`` with every value;
- a body that is UTF-8 text is passed as text; any other body is passed base64-encoded with
  ``isBase64Encoded`` set, so the handler sees the bytes the client sent, never a guess at
  their text;
- the body is framed by ``Content-Length`` or chunked transfer coding; a malformed length is
  400 and a length over the limit 413, as API Gateway answers them;
- a route with a Lambda ``authorizer`` (REQUEST type, identity source the ``Authorization``
  header; the CDS Hooks routes) calls it first, as API Gateway does: a missing header or an
  ``Unauthorized`` error is 401, a Deny for the method 403, an Allow passes its context to the
  handler in ``requestContext.authorizer``; answers are cached per token for the route's TTL and
  reused only for a method their policy allows.

Routes of the worklist data API use three more things a REST API does (all opt-in per route,
so the prediction API's routes behave as before):

- a resource path with ``{name}`` segments matches one path segment each, passed in
  ``pathParameters`` (URL-decoded, as API Gateway does); the query string reaches the handler
  in ``queryStringParameters`` / ``multiValueQueryStringParameters``;
- a route with a ``user_pool_authorizer`` stands in for a Cognito user pool authorizer: it
  gets the ``Authorization`` header and returns the token's claims (then passed in
  ``requestContext.authorizer.claims``) or ``None``, answered 401 ``Unauthorized`` before the
  handler runs;
- with ``cors_origin`` set, a preflight ``OPTIONS`` on a known path is answered 204 by the
  gateway (the REST API's mock OPTIONS method) and the gateway's own errors carry
  ``Access-Control-Allow-Origin`` for that origin (the REST API's gateway responses).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from local_platform.lambda_runtime import LocalLambdaContext, rest_api_proxy_event

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]
#: The value of the ``Authorization`` header (``None`` if absent) -> the token's claims, or
#: ``None`` when the token is missing, malformed, expired or not signed by the issuer.
Authorizer = Callable[[str | None], Mapping[str, Any] | None]

#: API Gateway's hard limit on a request payload.
API_GATEWAY_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """One API resource and method, served by one Lambda handler."""

    method: str
    path: str
    handler: Handler
    function_name: str
    user_pool_authorizer: Authorizer | None = None
    #: A REQUEST Lambda authorizer in front of the handler, and how long its answers are cached.
    authorizer: Handler | None = None
    authorizer_ttl_s: float = 0.0

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if ``path`` matches this resource (``{name}`` = one segment)."""
        if "{" not in self.path:
            return {} if path == self.path else None
        template, actual = self.path.split("/"), path.split("/")
        if len(template) != len(actual):
            return None
        params: dict[str, str] = {}
        for want, got in zip(template, actual, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    return None
                params[want[1:-1]] = unquote(got)
            elif want != got:
                return None
        return params


#: Request headers a browser may send cross-origin to the worklist API (the preflight's answer).
CORS_ALLOWED_HEADERS = "Authorization,Content-Type"


class LocalApiGateway:
    """Serves ``routes`` on ``host:port`` (port 0 picks a free one) in a background thread."""

    def __init__(
        self,
        routes: list[Route],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        cors_origin: str | None = None,
    ) -> None:
        self._routes = {(route.method, route.path): route for route in routes}
        self._cors_origin = cors_origin
        self._authorizer_cache: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._request_handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalApiGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dispatch(
        self,
        method: str,
        path: str,
        body: str | None,
        headers: Mapping[str, str],
        *,
        multi_value_headers: Mapping[str, list[str]] | None = None,
        is_base64_encoded: bool = False,
        query: Mapping[str, list[str]] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """Route one request; returns status, headers and body as API Gateway would."""
        status, out_headers, out_body = self._dispatch(
            method, path, body, headers, multi_value_headers, is_base64_encoded, query
        )
        origin = _header(headers, "Origin")
        if self._cors_origin is not None and origin == self._cors_origin:
            out_headers.setdefault("Access-Control-Allow-Origin", self._cors_origin)
        return status, out_headers, out_body

    def _find(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """The route of ``method`` on ``path``, its path parameters, and the path's methods."""
        found: Route | None = None
        params: dict[str, str] = {}
        allowed: list[str] = []
        for (route_method, _), route in self._routes.items():
            matched = route.match(path)
            if matched is None:
                continue
            allowed.append(route_method)
            if route_method == method and found is None:
                found, params = route, matched
        return found, params, sorted(allowed)

    def _dispatch(
        self,
        method: str,
        path: str,
        body: str | None,
        headers: Mapping[str, str],
        multi_value_headers: Mapping[str, list[str]] | None,
        is_base64_encoded: bool,
        query: Mapping[str, list[str]] | None,
    ) -> tuple[int, dict[str, str], str]:
        route, path_parameters, allowed = self._find(method, path)
        if route is None:
            if not allowed:
                # API Gateway answers unknown resources with 403 "Missing Authentication Token".
                return _gateway_error(403, "Missing Authentication Token")
            if method == "OPTIONS" and self._cors_origin is not None:
                return (
                    204,
                    {
                        "Access-Control-Allow-Origin": self._cors_origin,
                        "Access-Control-Allow-Methods": ",".join([*allowed, "OPTIONS"]),
                        "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
                        "Vary": "Origin",
                    },
                    "",
                )
            status, out_headers, out_body = _gateway_error(405, "Method Not Allowed")
            return status, {**out_headers, "Allow": ", ".join(allowed)}, out_body
        claims: Mapping[str, Any] | None = None
        if route.user_pool_authorizer is not None:
            claims = route.user_pool_authorizer(_header(headers, "Authorization"))
            if claims is None:
                return _gateway_error(401, "Unauthorized")
        event = rest_api_proxy_event(
            method,
            path,
            route.path,
            body=body,
            headers=headers,
            multi_value_headers=multi_value_headers,
            is_base64_encoded=is_base64_encoded,
        )
        if path_parameters:
            event["pathParameters"] = path_parameters
        if query:
            event["queryStringParameters"] = {k: v[-1] for k, v in query.items()}
            event["multiValueQueryStringParameters"] = {k: list(v) for k, v in query.items()}
        if claims is not None:
            event["requestContext"]["authorizer"] = {"claims": dict(claims)}
        if route.authorizer is not None:
            denied = self._authorize(route, event)
            if denied is not None:
                return denied
        context = LocalLambdaContext(function_name=route.function_name)
        response = route.handler(event, context)
        response_headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        for key, values in (response.get("multiValueHeaders") or {}).items():
            response_headers[str(key)] = ", ".join(str(v) for v in values)
        return int(response["statusCode"]), response_headers, str(response.get("body") or "")

    def _authorize(
        self, route: Route, event: dict[str, Any]
    ) -> tuple[int, dict[str, str], str] | None:
        """Run the route's authorizer (or reuse its cached answer); None when allowed."""
        assert route.authorizer is not None
        token = next(
            (v for k, v in event["headers"].items() if k.lower() == "authorization" and v), None
        )
        if token is None:  # API Gateway answers a missing identity source itself
            return _gateway_error(401, "Unauthorized")
        method_arn = (
            f"arn:aws:execute-api:local:000000000000:local/local/{route.method}{route.path}"
        )
        now = time.monotonic()
        with self._cache_lock:
            cached = self._authorizer_cache.get(token)
        if cached is not None and cached[0] > now:
            answer = cached[1]
        else:
            authorizer_event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                "resource": route.path,
                "path": event["path"],
                "httpMethod": route.method,
                "headers": event["headers"],
                "multiValueHeaders": event["multiValueHeaders"],
                "requestContext": event["requestContext"],
            }
            try:
                answer = route.authorizer(
                    authorizer_event, LocalLambdaContext(function_name="cds-authorizer")
                )
            except Exception as error:  # "Unauthorized" is API Gateway's 401; else a 500
                if str(error) == "Unauthorized":
                    return _gateway_error(401, "Unauthorized")
                return _gateway_error(500, "AuthorizerConfigurationException")
            if route.authorizer_ttl_s > 0:
                with self._cache_lock:
                    self._authorizer_cache[token] = (now + route.authorizer_ttl_s, answer)
        statements = answer.get("policyDocument", {}).get("Statement", [])
        allowed = any(
            s.get("Effect") == "Allow" and s.get("Resource") == method_arn for s in statements
        )
        if not allowed:
            return _gateway_error(403, "User is not authorized to access this resource")
        context = {k: str(v) for k, v in (answer.get("context") or {}).items()}
        event["requestContext"]["authorizer"] = {
            **context,
            "principalId": answer.get("principalId"),
        }
        return None

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle's algorithm on, the body
            # waits for the client's delayed ACK (~40 ms per keep-alive request), a delay of
            # this stand-in that API Gateway does not have.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                try:
                    raw = self._read_body()
                except _FramingError as error:
                    self._reply(*_gateway_error(error.status, error.message))
                    self.close_connection = True
                    return
                path, _, query_string = self.path.partition("?")
                names = dict.fromkeys(self.headers.keys())
                headers = {name: str(self.headers[name]) for name in names}
                multi = {name: self.headers.get_all(name) or [] for name in names}
                body, is_base64 = _event_body(raw)
                try:
                    status, out_headers, out_body = gateway.dispatch(
                        self.command,
                        path,
                        body,
                        headers,
                        multi_value_headers={k: v for k, v in multi.items() if len(v) > 1},
                        is_base64_encoded=is_base64,
                        query=parse_qs(query_string, keep_blank_values=True) or None,
                    )
                except Exception:  # the Lambda service's answer to a crashed function
                    logger.exception("handler raised")
                    status, out_headers, out_body = (
                        502,
                        {"Content-Type": "application/json"},
                        '{"message":"Internal server error"}',
                    )
                self._reply(status, out_headers, out_body)

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    return _read_chunked(self.rfile, API_GATEWAY_MAX_PAYLOAD_BYTES)
                declared = (self.headers.get("Content-Length") or "0").strip()
                if not declared.isdigit():
                    raise _FramingError(400, "Invalid Content-Length")
                length = int(declared)
                if length > API_GATEWAY_MAX_PAYLOAD_BYTES:
                    raise _FramingError(413, "Request Too Long")
                return self.rfile.read(length) if length else b""

            def _reply(self, status: int, headers: Mapping[str, str], body: str) -> None:
                payload = body.encode("utf-8")
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has no body (RFC 9110 9.3.2)
                    self.wfile.write(payload)

            def __getattr__(self, name: str) -> Any:
                # The stdlib dispatches a method token to do_<TOKEN> and answers a missing one
                # with its own HTML 501; every token is routed here instead, as API Gateway does.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                """Access logs carry no paths or bodies: the stdlib default would print both."""

        return _RequestHandler


class _FramingError(Exception):
    """The request's body cannot be framed; API Gateway answers before any integration."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by name, case-insensitively (HTTP field names are)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _gateway_error(status: int, message: str) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps({"message": message})


def _event_body(raw: bytes) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``: text when the bytes are UTF-8, else base64."""
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True


def _read_chunked(stream: Any, limit: int) -> bytes:
    """Read a chunked body (RFC 9112 7.1), trailers discarded."""
    chunks: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024).split(b";", 1)[0].strip()
        try:
            size = int(line, 16)
        except ValueError:
            raise _FramingError(400, "Invalid chunked body") from None
        if size == 0:
            break
        total += size
        if total > limit:
            raise _FramingError(413, "Request Too Long")
        chunks.append(stream.read(size))
        stream.readline(1024)  # the CRLF after the chunk
    while stream.readline(1024).strip():  # trailer fields, up to the empty line
        pass
    return b"".join(chunks)
