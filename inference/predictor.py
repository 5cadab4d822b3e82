"""The loaded model directory and the scoring of a request: encode, score, calibrate, explain.

Everything is read once from the directory that training wrote (training/artifact.py): the
fitted encoder (never refitted here), the weights, the temperature and logit offset of the
calibration, the decision threshold and the model version. Scoring follows training's
evaluation exactly: ``probability = sigmoid((logit - logit_offset) / temperature)``.

The logits come from the one serving forward pass, ``inference.scorer.Scorer``. Explanation is
a separate step (``inference.attribution.OcclusionExplainer``, built on the scorer): only a
request that asks for top factors runs it; a score-only request runs the scorer alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contracts.model_artifact import (
    CALIBRATION_FILE,
    DRIFT_BASELINE_FILE,
    ENCODER_FILE,
    METADATA_FILE,
    MODEL_CONFIG_FILE,
    SERVING_FILES,
    ArtifactContractError,
    Calibration,
    model_version,
)
from contracts.serving import (
    ENCOUNTER_KEY,
    MODEL_VERSION,
    PROBABILITY,
    RISK_BAND,
    TOP_FACTORS,
    risk_band,
)
from inference.attribution import OcclusionExplainer
from inference.code_titles import load_titles
from inference.encoding import FeatureEncoder, UnscorableRecordError
from inference.errors import InvalidRequestError, ModelArtifactError
from inference.model import ReadmissionModel, load_model
from inference.payload import EncounterBatch, check_record
from inference.scorer import Scorer
from inference.trees import LegacyTreesError, TreesError

log = logging.getLogger(__name__)

REQUIRED_FILES = SERVING_FILES

#: Logits are clipped to this before the sigmoid, as training's calibration does.
_LOGIT_CLIP = 60.0

# Batch invariance, as stated (docs/inference.md, "The same patient, alone or in a batch").
# A request is scored in one batched pass: float32 matrix products give a row a result that
# depends, in its last bits, on how many rows are multiplied with it and how long the longest
# sequence is, so a record scored beside others may differ from the same record alone. Scoring
# each record alone would make it bitwise invariant at about 5x the cost of a 100-record batch
# (benchmarks/results/serving.json), so the difference is bounded instead, and tested:
#: Largest difference of a record's probability between any two batches (observed: ~4e-8).
PROBABILITY_BATCH_BOUND = 1e-6
#: Largest difference of one factor's contribution (calibrated log-odds) between any two
#: batches, rounding to ``CONTRIBUTION_DECIMALS`` included (observed: one unit of the last
#: decimal, 1e-6). A factor within this of the fifth one's size, or of zero, may trade places
#: with the next one or be left out.
CONTRIBUTION_BATCH_BOUND = 1e-5


@dataclass(frozen=True)
class ServingModel:
    """What ``model_fn`` returns: the model and everything needed to turn logits into answers."""

    encoder: FeatureEncoder
    model: ReadmissionModel
    scorer: Scorer
    explainer: OcclusionExplainer
    temperature: float
    logit_offset: float
    threshold: float
    model_version: str


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelArtifactError(f"{path.name} cannot be read as JSON") from e
    if not isinstance(data, dict):
        raise ModelArtifactError(f"{path.name} is not a JSON object")
    return data


def load_serving_model(model_dir: str | Path) -> ServingModel:
    """Load a model directory once; a missing or inconsistent file is named in the error."""
    path = Path(model_dir)
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelArtifactError(f"model directory lacks {', '.join(missing)}")
    try:
        calibration = Calibration.from_dict(_read_json(path / CALIBRATION_FILE))
        version = model_version(_read_json(path / METADATA_FILE))
    except ArtifactContractError as e:
        raise ModelArtifactError(str(e)) from e
    baseline_path = path / DRIFT_BASELINE_FILE
    baseline = _read_json(baseline_path) if baseline_path.is_file() else None
    encoder = FeatureEncoder.load(path)
    try:
        model = load_model(path)
    except LegacyTreesError as e:
        raise ModelArtifactError(f"{MODEL_CONFIG_FILE}: {e}") from e
    except TreesError as e:
        raise ModelArtifactError(str(e)) from e
    _check_consistent(encoder, model)
    scorer = Scorer(model)
    explainer = OcclusionExplainer(scorer, encoder, baseline, load_titles())
    log.info("model loaded: version %s", version)
    return ServingModel(
        encoder,
        model,
        scorer,
        explainer,
        calibration.temperature,
        calibration.logit_offset,
        calibration.threshold,
        version,
    )


def _check_consistent(encoder: FeatureEncoder, model: ReadmissionModel) -> None:
    """The encoder and the weights must come from the same training run."""
    config = model.config
    if (
        config.code_vocab_size != len(encoder.code_vocab)
        or list(config.category_cardinalities) != encoder.category_cardinalities
        or config.numeric_width != encoder.numeric_width
        or config.notes_enabled != encoder.notes_enabled
    ):
        raise ModelArtifactError(f"{ENCODER_FILE} does not match {MODEL_CONFIG_FILE}")


def calibrated_probabilities(logits: np.ndarray, offset: float, temperature: float) -> np.ndarray:
    """``sigmoid((logit - offset) / temperature)`` in float64."""
    z = np.clip((logits.astype(np.float64) - offset) / temperature, -_LOGIT_CLIP, _LOGIT_CLIP)
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _unscorable(
    serving: ServingModel, batch: EncounterBatch, error: UnscorableRecordError
) -> InvalidRequestError:
    """Name the record and field at fault (re-encoding one record at a time, error path only)."""
    for index, record in enumerate(batch.records):
        try:
            serving.encoder.encode([record])
        except UnscorableRecordError as found:
            return InvalidRequestError(batch.field_path(index, found.field), found.reason)
    return InvalidRequestError(error.field, error.reason)


def predict(
    serving: ServingModel, batch: EncounterBatch, *, explain: bool = True
) -> list[dict[str, Any]]:
    """Score a checked batch: one prediction per record, in order (contracts.serving).

    ``explain=False`` runs the scorer alone: the same logits, no top factors, and the
    explainer is never called.
    """
    try:
        encoded = serving.encoder.encode(batch.records)
    except UnscorableRecordError as e:
        raise _unscorable(serving, batch, e) from e
    with torch.inference_mode():
        tensors = {name: torch.from_numpy(array) for name, array in encoded.arrays().items()}
        if explain:
            scores, factors = serving.explainer.explain(batch.records, tensors, serving.temperature)
        else:
            scores, factors = serving.scorer.logits(tensors), [[] for _ in batch.records]
        logits = scores.numpy()
    probabilities = calibrated_probabilities(logits, serving.logit_offset, serving.temperature)
    return [
        {
            ENCOUNTER_KEY: record.get(ENCOUNTER_KEY),
            PROBABILITY: float(probability),
            RISK_BAND: risk_band(float(probability), serving.threshold),
            MODEL_VERSION: serving.model_version,
            TOP_FACTORS: record_factors,
        }
        for record, probability, record_factors in zip(
            batch.records, probabilities, factors, strict=True
        )
    ]


def as_batch(data: EncounterBatch | Sequence[Mapping[str, Any]]) -> EncounterBatch:
    """Accept what ``input_fn`` returns, or a plain list of records from a caller in Python."""
    if isinstance(data, EncounterBatch):
        return data
    batch = EncounterBatch(records=[], batched=True)
    for index, record in enumerate(data):
        batch.records.append(check_record(record, batch, index))
    return batch
