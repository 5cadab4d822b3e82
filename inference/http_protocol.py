"""uvicorn's HTTP/1.1 protocol (h11) with the endpoint's two additions at the socket level.

What the ASGI app never sees is answered here, and answered as the app answers:

* a request that h11 cannot parse (bad request line, bad header, a head over
  ``h11_max_incomplete_event_size``, conflicting framing) gets ``400`` with a JSON body
  ``{"error": "bad_request"}`` instead of uvicorn's ``text/plain`` page; nothing of the
  request is quoted back (uvicorn's own message never quotes it either);
* a client that opens a connection, or starts a new request on a kept-alive one, and does not
  finish its head within ``header_timeout_s`` gets ``408`` ``{"error": "request_timeout"}``
  and the connection is closed (a slowloris client holds a socket for that long at most, never
  a worker). uvicorn has a keep-alive timeout between requests but no such bound on a head.

The body's own deadline and size limit are the app's (``inference.endpoint_app``), where the
route is known.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from contracts.serving import CONTENT_TYPE_JSON

#: Seconds a client may take to send a request's line and headers.
DEFAULT_HEADER_TIMEOUT_S = 15.0


def raw_json_response(status: int, reason: str, document: dict[str, str]) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with a JSON body, as bytes."""
    body = json.dumps(document, separators=(",", ":")).encode("ascii")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"content-type: {CONTENT_TYPE_JSON}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


BAD_REQUEST = raw_json_response(400, "Bad Request", {"error": "bad_request"})
REQUEST_TIMEOUT = raw_json_response(408, "Request Timeout", {"error": "request_timeout"})


class EndpointProtocol(H11Protocol):
    """``H11Protocol`` with JSON protocol errors and a deadline on each request's head."""

    def __init__(
        self, *args: Any, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._cancel_head_timer()
        elif self.conn.their_state is h11.IDLE:
            # Part of a head has arrived (or a kept-alive connection began a new request).
            self._arm_head_timer()
        else:
            self._cancel_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to an unparsable request, as JSON (``msg`` is uvicorn's constant)."""
        if not self.transport.is_closing():
            self.transport.write(BAD_REQUEST)
            self.transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("request head not received in %.0f s", self.header_timeout_s)
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()
