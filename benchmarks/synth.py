"""Time ``make synth`` (every stage with cdk-nag, cfn-lint, checkov) and each of its steps.

Target (issue #21): ``make synth`` for both stages with cdk-nag and cfn-lint in at most 30 s.

``make`` runs every recipe line through ``SHELL``; this benchmark points ``SHELL`` at a small
wrapper that runs the line under ``bash`` and records its wall time and the CPU time (user +
system) of it and all its children, so the steps are those of the Makefile of the tree being
measured, nested recipe lines (the sub-make's cfn-lint and checkov) included. The setup stamps
point at fresh files so that ``setup`` installs nothing: the environments must already exist.

Run ``python benchmarks/synth.py [--tree PATH] [--label after] [--runs 1]``. ``--tree`` measures
another checkout (``before``: a worktree of ``main`` with ``.venv``/``node_modules`` linked in);
the result for ``--label`` replaces that label's entry in benchmarks/results/synth.json and
keeps the others. The machine is shared and loaded: the load average is recorded, and CPU time
(less sensitive to load than wall time) beside wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import stat
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "synth.json"
TARGET_S = 30.0
STAMPS = ("VENV_STAMP", "NODE_STAMP", "CHECKOV_STAMP")

#: The recipe-line wrapper make runs as SHELL: ``wrapper -eu -o pipefail -c LINE``.
_WRAPPER = """#!{python}
import json, os, resource, subprocess, sys, time
depth = int(os.environ.get("SYNTH_BENCH_DEPTH", "0"))
env = {{**os.environ, "SYNTH_BENCH_DEPTH": str(depth + 1)}}
before = resource.getrusage(resource.RUSAGE_CHILDREN)
started = time.time()
start = time.perf_counter()
code = subprocess.call(["/bin/bash", *sys.argv[1:]], env=env)
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_CHILDREN)
record = {{
    "line": sys.argv[-1], "depth": depth, "started": started, "exit": code,
    "wall_s": round(wall, 2),
    "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
}}
with open(os.environ["SYNTH_BENCH_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
sys.exit(code)
"""


def step_name(line: str) -> str:
    """A short name for a recipe line: what it runs."""
    words = " ".join(line.split())
    if words.split(" ", 1)[0].endswith("make"):
        return "sub-make: " + " ".join(w for w in words.split()[1:] if not w.startswith("-"))
    for marker, name in (
        ("--app cdk.out/", "cdk synth --app <assembly> (CLI checks of a further stage)"),
        ("cdk synth", "cdk synth (stages, cdk-nag)"),
        ("cfn-lint", "cfn-lint"),
        ("checkov", "checkov"),
        ("chromium", "setup: browser check"),
    ):
        if marker in words:
            return name
    return words[:80]


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def run_once(tree: Path, workdir: Path) -> dict[str, Any]:
    """One ``make synth`` in ``tree``: total and per recipe line."""
    wrapper = workdir / "timed-shell"
    wrapper.write_text(_WRAPPER.format(python=sys.executable))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    log = workdir / "lines.jsonl"
    log.unlink(missing_ok=True)
    stamps = []
    for name in STAMPS:
        stamp = workdir / name.lower()
        stamp.touch()
        stamps.append(f"{name}={stamp}")
    subprocess.run(["rm", "-rf", "cdk.out"], cwd=tree, check=True)
    command = ["make", "--no-print-directory", "synth", f"SHELL={wrapper}", *stamps]
    env = {**os.environ, "SYNTH_BENCH_LOG": str(log), "SYNTH_BENCH_DEPTH": "0"}
    load_before = os.getloadavg()
    began = time.time()
    cpu_before, start = _children_cpu(), time.perf_counter()
    completed = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
    if completed.returncode != 0:
        raise SystemExit(f"make synth failed in {tree}:\n{completed.stderr[-3000:]}")
    lines = [json.loads(text) for text in log.read_text().splitlines()]
    steps = [
        {
            "step": step_name(r["line"]),
            "depth": r["depth"],
            "start_s": round(r["started"] - began, 2),
            "wall_s": r["wall_s"],
            "cpu_s": r["cpu_s"],
        }
        for r in sorted(lines, key=lambda r: r["started"])
        if "chromium" not in r["line"]
    ]
    return {
        "command": shlex.join(["make", "synth"]),
        "total_wall_s": round(wall, 2),
        "total_cpu_s": round(cpu, 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "steps": steps,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best run (least wall time) and every run's totals."""
    best = min(runs, key=lambda run: run["total_wall_s"])
    return {
        "best": best,
        "runs": [
            {key: run[key] for key in ("total_wall_s", "total_cpu_s", "load_average_before")}
            for run in runs
        ],
        "meets_target": best["total_wall_s"] <= TARGET_S,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--label", default="after")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    tree = args.tree.resolve()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        runs = [run_once(tree, Path(tmp)) for _ in range(args.runs)]
    entry = {
        "tree": str(tree),
        "commit": commit,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **summarize(runs),
    }
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update({"target_wall_s": TARGET_S, args.label: entry})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    best = entry["best"]
    print(f"{args.label}: make synth {best['total_wall_s']} s wall, {best['total_cpu_s']} s CPU")
    for step in best["steps"]:
        indent = "  " * step["depth"]
        print(f"  {indent}{step['step']}: {step['wall_s']} s, CPU {step['cpu_s']} s")


if __name__ == "__main__":
    main()
