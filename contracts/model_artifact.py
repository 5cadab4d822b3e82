"""The model directory (``model.tar.gz``): its file names, calibration and metadata fields.

Training writes the directory (``training/artifact.py``, ``training/pipeline.py``,
``inference/model.py``'s ``save_model``, ``inference/encoding.py``'s ``save``); the serving
container reads it (``inference/predictor.py``), and so do the deployer (the drift baseline and
the shadow threshold), the registrar (the evaluation and the serving entry) and the local
platform. Every name they share is defined here once. Standard library only: the module
travels in every Lambda's asset and in the model's ``code/`` folder.

Reading is lenient about what it does not know (a newer training run may add a field) and
strict about what it needs: a calibration without a positive finite temperature and a
threshold in (0, 1) is refused with a message naming the field, never its value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.drift import BASELINE_FILE_NAME

# -- files at the directory's root -------------------------------------------------------------
CALIBRATION_FILE = "calibration.json"
FEATURE_SPEC_FILE = "feature_spec.json"
METADATA_FILE = "metadata.json"
EVALUATION_FILE = "evaluation.json"
MODEL_CARD_FILE = "model_card.html"
#: The training distribution the drift monitor compares with (``contracts.drift``).
DRIFT_BASELINE_FILE = BASELINE_FILE_NAME
#: The fitted feature encoder (``inference.encoding.FeatureEncoder.save``).
ENCODER_FILE = "encoder.json"
#: The notes tokenizer, present only when the model reads notes.
NOTES_TOKENIZER_FILE = "notes_tokenizer.json"
#: The network's architecture and its weights (``inference.model.save_model``).
MODEL_CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = "model.safetensors"
#: The tree term, LightGBM's public text model format, present only when the model blends trees
#: (``inference.trees.TreeTerm``).
TREES_FILE = "trees.txt"

# -- the serving code ----------------------------------------------------------------------------
#: The folder the SageMaker PyTorch serving image imports the entry module from.
CODE_DIR = "code"
#: Not ``inference.py``: code/inference/ (the package) would shadow a module of that name.
SERVING_ENTRY = "serving_entry.py"
#: What the serving image installs from ``code/``.
CODE_REQUIREMENTS = "requirements.txt"

#: What the serving container cannot start without.
SERVING_FILES = (ENCODER_FILE, MODEL_CONFIG_FILE, WEIGHTS_FILE, CALIBRATION_FILE, METADATA_FILE)


def root_member(name: str) -> str:
    """A ``model.tar.gz`` member's name relative to the directory (``./x`` -> ``x``)."""
    return name.removeprefix("./")


class ArtifactContractError(ValueError):
    """A document of the model directory breaks the contract; names the field, not its value."""


# -- calibration.json ----------------------------------------------------------------------------
CALIBRATION_METHOD = "temperature_scaling"
CALIBRATION_FORMULA = "probability = sigmoid((logit - logit_offset) / temperature)"

#: Field names of ``calibration.json``.
CAL_METHOD = "method"
CAL_LOGIT_OFFSET = "logit_offset"
CAL_TEMPERATURE = "temperature"
CAL_FORMULA = "formula"
CAL_THRESHOLD = "threshold"
CAL_THRESHOLD_TARGET = "threshold_target"
CAL_THRESHOLD_TARGET_VALUE = "threshold_target_value"
CAL_ALERT_BUDGET = "alert_budget"
CAL_VALIDATION_SENSITIVITY = "validation_sensitivity"
CAL_VALIDATION_ALERT_RATE = "validation_alert_rate"


def _number(document: Mapping[str, Any], key: str, default: float | None) -> float | None:
    """``document[key]`` as a finite float (``default`` when absent or null)."""
    value = document.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ArtifactContractError(f"{CALIBRATION_FILE}: '{key}' must be a finite number")
    return float(value)


def _required(document: Mapping[str, Any], key: str) -> float:
    value = _number(document, key, None)
    if value is None:
        raise ArtifactContractError(f"{CALIBRATION_FILE}: '{key}' is missing")
    return value


