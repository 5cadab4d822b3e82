"""A CDS Hooks call against ``POST /predict``, same patient, same run, on the local path.

Each sample is one HTTP request to the local API Gateway (``local_platform.gateway``), which
runs what API Gateway runs in AWS: for the hook, the JWT authorizer (a fresh token per call,
as an EHR sends, so the gateway's authorizer cache never answers; the EHR's JWKS is fetched
once over HTTP and its parsed keys are then held by PyJWKClient, as in a warm container), then
the prediction function (jti replay check, hook validation, FHIR mapping of the prefetch,
de-identification, the boto3 sagemaker-runtime call to the endpoint, the card). ``/predict``
gets the same stay as the platform's JSON, and as a FHIR Bundle. Requests are interleaved
(hook, JSON, FHIR, hook, ...) so all three see the same load; the load average is recorded at
the start and the end. Token signing is the EHR's work and is done before the clock starts.

Two endpoints, one after the other:

* ``model_endpoint`` (the headline): the local model server the demo starts,
  ``python -m inference.serve``, serving training's default architecture trained for a few
  steps on synthetic data of the UCI shape (no notes encoder: the demo's default source, and
  the cheapest real endpoint, so the strictest test of the ratio). Both routes pay the same
  endpoint cost, as in AWS;
* ``fake_endpoint_overhead_only``: the test suite's zero-cost fake endpoint
  (``tests.lambdas.fake_endpoint``), so the figures are the API side's own cost: the overhead
  view, where the hook's fixed extra work (an ES384 signature check, the FHIR mapping) weighs
  most against a ``/predict`` that does almost nothing.

``cpu_ms_mean`` is this process's CPU per call (client, gateway, authorizer and function; not
the endpoint's process): the route's own cost, which the machine's load moves far less than
wall time. With the model server, ``endpoint_cpu_ms_mean`` is the server's CPU per call (its
supervisor and workers) and ``total_cpu_ms_mean`` the sum: the whole path's work, what a quiet
machine would spend.

Also recorded: the cold import of the prediction function with the FHIR mapping and the CDS
service in it, and of the authorizer (fresh interpreters, after the Lambda runtime's own
bootstrap, as in ``api_cold_import.py``).

Targets (issue #18): hook p95 within 1.5x of /predict's and under 50 ms.

Run: ``python benchmarks/cds_hooks.py [--requests N] [--endpoint model|fake|both]`` (writes
benchmarks/results/cds_hooks.json).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from unittest import mock
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.api_latency import fake_endpoint_process, percentiles  # noqa: E402
from lambdas.cds_authorizer import app as authorizer_app  # noqa: E402
from lambdas.predict import settings as predict_env  # noqa: E402 (after the path setup)

RESULT = ROOT / "benchmarks" / "results" / "cds_hooks.json"
ENDPOINT_NAME = "readmission-cds-benchmark"
TARGET_P95_MS = 50.0
TARGET_RATIO = 1.5
WARMUP = 20
IMPORT_RUNS = 7
_TIMED_IMPORT = (
    "import awslambdaric.bootstrap, time; t = time.perf_counter(); c = time.process_time(); "
    "import {module}; "
    "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)"
)


def stay() -> tuple[list[dict[str, Any]], str, str]:
    """A discharged patient's record as an EHR holds it (history, diagnoses, labs, a note)."""
    from contracts import fhir
    from local_platform import ehr_bundle as b

    admitted = datetime(2025, 9, 10, 14, tzinfo=UTC)
    end = admitted + timedelta(days=5)
    resources = [
        b.patient("bench-p", "1946-03-12", "female"),
        b.encounter("bench-e", "bench-p", admitted, end, service="cardiology"),
        b.encounter(
            "bench-h1", "bench-p", admitted - timedelta(days=50), admitted - timedelta(days=46)
        ),
        *(
            b.condition(f"c{n}", "bench-p", "bench-e", code, fhir.SYSTEM_ICD10CM)
            for n, code in enumerate(("I50.9", "E11.9", "N18.3", "I10", "E78.5", "J44.9"))
        ),
        b.procedure("x1", "bench-p", "bench-e", "02HV33Z", fhir.SYSTEM_ICD10PCS),
        *(
            b.medication_request(f"m{n}", "bench-p", "bench-e", name, admitted + timedelta(hours=n))
            for n, name in enumerate(("furosemide", "metformin", "lisinopril", "atorvastatin"))
        ),
        *(
            b.observation(
                f"o{n}",
                "bench-p",
                "bench-e",
                name=f"lab {n}",
                loinc="2345-7",
                value=100.0 + 10 * n,
                effective=admitted + timedelta(hours=n),
                abnormal=n % 3 == 0,
            )
            for n in range(20)
        ),
        b.discharge_summary(
            "d1", "bench-p", "bench-e", "Discharged home with follow-up. " * 40, end
        ),
    ]
    return resources, "bench-p", "bench-e"


