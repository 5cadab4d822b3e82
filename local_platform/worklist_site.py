"""The worklist page served locally, with its data API and a stand-in for Cognito sign-in.

    python -m local_platform.worklist_site --store runs/<run>/worklist.json

Two local servers stand in for what AWS runs:

- the *site* (CloudFront + S3 + Cognito's managed login): ``web/worklist/`` with the security
  headers of ``web/worklist/security_headers.json``, the page's ``config.json``, and a local
  sign-in service at ``/oauth2/authorize`` and ``/oauth2/token`` speaking the same OAuth 2.0
  authorization-code flow with PKCE (S256 only) as Cognito, so the page's code is the same.
  The sign-in page offers two local users instead of a password form: ``care.manager`` (in the
  ``care-team`` group) and ``no.access`` (in no group). It signs RS256 ID tokens with a key
  generated at start-up, never written anywhere: a restart invalidates every token;
- the *API* (API Gateway with a Cognito user pool authorizer): the local gateway serving the
  worklist Lambda's routes, each behind :meth:`LocalSignIn.verify`, which checks the token's
  signature, issuer, audience, ``token_use`` and expiry as the Cognito authorizer does and
  hands the claims over as strings (groups comma-separated), as a REST API does.

The sign-in stand-in is for a laptop only: it has no passwords, and anyone who can reach the
port can sign in as either user. It listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from lambdas.worklist_api import app as worklist_api
from lambdas.worklist_api.settings import DEFAULT_ACCESS_GROUP, Settings
from local_platform.gateway import LocalApiGateway, Route
from local_platform.settings import REPO_ROOT

WEB_ROOT = REPO_ROOT / "web" / "worklist"
SECURITY_HEADERS_FILE = WEB_ROOT / "security_headers.json"
#: The files of the page, and their content types (anything else is 404).
PAGE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "auth.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: The store file the demo's batch step writes in its run folder.
STORE_FILE_NAME = "worklist.json"
CLIENT_ID = "local-worklist"
SCOPES = "openid email"
TOKEN_LIFETIME_S = 3600
CODE_LIFETIME_S = 300
GROUPS_CLAIM = "cognito:groups"
#: The local users and their groups (the sign-in stand-in has no passwords).
LOCAL_USERS: Mapping[str, tuple[str, ...]] = {
    "care.manager": (DEFAULT_ACCESS_GROUP,),
    "no.access": (),
}
#: The worklist API's routes (resource paths as API Gateway names them).
WORKLIST_ROUTES = (
    "/worklist/days",
    "/worklist/days/{day}",
    "/worklist/days/{day}/entries/{encounter_key}",
)


def security_headers(api_origin: str, auth_origin: str) -> dict[str, str]:
    """The page's response headers, from the one definition CloudFront's policy uses too."""
    spec = json.loads(SECURITY_HEADERS_FILE.read_text())
    policy = spec["content_security_policy"].format(api_origin=api_origin, auth_origin=auth_origin)
    return {
        "Content-Security-Policy": policy,
        "Strict-Transport-Security": (
            f"max-age={spec['strict_transport_security_seconds']}; includeSubDomains"
        ),
        "X-Frame-Options": spec["frame_options"],
        "Referrer-Policy": spec["referrer_policy"],
        "X-Content-Type-Options": spec["content_type_options"],
    }


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class _Grant:
    username: str
    redirect_uri: str
    challenge: str
    expires: float


class LocalSignIn:
    """The sign-in stand-in: issues ID tokens by the PKCE code flow and verifies them."""

    def __init__(self, issuer: str, redirect_uri: str, client_id: str = CLIENT_ID) -> None:
        self.issuer = issuer
        self.redirect_uri = redirect_uri
        self.client_id = client_id
        self._key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8)})
        self._codes: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def token_for(self, username: str, lifetime_s: int = TOKEN_LIFETIME_S) -> str:
        """A signed ID token of a local user, as Cognito issues one."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": hashlib.sha256(username.encode()).hexdigest()[:32],
            "cognito:username": username,
            GROUPS_CLAIM: list(LOCAL_USERS[username]),
            "token_use": "id",
            "auth_time": now,
            "iat": now,
            "exp": now + lifetime_s,
        }
        header = {"alg": "RS256", "kid": self._key.kid}
        return jwt.encode(header, claims, self._key)

    def verify(self, authorization: str | None) -> dict[str, str] | None:
        """The claims of a valid ID token (every value a string), else ``None``."""
        if not authorization:
            return None
        value = authorization.removeprefix("Bearer ").strip()
        try:
            token = jwt.decode(value, self._key, algorithms=["RS256"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                token_use={"essential": True, "value": "id"},
                exp={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError, KeyError):
            return None
        claims = dict(token.claims)
        groups = claims.get(GROUPS_CLAIM) or []
        claims[GROUPS_CLAIM] = ",".join(groups) if isinstance(groups, list) else str(groups)
        return {key: str(value) for key, value in claims.items() if claims[key] != ""}

    def authorize_error(self, query: Mapping[str, str]) -> str | None:
        """Why an authorization request is refused (shown without echoing it), or ``None``."""
        if query.get("response_type") != "code":
            return "unsupported response type"
        if query.get("client_id") != self.client_id:
            return "unknown client"
        if query.get("redirect_uri") != self.redirect_uri:
            return "redirect address not registered"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        return None

    def grant(self, query: Mapping[str, str], username: str) -> str:
        """Issue a code for ``username`` and return the address to send the browser back to."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                username,
                query["redirect_uri"],
                query["code_challenge"],
                time.monotonic() + CODE_LIFETIME_S,
            )
        back = {"code": code, "state": query.get("state", "")}
        return f"{query['redirect_uri']}?{urlencode(back)}"

    def exchange(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint: a code, once, with the verifier of its challenge."""
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if (
            form.get("grant_type") != "authorization_code"
            or form.get("client_id") != self.client_id
            or grant is None
            or grant.expires < time.monotonic()
            or form.get("redirect_uri") != grant.redirect_uri
            or _s256(form.get("code_verifier", "")) != grant.challenge
        ):
            return 400, {"error": "invalid_grant"}
        id_token = self.token_for(grant.username)
        return 200, {
            "id_token": id_token,
            "access_token": id_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
        }


def _sign_in_page(query: Mapping[str, str]) -> str:
    fields = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in query.items()
    )
    buttons = "".join(
        f'<button type="submit" name="username" value="{html.escape(user)}">Sign in as '
        f"{html.escape(user)} ({html.escape(', '.join(groups) or 'no group')})</button>"
        for user, groups in LOCAL_USERS.items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local sign-in</title>'
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/style.css"></head><body><main><h1>Local sign-in</h1>'
        '<p class="note">A stand-in for the hospital sign-in (Cognito) on this computer only: '
        "choose a local user.</p>"
        f'<form method="post" action="/oauth2/authorize" class="signin-users">{fields}{buttons}'
        "</form></main></body></html>"
    )


class WorklistSite:
    """The local site and the worklist API's gateway, serving ``store`` until stopped."""

    def __init__(self, store: Any, host: str = "127.0.0.1") -> None:
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        host_name, port = self._server.server_address[:2]
        self.url = f"http://{host_name!s}:{port}"
        self.sign_in = LocalSignIn(issuer=self.url, redirect_uri=f"{self.url}/")
        worklist_api.use(Settings(table_name="local", allowed_origin=self.url), store)
        routes = [
            Route("GET", path, worklist_api.lambda_handler, "worklist-api", self.sign_in.verify)
            for path in WORKLIST_ROUTES
        ]
        self.gateway = LocalApiGateway(routes, host=host, cors_origin=self.url)
        self.headers = security_headers(self.gateway.url, self.url)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def config(self) -> dict[str, Any]:
        """The page's ``config.json`` (in AWS the stack deploys the same keys)."""
        return {
            "apiUrl": self.gateway.url,
            "authorizeUrl": f"{self.url}/oauth2/authorize",
            "tokenUrl": f"{self.url}/oauth2/token",
            "logoutUrl": None,
            "clientId": self.sign_in.client_id,
            "redirectUri": self.sign_in.redirect_uri,
            "scopes": SCOPES,
        }

    def start(self) -> WorklistSite:
        self.gateway.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.gateway.stop()

    def __enter__(self) -> WorklistSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path, _, query_string = self.path.partition("?")
                query = {k: v[-1] for k, v in parse_qs(query_string).items()}
                if path in ("/", "/index.html"):
                    self._file("index.html")
                elif path.lstrip("/") in PAGE_FILES:
                    self._file(path.lstrip("/"))
                elif path == "/config.json":
                    self._reply(200, "application/json", json.dumps(site.config()).encode())
                elif path == "/oauth2/authorize":
                    error = site.sign_in.authorize_error(query)
                    if error is not None:
                        self._reply(400, "text/plain; charset=utf-8", error.encode())
                    else:
                        page = _sign_in_page(query).encode()
                        self._reply(200, "text/html; charset=utf-8", page)
                else:
                    self._reply(404, "text/plain; charset=utf-8", b"not found")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, 64 * 1024)).decode("utf-8", "replace")
                form = {k: v[-1] for k, v in parse_qs(raw).items()}
                path = urlsplit(self.path).path
                if path == "/oauth2/token":
                    status, body = site.sign_in.exchange(form)
                    self._reply(status, "application/json", json.dumps(body).encode())
                elif path == "/oauth2/authorize":
                    username = form.pop("username", "")
                    if site.sign_in.authorize_error(form) or username not in LOCAL_USERS:
                        self._reply(400, "text/plain; charset=utf-8", b"sign-in refused")
                        return
                    self.send_response(302)
                    self.send_header("Location", site.sign_in.grant(form, username))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._reply(404, "text/plain; charset=utf-8", b"not found")

            def _file(self, name: str) -> None:
                self._reply(200, PAGE_FILES[name], (WEB_ROOT / name).read_bytes())

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                for key, value in site.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """No access log: the sign-in's query strings carry codes."""

        return _Handler


