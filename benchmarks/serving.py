"""Concurrency of the endpoint server, against the stdlib server it replaced, in the same run.

1. ``concurrency``: 32 client threads x 100 single-record ``POST /invocations`` each, every
   client on its own kept-alive connection, on loopback, first against the previous commit's
   stdlib ``ThreadingHTTPServer`` (``inference/serve.py`` at ``LEGACY_REVISION``, copied out of
   git into a temporary folder at run time: it is not part of the product), then against
   ``python -m inference.serve`` (uvicorn, one worker per CPU). Per server: errors (connection
   resets, timeouts, non-200), p50/p95/p99 latency, throughput, and whether ``/ping`` and one
   invocation still answer afterwards.
2. ``batch_invariance_cost``: a 100-record request scored in one batched pass (what the server
   does) against the same records scored one at a time (what bitwise batch invariance would
   take), per model shape, in this process.

The model is training's default architecture trained for a few steps (benchmarks/inference.py),
UCI shape (no notes) for the servers. Bounded: each client stops at its 100 requests or after
``CLIENT_DEADLINE_S``. Run with ``python benchmarks/serving.py [--out PATH]`` (``make bench``);
writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.inference import benchmark_record, train_default_model  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "serving.json"
#: The last commit whose inference/serve.py is the stdlib server.
LEGACY_REVISION = "253cfc5b4d5b749631abb9054470fcaa33dd4890"
CLIENTS = 32
REQUESTS_PER_CLIENT = 100
CLIENT_TIMEOUT_S = 60.0
CLIENT_DEADLINE_S = 300.0
START_TIMEOUT_S = 300.0
BATCH_RECORDS = 100


@contextlib.contextmanager
def started(command: list[str], log_path: Path) -> Iterator[tuple[str, int]]:
    """Start a server command with ``--port 0``; yield its URL and process id once ``/ping``
    answers 200; stop it on exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = ""
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {log_path}")
            lines = log_path.read_text().splitlines()
            urls = [line.rsplit("serving on ", 1)[1] for line in lines if "serving on " in line]
            if urls:
                url = urls[0].strip()
                if ping(url):
                    break
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(command: list[str], log_path: Path) -> Iterator[str]:
    """:func:`started`, yielding the URL only."""
    with started(command, log_path) as (url, _):
        yield url


def _connection(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=CLIENT_TIMEOUT_S)


def ping(url: str) -> bool:
    try:
        connection = _connection(url)
        connection.timeout = 2
        connection.request("GET", "/ping")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except OSError:
        return False


def invoke_once(url: str, body: bytes) -> bool:
    try:
        connection = _connection(url)
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        ok = response.status == 200 and bool(json.loads(response.read())["predictions"])
        connection.close()
        return ok
    except (OSError, ValueError, KeyError):
        return False


def client(url: str, body: bytes, stop_at: float) -> tuple[list[float], dict[str, int]]:
    """One client: up to ``REQUESTS_PER_CLIENT`` requests on one kept-alive connection
    (reconnecting after an error); latencies of the successful ones and errors by kind."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    connection = _connection(url)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    for _ in range(REQUESTS_PER_CLIENT):
        if time.monotonic() > stop_at:
            errors["not_sent_deadline"] = errors.get("not_sent_deadline", 0) + 1
            continue
        started = time.perf_counter()
        try:
            connection.request("POST", "/invocations", body, headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                kind = f"status_{response.status}"
                errors[kind] = errors.get(kind, 0) + 1
                continue
            json.loads(payload)
            latencies.append(time.perf_counter() - started)
        except (OSError, http.client.HTTPException, ValueError) as e:
            kind = type(e).__name__
            errors[kind] = errors.get(kind, 0) + 1
            connection.close()
            connection = _connection(url)
    connection.close()
    return latencies, errors


def load(url: str, body: bytes) -> dict[str, Any]:
    """``CLIENTS`` clients at once; the figures of the whole run."""
    stop_at = time.monotonic() + CLIENT_DEADLINE_S
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(lambda _: client(url, body, stop_at), range(CLIENTS)))
    wall = time.perf_counter() - started
    latencies = np.asarray([s for samples, _ in results for s in samples]) * 1000.0
    errors: dict[str, int] = {}
    for _, kinds in results:
        for kind, count in kinds.items():
            errors[kind] = errors.get(kind, 0) + count
    ok = len(latencies)
    return {
        "clients": CLIENTS,
        "requests_per_client": REQUESTS_PER_CLIENT,
        "requests": CLIENTS * REQUESTS_PER_CLIENT,
        "succeeded": ok,
        "errors": sum(errors.values()),
        "errors_by_kind": errors,
        "p50_ms": round(float(np.percentile(latencies, 50)), 2) if ok else None,
        "p95_ms": round(float(np.percentile(latencies, 95)), 2) if ok else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 2) if ok else None,
        "max_ms": round(float(latencies.max()), 2) if ok else None,
        "wall_s": round(wall, 2),
        "throughput_requests_per_s": round(ok / wall, 1),
        "healthy_after": ping(url) and invoke_once(url, body),
    }


def legacy_server(work: Path) -> Path | None:
    """The previous commit's stdlib server, written to a temporary file (None without git)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{LEGACY_REVISION}:inference/serve.py"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = work / "legacy_stdlib_serve.py"
    path.write_text(source)
    return path


