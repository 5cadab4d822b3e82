"""Cold import time of the prediction API Lambda module (target: under 300 ms).

Each sample is a fresh interpreter timing ``import lambdas.predict.app`` alone (interpreter
start-up excluded), which is the module-load part of a Lambda cold start. Two variants:
tracing off (Powertools' default outside Lambda, or ``POWERTOOLS_TRACE_DISABLED``), and
tracing on as in a deployed function with active X-Ray tracing (the X-Ray SDK's import then
builds a botocore client for sampling rules). The biggest imports of one run are listed too.

Run: ``python benchmarks/api_cold_import.py`` (writes benchmarks/results/api_cold_import.json).
The machine's load average is recorded: on a shared machine the figures vary with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "api_cold_import.json"
MODULE = "lambdas.predict.app"
TARGET_MS = 300.0
_TIMED_IMPORT = (
    "import time; t = time.perf_counter(); c = time.process_time(); import {module}; "
    "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)"
)
_LAMBDA_LIKE_ENV = {
    "LAMBDA_TASK_ROOT": str(ROOT),
    "AWS_LAMBDA_FUNCTION_NAME": "prediction-api-benchmark",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_"))}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1", **extra})
    return env


def time_imports(runs: int, extra_env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Import the module in ``runs`` fresh interpreters; return wall and CPU times in ms."""
    code = _TIMED_IMPORT.format(module=MODULE)
    wall, cpu = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=_env(extra_env),
            capture_output=True,
            text=True,
            check=True,
        )
        wall_ms, cpu_ms = out.stdout.strip().splitlines()[-1].split()
        wall.append(float(wall_ms))
        cpu.append(float(cpu_ms))
    return wall, cpu


def biggest_imports(count: int = 8) -> list[dict[str, Any]]:
    """The top-level packages with the largest cumulative import time (``-X importtime``)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {MODULE}"],
        cwd=ROOT,
        env=_env({}),
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[dict[str, Any]] = []
    for line in out.stderr.splitlines()[1:]:
        _, cumulative, name = line.split("|")
        if len(name) - len(name.lstrip()) == 3:  # imported directly by the module
            rows.append({"module": name.strip(), "cumulative_ms": int(cumulative) / 1000})
    return sorted(rows, key=lambda row: -float(row["cumulative_ms"]))[:count]


def summary(samples: tuple[list[float], list[float]]) -> dict[str, float]:
    """Median, p95 and minimum wall time, and median CPU time, in milliseconds.

    CPU time is what the import costs when it has a core to itself; wall time also counts
    waiting for one, which on a shared machine can double it.
    """
    wall, cpu = samples
    ordered = sorted(wall)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "min_ms": round(ordered[0], 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
        "runs": len(ordered),
    }


def main() -> None:
    """Measure both variants and write the result file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    time_imports(1, {})  # warm the OS file cache and site-packages' bytecode
    tracing_off = summary(time_imports(args.runs, {"POWERTOOLS_TRACE_DISABLED": "true"}))
    tracing_on = summary(time_imports(args.runs, _LAMBDA_LIKE_ENV))
    result = {
        "module": MODULE,
        "target_ms": TARGET_MS,
        "tracing_off": tracing_off,
        "tracing_on_xray": tracing_on,
        "meets_target_tracing_off": tracing_off["median_ms"] <= TARGET_MS,
        "meets_target_tracing_off_cpu": tracing_off["median_cpu_ms"] <= TARGET_MS,
        "biggest_imports_tracing_off": biggest_imports(),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
