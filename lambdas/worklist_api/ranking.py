"""A day's worklist as the page shows it: ranked, with the budget line, filtered on request.

Pure functions over the contract's records. Ranks and the budget line are computed over every
scored entry of the day before any filter, so a filtered view keeps each patient's place in the
whole day's list (and the team's capacity stays the day's, not the filter's).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from contracts.worklist import (
    JSON_BUDGET,
    JSON_BUDGET_CAPACITY,
    JSON_BUDGET_SHARE,
    JSON_DAY,
    JSON_ENTRIES,
    JSON_GENERATED_AT,
    JSON_MODEL_CARD_URL,
    JSON_MODEL_VERSIONS,
    JSON_RANK,
    JSON_UNSCORED,
    JSON_WITHIN_BUDGET,
    STATUS_SCORED,
    DaySummary,
    WorklistEntry,
)

#: Keys of the answer that contracts.worklist does not name: the filters applied, the units
#: present that day (the page's unit filter), the counts, and a model version's own key.
JSON_FILTERS = "filters"
JSON_UNITS = "units"
JSON_SCORED_COUNT = "scored"
JSON_UNSCORED_COUNT = "failed"
JSON_VERSION = "version"
FILTER_UNIT = "unit"
FILTER_BAND = "band"
#: Record fields that are the record's bookkeeping, not something the page shows.
_HIDDEN_FIELDS = ("day", "status")
#: Fields of an unscored entry that have no value.
_SCORE_FIELDS = ("probability", "risk_band", "model_version", "factors")


@dataclass(frozen=True)
class Filters:
    """The optional filters of ``GET /worklist/days/{day}`` (already validated)."""

    unit: str | None = None
    band: str | None = None

    def keeps(self, entry: WorklistEntry) -> bool:
        return (self.unit is None or entry.unit == self.unit) and (
            self.band is None or entry.risk_band == self.band
        )


def capacity(budget_share: float, scored: int) -> int:
    """How many of ``scored`` patients the team can follow up: ``ceil(share * scored)``.

    The product is rounded to 9 places first so that binary noise (0.1 * 30 = 3.0000000000000004)
    does not add a patient.
    """
    return math.ceil(round(budget_share * scored, 9))


def ranked(entries: Iterable[WorklistEntry]) -> list[WorklistEntry]:
    """Scored entries, highest probability first; ties broken by encounter key."""
    scored = [entry for entry in entries if entry.status == STATUS_SCORED]
    return sorted(scored, key=lambda entry: (-(entry.probability or 0.0), entry.encounter_key))


def entry_json(entry: WorklistEntry, rank: int | None, within_budget: bool) -> dict[str, Any]:
    """One entry as the page reads it: the record's fields plus rank and budget flag."""
    body = {key: value for key, value in asdict(entry).items() if key not in _HIDDEN_FIELDS}
    if rank is None:
        for key in _SCORE_FIELDS:
            body.pop(key, None)
    else:
        body.pop("failure_reason", None)
        body[JSON_RANK] = rank
        body[JSON_WITHIN_BUDGET] = within_budget
    return body


def model_versions(
    summary: DaySummary, entries: Sequence[WorklistEntry]
) -> list[dict[str, str | None]]:
    """Every model version that scored the day (the summary's order, then any other seen)."""
    seen = list(summary.model_versions)
    seen += sorted({e.model_version for e in entries if e.model_version} - set(seen))
    return [
        {JSON_VERSION: version, JSON_MODEL_CARD_URL: summary.model_card_urls.get(version)}
        for version in seen
    ]


def day_json(
    summary: DaySummary, entries: Sequence[WorklistEntry], filters: Filters
) -> dict[str, Any]:
    """The answer of ``GET /worklist/days/{day}``."""
    order = ranked(entries)
    limit = capacity(summary.budget_share, len(order))
    shown = [
        entry_json(entry, rank, rank <= limit)
        for rank, entry in enumerate(order, start=1)
        if filters.keeps(entry)
    ]
    unscored = sorted(
        (entry for entry in entries if entry.status != STATUS_SCORED),
        key=lambda entry: entry.encounter_key,
    )
    return {
        JSON_DAY: summary.day,
        JSON_GENERATED_AT: summary.generated_at,
        JSON_BUDGET: {
            JSON_BUDGET_SHARE: summary.budget_share,
            JSON_BUDGET_CAPACITY: limit,
            JSON_SCORED_COUNT: len(order),
            JSON_UNSCORED_COUNT: len(unscored),
        },
        JSON_MODEL_VERSIONS: model_versions(summary, entries),
        JSON_FILTERS: {FILTER_UNIT: filters.unit, FILTER_BAND: filters.band},
        JSON_UNITS: sorted({entry.unit for entry in entries}),
        JSON_ENTRIES: shown,
        JSON_UNSCORED: [
            entry_json(entry, None, False)
            for entry in unscored
            if filters.unit is None or entry.unit == filters.unit
        ],
    }


def one_entry_json(entry: WorklistEntry, entries: Sequence[WorklistEntry], share: float) -> Any:
    """The answer of ``GET /worklist/days/{day}/entries/{key}``: the entry with its day rank."""
    order = ranked(entries)
    if entry.status != STATUS_SCORED:
        return {JSON_DAY: entry.day, **entry_json(entry, None, False)}
    keys = [other.encounter_key for other in order]
    rank = 1 + keys.index(entry.encounter_key)
    return {JSON_DAY: entry.day, **entry_json(entry, rank, rank <= capacity(share, len(order)))}
