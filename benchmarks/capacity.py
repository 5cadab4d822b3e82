"""How many endpoint instances a hospital's peak request rate needs, from the measured throughput.

The serving benchmark (benchmarks/serving.py -> benchmarks/results/serving.json) measures one
server (uvicorn, one worker per CPU) on a 2-CPU machine: single-record ``POST /invocations``
from 32 concurrent clients, the API's own request shape. An ``ml.m5.large`` has 2 vCPUs, so that
figure stands for one instance of the dev endpoint (prod's ``ml.m5.xlarge`` has 4: the table is
conservative there). Instances are sized so that each runs at ``UTILISATION`` of what it
measured at the peak, leaving headroom for the minutes autoscaling takes to add an instance;
the autoscaling target (invocations per instance per minute) is the same utilisation, so the
target tracking policy adds instances before the measured ceiling is reached.

``python -m benchmarks.capacity`` prints the table docs/deploy.md carries (a test checks that
the doc and this module agree).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "serving.json"
#: Share of the measured ceiling an instance runs at, at the peak (and the autoscaling target).
UTILISATION = 0.5
#: Instances never drop below this in prod: one per Availability Zone keeps serving when one
#: zone fails (SageMaker spreads an endpoint's instances across zones).
HIGH_AVAILABILITY_MINIMUM = 2
#: Peak request rates of the table: from a community hospital's morning discharge batch to a
#: regional network scoring every inpatient every few minutes.
PEAK_SCENARIOS: tuple[tuple[str, float], ...] = (
    ("community hospital, 150 beds", 2.0),
    ("teaching hospital, 600 beds", 15.0),
    ("health system, 8 hospitals", 80.0),
    ("regional network, re-scores every inpatient every 5 min", 400.0),
)
SECONDS_PER_MINUTE = 60
TARGET_ROUNDING = 100


@dataclass(frozen=True)
class Measured:
    """One server's measured ceiling: throughput and p95 latency under 32 clients."""

    requests_per_second: float
    p95_ms: float
    cpus: int


def measured(results: dict[str, Any]) -> Measured:
    """The uvicorn server's figures from serving.json."""
    server = results["concurrency"]["new_uvicorn"]
    return Measured(
        requests_per_second=float(server["throughput_requests_per_s"]),
        p95_ms=float(server["p95_ms"]),
        cpus=int(results["machine"]["cpus"]),
    )


def instances_needed(
    peak_requests_per_second: float,
    per_instance_requests_per_second: float,
    *,
    utilisation: float = UTILISATION,
    minimum: int = 1,
) -> int:
    """Instances so that each serves at most ``utilisation`` of its measured ceiling at peak."""
    if peak_requests_per_second < 0:
        raise ValueError("the peak request rate cannot be negative")
    if per_instance_requests_per_second <= 0 or not 0 < utilisation <= 1:
        raise ValueError("throughput must be positive and utilisation in (0, 1]")
    usable = per_instance_requests_per_second * utilisation
    return max(minimum, math.ceil(peak_requests_per_second / usable))


def target_invocations_per_instance(
    per_instance_requests_per_second: float, utilisation: float = UTILISATION
) -> int:
    """The autoscaling target (SageMakerVariantInvocationsPerInstance is per minute), rounded
    down to a hundred."""
    per_minute = per_instance_requests_per_second * SECONDS_PER_MINUTE * utilisation
    return int(per_minute // TARGET_ROUNDING * TARGET_ROUNDING)


def table(ceiling: Measured, scenarios: Sequence[tuple[str, float]] = PEAK_SCENARIOS) -> str:
    """The markdown table of docs/deploy.md, "Capacity"."""
    lines = [
        "| Scenario | Peak requests/s | Instances at peak | With zone redundancy |",
        "|---|---:|---:|---:|",
    ]
    for name, peak in scenarios:
        plain = instances_needed(peak, ceiling.requests_per_second)
        redundant = instances_needed(
            peak, ceiling.requests_per_second, minimum=HIGH_AVAILABILITY_MINIMUM
        )
        lines.append(f"| {name} | {peak:g} | {plain} | {redundant} |")
    return "\n".join(lines)


def main() -> None:
    ceiling = measured(json.loads(RESULTS.read_text()))
    print(
        f"Measured ceiling: {ceiling.requests_per_second:g} requests/s per {ceiling.cpus}-CPU "
        f"server (p95 {ceiling.p95_ms:g} ms); autoscaling target "
        f"{target_invocations_per_instance(ceiling.requests_per_second)} invocations per "
        "instance per minute"
    )
    print(table(ceiling))


if __name__ == "__main__":
    main()
