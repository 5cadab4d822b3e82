"""``make demo``, fairness in production: outcomes arrive with a subgroup-specific shift, the
drift monitor's daily fairness run compares the groups, and the alarm's condition is shown.

The shift: for men, readmissions follow the model's risk (drawn from each score); for women
they do not (drawn at a fixed rate, whatever the score), as when a model misses what drives
readmission in one group. Realised AUROC and calibration then differ between the sexes by
more than the stage's bounds, with both groups above the stage's minimums, so the
``fairness-sex-auroc`` and ``fairness-sex-calibration-in-the-large`` alarms would fire.
The cohort is scored through the API like any traffic (captured by the model server), the
outcomes are written where the ground-truth feed writes them, and the monitor runs as the
daily EventBridge rule runs it, for the window that holds today.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from contracts.drift import DEFAULT_METRIC_NAMESPACE, DIMENSION_ENDPOINT
from contracts.fairness import (
    ATTRIBUTE_SEX,
    ATTRIBUTES,
    DIMENSION_ATTRIBUTE,
    DIMENSION_METRIC,
    FAIRNESS_CHECK_EVENT,
    GAP_ALERT_RATE,
    GAP_AUROC,
    GAP_CALIBRATION,
    GAP_METRICS,
    METRIC_FAIRNESS_GAP,
    monitor_environment,
)
from contracts.serving import ENCOUNTER_KEY, MAX_BATCH_SIZE, PROBABILITY
from lambdas.drift_monitor import app as drift_app
from lambdas.drift_monitor import settings as monitor_env
from lambdas.drift_monitor.ground_truth import LABEL_FIELD
from local_platform import resources, traffic
from local_platform.settings import SYNTHETIC_SEED
from local_platform.steps import DemoRun, lambda_environment
from stacks.components.drift_monitor import GROUND_TRUTH_PREFIX
from stacks.config import FairnessConfig

#: The group whose outcomes stop following the model, and the reference group.
SHIFTED_GROUP = "F"
REFERENCE_GROUP = "M"
#: The shifted group's readmission rate, whatever its scores.
SHIFTED_RATE = 0.35
#: Expected readmissions per group, as a multiple of the minimum: margin for chance.
OUTCOME_MARGIN = 1.5
#: Upper bound on encounters scored per group (a model that predicts tiny risks everywhere
#: could otherwise need an unbounded cohort for the reference group's readmissions).
MAX_PER_GROUP = 20_000
#: Request numbers of the cohort start here (step 6 uses 0 .. day_of_traffic - 1).
FIRST_REQUEST_NUMBER = 1_000_000
LABEL_FILE = "fairness-demo.jsonl"


class FairnessDemoError(RuntimeError):
    """The cohort cannot be built or scored; the message says why (no patient data)."""


def fairness_environment(fairness: FairnessConfig) -> dict[str, str]:
    """The drift monitor's fairness variables, exactly as the stack sets them."""
    return monitor_env.ENVIRONMENT.subset(
        {
            monitor_env.GROUND_TRUTH_PREFIX_ENV: GROUND_TRUTH_PREFIX,
            **monitor_environment(**dataclasses.asdict(fairness)),
        }
    )


