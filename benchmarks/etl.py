"""ETL scale benchmark: generated data at 100k and 1M admissions on local[2], per source.

Writes admissions per minute, wall seconds and peak memory (max summed RSS of the JVM and
the Python processes, sampled with psutil) to benchmarks/results/etl.json. Generation time is
reported apart and not counted in the ETL rate. ``runs`` are the MIMIC-III source at each
size; ``sources`` compares the same generated patients at the largest size in the other
layouts (MIMIC-IV ``hosp``, FHIR R4 Bulk Data NDJSON) against MIMIC-III, in the same run.

    python benchmarks/etl.py [--sizes 100000 1000000] [--sources mimic4 fhir]
        [--work-dir /tmp/readmission-bench]
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
from glue_jobs.spark_session import build_local_session
from glue_jobs.synthetic_ehr import generate

RESULTS = Path(__file__).resolve().parent / "results" / "etl.json"
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


def bench_one(spark: Any, admissions: int, work: Path, layout: str = "mimic3") -> dict[str, Any]:
    """Generate ``admissions`` admissions in ``layout``, then time that source's ETL on them."""
    source = work / f"synthetic-{layout}-{admissions}"
    output = work / f"etl-{layout}-{admissions}"
    started = time.monotonic()
    # Generate in a child process: its arrays would otherwise stay in this process's RSS and
    # be counted as the ETL driver's memory.
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        rows = pool.submit(generate, admissions, 2024, str(source), False, layout).result()
    generation_seconds = time.monotonic() - started
    shutil.rmtree(output, ignore_errors=True)
    load_before = os.getloadavg()[0]
    with PeakMemory() as memory:
        started = time.monotonic()
        manifest = run_job(spark, layout, str(source), str(output), BENCH_KEY)
        wall = time.monotonic() - started
    shutil.rmtree(source, ignore_errors=True)
    return {
        "source": layout,
        "admissions": admissions,
        "child_rows": sum(
            v for k, v in rows.items() if k not in ("ADMISSIONS", "hosp/admissions", "Encounter")
        ),
        "generation_seconds": round(generation_seconds, 1),
        "etl_wall_seconds": round(wall, 1),
        "admissions_per_minute": round(admissions / wall * 60),
        "peak_rss_mb_total": round(memory.peak_total_mb),
        "peak_rss_mb_jvm": round(memory.peak_jvm_mb),
        "rows_out": manifest["rows_out"],
        "reconciled": manifest["reconciled"],
        "load_average_at_start": round(load_before, 2),
    }


def main() -> None:
    """Run every size and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--sources",
        nargs="*",
        default=["mimic4", "fhir"],
        help="other sources timed at the largest size against mimic3",
    )
    parser.add_argument("--work-dir", default="/tmp/readmission-bench")
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    spark = build_local_session(app_name="etl-benchmark")
    spark.sparkContext.setLogLevel("ERROR")
    runs = [bench_one(spark, size, work) for size in args.sizes]
    largest, smallest = runs[-1], runs[0]
    others = [bench_one(spark, largest["admissions"], work, source) for source in args.sources]
    spark.stop()
    size_ratio = largest["admissions"] / smallest["admissions"]
    time_ratio = largest["etl_wall_seconds"] / smallest["etl_wall_seconds"]
    result = {
        "benchmark": "etl",
        "master": "local[2]",
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
        "within_memory_limit": all(r["peak_rss_mb_total"] <= DRIVER_MEMORY_LIMIT_MB for r in runs),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
