"""An in-memory worklist store (the ``worklist.store.WorklistStore`` protocol) and a demo-shaped
day to fill it with, for the data API's tests, the local gateway's and the browser tests."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence

from contracts.worklist import (
    STATUS_FAILED,
    STATUS_SCORED,
    SUMMARY_SORT_KEY,
    DaySummary,
    Factor,
    WorklistEntry,
)

DAY = "2026-12-02"
EMPTY_DAY = "2026-12-01"
UNITS = ("cardiology", "medicine", "surgery")
CARD_URL = "https://studio.example.org/models/readmission/{version}"


class MemoryWorklistStore:
    """Holds items exactly as stored (``to_item``), so reads go through ``from_item`` too."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, dict]] = {}

    def write_day(self, summary: DaySummary, entries: Sequence[WorklistEntry]) -> None:
        day = {entry.encounter_key: entry.to_item() for entry in entries}
        day[SUMMARY_SORT_KEY] = summary.to_item()
        self.items[summary.day] = copy.deepcopy(day)

    def read_day(self, day: str) -> tuple[DaySummary | None, list[WorklistEntry]]:
        items = self.items.get(day, {})
        summary = items.get(SUMMARY_SORT_KEY)
        entries = [WorklistEntry.from_item(v) for k, v in items.items() if k != SUMMARY_SORT_KEY]
        return (None if summary is None else DaySummary.from_item(summary)), entries

    def read_entry(self, day: str, encounter_key: str) -> WorklistEntry | None:
        item = self.items.get(day, {}).get(encounter_key)
        if item is None or encounter_key == SUMMARY_SORT_KEY:
            return None
        return WorklistEntry.from_item(item)


def key(name: str) -> str:
    """A de-identified 64-hex key, as HMAC-SHA256 gives."""
    return hashlib.sha256(name.encode()).hexdigest()


def band(probability: float) -> str:
    return "high" if probability >= 0.5 else "moderate" if probability >= 0.2 else "low"


def scored(
    n: int, probability: float, unit: str, version: str = "7", day: str = DAY
) -> WorklistEntry:
    return WorklistEntry(
        day=day,
        encounter_key=key(f"encounter-{n}"),
        patient_key=key(f"patient-{n}"),
        unit=unit,
        status=STATUS_SCORED,
        scored_at=f"{day}T02:00:00+00:00",
        probability=probability,
        risk_band=band(probability),
        model_version=version,
        factors=(
            Factor("number_inpatient", "increases_risk", 0.12, "inpatient stays in the past year"),
            Factor("num_medications", "increases_risk", 0.05, "number of medications"),
            Factor("age", "decreases_risk", -0.02, "age group"),
        ),
    )


def failed(n: int, unit: str, reason: str, day: str = DAY) -> WorklistEntry:
    return WorklistEntry(
        day=day,
        encounter_key=key(f"encounter-{n}"),
        patient_key=key(f"patient-{n}"),
        unit=unit,
        status=STATUS_FAILED,
        scored_at=f"{day}T02:00:00+00:00",
        failure_reason=reason,
    )


def demo_day(budget_share: float = 0.2) -> tuple[DaySummary, list[WorklistEntry]]:
    """20 scored discharges over three units (two share a probability), version 7 then 8
    mid-day, and two records the batch job could not score."""
    probabilities = [0.91, 0.74, 0.66, 0.55, 0.55, 0.48, 0.41, 0.37, 0.33, 0.29,
                     0.25, 0.21, 0.18, 0.15, 0.12, 0.1, 0.08, 0.06, 0.05, 0.03]  # fmt: skip
    entries = [
        scored(n, p, UNITS[n % 3], version="7" if n < 12 else "8")
        for n, p in enumerate(probabilities)
    ]
    entries += [failed(100, "medicine", "invalid_record"), failed(101, "surgery", "timeout")]
    summary = DaySummary(
        day=DAY,
        generated_at=f"{DAY}T02:05:00+00:00",
        scored=len(probabilities),
        failed=2,
        budget_share=budget_share,
        model_versions=("7", "8"),
        model_card_urls={v: CARD_URL.format(version=v) for v in ("7", "8")},
    )
    return summary, entries


def empty_day() -> DaySummary:
    return DaySummary(
        day=EMPTY_DAY, generated_at=f"{EMPTY_DAY}T02:00:00+00:00", scored=0, failed=0,
        budget_share=0.2,
    )  # fmt: skip


def demo_store() -> MemoryWorklistStore:
    store = MemoryWorklistStore()
    store.write_day(*demo_day())
    store.write_day(empty_day(), [])
    return store
