"""The worklist records round-trip through their store form and refuse incomplete entries."""

from __future__ import annotations

import json

import pytest

from contracts.worklist import (
    KEY_EXPIRES_AT,
    STATUS_FAILED,
    STATUS_SCORED,
    SUMMARY_SORT_KEY,
    DaySummary,
    Factor,
    WorklistEntry,
    expires_at,
)


def _scored() -> WorklistEntry:
    return WorklistEntry(
        day="2026-12-02",
        encounter_key="ab" * 32,
        patient_key="cd" * 32,
        unit="medicine",
        status=STATUS_SCORED,
        scored_at="2026-12-03T02:00:00+00:00",
        probability=0.4125,
        risk_band="high",
        model_version="7",
        factors=(
            Factor("prior_admissions_12m", "increases_risk", 0.08, "admissions in 12 months"),
        ),
    )


def test_entry_round_trips_through_a_plain_json_item() -> None:
    entry = _scored()
    item = json.loads(json.dumps(entry.to_item()))
    assert WorklistEntry.from_item(item) == entry
    assert item[KEY_EXPIRES_AT] == expires_at("2026-12-02")


def test_failed_entry_needs_a_reason_and_scored_entry_needs_a_score() -> None:
    with pytest.raises(ValueError, match="failure_reason"):
        WorklistEntry("2026-12-02", "a", "b", "unknown", STATUS_FAILED, "t")
    with pytest.raises(ValueError, match="probability"):
        WorklistEntry("2026-12-02", "a", "b", "unknown", STATUS_SCORED, "t")
    failed = WorklistEntry(
        "2026-12-02", "a", "b", "unknown", STATUS_FAILED, "t", failure_reason="x"
    )
    assert WorklistEntry.from_item(failed.to_item()) == failed


@pytest.mark.parametrize("day", ["2026-2-1", "yesterday", "2026-13-01", ""])
def test_bad_day_keys_are_refused(day: str) -> None:
    with pytest.raises(ValueError, match=r"day|month|Invalid isoformat"):
        WorklistEntry(day, "a", "b", "unknown", STATUS_FAILED, "t", failure_reason="x")


def test_summary_sorts_after_encounter_keys_and_round_trips() -> None:
    assert SUMMARY_SORT_KEY > "f" * 64
    summary = DaySummary("2026-12-02", "t", 10, 1, 0.1, ("6", "7"), {"7": "s3://card"})
    assert DaySummary.from_item(json.loads(json.dumps(summary.to_item()))) == summary
    with pytest.raises(ValueError, match="budget_share"):
        DaySummary("2026-12-02", "t", 0, 0, 0.0)


def test_records_expire_thirty_days_after_their_day() -> None:
    assert expires_at("2026-12-31") - expires_at("2026-12-01") == 30 * 86400
