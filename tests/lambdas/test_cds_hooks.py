"""The CDS Hooks routes of the prediction function: discovery, the discharge hook, its card,
missing prefetch, replayed and expired tokens. Messages are validated against the CDS Hooks
2.0 JSON schemas (tests/lambdas/cds_hooks_schemas.py)."""

from __future__ import annotations

import copy
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contracts import fhir
from contracts.deidentify import keyed_hash
from lambdas.cds_hooks import cards
from lambdas.cds_hooks.service import PREFETCH
from lambdas.predict import app as predict_app
from lambdas.predict.schema import Factor, Prediction
from local_platform import ehr
from local_platform import ehr_bundle as b
from tests.lambdas.cds_hooks_schemas import DISCOVERY_RESPONSE, HOOK_REQUEST, HOOK_RESPONSE
from tests.lambdas.fake_endpoint import score_record
from tests.lambdas.predict_fixtures import (
    TEST_KEY,
    ApiResult,
    PredictApi,
    api_gateway_event,
    predict_api,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PATIENT, STAY = "MRN-CDS-77310", "ADM-CDS-51209"
SECRET = "SECRET-CDS-9921"
ADMIT = datetime(2025, 11, 2, 7, tzinfo=UTC)
WORKLIST = "https://d111111abcdef8.cloudfront.net/worklist/"


def stay() -> list[dict[str, Any]]:
    end = ADMIT + timedelta(days=6)
    return [
        b.patient(PATIENT, "1938-02-11", "male"),
        b.encounter(STAY, PATIENT, ADMIT, end, disposition="snf"),
        b.encounter("old-1", PATIENT, ADMIT - timedelta(days=40), ADMIT - timedelta(days=33)),
        b.encounter(
            "old-2",
            PATIENT,
            ADMIT - timedelta(days=90),
            ADMIT - timedelta(days=88),
            class_code="EMER",
        ),
        b.condition("c1", PATIENT, STAY, "I50.9", fhir.SYSTEM_ICD10CM),
        b.procedure("x1", PATIENT, STAY, "5A1955Z", fhir.SYSTEM_ICD10PCS),
        b.medication_request("m1", PATIENT, STAY, "Furosemide", ADMIT),
        b.observation("o1", PATIENT, STAY, name="Sodium", effective=ADMIT, abnormal=True),
        b.discharge_summary("d1", PATIENT, STAY, "To skilled nursing.", end),
    ]


def hook_body(resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return ehr.hook_request(resources or stay(), PATIENT, STAY)


def authorized(
    event: dict[str, Any], *, jti: str | None = None, exp: int | None = None
) -> dict[str, Any]:
    """What API Gateway adds after the authorizer allowed the call (values as strings)."""
    event["requestContext"]["authorizer"] = {
        "iss": "https://ehr.example.org",
        "sub": "ehr-client",
        "jti": jti or str(uuid.uuid4()),
        "exp": str(exp or int(time.time()) + 120),
        "principalId": "ehr-client",
    }
    return event


@pytest.fixture(scope="module")
def api() -> Iterator[PredictApi]:
    with predict_api(env={"WORKLIST_PAGE_URL": WORKLIST}) as harness:
        yield harness


@pytest.fixture(autouse=True)
def _fresh(api: PredictApi) -> None:
    api.reset()


def hook(api: PredictApi, body: Any, **auth: Any) -> ApiResult:
    raw = body if isinstance(body, str) else json.dumps(body)
    event = api_gateway_event("POST", "/cds-services/readmission-risk", raw_body=raw)
    return api.invoke(authorized(event, **auth))


def test_discovery_lists_the_discharge_service_with_its_prefetch(api: PredictApi) -> None:
    result = api.invoke(authorized(api_gateway_event("GET", "/cds-services")))
    assert result.status == 200
    Draft202012Validator(DISCOVERY_RESPONSE).validate(result.body)
    (service,) = result.body["services"]
    assert (service["hook"], service["id"]) == ("encounter-discharge", "readmission-risk")
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert service["prefetch"]["encounter"] == "Encounter/{{context.encounterId}}"
    for key in ("conditions", "procedures", "medications", "observations"):
        assert "encounter={{context.encounterId}}" in service["prefetch"][key]


def test_a_discharge_hook_is_scored_on_the_predict_path_and_answered_with_a_card(
    api: PredictApi,
) -> None:
    body = hook_body()
    Draft202012Validator(HOOK_REQUEST).validate(body)
    result = hook(api, body)
    assert result.status == 200, result.raw_body
    Draft202012Validator(
        HOOK_RESPONSE, format_checker=Draft202012Validator.FORMAT_CHECKER
    ).validate(result.body)
    (card,) = result.body["cards"]
    sent = api.fake.received_records()[-1]
    expected = score_record(sent)
    assert sent["patient_key"] == keyed_hash(TEST_KEY, "patient", PATIENT)
    assert sent["encounter_key"] == keyed_hash(TEST_KEY, "encounter", STAY)
    assert sent["prior_admissions_12m"] == 1
    # old-2 (EMER) and old-1, a stay admitted from the ED (contracts.fhir's record rules).
    assert sent["prior_ed_visits_12m"] == 2
    assert sent["discharge_disposition"] == "skilled_nursing"
    assert f"{expected['probability']:.0%}" in card["summary"]
    assert expected["risk_band"].upper() in card["summary"]
    assert card["indicator"] == cards.INDICATORS[expected["risk_band"]]
    assert f"Model version {expected['model_version']}" in card["detail"]
    assert expected["top_factors"][0]["feature"] in card["detail"]
    assert card["links"] == [
        {"label": cards.WORKLIST_LINK_LABEL, "url": WORKLIST, "type": "absolute"}
    ]
    assert PATIENT not in result.raw_body
    assert STAY not in result.raw_body


def test_the_hook_and_fhir_predict_score_the_same_stay_the_same(api: PredictApi) -> None:
    hook(api, hook_body())
    from_hook = api.fake.received_records()[-1]
    event = api_gateway_event(
        "POST",
        "/predict",
        raw_body=json.dumps(b.bundle(stay())),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert api.invoke(event).status == 200
    assert api.fake.received_records()[-1] == from_hook


@pytest.mark.parametrize(
    ("band", "indicator"), [("low", "info"), ("moderate", "warning"), ("high", "critical")]
)
def test_card_indicator_and_summary_follow_the_band(band: str, indicator: str) -> None:
    prediction = Prediction(
        encounter_key=None,
        probability=0.4321,
        risk_band=band,
        model_version="v" * 200,
        top_factors=[Factor(feature="age", direction="increases_risk", contribution=0.2)],
    )
    card = cards.card(prediction, None)
    assert card["indicator"] == indicator
    assert len(card["summary"]) < 140
    assert "43%" in card["summary"]
    assert "links" not in card  # no worklist URL configured
    assert "- age (raises the risk)" in card["detail"]


def test_the_worklist_link_is_left_out_without_a_configured_url() -> None:
    with predict_api(env={"WORKLIST_PAGE_URL": ""}) as plain:
        result = hook(plain, hook_body())
    assert result.status == 200
    assert "links" not in result.body["cards"][0]


@pytest.mark.parametrize("key", sorted(PREFETCH))
def test_missing_prefetch_is_412_naming_nothing_of_the_patient(api: PredictApi, key: str) -> None:
    body = hook_body()
    del body["prefetch"][key]
    result = hook(api, body)
    assert result.status == 412
    assert result.body["error"] == "prefetch_missing"
    assert api.fake.invocations == 0


def test_a_failed_prefetch_sent_as_operation_outcome_is_412(api: PredictApi) -> None:
    body = hook_body()
    body["prefetch"]["conditions"] = {"resourceType": "OperationOutcome", "issue": []}
    assert hook(api, body).status == 412
    body = hook_body()
    body["prefetch"]["patient"] = None
    assert hook(api, body).status == 412


def test_empty_optional_prefetch_is_null_and_scores(api: PredictApi) -> None:
    body = hook_body(stay()[:2])
    assert body["prefetch"]["conditions"] is None
    assert hook(api, body).status == 200


def _bad(change: Any) -> dict[str, Any]:
    body = hook_body()
    change(body)
    return body


BAD_HOOKS = [
    ('{"hook": "encounter-discharge", "hook": "' + SECRET + '"}', 400, "invalid_request"),
    ("{" + SECRET, 400, "invalid_request"),
    (_bad(lambda b_: b_.update(hook="patient-view")), 400, "invalid_request"),
    (_bad(lambda b_: b_["context"].update(patientId=SECRET + "/x")), 400, "invalid_request"),
    (_bad(lambda b_: b_["context"].pop("encounterId")), 400, "invalid_request"),
    (_bad(lambda b_: b_["context"].update(patientId="someone-else")), 422, "context_mismatch"),
    (_bad(lambda b_: b_["context"].update(encounterId="old-2")), 422, "no_inpatient_encounter"),
    (
        _bad(
            lambda b_: b_["prefetch"].update(
                conditions={"resourceType": "Bundle", "type": "searchset", "entry": SECRET}
            )
        ),
        400,
        "malformed_bundle",
    ),
    (
        _bad(
            lambda b_: b_["prefetch"]["conditions"]["entry"][0]["resource"].update(
                encounter={"reference": f"Encounter/{SECRET}"}
            )
        ),
        422,
        "dangling_reference",
    ),
    (
        _bad(
            lambda b_: b_["prefetch"]["conditions"]["entry"][0]["resource"].update(
                code={"coding": [{"system": "http://snomed.info/sct", "code": SECRET}]}
            )
        ),
        422,
        "unknown_code_system",
    ),
    (
        _bad(lambda b_: b_["prefetch"].update(documents={"resourceType": "Claim", "id": SECRET})),
        422,
        "wrong_resource_type",
    ),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_HOOKS)
def test_bad_hook_requests_get_a_fixed_4xx(
    api: PredictApi, body: Any, status: int, code: str
) -> None:
    result = hook(api, body)
    assert result.status == status, result.raw_body
    assert result.body["error"] == code
    assert SECRET not in result.raw_body
    assert PATIENT not in result.raw_body
    assert api.fake.invocations == 0


def test_a_replayed_or_expired_token_is_401_even_when_the_authorizer_answer_is_cached(
    api: PredictApi,
) -> None:
    jti = str(uuid.uuid4())
    assert hook(api, hook_body(), jti=jti).status == 200
    replayed = hook(api, hook_body(), jti=jti)
    assert (replayed.status, replayed.body["error"]) == (401, "unauthorized")
    assert hook(api, hook_body(), exp=int(time.time()) - 5).status == 401
    no_authorizer = api_gateway_event(
        "POST", "/cds-services/readmission-risk", raw_body=json.dumps(hook_body())
    )
    assert api.invoke(no_authorizer).status == 401
    assert api.fake.invocations == 1


def test_the_replay_store_in_aws_is_a_conditional_put(api: PredictApi) -> None:
    import boto3

    from lambdas.cds_hooks.replay import DynamoDbReplayCache

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="replay",
        KeySchema=[{"AttributeName": "jti", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "jti", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    cache = DynamoDbReplayCache(client, "replay")
    assert cache.claim("a", 10**10) is True
    assert cache.claim("a", 10**10) is False
    assert cache.claim("b", 10**10) is True
    item = client.get_item(TableName="replay", Key={"jti": {"S": "a"}})["Item"]
    assert item["expires_at"] == {"N": str(10**10)}


def test_cds_calls_leave_no_identifier_in_the_logs(
    api: PredictApi,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(predict_app.logger._logger, "level", logging.DEBUG)
    stream = io.StringIO()
    monkeypatch.setattr(predict_app.logger.registered_handler, "stream", stream)
    for body, _, _ in BAD_HOOKS:
        hook(api, copy.deepcopy(body))
    hook(api, hook_body())
    logged = stream.getvalue() + caplog.text + "".join(capsys.readouterr())
    assert "cds card served" in logged
    for value in (PATIENT, STAY, SECRET, "Furosemide", "I509", "skilled nursing."):
        assert value not in logged
