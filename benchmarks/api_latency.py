"""Latency and throughput of the prediction API Lambda handler calling an endpoint over HTTP.

The handler runs in this process exactly as Lambda runs it (API Gateway event in, proxy
response out): validation, de-identification, the real boto3 sagemaker-runtime client over
HTTP, the endpoint's answer checked, metrics and logs emitted. The endpoint is a separate
process: by default the test suite's fake endpoint (a trivial scoring rule, so the figures are
the Lambda side's own cost); ``--endpoint-url`` points it at another server, e.g. the local
endpoint server ``python -m inference.serve``, for the full local path.

Run: ``python benchmarks/api_latency.py`` (writes benchmarks/results/api_latency.json).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lambdas.predict import settings as predict_env  # noqa: E402 (after the path setup)

RESULT = ROOT / "benchmarks" / "results" / "api_latency.json"
ENDPOINT_NAME = "readmission-benchmark"
TARGET_P95_MS = 30.0


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of latencies in milliseconds."""
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)

    return {
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


@contextlib.contextmanager
def fake_endpoint_process(name: str) -> Iterator[str]:
    """Run the test suite's fake endpoint in its own process; yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.lambdas.fake_endpoint", "--name", name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure_handler(
    endpoint_url: str, endpoint_name: str, requests: int, batch_size: int
) -> dict[str, Any]:
    """Time ``requests`` calls of the handler with a batch of ``batch_size`` records."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
            predict_env.ENDPOINT_NAME_ENV: endpoint_name,
            predict_env.DEID_KEY_ENV: "benchmark-key",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "benchmark"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "benchmark"),
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    from lambdas.predict import app
    from tests.lambdas.predict_fixtures import LambdaContextStub, api_gateway_event, valid_record

    app.reset_state()
    body = (
        valid_record()
        if batch_size == 1
        else {"instances": [valid_record(encounter_id=str(i)) for i in range(batch_size)]}
    )
    event = api_gateway_event("POST", "/predict", body)
    context = LambdaContextStub()
    sink = io.StringIO()  # the function's log and metric lines are written, then dropped
    handler = cast(logging.StreamHandler, app.logger.registered_handler)
    with contextlib.redirect_stdout(sink):
        handler.setStream(sink)
        first_start = time.perf_counter()
        assert app.lambda_handler(event, context)["statusCode"] == 200
        first_ms = (time.perf_counter() - first_start) * 1000
        samples = []
        started = time.perf_counter()
        cpu_started = time.process_time()
        for _ in range(requests):
            start = time.perf_counter()
            response = app.lambda_handler(event, context)
            samples.append((time.perf_counter() - start) * 1000)
            assert response["statusCode"] == 200
        elapsed = time.perf_counter() - started
        cpu_ms = (time.process_time() - cpu_started) * 1000
    handler.setStream(sys.stdout)
    return {
        "batch_size": batch_size,
        "requests": requests,
        "first_request_ms": round(first_ms, 2),
        **percentiles(samples),
        # The handler process's own CPU per request: its cost with a core to itself.
        "handler_cpu_ms_per_request": round(cpu_ms / requests, 2),
        "requests_per_s": round(requests / elapsed, 1),
        "records_per_s": round(requests * batch_size / elapsed, 1),
    }


def main() -> None:
    """Measure single-record and batch requests; write the result file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--endpoint-url", help="an endpoint server to call instead of the fake")
    parser.add_argument("--endpoint-name", default=ENDPOINT_NAME)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.endpoint_url or stack.enter_context(fake_endpoint_process(args.endpoint_name))
        single = measure_handler(url, args.endpoint_name, args.requests, batch_size=1)
        batch = measure_handler(url, args.endpoint_name, max(args.requests // 10, 20), 100)
    result = {
        "path": "Lambda handler -> boto3 sagemaker-runtime -> HTTP endpoint",
        "endpoint": args.endpoint_url or "tests.lambdas.fake_endpoint (separate process)",
        "target_p95_ms_single": TARGET_P95_MS,
        "single_record": single,
        "batch_of_100": batch,
        "meets_target": single["p95_ms"] <= TARGET_P95_MS,
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
