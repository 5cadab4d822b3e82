"""The local worklist site: the sign-in stand-in's PKCE code flow and token checks, and the
gateway's authorizer, path parameters, query strings and CORS as the worklist API needs them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from joserfc import jwt

from local_platform.gateway import LocalApiGateway, Route
from local_platform.worklist_site import CLIENT_ID, LocalSignIn, _s256
from tests.lambdas.worklist_fixtures import DAY, demo_store

ISSUER = "http://127.0.0.1:1"
REDIRECT = f"{ISSUER}/"


@pytest.fixture
def sign_in() -> LocalSignIn:
    return LocalSignIn(ISSUER, REDIRECT)


def authorize(sign_in: LocalSignIn, verifier: str = "v" * 50) -> tuple[str, str]:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "code_challenge": _s256(verifier),
        "code_challenge_method": "S256",
        "state": "s1",
    }
    assert sign_in.authorize_error(query) is None
    location = sign_in.grant(query, "care.manager")
    code = location.split("code=", 1)[1].split("&", 1)[0]
    return code, verifier


def exchange(sign_in: LocalSignIn, code: str, verifier: str) -> tuple[int, dict[str, Any]]:
    return sign_in.exchange(
        {
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
    )


def test_code_flow_issues_a_token_the_authorizer_accepts(sign_in) -> None:
    code, verifier = authorize(sign_in)
    status, tokens = exchange(sign_in, code, verifier)
    assert status == 200
    claims = sign_in.verify(f"Bearer {tokens['id_token']}")
    assert claims is not None
    assert claims["cognito:groups"] == "care-team"
    assert claims["token_use"] == "id"
    assert all(isinstance(value, str) for value in claims.values())


def test_code_is_single_use_and_needs_the_right_verifier(sign_in) -> None:
    code, verifier = authorize(sign_in)
    assert exchange(sign_in, code, "w" * 50) == (400, {"error": "invalid_grant"})
    assert exchange(sign_in, code, verifier)[0] == 400  # spent by the failed attempt
    code, verifier = authorize(sign_in)
    assert exchange(sign_in, code, verifier)[0] == 200
    assert exchange(sign_in, code, verifier)[0] == 400


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_challenge_method", "plain"),
        ("redirect_uri", "https://evil.example/"),
        ("client_id", "other"),
        ("response_type", "token"),
    ],
)
def test_authorize_refuses_what_cognito_would(sign_in, field, value) -> None:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "code_challenge": "x",
        "code_challenge_method": "S256",
        field: value,
    }
    assert sign_in.authorize_error(query) is not None


def test_authorizer_refuses_expired_foreign_and_altered_tokens(sign_in) -> None:
    assert sign_in.verify(None) is None
    assert sign_in.verify("Bearer not-a-jwt") is None
    assert sign_in.verify(sign_in.token_for("care.manager", lifetime_s=-10)) is None
    other = LocalSignIn(ISSUER, REDIRECT)
    assert sign_in.verify(other.token_for("care.manager")) is None  # another key
    good = sign_in.token_for("care.manager")
    header, payload, signature = good.split(".")
    altered = ".".join([header, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature])
    assert sign_in.verify(altered) is None
    assert sign_in.verify(good) is not None


def test_authorizer_refuses_a_token_for_another_audience(sign_in) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "another-client", "token_use": "id", "exp": now + 60}
    token = jwt.encode({"alg": "RS256", "kid": sign_in._key.kid}, claims, sign_in._key)
    assert sign_in.verify(token) is None


def _get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_gateway_authorizer_path_parameters_query_and_cors(sign_in) -> None:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "headers": {}, "body": "{}"}

    origin = "http://127.0.0.1:9"
    routes = [Route("GET", "/worklist/days/{day}", handler, "worklist-api", sign_in.verify)]
    with LocalApiGateway(routes, cors_origin=origin) as gateway:
        url = f"{gateway.url}/worklist/days/{DAY}?unit=medicine&band=high&band=low"
        status, headers, body = _get(url, {"Origin": origin})
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
        assert headers["Access-Control-Allow-Origin"] == origin
        assert seen == []
        token = sign_in.token_for("care.manager")
        status, _, _ = _get(url, {"Authorization": token, "Origin": origin})
        assert status == 200
        event = seen[0]
        assert event["pathParameters"] == {"day": DAY}
        assert event["multiValueQueryStringParameters"] == {
            "unit": ["medicine"],
            "band": ["high", "low"],
        }
        assert event["requestContext"]["authorizer"]["claims"]["cognito:groups"] == "care-team"
        status, headers, _ = _get(url, {"Origin": origin}, method="OPTIONS")
        assert status == 204
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        assert _get(f"{gateway.url}/worklist/days/{DAY}/extra")[0] == 403


def test_worklist_site_serves_the_api_end_to_end() -> None:
    from lambdas.worklist_api import app as worklist_api
    from local_platform.worklist_site import WorklistSite

    with WorklistSite(demo_store()) as site:
        token = site.sign_in.token_for("care.manager")
        status, _, body = _get(f"{site.gateway.url}/worklist/days/{DAY}", {"Authorization": token})
        assert status == 200
        assert len(json.loads(body)["entries"]) == 20
        status, _, body = _get(
            f"{site.gateway.url}/worklist/days/{DAY}",
            {"Authorization": site.sign_in.token_for("no.access")},
        )
        assert (status, json.loads(body)["error"]) == (403, "forbidden")
    assert worklist_api.lambda_handler is not None


def test_demo_serve_starts_the_site_over_the_run_store(tmp_path, monkeypatch) -> None:
    from local_platform import worklist_site

    said: list[str] = []
    (tmp_path / worklist_site.STORE_FILE_NAME).write_text("{}")
    monkeypatch.setattr(worklist_site, "open_store", lambda path: demo_store())
    site = worklist_site.start_for_run(tmp_path, said.append)
    try:
        assert isinstance(site, worklist_site.WorklistSite)
        assert _get(f"{site.url}/")[0] == 200
        assert site.url in said[0]
    finally:
        site.stop()


def test_demo_serve_without_a_store_says_why(tmp_path, monkeypatch) -> None:
    from local_platform import worklist_site

    said: list[str] = []

    def missing(path):
        raise ImportError("worklist.local")

    monkeypatch.setattr(worklist_site, "open_store", missing)
    worklist_site.start_for_run(tmp_path, said.append).stop()
    assert "not served" in said[0]
    monkeypatch.setattr(worklist_site, "open_store", lambda path: demo_store())
    worklist_site.start_for_run(tmp_path, said.append).stop()
    assert "no worklist.json" in said[1]
