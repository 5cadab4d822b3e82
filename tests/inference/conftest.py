"""Shared fixtures of the inference tests: one tiny trained model directory for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
