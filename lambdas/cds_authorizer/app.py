"""The CDS Hooks routes' Lambda authorizer (API Gateway REQUEST type, cached on the token).

Allow: an IAM policy for exactly the method invoked (``methodArn``), so a cached answer for one
route never opens another, with the token's ``iss``, ``sub``, ``jti`` and ``exp`` as the
authorizer context the service reads (``lambdas/cds_hooks/auth.py``). Refusals: a token that
cannot be trusted raises ``Unauthorized`` (API Gateway answers 401); an authentic token for
another endpoint gets a Deny policy (403). Only the fixed reason is logged, never the token or a
claim.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import jwt
from aws_lambda_powertools import Logger

from lambdas.cds_authorizer.settings import AUDIENCE_BASE_URL_ENV, ISSUERS_ENV, allowed_issuers
from lambdas.cds_authorizer.verify import TokenRejected, bearer_token, verify

__all__ = ["AUDIENCE_BASE_URL_ENV", "ISSUERS_ENV", "authorize", "lambda_handler", "reset_keys"]

SERVICE_NAME = "cds-authorizer"
AUTHORIZATION = "authorization"
#: How long an issuer's JWKS is held, parsed, before it is fetched again: a key the EHR
#: removes from its JWKS stops verifying within this (PyJWKClient's JWK Set cache).
JWKS_LIFESPAN_S = 300
#: After any fetch, a token with a ``kid`` not in the held JWKS refetches it (a key rotated in)
#: at most once per this many seconds (PyJWKClient's cooldown), so a stream of made-up ``kid``s
#: cannot become a stream of requests to the EHR's JWKS endpoint.
JWKS_REFETCH_COOLDOWN_S = 30
JWKS_TIMEOUT_S = 2.0
UNAUTHORIZED = "Unauthorized"  # the exact message API Gateway turns into a 401

logger = Logger(service=SERVICE_NAME)
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


def signing_key(jwks_url: str, kid: str) -> Any:
    """The public key of ``kid`` in the JWKS at ``jwks_url``.

    A warm container verifies with key objects already built: the JWKS is held parsed (one
    ``PyJWK`` per key, looked up by ``kid``) for ``JWKS_LIFESPAN_S``, then fetched again, so a
    revoked key does not outlive it. Not PyJWKClient's ``cache_keys``: its per-``kid`` LRU
    cache never expires ("no time-based expiration", PyJWKClient's docstring,
    https://raw.githubusercontent.com/jpadilla/pyjwt/2.15.1/jwt/jwks_client.py), and would keep
    trusting a key the EHR has removed.
    """
    client = _jwks_clients.get(jwks_url)
    if client is None:
        client = jwt.PyJWKClient(
            jwks_url,
            cache_keys=False,
            cache_jwk_set=True,
            lifespan=JWKS_LIFESPAN_S,
            timeout=JWKS_TIMEOUT_S,
            cooldown_duration=JWKS_REFETCH_COOLDOWN_S,
        )
        client = _jwks_clients.setdefault(jwks_url, client)
    return client.get_signing_key(kid).key


def reset_keys() -> None:
    """Forget every held JWKS (a cold container; tests and benchmarks)."""
    _jwks_clients.clear()


def audience_of(event: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str:
    """The URL of the endpoint being invoked, which ``aud`` must name: the configured base URL
    and the resource path, else the API's own domain and the path as called (stage included)."""
    base = (os.environ if env is None else env).get(AUDIENCE_BASE_URL_ENV, "").rstrip("/")
    if base:
        return base + str(event.get("path") or "")
    context = event.get("requestContext") or {}
    return f"https://{context.get('domainName', '')}{context.get('path', '')}"


def _header(event: Mapping[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def policy(principal: str, effect: str, method_arn: str, context: dict[str, Any]) -> dict[str, Any]:
    """An authorizer answer for exactly ``method_arn``."""
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
            ],
        },
        "context": context,
    }


def authorize(event: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """Verify the request's token; raise ``Exception("Unauthorized")`` for a 401."""
    method_arn = str(event.get("methodArn") or "")
    try:
        token = bearer_token(_header(event, AUTHORIZATION))
        claims = verify(
            token,
            issuers=allowed_issuers(),
            audience=audience_of(event),
            signing_key=signing_key,
            now=time.time() if now is None else now,
        )
    except TokenRejected as rejected:
        logger.warning("token rejected", extra={"reason": rejected.reason})
        if rejected.forbidden:
            return policy("rejected", "Deny", method_arn, {"reason": rejected.reason})
        raise Exception(UNAUTHORIZED) from None  # API Gateway answers 401 to this message
    return policy(
        claims.subject,
        "Allow",
        method_arn,
        {"iss": claims.issuer, "sub": claims.subject, "jti": claims.jti, "exp": claims.expires_at},
    )


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point (``lambdas.cds_authorizer.app.lambda_handler``)."""
    return authorize(event)