def _text(document: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = document.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ArtifactContractError(f"{CALIBRATION_FILE}: '{key}' must be a string")
    return value


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling and the decision threshold, both fitted on validation.

    ``probability = sigmoid((logit - logit_offset) / temperature)``; a record alerts when its
    probability reaches ``threshold``. The remaining fields say how the threshold was chosen
    (absent from artifacts written before they existed).
    """

    temperature: float
    threshold: float
    logit_offset: float = 0.0
    method: str = CALIBRATION_METHOD
    threshold_target: str | None = None
    threshold_target_value: float | None = None
    alert_budget: float | None = None
    validation_sensitivity: float | None = None
    validation_alert_rate: float | None = None

    def __post_init__(self) -> None:
        for key in (CAL_TEMPERATURE, CAL_THRESHOLD, CAL_LOGIT_OFFSET):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ArtifactContractError(f"{CALIBRATION_FILE}: '{key}' must be a finite number")
            if not math.isfinite(value):
                raise ArtifactContractError(f"{CALIBRATION_FILE}: '{key}' must be a finite number")
        if self.temperature <= 0.0:
            raise ArtifactContractError(f"{CALIBRATION_FILE}: '{CAL_TEMPERATURE}' must be > 0")
        if not 0.0 < self.threshold < 1.0:
            raise ArtifactContractError(f"{CALIBRATION_FILE}: '{CAL_THRESHOLD}' must lie in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """The ``calibration.json`` document (the formula spelled out for a human reader)."""
        return {
            CAL_METHOD: self.method,
            CAL_LOGIT_OFFSET: float(self.logit_offset),
            CAL_TEMPERATURE: float(self.temperature),
            CAL_FORMULA: CALIBRATION_FORMULA,
            CAL_THRESHOLD: float(self.threshold),
            CAL_THRESHOLD_TARGET: self.threshold_target,
            CAL_THRESHOLD_TARGET_VALUE: self.threshold_target_value,
            CAL_ALERT_BUDGET: self.alert_budget,
            CAL_VALIDATION_SENSITIVITY: self.validation_sensitivity,
            CAL_VALIDATION_ALERT_RATE: self.validation_alert_rate,
        }

    @classmethod
    def from_dict(cls, document: Any) -> Calibration:
        """Read a ``calibration.json`` document; unknown fields are ignored, bad ones refused.

        ``logit_offset`` defaults to 0 (artifacts from before the offset existed).
        """
        if not isinstance(document, Mapping):
            raise ArtifactContractError(f"{CALIBRATION_FILE} is not a JSON object")
        return cls(
            temperature=_required(document, CAL_TEMPERATURE),
            threshold=_required(document, CAL_THRESHOLD),
            logit_offset=_number(document, CAL_LOGIT_OFFSET, 0.0) or 0.0,
            method=_text(document, CAL_METHOD, CALIBRATION_METHOD) or CALIBRATION_METHOD,
            threshold_target=_text(document, CAL_THRESHOLD_TARGET, None),
            threshold_target_value=_number(document, CAL_THRESHOLD_TARGET_VALUE, None),
            alert_budget=_number(document, CAL_ALERT_BUDGET, None),
            validation_sensitivity=_number(document, CAL_VALIDATION_SENSITIVITY, None),
            validation_alert_rate=_number(document, CAL_VALIDATION_ALERT_RATE, None),
        )


# -- metadata.json -------------------------------------------------------------------------------
#: Field names of ``metadata.json``.
META_MODEL_NAME = "model_name"
META_MODEL_VERSION = "model_version"
META_CREATED_AT = "created_at"
META_SCHEMA_VERSION = "schema_version"
META_ARCHITECTURE = "architecture"
META_THRESHOLD_TARGET = "threshold_target"
META_ALERT_BUDGET = "alert_budget"
META_AUXILIARY_TARGET = "auxiliary_target"
META_TREE_BLEND = "tree_blend"
META_HYPERPARAMETERS = "hyperparameters"
META_TRAINING = "training"
META_TRAINING_DATA = "training_data"
#: Under ``training_data``: rows per split, and the ETL manifest's summary.
META_ROWS = "rows"
META_POSITIVE_RATE_TRAIN = "positive_rate_train"
META_MANIFEST = "manifest"

#: Every top-level field training writes, in the order it writes them.
METADATA_FIELDS = (
    META_MODEL_NAME,
    META_MODEL_VERSION,
    META_CREATED_AT,
    META_SCHEMA_VERSION,
    META_ARCHITECTURE,
    META_THRESHOLD_TARGET,
    META_ALERT_BUDGET,
    META_AUXILIARY_TARGET,
    META_TREE_BLEND,
    META_HYPERPARAMETERS,
    META_TRAINING,
    META_TRAINING_DATA,
)


def model_version(metadata: Any) -> str:
    """The model version in a ``metadata.json`` document (a non-empty string), or refuse."""
    version = metadata.get(META_MODEL_VERSION) if isinstance(metadata, Mapping) else None
    if not isinstance(version, str) or not version:
        raise ArtifactContractError(f"{METADATA_FILE}: '{META_MODEL_VERSION}' is missing")
    return version


def metadata_document(**fields: Any) -> dict[str, Any]:
    """A ``metadata.json`` document with exactly ``METADATA_FIELDS`` (missing or unknown: refused).

    Called with the field names as keywords, e.g. ``metadata_document(model_name=..., ...)``.
    """
    unknown = sorted(set(fields) - set(METADATA_FIELDS))
    missing = [name for name in METADATA_FIELDS if name not in fields]
    if unknown or missing:
        raise ArtifactContractError(
            f"{METADATA_FILE}: unknown fields {unknown}, missing fields {missing}"
        )
    document = {name: fields[name] for name in METADATA_FIELDS}
    model_version(document)
    return document


# -- feature_spec.json ---------------------------------------------------------------------------
SPEC_SCHEMA_VERSION = "schema_version"
SPEC_FIELDS = "fields"
SPEC_LABEL = "label"
