"""The demo's EHR: it calls the CDS Hooks service at discharge, as Epic or Oracle Health would.

The EHR has an ES384 key pair; its public key is served as a JWKS over HTTP (the authorizer
fetches it as it would from a real EHR), and its issuer and JWKS URL are what the local
authorizer trusts (``CDS_ISSUERS``, as ``cds_hooks.issuers`` in cdk.json is in AWS). For one
discharged patient of the test split it writes the stay as FHIR (``ehr_bundle``), fills the
service's prefetch templates, signs a JWT for the service's URL, calls
``POST /cds-services/readmission-risk`` through the local API Gateway (authorizer included)
and prints the card.

During ``make demo-serve`` the same call can be made from another terminal:

    python -m local_platform.ehr --run-dir runs/<timestamp>

(the run folder holds the EHR's identity, ``ehr/identity.json``, and its private key).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lambdas.cds_authorizer.app import AUDIENCE_BASE_URL_ENV, ISSUERS_ENV
from lambdas.cds_authorizer.app import lambda_handler as authorizer_handler
from lambdas.cds_hooks.service import HOOK, PREFETCH, SERVICE_PATH, SERVICES_PATH
from lambdas.predict import app as predict_app
from local_platform import ehr_bundle
from local_platform.control_plane import patched_environment
from local_platform.gateway import LocalApiGateway, Route
from local_platform.report import FACT_INDENT

if TYPE_CHECKING:
    from local_platform.steps import DemoRun

ISSUER = "https://ehr.demo.local"
KEY_ID = "demo-ehr-es384"
ALGORITHM = "ES384"
TOKEN_LIFETIME_S = 300
IDENTITY_DIR = "ehr"
IDENTITY_FILE = "identity.json"
PRIVATE_KEY_FILE = "private_key.pem"
JWKS_PATH = "/.well-known/jwks.json"
#: How long API Gateway may reuse the authorizer's answer for one token (stage config in AWS).
AUTHORIZER_TTL_S = 60
#: Discharge hooks the demo scores (the replayed token is refused before scoring): one more
#: record in the endpoint's data capture, which the drift monitor analyses with the traffic.
SCORED_HOOK_CALLS = 1
#: The stay's admission time in the EHR (the test split holds no dates).
ADMITTED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def cds_routes(function_name: str) -> list[Route]:
    """The CDS Hooks routes of the local API Gateway: the predict function behind the JWT
    authorizer, as in AWS."""
    return [
        Route(
            method,
            path,
            predict_app.lambda_handler,
            function_name,
            authorizer=authorizer_handler,
            authorizer_ttl_s=AUTHORIZER_TTL_S,
        )
        for method, path in (("GET", SERVICES_PATH), ("POST", SERVICE_PATH))
    ]


@dataclass
class EhrIdentity:
    """The EHR's issuer, key id and private key."""

    issuer: str
    key_id: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> EhrIdentity:
        return cls(ISSUER, KEY_ID, ec.generate_private_key(ec.SECP384R1()))

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS (RFC 7517)."""
        key = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**key, "kid": self.key_id, "use": "sig", "alg": ALGORITHM}]}

    def token(self, audience: str, now: float | None = None) -> str:
        """A CDS Hooks client JWT for ``audience`` (the endpoint's URL), valid five minutes."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "sub": "demo-ehr-client",
            "aud": audience,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.key_id, "typ": "JWT"}
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers=headers)

    def save(self, folder: Path, jwks_url: str, api_url: str) -> None:
        """Write the identity where ``python -m local_platform.ehr`` finds it."""
        folder.mkdir(parents=True, exist_ok=True)
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (folder / PRIVATE_KEY_FILE).write_bytes(pem)
        (folder / PRIVATE_KEY_FILE).chmod(0o600)
        identity = {
            "issuer": self.issuer,
            "key_id": self.key_id,
            "jwks_url": jwks_url,
            "api_url": api_url,
        }
        (folder / IDENTITY_FILE).write_text(json.dumps(identity, indent=2))

    @classmethod
    def load(cls, folder: Path) -> tuple[EhrIdentity, dict[str, str]]:
        identity = json.loads((folder / IDENTITY_FILE).read_text())
        key = serialization.load_pem_private_key((folder / PRIVATE_KEY_FILE).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the EHR's key is not an EC key")
        return cls(identity["issuer"], identity["key_id"], key), identity


@contextmanager
def jwks_server(jwks: Mapping[str, Any]) -> Iterator[str]:
    """Serve ``jwks`` over HTTP on a free port; yield its URL."""
    payload = json.dumps(jwks).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == JWKS_PATH else 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if status == 200 else 0))
            self.end_headers()
            if status == 200:
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{JWKS_PATH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A prefetch answer: a searchset Bundle, or null when there is nothing (as the spec says)."""
    if not resources:
        return None
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def prefetch(resources: list[dict[str, Any]], encounter_id: str) -> dict[str, Any]:
    """Fill the service's prefetch templates from one patient's resources."""

    def of_type(kind: str, stay_only: bool = True) -> list[dict[str, Any]]:
        found = [r for r in resources if r["resourceType"] == kind]
        if not stay_only:
            return found
        target = f"Encounter/{encounter_id}"
        return [
            r
            for r in found
            if (r.get("encounter") or {}).get("reference") == target
            or target in [e.get("reference") for e in (r.get("context") or {}).get("encounter", [])]
        ]

    patient = of_type("Patient", stay_only=False)[0]
    encounter = next(
        r for r in resources if r["resourceType"] == "Encounter" and r["id"] == encounter_id
    )
    filled = {
        "patient": patient,
        "encounter": encounter,
        "encounters": searchset(of_type("Encounter", stay_only=False)),
        "conditions": searchset(of_type("Condition")),
        "procedures": searchset(of_type("Procedure")),
        "medications": searchset(of_type("MedicationRequest")),
        "observations": searchset(of_type("Observation")),
        "documents": searchset(of_type("DocumentReference")),
    }
    assert set(filled) == set(PREFETCH)
    return filled


def hook_request(
    resources: list[dict[str, Any]], patient_id: str, encounter_id: str
) -> dict[str, Any]:
    """An ``encounter-discharge`` hook request with its prefetch."""
    return {
        "hook": HOOK,
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/demo-clinician",
            "patientId": patient_id,
            "encounterId": encounter_id,
        },
        "prefetch": prefetch(resources, encounter_id),
    }


def record_hook(record: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """A hook request for one canonical record of the test split."""
    patient_id, encounter_id = f"demo-ehr-patient-{index}", f"demo-ehr-stay-{index}"
    resources = ehr_bundle.record_resources(record, patient_id, encounter_id, ADMITTED)
    return hook_request(resources, patient_id, encounter_id)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    latency_ms: float


def call(url: str, token: str, body: Mapping[str, Any] | None = None) -> Reply:
    """Call a CDS route as the EHR: bearer token, JSON body (POST) or none (GET)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - a local http URL
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    latency = (time.perf_counter() - started) * 1000
    return Reply(status, json.loads(raw) if raw else None, latency)


def card_lines(card: Mapping[str, Any]) -> list[str]:
    """A card as the clinician would read it."""
    lines = [f"[{card['indicator'].upper()}] {card['summary']}"]
    lines += [f"    {line}" for line in card.get("detail", "").splitlines()]
    lines.append(f"    source: {card['source']['label']}")
    lines += [f"    link: {link['label']} -> {link['url']}" for link in card.get("links", [])]
    return lines


def discharge_call(api_url: str, identity: EhrIdentity, hook: Mapping[str, Any]) -> Reply:
    """Sign a token for the service's URL and call it."""
    url = f"{api_url}{SERVICE_PATH}"
    return call(url, identity.token(url), hook)


def play_discharge(run: DemoRun, gateway: LocalApiGateway, stack: ExitStack) -> dict[str, Any]:
    """Step 5c of the demo: the EHR calls the CDS service for one discharged test patient.

    Starts the EHR's JWKS server (stopped with ``stack``), trusts it in the authorizer's
    settings, calls discovery and the hook, prints the card, and shows that the same token
    cannot be used twice.
    """
    from local_platform import traffic

    identity = EhrIdentity.generate()
    jwks_url = stack.enter_context(jwks_server(identity.jwks()))
    settings = {
        ISSUERS_ENV: json.dumps({identity.issuer: jwks_url}),
        AUDIENCE_BASE_URL_ENV: gateway.url,
    }
    stack.enter_context(patched_environment(settings))
    identity.save(run.run_dir / IDENTITY_DIR, jwks_url, gateway.url)
    progress = run.progress
    discovery_url = f"{gateway.url}{SERVICES_PATH}"
    discovery = call(discovery_url, identity.token(discovery_url))
    services = [service["id"] for service in (discovery.body or {}).get("services", [])]
    progress.fact(f"GET {SERVICES_PATH}", f"{discovery.status} services {', '.join(services)}")
    hook = record_hook(traffic.read_split(run.features_dir, "test")[0])
    url = f"{gateway.url}{SERVICE_PATH}"
    token = identity.token(url)
    reply = call(url, token, hook)
    if reply.status != 200:
        raise RuntimeError(f"the CDS hook call failed with HTTP {reply.status}")
    card = reply.body["cards"][0]
    progress.fact(f"POST {SERVICE_PATH}", f"{reply.status} in {reply.latency_ms:.0f} ms, card:")
    for line in card_lines(card):
        progress.line(f"{FACT_INDENT}    {line}")
    replayed = call(url, token, hook)
    progress.fact("same token again", f"{replayed.status} (a jti is single use)")
    progress.fact("try it", f"python -m local_platform.ehr --run-dir {run.run_dir}")
    return {
        "discovery_status": discovery.status,
        "status": reply.status,
        "indicator": card["indicator"],
        "summary": card["summary"],
        "latency_ms": round(reply.latency_ms, 1),
        "replayed_token_status": replayed.status,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m local_platform.ehr --run-dir DIR``: one discharge hook call, card printed."""
    from local_platform import traffic

    parser = argparse.ArgumentParser(prog="python -m local_platform.ehr", description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True, help="a make demo-serve run")
    parser.add_argument("--patient", type=int, default=0, help="which test-split encounter")
    args = parser.parse_args(argv)
    identity, saved = EhrIdentity.load(args.run_dir / IDENTITY_DIR)
    records = traffic.read_split(args.run_dir / "curated" / "features", "test")
    hook = record_hook(records[args.patient % len(records)], args.patient)
    reply = discharge_call(saved["api_url"], identity, hook)
    print(f"POST {SERVICE_PATH}: {reply.status} in {reply.latency_ms:.0f} ms")
    for card in (reply.body or {}).get("cards", []):
        print("\n".join(card_lines(card)))
    return 0 if reply.status == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
