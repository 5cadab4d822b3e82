"""POST /predict with FHIR: a Bundle in, a RiskAssessment out, OperationOutcomes for bad FHIR.

Outputs are validated with the ``fhir.resources`` models. The package has R5 and R4B models
(no R4); RiskAssessment and OperationOutcome are the same in R4 and R4B for every element used
here (http://hl7.org/fhir/R4B/diff.html lists no change to either).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment

from contracts import fhir
from contracts.deidentify import keyed_hash
from contracts.serving import MAX_BODY_BYTES
from lambdas.predict import app as predict_app
from local_platform import ehr_bundle as b
from tests.lambdas.predict_fixtures import (
    TEST_KEY,
    ApiResult,
    PredictApi,
    api_gateway_event,
    predict_api,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

FHIR = "application/fhir+json"
ADMIT = datetime(2021, 3, 1, 8, tzinfo=UTC)
PATIENT = "MRN-FHIR-55120"
STAY = "ADM-FHIR-88231"
SECRET = "SECRET-PLANTED-4471"


def resources() -> list[dict[str, Any]]:
    end = ADMIT + timedelta(days=3)
    return [
        b.patient(PATIENT, "1944-06-30", "female"),
        b.encounter(STAY, PATIENT, ADMIT, end, service="General Medicine"),
        b.encounter("prior-1", PATIENT, ADMIT - timedelta(days=60), ADMIT - timedelta(days=55)),
        b.condition("c1", PATIENT, STAY, "I50.9", fhir.SYSTEM_ICD10CM),
        b.medication_request("m1", PATIENT, STAY, "Furosemide", ADMIT),
        b.discharge_summary("d1", PATIENT, STAY, "Home with services.", end),
    ]


@pytest.fixture(scope="module")
def api() -> Iterator[PredictApi]:
    with predict_api() as harness:
        yield harness


@pytest.fixture(autouse=True)
def _fresh(api: PredictApi) -> None:
    api.reset()


def post(api: PredictApi, body: Any, *, accept: str | None = None, **kwargs: Any) -> ApiResult:
    headers: dict[str, str | None] = {"Content-Type": FHIR, "Accept": accept}
    headers.update(kwargs.pop("headers", {}))
    raw = body if isinstance(body, str) else json.dumps(body)
    return api.invoke(api_gateway_event("POST", "/predict", raw_body=raw, headers=headers))


def test_a_bundle_is_scored_as_its_record_and_answered_with_a_risk_assessment(
    api: PredictApi,
) -> None:
    result = post(api, b.bundle(resources()), accept=FHIR)
    assert result.status == 200, result.raw_body
    assert result.headers["content-type"] == FHIR
    assessment = RiskAssessment.model_validate(result.body)  # a valid FHIR resource
    assert assessment.status == "final"
    assert result.body["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert result.body["encounter"] == {"reference": f"Encounter/{STAY}"}
    prediction = result.body["prediction"][0]
    sent = api.fake.received[-1]["instances"][0]
    expected = predict_app_score(api, sent)
    assert prediction["probabilityDecimal"] == expected["probability"]
    assert prediction["qualitativeRisk"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/risk-probability",
        "code": expected["risk_band"],
        "display": expected["risk_band"].capitalize() + " likelihood",
    }
    assert result.body["method"]["coding"][0]["version"] == expected["model_version"]
    assert "raises the risk" in prediction["rationale"] or "lowers" in prediction["rationale"]
    # De-identified as any request: the endpoint saw keyed hashes, never the FHIR ids.
    assert sent["patient_key"] == keyed_hash(TEST_KEY, "patient", PATIENT)
    assert sent["encounter_key"] == keyed_hash(TEST_KEY, "encounter", STAY)
    assert PATIENT not in json.dumps(api.fake.received)
    assert sent["prior_admissions_12m"] == 1
    assert sent["diagnosis_codes"] == ["icd10cm:I509"]


def predict_app_score(api: PredictApi, record: dict[str, Any]) -> dict[str, Any]:
    from tests.lambdas.fake_endpoint import score_record

    return score_record(record)


def test_the_same_stay_as_json_and_as_fhir_scores_the_same(api: PredictApi) -> None:
    from fhir_mapping import map_bundle

    record = map_bundle(b.bundle(resources())).record
    plain = api.predict(record)
    as_fhir = post(api, b.bundle(resources()), accept="application/json")
    assert plain.status == as_fhir.status == 200
    assert as_fhir.headers["content-type"].startswith("application/json")
    assert as_fhir.body["predictions"] == plain.body["predictions"]


@pytest.mark.parametrize(
    ("accept", "fhir_answer"),
    [
        (None, True),
        ("*/*", True),
        (FHIR, True),
        ("application/json", False),
        ("application/json, application/fhir+json;q=0.5", False),
        ("application/json;q=0.2, application/fhir+json", True),
        ("text/html", True),
    ],
)
def test_accept_chooses_the_answer(api: PredictApi, accept: str | None, fhir_answer: bool) -> None:
    result = post(api, b.bundle(resources()), accept=accept)
    assert result.status == 200
    assert (
        (result.body["resourceType"] == "RiskAssessment")
        if fhir_answer
        else ("predictions" in result.body)
    )


def _damaged(index: int, **changes: Any) -> dict[str, Any]:
    items = resources()
    items[index] = {**items[index], **changes}
    return b.bundle(items)


BAD_BUNDLES = [
    (f'{{"resourceType": "Bundle", "id": "{SECRET}"', 400, "malformed_bundle"),
    (
        f'{{"resourceType": "Bundle", "type": "collection", "id": "{SECRET}", "id": "x"}}',
        400,
        "malformed_bundle",
    ),
    ({"resourceType": "Bundle", "type": "collection", "entry": SECRET}, 400, "malformed_bundle"),
    ({"resourceType": "Patient", "id": SECRET}, 422, "wrong_resource_type"),
    (b.bundle([*resources(), {"resourceType": "Claim", "id": SECRET}]), 422, "wrong_resource_type"),
    (_damaged(3, encounter={"reference": f"Encounter/{SECRET}"}), 422, "dangling_reference"),
    (
        _damaged(3, code={"coding": [{"system": "urn:oid:" + SECRET, "code": "1"}]}),
        422,
        "unknown_code_system",
    ),
    (b.bundle(resources()[:1]), 422, "no_inpatient_encounter"),
    (
        b.bundle([*resources(), b.encounter("e2", PATIENT, ADMIT, ADMIT + timedelta(days=1))]),
        422,
        "several_index_encounters",
    ),
    (
        _damaged(1, period={"start": "2021-03-01T00:00:00Z", "end": "2023-03-01T00:00:00Z"}),
        422,
        "out_of_contract",
    ),
    (_damaged(0, birthDate=SECRET), 422, "invalid_element"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_BUNDLES)
def test_bad_fhir_is_an_operation_outcome_with_a_fixed_body(
    api: PredictApi, body: Any, status: int, code: str
) -> None:
    result = post(api, body)
    assert result.status == status, result.raw_body
    assert result.headers["content-type"] == FHIR
    OperationOutcome.model_validate(result.body)
    issue = result.body["issue"][0]
    assert issue["details"]["coding"][0]["code"] == code
    assert SECRET not in result.raw_body
    assert PATIENT not in result.raw_body
    assert api.fake.invocations == 0


def test_over_the_body_limit_is_413_and_other_media_types_415(api: PredictApi) -> None:
    huge = b.bundle(resources())
    huge["entry"][0]["resource"]["text"] = {"div": "x" * MAX_BODY_BYTES}
    result = post(api, huge)
    assert result.status == 413
    assert result.body["resourceType"] == "OperationOutcome"
    odd = post(api, b.bundle(resources()), headers={"Content-Type": "application/xml"}, accept=FHIR)
    assert odd.status == 415
    assert odd.body["issue"][0]["code"] == "not-supported"
    latin = post(
        api,
        b.bundle(resources()),
        headers={"Content-Type": "application/fhir+json; charset=latin1"},
    )
    assert latin.status == 415


def test_fhir_version_parameter_is_accepted(api: PredictApi) -> None:
    result = post(
        api,
        b.bundle(resources()),
        headers={"Content-Type": "application/fhir+json; fhirVersion=4.0"},
    )
    assert result.status == 200


def test_fhir_requests_leave_no_identifier_in_the_logs(
    api: PredictApi,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(predict_app.logger._logger, "level", logging.DEBUG)
    stream = io.StringIO()
    monkeypatch.setattr(predict_app.logger.registered_handler, "stream", stream)
    for body, _, _ in BAD_BUNDLES:
        post(api, body)
    post(api, b.bundle(resources()))
    logged = stream.getvalue() + caplog.text + "".join(capsys.readouterr())
    assert "request failed" in logged  # the logs were captured
    for value in (PATIENT, STAY, SECRET, "Furosemide", "furosemide", "I509", "Home with"):
        assert value not in logged


def _json_values() -> Any:
    from hypothesis import strategies as st

    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )


def test_damaged_bundles_are_answered_2xx_or_a_fixed_4xx_never_5xx(api: PredictApi) -> None:
    """Any element of a valid Bundle replaced by arbitrary JSON (NaN and huge numbers
    included): a RiskAssessment or an OperationOutcome 400/422, nothing else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = b.bundle(resources())

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        document = json.loads(json.dumps(base))
        slots: list[tuple[Any, Any]] = []

        def walk(node: Any) -> None:
            for key, value in node.items() if isinstance(node, dict) else enumerate(node):
                slots.append((node, key))
                if isinstance(value, dict | list):
                    walk(value)

        walk(document)
        parent, key = data.draw(st.sampled_from(slots))
        parent[key] = data.draw(_json_values())
        result = post(api, json.dumps(document), accept=FHIR)
        assert result.status in (200, 400, 422), result.raw_body
        kind = "RiskAssessment" if result.status == 200 else "OperationOutcome"
        assert result.body["resourceType"] == kind

    check()
