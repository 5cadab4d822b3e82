"""Shared fixtures of the training tests: tiny ETL-shaped synthetic datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from training.synthetic import write_synthetic_dataset

#: A model small enough to train in seconds on two shared cores.
TINY_MODEL_ARGS = [
    "--hidden-size", "16", "--num-layers", "1", "--num-heads", "2", "--fusion-size", "16",
    "--tabular-hidden-size", "16", "--note-hidden-size", "16", "--note-num-layers", "1",
    "--note-max-length", "32", "--note-vocab-size", "200", "--code-min-frequency", "2",
    "--category-min-frequency", "2", "--log-every", "0", "--cpu-threads", "1",
]  # fmt: skip


def _run_args(features: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data-dir", str(features),
        "--model-dir", str(out / "model"),
        "--output-dir", str(out / "output"),
        "--checkpoint-dir", str(out / "checkpoints"),
        *TINY_MODEL_ARGS,
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def notes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 encounters with discharge notes; returns the features folder."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("notes"), 400, seed=7, with_notes=True)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 encounters without notes; returns the features folder."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("small"), 400, seed=11)


@pytest.fixture(scope="session")
def run_args() -> Callable[..., list[str]]:
    """``run_args(features, out, *extra)``: arguments of a tiny run writing under ``out``."""
    return _run_args
