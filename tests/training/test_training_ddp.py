"""Two-process CPU DDP (gloo, under torchrun) gives the single-process result within tolerance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from contracts.model_artifact import WEIGHTS_FILE
from training.train import main

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Dropout off: random masks would differ between the two layouts by construction.
SETTINGS = ("--epochs", "2", "--batch-size", "32", "--dropout", "0", "--baseline", "false")


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(
    small_dataset: Path, run_args: Callable[..., list[str]], tmp_path: Path
) -> None:
    single = main(run_args(small_dataset, tmp_path / "single", *SETTINGS))
    assert single is not None
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "training.train",
            *run_args(small_dataset, tmp_path / "ddp", *SETTINGS),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    ddp_metrics = json.loads((tmp_path / "ddp" / "output" / "metrics.json").read_text())
    assert ddp_metrics["training"]["world_size"] == 2
    assert ddp_metrics["training"]["steps"] == single.outcome.steps
    single_weights = load_file(str(tmp_path / "single" / "model" / WEIGHTS_FILE))
    ddp_weights = load_file(str(tmp_path / "ddp" / "model" / WEIGHTS_FILE))
    assert single_weights.keys() == ddp_weights.keys()
    for name, tensor in single_weights.items():
        # Tree thresholds hold +inf at leaves: equal infinities count as equal.
        torch.testing.assert_close(ddp_weights[name], tensor, rtol=0, atol=1e-4, msg=name)
    for split in ("validation", "test"):
        assert ddp_metrics[split]["auroc"] == pytest.approx(
            single.metrics[split]["auroc"], abs=1e-3
        )
        assert ddp_metrics[split]["brier"] == pytest.approx(
            single.metrics[split]["brier"], abs=1e-4
        )
