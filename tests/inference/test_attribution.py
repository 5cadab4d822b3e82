"""Occlusion attribution: the model run in pieces is the model, and each contribution is the
change of calibrated log-odds that re-scoring the record with the group made typical gives."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from inference.attribution import (
    TOP_FACTORS,
    OcclusionExplainer,
    _category_weights,
    code_spans,
    format_value,
)
from inference.code_titles import load_titles
from inference.encoding import LOG1P_FIELDS, FeatureEncoder
from inference.predictor import ServingModel
from training.synthetic import synthetic_records


def records(n: int, seed: int = 33) -> list[dict[str, Any]]:
    return synthetic_records(n, seed=seed, with_notes=True)[0]


def logits(serving: ServingModel, batch: list[dict[str, Any]]) -> np.ndarray:
    """The model's own forward pass (not the explainer's pieces)."""
    with torch.inference_mode():
        tensors = {
            k: torch.from_numpy(v) for k, v in serving.encoder.encode(batch).arrays().items()
        }
        return serving.model(**tensors).numpy().astype(np.float64)


def explain(serving: ServingModel, batch: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    with torch.inference_mode():
        tensors = {
            k: torch.from_numpy(v) for k, v in serving.encoder.encode(batch).arrays().items()
        }
        forward = serving.explainer.forward(tensors)
        return serving.explainer.explain(batch, tensors, forward, serving.temperature)


def all_contributions(serving: ServingModel, record: dict[str, Any]) -> dict[str, float]:
    """Every group's contribution (not only the top 5), keyed by its readable name."""
    import inference.attribution as attribution

    original = attribution.TOP_FACTORS
    attribution.TOP_FACTORS = 1000
    try:
        [factors] = explain(serving, [record])
    finally:
        attribution.TOP_FACTORS = original
    return {f["feature"]: f["contribution"] for f in factors}


def test_the_forward_in_pieces_equals_the_model(serving_model: ServingModel) -> None:
    batch = records(16)
    with torch.inference_mode():
        tensors = {
            k: torch.from_numpy(v) for k, v in serving_model.encoder.encode(batch).arrays().items()
        }
        pieces = serving_model.explainer.forward(tensors).logits.numpy()
    np.testing.assert_allclose(pieces, logits(serving_model, batch), rtol=0, atol=1e-6)


def test_a_numeric_contribution_is_the_change_when_set_to_the_training_median(
    serving_model: ServingModel,
) -> None:
    record = {**records(1)[0], "prior_admissions_12m": 4}
    name = "prior_admissions_12m"
    median = serving_model.encoder.numeric_stats[name]["median"]
    typical = math.expm1(median) if name in LOG1P_FIELDS else median
    contributions = all_contributions(serving_model, record)
    [with_value, with_median] = logits(serving_model, [record, {**record, name: typical}])
    expected = (with_value - with_median) / serving_model.temperature
    assert contributions["admissions in the prior 12 months = 4"] == pytest.approx(
        expected, abs=2e-5
    )


def test_a_code_contribution_is_the_change_when_the_code_is_removed(
    serving_model: ServingModel,
) -> None:
    record = {**records(1)[0], "abnormal_labs": ["creatinine", "potassium"]}
    without = {**record, "abnormal_labs": ["creatinine"]}  # the last code: nothing shifts
    contributions = all_contributions(serving_model, record)
    [full, removed] = [logits(serving_model, [r])[0] for r in (record, without)]
    expected = (full - removed) / serving_model.temperature
    assert contributions["abnormal lab potassium"] == pytest.approx(expected, abs=2e-5)


def test_the_note_contribution_is_the_change_without_the_note(serving_model: ServingModel) -> None:
    record = records(1)[0]
    assert record["note_text"]
    contributions = all_contributions(serving_model, record)
    [full, without] = [
        logits(serving_model, [r])[0] for r in (record, {**record, "note_text": None})
    ]
    expected = (full - without) / serving_model.temperature
    assert contributions["discharge note"] == pytest.approx(expected, abs=2e-5)