def concurrency(model_dir: Path, record: dict[str, Any], work: Path) -> dict[str, Any]:
    body = json.dumps(record).encode("utf-8")
    results: dict[str, Any] = {}
    legacy = legacy_server(work)
    servers = {
        "new_uvicorn": [sys.executable, "-m", "inference.serve"],
        **({"old_stdlib_threading": [sys.executable, str(legacy)]} if legacy else {}),
    }
    for name in ("old_stdlib_threading", "new_uvicorn"):
        if name not in servers:
            results[name] = {"skipped": "git history not available"}
            continue
        command = [*servers[name], "--model-dir", str(model_dir), "--port", "0"]
        with running(command, work / f"{name}.log") as url:
            print(f"{name}: {CLIENTS} clients x {REQUESTS_PER_CLIENT}", file=sys.stderr)
            results[name] = load(url, body)
    results["old_stdlib_threading"]["server"] = f"inference/serve.py at {LEGACY_REVISION[:7]}"
    results["new_uvicorn"]["server"] = "python -m inference.serve"
    results["new_uvicorn"]["workers"] = os.cpu_count()
    return results


def batch_cost(model_dir: Path, with_notes: bool) -> dict[str, Any]:
    """Records per second of one 100-record batched pass against one record at a time."""
    import torch

    from inference.handler import model_fn
    from inference.payload import EncounterBatch
    from inference.predictor import predict
    from training.synthetic import synthetic_records

    torch.set_num_threads(1)
    serving = model_fn(str(model_dir))
    records: list[Mapping[str, Any]] = list(
        synthetic_records(BATCH_RECORDS, seed=3, with_notes=with_notes)[0]
    )

    def batched() -> Any:
        return predict(serving, EncounterBatch(records=records, batched=True))

    def one_by_one() -> Any:
        return [predict(serving, EncounterBatch(records=[r], batched=False)) for r in records]

    timings: dict[str, list[float]] = {"batched": [], "one_by_one": []}
    for run in (batched, one_by_one) * 4:  # interleaved, the first of each a warm-up
        started = time.perf_counter()
        run()
        timings[run.__name__].append(time.perf_counter() - started)
    rates = {k: BATCH_RECORDS / float(np.median(v[1:])) for k, v in timings.items()}
    together = batched()
    alone = [p for chunk in one_by_one() for p in chunk]
    return {
        "records": BATCH_RECORDS,
        "batched_records_per_s": round(rates["batched"], 1),
        "one_by_one_records_per_s": round(rates["one_by_one"], 1),
        "throughput_cost_of_bitwise_invariance": round(
            1.0 - rates["one_by_one"] / rates["batched"], 3
        ),
        "bitwise_equal_records": sum(a == b for a, b in zip(alone, together, strict=True)),
        "max_probability_difference": float(
            max(
                abs(a["probability"] - b["probability"])
                for a, b in zip(alone, together, strict=True)
            )
        ),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    try:
        uci_dir, _ = train_default_model(work / "uci", with_notes=False)
        record = benchmark_record(np.random.default_rng(7), with_notes=False)
        servers = concurrency(uci_dir, record, work)
        mimic_dir, _ = train_default_model(work / "mimic", with_notes=True)
        costs = {
            "no_notes_uci_shape": batch_cost(uci_dir, with_notes=False),
            "notes_mimic_shape": batch_cost(mimic_dir, with_notes=True),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import torch

    result = {
        "benchmark": "serving",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "concurrency": servers,
        "batch_invariance_cost": costs,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
