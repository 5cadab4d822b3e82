"""The de-identification key: Secrets Manager in AWS, an environment variable locally.

Fetched once per container and kept in memory; without a key the API fails closed, because
sending raw identifiers on, or hashing under a made-up key, would both be worse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.predict.errors import EndpointUnavailableError, ServiceMisconfiguredError
from lambdas.predict.settings import Settings

#: Secrets Manager errors worth a retry by the caller; anything else is misconfiguration.
_TRANSIENT_SECRET_ERRORS = frozenset(
    {"ThrottlingException", "InternalServiceError", "RequestTimeout", "ServiceUnavailable"}
)


class KeyUnavailableError(EndpointUnavailableError):
    """Secrets Manager could not be reached for now."""

    code = "service_unavailable"


def fetch_secret_key(secrets_client: Any, secret_arn: str) -> str | bytes:
    """Return the key stored in the secret: its SecretString verbatim, else its SecretBinary.

    The ETL hashes with the same secret, so the value is used exactly as stored.
    """
    try:
        secret = secrets_client.get_secret_value(SecretId=secret_arn)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in _TRANSIENT_SECRET_ERRORS:
            raise KeyUnavailableError(f"secret fetch failed: {code}") from e
        raise ServiceMisconfiguredError(f"secret fetch failed: {code}") from e
    except BotoCoreError as e:
        raise KeyUnavailableError(f"secret fetch failed: {type(e).__name__}") from e
    key: str | bytes | None = secret.get("SecretString") or secret.get("SecretBinary")
    if not key:
        raise ServiceMisconfiguredError("the de-identification secret is empty")
    return key


class KeyProvider:
    """Resolve the key once (secret first, then the local variable) and cache it."""

    def __init__(self, secrets_client_factory: Callable[[], Any]) -> None:
        self._secrets_client_factory = secrets_client_factory
        self._key: str | bytes | None = None
        self._lock = threading.Lock()

    def get(self, settings: Settings) -> str | bytes:
        """Return the key, fetching it on first use; failures are not cached."""
        if self._key is not None:
            return self._key
        with self._lock:
            if self._key is None:
                self._key = self._resolve(settings)
            return self._key

    def clear(self) -> None:
        """Forget the key (tests, and a forced re-read after rotation)."""
        with self._lock:
            self._key = None

    def _resolve(self, settings: Settings) -> str | bytes:
        if settings.deid_secret_arn:
            return fetch_secret_key(self._secrets_client_factory(), settings.deid_secret_arn)
        if settings.deid_key:
            return settings.deid_key
        raise ServiceMisconfiguredError("no de-identification key configured")
