"""Multi-task training: the auxiliary any-readmission target and the head that learns it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from contracts.model_artifact import METADATA_FILE, MODEL_CONFIG_FILE
from inference.encoding import EncoderConfig, FeatureEncoder
from inference.model import WEIGHTS_FILE, ReadmissionModel, load_model, save_model
from training.config import HyperParameters
from training.data import AUXILIARY_LABEL, auxiliary_labels
from training.pipeline import model_config
from training.synthetic import synthetic_records
from training.train import main


def test_auxiliary_labels_need_every_record_to_carry_one() -> None:
    records, _ = synthetic_records(20, seed=1)
    labels = auxiliary_labels(records)
    assert labels is not None
    assert labels.tolist() == [float(r[AUXILIARY_LABEL]) for r in records]
    # A 30-day readmission is a readmission on record.
    assert all(r[AUXILIARY_LABEL] >= r["readmitted_30d"] for r in records)
    assert (
        auxiliary_labels([{k: v for k, v in r.items() if k != AUXILIARY_LABEL} for r in records])
        is None
    )
    assert auxiliary_labels([*records[:-1], {**records[-1], AUXILIARY_LABEL: None}]) is None


def test_the_auxiliary_head_shares_the_main_logit_and_stays_out_of_the_artifact(
    tmp_path: Path,
) -> None:
    records, _ = synthetic_records(64, seed=2)
    encoder = FeatureEncoder.fit(records, EncoderConfig())
    torch.manual_seed(0)
    model = ReadmissionModel(model_config(encoder, HyperParameters(), auxiliary_head=True)).eval()
    tensors = {k: torch.from_numpy(v) for k, v in encoder.encode(records).arrays().items()}
    with torch.inference_mode():
        main_only = model(**tensors)
        both = model(**tensors, with_auxiliary=True)
    assert both.shape == (64, 2)
    torch.testing.assert_close(both[:, 0], main_only)
    assert not torch.allclose(both[:, 1], main_only)

    save_model(model, tmp_path)
    assert json.loads((tmp_path / MODEL_CONFIG_FILE).read_text())["auxiliary_head"] is False
    assert not [name for name in load_file(str(tmp_path / WEIGHTS_FILE)) if "auxiliary" in name]
    served = load_model(tmp_path)
    assert served.auxiliary is None
    with torch.inference_mode():
        torch.testing.assert_close(served(**tensors), main_only)


def test_a_model_without_the_head_refuses_the_auxiliary_output() -> None:
    records, _ = synthetic_records(8, seed=3)
    encoder = FeatureEncoder.fit(records, EncoderConfig())
    model = ReadmissionModel(model_config(encoder, HyperParameters()))
    tensors = {k: torch.from_numpy(v) for k, v in encoder.encode(records).arrays().items()}
    with pytest.raises(ValueError, match="no auxiliary head"):
        model(**tensors, with_auxiliary=True)


@pytest.mark.parametrize(("weight", "expected"), [("0.5", True), ("0", False)])
def test_training_records_the_auxiliary_target_it_used(
    small_dataset: Path,
    run_args: Callable[..., list[str]],
    tmp_path: Path,
    weight: str,
    expected: bool,
) -> None:
    args = ["--epochs", "1", "--max-steps", "3", "--batch-size", "32", "--auxiliary-weight", weight]
    result = main(run_args(small_dataset, tmp_path, *args))
    assert result is not None
    metadata = json.loads((tmp_path / "model" / METADATA_FILE).read_text())
    history = result.outcome.history[0]
    if expected:
        assert metadata["auxiliary_target"]["field"] == AUXILIARY_LABEL
        assert metadata["auxiliary_target"]["weight"] == 0.5
        assert 0.0 < metadata["auxiliary_target"]["positive_rate_train"] < 1.0
        assert history["train_auxiliary_loss"] > 0
    else:
        assert metadata["auxiliary_target"] is None
        assert "train_auxiliary_loss" not in history
