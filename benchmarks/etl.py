"""ETL scale benchmark: generated data at 100k and 1M admissions on local[2], per source.

Writes admissions per minute, wall seconds and peak memory (max summed RSS of the JVM and
the Python processes, sampled with psutil) to benchmarks/results/etl.json. Generation time is
reported apart and not counted in the ETL rate. ``runs`` are the MIMIC-III source at each
size; ``sources`` compares the same generated patients at the largest size in the other
layouts (MIMIC-IV ``hosp``, FHIR R4 Bulk Data NDJSON) against MIMIC-III, in the same run.

    python benchmarks/etl.py [--sizes 100000 1000000] [--sources mimic4 fhir]
        [--work-dir /tmp/readmission-bench] [--keep-data] [--results PATH]

The results file is rewritten after every source's run (``complete`` is false until the last
one), so a late failure loses none of the figures already measured; what the file held before
the run is kept in its ``history``. With ``--keep-data`` each generated dataset is kept in the
work folder and reused by a later run of the same size, seed and layout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glue_jobs.ehr_features import run_job
from glue_jobs.spark_session import DEFAULT_DRIVER_MEMORY, build_local_session
from glue_jobs.synthetic_ehr import generate

RESULTS = Path(__file__).resolve().parent / "results" / "etl.json"
SEED = 2024
MARKER = "SYNTHETIC.json"
TARGET_ADMISSIONS_PER_MINUTE = 250_000
DRIVER_MEMORY_LIMIT_MB = 4096
SAMPLE_SECONDS = 0.5
BENCH_KEY = "benchmark-key"
NOTE = (
    "2-core machine; load_average_at_start shows what else was running. Peak memory is the "
    "RSS of the Spark driver JVM plus this Python process (data generation runs in a child)."
)


class PeakMemory:
    """Samples the summed RSS of this process and its children (JVM, Python workers)."""

    def __init__(self) -> None:
        self.peak_total_mb = 0.0
        self.peak_jvm_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            total = jvm = 0.0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss = proc.memory_info().rss / 2**20
                    total += rss
                    if "java" in proc.name():
                        jvm += rss
                except psutil.Error:
                    continue
            self.peak_total_mb = max(self.peak_total_mb, total)
            self.peak_jvm_mb = max(self.peak_jvm_mb, jvm)
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def generated_rows(source: Path, admissions: int, layout: str) -> dict[str, int] | None:
    """The row counts of a dataset already generated in ``source`` with this size, seed and
    layout (read from its marker file), or None."""
    try:
        marker = json.loads((source / MARKER).read_text())
    except (OSError, ValueError):
        return None
    same = (marker.get("admissions"), marker.get("seed"), marker.get("layout", "mimic3")) == (
        admissions,
        SEED,
        layout,
    )
    return dict(marker["rows"]) if same else None


def generate_once(source: Path, admissions: int, layout: str) -> tuple[dict[str, int], float]:
    """Generate the dataset unless ``source`` already holds it; (row counts, seconds spent)."""
    reused = generated_rows(source, admissions, layout)
    if reused is not None:
        return reused, 0.0
    started = time.monotonic()
    # Generate in a child process: its arrays would otherwise stay in this process's RSS and
    # be counted as the ETL driver's memory.
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        rows = pool.submit(generate, admissions, SEED, str(source), False, layout).result()
    return rows, time.monotonic() - started


def bench_one(
    spark: Any, admissions: int, work: Path, layout: str = "mimic3", keep_data: bool = False
) -> dict[str, Any]:
    """Generate ``admissions`` admissions in ``layout`` (or reuse them, ``keep_data``), then
    time that source's ETL on them."""
    source = work / f"synthetic-{layout}-{admissions}"
    output = work / f"etl-{layout}-{admissions}"
    rows, generation_seconds = generate_once(source, admissions, layout)
    shutil.rmtree(output, ignore_errors=True)
    load_before = os.getloadavg()[0]
    with PeakMemory() as memory:
        started = time.monotonic()
        manifest = run_job(spark, layout, str(source), str(output), BENCH_KEY)
        wall = time.monotonic() - started
    if not keep_data:
        shutil.rmtree(source, ignore_errors=True)
    return {
        "source": layout,
        "admissions": admissions,
        "child_rows": sum(
            v for k, v in rows.items() if k not in ("ADMISSIONS", "hosp/admissions", "Encounter")
        ),
        "generation_seconds": round(generation_seconds, 1),
        "data_reused": generation_seconds == 0.0,
        "etl_wall_seconds": round(wall, 1),
        "admissions_per_minute": round(admissions / wall * 60),
        "peak_rss_mb_total": round(memory.peak_total_mb),
        "peak_rss_mb_jvm": round(memory.peak_jvm_mb),
        "rows_out": manifest["rows_out"],
        "reconciled": manifest["reconciled"],
        "load_average_at_start": round(load_before, 2),
    }


