"""The worklist data API: ranking, the budget line, filters, unscored entries, access by group,
and fixed 4xx bodies that never echo what was sent."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from contracts.worklist import (
    JSON_BUDGET,
    JSON_BUDGET_CAPACITY,
    JSON_BUDGET_SHARE,
    JSON_ENTRIES,
    JSON_MODEL_CARD_URL,
    JSON_MODEL_VERSIONS,
    JSON_RANK,
    JSON_UNSCORED,
    JSON_WITHIN_BUDGET,
    DaySummary,
)
from lambdas.worklist_api import app as api
from lambdas.worklist_api.access import groups_of
from lambdas.worklist_api.ranking import capacity
from lambdas.worklist_api.settings import Settings
from tests.lambdas.worklist_fixtures import (
    DAY,
    EMPTY_DAY,
    MemoryWorklistStore,
    demo_day,
    demo_store,
    failed,
    key,
    scored,
)

ORIGIN = "https://worklist.example.org"
CARE_TEAM = {"sub": "u-1", "cognito:groups": "care-team"}


@pytest.fixture
def store() -> MemoryWorklistStore:
    store = demo_store()
    api.use(Settings(table_name="t", allowed_origin=ORIGIN), store)
    return store


def event(
    path: str,
    query: dict[str, list[str]] | None = None,
    claims: dict[str, Any] | None = CARE_TEAM,
    origin: str | None = ORIGIN,
) -> dict[str, Any]:
    authorizer = {"claims": claims} if claims is not None else None
    headers = {"origin": origin} if origin else {}
    return {
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query,
        "pathParameters": None,
        "requestContext": {"requestId": "req-1", "stage": "v1", "authorizer": authorizer},
        "body": None,
        "isBase64Encoded": False,
    }


def call(lambda_context: Any, *args: Any, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
    response = api.lambda_handler(event(*args, **kwargs), lambda_context)
    headers = dict(response.get("headers") or {})
    headers.update({k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], json.loads(response["body"]), headers


def test_day_is_ranked_by_probability_with_ties_by_encounter_key(store, lambda_context) -> None:
    status, body, headers = call(lambda_context, f"/worklist/days/{DAY}")
    assert status == 200
    entries = body[JSON_ENTRIES]
    assert [e[JSON_RANK] for e in entries] == list(range(1, 21))
    probabilities = [e["probability"] for e in entries]
    assert probabilities == sorted(probabilities, reverse=True)
    tied = [e["encounter_key"] for e in entries if e["probability"] == 0.55]
    assert tied == sorted(tied)
    assert len(tied) == 2
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Cache-Control"] == "no-store"


def test_budget_line_is_where_capacity_ends(store, lambda_context) -> None:
    _, body, _ = call(lambda_context, f"/worklist/days/{DAY}")
    assert body[JSON_BUDGET][JSON_BUDGET_SHARE] == 0.2
    assert body[JSON_BUDGET][JSON_BUDGET_CAPACITY] == 4  # ceil(0.2 * 20 scored)
    flags = [e[JSON_WITHIN_BUDGET] for e in body[JSON_ENTRIES]]
    assert flags == [True] * 4 + [False] * 16


@pytest.mark.parametrize(
    ("share", "scored_count", "expected"),
    [(0.1, 30, 3), (0.1, 31, 4), (0.2, 1, 1), (0.15, 0, 0), (1.0, 7, 7), (0.07, 100, 7)],
)
def test_capacity_is_the_ceiling_of_share_times_scored(share, scored_count, expected) -> None:
    assert capacity(share, scored_count) == expected


def test_entries_carry_band_factors_unit_and_model_version(store, lambda_context) -> None:
    _, body, _ = call(lambda_context, f"/worklist/days/{DAY}")
    top = body[JSON_ENTRIES][0]
    assert top["risk_band"] == "high"
    assert top["unit"] in {"cardiology", "medicine", "surgery"}
    assert top["factors"][0]["label"] == "inpatient stays in the past year"
    assert {e["model_version"] for e in body[JSON_ENTRIES]} == {"7", "8"}
    versions = body[JSON_MODEL_VERSIONS]
    assert [v["version"] for v in versions] == ["7", "8"]
    assert versions[1][JSON_MODEL_CARD_URL].endswith("/8")
    assert "status" not in top
    assert "day" not in top


def test_unscored_entries_are_listed_with_their_reasons(store, lambda_context) -> None:
    _, body, _ = call(lambda_context, f"/worklist/days/{DAY}")
    reasons = sorted(e["failure_reason"] for e in body[JSON_UNSCORED])
    assert reasons == ["invalid_record", "timeout"]
    assert all(JSON_RANK not in e and "probability" not in e for e in body[JSON_UNSCORED])
    assert body[JSON_BUDGET]["failed"] == 2


def test_filters_keep_the_day_rank_and_budget(store, lambda_context) -> None:
    _, whole, _ = call(lambda_context, f"/worklist/days/{DAY}")
    status, body, _ = call(
        lambda_context, f"/worklist/days/{DAY}", {"unit": ["surgery"], "band": ["moderate"]}
    )
    assert status == 200
    expected = [
        (e["encounter_key"], e[JSON_RANK], e[JSON_WITHIN_BUDGET])
        for e in whole[JSON_ENTRIES]
        if e["unit"] == "surgery" and e["risk_band"] == "moderate"
    ]
    assert expected
    assert [
        (e["encounter_key"], e[JSON_RANK], e[JSON_WITHIN_BUDGET]) for e in body[JSON_ENTRIES]
    ] == expected
    assert body[JSON_BUDGET][JSON_BUDGET_CAPACITY] == 4
    assert [e["unit"] for e in body[JSON_UNSCORED]] == ["surgery"]


def test_empty_day_is_200_with_empty_lists(store, lambda_context) -> None:
    status, body, _ = call(lambda_context, f"/worklist/days/{EMPTY_DAY}")
    assert status == 200
    assert body[JSON_ENTRIES] == []
    assert body[JSON_UNSCORED] == []
    assert body[JSON_BUDGET][JSON_BUDGET_CAPACITY] == 0


def test_day_never_scored_is_404_with_a_fixed_body(store, lambda_context) -> None:
    status, body, _ = call(lambda_context, "/worklist/days/2026-11-30")
    assert (status, body["error"]) == (404, "day_not_found")


def test_a_day_with_only_failed_records_lists_them(lambda_context) -> None:
    store = MemoryWorklistStore()
    summary = DaySummary(day=DAY, generated_at="t", scored=0, failed=1, budget_share=0.1)
    store.write_day(summary, [failed(1, "medicine", "invalid_record")])
    api.use(Settings(table_name="t"), store)
    status, body, _ = call(lambda_context, f"/worklist/days/{DAY}")
    assert status == 200
    assert body[JSON_ENTRIES] == []
    assert [e["failure_reason"] for e in body[JSON_UNSCORED]] == ["invalid_record"]


def test_model_version_seen_in_entries_but_not_in_summary_is_listed(lambda_context) -> None:
    store = MemoryWorklistStore()
    summary = DaySummary(day=DAY, generated_at="t", scored=2, failed=0, budget_share=0.5,
                         model_versions=("7",))  # fmt: skip
    store.write_day(summary, [scored(1, 0.4, "medicine", "7"), scored(2, 0.3, "medicine", "9")])
    api.use(Settings(table_name="t"), store)
    _, body, _ = call(lambda_context, f"/worklist/days/{DAY}")
    assert body[JSON_MODEL_VERSIONS] == [
        {"version": "7", JSON_MODEL_CARD_URL: None},
        {"version": "9", JSON_MODEL_CARD_URL: None},
    ]


def test_one_entry_with_its_day_rank(store, lambda_context) -> None:
    _, whole, _ = call(lambda_context, f"/worklist/days/{DAY}")
    fifth = whole[JSON_ENTRIES][4]
    status, body, _ = call(lambda_context, f"/worklist/days/{DAY}/entries/{fifth['encounter_key']}")
    assert status == 200
    assert (body[JSON_RANK], body[JSON_WITHIN_BUDGET]) == (5, False)
    assert body["factors"] == fifth["factors"]
    unscored_key = key("encounter-100")
    status, body, _ = call(lambda_context, f"/worklist/days/{DAY}/entries/{unscored_key}")
    assert status == 200
    assert body["failure_reason"] == "invalid_record"


def test_days_lists_the_scored_days_newest_first(store, lambda_context, monkeypatch) -> None:
    import datetime as dt

    monkeypatch.setattr(api, "today", lambda: dt.date(2026, 12, 3))
    status, body, _ = call(lambda_context, "/worklist/days")
    assert (status, body["days"]) == (200, [DAY, EMPTY_DAY])


SECRET = "ab" * 32


@pytest.mark.parametrize(
    ("path", "query", "status", "code"),
    [
        ("/worklist/days/2026-13-01", None, 400, "invalid_day"),
        ("/worklist/days/yesterday", None, 400, "invalid_day"),
        ("/worklist/days/2026-12-2", None, 400, "invalid_day"),
        (f"/worklist/days/{DAY}/entries/{SECRET[:-2]}ZZ", None, 400, "invalid_encounter_key"),
        (f"/worklist/days/{DAY}/entries/{SECRET}", None, 404, "entry_not_found"),
        (f"/worklist/days/{DAY}", {"band": ["extreme"]}, 400, "invalid_filter"),
        (f"/worklist/days/{DAY}", {"unit": ["<script>"]}, 400, "invalid_filter"),
        (f"/worklist/days/{DAY}", {"unit": ["a", "b"]}, 400, "invalid_filter"),
        (f"/worklist/days/{DAY}", {"patient": [SECRET]}, 400, "invalid_filter"),
        (f"/worklist/{SECRET}", None, 404, "not_found"),
    ],
)
def test_bad_requests_get_fixed_4xx_bodies_and_nothing_echoed(
    store, lambda_context, caplog, capsys, path, query, status, code
) -> None:
    caplog.set_level(logging.DEBUG)
    got, body, _ = call(lambda_context, path, query)
    assert (got, body["error"]) == (status, code)
    assert set(body) == {"error", "request_id"}
    logs = caplog.text + capsys.readouterr().out
    for sent in (SECRET, SECRET[:-2], "<script>", "extreme", "yesterday", "2026-13-01"):
        assert sent not in json.dumps(body)
        assert sent not in logs


def test_user_without_the_care_team_group_gets_403(store, lambda_context) -> None:
    for claims in ({"sub": "u-2"}, {"sub": "u-2", "cognito:groups": "billing,care-team-lead"}):
        status, body, _ = call(lambda_context, f"/worklist/days/{DAY}", claims=claims)
        assert (status, body["error"]) == (403, "forbidden")


def test_request_without_claims_is_401(store, lambda_context) -> None:
    status, body, _ = call(lambda_context, f"/worklist/days/{DAY}", claims=None)
    assert (status, body["error"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        ("care-team", {"care-team"}),
        ("billing,care-team", {"billing", "care-team"}),
        ("[billing care-team]", {"billing", "care-team"}),
        (["care-team"], {"care-team"}),
        ("", set()),
    ],
)
def test_groups_claim_in_every_shape_api_gateway_passes(raw, groups) -> None:
    assert groups_of({"cognito:groups": raw}) == groups


def test_other_origins_get_no_cors_header(store, lambda_context) -> None:
    _, _, headers = call(lambda_context, f"/worklist/days/{DAY}", origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in headers


def test_a_store_failure_is_503_and_a_broken_record_500_without_detail(lambda_context) -> None:
    from botocore.exceptions import EndpointConnectionError

    class Down(MemoryWorklistStore):
        def read_day(self, day: str):  # type: ignore[override]
            raise EndpointConnectionError(endpoint_url="https://dynamodb")

    api.use(Settings(table_name="t"), Down())
    status, body, _ = call(lambda_context, f"/worklist/days/{DAY}")
    assert (status, body["error"]) == (503, "store_unavailable")
    broken = MemoryWorklistStore()
    broken.write_day(*demo_day())
    broken.items[DAY][key("encounter-1")]["probability"] = "not a number"
    api.use(Settings(table_name="t"), broken)
    status, body, _ = call(lambda_context, f"/worklist/days/{DAY}")
    assert (status, body["error"]) == (500, "internal_error")
    assert "not a number" not in json.dumps(body)
