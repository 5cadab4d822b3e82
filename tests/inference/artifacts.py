"""One tiny trained model directory per test session, shared by the inference and API tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import artifact
from training.synthetic import write_synthetic_dataset
from training.train import main as train_main

#: A model small enough to train in a few seconds on two shared cores (notes encoder on).
TINY_TRAINING_ARGS = [
    "--hidden-size", "16", "--num-layers", "1", "--num-heads", "2", "--fusion-size", "16",
    "--tabular-hidden-size", "16", "--note-hidden-size", "16", "--note-num-layers", "1",
    "--note-max-length", "32", "--note-vocab-size", "200", "--code-min-frequency", "2",
    "--category-min-frequency", "2", "--log-every", "0", "--epochs", "1", "--max-steps", "6",
    "--batch-size", "32", "--baseline", "false",
]  # fmt: skip

_FOLDER = "inference-tiny-model"


def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train (once per session, whichever test asks first) on 300 synthetic encounters."""
    root = tmp_path_factory.getbasetemp() / _FOLDER
    model_dir = root / "run" / "model"
    if model_dir.is_dir() and not artifact.missing_files(model_dir):
        return model_dir
    features = write_synthetic_dataset(root / "data", 300, seed=5, with_notes=True)
    train_main(
        [
            "--data-dir", str(features),
            "--model-dir", str(model_dir),
            "--output-dir", str(root / "run" / "output"),
            "--checkpoint-dir", str(root / "run" / "checkpoints"),
            *TINY_TRAINING_ARGS,
        ]
    )  # fmt: skip
    return model_dir
