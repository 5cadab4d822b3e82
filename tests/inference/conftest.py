"""Shared fixtures of the inference tests: one tiny trained model directory for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import torch

from inference.handler import model_fn
from inference.predictor import ServingModel
from tests.inference.artifacts import tiny_model_dir


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete model directory trained on 300 synthetic encounters with notes."""
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def serving_model(model_dir: Path) -> ServingModel:
    """The model directory loaded once through ``model_fn``."""
    return model_fn(str(model_dir))


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread while these tests run: on two shared cores, OpenMP's spinning
    threads make small forward passes tens of times slower; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _blended(serving_model: ServingModel, model_dir: Path) -> ServingModel:
    """The tiny model with LightGBM trees attached at weight 0.5 (the UCI model's shape);
    the tiny training run's own validation split is too small to choose them."""
    import copy
    import json

    from contracts.drift import BASELINE_FILE_NAME
    from inference.attribution import OcclusionExplainer
    from inference.code_titles import load_titles
    from inference.encoding import labels
    from inference.scorer import Scorer
    from training.config import HyperParameters
    from training.synthetic import synthetic_records
    from training.trees import fit_trees

    records = synthetic_records(1500, seed=8, with_notes=True)[0]
    encoder = serving_model.encoder
    batch, y = encoder.encode(records), labels(records)
    hyper = HyperParameters(tree_min_samples_leaf=10, tree_max_iterations=30, tree_bag_size=40)
    trees = fit_trees(batch, y, encoder.category_cardinalities, hyper)
    assert trees.splits > 0
    dump = trees.booster.dump_model()["tree_info"]
    assert any('"decision_type": "=="' in json.dumps(t) for t in dump)  # categorical splits
    model = copy.deepcopy(serving_model.model)
    model.attach_trees(trees, 0.5, serving_model.logit_offset)
    model.eval()
    baseline = json.loads((model_dir / BASELINE_FILE_NAME).read_text())
    scorer = Scorer(model)
    explainer = OcclusionExplainer(scorer, encoder, baseline, load_titles())
    return ServingModel(
        **{**serving_model.__dict__, "model": model, "scorer": scorer, "explainer": explainer}
    )


@pytest.fixture(scope="session")
def blended_serving_model(serving_model: ServingModel, model_dir: Path) -> ServingModel:
    return _blended(serving_model, model_dir)


@pytest.fixture(params=["network", "blended"])
def either_model(request: pytest.FixtureRequest, serving_model: ServingModel) -> ServingModel:
    """The network alone, then the same network blended with LightGBM trees."""
    if request.param == "network":
        return serving_model
    return cast(ServingModel, request.getfixturevalue("blended_serving_model"))
