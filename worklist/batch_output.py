"""A day's batch-transform output, with the records it scored, as worklist entries and a summary.

Batch Transform writes ``<input file>.out`` with one answer line per input line, in order
(``inference.lines``): a prediction (``contracts.serving``) or ``{"error": ..., "message": ...}``.
:func:`aligned` walks an input file's records and its answers side by side, and
:func:`day_entries` yields one
:class:`~contracts.worklist.WorklistEntry` per record, never dropping one: a record whose answer
is an error, is missing (the output ended early), does not parse or belongs to another
encounter becomes a ``STATUS_FAILED`` entry with the reason as data. :func:`day_summary` counts
them and lists every model version that scored part of the day, in the order they first appear
(two when the model changed mid-day). A day with no records is an empty day with a summary.

Pure and streaming: both take iterables, nothing is held beyond the entry being built.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from contracts import serving
from contracts.serving import (
    DIRECTION_INCREASES,
    ENCOUNTER_KEY,
    FACTOR_CONTRIBUTION,
    FACTOR_DIRECTION,
    FACTOR_FEATURE,
    LINE_ERROR,
    LINE_ERROR_MESSAGE,
    MODEL_VERSION,
    PROBABILITY,
    RISK_BAND,
    RISK_BANDS,
    TOP_FACTORS,
)
from contracts.worklist import (
    STATUS_FAILED,
    STATUS_SCORED,
    DaySummary,
    Factor,
    WorklistEntry,
)

PATIENT_KEY = serving.PATIENT_KEY
#: The record field shown as the unit (the canonical encounter's admitting service).
UNIT_FIELD = "admitting_service"
UNKNOWN_UNIT = "unknown"
#: Key given to a record that has no usable encounter key (``<prefix><position in the day>``).
MISSING_KEY_PREFIX = "missing-key-"

# Failure reasons, as data (the page shows them; none quotes a value of the record).
REASON_NO_ANSWER = "no prediction in the batch output"
REASON_UNREADABLE_ANSWER = "the batch output line is not a prediction"
REASON_OTHER_ENCOUNTER = "the prediction belongs to another encounter"
REASON_UNREADABLE_RECORD = "the input record is not an encounter"
REASON_NO_KEY = "the input record has no encounter key"
REASON_DUPLICATE = "the encounter appears earlier in the day"
REASON_MODEL_PREFIX = "not scored: "

_WORDS = {DIRECTION_INCREASES: "raises the risk"}
_DECREASES_WORDS = "lowers the risk"


class OutputMismatchError(ValueError):
    """The output has more answers than the day has records: the two cannot be aligned."""


def parse_record(line: str | bytes) -> Mapping[str, Any] | None:
    """One input line as a record, ``None`` if it is not a JSON object."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def non_blank(lines: Iterable[str | bytes]) -> Iterator[str | bytes]:
    """Lines with content (blank lines carry no record and get no answer: ``inference.lines``)."""
    return (line for line in lines if line.strip())


def factor_label(feature: str, direction: str) -> str:
    """A factor in plain words: the predictor's own feature text (``contracts.encounter``'s
    readable names, ICD-9 titles) and which way it moves the risk."""
    return f"{feature} ({_WORDS.get(direction, _DECREASES_WORDS)})"


def _factors(raw: Any) -> tuple[Factor, ...]:
    if not isinstance(raw, list):
        raise ValueError("top factors must be a list")
    return tuple(
        Factor(
            feature=str(item[FACTOR_FEATURE]),
            direction=str(item[FACTOR_DIRECTION]),
            contribution=float(item[FACTOR_CONTRIBUTION]),
            label=factor_label(str(item[FACTOR_FEATURE]), str(item[FACTOR_DIRECTION])),
        )
        for item in raw
    )


def _key(record: Mapping[str, Any] | None) -> str | None:
    key = None if record is None else record.get(ENCOUNTER_KEY)
    return key if isinstance(key, str) and key.strip() else None


