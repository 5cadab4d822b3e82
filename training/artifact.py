"""The model directory: everything the serving container needs, laid out for ``model.tar.gz``.

SageMaker tars ``SM_MODEL_DIR`` as it is; the PyTorch serving image imports
``code/serving_entry.py`` and installs ``code/requirements.txt``, so the directory deploys
unchanged.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contracts.encounter import ENCOUNTER_FIELDS, SCHEMA_VERSION, FieldKind, model_input_fields
from contracts.model_artifact import (
    CALIBRATION_FILE,
    CODE_DIR,
    CODE_REQUIREMENTS,
    DRIFT_BASELINE_FILE,
    ENCODER_FILE,
    EVALUATION_FILE,
    FEATURE_SPEC_FILE,
    METADATA_FILE,
    MODEL_CARD_FILE,
    MODEL_CONFIG_FILE,
    SERVING_ENTRY,
    SPEC_FIELDS,
    SPEC_LABEL,
    SPEC_SCHEMA_VERSION,
    WEIGHTS_FILE,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

CODE_PACKAGES = ("inference", "contracts")
#: The label the model predicts (the contract's one LABEL field).
LABEL_FIELD = next(spec.name for spec in ENCOUNTER_FIELDS if spec.kind == FieldKind.LABEL)
#: The serving entry module (``contracts.model_artifact.SERVING_ENTRY``).
INFERENCE_ENTRY = SERVING_ENTRY
INFERENCE_ENTRY_SOURCE = (
    '"""SageMaker PyTorch serving entry point: the hooks live in inference.handler."""\n\n'
    "from inference.handler import input_fn, model_fn, output_fn, predict_fn\n\n"
    '__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]\n'
)

#: Files ``write_model_directory`` always produces (besides encoder and weights).
REQUIRED_FILES = (
    CALIBRATION_FILE,
    FEATURE_SPEC_FILE,
    METADATA_FILE,
    EVALUATION_FILE,
    MODEL_CARD_FILE,
    DRIFT_BASELINE_FILE,
    ENCODER_FILE,
    MODEL_CONFIG_FILE,
    WEIGHTS_FILE,
    f"{CODE_DIR}/{INFERENCE_ENTRY}",
    f"{CODE_DIR}/{CODE_REQUIREMENTS}",
    f"{CODE_DIR}/inference/__init__.py",
    f"{CODE_DIR}/inference/encoding.py",
    f"{CODE_DIR}/inference/model.py",
    f"{CODE_DIR}/contracts/__init__.py",
    f"{CODE_DIR}/contracts/encounter.py",
    f"{CODE_DIR}/contracts/model_artifact.py",
)


def feature_spec(notes_enabled: bool) -> dict[str, Any]:
    """The contract version and the fields the model reads, by kind."""
    fields = {
        kind.value: [
            spec.name
            for spec in model_input_fields(kind)
            if kind != FieldKind.TEXT or notes_enabled
        ]
        for kind in (
            FieldKind.NUMERIC,
            FieldKind.CATEGORICAL,
            FieldKind.CODE_SEQUENCE,
            FieldKind.TEXT,
        )
    }
    return {SPEC_SCHEMA_VERSION: SCHEMA_VERSION, SPEC_FIELDS: fields, SPEC_LABEL: LABEL_FIELD}


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True, allow_nan=False))


def copy_code(model_dir: Path) -> None:
    """Copy the inference and contracts packages, the entry module and the requirements."""
    code = model_dir / CODE_DIR
    if code.exists():
        shutil.rmtree(code)
    code.mkdir(parents=True)
    # local_endpoint.py: the in-process server of tests and the demo; the container runs
    # ``python -m inference.serve`` (stacks.packaging.LOCAL_ONLY_MODULES).
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", CODE_REQUIREMENTS, "local_endpoint.py")
    for package in CODE_PACKAGES:
        shutil.copytree(REPO_ROOT / package, code / package, ignore=ignore)
    shutil.copyfile(REPO_ROOT / "inference" / CODE_REQUIREMENTS, code / CODE_REQUIREMENTS)
    (code / INFERENCE_ENTRY).write_text(INFERENCE_ENTRY_SOURCE)


def write_documents(model_dir: Path, documents: Mapping[str, Any]) -> None:
    """Write each JSON document (file name -> content) into the model directory."""
    for name, content in documents.items():
        _write_json(model_dir / name, content)


def missing_files(model_dir: str | Path) -> list[str]:
    """Return the required files absent from a model directory (empty when complete)."""
    root = Path(model_dir)
    return [name for name in REQUIRED_FILES if not (root / name).is_file()]
