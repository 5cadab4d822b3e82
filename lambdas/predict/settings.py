"""The function's configuration, read once from its environment into a frozen dataclass."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.cds_hooks.service import REPLAY_TABLE_ENV, WORKLIST_PAGE_URL_ENV
from lambdas.environment import EnvironmentNames, SettingsError, number

ENDPOINT_NAME_ENV = "ENDPOINT_NAME"
DEID_SECRET_ARN_ENV = "DEID_SECRET_ARN"  # noqa: S105 - the variable's name, not a secret
DEID_KEY_ENV = "DEID_KEY"
CONNECT_TIMEOUT_ENV = "ENDPOINT_CONNECT_TIMEOUT_S"
READ_TIMEOUT_ENV = "ENDPOINT_READ_TIMEOUT_S"
MAX_ATTEMPTS_ENV = "ENDPOINT_MAX_ATTEMPTS"
HEALTH_TTL_ENV = "HEALTH_CACHE_TTL_S"
RETRY_AFTER_ENV = "RETRY_AFTER_S"
DEADLINE_ENV = "REQUEST_DEADLINE_S"
#: What the stack sets (stacks/components/prediction_api.py): the CDS Hooks variables where the
#: stage serves CDS Hooks; the key itself (instead of its secret) and the timeouts are for
#: local runs and tuning.
ENVIRONMENT = EnvironmentNames.of(
    required=(ENDPOINT_NAME_ENV, DEID_SECRET_ARN_ENV),
    optional=(
        DEID_KEY_ENV,
        CONNECT_TIMEOUT_ENV,
        READ_TIMEOUT_ENV,
        MAX_ATTEMPTS_ENV,
        HEALTH_TTL_ENV,
        RETRY_AFTER_ENV,
        DEADLINE_ENV,
        REPLAY_TABLE_ENV,
        WORKLIST_PAGE_URL_ENV,
    ),
)

#: Short timeouts: API Gateway gives up after 29 s, and a stuck endpoint should surface as a
#: quick 503 the caller can retry rather than a gateway timeout.
DEFAULT_CONNECT_TIMEOUT_S = 1.0
DEFAULT_READ_TIMEOUT_S = 5.0
#: One retry at most: the caller gets Retry-After and decides, instead of us piling on load.
DEFAULT_MAX_ATTEMPTS = 2
DEFAULT_HEALTH_TTL_S = 30.0
DEFAULT_RETRY_AFTER_S = 5
#: Wall-clock budget of one request's work (key, endpoint call with its retries, /health's
#: checks), further cut to the Lambda's remaining time less a margin (deadline.py). Under the
#: function's 15 s timeout and API Gateway's 29 s integration timeout.
DEFAULT_DEADLINE_S = 8.0


@dataclass(frozen=True)
class Settings:
    """What the function needs to know about its deployment."""

    endpoint_name: str
    deid_secret_arn: str | None = None
    deid_key: str | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    health_cache_ttl_s: float = DEFAULT_HEALTH_TTL_S
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    deadline_s: float = DEFAULT_DEADLINE_S

    def __post_init__(self) -> None:
        if not self.endpoint_name:
            raise SettingsError(f"{ENDPOINT_NAME_ENV} is not set")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise SettingsError("endpoint timeouts must be positive")
        if self.max_attempts < 1:
            raise SettingsError(f"{MAX_ATTEMPTS_ENV} must be at least 1")
        if self.health_cache_ttl_s < 0:
            raise SettingsError(f"{HEALTH_TTL_ENV} must not be negative")
        if self.retry_after_s < 1:
            raise SettingsError(f"{RETRY_AFTER_ENV} must be at least 1")
        if math.isnan(self.deadline_s) or self.deadline_s <= 0:
            raise SettingsError(f"{DEADLINE_ENV} must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        return cls(
            endpoint_name=env.get(ENDPOINT_NAME_ENV, ""),
            deid_secret_arn=env.get(DEID_SECRET_ARN_ENV) or None,
            deid_key=env.get(DEID_KEY_ENV) or None,
            connect_timeout_s=number(env, CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S),
            read_timeout_s=number(env, READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT_S),
            max_attempts=int(number(env, MAX_ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS)),
            health_cache_ttl_s=number(env, HEALTH_TTL_ENV, DEFAULT_HEALTH_TTL_S),
            retry_after_s=int(number(env, RETRY_AFTER_ENV, DEFAULT_RETRY_AFTER_S)),
            deadline_s=number(env, DEADLINE_ENV, DEFAULT_DEADLINE_S),
        )
