"""Cold start of the prediction API Lambda: module import (target: under 300 ms) and the first
invocation after it.

Each sample is a fresh interpreter that first imports the Lambda runtime interface client
(``awslambdaric.bootstrap``, the code of AWS's managed Python runtime, which is loaded before it
imports a handler), then times ``import lambdas.predict.app`` alone (the module-load part of a
Lambda cold start; what the runtime itself loaded, such as ``json`` and ``logging``, is not the
module's cost), then the first
and the second ``POST /predict`` through ``lambda_handler`` (one valid encounter, the real boto3
sagemaker-runtime client, the test suite's fake endpoint in its own process). The first
invocation carries what the import left for later (boto3 and its client, the de-identification
key, any lazily built validator), so cost moved out of the import shows up there:
``cold_start_ms`` (import + first invocation) is the figure a caller waits for.

Two variants: tracing off (Powertools' default outside Lambda, or ``POWERTOOLS_TRACE_DISABLED``)
and tracing on as in a deployed function with active X-Ray tracing (the X-Ray SDK's import then
builds a botocore client for sampling rules). The biggest imports of one run are listed too.

Run: ``python benchmarks/api_cold_import.py [--out PATH]`` (default
benchmarks/results/api_cold_import.json). The machine's load average is recorded: on a shared
machine the figures vary with it; CPU time varies less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lambdas.environment import RUNTIME_ENVIRONMENT  # noqa: E402 (after the path setup)
from lambdas.predict import settings as predict_env  # noqa: E402 (after the path setup)

RESULT = ROOT / "benchmarks" / "results" / "api_cold_import.json"
MODULE = "lambdas.predict.app"
TARGET_MS = 300.0
ENDPOINT_NAME = "readmission-cold-start"
#: What the managed Python runtime has imported before it imports the handler's module.
RUNTIME_BOOTSTRAP = "import awslambdaric.bootstrap"
_TIMED_IMPORT = (
    RUNTIME_BOOTSTRAP + "; import time; t = time.perf_counter(); c = time.process_time(); "
    "import {module}; print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)"
)
#: One cold container: import, then two invocations; the event arrives on stdin, unparsed
#: until the import is timed (so that nothing is imported for it beforehand).
_COLD_START = (
    RUNTIME_BOOTSTRAP
    + """
import sys, time
raw_event = sys.stdin.read()
t = time.perf_counter(); c = time.process_time()
import lambdas.predict.app as app
import_ms, import_cpu_ms = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
import contextlib, io, json
event = json.loads(raw_event)

class Context:
    function_name = "prediction-api-cold-start"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold-start"
    aws_request_id = "cold-start-request"

    def get_remaining_time_in_millis(self):
        return 30_000

times = []
with contextlib.redirect_stdout(io.StringIO()):
    for _ in range(2):
        t = time.perf_counter()
        status = app.lambda_handler(event, Context())["statusCode"]
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, status
print(json.dumps({"import_ms": import_ms, "import_cpu_ms": import_cpu_ms,
                  "first_invocation_ms": times[0], "second_invocation_ms": times[1]}))
"""
)
_LAMBDA_LIKE_ENV = {
    "LAMBDA_TASK_ROOT": str(ROOT),
    "AWS_LAMBDA_FUNCTION_NAME": "prediction-api-benchmark",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_"))}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **RUNTIME_ENVIRONMENT,  # what the stacks set on the deployed function
            **extra,
        }
    )
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


def cold_starts(runs: int, extra_env: dict[str, str], endpoint_url: str) -> list[dict[str, float]]:
    """Import and invoke twice in ``runs`` fresh interpreters; return each one's times in ms."""
    from tests.lambdas.predict_fixtures import api_gateway_event, valid_record

    event = json.dumps(api_gateway_event("POST", "/predict", valid_record()))
    env = _env(
        {
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
            predict_env.ENDPOINT_NAME_ENV: ENDPOINT_NAME,
            predict_env.DEID_KEY_ENV: "cold-start-benchmark-key",
            "AWS_ACCESS_KEY_ID": "benchmark",
            "AWS_SECRET_ACCESS_KEY": "benchmark",
            **extra_env,
        }
    )
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _COLD_START],
            cwd=ROOT,
            env=env,
            input=event,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return samples


