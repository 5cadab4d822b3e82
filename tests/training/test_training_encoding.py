"""The feature encoder: fitted on train only, UNK/imputation for the unknown, exact round trip."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from contracts.encounter import FieldKind, model_input_fields
from contracts.model_artifact import ENCODER_FILE
from inference import encoding
from inference.encoding import (
    CATEGORY_UNK_ID,
    CLS_ID,
    UNK_ID,
    EncoderConfig,
    FeatureEncoder,
    UnscorableRecordError,
    code_group,
    labels,
    legacy_code_group,
)
from training.synthetic import synthetic_records

NUMERIC = [spec.name for spec in model_input_fields(FieldKind.NUMERIC)]
CATEGORICAL = [spec.name for spec in model_input_fields(FieldKind.CATEGORICAL)]


def _record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "age_years": 70,
        "sex": "F",
        "admission_type": "emergency",
        "admission_source": "emergency_department",
        "discharge_disposition": "home",
        "admitting_service": "cardiology",
        "length_of_stay_days": 3.0,
        "prior_admissions_12m": 1,
        "prior_ed_visits_12m": 0,
        "prior_outpatient_visits_12m": 2,
        "days_since_last_discharge": 40.0,
        "num_diagnoses": 2,
        "num_procedures": 0,
        "num_medications": 1,
        "num_lab_tests": 10,
        "num_abnormal_labs": 1,
        "hba1c_result": "normal",
        "max_glucose_result": "not_measured",
        "charlson_index": 2,
        "diagnosis_codes": ["4280", "25000"],
        "procedure_codes": [],
        "medications": ["insulin"],
        "abnormal_labs": ["glucose"],
        "note_text": None,
        "readmitted_30d": 0,
    }
    base.update(overrides)
    return base


def _train_records() -> list[dict[str, Any]]:
    ages = [50, 60, 70, 80]
    return [
        _record(age_years=ages[i % 4], admitting_service="cardiology" if i % 2 else "surgery")
        for i in range(8)
    ]


@pytest.fixture(scope="module")
def encoder() -> FeatureEncoder:
    return FeatureEncoder.fit(
        _train_records(), EncoderConfig(code_min_frequency=2, category_min_frequency=2)
    )


def test_numeric_statistics_come_from_the_training_records_only(encoder: FeatureEncoder) -> None:
    stats = encoder.numeric_stats["age_years"]
    assert stats["mean"] == pytest.approx(65.0)
    assert stats["median"] == pytest.approx(65.0)
    assert stats["std"] == pytest.approx(math.sqrt(125.0))
    log_stats = encoder.numeric_stats["length_of_stay_days"]  # constant column, log1p'd
    assert log_stats["mean"] == pytest.approx(math.log1p(3.0))
    assert log_stats["std"] == 1.0


def test_code_vocabulary_keeps_tagged_codes_and_clinical_groups_seen_often_enough(
    encoder: FeatureEncoder,
) -> None:
    """Untagged codes are read as ICD-9-CM; the group is the CCSR category both eras share."""
    assert encoder.code_vocab[:3] == ["[PAD]", "[UNK]", "[CLS]"]
    assert set(encoder.code_vocab[3:]) == {
        "dx:icd9cm:4280", "dxg:CCSR:CIR019", "dx:icd9cm:25000", "dxg:CCSR:END002",
        "rx:insulin", "lab:glucose",
    }  # fmt: skip
    assert code_group("diagnosis_codes", "icd10cm:I50.9") == "CCSR:CIR019"
    assert code_group("procedure_codes", "3995") == "ICD9PROC:39"
    assert code_group("medications", "insulin") is None


def test_the_1x_groups_stay_as_they_were() -> None:
    assert legacy_code_group("diagnosis_codes", "E8889") == "E888"
    assert legacy_code_group("diagnosis_codes", "V5861") == "V58"
    assert legacy_code_group("procedure_codes", "3995") == "39"
    assert legacy_code_group("diagnosis_codes", "486") is None


def test_encode_gives_exact_arrays_for_a_known_record(encoder: FeatureEncoder) -> None:
    batch = encoder.encode([_record(age_years=75)])
    vocab = encoder.code_index
    assert batch.code_ids[0].tolist() == [
        CLS_ID, vocab["dx:icd9cm:4280"], vocab["dxg:CCSR:CIR019"], vocab["dx:icd9cm:25000"],
        vocab["dxg:CCSR:END002"],
        vocab["rx:insulin"], vocab["lab:glucose"],
    ]  # fmt: skip
    assert batch.code_types[0].tolist() == [0, 1, 1, 1, 1, 3, 4]
    assert batch.code_mask[0].tolist() == [1] * 7
    age = NUMERIC.index("age_years")
    assert batch.numeric[0, age] == pytest.approx(10.0 / math.sqrt(125.0))
    assert batch.numeric[0, len(NUMERIC) + age] == 0.0
    sex = CATEGORICAL.index("sex")
    assert batch.categorical[0, sex] == encoder.category_vocabs["sex"].index("F")


def test_unknown_codes_and_categories_map_to_unk(encoder: FeatureEncoder) -> None:
    record = _record(diagnosis_codes=["99999"], admitting_service="astrology", sex="X")
    batch = encoder.encode([record])
    assert batch.code_ids[0, 1] == UNK_ID  # the unseen full code
    assert batch.code_ids[0, 2] == UNK_ID  # and its unseen group
    assert batch.categorical[0, CATEGORICAL.index("admitting_service")] == CATEGORY_UNK_ID
    assert batch.categorical[0, CATEGORICAL.index("sex")] == CATEGORY_UNK_ID


def test_missing_fields_are_imputed_with_an_indicator(encoder: FeatureEncoder) -> None:
    record = _record()
    for name in ("age_years", "sex", "diagnosis_codes", "medications", "abnormal_labs"):
        del record[name]
    record["days_since_last_discharge"] = None
    record["num_lab_tests"] = float("nan")
    batch = encoder.encode([record])
    for name in ("age_years", "days_since_last_discharge", "num_lab_tests"):
        j = NUMERIC.index(name)
        stats = encoder.numeric_stats[name]
        assert batch.numeric[0, j] == pytest.approx(
            (stats["median"] - stats["mean"]) / stats["std"]
        )
        assert batch.numeric[0, len(NUMERIC) + j] == 1.0
    assert batch.categorical[0, CATEGORICAL.index("sex")] == CATEGORY_UNK_ID
    assert batch.code_ids[0].tolist() == [CLS_ID]


def test_values_outside_the_contract_range_are_clipped(encoder: FeatureEncoder) -> None:
    high = encoder.encode([_record(age_years=500)])
    capped = encoder.encode([_record(age_years=130)])
    assert (
        high.numeric[0, NUMERIC.index("age_years")] == capped.numeric[0, NUMERIC.index("age_years")]
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("age_years", "seventy"), ("sex", 1), ("diagnosis_codes", "4280"), ("medications", [3])],
)
def test_unreadable_values_name_the_field_but_not_the_value(
    encoder: FeatureEncoder, name: str, value: Any
) -> None:
    with pytest.raises(UnscorableRecordError) as caught:
        encoder.encode([_record(**{name: value})])
    assert caught.value.field == name
    assert name in str(caught.value)
    assert str(value) not in str(caught.value).replace(name, "")
    assert isinstance(caught.value, ValueError)


def test_labels_must_be_binary() -> None:
    assert labels([{"readmitted_30d": 1}, {"readmitted_30d": 0}]).tolist() == [1.0, 0.0]
    with pytest.raises(UnscorableRecordError, match="readmitted_30d"):
        labels([{"readmitted_30d": 2}])


def test_save_load_round_trip_encodes_identically(tmp_path: Any) -> None:
    records, _ = synthetic_records(300, seed=5, with_notes=True)
    fitted = FeatureEncoder.fit(
        records[:200], EncoderConfig(code_min_frequency=2, note_vocab_size=200)
    )
    assert fitted.notes_enabled
    fitted.save(tmp_path)
    loaded = FeatureEncoder.load(tmp_path)
    before, after = fitted.encode(records[200:]), loaded.encode(records[200:])
    assert loaded.to_dict() == fitted.to_dict()
    for name, array in before.arrays().items():
        np.testing.assert_array_equal(array, after.arrays()[name], err_msg=name)
    assert before.note_ids is not None
    assert before.note_ids.shape[0] == 100


def test_long_notes_are_tokenized_from_a_prefix_with_the_whole_notes_tokens() -> None:
    """Notes past the prefix length give exactly what tokenizing them whole gives, whatever
    falls at the cut: long words, runs of spaces, newlines, tabs, accents, no whitespace."""
    records, _ = synthetic_records(200, seed=5, with_notes=True)
    fitted = FeatureEncoder.fit(records, EncoderConfig(note_vocab_size=200, note_max_length=32))
    words = " ".join(r["note_text"] for r in records[:20]).split()
    rng = np.random.default_rng(11)
    separators = [" ", " ", "  ", "\n", "\t", ", ", ". ", "\u00a0", " é "]
    notes = []
    for _ in range(120):
        count = int(rng.integers(1, 400))
        pieces = [str(rng.choice(words)) + str(rng.choice(separators)) for _ in range(count)]
        note = "".join(pieces)
        if rng.random() < 0.3:  # glue words together: tokens that straddle the cut
            note = note.replace(" ", "", int(rng.integers(1, 200)))
        notes.append(note)
    notes += ["x" * 5000, " " * 5000 + "chf", "word " * 2000]
    # The cut falls inside a word the kept tokens reach: 101-character words (one [UNK] each),
    # then a 150-character one (one [UNK] whole, many pieces when cut short) across the cut.
    limit = 32 * encoding.NOTE_PREFIX_CHARS_PER_TOKEN
    straddling = " ".join(["b" * 101] * ((limit - 1) // 102) + ["a" * 150] + ["c"] * 50)
    assert straddling.index("a") < limit < straddling.rindex("a")
    notes.append(straddling)
    ids, mask = fitted._encode_notes(notes)
    assert any(len(note) > limit for note in notes)
    for row, note in enumerate(notes):
        whole = fitted._notes_tokenizer.encode(note)
        width = len(whole.ids)
        assert ids[row, :width].tolist() == whole.ids, row
        assert mask[row, :width].tolist() == whole.attention_mask, row
        assert not mask[row, width:].any()


def test_notes_stay_off_when_the_training_split_has_none() -> None:
    records, _ = synthetic_records(50, seed=1, with_notes=False)
    fitted = FeatureEncoder.fit(records)
    assert not fitted.notes_enabled
    assert fitted.encode(records[:3]).note_ids is None


def test_an_encoder_of_an_earlier_minor_schema_ignores_fields_added_since(
    encoder: FeatureEncoder, tmp_path: Any
) -> None:
    """A 1.0.0 artifact has no statistics for the 1.1.0 history fields: it keeps its inputs."""
    added = ("prior_encounters_on_record", "prior_readmissions_30d_on_record")
    saved = encoder.to_dict()
    saved["schema_version"] = "1.0.0"
    saved["numeric_stats"] = {
        name: stats for name, stats in saved["numeric_stats"].items() if name not in added
    }
    (tmp_path / ENCODER_FILE).write_text(json.dumps(saved))
    old = FeatureEncoder.load(tmp_path)
    kept = [name for name in NUMERIC if name not in added]
    assert list(old.numeric_fields) == kept
    assert old.numeric_width == 2 * len(kept)
    record = _record(prior_encounters_on_record=4, prior_readmissions_30d_on_record=2)
    now = encoder.encode([record]).numeric[0]
    before = old.encode([record]).numeric[0]
    columns = [NUMERIC.index(name) for name in kept]
    np.testing.assert_array_equal(before[: len(kept)], now[columns])
    assert not any(name in old.feature_names() for name in added)
