"""One scorer owns the serving forward pass; explanation is a separate step that only a request
asking for top factors runs; a model directory with scikit-learn trees is refused by name."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from inference.errors import ModelArtifactError
from inference.model import MODEL_CONFIG_FILE, save_model
from inference.predictor import ServingModel, as_batch, load_serving_model, predict
from inference.trees import TREES_FILE
from training.synthetic import synthetic_records


class Untouchable:
    """Stands in for the explainer: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the explainer was used ({name}) on a score-only request")


def records(n: int, seed: int = 41) -> list[dict[str, Any]]:
    return synthetic_records(n, seed=seed, with_notes=True)[0]


def test_a_score_only_request_never_touches_the_explainer(either_model: ServingModel) -> None:
    batch = as_batch(records(6))
    explained = predict(either_model, batch)
    without = dataclasses.replace(either_model, explainer=Untouchable())  # type: ignore[arg-type]
    scored = predict(without, batch, explain=False)
    assert all(p["top_factors"] == [] for p in scored)
    assert any(p["top_factors"] for p in explained)
    np.testing.assert_allclose(
        [p["probability"] for p in scored],
        [p["probability"] for p in explained],
        rtol=0,
        atol=1e-6,
    )
    with pytest.raises(AssertionError, match="explainer was used"):
        predict(without, batch)  # a request that asks for factors does run it


def test_the_scorer_gives_the_models_own_logits(either_model: ServingModel) -> None:
    encoded = either_model.encoder.encode(records(12, seed=3))
    with torch.inference_mode():
        tensors = {k: torch.from_numpy(v) for k, v in encoded.arrays().items()}
        torch.testing.assert_close(
            either_model.scorer.logits(tensors), either_model.model(**tensors), rtol=0, atol=1e-6
        )


@pytest.fixture(scope="module")
def blended_dir(
    blended_serving_model: ServingModel, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny model directory with the blended model (LightGBM trees) saved into it."""
    directory = tmp_path_factory.mktemp("blended") / "model"
    shutil.copytree(model_dir, directory)
    save_model(blended_serving_model.model, directory)
    return directory


def test_a_saved_blend_loads_and_scores_as_before_saving(
    blended_dir: Path, blended_serving_model: ServingModel
) -> None:
    assert (blended_dir / TREES_FILE).is_file()
    loaded = load_serving_model(blended_dir)
    assert loaded.model.trees is not None
    batch = as_batch(records(8, seed=9))
    np.testing.assert_allclose(
        [p["probability"] for p in predict(loaded, batch)],
        [p["probability"] for p in predict(blended_serving_model, batch)],
        rtol=0,
        atol=1e-7,
    )


def test_a_model_with_scikit_learn_trees_is_refused_by_name(
    blended_dir: Path, tmp_path: Path
) -> None:
    legacy = tmp_path / "model"
    shutil.copytree(blended_dir, legacy)
    (legacy / TREES_FILE).unlink()
    config = json.loads((legacy / MODEL_CONFIG_FILE).read_text())
    config["trees"] = {  # what the scikit-learn export recorded (its trees lived in the weights)
        "n_trees": 30, "n_nodes": 63, "depth": 9, "numeric_width": 24,
        "category_cardinalities": config["category_cardinalities"], "bag_size": 40,
        "categorical_splits": True,
    }  # fmt: skip
    (legacy / MODEL_CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelArtifactError, match=r"scikit-learn.*retrain") as raised:
        load_serving_model(legacy)
    assert MODEL_CONFIG_FILE in str(raised.value)


def test_a_blend_whose_trees_file_is_missing_is_refused(blended_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(blended_dir, broken)
    (broken / TREES_FILE).unlink()
    with pytest.raises(ModelArtifactError, match=TREES_FILE):
        load_serving_model(broken)
