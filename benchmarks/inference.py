"""Latency and throughput of real-time inference, from the hooks to the prediction API.

Measures the two model shapes that training produces, each with training's default
architecture (``training.config.HyperParameters``: hidden 64, 2 layers) trained for a few
optimiser steps (which change the weights, not the cost of a forward pass):

* ``no_notes_uci_shape``: codes and tabular towers only. The UCI ETL writes ``note_text``
  null, so a model trained on UCI data has no notes encoder;
* ``notes_mimic_shape``: plus the notes encoder (2 layers over up to 256 tokens), as MIMIC-III
  discharge summaries give.

For each, one realistic encounter (its source's codes, a 1,500-word discharge note,
ignored by the no-notes model), top-5 occlusion factors included:

1. ``hooks_single_record``: ``input_fn -> predict_fn -> output_fn`` in a process that has
   only loaded the model (``model_fn``), as a serving worker has;
2. ``server_http_single_record``: ``POST /invocations`` to ``python -m inference.serve`` in its
   own process, over a kept-alive HTTP connection;
3. ``lambda_to_server_single_record``: ``lambdas.predict.app.lambda_handler`` on an API Gateway
   event, calling that server through boto3 sagemaker-runtime (validation, hashing, metrics
   and logging included);
4. ``hooks_batch_100``: the largest batch the API sends, in that process;
5. ``model_without_factors_single_record``: encode, forward and calibrate only, to show what
   the top factors cost;

and once, the Lambda module's cold import in fresh interpreters (benchmarks/api_cold_import.py).

Sequential requests, one client; throughput is requests per second of that loop. Run with
``python benchmarks/inference.py [--out PATH]`` (writes benchmarks/results/inference.json by
default). The load average is recorded: on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.api_cold_import import time_imports  # noqa: E402
from lambdas.predict import settings as predict_env  # noqa: E402 (after the path setup)
from training.config import HyperParameters  # noqa: E402
from training.synthetic import NOTE_WORDS, write_synthetic_dataset  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "inference.json"
ENDPOINT_NAME = "readmission-benchmark"
DEID_KEY = "benchmark-deidentification-key"
TARGET_MODEL_P95_MS = 10.0
TARGET_LOCAL_PATH_P95_MS = 30.0
TARGET_COLD_IMPORT_MS = 300.0
SEED_SYSTEM_P95_MS = 150.0
TRAINING_STEPS = 12
TRAINING_RECORDS = 1500
#: Words of the benchmark's discharge note: a MIMIC-III discharge summary runs to about 1,500
#: words (10,000 characters), of which the model keeps the first 256 tokens.
NOTE_WORDS_PER_RECORD = 1500


def summarise(
    latencies_s: list[float], first_s: float, cpu_s: float, records: int = 1
) -> dict[str, float]:
    """p50/p95/p99 and throughput of a sequential loop (first request reported apart).

    ``cpu_ms_per_request_this_process`` is this process's CPU time per request: for the
    in-process scenarios the cost of a request itself, which the machine's load barely moves.
    """
    ms = np.asarray(latencies_s) * 1000.0
    total_s = float(np.sum(latencies_s))
    return {
        "cpu_ms_per_request_this_process": round(cpu_s * 1000.0 / len(latencies_s), 2),
        "requests": len(latencies_s),
        "records_per_request": records,
        "first_request_ms": round(first_s * 1000.0, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "requests_per_s": round(len(latencies_s) / total_s, 1),
        "records_per_s": round(records * len(latencies_s) / total_s, 1),
    }


def measure(
    call: Callable[[], Any], requests: int, warmup: int, records: int = 1
) -> dict[str, float]:
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(warmup):
        call()
    latencies = []
    cpu_start = time.process_time()
    for _ in range(requests):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return summarise(latencies, first, time.process_time() - cpu_start, records)


def train_default_model(work: Path, with_notes: bool) -> tuple[Path, dict[str, Any]]:
    """Train the default architecture for a few steps; return the model dir and its settings.

    Without notes in the data, training builds no notes encoder (the UCI-trained shape).
    """
    from training.train import main as train_main

    features = write_synthetic_dataset(
        work / "data", TRAINING_RECORDS, seed=3, with_notes=with_notes
    )
    args = [
        "--data-dir", str(features), "--model-dir", str(work / "model"),
        "--output-dir", str(work / "output"), "--checkpoint-dir", str(work / "checkpoints"),
        "--epochs", "1", "--max-steps", str(TRAINING_STEPS), "--baseline", "false",
        "--log-every", "0",
    ]  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):
        train_main(args)
    defaults = dataclasses.asdict(HyperParameters())
    architecture = {
        k: defaults[k]
        for k in (
            "hidden_size", "num_layers", "num_heads", "fusion_size", "tabular_hidden_size",
            "category_embedding_dim", "note_hidden_size", "note_num_layers", "max_code_length",
            "note_max_length", "note_vocab_size", "dropout",
        )
    }  # fmt: skip
    if not with_notes:
        for key in ("note_hidden_size", "note_num_layers", "note_max_length", "note_vocab_size"):
            architecture.pop(key)
    return work / "model", architecture


#: Codes per field of each shape's benchmark record: (diagnoses, procedures, medications, labs).
#: UCI Diabetes-130 carries at most 3 diagnoses, no procedures, the few diabetes drugs given and
#: at most 2 abnormal labs; a MIMIC-III admission carries many of each, so its record fills the
#: model's 64 code tokens (and its note the 256 note tokens): each shape's realistic worst case.
RECORD_CODES = {False: (3, 0, 4, 2), True: (16, 6, 10, 6)}


def benchmark_record(rng: np.random.Generator, with_notes: bool) -> dict[str, Any]:
    """A canonical encounter as each source's data shapes it (see ``RECORD_CODES``)."""
    from training.synthetic import DIAGNOSES, LABS, MEDICATIONS, PROCEDURES, synthetic_records

    diagnoses, procedures, medications, labs = RECORD_CODES[with_notes]
    record = dict(synthetic_records(1, seed=123, with_notes=True)[0][0])
    record.update(
        diagnosis_codes=[str(c) for c in rng.choice(DIAGNOSES, size=diagnoses, replace=False)],
        procedure_codes=[str(c) for c in rng.choice(PROCEDURES, size=procedures, replace=False)],
        medications=[str(c) for c in rng.choice(MEDICATIONS, size=medications, replace=False)],
        abnormal_labs=[str(c) for c in rng.choice(LABS, size=labs, replace=False)],
        note_text=(
            " ".join(str(w) for w in rng.choice(NOTE_WORDS, size=NOTE_WORDS_PER_RECORD))
            if with_notes
            else None
        ),
        admitting_service="cardiology",
        prior_outpatient_visits_12m=3 if not with_notes else None,
        days_since_last_discharge=42.0 if with_notes else None,
        prior_admissions_12m=2,
        prior_encounters_on_record=3,
        prior_readmissions_30d_on_record=1,
    )
    record.update(num_diagnoses=diagnoses, num_procedures=procedures, num_medications=medications)
    return record


