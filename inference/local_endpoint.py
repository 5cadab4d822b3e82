"""The endpoint server in a thread of this process: for tests, benchmarks and the demo.

``serve()`` builds the same app as ``python -m inference.serve`` (``inference.serve.build_app``,
one worker) and runs it on a free port until ``stop()``. The serving container never runs
this module, so no artifact carries it (``stacks.packaging.LOCAL_ONLY_MODULES``).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import uvicorn

from inference.endpoint_app import DEFAULT_VARIANT_NAME
from inference.handler import model_fn
from inference.predictor import ServingModel
from inference.serve import (
    DEFAULT_HOST,
    GRACEFUL_SHUTDOWN_S,
    ServerSettings,
    bind,
    build_app,
    url_of,
    uvicorn_config,
)

__all__ = ["LocalEndpoint", "serve"]


@dataclass
class LocalEndpoint:
    """A server running in a thread of this process: ``url``, ``stop()``, a context manager."""

    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    _stopped: bool = field(default=False, init=False)

    @property
    def host(self) -> str:
        return str(self.sock.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. for ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``."""
        return url_of(self.sock)

    def stop(self) -> None:
        """Stop accepting, finish the current requests, close the socket."""
        if self._stopped:
            return
        self._stopped = True
        self.server.should_exit = True
        self.thread.join(timeout=GRACEFUL_SHUTDOWN_S + 5)
        self.sock.close()

    def __enter__(self) -> LocalEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    model_dir: str | Path | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    capture_dir: str | Path | None = None,
    endpoint_name: str | None = None,
    variant_name: str = DEFAULT_VARIANT_NAME,
    serving: ServingModel | None = None,
    settings: ServerSettings | None = None,
) -> LocalEndpoint:
    """Serve the app from a thread of this process (one worker) until ``stop()``.

    ``port=0`` picks a free port. With ``endpoint_name`` the runtime route serves that name
    only, as the real service does; without it, any name. ``settings`` overrides the rest.
    """
    if serving is None:
        if model_dir is None and settings is None:
            raise ValueError("model_dir, serving or settings is required")
        serving = model_fn(str(model_dir if model_dir is not None else settings.model_dir))  # type: ignore[union-attr]
    if settings is None:
        settings = ServerSettings(
            model_dir=Path(model_dir or "."),
            host=host,
            port=port,
            capture_dir=Path(capture_dir) if capture_dir is not None else None,
            endpoint_name=endpoint_name,
            variant_name=variant_name,
        )
    settings = replace(settings, workers=1)
    sock = bind(settings.host, settings.port)
    server = uvicorn.Server(uvicorn_config(settings, build_app(settings, serving)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    endpoint = LocalEndpoint(server, thread, sock)
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError("the endpoint server did not start")
        threading.Event().wait(0.01)
    return endpoint