def biggest_imports(count: int = 8) -> list[dict[str, Any]]:
    """The top-level packages with the largest cumulative import time (``-X importtime``)."""
    marker = "-- handler module --"
    code = f"{RUNTIME_BOOTSTRAP}; import sys; print({marker!r}, file=sys.stderr); import {MODULE}"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env=_env({}),
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[dict[str, Any]] = []
    for line in out.stderr.split(marker, 1)[1].splitlines()[1:]:
        _, cumulative, name = line.split("|")
        if len(name) - len(name.lstrip()) == 3:  # imported directly by the module
            rows.append({"module": name.strip(), "cumulative_ms": int(cumulative) / 1000})
    return sorted(rows, key=lambda row: -float(row["cumulative_ms"]))[:count]


def import_instructions() -> dict[str, int] | None:
    """Instructions the module's import executes (valgrind's callgrind), or None without valgrind.

    Unlike milliseconds, the count does not depend on how fast or how busy the machine is, so
    it compares runs made on different days: the bootstrap alone is subtracted from the
    bootstrap plus the module.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    counts = []
    for code in (RUNTIME_BOOTSTRAP, f"{RUNTIME_BOOTSTRAP}; import {MODULE}"):
        out = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, "-c", code],
            cwd=ROOT, env=_env({"POWERTOOLS_TRACE_DISABLED": "true"}),
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
        if match is None:
            raise RuntimeError("callgrind printed no instruction count")
        counts.append(int(match.group(1).replace(",", "")))
    return {"bootstrap": counts[0], "module_import": counts[1] - counts[0]}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summary(samples: tuple[list[float], list[float]]) -> dict[str, float]:
    """Median, p95 and minimum wall time, and median CPU time, in milliseconds.

    CPU time is what the import costs when it has a core to itself; wall time also counts
    waiting for one, which on a shared machine can double it.
    """
    wall, cpu = samples
    return {
        "median_ms": round(statistics.median(wall), 1),
        "p95_ms": round(_p95(wall), 1),
        "min_ms": round(min(wall), 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
        "runs": len(wall),
    }


def cold_start_summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    """The import summary plus the first and second invocation and their sum, in ms."""
    result: dict[str, Any] = summary(
        ([s["import_ms"] for s in samples], [s["import_cpu_ms"] for s in samples])
    )
    for name in ("first_invocation_ms", "second_invocation_ms"):
        values = [s[name] for s in samples]
        result[name] = {
            "median": round(statistics.median(values), 1),
            "p95": round(_p95(values), 1),
        }
    totals = [s["import_ms"] + s["first_invocation_ms"] for s in samples]
    result["cold_start_ms"] = {
        "median": round(statistics.median(totals), 1),
        "p95": round(_p95(totals), 1),
    }
    return result


def main() -> None:
    """Measure both variants and write the result file."""
    from benchmarks.api_latency import fake_endpoint_process

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with fake_endpoint_process(ENDPOINT_NAME) as url:
        cold_starts(1, {}, url)  # warm the OS file cache
        tracing_off = cold_start_summary(
            cold_starts(args.runs, {"POWERTOOLS_TRACE_DISABLED": "true"}, url)
        )
        tracing_on = cold_start_summary(cold_starts(args.runs, _LAMBDA_LIKE_ENV, url))
    result = {
        "module": MODULE,
        "target_ms": TARGET_MS,
        "tracing_off": tracing_off,
        "tracing_on_xray": tracing_on,
        "meets_target_tracing_off": tracing_off["median_ms"] <= TARGET_MS,
        "meets_target_tracing_off_cpu": tracing_off["median_cpu_ms"] <= TARGET_MS,
        "import_instructions_tracing_off": import_instructions(),
        "biggest_imports_tracing_off": biggest_imports(),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before[0], 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
