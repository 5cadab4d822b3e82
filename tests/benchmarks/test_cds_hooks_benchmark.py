"""The CDS Hooks benchmark's verdict: the hook's p95 against /predict's, both targets."""

from __future__ import annotations

import os
import time

from benchmarks.cds_hooks import (
    TARGET_P95_MS,
    TARGET_RATIO,
    EndpointCpu,
    route_summary,
    verdict,
)


def _latency(hook_p95: float, predict_p95: float) -> dict[str, dict[str, float]]:
    return {
        "cds_hook": {"p50_ms": hook_p95 / 2, "p95_ms": hook_p95},
        "predict_json": {"p50_ms": predict_p95 / 2, "p95_ms": predict_p95},
    }


def test_both_targets_must_hold() -> None:
    assert verdict(_latency(12.0, 10.0)) == {
        "hook_over_predict_p95": 1.2,
        "hook_over_predict_p50": 1.2,
        "meets_targets": True,
    }
    assert not verdict(_latency(10.0 * TARGET_RATIO + 0.1, 10.0))["meets_targets"]
    # Within the ratio but not under the absolute bound.
    assert not verdict(_latency(TARGET_P95_MS, TARGET_P95_MS))["meets_targets"]


def test_route_summary_reports_percentiles_and_mean_cpu() -> None:
    summary = route_summary([float(n) for n in range(1, 101)], [2.0, 4.0])
    assert summary["requests"] == 100
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] == 99.0
    assert summary["cpu_ms_mean"] == 3.0


def test_endpoint_cpu_counts_what_the_server_process_spends() -> None:
    assert EndpointCpu(None).ms() == 0.0
    server = EndpointCpu(os.getpid())  # this process stands in for the server
    before = server.ms()
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    # /proc counts in 10 ms clock ticks, truncated at both readings, and the sum is a float:
    # 100 ms spent reads as at least 90 ms less rounding; 80 leaves room for both.
    assert server.ms() - before >= 80.0
