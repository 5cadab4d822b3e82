"""The care team's worklist: what nightly batch scoring writes and the worklist page reads.

One record per scored (or unscored) discharge of a day, keyed by the day and the de-identified
encounter key, plus one summary record per day. The batch-scoring side writes records through
:func:`WorklistEntry.to_item` / :func:`DaySummary.to_item`; the data API reads them back through
``from_item`` and answers the page in the JSON shape named by the ``JSON_*`` keys below. Only
de-identified keys are stored: the hospital side resolves them to names.

Standard library only, like the rest of ``contracts``: the store is DynamoDB in AWS and a local
file-backed stand-in in the demo, and both hold these items unchanged (numbers as strings where
DynamoDB would need ``Decimal``, so that the item is plain JSON too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from contracts.encounter import PATIENT_KEY

#: Partition key: the discharge day, ``YYYY-MM-DD``.
KEY_DAY = "day"
#: Sort key: the de-identified encounter key, or SUMMARY_SORT_KEY for the day's summary.
KEY_ENTRY = "entry"
#: Sort key of a day's summary record (sorts after every hex encounter key).
SUMMARY_SORT_KEY = "~summary"
#: DynamoDB TTL attribute (epoch seconds): a day's records expire this long after the day.
KEY_EXPIRES_AT = "expires_at"
RETENTION_DAYS = 30

STATUS_SCORED = "scored"
#: A record the batch job could not score: listed with its reason, never dropped.
STATUS_FAILED = "failed"
STATUSES = (STATUS_SCORED, STATUS_FAILED)

# JSON keys of the data API's answers (GET /worklist/days/{day}, .../entries/{encounter_key}).
JSON_DAY = "day"
JSON_ENTRIES = "entries"
JSON_UNSCORED = "unscored"
JSON_BUDGET = "budget"
JSON_BUDGET_SHARE = "share"
JSON_BUDGET_CAPACITY = "capacity"
JSON_MODEL_VERSIONS = "model_versions"
JSON_MODEL_CARD_URL = "model_card_url"
JSON_RANK = "rank"
JSON_WITHIN_BUDGET = "within_budget"
JSON_GENERATED_AT = "generated_at"


def parse_day(value: str) -> dt.date:
    """Return the date of a ``YYYY-MM-DD`` day key; ``ValueError`` for anything else."""
    if len(value) != 10:
        raise ValueError("day must be YYYY-MM-DD")
    return dt.date.fromisoformat(value)


def expires_at(day: str) -> int:
    """Epoch seconds at which a day's records expire (TTL)."""
    end = dt.datetime.combine(parse_day(day), dt.time(), tzinfo=dt.UTC)
    return int((end + dt.timedelta(days=RETENTION_DAYS)).timestamp())


@dataclass(frozen=True)
class Factor:
    """One top factor of a score, as the predictor reports it, with its plain-words label."""

    feature: str
    direction: str
    contribution: float
    label: str

    def to_item(self) -> dict[str, str]:
        return {
            "feature": self.feature,
            "direction": self.direction,
            "contribution": repr(self.contribution),
            "label": self.label,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Factor:
        return cls(
            str(item["feature"]),
            str(item["direction"]),
            float(item["contribution"]),
            str(item["label"]),
        )


@dataclass(frozen=True)
class WorklistEntry:
    """One discharge of the day: its score, or why it has none."""

    day: str
    encounter_key: str
    patient_key: str
    #: The admitting service/unit (the canonical ``admitting_service``), or ``unknown``.
    unit: str
    status: str
    scored_at: str
    probability: float | None = None
    risk_band: str | None = None
    model_version: str | None = None
    factors: tuple[Factor, ...] = ()
    failure_reason: str | None = None

    def __post_init__(self) -> None:
        parse_day(self.day)
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if self.status == STATUS_SCORED and (self.probability is None or self.risk_band is None):
            raise ValueError("a scored entry needs probability and risk_band")
        if self.status == STATUS_FAILED and not self.failure_reason:
            raise ValueError("a failed entry needs failure_reason")

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            KEY_DAY: self.day,
            KEY_ENTRY: self.encounter_key,
            PATIENT_KEY: self.patient_key,
            "unit": self.unit,
            "status": self.status,
            "scored_at": self.scored_at,
            "factors": [factor.to_item() for factor in self.factors],
            KEY_EXPIRES_AT: expires_at(self.day),
        }
        optional = {
            "probability": None if self.probability is None else repr(self.probability),
            "risk_band": self.risk_band,
            "model_version": self.model_version,
            "failure_reason": self.failure_reason,
        }
        item.update({key: value for key, value in optional.items() if value is not None})
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> WorklistEntry:
        probability = item.get("probability")
        return cls(
            day=str(item[KEY_DAY]),
            encounter_key=str(item[KEY_ENTRY]),
            patient_key=str(item[PATIENT_KEY]),
            unit=str(item["unit"]),
            status=str(item["status"]),
            scored_at=str(item["scored_at"]),
            probability=None if probability is None else float(probability),
            risk_band=item.get("risk_band"),
            model_version=item.get("model_version"),
            factors=tuple(Factor.from_item(factor) for factor in item.get("factors", [])),
            failure_reason=item.get("failure_reason"),
        )


@dataclass(frozen=True)
class DaySummary:
    """What the batch run of a day did: counts, model versions used, and the team's budget."""

    day: str
    generated_at: str
    scored: int
    failed: int
    #: Share of the day's discharges the team can follow up (the alert budget).
    budget_share: float
    #: Every model version that scored part of the day (more than one if it changed mid-day).
    model_versions: tuple[str, ...] = ()
    model_card_urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_day(self.day)
        if not 0.0 < self.budget_share <= 1.0:
            raise ValueError("budget_share must be in (0, 1]")

    def to_item(self) -> dict[str, Any]:
        return {
            KEY_DAY: self.day,
            KEY_ENTRY: SUMMARY_SORT_KEY,
            "generated_at": self.generated_at,
            "scored": self.scored,
            "failed": self.failed,
            "budget_share": repr(self.budget_share),
            "model_versions": list(self.model_versions),
            "model_card_urls": dict(self.model_card_urls),
            KEY_EXPIRES_AT: expires_at(self.day),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> DaySummary:
        return cls(
            day=str(item[KEY_DAY]),
            generated_at=str(item["generated_at"]),
            scored=int(item["scored"]),
            failed=int(item["failed"]),
            budget_share=float(item["budget_share"]),
            model_versions=tuple(item.get("model_versions", [])),
            model_card_urls=dict(item.get("model_card_urls", {})),
        )
