"""Batch-transform output to worklist entries: nothing dropped, failures listed with reasons."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from contracts.worklist import STATUS_FAILED, STATUS_SCORED
from worklist.batch_output import (
    MISSING_KEY_PREFIX,
    REASON_DUPLICATE,
    REASON_NO_ANSWER,
    REASON_NO_KEY,
    REASON_OTHER_ENCOUNTER,
    REASON_UNREADABLE_ANSWER,
    REASON_UNREADABLE_RECORD,
    OutputMismatchError,
    aligned,
    day_entries,
    day_summary,
    factor_label,
    non_blank,
    parse_record,
)

DAY = "2026-12-02"
AT = "2026-12-03T02:00:00+00:00"


def record(n: int, unit: str | None = "cardiology") -> dict[str, Any]:
    row: dict[str, Any] = {
        "encounter_key": f"e{n:03d}",
        "patient_key": f"p{n:03d}",
        "age_years": 70,
    }
    if unit is not None:
        row["admitting_service"] = unit
    return row


def prediction(n: int, version: str = "4", probability: float = 0.3) -> str:
    return json.dumps(
        {
            "encounter_key": f"e{n:03d}",
            "probability": probability,
            "risk_band": "moderate",
            "model_version": version,
            "top_factors": [
                {"feature": "age = 70", "direction": "increases_risk", "contribution": 0.2},
                {
                    "feature": "diagnosis 4280 (Congestive heart failure, unspecified)",
                    "direction": "decreases_risk",
                    "contribution": -0.1,
                },
            ],
        }
    )


def entries(records: list[Any], answers: list[str]) -> list[Any]:
    return list(day_entries(DAY, aligned(records, answers), AT))


def test_scored_records_carry_probability_band_version_and_plain_word_factors() -> None:
    (entry,) = entries([record(1)], [prediction(1)])
    assert entry.status == STATUS_SCORED
    assert (entry.probability, entry.risk_band, entry.model_version) == (0.3, "moderate", "4")
    assert (entry.encounter_key, entry.patient_key, entry.unit) == ("e001", "p001", "cardiology")
    assert [f.label for f in entry.factors] == [
        "age = 70 (raises the risk)",
        "diagnosis 4280 (Congestive heart failure, unspecified) (lowers the risk)",
    ]


def test_failed_records_are_listed_with_their_reason_never_dropped() -> None:
    error = json.dumps(
        {"error": "invalid_request", "message": "field 'instances.1.age_years': is required"}
    )
    records = [record(0), record(1), record(2), record(3), record(4)]
    answers = [
        prediction(0),
        error,
        "{garbage",
        prediction(9),
        json.dumps({"encounter_key": "e004"}),
    ]
    result = entries(records, answers)
    assert [e.status for e in result] == [STATUS_SCORED] + [STATUS_FAILED] * 4
    assert [e.failure_reason for e in result[1:]] == [
        "not scored: field 'instances.1.age_years': is required",
        REASON_UNREADABLE_ANSWER,
        REASON_OTHER_ENCOUNTER,
        REASON_UNREADABLE_ANSWER,
    ]
    assert [e.encounter_key for e in result] == ["e000", "e001", "e002", "e003", "e004"]


def test_records_past_the_end_of_the_output_are_failed() -> None:
    result = entries([record(0), record(1), record(2)], [prediction(0)])
    assert [e.failure_reason for e in result] == [None, REASON_NO_ANSWER, REASON_NO_ANSWER]


def test_more_answers_than_records_cannot_be_aligned() -> None:
    with pytest.raises(OutputMismatchError):
        entries([record(0)], [prediction(0), prediction(1)])


@pytest.mark.parametrize(
    "probability", [float("nan"), -0.1, 1.5, "high"], ids=["nan", "negative", "over", "text"]
)
def test_impossible_probabilities_are_failures(probability: Any) -> None:
    answer = json.loads(prediction(0))
    answer["probability"] = probability
    (entry,) = entries([record(0)], [json.dumps(answer)])
    assert entry.failure_reason == REASON_UNREADABLE_ANSWER


def test_unreadable_and_keyless_records_get_placeholder_keys() -> None:
    keyless = record(1)
    del keyless["encounter_key"]
    result = entries(
        [None, keyless, record(2, unit=None)], [prediction(0), prediction(1), prediction(2)]
    )
    assert [e.encounter_key for e in result] == [
        f"{MISSING_KEY_PREFIX}0",
        f"{MISSING_KEY_PREFIX}1",
        "e002",
    ]
    assert [e.failure_reason for e in result[:2]] == [REASON_UNREADABLE_RECORD, REASON_NO_KEY]
    assert result[2].unit == "unknown"


def test_a_repeated_encounter_is_listed_once_scored_and_once_failed() -> None:
    result = entries([record(1), record(1)], [prediction(1), prediction(1)])
    assert [e.status for e in result] == [STATUS_SCORED, STATUS_FAILED]
    assert result[1].failure_reason == REASON_DUPLICATE
    assert len({e.encounter_key for e in result}) == 2


def test_a_model_change_mid_day_is_recorded_in_order_of_appearance() -> None:
    records = [record(n) for n in range(5)]
    answers = [
        prediction(0, "7"),
        prediction(1, "7"),
        prediction(2, "8"),
        prediction(3, "7"),
        prediction(4, "8"),
    ]
    summary = day_summary(
        DAY,
        entries(records, answers),
        generated_at=AT,
        budget_share=0.1,
        model_card_urls={"7": "https://cards/7", "8": "https://cards/8", "9": "https://cards/9"},
    )
    assert summary.model_versions == ("7", "8")
    assert summary.model_card_urls == {"7": "https://cards/7", "8": "https://cards/8"}
    assert (summary.scored, summary.failed) == (5, 0)


def test_an_empty_day_is_a_summary_with_no_entries() -> None:
    result = entries([], [])
    summary = day_summary(DAY, result, generated_at=AT, budget_share=0.2)
    assert result == []
    assert (summary.scored, summary.failed, summary.model_versions) == (0, 0, ())


def test_counts_add_up() -> None:
    records = [record(n) for n in range(4)]
    summary = day_summary(
        DAY,
        entries(records, [prediction(0), "{", prediction(2)]),
        generated_at=AT,
        budget_share=0.1,
    )
    assert (summary.scored, summary.failed) == (2, 2)


def test_helpers() -> None:
    assert list(non_blank(["a", "", "  ", "b"])) == ["a", "b"]
    assert parse_record("[1]") is None
    assert parse_record("{") is None
    assert factor_label("age = 3", "increases_risk") == "age = 3 (raises the risk)"


def test_files_are_aligned_one_by_one_and_keys_stay_unique_across_them() -> None:
    first = aligned([record(0), None], [prediction(0)])
    second = aligned([None, record(1)], [])  # its output file is missing
    result = list(day_entries(DAY, itertools.chain(first, second), AT))
    assert [e.encounter_key for e in result] == ["e000", "missing-key-1", "missing-key-2", "e001"]
    assert result[3].failure_reason == REASON_NO_ANSWER