class _NotServed:
    def stop(self) -> None:
        """Nothing was started."""


def open_store(path: Path) -> Any:
    """The local JSON-file store at ``path`` (``worklist.local``, written by batch scoring)."""
    from worklist.local import LocalWorklistStore  # imported late: it lands with batch scoring

    return LocalWorklistStore(path)


def start_for_run(run_dir: Path, announce: Any = print) -> WorklistSite | _NotServed:
    """``make demo-serve``: serve the page over the store the demo's batch step wrote."""
    path = run_dir / STORE_FILE_NAME
    try:
        store = open_store(path)
    except ImportError:
        announce("The worklist page is not served: this build has no local worklist store.")
        return _NotServed()
    if not path.is_file():
        announce(f"The worklist page is not served: no {STORE_FILE_NAME} in the run folder.")
        return _NotServed()
    site = WorklistSite(store).start()
    announce(
        f"The worklist page is up at {site.url}/ (local sign-in: care.manager or no.access; "
        f"its API at {site.gateway.url})."
    )
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_platform.worklist_site")
    parser.add_argument("--store", type=Path, required=True, help="a worklist.json store file")
    args = parser.parse_args(argv)
    site = WorklistSite(open_store(args.store)).start()
    print(f"Worklist page: {site.url}/ (Ctrl-C stops it)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
