"""Fairness in production: subgroup metrics, gaps, minimums, and the daily run against moto."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from contracts.deployment import VARIANT_NAME
from contracts.drift import DEFAULT_METRIC_NAMESPACE
from contracts.fairness import (
    AGE_BANDS,
    FAIRNESS_CHECK_EVENT,
    GAP_ALERT_RATE,
    GAP_AUROC,
    GAP_CALIBRATION,
    age_band,
    auroc_standard_error,
    minimum_outcomes,
    minimum_patients,
)
from lambdas.drift_monitor import app
from lambdas.drift_monitor.capture import decode_capture_line
from lambdas.drift_monitor.fairness import (
    FairnessBounds,
    GroupMetrics,
    Outcome,
    assess,
    capture_groups,
    join_outcomes,
    scored_encounters,
)
from lambdas.drift_monitor.ground_truth import LabelStats, parse_label, rank_auroc
from lambdas.drift_monitor.monitor import FairnessNotConfiguredError, check_fairness
from lambdas.drift_monitor.settings import MonitorSettings, SettingsError
from lambdas.drift_monitor.window import fairness_window
from tests.lambdas.conftest import FakeLambdaContext

BUCKET = "capture-bucket"
PREFIX = "capture"
ENDPOINT = "readmission-test"
VARIANT = VARIANT_NAME
LABELS = "ground-truth"
#: The scored span of the backfill runs below: two whole days.
SCORED_START = datetime(2024, 3, 1, tzinfo=UTC)
WINDOW_END = datetime(2024, 3, 3, tzinfo=UTC)
BACKFILL = {**FAIRNESS_CHECK_EVENT, "window_end": "2024-03-03T00:00:00Z"}
SMALL = FairnessBounds(
    auroc_gap=0.1, calibration_gap=0.05, alert_rate_gap=0.1, min_patients=100, min_outcomes=20
)


# --- minimums: the statistics that justify them ------------------------------------------


@pytest.mark.parametrize(("positives", "negatives"), [(1, 1), (10, 30), (75, 600), (400, 400)])
def test_hanley_mcneil_at_chance_is_the_exact_mann_whitney_variance(
    positives: int, negatives: int
) -> None:
    """At AUROC 0.5 (Q1 = Q2 = 1/3) Hanley-McNeil reduces to the exact null variance of
    U / (n1 n2): (n1 + n2 + 1) / (12 n1 n2)."""
    exact = math.sqrt((positives + negatives + 1) / (12 * positives * negatives))
    assert auroc_standard_error(0.5, positives, negatives) == pytest.approx(exact)


def test_hanley_mcneil_shrinks_with_more_patients_and_rejects_empty_classes() -> None:
    assert auroc_standard_error(0.7, 50, 400) < auroc_standard_error(0.7, 25, 200)
    with pytest.raises(ValueError, match="positive"):
        auroc_standard_error(0.7, 0, 10)


@pytest.mark.parametrize("bound", [0.05, 0.08, 0.1, 0.15, 0.2])
def test_minimum_outcomes_is_the_smallest_count_that_resolves_the_bound(bound: float) -> None:
    def resolves(n: int) -> bool:
        negatives = math.ceil(n * (1 - 0.11) / 0.11)
        return 1.96 * math.sqrt(2) * auroc_standard_error(0.7, n, negatives) <= bound

    n = minimum_outcomes(bound, auroc=0.7, prevalence=0.11, z=1.96)
    assert resolves(n)
    assert n == 1 or not resolves(n - 1)


def test_minimum_outcomes_grows_as_the_bound_tightens() -> None:
    counts = [minimum_outcomes(bound) for bound in (0.2, 0.1, 0.05)]
    assert counts == sorted(counts)
    assert counts[0] < counts[-1]
    assert minimum_outcomes(0.1) == 72  # the figure docs/operations.md states


@pytest.mark.parametrize(("bound", "rate"), [(0.1, 0.5), (0.05, 0.11), (0.03, 0.2)])
def test_minimum_patients_matches_the_closed_form(bound: float, rate: float) -> None:
    expected = math.ceil(1.96**2 * 2 * rate * (1 - rate) / bound**2 - 1e-9)
    assert minimum_patients(bound, rate) == expected


def test_age_bands_cover_every_age_once() -> None:
    assert age_band(0) == "0-44"
    assert age_band(44.9) == "0-44"
    assert age_band(45) == "45-64"
    assert age_band(79) == "65-79"
    assert age_band(90) == "80+"
    assert [age_band(lowest) for _, lowest in AGE_BANDS] == [label for label, _ in AGE_BANDS]
    for missing in (None, "70", True, float("nan"), -1):
        assert age_band(missing) is None


# --- subgroup metrics and gaps --------------------------------------------------------------


def outcome(p: float, label: int, alert: bool | None = None, **groups: str) -> Outcome:
    return Outcome(p, label, alert, groups)


def cohort(
    rng: random.Random, count: int, *, informative: bool, rate_shift: float = 0.0, **groups: str
) -> list[Outcome]:
    """``count`` outcomes; informative ones are drawn from their score (calibrated), the
    others at the group's mean score plus ``rate_shift``, whatever the score (AUROC ~ 0.5)."""
    items = []
    for _ in range(count):
        p = rng.betavariate(2, 5)
        chance = p if informative else 2 / 7 + rate_shift
        items.append(outcome(p, int(rng.random() < chance), p >= 0.5, **groups))
    return items


