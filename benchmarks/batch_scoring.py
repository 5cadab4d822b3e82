"""Nightly batch scoring's speed and memory: records/s through ``/invocations`` as Batch
Transform posts them, with and without top factors, at 10k and 100k records.

The model is training's default architecture trained for a few steps on UCI-shaped data
(benchmarks/inference.py: no notes encoder, the records' codes as UCI's). The day is written
as one JSON-lines file; ``python -m inference.serve`` runs in its own process with one worker
per core, and the client (``local_platform.batch_scoring.transform``: whole-line mini-batches
of at most ``MaxPayloadInMB``, as many in flight as there are workers, answers written in
order to ``<file>.out``) runs in a fresh process per scenario, so that each one's peak RSS
(``VmHWM``) is its own. Then the writer's part (``write_worklist``: the day into the
local store and Parquet) runs once per size, in its own process too.

"Without factors" is the same request with ``Content-Type: application/jsonlines;
factors=none`` (``inference.lines``): encode, forward, calibrate, no occlusion pass. A
breakdown in this process (``hooks``) shows where a record's time goes: parsing, scoring with
and without factors, serialising. Target: at least 500 records/s with top factors.

Run with ``python benchmarks/batch_scoring.py [--sizes 10000 100000] [--out PATH]``; writes
benchmarks/results/batch_scoring.json. The load average is recorded: on a shared machine the
figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.serving import ENCOUNTER_KEY, PATIENT_KEY  # noqa: E402 (after the path setup)

RESULT = ROOT / "benchmarks" / "results" / "batch_scoring.json"
DEFAULT_SIZES = (10_000, 100_000)
TARGET_RECORDS_PER_S = 500.0
#: Distinct records the day is drawn from (each line gets its own keys).
RECORD_POOL = 256
DAY = "2026-12-02"
CONTENT_TYPE = "application/jsonlines"
NO_FACTORS = f"{CONTENT_TYPE}; factors=none"
HOOK_CHUNK = 100
HOOK_REPEATS = 5


def write_day(path: Path, size: int, seed: int = 7) -> int:
    """``size`` JSON lines drawn from a pool of realistic records; returns the bytes written."""
    import numpy as np

    from benchmarks.inference import benchmark_record

    rng = np.random.default_rng(seed)
    pool: list[str] = []
    for _ in range(RECORD_POOL):
        record = benchmark_record(rng, with_notes=False)
        for key in (ENCOUNTER_KEY, PATIENT_KEY):
            record.pop(key, None)
        pool.append(json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for number in range(size):
            line = pool[number % RECORD_POOL]
            keys = json.dumps({ENCOUNTER_KEY: f"{number:064x}", PATIENT_KEY: f"{number + 1:064x}"})
            keys = keys[:-1] + ","
            out.write(keys + line[1:] + "\n")
    return path.stat().st_size


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: that survives exec, so a client
    started from the (large) benchmark process would report the parent's image."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def client(args: argparse.Namespace) -> dict[str, Any]:
    """One scenario in this (fresh) process: the transform, or the writer."""
    from local_platform import batch_scoring
    from worklist.local import LocalWorklistStore

    after_imports = peak_rss_mb()
    started = time.perf_counter()
    if args.role == "transform":
        stats = batch_scoring.transform(
            args.url,
            args.input,
            args.output,
            concurrency=args.concurrency,
            content_type=args.content_type,
        )
        done: dict[str, Any] = {"records": stats.records, "requests": stats.requests}
    else:
        summary = batch_scoring.write_worklist(
            DAY,
            args.input,
            args.output,
            LocalWorklistStore(args.store),
            args.store.parent,
            budget_share=0.1,
            now=datetime.now(UTC),
        )
        done = {"records": summary.scored + summary.failed, "failed": summary.failed}
    seconds = time.perf_counter() - started
    return {
        **done,
        "seconds": round(seconds, 2),
        "records_per_s": round(done["records"] / seconds, 1),
        "rss_after_imports_mb": after_imports,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_client(*options: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--client", *options]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def server_peak_rss_mb(server_pid: int) -> dict[str, float]:
    """Peak RSS (VmHWM) of the server's supervisor and each worker process."""
    import psutil

    peaks: dict[str, float] = {}
    parent = psutil.Process(server_pid)
    for number, process in enumerate([parent, *parent.children(recursive=True)]):
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                name = "supervisor" if number == 0 else f"worker_{number}"
                peaks[name] = round(int(line.split()[1]) / 1024, 1)
    return peaks


