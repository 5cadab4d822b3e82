"""Realised performance per subgroup and the gaps between subgroups, pure Python.

Input: one :class:`Outcome` per labelled encounter (its score, its label, whether the model
alerted on it, and its subgroup per attribute). Output: per attribute and group a
:class:`GroupMetrics`, and per attribute and metric a :class:`Gap`.

The gap is the largest value minus the smallest across the groups that meet both minimums
(patients and readmissions), ``unknown`` excluded. Max minus min rather than each group
against the rest: it is the difference between two real groups of patients (the worst-served
and the best-served), it does not shrink as a large group dominates "the rest", and a bound
on it reads the same for two groups or six. It is published only when two or more groups
qualify: below the minimums a difference is mostly noise (contracts/fairness.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from contracts.encounter import SEX_CATEGORIES, UNKNOWN
from contracts.fairness import (
    ATTRIBUTE_AGE_BAND,
    ATTRIBUTE_SEX,
    GAP_ALERT_RATE,
    GAP_AUROC,
    GAP_CALIBRATION,
    age_band,
)
from contracts.serving import RISK_BANDS, risk_band
from lambdas.drift_monitor.capture import ScoredRecord
from lambdas.drift_monitor.ground_truth import (
    LabelStats,
    expected_calibration_error,
    parse_label,
    rank_auroc,
)

#: The band the endpoint answers at or above the model's decision threshold: an alert.
ALERT_BAND = risk_band(1.0, 1.0)


class Outcome(NamedTuple):
    """One scored encounter whose outcome is known; ``alert`` is ``None`` when the captured
    response did not say (no risk band)."""

    probability: float
    label: int
    alert: bool | None
    groups: Mapping[str, str]


class ScoredEncounter(NamedTuple):
    """What the capture says of one encounter: its score, whether it alerted, its groups."""

    probability: float
    alert: bool | None
    groups: Mapping[str, str]


def capture_groups(record: Mapping[str, object]) -> dict[str, str]:
    """Sex and age band of a captured request (both are model inputs)."""
    groups: dict[str, str] = {}
    sex = record.get("sex")
    if isinstance(sex, str) and sex in SEX_CATEGORIES:
        groups[ATTRIBUTE_SEX] = sex
    band = age_band(record.get("age_years"))
    if band is not None:
        groups[ATTRIBUTE_AGE_BAND] = band
    return groups


def scored_encounters(records: Iterable[ScoredRecord]) -> dict[str, ScoredEncounter]:
    """Encounter key -> what was scored, for every validly scored record (the last wins)."""
    scored: dict[str, ScoredEncounter] = {}
    for item in records:
        probability = item.probability
        if (
            item.encounter_key is None
            or probability is None
            or not math.isfinite(probability)
            or not 0.0 <= probability <= 1.0
        ):
            continue
        band = item.risk_band
        alert = (band == ALERT_BAND) if band in RISK_BANDS else None
        scored[item.encounter_key] = ScoredEncounter(
            probability, alert, capture_groups(item.record)
        )
    return scored


def join_outcomes(
    scored: Mapping[str, ScoredEncounter], label_lines: Iterable[bytes], stats: LabelStats
) -> list[Outcome]:
    """Match ground-truth lines to scored encounters (each used once); a subgroup label on
    the ground-truth line wins over the one read from the request."""
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for line in label_lines:
        if not line.strip():
            continue
        stats.lines += 1
        parsed = parse_label(line)
        if parsed is None:
            stats.corrupt_lines += 1
            continue
        stats.invalid_subgroups += parsed.invalid_subgroups
        encounter = scored.get(parsed.encounter_key)
        if encounter is None or parsed.encounter_key in seen:
            continue
        seen.add(parsed.encounter_key)
        groups = {**encounter.groups, **parsed.groups}
        outcomes.append(Outcome(encounter.probability, parsed.label, encounter.alert, groups))
    stats.matched = len(outcomes)
    return outcomes


@dataclass(frozen=True)
class GroupMetrics:
    """Realised metrics of one subgroup; ``None`` where undefined (one class; no alerts)."""

    patients: int
    outcomes: int
    auroc: float | None
    calibration_in_the_large: float
    expected_calibration_error: float
    alert_rate: float | None

    def value(self, metric: str) -> float | None:
        """The value a gap of ``metric`` compares."""
        return {
            GAP_AUROC: self.auroc,
            GAP_CALIBRATION: self.calibration_in_the_large,
            GAP_ALERT_RATE: self.alert_rate,
        }[metric]


@dataclass(frozen=True)
class FairnessBounds:
    """The largest gap tolerated per metric, and who counts in a comparison."""

    auroc_gap: float
    calibration_gap: float
    alert_rate_gap: float
    min_patients: int
    min_outcomes: int

    def bound(self, metric: str) -> float:
        return {
            GAP_AUROC: self.auroc_gap,
            GAP_CALIBRATION: self.calibration_gap,
            GAP_ALERT_RATE: self.alert_rate_gap,
        }[metric]

    def qualifies(self, group: str, metrics: GroupMetrics) -> bool:
        """Whether a group is compared: known, enough patients, readmissions and non-
        readmissions (an AUROC needs both classes)."""
        return (
            group != UNKNOWN
            and metrics.patients >= self.min_patients
            and metrics.outcomes >= self.min_outcomes
            and metrics.patients - metrics.outcomes >= self.min_outcomes
        )


@dataclass(frozen=True)
class Gap:
    """Max minus min of one metric across the qualifying groups of one attribute."""

    attribute: str
    metric: str
    value: float
    bound: float
    highest: str
    lowest: str
    groups: tuple[str, ...]

    @property
    def exceeded(self) -> bool:
        """What the alarm evaluates: the gap is above its bound."""
        return self.value > self.bound


@dataclass
class FairnessResult:
    """Per-attribute, per-group metrics and the gaps that could be computed."""

    subgroups: dict[str, dict[str, GroupMetrics]] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    compared: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def exceeded(self) -> list[Gap]:
        return [gap for gap in self.gaps if gap.exceeded]


def group_metrics(outcomes: Sequence[Outcome]) -> GroupMetrics:
    """Every realised metric of one non-empty group."""
    if not outcomes:
        raise ValueError("a group needs at least one outcome")
    scores = [o.probability for o in outcomes]
    labels = [o.label for o in outcomes]
    alerts = [o.alert for o in outcomes if o.alert is not None]
    positives = sum(labels)
    return GroupMetrics(
        patients=len(outcomes),
        outcomes=positives,
        auroc=rank_auroc(scores, labels),
        calibration_in_the_large=positives / len(labels) - math.fsum(scores) / len(scores),
        expected_calibration_error=expected_calibration_error(scores, labels),
        alert_rate=sum(alerts) / len(alerts) if alerts else None,
    )


def by_subgroup(outcomes: Iterable[Outcome]) -> dict[str, dict[str, GroupMetrics]]:
    """attribute -> group -> metrics, for every group at least one outcome falls in."""
    members: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for outcome in outcomes:
        for attribute, group in outcome.groups.items():
            members[attribute][group].append(outcome)
    return {
        attribute: {group: group_metrics(items) for group, items in sorted(groups.items())}
        for attribute, groups in sorted(members.items())
    }


def gaps(
    subgroups: Mapping[str, Mapping[str, GroupMetrics]], bounds: FairnessBounds
) -> tuple[list[Gap], dict[str, tuple[str, ...]]]:
    """The gaps of every attribute with two or more qualifying groups, and those groups."""
    found: list[Gap] = []
    compared: dict[str, tuple[str, ...]] = {}
    for attribute, groups in subgroups.items():
        qualifying = {g: m for g, m in groups.items() if bounds.qualifies(g, m)}
        compared[attribute] = tuple(sorted(qualifying))
        if len(qualifying) < 2:
            continue
        for metric in (GAP_AUROC, GAP_CALIBRATION, GAP_ALERT_RATE):
            values = {g: v for g, m in qualifying.items() if (v := m.value(metric)) is not None}
            if len(values) < 2:
                continue
            highest = max(values, key=lambda g: (values[g], g))
            lowest = min(values, key=lambda g: (values[g], g))
            found.append(
                Gap(
                    attribute=attribute,
                    metric=metric,
                    value=values[highest] - values[lowest],
                    bound=bounds.bound(metric),
                    highest=highest,
                    lowest=lowest,
                    groups=tuple(sorted(values)),
                )
            )
    return found, compared


def assess(outcomes: Iterable[Outcome], bounds: FairnessBounds) -> FairnessResult:
    """Subgroup metrics and gaps of a window's outcomes."""
    subgroups = by_subgroup(outcomes)
    found, compared = gaps(subgroups, bounds)
    return FairnessResult(subgroups=subgroups, gaps=found, compared=compared)
