"""Post-deployment smoke test: a SigV4-signed ``GET /health`` and one ``POST /predict``.

    python scripts/smoke_test.py --api-url https://<id>.execute-api.<region>.amazonaws.com/v1/ \
        --region <region>

The pipeline runs it after deploying the dev stage (stacks/pipeline_stack.py); it signs with
the credentials of the default chain (the CodeBuild role there), as an IAM-authenticated
caller of the prediction API must. The encounter it scores is made up (no record of any
dataset). It prints status codes and checks only: never a response body, which could echo
what was sent. Exit status 0 when both calls pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: The service name API Gateway's IAM authorisation signs for.
SERVICE = "execute-api"
TIMEOUT_S = 30.0
RISK_BANDS = ("low", "moderate", "high")

#: A made-up encounter in the canonical schema (tests check the prediction API accepts it).
SMOKE_ENCOUNTER: dict[str, Any] = {
    "patient_id": "SMOKE-TEST-PATIENT",
    "encounter_id": "SMOKE-TEST-ENCOUNTER",
    "age_years": 64,
    "sex": "M",
    "admission_type": "emergency",
    "admission_source": "emergency_department",
    "discharge_disposition": "home",
    "length_of_stay_days": 3.0,
    "prior_admissions_12m": 1,
    "prior_ed_visits_12m": 0,
    "num_diagnoses": 2,
    "num_procedures": 0,
    "num_medications": 8,
    "num_lab_tests": 20,
    "num_abnormal_labs": 2,
    "hba1c_result": "normal",
    "max_glucose_result": "normal",
    "charlson_index": 2,
    "diagnosis_codes": ["4280", "4019"],
    "procedure_codes": [],
    "medications": ["furosemide"],
    "abnormal_labs": ["creatinine"],
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


@dataclass(frozen=True)
class Check:
    """One named check and whether it passed; ``detail`` never holds response content."""

    name: str
    passed: bool
    detail: str


Sign = Callable[[str, str, bytes, dict[str, str]], dict[str, str]]


def sigv4_signer(region: str) -> Sign:
    """Headers signed with SigV4 for ``execute-api`` by the default credential chain."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign with")

    def sign(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(request)
        return dict(request.headers.items())

    return sign


def call(sign: Sign, method: str, url: str, payload: Any = None) -> Reply:
    """One signed request; HTTP errors are replies, not exceptions."""
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = {"Accept": "application/json"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    signed = sign(method, url, body, headers)
    request = urllib.request.Request(  # noqa: S310 - the URL is the API under test
        url, data=body or None, method=method, headers=signed
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return Reply(status, parsed)


def check_health(reply: Reply) -> Check:
    ok = reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("status") == "ok"
    return Check("GET /health", ok, f"HTTP {reply.status}" + ("" if ok else ", not serving"))


def check_prediction(reply: Reply) -> Check:
    predictions = reply.body.get("predictions") if isinstance(reply.body, dict) else None
    ok = (
        reply.status == 200
        and isinstance(predictions, list)
        and len(predictions) == 1
        and isinstance(predictions[0], dict)
        and _probability(predictions[0].get("probability"))
        and predictions[0].get("risk_band") in RISK_BANDS
    )
    detail = f"HTTP {reply.status}" + ("" if ok else ", no valid prediction")
    return Check("POST /predict", ok, detail)


def _probability(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def run(api_url: str, sign: Sign) -> list[Check]:
    """Both checks against ``api_url`` (the stage's invoke URL); a transport error fails one."""
    base = api_url.rstrip("/")
    checks = []
    for name, method, path, payload, judge in (
        ("GET /health", "GET", "/health", None, check_health),
        ("POST /predict", "POST", "/predict", SMOKE_ENCOUNTER, check_prediction),
    ):
        try:
            checks.append(judge(call(sign, method, base + path, payload)))
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            checks.append(Check(name, False, f"unreachable ({type(error).__name__})"))
    return checks


def main(argv: Sequence[str] | None = None, sign: Sign | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True, help="the stage's invoke URL")
    parser.add_argument("--region", required=True, help="the API's region (for SigV4)")
    args = parser.parse_args(argv)
    checks = run(args.api_url, sign or sigv4_signer(args.region))
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'} {check.name}: {check.detail}")
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