def hooks_breakdown(model_dir: Path) -> dict[str, Any]:
    """Seconds per record of each part of a 100-record chunk, in this process (one thread)."""
    import numpy as np
    import torch

    from benchmarks.inference import benchmark_record
    from inference.handler import model_fn
    from inference.lines import lines_body, parse_lines, predict_lines

    torch.set_num_threads(1)
    serving = model_fn(str(model_dir))
    rng = np.random.default_rng(11)
    body = "\n".join(
        json.dumps({**benchmark_record(rng, with_notes=False), ENCOUNTER_KEY: f"{n:064x}"})
        for n in range(HOOK_CHUNK)
    ).encode()

    def timed(action: Any) -> tuple[float, Any]:
        best, result = float("inf"), None
        for _ in range(HOOK_REPEATS):
            started = time.perf_counter()
            result = action()
            best = min(best, time.perf_counter() - started)
        return best, result

    parse_s, batch = timed(lambda: parse_lines(body, CONTENT_TYPE))
    explain_s, answers = timed(lambda: predict_lines(serving, batch))
    plain = parse_lines(body, NO_FACTORS)
    plain_s, _ = timed(lambda: predict_lines(serving, plain))
    serialise_s, _ = timed(lambda: lines_body(answers, CONTENT_TYPE))
    per_record = {
        "parse_ms": parse_s,
        "score_with_factors_ms": explain_s,
        "score_without_factors_ms": plain_s,
        "serialise_ms": serialise_s,
    }
    result: dict[str, Any] = {k: round(v * 1000 / HOOK_CHUNK, 3) for k, v in per_record.items()}
    result["records_per_s_one_core_with_factors"] = round(
        HOOK_CHUNK / (parse_s + explain_s + serialise_s), 1
    )
    result["records_per_s_one_core_without_factors"] = round(
        HOOK_CHUNK / (parse_s + plain_s + serialise_s), 1
    )
    result["factor_share_of_scoring"] = round(1 - plain_s / explain_s, 3)
    return result


def scenarios(work: Path, model_dir: Path, sizes: list[int], workers: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    command = [
        sys.executable, "-m", "inference.serve", "--model-dir", str(model_dir),
        "--port", "0", "--workers", str(workers),
    ]  # fmt: skip
    from benchmarks.serving import running

    with running(command, work / "server.log") as url:
        import psutil

        server = next(
            p for p in psutil.Process().children() if "inference.serve" in " ".join(p.cmdline())
        )
        for size in sizes:
            day = work / f"day-{size}" / "input"
            size_bytes = write_day(day / "part-0.jsonl", size)
            entry: dict[str, Any] = {"input_mb": round(size_bytes / 1e6, 1)}
            for name, content_type in (
                ("with_factors", CONTENT_TYPE),
                ("without_factors", NO_FACTORS),
            ):
                output = work / f"day-{size}" / name
                entry[name] = run_client(
                    "--role", "transform", "--url", url, "--input", str(day),
                    "--output", str(output), "--concurrency", str(workers),
                    "--content-type", content_type,
                )  # fmt: skip
                print(f"{size} {name}: {entry[name]}", file=sys.stderr)
            entry["writer"] = run_client(
                "--role", "writer", "--input", str(day),
                "--output", str(work / f"day-{size}" / "with_factors"),
                "--store", str(work / f"day-{size}" / "store" / "worklist.json"),
            )  # fmt: skip
            print(f"{size} writer: {entry['writer']}", file=sys.stderr)
            results[str(size)] = entry
        results["server_peak_rss_mb"] = server_peak_rss_mb(server.pid)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=("transform", "writer"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--content-type", default=CONTENT_TYPE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        result = client(args)
        print(json.dumps(result))
        return result
    from benchmarks.inference import train_default_model

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model_dir, architecture = train_default_model(work / "train", with_notes=False)
        measured = scenarios(work, model_dir, sorted(args.sizes), args.workers)
        breakdown = hooks_breakdown(model_dir)
    largest = measured[str(max(args.sizes))]["with_factors"]["records_per_s"]
    result = {
        "benchmark": "batch_scoring",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "model": {"shape": "no_notes_uci_shape", "architecture": architecture},
        "server_workers": args.workers,
        "target_records_per_s_with_factors": TARGET_RECORDS_PER_S,
        "target_met": largest >= TARGET_RECORDS_PER_S,
        "sizes": measured,
        "hooks_per_record": breakdown,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
