"""The endpoint's health: what the control plane says, and whether the model answers.

``check_endpoint`` asks SageMaker's control plane for the endpoint's status and the model
version it serves (the tags the deployer puts on the endpoint config,
contracts.serving.TAG_MODEL_VERSION). That alone answered ``InService`` while the model server
was down, so ``check_health`` also runs the probe (probe.py): healthy means the model answered.
The answer is cached per container (``HealthCache``), which is also the probe's rate limit: at
most one probe per TTL per container, however often /health is called, and concurrent callers
wait for the one check in progress rather than start their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from contracts.serving import TAG_MODEL_VERSION
from lambdas.predict.probe import NOT_RUN, ProbeResult

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
        """Whether the control plane says the endpoint accepts invocations."""
        return self.endpoint_status in SERVING_STATUSES

    @property
    def worth_probing(self) -> bool:
        """Serving, or unknown (the control plane did not answer, the model still may)."""
        return self.serving or self.endpoint_status == UNKNOWN


@dataclass(frozen=True)
class HealthReport:
    """What /health reports: the control plane's view, the probe's, and when they were taken."""

    endpoint: EndpointHealth
    probe: ProbeResult
    checked_at: float

    @property
    def serving(self) -> bool:
        """Predictions can be served now: the model answered the probe."""
        return self.probe.ok


def check_health(
    describe: Callable[[], EndpointHealth],
    probe: Callable[[], ProbeResult],
    clock: Callable[[], float] = time.time,
) -> HealthReport:
    """Ask the control plane, then probe the model unless the control plane rules it out.

    A status in which the endpoint cannot take invocations (``Creating``, ``Failed``,
    ``NotFound``, ...) is not probed: the probe would only fail, and slowly.
    """
    checked_at = clock()
    endpoint = describe()
    result = probe() if endpoint.worth_probing else NOT_RUN
    return HealthReport(endpoint, result, checked_at)


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


T = TypeVar("T")


class HealthCache(Generic[T]):
    """Keep the last health answer for ``ttl_s`` seconds so health checks stay cheap.

    One computation at a time: a caller arriving while another computes waits for it and
    reuses its answer.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._value: T | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def get(self, ttl_s: float, compute: Callable[[], T]) -> T:
        """Return the cached answer, or compute, cache and return a fresh one."""
        with self._lock:
            if self._value is None or self._clock() >= self._expires_at:
                self._value = compute()
                self._expires_at = self._clock() + ttl_s
            return self._value

    def clear(self) -> None:
        """Forget the cached answer."""
        with self._lock:
            self._value = None
            self._expires_at = 0.0
