"""The model directory's contract: calibration round trip and refusals, metadata, file names."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

import pytest

from contracts import model_artifact as ma
from contracts.drift import BASELINE_FILE_NAME

FULL = ma.Calibration(
    temperature=1.3,
    threshold=0.27,
    logit_offset=-0.4,
    threshold_target="alert_budget",
    threshold_target_value=0.1,
    alert_budget=0.1,
    validation_sensitivity=0.31,
    validation_alert_rate=0.1,
)


def test_calibration_round_trips_through_json() -> None:
    document = json.loads(json.dumps(FULL.to_dict(), allow_nan=False))
    assert ma.Calibration.from_dict(document) == FULL
    assert document[ma.CAL_FORMULA] == ma.CALIBRATION_FORMULA
    # Every field of the dataclass is written under its contract name.
    assert {f.name for f in fields(ma.Calibration)} <= set(document)


def test_calibration_of_an_older_artifact_loads_with_defaults() -> None:
    """Before the offset and the threshold's provenance existed, only these two were written."""
    calibration = ma.Calibration.from_dict({"temperature": 2.0, "threshold": 0.5})
    assert calibration.logit_offset == 0.0
    assert calibration.method == ma.CALIBRATION_METHOD
    assert calibration.threshold_target is None


def test_unknown_calibration_fields_are_ignored() -> None:
    document = {**FULL.to_dict(), "added_by_a_later_version": [1, 2]}
    assert ma.Calibration.from_dict(document) == FULL


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"temperature": None}, "temperature"),
        ({"threshold": None}, "threshold"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": "1.0"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.0}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"logit_offset": math.inf}, "logit_offset"),
        ({"logit_offset": "0"}, "logit_offset"),
        ({"alert_budget": "ten"}, "alert_budget"),
        ({"threshold_target": 3}, "threshold_target"),
    ],
)
def test_a_bad_calibration_is_refused_naming_the_field(
    change: dict[str, Any], field_name: str
) -> None:
    document = {**FULL.to_dict(), **change}
    with pytest.raises(ma.ArtifactContractError, match=f"'{field_name}'") as caught:
        ma.Calibration.from_dict(document)
    assert ma.CALIBRATION_FILE in str(caught.value)


@pytest.mark.parametrize("document", [[], "calibration", None, 3])
def test_a_calibration_that_is_not_an_object_is_refused(document: Any) -> None:
    with pytest.raises(ma.ArtifactContractError, match="not a JSON object"):
        ma.Calibration.from_dict(document)


def test_the_constructor_refuses_what_reading_refuses() -> None:
    with pytest.raises(ma.ArtifactContractError, match="'threshold'"):
        ma.Calibration(temperature=1.0, threshold=1.5)
    with pytest.raises(ma.ArtifactContractError, match="'temperature'"):
        ma.Calibration(temperature=math.inf, threshold=0.5)


def _metadata(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(ma.METADATA_FIELDS)
    values[ma.META_MODEL_VERSION] = "readmission-multimodal-20260101000000"
    return {**values, **overrides}


def test_metadata_document_holds_exactly_the_contract_fields() -> None:
    document = ma.metadata_document(**_metadata())
    assert list(document) == list(ma.METADATA_FIELDS)
    assert ma.model_version(document) == "readmission-multimodal-20260101000000"


def test_metadata_document_refuses_a_misspelt_or_missing_field() -> None:
    values = _metadata()
    values["modle_name"] = values.pop(ma.META_MODEL_NAME)
    with pytest.raises(ma.ArtifactContractError, match="modle_name") as caught:
        ma.metadata_document(**values)
    assert ma.META_MODEL_NAME in str(caught.value)


@pytest.mark.parametrize("metadata", [{}, {"model_version": ""}, {"model_version": 7}, []])
def test_a_metadata_without_a_version_is_refused(metadata: Any) -> None:
    with pytest.raises(ma.ArtifactContractError, match="'model_version' is missing"):
        ma.model_version(metadata)


def test_file_names_are_distinct_and_the_baseline_is_the_drift_contracts() -> None:
    names = [
        ma.CALIBRATION_FILE,
        ma.FEATURE_SPEC_FILE,
        ma.METADATA_FILE,
        ma.EVALUATION_FILE,
        ma.MODEL_CARD_FILE,
        ma.DRIFT_BASELINE_FILE,
        ma.ENCODER_FILE,
        ma.NOTES_TOKENIZER_FILE,
        ma.MODEL_CONFIG_FILE,
        ma.WEIGHTS_FILE,
        ma.CODE_DIR,
    ]
    assert len(set(names)) == len(names)
    assert ma.DRIFT_BASELINE_FILE == BASELINE_FILE_NAME
    assert set(ma.SERVING_FILES) <= set(names)


@pytest.mark.parametrize(
    ("member", "expected"),
    [("./calibration.json", "calibration.json"), ("calibration.json", "calibration.json")],
)
def test_archive_members_are_named_relative_to_the_directory(member: str, expected: str) -> None:
    assert ma.root_member(member) == expected
    assert ma.root_member("./code/serving_entry.py") == f"{ma.CODE_DIR}/{ma.SERVING_ENTRY}"


def test_contract_module_is_standard_library_only() -> None:
    """It travels in every Lambda asset and in the model's code/ folder."""
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(ma.__file__).read_text())
    roots = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert roots - {"__future__", "contracts"} <= set(sys.stdlib_module_names)
