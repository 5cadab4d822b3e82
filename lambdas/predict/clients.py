"""AWS clients (botocore's, as boto3 builds them), created on first use and kept for the container.

Creating them lazily keeps the module's cold import short; reusing them keeps connections
warm between invocations. ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (and friends) point them at
the local endpoint server and moto when the platform runs without AWS.
"""

from __future__ import annotations

import threading
from typing import Any

from lambdas.predict.settings import Settings

SAGEMAKER_RUNTIME = "sagemaker-runtime"
SAGEMAKER = "sagemaker"
SECRETS_MANAGER = "secretsmanager"

#: Control-plane calls (health, secret) are rare and small: tight limits too.
_CONTROL_PLANE_TIMEOUT_S = 3.0


class Clients:
    """Build each boto3 client once, with the timeouts and retries the settings ask for."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._botocore_session: Any = None
        self._lock = threading.Lock()

    def runtime(self, settings: Settings) -> Any:
        """The sagemaker-runtime client: short timeouts, limited retries."""
        return self._get(
            SAGEMAKER_RUNTIME,
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            max_attempts=settings.max_attempts,
        )

    def sagemaker(self) -> Any:
        """The SageMaker control-plane client (DescribeEndpoint, ListTags)."""
        return self._get(SAGEMAKER, _CONTROL_PLANE_TIMEOUT_S, _CONTROL_PLANE_TIMEOUT_S, 2)

    def secrets(self) -> Any:
        """The Secrets Manager client (the de-identification key)."""
        return self._get(SECRETS_MANAGER, _CONTROL_PLANE_TIMEOUT_S, _CONTROL_PLANE_TIMEOUT_S, 2)

    def clear(self) -> None:
        """Drop every client and the session (tests, or after the environment changes)."""
        with self._lock:
            self._clients.clear()
            self._botocore_session = None

    def _session(self) -> Any:
        """One botocore session per container: it reads the region, credentials, endpoint URLs."""
        import botocore.session

        if self._botocore_session is None:
            self._botocore_session = botocore.session.get_session()
        return self._botocore_session

    def _get(
        self, service: str, connect_timeout: float, read_timeout: float, max_attempts: int
    ) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                # Deferred, and botocore's own session rather than boto3's: importing boto3
                # adds its resource layer (unused here) to the first invocation, ~25 ms.
                from botocore.config import Config

                config = Config(
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    retries={"mode": "standard", "total_max_attempts": max_attempts},
                )
                client = self._session().create_client(service, config=config)
                self._clients[service] = client
            return client