class Client:
    """One keep-alive HTTP connection to the gateway."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)

    def post(self, path: str, body: str, headers: dict[str, str]) -> tuple[float, float]:
        """Wall and CPU (this process) milliseconds of one call answered 200."""
        start, cpu = time.perf_counter(), time.process_time()
        self.connection.request("POST", path, body=body.encode("utf-8"), headers=headers)
        response = self.connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - start) * 1000
        used = (time.process_time() - cpu) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        return elapsed, used


def route_summary(wall_ms: list[float], cpu_ms: list[float]) -> dict[str, Any]:
    """Percentiles of one route's wall times, and its mean CPU per call in this process."""
    return {
        "requests": len(wall_ms),
        **percentiles(wall_ms),
        "cpu_ms_mean": round(statistics.fmean(cpu_ms), 2),
    }


def verdict(latency: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The hook's p95 over the JSON ``/predict``'s, and whether both targets are met."""
    hook_p95, predict_p95 = latency["cds_hook"]["p95_ms"], latency["predict_json"]["p95_ms"]
    return {
        "hook_over_predict_p95": round(hook_p95 / predict_p95, 2),
        "hook_over_predict_p50": round(
            latency["cds_hook"]["p50_ms"] / latency["predict_json"]["p50_ms"], 2
        ),
        "meets_targets": hook_p95 < TARGET_P95_MS and hook_p95 <= TARGET_RATIO * predict_p95,
    }


def measure(endpoint_url: str, requests: int, endpoint_pid: int | None = None) -> dict[str, Any]:
    """Interleaved hook, JSON /predict and FHIR /predict calls through the local gateway; with
    ``endpoint_pid``, also the endpoint server's CPU per call."""
    from fhir_mapping import map_bundle
    from lambdas.cds_authorizer.settings import AUDIENCE_BASE_URL_ENV, ISSUERS_ENV
    from lambdas.cds_hooks.service import SERVICE_PATH
    from lambdas.predict import app
    from local_platform import ehr
    from local_platform import ehr_bundle as b
    from local_platform.gateway import LocalApiGateway, Route

    resources, patient_id, encounter_id = stay()
    bundle = b.bundle(resources)
    record = map_bundle(bundle, discharged_at=datetime.now(UTC)).record
    hook = json.dumps(ehr.hook_request(resources, patient_id, encounter_id))
    identity = ehr.EhrIdentity.generate()
    with contextlib.ExitStack() as stack:
        jwks_url = stack.enter_context(ehr.jwks_server(identity.jwks()))
        routes = [
            Route("POST", "/predict", app.lambda_handler, "predict"),
            *ehr.cds_routes("predict"),
        ]
        gateway = stack.enter_context(LocalApiGateway(routes))
        stack.enter_context(
            mock.patch.dict(
                os.environ,
                {
                    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
                    predict_env.ENDPOINT_NAME_ENV: ENDPOINT_NAME,
                    predict_env.DEID_KEY_ENV: "benchmark-key",
                    "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                    "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "benchmark"),
                    "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "benchmark"),
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    ISSUERS_ENV: json.dumps({identity.issuer: jwks_url}),
                    AUDIENCE_BASE_URL_ENV: gateway.url,
                },
            )
        )
        app.reset_state()
        authorizer_app.reset_keys()
        sink = io.StringIO()  # the functions' log and metric lines are written, then dropped
        handler = cast(logging.StreamHandler, app.logger.registered_handler)
        stack.enter_context(contextlib.redirect_stdout(sink))
        handler.setStream(sink)
        stack.callback(handler.setStream, sys.stdout)
        logging.getLogger("cds-authorizer").disabled = True
        client = Client(gateway.url)
        service_url = f"{gateway.url}{SERVICE_PATH}"
        tokens = [identity.token(service_url) for _ in range(requests + WARMUP)]
        json_body, fhir_body = json.dumps(record), json.dumps(bundle)
        calls: dict[str, tuple[str, str, dict[str, str]]] = {
            "cds_hook": (SERVICE_PATH, hook, {"Content-Type": "application/json"}),
            "predict_json": ("/predict", json_body, {"Content-Type": "application/json"}),
            "predict_fhir": (
                "/predict",
                fhir_body,
                {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
            ),
        }
        wall: dict[str, list[float]] = {name: [] for name in calls}
        cpu: dict[str, list[float]] = {name: [] for name in calls}
        endpoint_cpu: dict[str, list[float]] = {name: [] for name in calls}
        endpoint = EndpointCpu(endpoint_pid)
        for n, token in enumerate(tokens):
            for name, (path, body, headers) in calls.items():
                if name == "cds_hook":
                    headers = {**headers, "Authorization": f"Bearer {token}"}
                endpoint_before = endpoint.ms()
                elapsed, used = client.post(path, body, headers)
                if n >= WARMUP:
                    wall[name].append(elapsed)
                    cpu[name].append(used)
                    endpoint_cpu[name].append(endpoint.ms() - endpoint_before)
    latency = {name: route_summary(wall[name], cpu[name]) for name in calls}
    if endpoint_pid is not None:
        for name, values in endpoint_cpu.items():
            latency[name]["endpoint_cpu_ms_mean"] = round(statistics.fmean(values), 2)
            latency[name]["total_cpu_ms_mean"] = round(
                latency[name]["cpu_ms_mean"] + latency[name]["endpoint_cpu_ms_mean"], 2
            )
    return {"latency": latency, **verdict(latency)}


class EndpointCpu:
    """CPU time used so far by the endpoint server's processes (its supervisor and workers)."""

    def __init__(self, pid: int | None) -> None:
        import psutil

        root = None if pid is None else psutil.Process(pid)
        self._processes = [] if root is None else [root, *root.children(recursive=True)]

    def ms(self) -> float:
        total = 0.0
        for process in self._processes:
            times = process.cpu_times()
            total += times.user + times.system
        return total * 1000


@contextlib.contextmanager
def model_endpoint(work: Path) -> Iterator[tuple[str, int]]:
    """The demo's local model server (``python -m inference.serve``) serving a freshly trained
    UCI-shape model; yields its URL and process id."""
    from benchmarks.inference import train_default_model
    from benchmarks.serving import started

    model_dir, _ = train_default_model(work / "uci", with_notes=False)
    command = [
        sys.executable, "-m", "inference.serve", "--model-dir", str(model_dir), "--port", "0",
        "--endpoint-name", ENDPOINT_NAME,
    ]  # fmt: skip
    with started(command, work / "serve.log") as (url, pid):
        time.sleep(1.0)  # the workers' own start-up is not the calls' cost
        yield url, pid


def cold_import(module: str) -> dict[str, float]:
    """Median and max import time of ``module`` in fresh interpreters, and the median CPU time
    (which moves less with the machine's load than wall time does)."""
    samples, cpu = [], []
    for _ in range(IMPORT_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "PYDANTIC_DISABLE_PLUGINS": "__all__",
                "POWERTOOLS_TRACE_DISABLED": "true",
            },
        )
        wall, used = out.stdout.strip().splitlines()[-1].split()
        samples.append(float(wall))
        cpu.append(float(used))
    return {
        "median_ms": round(statistics.median(samples), 1),
        "max_ms": round(max(samples), 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--endpoint", choices=("model", "fake", "both"), default="both")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    result: dict[str, Any] = {
        "path": "local API Gateway (HTTP) -> [JWT authorizer] -> predict Lambda -> boto3 -> "
        "HTTP endpoint",
        "order": "interleaved per round: cds_hook, predict_json, predict_fhir",
        "targets": {"p95_ms_under": TARGET_P95_MS, "ratio_to_predict_p95": TARGET_RATIO},
    }
    if args.endpoint in ("model", "both"):
        with tempfile.TemporaryDirectory() as work, model_endpoint(Path(work)) as (url, pid):
            result["model_endpoint"] = {
                "endpoint": "python -m inference.serve (the demo's model server; training's "
                "default architecture, UCI shape, no notes encoder; workers: one per CPU)",
                **measure(url, args.requests, endpoint_pid=pid),
            }
    if args.endpoint in ("fake", "both"):
        with fake_endpoint_process(ENDPOINT_NAME) as url:
            result["fake_endpoint_overhead_only"] = {
                "endpoint": "tests.lambdas.fake_endpoint (separate process, zero model cost)",
                **measure(url, args.requests),
            }
    load_end = os.getloadavg()[0]
    result["cold_import"] = {
        "lambdas.predict.app (with fhir_mapping and the CDS service)": cold_import(
            "lambdas.predict.app"
        ),
        "lambdas.cds_authorizer.app": cold_import("lambdas.cds_authorizer.app"),
    }
    result["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_1m_start": round(load_start, 2),
        "load_average_1m_end_of_latency_runs": round(load_end, 2),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
