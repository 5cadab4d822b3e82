"""The four serving hooks on a small trained model directory."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from contracts.model_artifact import CALIBRATION_FILE, METADATA_FILE
from contracts.serving import risk_band
from inference import handler
from inference.encoding import FeatureEncoder
from inference.errors import InvalidRequestError, ModelArtifactError, UnsupportedContentTypeError
from inference.handler import input_fn, model_fn, output_fn, predict_fn
from inference.model import load_model
from inference.predictor import ServingModel
from training.synthetic import synthetic_records

SECRET = "DISTINCTIVE-VALUE-7731"
PREDICTION_KEYS = {"encounter_key", "probability", "risk_band", "model_version", "top_factors"}


def records(n: int, seed: int = 21) -> list[dict[str, Any]]:
    return synthetic_records(n, seed=seed, with_notes=True)[0]


def score(serving: ServingModel, body: Any) -> list[dict[str, Any]]:
    """Run the hooks as the container does and return the decoded predictions."""
    text, content_type = output_fn(
        predict_fn(input_fn(json.dumps(body).encode("utf-8"), "application/json"), serving),
        "application/json",
    )
    assert content_type == "application/json"
    return list(json.loads(text)["predictions"])


def test_hooks_keep_the_parameters_the_toolkit_counts() -> None:
    counts = {
        name: len(inspect.signature(getattr(handler, name)).parameters)
        for name in ("model_fn", "input_fn", "predict_fn", "output_fn")
    }
    assert counts == {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2}


def test_model_fn_loads_the_saved_calibration_threshold_and_version(
    serving_model: ServingModel, model_dir: Path
) -> None:
    calibration = json.loads((model_dir / CALIBRATION_FILE).read_text())
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    assert serving_model.temperature == calibration["temperature"]
    assert serving_model.logit_offset == calibration["logit_offset"]
    assert serving_model.threshold == calibration["threshold"]
    assert serving_model.model_version == metadata["model_version"]
    assert not serving_model.model.training


def test_one_record_gives_one_prediction_in_the_contract_shape(serving_model: ServingModel) -> None:
    record = records(1)[0]
    [prediction] = score(serving_model, record)
    assert set(prediction) == PREDICTION_KEYS
    assert prediction["encounter_key"] == record["encounter_key"]
    assert prediction["model_version"] == serving_model.model_version
    assert 0.0 < prediction["probability"] < 1.0


def test_probabilities_are_the_training_logits_calibrated(
    serving_model: ServingModel, model_dir: Path
) -> None:
    """Same as training's evaluation: sigmoid((logit - offset) / T) of the saved model."""
    batch = records(12)
    encoder = FeatureEncoder.load(model_dir)
    model = load_model(model_dir)
    calibration = json.loads((model_dir / CALIBRATION_FILE).read_text())
    with torch.inference_mode():
        tensors = {k: torch.from_numpy(v) for k, v in encoder.encode(batch).arrays().items()}
        logits = model(**tensors).numpy().astype(np.float64)
    z = (logits - calibration["logit_offset"]) / calibration["temperature"]
    expected = 1.0 / (1.0 + np.exp(-z))
    got = [p["probability"] for p in score(serving_model, {"instances": batch})]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_risk_bands_follow_the_saved_threshold(serving_model: ServingModel) -> None:
    batch = records(40)
    probabilities = sorted(p["probability"] for p in score(serving_model, batch))
    # A threshold inside the observed range, so that every band occurs.
    threshold = probabilities[len(probabilities) * 3 // 4]
    assert threshold * 0.5 > probabilities[0] or threshold * 0.5 < probabilities[0]
    shifted = dataclasses.replace(serving_model, threshold=threshold)
    predictions = score(shifted, batch)
    for prediction in predictions:
        p = prediction["probability"]
        expected = "high" if p >= threshold else "moderate" if p >= threshold / 2 else "low"
        assert prediction["risk_band"] == expected == risk_band(p, threshold)
    assert {p["risk_band"] for p in predictions} >= {"high", "moderate"}


def test_batch_order_and_keys_are_kept(serving_model: ServingModel) -> None:
    batch = records(5)
    batch[2]["encounter_key"] = None
    predictions = score(serving_model, {"instances": batch})
    assert [p["encounter_key"] for p in predictions] == [r["encounter_key"] for r in batch]
    singles = [score(serving_model, r)[0]["probability"] for r in batch]
    np.testing.assert_allclose([p["probability"] for p in predictions], singles, rtol=1e-5)


def test_factors_are_well_formed_sorted_and_deterministic(serving_model: ServingModel) -> None:
    batch = records(10)
    first = score(serving_model, batch)
    assert first == score(serving_model, batch)
    for prediction in first:
        factors = prediction["top_factors"]
        assert 1 <= len(factors) <= 5
        sizes = [abs(f["contribution"]) for f in factors]
        assert sizes == sorted(sizes, reverse=True)
        for factor in factors:
            assert set(factor) == {"feature", "direction", "contribution"}
            assert factor["contribution"] != 0
            expected = "increases_risk" if factor["contribution"] > 0 else "decreases_risk"
            assert factor["direction"] == expected
            assert isinstance(factor["feature"], str)
            assert factor["feature"]
        assert len({f["feature"] for f in factors}) == len(factors)


def test_unknown_codes_and_categories_are_scored_as_unknown(serving_model: ServingModel) -> None:
    base = records(1)[0]
    one = score(serving_model, {**base, "diagnosis_codes": ["ZZZ999"], "admitting_service": "xq1"})
    two = score(serving_model, {**base, "diagnosis_codes": ["QQQ111"], "admitting_service": "xq2"})
    assert one[0]["probability"] == two[0]["probability"]


def test_missing_optional_fields_are_imputed(serving_model: ServingModel) -> None:
    optional = ("admitting_service", "prior_outpatient_visits_12m", "days_since_last_discharge")
    base = records(1)[0]
    absent = {k: v for k, v in base.items() if k not in (*optional, "note_text")}
    nulls = {**base, **dict.fromkeys(optional), "note_text": None}
    [a] = score(serving_model, absent)
    [b] = score(serving_model, nulls)
    assert a["probability"] == b["probability"]
    names = {f["feature"] for f in a["top_factors"]}
    assert not any(name.startswith("discharge note") for name in names)


def test_out_of_range_values_are_clipped_to_the_contract(serving_model: ServingModel) -> None:
    base = records(1)[0]
    [high] = score(serving_model, {**base, "age_years": 170, "length_of_stay_days": -3.0})
    [edge] = score(serving_model, {**base, "age_years": 130, "length_of_stay_days": 0.0})
    assert high["probability"] == edge["probability"]


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"age_years": SECRET}, "instances.1.age_years", "must be a number"),
        ({"sex": 3}, "instances.1.sex", "must be a string"),
        ({"diagnosis_codes": SECRET}, "instances.1.diagnosis_codes", "must be a list of strings"),
        ({"medications": [SECRET, 4]}, "instances.1.medications", "must be a list of strings"),
        ({"num_lab_tests": True}, "instances.1.num_lab_tests", "must be a number"),
        ({"note_text": ["a"]}, "instances.1.note_text", "must be a string"),
    ],
)
def test_an_unscorable_record_names_the_field_never_the_value(
    serving_model: ServingModel, overrides: dict[str, Any], field: str, reason: str
) -> None:
    batch = records(3)
    batch[1].update(overrides)
    data = input_fn(json.dumps({"instances": batch}), "application/json")
    with pytest.raises(InvalidRequestError) as caught:
        predict_fn(data, serving_model)
    assert (caught.value.field, caught.value.reason) == (field, reason)
    assert caught.value.status_code == 400
    assert SECRET not in str(caught.value)


