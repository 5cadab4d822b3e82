"""Verify a CDS client's JWT as CDS Hooks 2.0 specifies ("Trusting CDS Clients",
https://cds-hooks.hl7.org/2.0/#trusting-cds-clients).

The EHR signs a short-lived JWT (RS384 or ES384, the two algorithms a CDS service SHALL
support) with its private key and sends it as ``Authorization: Bearer``. Checked here, in this
order: the issuer is on the stage's allow-list (``cds_hooks.issuers`` in cdk.json); the
signature, by the key of the header's ``kid`` in that issuer's JWKS (fetched from the
configured URL only: a ``jku`` header is never followed, so a token cannot name its own keys);
``aud`` is the URL of the endpoint being invoked (a string or a list holding it); ``exp`` is in
the future and at most five minutes after ``iat``; ``iat`` is not in the future; ``jti`` is
present. Single use of ``jti`` is checked by the service itself (``lambdas/cds_hooks/replay.py``,
see docs/api.md "Authentication": the authorizer's answers are cached).

Errors carry a fixed reason, never a claim value or the token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

#: Algorithms CDS Hooks 2.0 requires services to support; nothing else is accepted ("none",
#: HMAC with a public key as the secret, ... are refused by construction).
ALGORITHMS = ("RS384", "ES384")
#: "exp ... no more than 5 minutes in the future" (CDS Hooks 2.0, JWT claims table).
MAX_LIFETIME_S = 300
#: Clock skew allowed between the EHR and AWS.
LEEWAY_S = 30
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")
MAX_JTI_CHARS = 256


class TokenRejected(Exception):  # noqa: N818 - a verdict, not a fault
    """The token is not acceptable. ``forbidden``: it is authentic but not for this endpoint
    (403); otherwise it cannot be trusted at all (401)."""

    def __init__(self, reason: str, *, forbidden: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.forbidden = forbidden


@dataclass(frozen=True)
class Claims:
    """What the service needs of an accepted token."""

    issuer: str
    subject: str
    jti: str
    expires_at: int


#: ``(jwks_url, kid) -> key``: the public key of ``kid`` in the JWKS at ``jwks_url``.
KeyResolver = Callable[[str, str], Any]


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("no_bearer_token")
    return token.strip()


def verify(
    token: str,
    *,
    issuers: Mapping[str, str],
    audience: str,
    signing_key: KeyResolver,
    now: float,
) -> Claims:
    """Verify ``token`` for ``audience``; ``issuers`` maps each allowed ``iss`` to its JWKS URL,
    ``signing_key(jwks_url, kid)`` returns the key of the header's ``kid``.

    The token is decoded twice, not four times: once unverified (header and claims together,
    to pick the issuer and the key), once with the signature checked.
    """
    try:
        unverified = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected("malformed_token") from None
    header, payload = unverified["header"], unverified["payload"]
    if header.get("alg") not in ALGORITHMS:
        raise TokenRejected("algorithm_not_allowed")
    issuer = payload.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        raise TokenRejected("issuer_not_allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("unknown_signing_key")  # no key to look up: nothing is fetched
    try:
        key = signing_key(issuers[issuer], kid)
    except jwt.PyJWKClientConnectionError:
        raise TokenRejected("jwks_unavailable") from None
    except jwt.PyJWTError:
        raise TokenRejected("unknown_signing_key") from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            issuer=issuer,
            options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            leeway=LEEWAY_S,
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("token_expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenRejected("token_not_yet_valid") from None
    except jwt.PyJWTError:
        raise TokenRejected("invalid_token") from None
    return _checked(claims, audience, now)


def _checked(claims: Mapping[str, Any], audience: str, now: float) -> Claims:
    """The claims PyJWT does not judge the way CDS Hooks does."""
    issued, expires, jti = claims["iat"], claims["exp"], claims["jti"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (issued, expires)):
        raise TokenRejected("invalid_token")
    if issued > now + LEEWAY_S:
        raise TokenRejected("token_not_yet_valid")
    if expires - issued > MAX_LIFETIME_S + LEEWAY_S:
        raise TokenRejected("token_lifetime_too_long")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
        raise TokenRejected("invalid_jti")
    subject = claims["sub"]
    if not isinstance(subject, str):
        raise TokenRejected("invalid_token")
    audiences = claims["aud"]
    accepted = audiences == audience or (isinstance(audiences, list) and audience in audiences)
    if not accepted:
        raise TokenRejected("wrong_audience", forbidden=True)
    return Claims(issuer=str(claims["iss"]), subject=subject, jti=jti, expires_at=int(expires))