def test_group_metrics_match_a_hand_computed_group() -> None:
    result = assess(
        [
            outcome(0.1, 0, False, sex="F"),
            outcome(0.4, 0, False, sex="F"),
            outcome(0.35, 1, False, sex="F"),
            outcome(0.8, 1, True, sex="F"),
        ],
        SMALL,
    )
    female = result.subgroups["sex"]["F"]
    assert female.patients == 4
    assert female.outcomes == 2
    assert female.auroc == pytest.approx(0.75)
    assert female.calibration_in_the_large == pytest.approx(0.5 - 0.4125)
    assert female.alert_rate == pytest.approx(0.25)
    assert result.gaps == []  # one group, far below the minimums


def test_a_subgroup_specific_shift_opens_gaps_between_qualifying_groups() -> None:
    rng = random.Random(7)
    outcomes = cohort(rng, 600, informative=True, sex="M") + cohort(
        rng, 600, informative=False, rate_shift=0.1, sex="F"
    )
    result = assess(outcomes, SMALL)
    gaps = {(g.attribute, g.metric): g for g in result.gaps}
    auroc = gaps[("sex", GAP_AUROC)]
    assert auroc.exceeded
    assert (auroc.highest, auroc.lowest) == ("M", "F")
    m, f = result.subgroups["sex"]["M"], result.subgroups["sex"]["F"]
    assert auroc.value == pytest.approx(_value(m, GAP_AUROC) - _value(f, GAP_AUROC))
    calibration = gaps[("sex", GAP_CALIBRATION)]
    assert calibration.exceeded
    assert calibration.highest == "F"  # F readmits more than its scores say
    assert not gaps[("sex", GAP_ALERT_RATE)].exceeded  # same score distribution
    assert result.compared["sex"] == ("F", "M")


def _value(metrics: GroupMetrics, metric: str) -> float:
    value = metrics.value(metric)
    assert value is not None
    return value


def test_groups_without_both_minimums_and_unknown_are_not_compared() -> None:
    rng = random.Random(8)
    outcomes = (
        cohort(rng, 600, informative=True, sex="M")
        + cohort(rng, 600, informative=False, sex="unknown")
        + cohort(rng, 60, informative=False, sex="F")  # too few patients
    )
    result = assess(outcomes, SMALL)
    assert result.compared["sex"] == ("M",)
    assert result.gaps == []
    assert result.subgroups["sex"]["F"].patients == 60  # still measured and published

    few_outcomes = [outcome(0.2, int(i < 10), False, sex="F") for i in range(500)]
    result = assess(cohort(rng, 600, informative=True, sex="M") + few_outcomes, SMALL)
    assert result.compared["sex"] == ("M",)  # 500 patients but 10 < 20 readmissions


def test_a_gap_at_the_bound_does_not_alarm_one_above_does() -> None:
    bounds = FairnessBounds(0.1, 0.05, 0.25, min_patients=4, min_outcomes=1)
    at_bound = [outcome(0.1, i == 0, i < 2, sex="F") for i in range(4)] + [
        outcome(0.1, i == 0, i < 1, sex="M") for i in range(4)
    ]
    gap = next(g for g in assess(at_bound, bounds).gaps if g.metric == GAP_ALERT_RATE)
    assert gap.value == pytest.approx(0.25)
    assert not gap.exceeded
    above = [*at_bound[:4], *(outcome(0.1, i == 0, False, sex="M") for i in range(4))]
    gap = next(g for g in assess(above, bounds).gaps if g.metric == GAP_ALERT_RATE)
    assert gap.value == pytest.approx(0.5)
    assert gap.exceeded


def test_max_minus_min_spans_the_extreme_groups_of_several() -> None:
    bounds = FairnessBounds(0.1, 0.05, 0.1, min_patients=4, min_outcomes=1)
    rates = {"white": 1, "black": 2, "asian": 3}
    outcomes = [
        outcome(0.3, i == 0, i < alerts, race=group)
        for group, alerts in rates.items()
        for i in range(4)
    ]
    gap = next(g for g in assess(outcomes, bounds).gaps if g.metric == GAP_ALERT_RATE)
    assert (gap.highest, gap.lowest, gap.value) == ("asian", "white", pytest.approx(0.5))
    assert gap.groups == ("asian", "black", "white")


