"""The endpoint's health and the model version it serves, cached briefly per container.

The version comes from the tags the deployer puts on the endpoint config
(contracts.serving.TAG_MODEL_VERSION), so /health names the model that actually serves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from contracts.serving import TAG_MODEL_VERSION

#: Statuses in which the endpoint accepts invocations (it keeps serving while it updates).
SERVING_STATUSES = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
NOT_FOUND = "NotFound"
UNKNOWN = "Unknown"
_TRANSIENT_CODES = frozenset({"ThrottlingException", "InternalFailure", "ServiceUnavailable"})


@dataclass(frozen=True)
class EndpointHealth:
    """What /health reports."""

    endpoint_status: str
    model_version: str | None

    @property
    def serving(self) -> bool:
        """Whether predictions can be served now."""
        return self.endpoint_status in SERVING_STATUSES


def check_endpoint(sagemaker_client: Any, endpoint_name: str) -> EndpointHealth:
    """Describe the endpoint and read the model version from its config's tags."""
    try:
        endpoint = sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
        status = str(endpoint["EndpointStatus"])
        config = sagemaker_client.describe_endpoint_config(
            EndpointConfigName=endpoint["EndpointConfigName"]
        )
        tags = sagemaker_client.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]
    except ClientError as e:
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        if (
            code == "ValidationException"
            and "could not find" in str(error.get("Message", "")).lower()
        ):
            return EndpointHealth(NOT_FOUND, None)
        if code in _TRANSIENT_CODES:
            return EndpointHealth(UNKNOWN, None)
        raise
    except (BotoConnectionError, HTTPClientError):
        return EndpointHealth(UNKNOWN, None)
    version = next((tag["Value"] for tag in tags if tag["Key"] == TAG_MODEL_VERSION), None)
    return EndpointHealth(status, version)


class HealthCache:
    """Keep the last health answer for ``ttl_s`` seconds so health probes stay cheap."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._value: EndpointHealth | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def get(self, ttl_s: float, compute: Callable[[], EndpointHealth]) -> EndpointHealth:
        """Return the cached answer, or compute, cache and return a fresh one."""
        with self._lock:
            now = self._clock()
            if self._value is None or now >= self._expires_at:
                self._value = compute()
                self._expires_at = now + ttl_s
            return self._value

    def clear(self) -> None:
        """Forget the cached answer."""
        with self._lock:
            self._value = None
            self._expires_at = 0.0
