"""The shadow comparison and decision (lambdas/deployer/comparison.py), checked against SciPy."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from lambdas.deployer.comparison import (
    HOLD,
    PROMOTE,
    WAIT,
    Pair,
    ShadowBounds,
    VariantLoad,
    compare,
    decide,
    ranks,
)

BOUNDS = ShadowBounds(
    min_pearson=0.9,
    min_spearman=0.9,
    min_band_agreement=0.9,
    max_alert_rate_difference=0.05,
    max_latency_p95_ratio=1.5,
    max_error_rate=0.01,
)
QUIET = VariantLoad(invocations=1000, errors=0, latency_p95_ms=20.0)


def _pairs(n: int, candidate: object = lambda p: p, seed: int = 3) -> list[Pair]:
    rng = random.Random(seed)
    return [Pair(p, candidate(p)) for p in (rng.random() for _ in range(n))]  # type: ignore[operator]


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_scipy(seed: int) -> None:
    rng = random.Random(seed)
    pairs = [
        Pair(x, min(1.0, max(0.0, x + rng.gauss(0, 0.2))))
        for x in (rng.random() for _ in range(200))
    ]
    # Ties on both sides, as clipped and rounded scores have.
    pairs += [Pair(0.5, 0.5), Pair(0.5, 0.7), Pair(1.0, 1.0)]
    found = compare(pairs, QUIET, QUIET, serving_threshold=0.3, candidate_threshold=0.3)
    xs, ys = [p.serving for p in pairs], [p.candidate for p in pairs]
    assert found.pearson == pytest.approx(stats.pearsonr(xs, ys).statistic, abs=1e-9)
    assert found.spearman == pytest.approx(stats.spearmanr(xs, ys).statistic, abs=1e-9)


def test_ranks_share_ties() -> None:
    assert ranks([0.3, 0.1, 0.3, 0.2]) == [3.5, 1.0, 3.5, 2.0]
    assert ranks(list(stats.rankdata([2, 2, 2]))) == [2.0, 2.0, 2.0]


def test_bands_and_alerts_use_each_versions_own_threshold() -> None:
    pairs = [Pair(0.35, 0.45), Pair(0.2, 0.2), Pair(0.1, 0.1), Pair(0.05, 0.3)]
    found = compare(pairs, QUIET, QUIET, serving_threshold=0.3, candidate_threshold=0.4)
    # serving bands: high, moderate, low, low; candidate: high, moderate, low, moderate.
    assert found.band_agreement == pytest.approx(0.75)
    assert found.serving_alert_rate == pytest.approx(0.25)
    assert found.candidate_alert_rate == pytest.approx(0.25)
    assert found.alert_rate_difference == pytest.approx(0.0)


def test_an_identical_candidate_is_promoted() -> None:
    found = compare(_pairs(300), QUIET, QUIET, serving_threshold=0.3, candidate_threshold=0.3)
    assert decide(found, BOUNDS, 100).verdict == PROMOTE


def test_too_few_pairs_waits() -> None:
    found = compare(_pairs(99), QUIET, QUIET, serving_threshold=None, candidate_threshold=None)
    assert decide(found, BOUNDS, 100).verdict == WAIT


@pytest.mark.parametrize(
    ("candidate", "load", "reason"),
    [
        (lambda p: 1 - p, QUIET, "pearson"),
        (lambda p: min(1.0, p + 0.3), QUIET, "alert-rate difference"),
        (lambda p: p, VariantLoad(1000, 0, 45.0), "latency p95 ratio"),
        (lambda p: p, VariantLoad(1000, 50, 20.0), "candidate error rate"),
        (lambda p: p * 0.5, QUIET, "risk-band agreement"),
    ],
)
def test_each_bound_holds_a_candidate_on_its_own(
    candidate: object, load: VariantLoad, reason: str
) -> None:
    found = compare(
        _pairs(300, candidate), QUIET, load, serving_threshold=0.3, candidate_threshold=0.3
    )
    decision = decide(found, BOUNDS, 100)
    assert decision.verdict == HOLD
    assert any(r.startswith(reason) for r in decision.reasons), decision.reasons


def test_errors_hold_before_there_are_enough_pairs() -> None:
    failing = VariantLoad(invocations=10, errors=10, latency_p95_ms=None)
    found = compare(_pairs(3), QUIET, failing, serving_threshold=None, candidate_threshold=None)
    assert found.candidate_error_rate == 1.0
    assert decide(found, BOUNDS, 100).verdict == HOLD


def test_a_constant_candidate_has_no_correlation_and_is_held() -> None:
    found = compare(
        _pairs(300, lambda p: 0.2), QUIET, QUIET, serving_threshold=0.3, candidate_threshold=0.3
    )
    assert found.pearson is None
    assert "pearson undefined" in decide(found, BOUNDS, 100).reasons


def test_the_comparison_holds_aggregates_only() -> None:
    found = compare(_pairs(10), QUIET, QUIET, serving_threshold=0.3, candidate_threshold=0.3)
    assert set(found.as_dict()) == {
        "pairs",
        "pearson",
        "spearman",
        "band_agreement",
        "serving_alert_rate",
        "candidate_alert_rate",
        "alert_rate_difference",
        "serving_latency_p95_ms",
        "candidate_latency_p95_ms",
        "serving_errors",
        "candidate_errors",
        "serving_error_rate",
        "candidate_error_rate",
    }
