"""A seeded run on a learnable synthetic split clearly beats chance on the test split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from training.synthetic import write_synthetic_dataset
from training.train import main


@pytest.mark.slow
def test_seeded_run_learns_the_synthetic_signal(
    run_args: Callable[..., list[str]], tmp_path: Path
) -> None:
    features = write_synthetic_dataset(tmp_path / "data", 3000, seed=21)
    result = main(
        run_args(
            features, tmp_path / "run",
            "--epochs", "4", "--batch-size", "64", "--learning-rate", "0.003",
            "--hidden-size", "32", "--fusion-size", "32", "--tabular-hidden-size", "32",
            "--seed", "3",
        )
    )  # fmt: skip
    assert result is not None
    assert result.metrics["test"]["auroc"] > 0.75
    assert result.metrics["validation"]["auroc"] > 0.75
