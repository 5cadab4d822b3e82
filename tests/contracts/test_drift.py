"""The drift contract: baseline buckets and PSI, checked against hand-computed values."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from contracts.drift import (
    EMPTY_BUCKET,
    NULL_BUCKET,
    OTHER_BUCKET,
    PREDICTION_SCORE,
    RECORD_COUNT,
    SCORE_COUNT,
    BaselineError,
    DriftAccumulator,
    DriftInputError,
    baseline_s3_key,
    build_baseline,
    code_group,
    drift_fields,
    population_stability_index,
    quantile_cut_points,
)

# 0.25 * ln(0.25 / 0.5) * -1 + 0.25 * ln(0.75 / 0.5) = 0.25 * (ln 2 + ln 1.5) = 0.25 * ln 3
PSI_HALF_HALF_VS_QUARTER = 0.25 * math.log(3.0)


def record(**overrides: Any) -> dict[str, Any]:
    """A complete, valid encounter with neutral values; ``overrides`` replaces some."""
    base: dict[str, Any] = {
        "encounter_key": "e" * 64,
        "age_years": 50,
        "sex": "F",
        "admission_type": "emergency",
        "admission_source": "emergency_department",
        "discharge_disposition": "home",
        "admitting_service": "medicine",
        "length_of_stay_days": 3.0,
        "prior_admissions_12m": 0,
        "prior_ed_visits_12m": 0,
        "prior_outpatient_visits_12m": 1,
        "days_since_last_discharge": None,
        "num_diagnoses": 5,
        "num_procedures": 1,
        "num_medications": 10,
        "num_lab_tests": 20,
        "num_abnormal_labs": 2,
        "hba1c_result": "not_measured",
        "max_glucose_result": "not_measured",
        "charlson_index": 1,
        "diagnosis_codes": ["4280"],
        "procedure_codes": ["3615"],
        "medications": ["insulin"],
        "abnormal_labs": ["glucose"],
        "note_text": None,
    }
    base.update(overrides)
    return base


def test_psi_of_hand_computed_shares() -> None:
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        PSI_HALF_HALF_VS_QUARTER, abs=1e-12
    )
    assert pytest.approx(0.274653072, abs=1e-9) == PSI_HALF_HALF_VS_QUARTER


def test_psi_normalises_counts_and_is_zero_for_equal_distributions() -> None:
    assert population_stability_index([50, 50], [1, 3]) == pytest.approx(
        PSI_HALF_HALF_VS_QUARTER, abs=1e-12
    )
    assert population_stability_index([3, 1, 6], [30, 10, 60]) == 0.0


def test_psi_floors_empty_buckets_at_epsilon() -> None:
    # e = [1, 0.01], a = [0.5, 0.5]: -0.5 * ln(0.5) + 0.49 * ln(50) = 0.346574 + 1.916891
    value = population_stability_index([1, 0], [1, 1], epsilon=0.01)
    assert value == pytest.approx(0.5 * math.log(2) + 0.49 * math.log(50), abs=1e-12)
    assert value == pytest.approx(2.263465, abs=1e-6)


@pytest.mark.parametrize(
    ("expected", "actual", "epsilon"),
    [
        ([1.0], [1.0, 2.0], 1e-4),
        ([], [], 1e-4),
        ([0.0, 0.0], [1.0, 1.0], 1e-4),
        ([1.0, -1.0], [1.0, 1.0], 1e-4),
        ([1.0, math.nan], [1.0, 1.0], 1e-4),
        ([1.0], [1.0], 0.0),
    ],
)
def test_psi_rejects_bad_input(expected: list[float], actual: list[float], epsilon: float) -> None:
    with pytest.raises(ValueError, match=r"bucket|distribution|epsilon|finite"):
        population_stability_index(expected, actual, epsilon)


def test_quantile_cut_points_are_nearest_rank_and_distinct() -> None:
    assert quantile_cut_points(list(range(1, 11)), 10) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    # ranks ceil(2.5) = 3, ceil(5) = 5, ceil(7.5) = 8 of 1..10
    assert quantile_cut_points(list(range(10, 0, -1)), 4) == [3, 5, 8]
    # mostly zeros: cuts 0,0,...,1,1 merge to [0, 1]; the maximum 2 is never a cut
    assert quantile_cut_points([0] * 7 + [1, 1, 2], 10) == [0, 1]
    assert quantile_cut_points([5, 5, 5], 10) == []
    assert quantile_cut_points([], 10) == []


@pytest.mark.parametrize(
    ("code", "grouping", "group"),
    [
        ("4280", "icd9_diagnosis_category", "428"),
        ("250.01", "icd9_diagnosis_category", "250"),
        ("v5861", "icd9_diagnosis_category", "V58"),
        ("E8889", "icd9_diagnosis_category", "E888"),
        ("3615", "icd9_procedure_category", "36"),
        # 1.x baselines read tagged codes: ICD-9 loses its tag, ICD-10-CM goes back by the GEMs
        ("icd9cm:428.0", "icd9_diagnosis_category", "428"),
        ("icd10cm:I50.9", "icd9_diagnosis_category", "428"),
        ("icd10pcs:02HV33Z", "icd9_procedure_category", "icd10pcs:02HV33Z"),
        # 2.0: the clinical group both eras share
        ("4280", "clinical_diagnosis_group", "CCSR:CIR019"),
        ("icd10cm:I50.9", "clinical_diagnosis_group", "CCSR:CIR019"),
        ("3615", "clinical_procedure_group", "ICD9PROC:36"),
        ("icd10pcs:02HV33Z", "clinical_procedure_group", "PCS:02"),
        ("snomed:1234", "clinical_diagnosis_group", "SNOMED:1234"),
        ("", "clinical_diagnosis_group", ""),
        (" Insulin ", "name", "insulin"),
    ],
)
def test_code_groups(code: str, grouping: str, group: str) -> None:
    assert code_group(code, grouping) == group


def test_build_baseline_buckets_every_kind_exactly() -> None:
    records = [
        record(age_years=20, sex="F", admitting_service="cardiology", diagnosis_codes=["4280"]),
        record(age_years=40, sex="M", admitting_service="cardiology", diagnosis_codes=[]),
        record(
            age_years=60, sex="M", admitting_service=None, diagnosis_codes=["4281", "4019", "V5861"]
        ),
        record(age_years=None, sex="X", admitting_service="surgery", diagnosis_codes=["4019"]),
    ]
    baseline = build_baseline(
        records, [0.05, 0.15, 0.15, 1.0], numeric_bins=2, category_top_k=1, code_group_top_k=2
    )
    assert json.loads(json.dumps(baseline)) == baseline
    assert baseline["record_count"] == 4
    features = baseline["features"]
    assert set(features) == {spec.name for spec in drift_fields()}
    assert "note_text" not in features
    # non-null ages 20, 40, 60: cut at rank ceil(3 / 2) = 2 -> 40; bins (-inf, 40], (40, inf), null
    assert features["age_years"] == {"kind": "numeric", "edges": [40.0], "counts": [2, 1, 1]}
    # closed vocabulary from the contract, "X" goes to other
    assert features["sex"] == {
        "kind": "categorical",
        "buckets": ["F", "M", "unknown", OTHER_BUCKET, NULL_BUCKET],
        "counts": [1, 2, 0, 1, 0],
    }
    # open vocabulary: top-1 learnt category, the rest other, null counted
    assert features["admitting_service"] == {
        "kind": "categorical",
        "buckets": ["cardiology", OTHER_BUCKET, NULL_BUCKET],
        "counts": [2, 1, 1],
    }
    # clinical groups per record: {heart failure CIR019}, {}, {CIR019, hypertension CIR007,
    # FAC}, {CIR007}; top-2 = CIR007 (2), CIR019 (2)
    assert features["diagnosis_codes"] == {
        "kind": "code_sequence",
        "grouping": "clinical_diagnosis_group",
        "buckets": ["CCSR:CIR007", "CCSR:CIR019", OTHER_BUCKET, EMPTY_BUCKET],
        "counts": [2, 2, 1, 1],
    }
    assert baseline[PREDICTION_SCORE]["counts"] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert baseline[PREDICTION_SCORE]["edges"][0] == 0.1


def test_build_baseline_names_the_bad_field_not_the_value() -> None:
    with pytest.raises(DriftInputError) as caught:
        build_baseline([record(age_years="73")], [0.5])
    assert "age_years" in str(caught.value)
    assert "73" not in str(caught.value)
    with pytest.raises(ValueError, match="at least one"):
        build_baseline([], [])


def test_accumulator_psi_matches_hand_computation() -> None:
    baseline = build_baseline(
        [record(age_years=age) for age in (20, 40, 60, 80)],
        [0.05, 0.05, 0.95, 0.95],
        numeric_bins=2,
    )
    accumulator = DriftAccumulator(baseline)
    for age, score in ((30, 0.01), (70, 0.02), (80, 0.99), (90, 0.98)):
        accumulator.add(record(age_years=age), score)
    # expected ages [2, 2, 0 null], actual [1, 3, 0]; scores [2, .., 2] vs [2, .., 2]
    assert accumulator.actual_counts("age_years") == [1, 3, 0]
    result = accumulator.psi()
    assert result["age_years"] == pytest.approx(PSI_HALF_HALF_VS_QUARTER, abs=1e-12)
    assert result["sex"] == 0.0
    assert result["diagnosis_codes"] == 0.0
    assert result[PREDICTION_SCORE] == 0.0
    assert result[RECORD_COUNT] == 4
    assert result[SCORE_COUNT] == 4
    assert set(accumulator.feature_names) == {spec.name for spec in drift_fields()}


def test_accumulator_counts_new_codes_and_nulls() -> None:
    baseline = build_baseline([record(), record(diagnosis_codes=["4019"])], [0.5, 0.5])
    accumulator = DriftAccumulator(baseline)
    accumulator.add(record(diagnosis_codes=["9999", "4281"], admitting_service=None))
    accumulator.add(record(diagnosis_codes=None))
    assert accumulator.actual_counts("diagnosis_codes") == [0, 1, 1, 1]  # 401, 428, other, empty
    assert accumulator.actual_counts("admitting_service") == [1, 0, 1]
    result = accumulator.psi()
    assert PREDICTION_SCORE not in result  # no scores in the window
    assert result[SCORE_COUNT] == 0


def test_accumulator_rejects_a_bad_record_without_counting_any_of_it() -> None:
    accumulator = DriftAccumulator(build_baseline([record()], [0.5]))
    with pytest.raises(DriftInputError) as caught:
        accumulator.add(record(age_years=61, diagnosis_codes=[428]), 0.5)
    assert "diagnosis_codes" in str(caught.value)
    with pytest.raises(DriftInputError, match=PREDICTION_SCORE):
        accumulator.add(record(), 1.5)
    assert accumulator.record_count == 0
    assert sum(accumulator.actual_counts("age_years")) == 0
    assert accumulator.psi() == {RECORD_COUNT: 0, SCORE_COUNT: 0}


def test_accumulator_rejects_malformed_baselines() -> None:
    good = build_baseline([record()], [0.5])
    with pytest.raises(BaselineError, match="format_version"):
        DriftAccumulator({**good, "format_version": 99})
    broken = json.loads(json.dumps(good))
    broken["features"]["sex"]["counts"] = [1]
    with pytest.raises(BaselineError, match="'sex'"):
        DriftAccumulator(broken)
    broken = json.loads(json.dumps(good))
    broken["features"]["age_years"]["edges"] = [5, 1]
    with pytest.raises(BaselineError, match="'age_years'"):
        DriftAccumulator(broken)


def test_baseline_key_is_per_endpoint() -> None:
    assert baseline_s3_key("readmission-prod") == ("baselines/readmission-prod/drift_baseline.json")
