"""The authorizer's settings: the trusted issuers and the audience's base URL."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from lambdas.environment import EnvironmentNames, SettingsError

ISSUERS_ENV = "CDS_ISSUERS"
AUDIENCE_BASE_URL_ENV = "CDS_AUDIENCE_BASE_URL"
#: What the stack sets (stacks/components/prediction_api.py); without a base URL the
#: audience is derived from the request (lambdas/cds_authorizer/app.py).
ENVIRONMENT = EnvironmentNames.of(required=(ISSUERS_ENV,), optional=(AUDIENCE_BASE_URL_ENV,))


def allowed_issuers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``CDS_ISSUERS``: a JSON object of allowed ``iss`` -> JWKS URL (https)."""
    raw = (os.environ if env is None else env).get(ISSUERS_ENV, "")
    try:
        issuers = json.loads(raw)
    except ValueError:
        raise SettingsError(f"{ISSUERS_ENV} must be a JSON object") from None
    if not isinstance(issuers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in issuers.items()
    ):
        raise SettingsError(f"{ISSUERS_ENV} must map issuers to JWKS URLs")
    return issuers
