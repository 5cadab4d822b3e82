"""The capacity calculation of docs/deploy.md (benchmarks/capacity.py) and the autoscaling
targets of the stages, checked against the measured serving throughput."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.capacity import (
    RESULTS,
    Measured,
    instances_needed,
    measured,
    table,
    target_invocations_per_instance,
)
from stacks.config import load_stage_config

REPO = Path(__file__).resolve().parents[2]


def test_instances_cover_the_peak_at_the_planned_utilisation() -> None:
    # 100 requests/s per instance at 50 %: 50 usable each.
    assert instances_needed(0, 100) == 1
    assert instances_needed(50, 100) == 1
    assert instances_needed(50.1, 100) == 2
    assert instances_needed(400, 100) == 8
    assert instances_needed(10, 100, minimum=2) == 2
    assert instances_needed(400, 100, utilisation=1.0) == 4


@pytest.mark.parametrize(("peak", "throughput"), [(-1, 100), (10, 0), (10, -5)])
def test_impossible_inputs_are_refused(peak: float, throughput: float) -> None:
    with pytest.raises(ValueError, match=r"cannot be negative|must be positive"):
        instances_needed(peak, throughput)


def test_the_autoscaling_target_is_half_the_measured_ceiling_per_minute() -> None:
    assert target_invocations_per_instance(131.8) == 3900  # 131.8 x 60 x 0.5 = 3954
    assert target_invocations_per_instance(100, utilisation=1.0) == 6000


def test_the_stages_scale_on_the_target_the_benchmark_gives() -> None:
    ceiling = measured(json.loads(RESULTS.read_text()))
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    for stage in ("dev", "prod"):
        scaling = load_stage_config(context, stage).rollout.autoscaling
        assert scaling.target_invocations_per_instance == target_invocations_per_instance(
            ceiling.requests_per_second
        )
    prod = load_stage_config(context, "prod").rollout.autoscaling
    # Prod's maximum covers the largest scenario of the table.
    assert prod.max_instances >= instances_needed(400, ceiling.requests_per_second)


def test_the_deploy_guide_carries_the_table_this_module_computes() -> None:
    ceiling = measured(json.loads(RESULTS.read_text()))
    assert table(ceiling) in (REPO / "docs" / "deploy.md").read_text()


def test_the_table_follows_the_measurement() -> None:
    slow = table(Measured(requests_per_second=10.0, p95_ms=100.0, cpus=2))
    assert "| teaching hospital, 600 beds | 15 | 3 | 3 |" in slow
