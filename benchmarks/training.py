"""Training benchmark on the UCI Diabetes-130 ETL output.

Runs the real training job (``training.train.main``) with its default hyperparameters on the ETL's
patient-level split and writes samples per second, wall time and the test metrics (model and
logistic baseline) to ``benchmarks/results/training.json``. Targets: test AUROC >= 0.68 and
above the baseline; training within 15 minutes on 2 CPU cores.

    python benchmarks/training.py [--data runs/benchmarks/uci-etl] [--device-label cpu-2core]

Without ETL output of this contract version at ``--data`` it (re)runs the UCI ETL
(``glue_jobs.ehr_features``, Spark local mode, about a minute) on ``data/uci-diabetes`` first,
so a fresh clone measures the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from contracts.etl_manifest import MANIFEST_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_DATA = str(REPO_ROOT / "runs" / "benchmarks" / "uci-etl")
UCI_INPUT = REPO_ROOT / "data" / "uci-diabetes"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "training.json"
TARGET_TEST_AUROC = 0.68
TARGET_TRAIN_SECONDS = 15 * 60


def _machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = os.getloadavg()[0]
    return info


def run(data: Path, extra_args: list[str]) -> dict[str, Any]:
    """Train once on ``data`` (an ETL output folder) and return the benchmark record."""
    from training.train import main

    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        started = time.perf_counter()
        result = main(
            [
                "--data-dir", str(data / "features"),
                "--model-dir", f"{tmp}/model",
                "--output-dir", f"{tmp}/output",
                "--checkpoint-dir", "",
                *extra_args,
            ]
        )  # fmt: skip
        wall = time.perf_counter() - started
    if result is None:
        raise RuntimeError("the benchmark must run as a single process (rank 0)")
    training = result.metrics["training"]
    test = result.metrics["test"]
    baseline = result.metrics["baseline"] or {}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = os.getloadavg()[0]
    return {
        "dataset": str(data),
        "machine": machine,
        "args": extra_args,
        "wall_seconds": wall,
        "train_seconds": training["train_seconds"],
        "samples_per_second": training["samples_per_second"],
        "epochs_run": training["epochs_run"],
        "best_epoch": training["best_epoch"],
        "rows": result.metrics.get("rows"),
        "tree_blend": result.metrics.get("tree_blend"),
        "test": test,
        "validation": result.metrics["validation"],
        "baseline": baseline,
        "targets": {
            "test_auroc_min": TARGET_TEST_AUROC,
            "train_seconds_max": TARGET_TRAIN_SECONDS,
            "test_auroc_met": (test.get("auroc") or 0.0) >= TARGET_TEST_AUROC,
            "beats_baseline": (test.get("auroc") or 0.0) > (baseline.get("auroc") or 1.0),
            "train_time_met": training["train_seconds"] <= TARGET_TRAIN_SECONDS,
        },
    }


def is_current(data: Path) -> bool:
    """Whether ``data`` holds an ETL output written under this contract version."""
    from contracts.encounter import SCHEMA_VERSION

    manifest = data / MANIFEST_FILE
    if not (data / "features").is_dir() or not manifest.is_file():
        return False
    return bool(json.loads(manifest.read_text()).get("schema_version") == SCHEMA_VERSION)


def run_etl(output: Path) -> None:
    """Run the UCI ETL in its own process (its JVM must not share this one's memory).

    Its local Spark session defaults ``SPARK_LOCAL_IP`` to loopback (glue_jobs.spark_session).
    """
    command = [
        sys.executable, "-m", "glue_jobs.ehr_features",
        "--source", "uci_diabetes", "--input", str(UCI_INPUT), "--output", str(output),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--device-label", default="", help="key to store this run under")
    parser.add_argument("--output", default=str(RESULTS))
    args, extra = parser.parse_known_args(argv)
    data = Path(args.data)
    if not is_current(data):
        shutil.rmtree(data, ignore_errors=True)
        run_etl(data)
    record = run(data, extra)
    label = args.device_label or ("gpu" if record["machine"]["cuda"] else "cpu")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(output.read_text()) if output.is_file() else {}
    results[label] = record
    output.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(json.dumps({label: {k: record[k] for k in ("wall_seconds", "samples_per_second")}}))


if __name__ == "__main__":
    main()
