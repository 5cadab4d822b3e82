"""What the service checks of the authorizer's verdict on every call.

API Gateway caches the authorizer's answer per token, so the service re-checks what a cache
cannot: the token's expiry (a cached Allow outlives it) and the single use of its ``jti``
(``replay.py``). A request that reaches the service without an authorizer context (a route
deployed without the authorizer) is refused too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lambdas.cds_hooks.replay import ReplayCache
from lambdas.predict.errors import ApiError


class UnauthorizedError(ApiError):
    """The call carries no fresh, first-use token."""

    status_code = 401
    code = "unauthorized"


def check_token(event: Mapping[str, Any], replay: ReplayCache, now: float | None = None) -> str:
    """Claim the token's ``jti``; return the issuer. Raise 401 when it is expired or replayed."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    jti, issuer, raw_expiry = context.get("jti"), context.get("iss"), context.get("exp")
    try:
        expires_at = int(str(raw_expiry))  # API Gateway passes context values as strings
    except ValueError:
        raise UnauthorizedError("no authorizer context") from None
    if not isinstance(jti, str) or not jti or not isinstance(issuer, str):
        raise UnauthorizedError("no authorizer context")
    if expires_at < (time.time() if now is None else now):
        raise UnauthorizedError("token expired")
    if not replay.claim(f"{issuer} {jti}", expires_at):
        raise UnauthorizedError("token replayed")
    return issuer
