"""The tree term: fitted with LightGBM on train, weighted on validation, saved beside the
model as LightGBM's text model, reloaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from contracts.model_artifact import METADATA_FILE, MODEL_CONFIG_FILE
from inference.encoding import CLS_ID, PAD_ID, EncodedBatch, FeatureEncoder
from inference.model import load_model
from inference.trees import TREES_FILE
from training.config import HyperParameters
from training.data import read_records
from training.train import main
from training.trees import (
    BLEND_WEIGHTS,
    MAX_NATIVE_CATEGORIES,
    batch_design,
    categorical_columns,
    choose_network_weight,
    lightgbm_params,
)

TREE_ARGS = ["--tree-min-samples-leaf", "10", "--tree-max-iterations", "30"]


def test_the_design_is_numerics_then_category_indices_then_code_presence() -> None:
    ids = np.array([[CLS_ID, 7, 9, PAD_ID], [CLS_ID, 11, 7, 9]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])  # row 1's 7 and 9 are masked out
    batch = EncodedBatch(
        code_ids=ids,
        code_types=np.zeros_like(ids),
        code_mask=mask,
        categorical=np.array([[2, 0], [1, 3]]),
        numeric=np.array([[0.5, 0.0], [-1.0, 1.0]], dtype=np.float32),
    )
    x = batch_design(batch, np.array([9, 7, 13]))
    assert x.tolist() == [[0.5, 0.0, 2, 0, 1, 1, 0], [-1.0, 1.0, 1, 3, 0, 0, 0]]
    assert categorical_columns(2, (3, 4)) == [2, 3]
    # More categories than are split natively: an ordered index instead.
    assert categorical_columns(1, (3, MAX_NATIVE_CATEGORIES + 1)) == [1]


def test_lightgbm_reads_the_tree_hyperparameters() -> None:
    hyper = HyperParameters(
        tree_learning_rate=0.05, tree_max_leaf_nodes=31, tree_min_samples_leaf=50, seed=7
    )
    params = lightgbm_params(hyper)
    assert (params["learning_rate"], params["num_leaves"], params["min_data_in_leaf"]) == (
        0.05, 31, 50,
    )  # fmt: skip
    assert params["seed"] == 7
    assert params["deterministic"] is True


def test_the_blend_weight_follows_the_informative_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600).astype(float)
    informative = y + rng.normal(0, 0.7, 600)
    noise = rng.normal(0, 1, 600)
    assert choose_network_weight(y, informative, noise, 0.0) == 1.0
    assert choose_network_weight(y, noise, informative, 0.0) == 0.0
    both = choose_network_weight(y, y + rng.normal(0, 1, 600), y + rng.normal(0, 1, 600), 0.0)
    assert 0.0 < both < 1.0  # two independent, equally noisy views: the blend beats either
    assert set(BLEND_WEIGHTS) >= {0.0, 0.5, 1.0}


def test_one_class_in_validation_keeps_the_network_alone() -> None:
    assert choose_network_weight(np.zeros(50), np.arange(50.0), -np.arange(50.0), 0.0) == 1.0


@pytest.fixture(scope="module")
def blended_run(
    small_dataset: Path,
    run_args: Callable[..., list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    out = tmp_path_factory.mktemp("trees")
    main(run_args(small_dataset, out, "--epochs", "1", "--max-steps", "4", *TREE_ARGS))
    return out


def test_the_artifact_holds_the_trees_and_metadata_reports_them(blended_run: Path) -> None:
    model_dir = blended_run / "model"
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    blend = metadata["tree_blend"]
    assert blend["trees"] > 0
    assert 0.0 <= blend["network_weight"] <= 1.0
    assert set(blend["validation_auroc"]) == {"network", "trees"}
    config = json.loads((model_dir / MODEL_CONFIG_FILE).read_text())
    assert config["trees"]["format"] == "lightgbm"
    assert (model_dir / TREES_FILE).read_text().startswith("tree\n")  # LightGBM text, no pickle
    model = load_model(model_dir)
    assert model.trees is not None
    assert model.trees.n_trees == blend["trees"]
    assert model.trees.splits > 0
    assert float(model.tree_blend[0]) == blend["network_weight"]


def test_the_reloaded_model_scores_the_blend_of_its_parts(
    blended_run: Path, small_dataset: Path
) -> None:
    model_dir = blended_run / "model"
    model = load_model(model_dir)
    encoder = FeatureEncoder.load(model_dir)
    records = read_records(small_dataset / "split=test")[:40]
    with torch.inference_mode():
        t = {k: torch.from_numpy(v) for k, v in encoder.encode(records).arrays().items()}
        served = model(**t).double()
        assert model.trees is not None
        trees = model.trees(t["numeric"], t["categorical"], t["code_ids"], t["code_mask"])
        network_model = load_model(model_dir)
        network_model.trees = None  # the same weights without the tree term
        network = network_model(**t).double()
    weight, shift = (float(v) for v in model.tree_blend)
    expected = weight * network + (1 - weight) * (trees + shift)
    torch.testing.assert_close(served, expected.to(served.dtype).double(), rtol=0, atol=1e-5)


def test_no_tree_blend_trains_the_network_alone(
    small_dataset: Path, run_args: Callable[..., list[str]], tmp_path: Path
) -> None:
    main(run_args(small_dataset, tmp_path, "--epochs", "1", "--max-steps", "2", "--tree-blend",
                  "false"))  # fmt: skip
    metadata = json.loads((tmp_path / "model" / METADATA_FILE).read_text())
    assert metadata["tree_blend"] is None
    assert load_model(tmp_path / "model").trees is None