def fairness_event(now: datetime) -> dict[str, str]:
    """The daily run's event for a window ending at the next UTC midnight (today included)."""
    end = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return {**FAIRNESS_CHECK_EVENT, "window_end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}


def requests_of_group(
    records: Sequence[Mapping[str, Any]], group: str, rng: random.Random, first_number: int
) -> Iterator[dict[str, Any]]:
    """Endless API requests drawn from the records of one sex, numbered from ``first_number``."""
    members = [r for r in records if r.get(ATTRIBUTE_SEX) == group]
    if not members:
        raise FairnessDemoError(f"the test split has no encounter with sex {group}")
    number = first_number
    while True:
        yield traffic.as_request(rng.choice(members), number)
        number += 1


def enough(scores: Sequence[float], fairness: FairnessConfig, rate: float | None) -> bool:
    """Whether a group of these scores has the minimum patients and, in expectation with a
    margin, the minimum readmissions (drawn from the scores, or at ``rate``)."""
    expected = len(scores) * rate if rate is not None else math.fsum(scores)
    return (
        len(scores) >= fairness.min_patients
        and expected >= OUTCOME_MARGIN * fairness.min_outcomes
        and len(scores) - expected >= OUTCOME_MARGIN * fairness.min_outcomes
    )


def outcome(probability: float, group: str, rng: random.Random) -> int:
    """The simulated readmission: from the score for the reference group, at a fixed rate for
    the shifted group."""
    chance = SHIFTED_RATE if group == SHIFTED_GROUP else probability
    return int(rng.random() < chance)


def label_lines(
    scored: Iterable[tuple[str, str, float]], rng: random.Random
) -> list[dict[str, Any]]:
    """Ground-truth records ``{encounter_key, readmitted_30d, sex}`` of scored encounters
    (the hashed key the API returned, never a raw identifier)."""
    return [
        {ENCOUNTER_KEY: key, LABEL_FIELD: outcome(p, group, rng), ATTRIBUTE_SEX: group}
        for key, group, p in scored
    ]


def read_gaps(endpoint_name: str, now: datetime) -> dict[tuple[str, str], float]:
    """``(attribute, metric) -> gap`` as CloudWatch holds them (what the alarms evaluate)."""
    cloudwatch = boto3.client("cloudwatch")
    gaps: dict[tuple[str, str], float] = {}
    for attribute in ATTRIBUTES:
        for metric in GAP_METRICS:
            points = cloudwatch.get_metric_statistics(
                Namespace=DEFAULT_METRIC_NAMESPACE,
                MetricName=METRIC_FAIRNESS_GAP,
                Dimensions=[
                    {"Name": DIMENSION_ENDPOINT, "Value": endpoint_name},
                    {"Name": DIMENSION_ATTRIBUTE, "Value": attribute},
                    {"Name": DIMENSION_METRIC, "Value": metric},
                ],
                StartTime=now - timedelta(days=2),
                EndTime=now + timedelta(days=2),
                Period=86_400,
                Statistics=["Maximum"],
            )["Datapoints"]
            if points:
                gaps[(attribute, metric)] = max(float(p["Maximum"]) for p in points)
    return gaps


def firing(gaps: Mapping[tuple[str, str], float], fairness: FairnessConfig) -> list[str]:
    """The fairness alarms whose condition holds: ``<attribute>-<metric>`` above its bound."""
    bounds = {
        GAP_AUROC: fairness.auroc_gap,
        GAP_CALIBRATION: fairness.calibration_gap,
        GAP_ALERT_RATE: fairness.alert_rate_gap,
    }
    return sorted(
        f"{attribute}-{metric}" for (attribute, metric), gap in gaps.items() if gap > bounds[metric]
    )


def score_cohort(
    api_url: str,
    requests: Iterator[dict[str, Any]],
    group: str,
    fairness: FairnessConfig,
    rate: float | None,
) -> list[tuple[str, str, float]]:
    """Score requests of one group through the API until the group is large enough."""
    scored: list[tuple[str, str, float]] = []
    while not enough([p for _, _, p in scored], fairness, rate):
        if len(scored) >= MAX_PER_GROUP:
            raise FairnessDemoError(f"group {group} needs more than {MAX_PER_GROUP} encounters")
        batch = [next(requests) for _ in range(MAX_BATCH_SIZE)]
        reply = traffic.call(f"{api_url}/predict", "POST", {"instances": batch})
        if reply.status != 200:
            raise FairnessDemoError(f"a cohort batch failed with HTTP {reply.status}")
        for prediction in reply.body["predictions"]:
            scored.append((prediction[ENCOUNTER_KEY], group, float(prediction[PROBABILITY])))
    return scored


def write_labels(s3: Any, bucket: str, labels: Sequence[Mapping[str, Any]], day: datetime) -> str:
    """Put the outcomes where the ground-truth feed writes them (by day scored)."""
    key = f"{GROUND_TRUTH_PREFIX}/{day:%Y/%m/%d}/{LABEL_FILE}"
    body = "\n".join(json.dumps(label) for label in labels) + "\n"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return key


def fairness_step(run: DemoRun) -> dict[str, Any]:
    """After step 6: score a cohort of both sexes, write outcomes with the shift, run the
    daily fairness check, and show which fairness alarms fire."""
    config, progress = run.config, run.progress
    res = run.require_resources()
    fairness = config.stage.fairness
    progress.line("      -- fairness in production (outcomes 30 days later, simulated) --")
    rng = random.Random(SYNTHETIC_SEED)  # noqa: S311 - simulated outcomes, not a secret
    records = traffic.read_split(run.features_dir, "test")
    scored: list[tuple[str, str, float]] = []
    for offset, (group, rate) in enumerate(
        ((REFERENCE_GROUP, None), (SHIFTED_GROUP, SHIFTED_RATE))
    ):
        requests = requests_of_group(
            records, group, rng, FIRST_REQUEST_NUMBER + offset * MAX_PER_GROUP
        )
        scored += score_cohort(run.api_url, requests, group, fairness, rate)
    labels = label_lines(scored, rng)
    now = datetime.now(UTC)
    s3 = boto3.client("s3")
    resources.upload_folder(s3, run.capture_dir, res.buckets.capture, resources.CAPTURE_PREFIX)
    write_labels(s3, res.buckets.capture, labels, now)
    counts = {
        g: sum(1 for _, group, _ in scored if group == g) for g in (REFERENCE_GROUP, SHIFTED_GROUP)
    }
    progress.fact(
        "cohort",
        f"{counts[REFERENCE_GROUP]} men (outcomes follow the score), {counts[SHIFTED_GROUP]} "
        f"women (readmitted at {SHIFTED_RATE:.0%} whatever the score)",
    )
    environment = {**resources.drift_environment(config, res), **fairness_environment(fairness)}
    with lambda_environment(run, environment):
        result = resources.invoke(
            drift_app.lambda_handler, fairness_event(now), config.names.function("drift_monitor")
        )
    gaps = read_gaps(config.names.endpoint, now)
    alarms = firing(gaps, fairness)
    progress.fact(
        "groups compared",
        f"sex {result['groups_compared'].get(ATTRIBUTE_SEX, [])} "
        f"(minimums {fairness.min_patients} patients, {fairness.min_outcomes} readmissions)",
    )
    for (attribute, metric), gap in sorted(gaps.items()):
        name = f"{attribute}-{metric}"
        mark = "ALARM" if name in alarms else "ok"
        progress.fact(f"  FairnessGap {name}", f"{gap:.3f} {mark}")
    progress.fact("fairness alarms", ", ".join(alarms) or "none")
    return {
        "window": result["window"],
        "labelled_records": result["labelled_records"],
        "groups_compared": result["groups_compared"],
        "gaps": {f"{a}-{m}": gap for (a, m), gap in gaps.items()},
        "alarms": alarms,
    }