# --- where subgroup labels come from -----------------------------------------------------


def test_label_lines_carry_valid_subgroups_and_count_invalid_ones() -> None:
    line = json.dumps(
        {"encounter_key": "k1", "readmitted_30d": 1, "race": "black", "sex": "X", "age_band": 7}
    )
    parsed = parse_label(line.encode())
    assert parsed is not None
    assert (parsed.encounter_key, parsed.label, parsed.groups) == ("k1", 1, {"race": "black"})
    assert parsed.invalid_subgroups == 2
    assert parse_label(b'{"encounter_key": "k1", "readmitted_30d": true}') is None


def test_capture_gives_sex_age_band_and_alert_and_ground_truth_wins() -> None:
    moment = SCORED_START + timedelta(hours=1)
    records: list[dict[str, Any]] = [
        {"encounter_key": "a", "sex": "F", "age_years": 70},
        {"encounter_key": "b", "sex": "M", "age_years": 30},
        {"encounter_key": "c", "sex": "bogus"},
    ]
    _, scored_records = decode_capture_line(
        capture_line(records, [0.8, 0.2, 0.3], ["high", "low", None], moment)
    )
    assert [r.risk_band for r in scored_records] == ["high", "low", None]
    scored = scored_encounters(scored_records)
    assert scored["a"].alert is True
    assert scored["b"].alert is False
    assert scored["c"].alert is None
    assert capture_groups(records[2]) == {}
    lines = [
        json.dumps({"encounter_key": "a", "readmitted_30d": 1, "race": "asian"}).encode(),
        json.dumps({"encounter_key": "b", "readmitted_30d": 0, "sex": "F"}).encode(),
        json.dumps({"encounter_key": "b", "readmitted_30d": 1}).encode(),  # a repeat: ignored
        b"not json",
    ]
    stats = LabelStats()
    outcomes = join_outcomes(scored, lines, stats)
    assert [dict(o.groups) for o in outcomes] == [
        {"sex": "F", "age_band": "65-79", "race": "asian"},
        {"sex": "F", "age_band": "0-44"},
    ]
    assert [o.label for o in outcomes] == [1, 0]
    assert (stats.matched, stats.corrupt_lines) == (2, 1)


def test_scheduled_runs_assess_whole_days_whose_outcomes_are_complete() -> None:
    window = fairness_window(
        {**FAIRNESS_CHECK_EVENT, "time": "2024-05-10T06:00:00Z"},
        datetime(2024, 5, 10, 6, tzinfo=UTC),
        window_days=30,
        delay_days=31,
    )
    assert window.end == datetime(2024, 4, 9, tzinfo=UTC)
    assert window.start == datetime(2024, 3, 10, tzinfo=UTC)
    backfill = fairness_window(BACKFILL, datetime(2030, 1, 1, tzinfo=UTC), 2, 31)
    assert (backfill.start, backfill.end) == (SCORED_START, WINDOW_END)


def test_fairness_settings_name_the_bad_variable() -> None:
    base = {"ENDPOINT_NAME": ENDPOINT, "CAPTURE_BUCKET": BUCKET}
    assert (
        MonitorSettings.from_env({**base, "FAIRNESS_MIN_OUTCOMES": "30"}).fairness.min_outcomes
        == 30
    )
    for name, value in (
        ("FAIRNESS_WINDOW_DAYS", "0"),
        ("FAIRNESS_AUROC_GAP", "0"),
        ("FAIRNESS_ALERT_RATE_GAP", "1.5"),
        ("FAIRNESS_MIN_PATIENTS", "0"),
        ("FAIRNESS_MIN_OUTCOMES", "many"),
    ):
        with pytest.raises(SettingsError, match=name):
            MonitorSettings.from_env({**base, name: value})


# --- the daily run against moto ----------------------------------------------------------


def capture_line(
    records: list[dict[str, Any]],
    probabilities: list[float],
    bands: list[str | None],
    moment: datetime,
) -> str:
    predictions = [
        {"probability": p, "encounter_key": r["encounter_key"], "model_version": "3"}
        | ({} if band is None else {"risk_band": band})
        for r, p, band in zip(records, probabilities, bands, strict=True)
    ]
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"data": json.dumps({"instances": records}), "encoding": "JSON"},
                "endpointOutput": {
                    "data": json.dumps({"predictions": predictions}),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"inferenceTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
    )