def client_record(record: dict[str, Any]) -> dict[str, Any]:
    """The same encounter as a hospital sends it to POST /predict (raw ids)."""
    from contracts.encounter import model_input_fields

    out = {spec.name: record[spec.name] for spec in model_input_fields() if spec.name in record}
    out.update(patient_id="MRN-000123", encounter_id="ADM-000456")
    return out


def hooks_scenarios(model_dir: Path, record: dict[str, Any], requests: int) -> dict[str, Any]:
    import torch

    from inference.handler import input_fn, model_fn, output_fn, predict_fn
    from inference.payload import parse_request
    from inference.predictor import calibrated_probabilities

    torch.set_num_threads(1)  # as the server runs each request
    serving = model_fn(str(model_dir))
    single = json.dumps(record).encode("utf-8")
    batch = json.dumps({"instances": [record] * 100}).encode("utf-8")

    def run(body: bytes) -> Callable[[], Any]:
        return lambda: output_fn(
            predict_fn(input_fn(body, "application/json"), serving), "application/json"
        )

    def model_only() -> Any:
        """The score without its explanation: encode, forward, calibrate."""
        batch_records = parse_request(single, "application/json").records
        arrays = serving.encoder.encode(batch_records).arrays()
        with torch.inference_mode():
            tensors = {name: torch.from_numpy(array) for name, array in arrays.items()}
            logits = serving.scorer.logits(tensors).numpy()
        return calibrated_probabilities(logits, serving.logit_offset, serving.temperature)

    encoded = serving.encoder.encode([record])
    shape = {
        "code_tokens": int(encoded.code_mask.sum()),
        "note_tokens": int(encoded.note_mask.sum()) if encoded.note_mask is not None else 0,
        "model_parameters": int(sum(p.numel() for p in serving.model.parameters())),
    }
    return {
        "request": shape,
        "hooks_single_record": measure(run(single), requests, warmup=20),
        "model_without_factors_single_record": measure(model_only, requests, warmup=20),
        "hooks_batch_100": measure(run(batch), max(10, requests // 20), warmup=2, records=100),
    }


def hooks_in_serving_process(
    model_dir: Path, record: dict[str, Any], requests: int
) -> dict[str, Any]:
    """``hooks_scenarios`` in a fresh interpreter that only loads the model, as a serving
    process does (this one has trained models: its heap and thread pools are not a server's)."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--hooks-of", str(model_dir),
        "--requests", str(requests),
    ]  # fmt: skip
    out = subprocess.run(
        command, input=json.dumps(record), capture_output=True, text=True, check=True, cwd=ROOT
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@contextlib.contextmanager
def server_process(model_dir: Path, log_path: Path) -> Any:
    """``python -m inference.serve`` on a free port; yields its base URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "inference.serve", "--model-dir", str(model_dir), "--port", "0",
        "--endpoint-name", ENDPOINT_NAME,
    ]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log, stdout=log)
    try:
        deadline = time.monotonic() + 300
        url = ""
        while not url:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the endpoint server did not start; see its log")
            for line in log_path.read_text().splitlines():
                if "serving on " in line:
                    url = line.strip().rsplit("serving on ", 1)[1]
            time.sleep(0.1)
        # The workers load the model after the socket is bound: wait until one answers.
        from benchmarks.serving import ping

        while not ping(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the endpoint server did not answer; see its log")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def server_scenario(url: str, record: dict[str, Any], requests: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps(record).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def call() -> None:
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"server answered {response.status}")
        json.loads(payload)

    try:
        return measure(call, requests, warmup=20)
    finally:
        connection.close()


