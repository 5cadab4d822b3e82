"""The endpoint server: one program for the local demo and the SageMaker serving container.

    python -m inference.serve [--model-dir PATH] [--host H] [--port P] [--workers N]
                              [--capture-dir PATH] [--endpoint-name NAME] [--variant-name V]

uvicorn (HTTP/1.1 over h11, asyncio) serves ``inference.endpoint_app`` from ``workers``
processes, each loading the model once and scoring on one torch thread; uvicorn's supervisor
restarts a worker that dies or stops answering its health check. The serving image runs
exactly this module (``containers/serving/serve``), so the demo's endpoint and the cloud's
are the same program.

Settings follow the SageMaker container contract; precedence: command-line flag, then the
``SAGEMAKER_*`` variable, then the default
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html and the
names of aws/sagemaker-inference-toolkit's ``parameters.py``):

* ``SAGEMAKER_BIND_TO_PORT`` (8080), ``SAGEMAKER_MODEL_SERVER_WORKERS`` (the CPUs this
  process may run on), ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (60 s: the longest a request waits
  for a scoring slot before a 503), ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  (``application/json``);
* the model directory: ``--model-dir``, else ``SM_MODEL_DIR``, else
  ``$SAGEMAKER_BASE_DIR/model`` (``/opt/ml/model``, where SageMaker unpacks model.tar.gz).

``inference.local_endpoint.serve()`` runs the same app in a thread of the calling process
(tests, benchmarks); it does not travel in the model's ``code/`` (the container runs this
module's ``main``).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from inference.capture import DataCapture
from inference.endpoint_app import (
    DEFAULT_VARIANT_NAME,
    MAX_PAYLOAD_BYTES,
    AppLimits,
    EndpointApp,
)
from inference.handler import model_fn
from inference.http_protocol import DEFAULT_HEADER_TIMEOUT_S, EndpointProtocol
from inference.predictor import ServingModel

__all__ = ["MAX_PAYLOAD_BYTES", "ServerSettings", "main"]

log = logging.getLogger("inference.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_BASE_DIR = "/opt/ml"
#: One intra-op thread per worker: workers already use every core, and on a small machine
#: OpenMP's spinning threads slow small forward passes down many times over.
DEFAULT_TORCH_THREADS = 1
#: Seconds an idle kept-alive connection stays open.
KEEP_ALIVE_S = 60
#: Seconds a client may take to send a request's body.
BODY_TIMEOUT_S = 30.0
#: Queued connections per listening socket (the stdlib server's was 5).
BACKLOG = 2048
#: SageMaker sends SIGKILL 30 s after SIGTERM: in-flight requests get most of that.
GRACEFUL_SHUTDOWN_S = 25
#: Seconds the supervisor waits for a worker's health-check answer before replacing it. A new
#: worker answers only once it has imported torch (spawned, not forked), which takes seconds
#: on a busy small instance: a short bound would replace every worker before it starts.
WORKER_HEALTHCHECK_S = 60

ENV_PORT = "SAGEMAKER_BIND_TO_PORT"
ENV_WORKERS = "SAGEMAKER_MODEL_SERVER_WORKERS"
ENV_TIMEOUT = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
ENV_DEFAULT_ACCEPT = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
ENV_BASE_DIR = "SAGEMAKER_BASE_DIR"
ENV_MODEL_DIR = "SM_MODEL_DIR"


def available_cpus() -> int:
    """CPUs this process may run on (the instance's cores in the container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerSettings:
    """Everything a server process needs; validated on creation."""

    model_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    torch_threads: int = DEFAULT_TORCH_THREADS
    capture_dir: Path | None = None
    endpoint_name: str | None = None
    variant_name: str = DEFAULT_VARIANT_NAME
    limits: AppLimits = field(default_factory=AppLimits)
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    keep_alive_s: int = KEEP_ALIVE_S

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.workers < 1 or self.torch_threads < 1:
            raise ValueError("workers and torch threads must be at least 1")
        if min(self.limits.queue_timeout_s, self.limits.body_timeout_s) <= 0:
            raise ValueError("timeouts must be positive")
        if self.header_timeout_s <= 0 or self.keep_alive_s <= 0:
            raise ValueError("timeouts must be positive")


def _positive_number(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a number") from e
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> ServerSettings:
    """Flags first, then the ``SAGEMAKER_*`` variables, then the defaults."""
    base = env.get(ENV_BASE_DIR) or DEFAULT_BASE_DIR
    model_dir = args.model_dir or env.get(ENV_MODEL_DIR) or f"{base}/model"
    port = args.port if args.port is not None else _positive_number(env, ENV_PORT)
    workers = args.workers or _positive_number(env, ENV_WORKERS) or available_cpus()
    timeout = _positive_number(env, ENV_TIMEOUT) or DEFAULT_TIMEOUT_S
    limits = AppLimits(
        body_timeout_s=BODY_TIMEOUT_S,
        queue_timeout_s=timeout,
        default_accept=env.get(ENV_DEFAULT_ACCEPT) or AppLimits.default_accept,
    )
    return ServerSettings(
        model_dir=Path(model_dir),
        host=args.host,
        port=DEFAULT_PORT if port is None else int(port),
        workers=int(workers),
        torch_threads=args.torch_threads,
        capture_dir=args.capture_dir,
        endpoint_name=args.endpoint_name,
        variant_name=args.variant_name,
        limits=limits,
    )


def build_app(settings: ServerSettings, serving: ServingModel | None = None) -> Any:
    """The ASGI app of one worker: the model (loaded here unless given) behind the routes."""
    if serving is None:
        import torch

        torch.set_num_threads(settings.torch_threads)
        serving = model_fn(str(settings.model_dir))
    capture = (
        DataCapture(settings.capture_dir, settings.variant_name)
        if settings.capture_dir is not None
        else None
    )
    endpoint = EndpointApp(
        serving,
        endpoint_name=settings.endpoint_name,
        variant_name=settings.variant_name,
        capture=capture,
        limits=settings.limits,
    )
    log.info("worker %d ready (model %s)", os.getpid(), serving.model_version)
    return endpoint.app


def _worker_app(settings: ServerSettings) -> Any:
    """uvicorn's app factory in a worker process: logging, then the app."""
    configure_logging()
    return build_app(settings)


def uvicorn_config(settings: ServerSettings, app: Any, factory: bool = False) -> uvicorn.Config:
    """The uvicorn settings shared by the CLI and ``serve()`` (``factory``: ``app()`` builds it
    in each worker)."""
    # uvicorn's access lines quote the raw path and query (a caller's input): off, whatever
    # handlers the root logger has; the app logs route templates instead.
    logging.getLogger("uvicorn.access").disabled = True
    return uvicorn.Config(
        app,
        factory=factory,
        # uvicorn calls ``http(config=..., server_state=..., app_state=..., _loop=...)``.
        http=functools.partial(EndpointProtocol, header_timeout_s=settings.header_timeout_s),  # type: ignore[arg-type]
        ws="none",
        lifespan="off",
        workers=settings.workers,
        backlog=BACKLOG,
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        # A head that arrives in pieces is bounded by h11 (a 400), one that arrives whole by
        # the app (a 431).
        h11_max_incomplete_event_size=settings.limits.max_head_bytes,
        access_log=False,
        server_header=False,
        log_config=None,
        proxy_headers=False,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0``: a free one), shared by every worker.

    Created with ``IPPROTO_TCP`` named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    connections whose socket says it is TCP (``proto == IPPROTO_TCP``; CPython's
    ``asyncio.base_events._set_nodelay``), and accepted sockets inherit the listener's
    ``proto``. With ``proto`` 0, uvicorn's two writes per response (head, then body) met the
    client's delayed ACK: every call, ``/ping`` included, waited about 40 ms.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of ``python -m inference.serve`` (unset ones fall back to the environment)."""
    parser = argparse.ArgumentParser(
        prog="python -m inference.serve", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=None, help=f"default ${ENV_PORT} or 8080")
    parser.add_argument("--workers", type=int, default=None, help=f"default ${ENV_WORKERS} or CPUs")
    parser.add_argument("--capture-dir", type=Path, default=None, help="write data capture here")
    parser.add_argument("--endpoint-name", default=None, help="serve only this runtime name")
    parser.add_argument("--variant-name", default=DEFAULT_VARIANT_NAME)
    parser.add_argument("--torch-threads", type=int, default=DEFAULT_TORCH_THREADS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then stop cleanly (exit status 0)."""
    configure_logging()
    settings = settings_from(parse_args(argv), os.environ if env is None else env)
    sock = bind(settings.host, settings.port)
    log.info("%d workers; serving on %s", settings.workers, url_of(sock))
    config = uvicorn_config(settings, functools.partial(_worker_app, settings), factory=True)
    if settings.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
    sock.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