def put_scored_traffic(s3: Any, rng: random.Random, per_group: int) -> list[dict[str, Any]]:
    """Two days of capture: men's outcomes follow their scores, women's do not (and women
    readmit more than predicted). Returns the ground-truth lines (race only on some)."""
    labels = []
    for index in range(2 * per_group):
        sex = "M" if index % 2 else "F"
        key = f"{index:064x}"
        p = round(rng.betavariate(2, 5), 4)
        moment = SCORED_START + timedelta(minutes=index * 2)
        hour = moment.replace(minute=0, second=0)
        record = {"encounter_key": key, "sex": sex, "age_years": 50 + index % 40}
        band = "high" if p >= 0.5 else "low"
        s3.put_object(
            Bucket=BUCKET,
            Key=f"{PREFIX}/{ENDPOINT}/{VARIANT}/{hour:%Y/%m/%d/%H}/{index}.jsonl",
            Body=capture_line([record], [p], [band], moment).encode(),
        )
        chance = p if sex == "M" else 0.45
        label: dict[str, Any] = {"encounter_key": key, "readmitted_30d": int(rng.random() < chance)}
        if index % 3 == 0:
            label["race"] = "white"
        labels.append((moment, label))
    for day in (SCORED_START, SCORED_START + timedelta(days=1)):
        body = "\n".join(json.dumps(lbl) for m, lbl in labels if m.date() == day.date())
        s3.put_object(Bucket=BUCKET, Key=f"{LABELS}/{day:%Y/%m/%d}/labels.jsonl", Body=body)
    return [label for _, label in labels]


def gap_metric(attribute: str, metric: str) -> float | None:
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=DEFAULT_METRIC_NAMESPACE,
        MetricName="FairnessGap",
        Dimensions=[
            {"Name": "EndpointName", "Value": ENDPOINT},
            {"Name": "Attribute", "Value": attribute},
            {"Name": "Metric", "Value": metric},
        ],
        StartTime=WINDOW_END - timedelta(hours=1),
        EndTime=WINDOW_END + timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    return float(points[0]["Maximum"]) if points else None


@pytest.fixture
def s3(mocked_aws: None) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def test_daily_run_publishes_the_gap_a_shift_opens_and_only_that(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_scored_traffic(s3, random.Random(11), per_group=300)
    for name, value in {
        "ENDPOINT_NAME": ENDPOINT,
        "CAPTURE_BUCKET": BUCKET,
        "CAPTURE_PREFIX": PREFIX,
        "GROUND_TRUTH_PREFIX": LABELS,
        "FAIRNESS_WINDOW_DAYS": "2",
        "FAIRNESS_MIN_PATIENTS": "100",
        "FAIRNESS_MIN_OUTCOMES": "20",
    }.items():
        monkeypatch.setenv(name, value)

    summary = app.lambda_handler(BACKFILL, FakeLambdaContext())

    assert summary["check"] == "fairness"
    assert summary["labelled_records"] == 600
    assert summary["groups_compared"]["sex"] == ["F", "M"]
    assert summary["groups_compared"]["race"] == ["white"]  # one group: nothing to compare
    exceeded = {(g["attribute"], g["metric"]) for g in summary["gaps"] if g["exceeded"]}
    assert ("sex", GAP_AUROC) in exceeded
    assert ("sex", GAP_CALIBRATION) in exceeded
    auroc_gap = gap_metric("sex", GAP_AUROC)
    assert auroc_gap is not None
    assert auroc_gap > 0.1
    assert gap_metric("race", GAP_AUROC) is None  # not published: not a breach
    # every number published is a count or a rate: the summary names no encounter
    assert "0" * 60 not in json.dumps(summary)


def test_no_outcomes_yet_publishes_no_gap(s3: Any) -> None:
    settings = MonitorSettings(
        endpoint_name=ENDPOINT,
        capture_bucket=BUCKET,
        capture_prefix=PREFIX,
        ground_truth_prefix=LABELS,
        fairness_window_days=2,
    )
    report = check_fairness(
        BACKFILL,
        settings,
        s3=s3,
        cloudwatch=boto3.client("cloudwatch"),
        now=WINDOW_END,
    )
    assert report.result.gaps == []
    assert report.labels.matched == 0
    assert gap_metric("sex", GAP_AUROC) is None


def test_fairness_without_a_ground_truth_prefix_fails_clearly(s3: Any) -> None:
    settings = MonitorSettings(endpoint_name=ENDPOINT, capture_bucket=BUCKET)
    with pytest.raises(FairnessNotConfiguredError, match="ground-truth"):
        check_fairness(BACKFILL, settings, s3=s3, cloudwatch=None, now=WINDOW_END)


def test_rank_auroc_is_what_subgroups_use() -> None:
    """The subgroup AUROC is the same statistic as the overall one (ties averaged)."""
    metrics = assess([outcome(0.5, 1, sex="F"), outcome(0.5, 0, sex="F")], SMALL)
    assert metrics.subgroups["sex"]["F"].auroc == rank_auroc([0.5, 0.5], [1, 0]) == 0.5
