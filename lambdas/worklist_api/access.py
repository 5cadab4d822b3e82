"""Who may read the worklist: a signed-in user (the authorizer's claims) in the care-team group.

API Gateway's Cognito user pool authorizer has already checked the token's signature, expiry,
issuer and audience; it admits any user of the pool. The group is checked here, from the
``cognito:groups`` claim the authorizer passes on. A REST API hands every claim over as a
string: several groups arrive comma-separated (``"a,b"``); an HTTP API's JWT authorizer writes
arrays as ``"[a b]"``; the local gateway passes a list. All three are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdas.worklist_api.errors import ForbiddenError, NotSignedInError

GROUPS_CLAIM = "cognito:groups"


def claims_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The authorizer's claims of a REST API proxy event; ``NotSignedInError`` without them."""
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    claims = authorizer.get("claims") if isinstance(authorizer, Mapping) else None
    if not isinstance(claims, Mapping) or not claims:
        raise NotSignedInError
    return claims


def groups_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """The user's groups from ``cognito:groups`` in any of the shapes API Gateway passes."""
    raw = claims.get(GROUPS_CLAIM)
    if raw is None:
        return frozenset()
    if isinstance(raw, list | tuple):
        return frozenset(str(group) for group in raw)
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        return frozenset(text[1:-1].split())
    return frozenset(group.strip() for group in text.split(",") if group.strip())


def require_group(event: Mapping[str, Any], group: str) -> None:
    """Raise unless the request's user is signed in and in ``group``."""
    if group not in groups_of(claims_of(event)):
        raise ForbiddenError