def _entry(
    day: str,
    position: int,
    record: Mapping[str, Any] | None,
    answer: str | bytes | None,
    scored_at: str,
) -> WorklistEntry:
    key = _key(record)
    base: dict[str, Any] = {
        "day": day,
        ENCOUNTER_KEY: key or f"{MISSING_KEY_PREFIX}{position}",
        PATIENT_KEY: str((record or {}).get(PATIENT_KEY) or ""),
        "unit": str((record or {}).get(UNIT_FIELD) or UNKNOWN_UNIT),
        "scored_at": scored_at,
    }

    def failed(reason: str) -> WorklistEntry:
        return WorklistEntry(**base, status=STATUS_FAILED, failure_reason=reason)

    if record is None:
        return failed(REASON_UNREADABLE_RECORD)
    if key is None:
        return failed(REASON_NO_KEY)
    if answer is None:
        return failed(REASON_NO_ANSWER)
    prediction = parse_record(answer)
    if prediction is None:
        return failed(REASON_UNREADABLE_ANSWER)
    if LINE_ERROR in prediction:
        message = prediction.get(LINE_ERROR_MESSAGE) or prediction[LINE_ERROR]
        return failed(f"{REASON_MODEL_PREFIX}{message}")
    if prediction.get(ENCOUNTER_KEY) != key:
        return failed(REASON_OTHER_ENCOUNTER)
    try:
        probability = float(prediction[PROBABILITY])
        band = prediction[RISK_BAND]
        version = str(prediction[MODEL_VERSION])
        factors = _factors(prediction.get(TOP_FACTORS, []))
    except (KeyError, TypeError, ValueError):
        return failed(REASON_UNREADABLE_ANSWER)
    if not (math.isfinite(probability) and 0.0 <= probability <= 1.0) or band not in RISK_BANDS:
        return failed(REASON_UNREADABLE_ANSWER)
    return WorklistEntry(
        **base,
        status=STATUS_SCORED,
        probability=probability,
        risk_band=band,
        model_version=version,
        factors=factors,
    )


def aligned(
    records: Iterable[Mapping[str, Any] | None], answers: Iterable[str | bytes]
) -> Iterator[tuple[Mapping[str, Any] | None, str | bytes | None]]:
    """Records of one input file beside the answers of its output file, in order; ``None``
    for each record past the output's end (a missing output file: every record)."""
    sentinel = object()
    for record, answer in itertools.zip_longest(records, answers, fillvalue=sentinel):
        if record is sentinel:
            raise OutputMismatchError("the batch output has more lines than its input file")
        yield record, None if answer is sentinel else answer  # type: ignore[misc]


def day_entries(
    day: str,
    pairs: Iterable[tuple[Mapping[str, Any] | None, str | bytes | None]],
    scored_at: str,
) -> Iterator[WorklistEntry]:
    """One entry per (record, answer) pair of the day (see :func:`aligned`), in order.

    A repeated encounter key is kept once, the first time; a later record with the same key
    becomes a failed entry keyed ``<key>#<position>``, so that it is still listed.
    """
    seen: set[str] = set()
    for position, (record, answer) in enumerate(pairs):
        entry = _entry(day, position, record, answer, scored_at)
        if entry.encounter_key in seen:
            entry = WorklistEntry(
                day=day,
                encounter_key=f"{entry.encounter_key}#{position}",
                patient_key=entry.patient_key,
                unit=entry.unit,
                status=STATUS_FAILED,
                scored_at=scored_at,
                failure_reason=REASON_DUPLICATE,
            )
        seen.add(entry.encounter_key)
        yield entry


def day_summary(
    day: str,
    entries: Iterable[WorklistEntry],
    *,
    generated_at: str,
    budget_share: float,
    model_card_urls: Mapping[str, str] | None = None,
) -> DaySummary:
    """Counts, and every model version that scored part of the day in order of appearance."""
    scored = failed = 0
    versions: dict[str, None] = {}
    for entry in entries:
        if entry.status == STATUS_SCORED:
            scored += 1
            versions.setdefault(str(entry.model_version), None)
        else:
            failed += 1
    urls = {v: model_card_urls[v] for v in versions if model_card_urls and v in model_card_urls}
    return DaySummary(day, generated_at, scored, failed, budget_share, tuple(versions), urls)


def build_day(
    day: str,
    files: Iterable[tuple[Iterable[str | bytes], Iterable[str | bytes]]],
    *,
    generated_at: str,
    budget_share: float,
    model_card_urls: Mapping[str, str] | None = None,
) -> tuple[DaySummary, list[WorklistEntry]]:
    """The day from its files: for each input file, its lines and its output file's lines
    (empty when the output is missing). What the batch writer Lambda and the demo both run."""
    pairs = itertools.chain.from_iterable(
        aligned(
            (parse_record(line) for line in non_blank(inputs)),
            non_blank(outputs),
        )
        for inputs, outputs in files
    )
    entries = list(day_entries(day, pairs, generated_at))
    summary = day_summary(
        day,
        entries,
        generated_at=generated_at,
        budget_share=budget_share,
        model_card_urls=model_card_urls,
    )
    return summary, entries
