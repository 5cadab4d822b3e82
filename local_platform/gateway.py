"""A local API Gateway: HTTP requests in, REST proxy events to the real handlers, HTTP out.

It does what the deployed REST API does between a client and the Lambda proxy integration
(routing, the 10 MB payload limit, header mapping) and nothing else; authentication (IAM) is
not emulated and is said so at start-up.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_platform.lambda_runtime import LocalLambdaContext, rest_api_proxy_event

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]

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


class LocalApiGateway:
    """Serves ``routes`` on ``host:port`` (port 0 picks a free one) in a background thread."""

    def __init__(self, routes: list[Route], host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes = {(route.method, route.path): route for route in routes}
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
        self, method: str, path: str, body: str | None, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], str]:
        """Route one request; returns status, headers and body as API Gateway would."""
        route = self._routes.get((method, path))
        if route is None:
            known_path = any(p == path for _, p in self._routes)
            status = 403 if not known_path else 405
            # API Gateway answers unknown resources with 403 "Missing Authentication Token".
            message = "Missing Authentication Token" if status == 403 else "Method Not Allowed"
            return status, {"Content-Type": "application/json"}, json.dumps({"message": message})
        event = rest_api_proxy_event(method, path, route.path, body=body, headers=headers)
        context = LocalLambdaContext(function_name=route.function_name)
        response = route.handler(event, context)
        response_headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        for key, values in (response.get("multiValueHeaders") or {}).items():
            response_headers[str(key)] = ", ".join(str(v) for v in values)
        return int(response["statusCode"]), response_headers, str(response.get("body") or "")

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > API_GATEWAY_MAX_PAYLOAD_BYTES:
                    self._reply(
                        413, {"Content-Type": "application/json"}, '{"message":"Request Too Long"}'
                    )
                    return
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                headers = dict(self.headers.items())
                try:
                    status, out_headers, body = gateway.dispatch(
                        self.command,
                        path,
                        raw.decode("utf-8", errors="replace") if raw else None,
                        headers,
                    )
                except Exception:  # the Lambda service's answer to a crashed function
                    logger.exception("handler raised")
                    status, out_headers, body = (
                        502,
                        {"Content-Type": "application/json"},
                        '{"message":"Internal server error"}',
                    )
                self._reply(status, out_headers, body)

            def _reply(self, status: int, headers: Mapping[str, str], body: str) -> None:
                payload = body.encode("utf-8")
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve  # noqa: N815 - the stdlib's dispatch names
            do_POST = _serve  # noqa: N815
            do_PUT = _serve  # noqa: N815
            do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                """Access logs carry no paths or bodies: the stdlib default would print both."""

        return _RequestHandler
