"""The authorizer's key cache: a warm container verifies with key objects it already holds,
and the cache never trusts more than the issuer's JWKS says.

Held: the issuer's JWKS, parsed (one key object per ``kid``), for ``JWKS_LIFESPAN_S``
(PyJWKClient's JWK Set cache, "Tier 1" in its docstring,
https://raw.githubusercontent.com/jpadilla/pyjwt/2.15.1/jwt/jwks_client.py; its "Tier 2" per-kid
cache has no time-based expiration, which is why it is off).
Checked here: the JWKS is fetched once, not per call; a ``kid`` rotated in is fetched; a key
removed from the JWKS stops verifying once the lifespan is over; made-up ``kid``s cannot make
the authorizer hammer the EHR's JWKS endpoint; a cached key does not make an expired or forged
token acceptable.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from lambdas.cds_authorizer import app as authorizer

ISSUER = "https://ehr.example.org"
BASE = "https://api.example.org/v1"
PATH = "/cds-services/readmission-risk"
METHOD_ARN = f"arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST{PATH}"

KEY_A = ec.generate_private_key(ec.SECP384R1())
KEY_B = ec.generate_private_key(ec.SECP384R1())
ATTACKER_KEY = ec.generate_private_key(ec.SECP384R1())


def _jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "alg": "ES384", "use": "sig"}


class MutableJwks:
    """An EHR's JWKS endpoint whose keys a test can rotate, counting the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                payload = json.dumps({"keys": owner.keys}).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"


@pytest.fixture
def jwks(monkeypatch: pytest.MonkeyPatch) -> Iterator[MutableJwks]:
    endpoint = MutableJwks()
    endpoint.keys = [_jwk(KEY_A, "key-a")]
    thread = threading.Thread(target=endpoint.server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(authorizer.ISSUERS_ENV, json.dumps({ISSUER: endpoint.url}))
    monkeypatch.setenv(authorizer.AUDIENCE_BASE_URL_ENV, BASE)
    authorizer.reset_keys()
    try:
        yield endpoint
    finally:
        authorizer.reset_keys()
        endpoint.server.shutdown()
        endpoint.server.server_close()
        thread.join(timeout=5)


def token(key: ec.EllipticCurvePrivateKey = KEY_A, kid: str | None = "key-a", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "sub": "client-1",
        "aud": BASE + PATH,
        "iat": now,
        "exp": now + 240,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(body, key, algorithm="ES384", headers=headers)


def allowed(bearer: str) -> bool:
    """True for an Allow; False for API Gateway's 401 (``Unauthorized``) or a Deny."""
    event = {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "path": PATH,
        "headers": {"Authorization": f"Bearer {bearer}"},
    }
    try:
        answer = authorizer.authorize(event)
    except Exception as error:
        if str(error) != "Unauthorized":  # API Gateway's 401; anything else is a bug
            raise
        return False
    return bool(answer["policyDocument"]["Statement"][0]["Effect"] == "Allow")


def test_a_warm_authorizer_fetches_the_jwks_once_and_reuses_its_key_objects(
    jwks: MutableJwks,
) -> None:
    assert all(allowed(token()) for _ in range(5))
    assert jwks.fetches == 1
    first = authorizer.signing_key(jwks.url, "key-a")
    assert authorizer.signing_key(jwks.url, "key-a") is first  # not re-parsed per call
    assert jwks.fetches == 1


def test_a_key_rotated_into_the_jwks_is_fetched(
    jwks: MutableJwks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authorizer, "JWKS_REFETCH_COOLDOWN_S", 0)
    assert allowed(token())
    jwks.keys = [_jwk(KEY_A, "key-a"), _jwk(KEY_B, "key-b")]
    assert allowed(token(KEY_B, "key-b"))
    assert jwks.fetches == 2
    assert allowed(token())  # the old key still verifies while the EHR still publishes it


def test_a_key_removed_from_the_jwks_stops_verifying_within_the_lifespan(
    jwks: MutableJwks, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifespan = 0.3
    monkeypatch.setattr(authorizer, "JWKS_LIFESPAN_S", lifespan)
    assert allowed(token())
    jwks.keys = [_jwk(KEY_B, "key-b")]  # the EHR revokes key A
    time.sleep(lifespan + 0.2)
    assert not allowed(token())
    assert allowed(token(KEY_B, "key-b"))


def test_made_up_kids_do_not_turn_into_jwks_fetches(jwks: MutableJwks) -> None:
    assert allowed(token())
    refused = [allowed(token(kid=f"made-up-{n}")) for n in range(20)]
    refused.append(allowed(token(kid=None)))
    assert not any(refused)
    assert jwks.fetches == 1  # within the cooldown after the first fetch: none more


def test_a_cached_key_does_not_make_an_expired_or_forged_token_acceptable(
    jwks: MutableJwks,
) -> None:
    assert allowed(token())
    now = int(time.time())
    assert not allowed(token(exp=now - 120, iat=now - 400))
    assert not allowed(token(ATTACKER_KEY, "key-a"))
    assert not allowed(token(aud=BASE + "/cds-services"))  # authentic, other endpoint: Deny
    assert jwks.fetches == 1