def test_only_the_top_five_are_returned_largest_first(serving_model: ServingModel) -> None:
    record = records(1)[0]
    everything = all_contributions(serving_model, record)
    [top] = explain(serving_model, [record])
    ranked = sorted(everything.items(), key=lambda item: -abs(item[1]))[:TOP_FACTORS]
    assert [(f["feature"], f["contribution"]) for f in top] == ranked


def test_readable_names_of_every_kind_of_feature(serving_model: ServingModel) -> None:
    record = {
        **records(1)[0],
        "length_of_stay_days": 4.5,
        "days_since_last_discharge": None,
        "discharge_disposition": "home_health",
        "diagnosis_codes": ["4280", "ZZZ99"],
        "procedure_codes": ["3995"],
        "medications": ["furosemide"],
    }
    names = set(all_contributions(serving_model, record))
    assert {
        "length of stay (days) = 4.5",
        "discharge disposition = home health",
        "diagnosis 4280 (Congestive heart failure, unspecified)",
        "diagnosis ZZZ99",
        "procedure 3995 (Hemodialysis)",
        "medication furosemide",
        "days since last discharge not recorded",
    } <= names
    assert not any(record["patient_key"] in name for name in names)


def test_code_spans_match_the_encoders_token_layout(serving_model: ServingModel) -> None:
    encoder = serving_model.encoder
    long_record = {**records(1)[0], "diagnosis_codes": [f"{400 + i}1" for i in range(40)]}
    batch = [*records(30), long_record]
    masks = encoder.encode(batch).code_mask
    for record, mask in zip(batch, masks, strict=True):
        positions = sorted(p for span in code_spans(encoder, record).values() for p in span)
        assert positions == list(range(1, int(mask.sum())))


def test_repeated_codes_are_one_factor(serving_model: ServingModel) -> None:
    spans = code_spans(
        serving_model.encoder, {"diagnosis_codes": ["4280", "4280"], "medications": ["insulin"]}
    )
    assert spans == {("diagnosis_codes", "4280"): [1, 2, 3, 4], ("medications", "insulin"): [5]}


def test_category_baseline_weights_are_the_training_frequencies(
    serving_model: ServingModel,
) -> None:
    encoder: FeatureEncoder = serving_model.encoder
    vocab = encoder.category_vocabs["sex"]
    baseline: Mapping[str, Any] = {
        "features": {
            "sex": {
                "buckets": ["F", "M", "unknown", "__other__", "__null__"],
                "counts": [6, 2, 0, 1, 1],
            }
        }
    }
    weights = _category_weights(encoder, "sex", baseline).tolist()
    expected = [0.0] * len(vocab)
    expected[vocab.index("F")] = 0.6
    expected[vocab.index("M")] = 0.2
    expected[0] = 0.2  # other and null count as unknown
    assert weights == pytest.approx(expected)
    uniform = _category_weights(encoder, "sex", None).tolist()
    assert uniform == pytest.approx([0.0] + [1 / (len(vocab) - 1)] * (len(vocab) - 1))


def test_an_explainer_without_code_titles_names_the_bare_code(serving_model: ServingModel) -> None:
    explainer = OcclusionExplainer(serving_model.model, serving_model.encoder, None, {})
    bare = ServingModel(**{**serving_model.__dict__, "explainer": explainer})
    record = {**records(1)[0], "diagnosis_codes": ["4280"]}
    assert "diagnosis 4280" in all_contributions(bare, record)
    assert load_titles()["diagnosis_codes"]["4280"] == "Congestive heart failure, unspecified"


@pytest.mark.parametrize(("value", "text"), [(3, "3"), (4.0, "4"), (4.5, "4.5"), (2.3333, "2.33")])
def test_values_are_written_as_a_clinician_would(value: float, text: str) -> None:
    assert format_value(value) == text
