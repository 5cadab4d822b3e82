"""Realised performance once readmissions are known: rank AUROC and calibration, pure Python.

Labels arrive as JSON Lines ``{"encounter_key": ..., "readmitted_30d": 0|1}`` under
``s3://<capture bucket>/<GROUND_TRUTH_PREFIX>/yyyy/mm/dd/*.jsonl``, partitioned by the UTC day
the encounter was scored. They are joined to a past window's scored encounters by the hashed
encounter key; an unreadable label line is counted and skipped. A label may also carry the
subgroup labels of :data:`contracts.fairness.ATTRIBUTES` (``sex``, ``age_band``, ``race``) for
the fairness check; a value outside the attribute's groups is counted and ignored, the label
itself still counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from contracts.fairness import ATTRIBUTES, GROUPS
from contracts.serving import ENCOUNTER_KEY
from lambdas.drift_monitor.capture import object_lines
from lambdas.drift_monitor.window import TimeWindow

LABEL_FIELD = "readmitted_30d"
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Performance:
    """Realised metrics of a scored window; ``auroc`` is ``None`` when one class is missing."""

    labelled: int
    auroc: float | None
    expected_calibration_error: float
    mean_predicted: float
    observed_rate: float


@dataclass
class LabelStats:
    """What a pass over the labels saw."""

    files: int = 0
    lines: int = 0
    corrupt_lines: int = 0
    matched: int = 0
    #: Subgroup values outside their attribute's groups (ignored; the label still counts).
    invalid_subgroups: int = 0


class LabelRecord(NamedTuple):
    """One readable ground-truth line: the hashed key, the label, any subgroup labels."""

    encounter_key: str
    label: int
    groups: dict[str, str]
    invalid_subgroups: int


def rank_auroc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """AUROC as the Mann-Whitney statistic with tied scores given their average rank.

    Returns ``None`` when the labels hold only one class (AUROC is undefined then).
    """
    if len(scores) != len(labels):
        raise ValueError("scores and labels must have the same length")
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    positive_rank_sum = 0.0
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        average_rank = (start + end) / 2 + 1
        positive_rank_sum += average_rank * sum(labels[i] for i in order[start : end + 1])
        start = end + 1
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def expected_calibration_error(
    scores: Sequence[float], labels: Sequence[int], bins: int = CALIBRATION_BINS
) -> float:
    """ECE over equal-width probability bins: sum of ``n_b / n * |mean score_b - rate_b|``."""
    if len(scores) != len(labels) or not scores:
        raise ValueError("scores and labels must be non-empty and of the same length")
    totals = [0.0] * bins
    positives = [0] * bins
    counts = [0] * bins
    for score, label in zip(scores, labels, strict=True):
        index = min(int(score * bins), bins - 1)
        totals[index] += score
        positives[index] += label
        counts[index] += 1
    error = 0.0
    for total, positive, count in zip(totals, positives, counts, strict=True):
        if count:
            error += count / len(scores) * abs(total / count - positive / count)
    return error


def performance(scores: Sequence[float], labels: Sequence[int]) -> Performance:
    """All realised metrics of matched (score, label) pairs."""
    return Performance(
        labelled=len(scores),
        auroc=rank_auroc(scores, labels),
        expected_calibration_error=expected_calibration_error(scores, labels),
        mean_predicted=math.fsum(scores) / len(scores),
        observed_rate=sum(labels) / len(labels),
    )


def parse_label(line: bytes) -> LabelRecord | None:
    """The label of one ground-truth line, ``None`` when the line is unreadable."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if not isinstance(document, Mapping):
        return None
    key = document.get(ENCOUNTER_KEY)
    label = document.get(LABEL_FIELD)
    if not isinstance(key, str) or isinstance(label, bool) or label not in (0, 1):
        return None
    groups: dict[str, str] = {}
    invalid = 0
    for attribute in ATTRIBUTES:
        value = document.get(attribute)
        if value is None:
            continue
        if isinstance(value, str) and value in GROUPS[attribute]:
            groups[attribute] = value
        else:
            invalid += 1
    return LabelRecord(key, int(label), groups, invalid)


def _label(line: bytes) -> tuple[str, int] | None:
    parsed = parse_label(line)
    return None if parsed is None else (parsed.encounter_key, parsed.label)


def label_object_keys(s3: Any, bucket: str, prefix: str, window: TimeWindow) -> Iterator[str]:
    """Keys of the label files of every day the window touches."""
    paginator = s3.get_paginator("list_objects_v2")
    for day in window.days():
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/{day:%Y/%m/%d}/"):
            yield from (item["Key"] for item in page.get("Contents", []))


def join_labels(
    scored: Mapping[str, float], label_lines: Iterable[bytes], stats: LabelStats
) -> tuple[list[float], list[int]]:
    """Match label lines to scored encounter keys; each scored encounter is used once."""
    scores: list[float] = []
    labels: list[int] = []
    seen: set[str] = set()
    for line in label_lines:
        if not line.strip():
            continue
        stats.lines += 1
        parsed = _label(line)
        if parsed is None:
            stats.corrupt_lines += 1
            continue
        key, label = parsed
        if key in scored and key not in seen:
            seen.add(key)
            scores.append(scored[key])
            labels.append(label)
    stats.matched = len(scores)
    return scores, labels


def read_labels(
    s3: Any, bucket: str, prefix: str, window: TimeWindow, stats: LabelStats
) -> Iterator[bytes]:
    """Stream the lines of every label file of the window's days."""
    for key in label_object_keys(s3, bucket, prefix, window):
        stats.files += 1
        yield from object_lines(s3, bucket, key)
