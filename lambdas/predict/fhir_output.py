"""FHIR R4 resources the API answers with: ``RiskAssessment`` and ``OperationOutcome``.

RiskAssessment (http://hl7.org/fhir/R4/riskassessment.html): ``status`` final, ``subject``
and ``encounter`` exactly as the request referenced them, ``occurrenceDateTime`` when scored,
``method`` the model (its version in ``coding.version``), one ``prediction`` with
``probabilityDecimal``, the band as ``qualitativeRisk`` in HL7's risk-probability code system
(http://terminology.hl7.org/CodeSystem/risk-probability: ``low``, ``moderate``, ``high`` are
codes of it, so no platform code system is needed), ``whenRange`` up to 30 days, and the top
factors in plain words as ``rationale`` and as a ``note``.

OperationOutcome (http://hl7.org/fhir/R4/operationoutcome.html): one issue with a fixed
``code`` (IssueType), the platform's reason code in ``details.coding``, fixed ``diagnostics``
quoting only the request id, and ``expression`` naming the element at fault by its FHIR path
(built from the mapping's own vocabulary, never a value sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from contracts.encounter import READMISSION_WINDOW_DAYS
from contracts.serving import DIRECTION_INCREASES
from lambdas.predict.schema import Factor, Prediction

#: The platform's code systems (URLs under the project's namespace; not resolvable, as FHIR
#: allows for a code system URI).
PLATFORM_SYSTEM_ROOT = "https://readmission-platform.example.org/fhir/CodeSystem"
MODEL_SYSTEM = f"{PLATFORM_SYSTEM_ROOT}/model"
MODEL_CODE = "readmission-30d"
MODEL_DISPLAY = "30-day readmission risk model"
ERROR_SYSTEM = f"{PLATFORM_SYSTEM_ROOT}/error"
RISK_PROBABILITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
OUTCOME_TEXT = f"Unplanned readmission within {READMISSION_WINDOW_DAYS} days of discharge"
UCUM = "http://unitsofmeasure.org"

#: IssueType (http://hl7.org/fhir/R4/valueset-issue-type.html) of each status's outcome.
_ISSUE_TYPES = {
    HTTPStatus.BAD_REQUEST: "structure",
    HTTPStatus.NOT_FOUND: "not-found",
    HTTPStatus.METHOD_NOT_ALLOWED: "not-supported",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too-costly",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "not-supported",
    HTTPStatus.UNPROCESSABLE_ENTITY: "processing",
    HTTPStatus.TOO_MANY_REQUESTS: "throttled",
    HTTPStatus.SERVICE_UNAVAILABLE: "transient",
}
_DIAGNOSTICS = {
    HTTPStatus.BAD_REQUEST: "The request is not a readable FHIR Bundle.",
    HTTPStatus.NOT_FOUND: "No such resource.",
    HTTPStatus.METHOD_NOT_ALLOWED: "Method not allowed on this resource.",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "The request body is over the size limit.",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "Send UTF-8 application/fhir+json or application/json.",
    HTTPStatus.UNPROCESSABLE_ENTITY: "The Bundle does not describe a stay that can be scored.",
    HTTPStatus.TOO_MANY_REQUESTS: "Throttled: retry after Retry-After seconds.",
    HTTPStatus.SERVICE_UNAVAILABLE: "Scoring is unavailable: retry after Retry-After seconds.",
}
_SERVER_ERROR = "Internal error."


def iso_now(now: datetime | None = None) -> str:
    """An instant as FHIR writes it (UTC, seconds)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def factor_phrase(factor: Factor) -> str:
    """One factor in plain words, e.g. ``age = 81 (raises the risk)``."""
    effect = "raises the risk" if factor.direction == DIRECTION_INCREASES else "lowers the risk"
    return f"{factor.feature} ({effect})"


def factors_text(factors: Sequence[Factor]) -> str:
    """The top factors as one sentence."""
    if not factors:
        return "No single factor stands out."
    return "Top factors: " + "; ".join(factor_phrase(f) for f in factors) + "."


def risk_assessment(
    prediction: Prediction,
    *,
    patient_reference: str,
    encounter_reference: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The RiskAssessment of one prediction (see the module's docstring)."""
    rationale = factors_text(prediction.top_factors)
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "method": {
            "coding": [
                {
                    "system": MODEL_SYSTEM,
                    "version": prediction.model_version,
                    "code": MODEL_CODE,
                    "display": MODEL_DISPLAY,
                }
            ],
            "text": f"{MODEL_DISPLAY}, version {prediction.model_version}",
        },
        "subject": {"reference": patient_reference},
        "encounter": {"reference": encounter_reference},
        "occurrenceDateTime": iso_now(now),
        "prediction": [
            {
                "outcome": {"text": OUTCOME_TEXT},
                "probabilityDecimal": prediction.probability,
                "qualitativeRisk": {
                    "coding": [
                        {
                            "system": RISK_PROBABILITY_SYSTEM,
                            "code": prediction.risk_band,
                            "display": f"{prediction.risk_band.capitalize()} likelihood",
                        }
                    ]
                },
                "whenRange": {
                    "high": {
                        "value": READMISSION_WINDOW_DAYS,
                        "unit": "days",
                        "system": UCUM,
                        "code": "d",
                    }
                },
                "rationale": rationale,
            }
        ],
        "note": [{"text": rationale}],
    }


def operation_outcome(
    status: int, code: str, request_id: str, locations: Sequence[str] = ()
) -> dict[str, Any]:
    """An OperationOutcome with one error issue (see the module's docstring)."""
    issue_type = _ISSUE_TYPES.get(HTTPStatus(status), "exception")
    diagnostics = _DIAGNOSTICS.get(HTTPStatus(status), _SERVER_ERROR)
    issue: dict[str, Any] = {
        "severity": "error" if status < HTTPStatus.INTERNAL_SERVER_ERROR else "fatal",
        "code": issue_type,
        "details": {"coding": [{"system": ERROR_SYSTEM, "code": code}]},
        "diagnostics": f"{diagnostics} Request id {request_id}.",
    }
    if locations:
        issue["expression"] = list(dict.fromkeys(locations))
    return {"resourceType": "OperationOutcome", "issue": [issue]}
