"""``make demo``: the whole platform end to end on one machine, in the order AWS runs it.

    python -m local_platform.demo [--source {uci_diabetes,mimic3,synthetic}] [--admissions N]
                                  [--run-dir PATH] [--serve] [--quick]

Thin on purpose: parse the options, open the run folder, start the control plane and hand
off to the steps (local_platform/steps.py). Everything started is stopped on the way out,
after an error or Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from contracts.model_artifact import MODEL_CARD_FILE
from local_platform import (
    batch_scoring,
    coding_switch,
    ehr,
    report,
    resources,
    shadow,
    steps,
    worklist_site,
)
from local_platform.control_plane import ControlPlane, patched_environment
from local_platform.fairness import fairness_step
from local_platform.gateway import LocalApiGateway
from local_platform.processes import ProcessGroup
from local_platform.report import Progress
from local_platform.settings import (
    DEFAULT_SYNTHETIC_ADMISSIONS,
    REPO_ROOT,
    SOURCE_UCI,
    SOURCES,
    DemoConfig,
)

RUNS_DIR = REPO_ROOT / "runs"
SUMMARY_FILE = "summary.json"
LOG_FILE = "demo.log"
#: Marks a folder as a demo run folder, so that ``--run-dir`` may reuse it and nothing else.
RUN_MARKER = ".demo-run"


@dataclass
class LivePlatform:
    """The running platform, handed to ``on_ready`` before everything is stopped."""

    run_dir: Path
    control_plane_url: str
    environment: dict[str, str]
    api_url: str
    endpoint_url: str
    summary: dict[str, Any]
    pids: list[int] = field(default_factory=list)
    #: Prints a line to the demo's terminal (stdout itself carries the handlers' output).
    announce: Callable[[str], None] = print


@dataclass(frozen=True)
class DemoResult:
    """What the run left behind: its folder, its summary and every process it started."""

    run_dir: Path
    summary: dict[str, Any]
    pids: tuple[int, ...]
    ports: tuple[int, ...]


def parse_args(argv: Sequence[str] | None = None) -> DemoConfig:
    parser = argparse.ArgumentParser(prog="python -m local_platform.demo", description=__doc__)
    parser.add_argument("--source", choices=SOURCES, default=SOURCE_UCI)
    parser.add_argument(
        "--admissions",
        type=int,
        default=DEFAULT_SYNTHETIC_ADMISSIONS,
        help="admissions to generate with --source synthetic",
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/<timestamp>/")
    parser.add_argument("--serve", action="store_true", help="leave the API up until Ctrl-C")
    parser.add_argument("--quick", action="store_true", help="tiny model and traffic (tests)")
    args = parser.parse_args(argv)
    return DemoConfig(
        source=args.source,
        admissions=args.admissions,
        run_dir=args.run_dir,
        serve=args.serve,
        quick=args.quick,
    )


def new_run_dir(requested: Path | None, now: datetime) -> Path:
    """A fresh run folder: ``runs/<timestamp>`` (suffixed when taken) or the one asked for.

    A requested folder must be empty, absent, or an earlier demo run (then it is replaced).
    """
    if requested is not None:
        if requested.exists() and any(requested.iterdir()):
            if not (requested / RUN_MARKER).exists():
                raise ValueError("--run-dir must be empty or a previous demo run folder")
            for child in requested.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        requested.mkdir(parents=True, exist_ok=True)
        (requested / RUN_MARKER).touch()
        return requested
    base = RUNS_DIR / now.strftime("%Y%m%d-%H%M%S")
    candidate, suffix = base, 1
    while candidate.exists():
        suffix += 1
        candidate = base.with_name(f"{base.name}-{suffix}")
    candidate.mkdir(parents=True)
    (candidate / RUN_MARKER).touch()
    return candidate


def run_demo(
    config: DemoConfig,
    on_ready: Callable[[LivePlatform], None] | None = None,
    stream: IO[str] | None = None,
) -> DemoResult:
    """Run the seven steps; ``on_ready`` sees the live platform before it is stopped."""
    # The control plane's access log would print every bucket key: keep it quiet.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_dir = new_run_dir(config.run_dir, datetime.now(UTC))
    progress = Progress(run_dir / LOG_FILE, stream or sys.stdout)
    processes = ProcessGroup(REPO_ROOT, progress.log)
    ports: list[int] = []
    summary: dict[str, Any] = {"run_dir": str(run_dir), "source": config.source}
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(processes.stop_all)
            control_plane = stack.enter_context(ControlPlane())
            ports.append(control_plane.port)
            environment = control_plane.environment()
            stack.enter_context(patched_environment(environment))
            run = steps.DemoRun(config, run_dir, progress, processes, environment)
            summary.update(_pipeline(run, control_plane, stack, ports))
            live = LivePlatform(
                run_dir,
                control_plane.url,
                {**environment},
                run.api_url,
                run.endpoint_url,
                summary,
                processes.pids,
                progress.line,
            )
            _finish(run, summary)
            if on_ready is not None:
                on_ready(live)
            progress.line("Stopping the API, the model server and the control plane ...")
        progress.line(f"Done. Everything it started is stopped. Run folder: {run_dir}")
    finally:
        processes.stop_all()
        progress.close()
    return DemoResult(run_dir, summary, tuple(processes.pids), tuple(ports))


def _pipeline(
    run: steps.DemoRun,
    control_plane: ControlPlane,
    stack: contextlib.ExitStack,
    ports: list[int],
) -> dict[str, Any]:
    """Steps 1 to 6; the model server and the gateway stay up (``stack`` stops them)."""
    steps.provision(run, control_plane.url)
    manifest = steps.etl(run)
    model = steps.train(run)
    deployment = steps.approve_and_deploy(run, model["model_package_arn"])
    ports.append(int(run.endpoint_url.rsplit(":", 1)[1]))
    predict_env = {
        **resources.predict_environment(run.config, steps.DEID_KEY),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": run.endpoint_url,
    }
    stack.enter_context(steps.lambda_environment(run, predict_env))
    gateway: LocalApiGateway = stack.enter_context(steps.start_gateway(run))
    ports.append(int(gateway.url.rsplit(":", 1)[1]))
    api = steps.sample_requests(run, gateway)
    api["cds_hooks"] = ehr.play_discharge(run, gateway, stack)
    drift = steps.replay_and_monitor(run)
    shadow_stage = shadow.shadow_then_promote(run)
    fairness = fairness_step(run)
    worklist = batch_scoring.score_replayed_day(run)
    switch = coding_switch.replay_coding_switch(run)
    return {
        "data": {
            key: manifest[key]
            for key in (
                "rows_in",
                "rows_out",
                "rows_excluded",
                "rows_quarantined",
                "duplicates_dropped",
                "reconciled",
                "rows_out_by_split",
                "label_counts_by_split",
            )
        },
        "model": model,
        "deployment": deployment,
        "api": api,
        "drift": drift,
        "shadow": shadow_stage,
        "fairness": fairness,
        "worklist": worklist,
        "coding_switch": switch,
    }


def _finish(run: steps.DemoRun, summary: dict[str, Any]) -> None:
    """Step 7: the summary on screen and in summary.json; the model card beside it."""
    progress = run.progress
    progress.step(7, "Summary")
    data, model = summary["data"], summary["model"]
    progress.fact("data", f"{data['rows_in']} admissions in, {data['rows_out']} encounters out")
    test = model["test"]
    progress.fact(
        "test metrics",
        f"AUROC {report.format_metric(test.get('auroc'))}, "
        f"AUPRC {report.format_metric(test.get('auprc'))}, "
        f"Brier {report.format_metric(test.get('brier'))} "
        f"(baseline AUROC {report.format_metric(model['baseline_test_auroc'])})",
    )
    latency = summary["api"]["latency"]
    progress.fact("API latency", f"p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms")
    drift = summary["drift"]
    alarms = list(drift["features_over_threshold"])
    if drift["prediction_psi_over_threshold"]:
        alarms.append("prediction score")
    progress.fact("drift over alarm thresholds", ", ".join(alarms) or "none")
    progress.fact("fairness alarms", ", ".join(summary["fairness"]["alarms"]) or "none")
    card = run.run_dir / MODEL_CARD_FILE
    card.write_text((run.model_dir / MODEL_CARD_FILE).read_text())
    summary["elapsed_seconds"] = round(progress.elapsed(), 1)
    summary["files"] = {
        "features": str(run.features_dir),
        "model": str(run.model_dir),
        "model_archive": str(run.run_dir / steps.MODEL_ARCHIVE),
        "model_card": str(card),
        "log": str(progress.log_path),
    }
    report.write_summary(run.run_dir / SUMMARY_FILE, summary)
    progress.fact("run folder", str(run.run_dir))
    progress.fact("model card", str(card))


def wait_for_interrupt(live: LivePlatform) -> None:
    """``--serve``: keep the API up until Ctrl-C (or SIGTERM)."""
    live.announce(f"The API is up at {live.api_url} (Ctrl-C stops everything).")
    site = worklist_site.start_for_run(live.run_dir, live.announce)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        site.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``make demo`` and ``make demo-serve``."""
    config = parse_args(argv)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        run_demo(config, on_ready=wait_for_interrupt if config.serve else None)
    except KeyboardInterrupt:
        print("Interrupted; everything the demo started is stopped.", file=sys.stderr)
        return 130
    except (steps.DemoError, ValueError, RuntimeError) as error:
        print(f"Demo failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