def api_event(body: dict[str, Any]) -> dict[str, Any]:
    """A minimal API Gateway REST proxy event for POST /predict."""
    headers = {"Content-Type": "application/json"}
    return {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": "benchmark-request",
            "stage": "bench",
            "path": "/bench/predict",
            "httpMethod": "POST",
            "resourcePath": "/predict",
            "identity": {"sourceIp": "198.51.100.7"},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


@dataclasses.dataclass
class _Context:
    function_name: str = "prediction-api-benchmark"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "benchmark-lambda-request"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def lambda_scenario(url: str, record: dict[str, Any], requests: int) -> dict[str, Any]:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "benchmark",
            "AWS_SECRET_ACCESS_KEY": "benchmark",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url,
            predict_env.ENDPOINT_NAME_ENV: ENDPOINT_NAME,
            predict_env.DEID_KEY_ENV: DEID_KEY,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    event = api_event(client_record(record))
    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        from lambdas.predict import app

        app.reset_state()  # each shape's server has its own URL

        def call() -> None:
            response = app.lambda_handler(event, _Context())
            if response["statusCode"] != 200:
                raise RuntimeError(f"the API answered {response['statusCode']}")

        return measure(call, requests, warmup=20)


def cold_import(runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {"module": "lambdas.predict.app", "runs": runs}
    for name, env in (
        ("tracing_off", {"POWERTOOLS_TRACE_DISABLED": "true"}),
        ("tracing_on_xray", {"AWS_LAMBDA_FUNCTION_NAME": "bench", "LAMBDA_TASK_ROOT": str(ROOT)}),
    ):
        wall, cpu = time_imports(runs, env)
        results[name] = {
            "median_ms": round(float(np.median(wall)), 1),
            "p95_ms": round(float(np.percentile(wall, 95)), 1),
            "min_ms": round(float(np.min(wall)), 1),
            "median_cpu_ms": round(float(np.median(cpu)), 1),
        }
    return results


#: Result key of each model shape, and whether its training data carries notes.
SHAPES = {"no_notes_uci_shape": False, "notes_mimic_shape": True}


def shape_scenarios(
    work: Path, with_notes: bool, record: dict[str, Any], requests: int
) -> dict[str, Any]:
    """Train one shape, then every per-model scenario, each judged against its target."""
    model_dir, architecture = train_default_model(work, with_notes)
    hooks = hooks_in_serving_process(model_dir, record, requests)
    with server_process(model_dir, work / "server.log") as url:
        server = server_scenario(url, record, requests)
        api = lambda_scenario(url, record, requests)
    return {
        "model": {
            "config": "training.config.HyperParameters defaults (the training job's default model)",
            "notes_encoder": with_notes,
            "architecture": architecture,
            "training_steps": TRAINING_STEPS,
            "attribution": "occlusion, top 5 factors per prediction",
            **hooks["request"],
        },
        "hooks_single_record": hooks["hooks_single_record"],
        "model_without_factors_single_record": hooks["model_without_factors_single_record"],
        "server_http_single_record": server,
        "lambda_to_server_single_record": api,
        "hooks_batch_100": hooks["hooks_batch_100"],
        "meets_targets": {
            "hooks_single_record_p95": hooks["hooks_single_record"]["p95_ms"]
            <= TARGET_MODEL_P95_MS,
            "lambda_to_server_p95": api["p95_ms"] <= TARGET_LOCAL_PATH_P95_MS,
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--import-runs", type=int, default=9)
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--hooks-of", type=Path, help=argparse.SUPPRESS)  # the child's role
    args = parser.parse_args(argv)
    if args.hooks_of:
        record = json.loads(sys.stdin.read())
        print(json.dumps(hooks_scenarios(args.hooks_of, record, args.requests)))
        return {}
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="inference-bench-"))
    try:
        shapes = {
            name: shape_scenarios(
                work / name,
                with_notes,
                benchmark_record(np.random.default_rng(7), with_notes),
                args.requests,
            )
            for name, with_notes in SHAPES.items()
        }
        imports = cold_import(args.import_runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import torch

    result = {
        "benchmark": "inference",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_threads_per_request": 1,
        **shapes,
        "lambda_cold_import": imports,
        "targets": {
            "hooks_single_record_p95_ms": TARGET_MODEL_P95_MS,
            "lambda_to_server_p95_ms": TARGET_LOCAL_PATH_P95_MS,
            "cold_import_ms": TARGET_COLD_IMPORT_MS,
            "seed_system_p95_ms": SEED_SYSTEM_P95_MS,
        },
        "meets_targets": {
            **{
                f"{name}_{target}": met
                for name, shape in shapes.items()
                for target, met in shape["meets_targets"].items()
            },
            "cold_import_tracing_off_median": imports["tracing_off"]["median_ms"]
            <= TARGET_COLD_IMPORT_MS,
        },
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
