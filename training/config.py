"""Arguments of the training job as dataclasses, defaulting to SageMaker's ``SM_*`` variables.

Precedence, lowest first: the dataclass default, the ``SM_*`` environment (``SM_HPS`` holds the
job's hyperparameters as JSON), then the command line. The same script therefore runs in a
SageMaker training job, on a laptop and in a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.etl_manifest import MANIFEST_FILE
from training.calibration import THRESHOLD_TARGETS

#: SageMaker's checkpoint folder; synced to S3 so that managed spot training can resume.
SAGEMAKER_CHECKPOINT_DIR = "/opt/ml/checkpoints"
LOCAL_RUN_DIR = "runs/training"

SPLIT_TRAIN = "train"
SPLIT_VALIDATION = "validation"
SPLIT_TEST = "test"


def _in_sagemaker() -> bool:
    return "SM_TRAINING_ENV" in os.environ or "SM_CURRENT_HOST" in os.environ


def _env(name: str, local_default: str = "") -> str:
    return os.environ.get(name, local_default)


def _default_checkpoint_dir() -> str:
    fallback = SAGEMAKER_CHECKPOINT_DIR if _in_sagemaker() else f"{LOCAL_RUN_DIR}/checkpoints"
    return _env("SM_CHECKPOINT_DIR", fallback)


@dataclass
class DataArguments:
    """Where the splits are read from and where the model and outputs are written."""

    data_dir: str = ""
    train_dir: str = field(default_factory=lambda: _env("SM_CHANNEL_TRAIN"))
    validation_dir: str = field(default_factory=lambda: _env("SM_CHANNEL_VALIDATION"))
    test_dir: str = field(default_factory=lambda: _env("SM_CHANNEL_TEST"))
    protected_dir: str = field(default_factory=lambda: _env("SM_CHANNEL_PROTECTED"))
    manifest_path: str = field(default_factory=lambda: _env("SM_CHANNEL_MANIFEST"))
    model_dir: str = field(default_factory=lambda: _env("SM_MODEL_DIR", f"{LOCAL_RUN_DIR}/model"))
    output_dir: str = field(
        default_factory=lambda: _env("SM_OUTPUT_DATA_DIR", f"{LOCAL_RUN_DIR}/output")
    )
    checkpoint_dir: str = field(default_factory=_default_checkpoint_dir)

    def __post_init__(self) -> None:
        """Fill the three splits (and race, manifest) from ``data_dir``; fail fast if unset."""
        if self.data_dir:
            features = Path(self.data_dir)
            self.train_dir = self.train_dir or str(features / f"split={SPLIT_TRAIN}")
            self.validation_dir = self.validation_dir or str(features / f"split={SPLIT_VALIDATION}")
            self.test_dir = self.test_dir or str(features / f"split={SPLIT_TEST}")
            protected = features.parent / "protected" / f"split={SPLIT_TEST}"
            if not self.protected_dir and protected.is_dir():
                self.protected_dir = str(protected)
            manifest = features.parent / MANIFEST_FILE
            if not self.manifest_path and manifest.is_file():
                self.manifest_path = str(manifest)
        for name in ("train_dir", "validation_dir", "test_dir"):
            value = getattr(self, name)
            if not value:
                raise ValueError(f"{name} is not set: pass --data-dir or SM_CHANNEL_* variables")
            if not Path(value).exists():
                raise ValueError(f"{name} does not exist")
        if self.manifest_path and Path(self.manifest_path).is_dir():
            self.manifest_path = str(Path(self.manifest_path) / MANIFEST_FILE)


@dataclass
class HyperParameters:
    """Model and optimisation settings; ``SM_HPS`` and the command line override them."""

    epochs: int = 8
    max_steps: int = 0  # 0: no limit; otherwise stop after this many optimiser steps
    batch_size: int = 256  # global batch, split evenly over the DDP processes
    eval_batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    patience: int = 2  # epochs without a better validation AUROC before stopping
    seed: int = 42
    # Weight of positive examples in the loss: 1 (default) is unweighted, which ranked better
    # than negatives/positives on UCI validation (docs/model.md); 0 sets that ratio.
    pos_weight: float = 1.0
    auxiliary_weight: float = 0.5  # weight of the auxiliary target's loss; 0 turns it off
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    fusion_size: int = 64
    tabular_hidden_size: int = 128
    category_embedding_dim: int = 8
    note_hidden_size: int = 64
    note_num_layers: int = 2
    dropout: float = 0.1
    code_min_frequency: int = 5  # the floor of a code token's training count for the vocabulary
    # ... raised to this share of the training encounters: rarer codes map to [UNK] (their
    # ICD-9 category tokens usually stay), so the vocabulary scales with the data
    code_min_fraction: float = 0.001
    category_min_frequency: int = 5
    max_code_length: int = 64
    note_max_length: int = 256
    note_vocab_size: int = 4000
    # Gradient-boosted trees blended with the network at the logit (docs/model.md); the
    # network's weight is chosen on validation (1.0, the network alone, if trees don't help).
    tree_blend: bool = True
    tree_learning_rate: float = 0.03
    tree_max_leaf_nodes: int = 63
    tree_min_samples_leaf: int = 200
    tree_max_iterations: int = 300  # early stopping on held-out training rows ends sooner
    tree_bag_size: int = 400  # most frequent code tokens the trees see as presence columns
    # The decision threshold (docs/model.md, "Threshold policy"): by default the one that
    # alerts on the top ``alert_budget`` share of validation discharges (the share the care
    # team can follow up); ``--threshold-target sensitivity`` reaches ``threshold_value``
    # sensitivity instead. Evaluation reports the budget's figures either way.
    threshold_target: str = field(default="alert_budget", metadata={"choices": THRESHOLD_TARGETS})
    alert_budget: float = 0.10
    threshold_value: float = 0.8  # the sensitivity target (with threshold_target sensitivity)
    bootstrap_resamples: int = 1000  # percentile-bootstrap resamples of the 95 % intervals
    pretrained_code_encoder: str = ""  # a hub name (production only); downloads when set
    log_every: int = 50
    cpu_threads: int = 0  # intra-op threads on CPU; 0 keeps torch's default (one per core)
    baseline: bool = True

    @property
    def threshold_target_value(self) -> float:
        """The value the threshold target aims at: the budget or the sensitivity."""
        return (
            self.alert_budget if self.threshold_target == "alert_budget" else self.threshold_value
        )

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "eval_batch_size", "num_layers", "num_heads")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_steps < 0 or self.patience < 1 or self.cpu_threads < 0:
            raise ValueError("max_steps and cpu_threads must be >= 0, patience >= 1")
        if self.auxiliary_weight < 0:
            raise ValueError("auxiliary_weight must be at least 0")
        if not 0.0 <= self.code_min_fraction < 1.0:
            raise ValueError("code_min_fraction must lie in [0, 1)")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.pos_weight < 0:
            raise ValueError("learning_rate must be > 0; weight_decay and pos_weight >= 0")
        if not 0.0 <= self.warmup_ratio < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("warmup_ratio and dropout must lie in [0, 1)")
        if self.tree_learning_rate <= 0 or self.tree_max_leaf_nodes < 2:
            raise ValueError("tree_learning_rate must be > 0 and tree_max_leaf_nodes >= 2")
        if min(self.tree_min_samples_leaf, self.tree_max_iterations, self.tree_bag_size) < 1:
            raise ValueError("tree_min_samples_leaf, tree_max_iterations, tree_bag_size >= 1")
        if self.threshold_target not in THRESHOLD_TARGETS:
            raise ValueError(
                "threshold_target must be 'alert_budget' (the share set by --alert-budget) "
                "or 'sensitivity'"
            )
        if not 0.0 < self.alert_budget <= 1.0:
            raise ValueError("alert_budget must be a share in (0, 1]")
        if not 0.0 < self.threshold_value <= 1.0:
            raise ValueError("threshold_value must lie in (0, 1]")
        if self.bootstrap_resamples < 2:
            raise ValueError("bootstrap_resamples must be at least 2")
        if self.hidden_size % self.num_heads or self.note_hidden_size % self.num_heads:
            raise ValueError("hidden_size and note_hidden_size must be divisible by num_heads")


def _hyperparameters_from_env() -> dict[str, str]:
    """Return ``SM_HPS`` keyed by field name, every value as text (as SageMaker passes them)."""
    raw = os.environ.get("SM_HPS", "")
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError("SM_HPS is not valid JSON") from error
    if not isinstance(values, dict):
        raise ValueError("SM_HPS must be a JSON object")
    return {key.replace("-", "_"): _as_text(value) for key, value in values.items()}


def _as_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def parse_args(argv: Sequence[str] | None = None) -> tuple[DataArguments, HyperParameters]:
    """Parse the command line over ``SM_*`` defaults into validated dataclasses.

    transformers' ``HfArgumentParser`` makes the flags from the fields (``--batch-size`` and
    ``--batch_size``, as SageMaker's driver passes hyperparameters; ``--no-baseline`` for a
    boolean that defaults to true; ``choices`` from a field's metadata). ``SM_HPS`` becomes the
    parser's defaults, converted as command-line text is, so the command line wins over it.
    A bad value or an unknown (or abbreviated) flag raises ``ValueError`` naming it.
    """
    # Here, not at the top: importing transformers' parser takes seconds, and HyperParameters
    # is imported wherever a training setting is named.
    from transformers import HfArgumentParser

    settings: Any = (DataArguments, HyperParameters)  # its stubs type them as a NewType
    parser = HfArgumentParser(
        settings,
        prog="python -m training.train",
        description=__doc__,
        exit_on_error=False,
        allow_abbrev=False,  # --epoch is a typo, not --epochs
    )
    from_env = _hyperparameters_from_env()
    unknown = set(from_env) - {f.name for f in dataclasses.fields(HyperParameters)}
    if unknown:
        raise ValueError(f"unknown hyperparameters in SM_HPS: {sorted(unknown)}")
    parser.set_defaults(**from_env)
    try:
        data, hyper = parser.parse_args_into_dataclasses(
            args=list(sys.argv[1:] if argv is None else argv), look_for_args_file=False
        )
    except argparse.ArgumentError as error:
        raise ValueError(str(error)) from None
    return data, hyper
