"""The AWS control plane on loopback: a moto server and the environment that points at it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from local_platform.lambda_runtime import LOCAL_REGION

#: Credentials moto accepts; no real account can be reached with them.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_REGION": LOCAL_REGION,
}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ControlPlane:
    """A moto server on loopback standing in for S3, SageMaker, CloudWatch, SNS, EventBridge."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = ThreadedMotoServer(ip_address=host, port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ControlPlane:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self, endpoint_runtime_url: str | None = None) -> dict[str, str]:
        """Variables that send every boto3 client here (and InvokeEndpoint to the model server)."""
        env = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.url}
        if endpoint_runtime_url is not None:
            env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = endpoint_runtime_url
        return env


@contextmanager
def patched_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the duration, restoring what was there."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
