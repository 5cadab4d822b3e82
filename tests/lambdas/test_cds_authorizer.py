"""The CDS Hooks authorizer: the EHR's JWT verified against its JWKS (served locally over HTTP,
fetched by PyJWT's PyJWKClient) as CDS Hooks 2.0 "Trusting CDS Clients" specifies."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.cds_authorizer import app as authorizer
from local_platform.ehr import jwks_server

ISSUER = "https://ehr.example.org"
BASE = "https://api.example.org/v1"
AUD = f"{BASE}/cds-services/readmission-risk"
METHOD_ARN = (
    "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST/cds-services/readmission-risk"
)

EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = ec.generate_private_key(ec.SECP384R1())


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.ECAlgorithm if alg == "ES384" else jwt.algorithms.RSAAlgorithm
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "alg": alg}


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    keys = {"keys": [_jwk(EC_KEY, "ec-1", "ES384"), _jwk(RSA_KEY, "rsa-1", "RS384")]}
    with jwks_server(keys) as url:
        yield url


@pytest.fixture(scope="module")
def attacker_jwks_url() -> Iterator[str]:
    with jwks_server({"keys": [_jwk(ATTACKER_KEY, "ec-1", "ES384")]}) as url:
        yield url


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch, jwks_url: str) -> None:
    monkeypatch.setenv(authorizer.ISSUERS_ENV, json.dumps({ISSUER: jwks_url}))
    monkeypatch.setenv(authorizer.AUDIENCE_BASE_URL_ENV, BASE)
    authorizer._jwks_clients.clear()


def token(
    *,
    key: Any = EC_KEY,
    alg: str = "ES384",
    kid: str = "ec-1",
    drop: tuple[str, ...] = (),
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "sub": "client-1",
        "aud": AUD,
        "iat": now,
        "exp": now + 240,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    for name in drop:
        body.pop(name)
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid, **(headers or {})})


def event(
    authorization: str | None, path: str = "/cds-services/readmission-risk"
) -> dict[str, Any]:
    headers = {} if authorization is None else {"Authorization": authorization}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "path": path,
        "headers": headers,
        "requestContext": {"domainName": "api.example.org", "path": f"/v1{path}"},
    }


def allowed(answer: dict[str, Any]) -> bool:
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Resource"] == METHOD_ARN  # exactly the method invoked, never a wildcard
    return statement["Effect"] == "Allow"


@pytest.mark.parametrize(
    ("key", "alg", "kid"), [(EC_KEY, "ES384", "ec-1"), (RSA_KEY, "RS384", "rsa-1")]
)
def test_a_valid_token_is_allowed_for_exactly_this_method(key: Any, alg: str, kid: str) -> None:
    jti = "jti-" + alg
    answer = authorizer.authorize(event(f"Bearer {token(key=key, alg=alg, kid=kid, jti=jti)}"))
    assert allowed(answer)
    assert answer["context"]["jti"] == jti
    assert answer["context"]["iss"] == ISSUER
    assert answer["principalId"] == "client-1"


def test_aud_may_be_a_list_and_defaults_to_the_apis_own_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert allowed(authorizer.authorize(event(f"Bearer {token(aud=['x', AUD])}")))
    monkeypatch.delenv(authorizer.AUDIENCE_BASE_URL_ENV)
    assert allowed(authorizer.authorize(event(f"Bearer {token()}")))


def _unauthorized(authorization: str | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.authorize(event(authorization))


def _now() -> int:
    return int(time.time())


#: Built when the test runs, not when it is collected: a token's times are relative to now.
UNTRUSTWORTHY: dict[str, Callable[[], str | None]] = {
    "no header": lambda: None,
    "empty": lambda: "",
    "basic": lambda: "Basic dXNlcjpwYXNz",
    "no token": lambda: "Bearer",
    "not a jwt": lambda: "Bearer not-a-jwt",
    "forged (right kid, wrong key)": lambda: f"Bearer {token(key=ATTACKER_KEY)}",
    "expired": lambda: f"Bearer {token(exp=_now() - 120, iat=_now() - 400)}",
    "issued in the future": lambda: f"Bearer {token(iat=_now() + 600, exp=_now() + 700)}",
    "lives over 5 minutes": lambda: f"Bearer {token(exp=_now() + 3600)}",
    "issuer not allowed": lambda: f"Bearer {token(iss='https://other-ehr.example.org')}",
    "no jti": lambda: f"Bearer {token(drop=('jti',))}",
    "no exp": lambda: f"Bearer {token(drop=('exp',))}",
    "no iat": lambda: f"Bearer {token(drop=('iat',))}",
    "no sub": lambda: f"Bearer {token(drop=('sub',))}",
    "unknown kid": lambda: f"Bearer {token(kid='unknown')}",
    "HS384": lambda: (
        f"Bearer {jwt.encode({'iss': ISSUER, 'aud': AUD}, 'secret' * 10, algorithm='HS384')}"
    ),
    "RS256": lambda: f"Bearer {token(key=RSA_KEY, alg='RS256', kid='rsa-1')}",
}


@pytest.mark.parametrize("make", list(UNTRUSTWORTHY.values()), ids=list(UNTRUSTWORTHY))
def test_untrustworthy_tokens_are_401(make: Callable[[], str | None]) -> None:
    _unauthorized(make())


def test_a_jku_header_is_never_followed(attacker_jwks_url: str) -> None:
    forged = token(key=ATTACKER_KEY, headers={"jku": attacker_jwks_url})
    _unauthorized(f"Bearer {forged}")


def test_an_authentic_token_for_another_endpoint_is_denied_403() -> None:
    answer = authorizer.authorize(event(f"Bearer {token(aud=BASE + '/cds-services')}"))
    assert not allowed(answer)


def test_an_unreachable_jwks_is_401(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(authorizer.ISSUERS_ENV, json.dumps({ISSUER: "http://127.0.0.1:9/jwks"}))
    _unauthorized(f"Bearer {token()}")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_header_value_is_allowed_or_401_never_an_error(value: str) -> None:
    try:
        answer = authorizer.authorize(event(value))
    except Exception as error:  # the only exception allowed is API Gateway's 401
        message = str(error)
    else:
        message = "Unauthorized"
        assert not allowed(answer)
    assert message == "Unauthorized"


def test_nothing_of_the_token_is_logged(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], lambda_context: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_jti = "jti-SECRET-55"
    good = token(jti=secret_jti)
    authorizer.lambda_handler(event(f"Bearer {good}"), lambda_context)
    for bad in (token(key=ATTACKER_KEY, jti=secret_jti), token(aud="x", jti=secret_jti)):
        with contextlib.suppress(Exception):  # the expected 401
            authorizer.lambda_handler(event(f"Bearer {bad}"), lambda_context)
    logged = caplog.text + "".join(capsys.readouterr())
    assert "token rejected" in logged
    for value in (secret_jti, good.split(".")[1], "client-1"):
        assert value not in logged
