"""Compare a shadow candidate with the serving version on captured pairs, and decide.

Pure: no AWS. A *pair* is one encounter both variants scored (the production answer returned to
the caller, the shadow answer captured and discarded). From the pairs and each variant's
latency and error counts, :func:`compare` computes

* score agreement: Pearson and Spearman correlation of the two probabilities;
* risk-band agreement: the share of pairs in the same band (contracts.serving.risk_band, each
  version under its own decision threshold, read from the model metadata in its artifact);
* alert-rate difference: candidate minus serving share of encounters at or above the threshold;
* latency p95 of each variant, and each variant's error count and rate.

:func:`decide` turns a comparison into ``wait`` (too few pairs, or too early), ``promote`` or
``hold`` under the stage's :class:`ShadowBounds`, with every failed bound named as data.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from contracts.serving import risk_band

WAIT = "wait"
PROMOTE = "promote"
HOLD = "hold"


@dataclass(frozen=True)
class Pair:
    """One encounter as both variants scored it (probabilities in [0, 1])."""

    serving: float
    candidate: float


@dataclass(frozen=True)
class VariantLoad:
    """What one variant did over the shadow period (from its CloudWatch metrics)."""

    invocations: int
    errors: int
    latency_p95_ms: float | None

    @property
    def error_rate(self) -> float:
        total = max(self.invocations, self.errors)
        return self.errors / total if total else 0.0


@dataclass(frozen=True)
class ShadowBounds:
    """Stage config: how close the candidate must stay to the serving version to be promoted."""

    min_pearson: float
    min_spearman: float
    min_band_agreement: float
    max_alert_rate_difference: float
    #: Candidate p95 at most this multiple of the serving p95.
    max_latency_p95_ratio: float
    max_error_rate: float


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` found; aggregates only, never an identifier or a record."""

    pairs: int
    pearson: float | None
    spearman: float | None
    band_agreement: float | None
    serving_alert_rate: float | None
    candidate_alert_rate: float | None
    alert_rate_difference: float | None
    serving_latency_p95_ms: float | None
    candidate_latency_p95_ms: float | None
    serving_errors: int
    candidate_errors: int
    serving_error_rate: float
    candidate_error_rate: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Decision:
    """``wait``, ``promote`` or ``hold``, with the bounds that failed (empty unless ``hold``)."""

    verdict: str
    reasons: tuple[str, ...] = field(default_factory=tuple)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (the ranks Spearman's rho correlates)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        average = (start + end) / 2 + 1
        for position in range(start, end + 1):
            result[order[position]] = average
        start = end + 1
    return result


def _correlation(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r; ``None`` when undefined (fewer than two pairs, or a constant side)."""
    if len(xs) < 2:
        return None
    try:
        return statistics.correlation(xs, ys)
    except statistics.StatisticsError:
        return None


def compare(
    pairs: Sequence[Pair],
    serving: VariantLoad,
    candidate: VariantLoad,
    *,
    serving_threshold: float | None,
    candidate_threshold: float | None,
) -> Comparison:
    """Score, band, alert, latency and error agreement of the candidate with the serving one.

    Without thresholds (too few pairs to be worth reading the artifacts) band and alert figures
    are ``None``.
    """
    xs = [p.serving for p in pairs]
    ys = [p.candidate for p in pairs]
    count = len(pairs)
    band_agreement = serving_alerts = candidate_alerts = None
    if count and serving_threshold is not None and candidate_threshold is not None:
        same = sum(
            risk_band(p.serving, serving_threshold) == risk_band(p.candidate, candidate_threshold)
            for p in pairs
        )
        band_agreement = same / count
        serving_alerts = sum(x >= serving_threshold for x in xs) / count
        candidate_alerts = sum(y >= candidate_threshold for y in ys) / count
    return Comparison(
        pairs=count,
        pearson=_correlation(xs, ys),
        spearman=_correlation(ranks(xs), ranks(ys)),
        band_agreement=band_agreement,
        serving_alert_rate=serving_alerts,
        candidate_alert_rate=candidate_alerts,
        alert_rate_difference=(
            None
            if serving_alerts is None or candidate_alerts is None
            else candidate_alerts - serving_alerts
        ),
        serving_latency_p95_ms=serving.latency_p95_ms,
        candidate_latency_p95_ms=candidate.latency_p95_ms,
        serving_errors=serving.errors,
        candidate_errors=candidate.errors,
        serving_error_rate=serving.error_rate,
        candidate_error_rate=candidate.error_rate,
    )


def _below(name: str, value: float | None, bound: float) -> list[str]:
    if value is None or math.isnan(value):
        return [f"{name} undefined"]
    return [f"{name} {value:.3f} < {bound}"] if value < bound else []


def decide(comparison: Comparison, bounds: ShadowBounds, minimum_pairs: int) -> Decision:
    """``wait`` below ``minimum_pairs``; otherwise ``promote`` only if every bound holds.

    A candidate that errs beyond the bound is held even before it has enough pairs: errors are
    a reason on their own, and its failed answers make no pairs.
    """
    reasons: list[str] = []
    if comparison.candidate_error_rate > bounds.max_error_rate:
        reasons.append(
            f"candidate error rate {comparison.candidate_error_rate:.3f} > {bounds.max_error_rate}"
        )
    if comparison.pairs < minimum_pairs:
        return Decision(HOLD, tuple(reasons)) if reasons else Decision(WAIT)
    reasons += _below("pearson", comparison.pearson, bounds.min_pearson)
    reasons += _below("spearman", comparison.spearman, bounds.min_spearman)
    reasons += _below("risk-band agreement", comparison.band_agreement, bounds.min_band_agreement)
    difference = comparison.alert_rate_difference
    if difference is None or abs(difference) > bounds.max_alert_rate_difference:
        shown = "undefined" if difference is None else f"{difference:+.3f}"
        reasons.append(f"alert-rate difference {shown} beyond ±{bounds.max_alert_rate_difference}")
    serving_p95 = comparison.serving_latency_p95_ms
    candidate_p95 = comparison.candidate_latency_p95_ms
    if serving_p95 and candidate_p95 is not None:
        ratio = candidate_p95 / serving_p95
        if ratio > bounds.max_latency_p95_ratio:
            reasons.append(f"latency p95 ratio {ratio:.2f} > {bounds.max_latency_p95_ratio}")
    return Decision(HOLD, tuple(reasons)) if reasons else Decision(PROMOTE)