def test_predict_fn_also_takes_a_plain_list(serving_model: ServingModel) -> None:
    batch = records(2)
    direct = predict_fn(batch, serving_model)
    assert [p["probability"] for p in direct] == [
        p["probability"] for p in score(serving_model, batch)
    ]


def test_bad_content_type_is_a_clear_415(serving_model: ServingModel) -> None:
    with pytest.raises(UnsupportedContentTypeError) as caught:
        input_fn(b"age,sex\n1,F", "text/csv")
    assert caught.value.status_code == 415
    assert "application/json" in str(caught.value)


def test_an_incomplete_model_directory_names_the_missing_file(
    model_dir: Path, tmp_path: Path
) -> None:
    copy = shutil.copytree(model_dir, tmp_path / "model")
    (copy / CALIBRATION_FILE).unlink()
    with pytest.raises(ModelArtifactError, match=r"lacks calibration\.json"):
        model_fn(str(copy))


def _with_calibration(model_dir: Path, tmp_path: Path, document: Any) -> Path:
    copy = shutil.copytree(model_dir, tmp_path / "model")
    (copy / CALIBRATION_FILE).write_text(json.dumps(document))
    return copy


def test_a_calibration_written_before_the_offset_existed_still_loads(
    model_dir: Path, tmp_path: Path
) -> None:
    """Artifacts already registered hold only temperature and threshold."""
    old = _with_calibration(model_dir, tmp_path, {"temperature": 1.5, "threshold": 0.3})
    serving = model_fn(str(old))
    assert (serving.temperature, serving.logit_offset, serving.threshold) == (1.5, 0.0, 0.3)


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"threshold": "0.3"}, "threshold"),
        ({"threshold": 1.2}, "threshold"),
        ({"temperature": 0}, "temperature"),
        ({"logit_offset": None, "temperature": None}, "temperature"),
        ({"logit_offset": "x"}, "logit_offset"),
    ],
)
def test_a_calibration_that_breaks_the_contract_is_refused_naming_the_field(
    model_dir: Path, tmp_path: Path, change: dict[str, Any], field_name: str
) -> None:
    saved = json.loads((model_dir / CALIBRATION_FILE).read_text())
    bad = _with_calibration(model_dir, tmp_path, {**saved, **change})
    with pytest.raises(ModelArtifactError, match=f"calibration.json: '{field_name}'"):
        model_fn(str(bad))


def test_a_metadata_without_a_version_is_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(model_dir, tmp_path / "model")
    (copy / METADATA_FILE).write_text(json.dumps({"model_name": "x"}))
    with pytest.raises(ModelArtifactError, match="'model_version' is missing"):
        model_fn(str(copy))