def summarise(
    runs: list[dict[str, Any]], others: list[dict[str, Any]], complete: bool
) -> dict[str, Any]:
    """The results file's figures from the runs done so far (``complete`` once all are)."""
    largest, smallest = runs[-1], runs[0]
    size_ratio = largest["admissions"] / smallest["admissions"]
    time_ratio = largest["etl_wall_seconds"] / smallest["etl_wall_seconds"]
    return {
        "benchmark": "etl",
        "complete": complete,
        "master": "local[2]",
        "driver_memory": DEFAULT_DRIVER_MEMORY,
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "note": NOTE,
        "target_admissions_per_minute": TARGET_ADMISSIONS_PER_MINUTE,
        "runs": runs,
        "sources": {
            run["source"]: {
                **run,
                "wall_time_vs_mimic3": round(
                    run["etl_wall_seconds"] / largest["etl_wall_seconds"], 2
                ),
                "same_rows_out_as_mimic3": run["rows_out"] == largest["rows_out"],
            }
            for run in others
        },
        "meets_rate_target": largest["admissions_per_minute"] >= TARGET_ADMISSIONS_PER_MINUTE,
        "wall_time_ratio_vs_size_ratio": [round(time_ratio, 2), round(size_ratio, 2)],
        "scales_no_worse_than_linear": time_ratio <= size_ratio,
        "driver_memory_limit_mb": DRIVER_MEMORY_LIMIT_MB,
        "within_memory_limit": all(
            r["peak_rss_mb_total"] <= DRIVER_MEMORY_LIMIT_MB for r in [*runs, *others]
        ),
    }


def earlier_results(path: Path) -> list[dict[str, Any]]:
    """What the results file held before this run, oldest first (its own history, then it)."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    history = earlier.pop("history", [])
    return [*history, earlier]


def main() -> None:
    """Run every size and source, rewriting the results file after each run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--sources",
        nargs="*",
        default=["mimic4", "fhir"],
        help="other sources timed at the largest size against mimic3",
    )
    parser.add_argument("--work-dir", default="/tmp/readmission-bench")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep generated data and reuse it when present"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    history = earlier_results(args.results)
    args.results.parent.mkdir(parents=True, exist_ok=True)

    def record(runs: list[dict[str, Any]], others: list[dict[str, Any]], complete: bool) -> None:
        result = {**summarise(runs, others, complete), "history": history}
        args.results.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["runs"] + others, indent=2), flush=True)

    spark = build_local_session(app_name="etl-benchmark")
    spark.sparkContext.setLogLevel("ERROR")
    runs: list[dict[str, Any]] = []
    for size in args.sizes:
        runs.append(bench_one(spark, size, work, keep_data=args.keep_data))
        record(runs, [], complete=False)
    others: list[dict[str, Any]] = []
    for source in args.sources:
        others.append(bench_one(spark, runs[-1]["admissions"], work, source, args.keep_data))
        record(runs, others, complete=source == args.sources[-1])
    spark.stop()
    if not args.sources:
        record(runs, others, complete=True)


if __name__ == "__main__":
    main()
