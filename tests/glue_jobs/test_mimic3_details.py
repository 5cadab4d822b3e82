"""Per-admission aggregates of the MIMIC child tables and the Charlson index, exact rows."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import CodeSystem
from glue_jobs.accounting import COUNT_COLUMNS
from glue_jobs.charlson import charlson_index
from glue_jobs.mimic3_details import (
    code_sequences,
    coded_icd9,
    lab_features,
    medication_features,
    note_features,
    service_features,
    typed_labs,
)
from tests.glue_jobs.conftest import first_row, text_frame

pytestmark = pytest.mark.spark


def _as_dict(frame, key: str = "hadm_id") -> dict:  # type: ignore[no-untyped-def]
    """Features of each admission (row counts and the rows without an admission id apart)."""
    columns = [c for c in frame.columns if c != key and c not in COUNT_COLUMNS]
    return {r[key]: tuple(r[c] for c in columns) for r in frame.collect() if r[key] is not None}


DX = CodeSystem.ICD9CM


def test_diagnoses_in_seq_order_without_dots_tagged(spark: SparkSession) -> None:
    diagnoses = text_frame(
        spark,
        ("hadm_id", "seq_num", "icd9_code"),
        [
            ("10", "2", "428.0"),
            ("10", "1", " 41071"),
            ("10", "3", None),
            ("11", "1", "v4581"),
            (None, "1", "4019"),
        ],
    )
    actual = _as_dict(code_sequences(coded_icd9(diagnoses, DX), "diagnosis_codes", "num_diagnoses"))
    assert actual == {"10": (["icd9cm:41071", "icd9cm:4280"], 2), "11": (["icd9cm:V4581"], 1)}
    procedures = code_sequences(coded_icd9(diagnoses, CodeSystem.ICD9PCS), "codes", "n")
    assert _as_dict(procedures)["11"] == (["icd9pcs:V4581"], 1)


#: Codes of one admission -> its Charlson index (Quan 2005, Charlson weights, hierarchy).
CHARLSON_CASES: dict[str, tuple[list[str], int]] = {
    "mi_and_chf": (["41071", "4280"], 2),
    "diabetes_hierarchy": (["25000", "25040"], 2),
    "truncated_diabetes": (["250"], 1),
    "liver_hierarchy": (["5715", "5722"], 3),
    "cancer_hierarchy": (["1625", "1977"], 6),
    "hiv_and_pvd": (["042", "V434", "4019"], 7),
    "no_comorbidity": (["4019", "V3000"], 0),
}


def test_charlson_index(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [(case, codes) for case, (codes, _) in CHARLSON_CASES.items()],
        "case string, codes array<string>",
    )
    scores = {
        r["case"]: r["score"]
        for r in frame.select("case", charlson_index(F.col("codes")).alias("score")).collect()
    }
    assert scores == {case: expected for case, (_, expected) in CHARLSON_CASES.items()}


#: The same patients coded in ICD-10-CM (each code a forward-GEM target of the ICD-9 code of
#: the same case above) -> the same index (Quan 2005 publishes both code sets).
CHARLSON_ICD10_CASES: dict[str, list[str]] = {
    "mi_and_chf": ["icd10cm:I214", "icd10cm:I509"],
    "diabetes_hierarchy": ["icd10cm:E119", "icd10cm:E1129"],
    "truncated_diabetes": ["icd10cm:E119"],
    "liver_hierarchy": ["icd10cm:K7469", "icd10cm:K7291"],
    "cancer_hierarchy": ["icd10cm:C3430", "icd10cm:C787"],
    "hiv_and_pvd": ["icd10cm:B20", "icd10cm:Z95828", "icd10cm:I10"],
    "no_comorbidity": ["icd10cm:I10", "icd10cm:Z3800"],
}


def test_charlson_index_equal_in_both_eras(spark: SparkSession) -> None:
    """Tagged ICD-9 and ICD-10 codes of the same conditions score the same; an untagged code
    is ICD-9; ``icd9cm:4280`` and an ICD-10 code that merely looks like an ICD-9 prefix, or a
    procedure code, never cross systems."""
    rows = [
        *[(f"{c}/9", [f"icd9cm:{x}" for x in codes]) for c, (codes, _) in CHARLSON_CASES.items()],
        *[(f"{c}/10", codes) for c, codes in CHARLSON_ICD10_CASES.items()],
        ("untagged", ["4280"]),
        ("other_systems", ["icd9pcs:4280", "icd10pcs:I509XXX", "icd10cm:428", "icd9cm:I50"]),
        ("mixed_eras", ["icd9cm:4280", "icd10cm:N186"]),
    ]
    frame = spark.createDataFrame(rows, "case string, codes array<string>")
    scores = {
        r["case"]: r["score"]
        for r in frame.select("case", charlson_index(F.col("codes")).alias("score")).collect()
    }
    for case, (_, expected) in CHARLSON_CASES.items():
        assert (scores[f"{case}/9"], scores[f"{case}/10"]) == (expected, expected), case
    assert (scores["untagged"], scores["other_systems"], scores["mixed_eras"]) == (1, 0, 3)


def test_medications_distinct_lower_case_by_first_start(spark: SparkSession) -> None:
    prescriptions = text_frame(
        spark,
        ("hadm_id", "startdate", "drug"),
        [
            ("10", "2170-01-03 00:00:00", "Heparin"),
            ("10", "2170-01-01 00:00:00", "Insulin"),
            ("10", "2170-01-02 00:00:00", "HEPARIN"),
            ("10", None, "Aspirin"),
            ("10", "2170-01-01 00:00:00", None),
            ("11", "2170-01-01 00:00:00", "Senna"),
        ],
    )
    # (names, their number, tagged codes: none, as this extract has no ndc column)
    assert _as_dict(medication_features(prescriptions)) == {
        "10": (["insulin", "heparin", "aspirin"], 3, []),
        "11": (["senna"], 1, []),
    }


def test_lab_counts_bands_and_abnormal_names(spark: SparkSession) -> None:
    labs = typed_labs(
        text_frame(
            spark,
            ("hadm_id", "itemid", "charttime", "valuenum", "flag"),
            [
                ("10", "50852", "2170-01-01 10:00:00", "7.5", "abnormal"),
                ("10", "50852", "2170-01-02 10:00:00", "6.1", None),
                ("10", "50931", "2170-01-01 09:00:00", "310", "abnormal"),
                ("10", "50971", "2170-01-01 08:00:00", "6.0", "abnormal"),
                ("10", "50971", "2170-01-03 08:00:00", "6.2", "abnormal"),
                ("10", "51222", "2170-01-01 08:00:00", "13", "delta"),
                ("11", "50931", "2170-01-01 08:00:00", "150", None),
                (None, "50931", "2170-01-01 08:00:00", "400", "abnormal"),
            ],
        )
    )
    items = text_frame(
        spark,
        ("itemid", "label"),
        [("50852", "% Hemoglobin A1c"), ("50931", "Glucose"), ("50971", "Potassium")],
    )
    assert _as_dict(lab_features(labs, items)) == {
        "10": (6, 4, "above_7", "above_300", ["potassium", "glucose", "% hemoglobin a1c"]),
        "11": (1, 0, "not_measured", "normal", []),
    }


def test_first_service_and_latest_valid_discharge_summary(spark: SparkSession) -> None:
    services = text_frame(
        spark,
        ("hadm_id", "transfertime", "curr_service"),
        [("10", "2170-01-02 00:00:00", "SURG"), ("10", "2170-01-01 00:00:00", "MED")],
    )
    assert _as_dict(service_features(services)) == {"10": ("med",)}
    notes = text_frame(
        spark,
        ("row_id", "hadm_id", "chartdate", "charttime", "category", "iserror", "text"),
        [
            ("1", "10", "2170-01-05", None, "Discharge summary", None, "first"),
            ("2", "10", "2170-01-09", None, "Discharge summary", None, "addendum"),
            ("3", "10", "2170-01-10", None, "Discharge summary", "1", "in error"),
            ("4", "10", "2170-01-11", None, "Nursing", None, "not a summary"),
            ("5", "11", "2170-01-11", None, "Radiology", None, "no summary"),
        ],
    )
    # 11 has notes but no discharge summary: no text (as for an admission without notes).
    assert _as_dict(note_features(notes)) == {"10": ("addendum",), "11": (None,)}


def test_codes_keep_order_when_seq_num_ties(spark: SparkSession) -> None:
    diagnoses = text_frame(
        spark, ("hadm_id", "seq_num", "icd9_code"), [("10", "1", "B"), ("10", "1", "A")]
    )
    coded = code_sequences(coded_icd9(diagnoses, DX), "codes", "n")
    assert first_row(coded.select(F.col("codes")))["codes"] == ["icd9cm:A", "icd9cm:B"]


def test_a_child_row_written_twice_counts_once(spark: SparkSession) -> None:
    """Same row_id and text (spaces around values aside): one event. Another row_id with the
    same values: a second event (two equal lab results), counted as such."""
    diagnoses = text_frame(
        spark,
        ("row_id", "hadm_id", "seq_num", "icd9_code"),
        [
            ("1", "10", "1", "4280"),
            ("1", "10", "1", "4280"),
            (" 1", "10 ", "1 ", " 4280"),
            ("2", "10", "2", "41071"),
        ],
    )
    assert _as_dict(code_sequences(coded_icd9(diagnoses, DX), "codes", "n")) == {
        "10": (["icd9cm:4280", "icd9cm:41071"], 2)
    }
    labs = typed_labs(
        text_frame(
            spark,
            ("row_id", "hadm_id", "itemid", "charttime", "valuenum", "flag"),
            [
                ("1", "10", "50931", "2170-01-01 10:00:00", "310", "abnormal"),
                ("1", "10", "50931", "2170-01-01 10:00:00", "310", "abnormal"),
                ("2", "10", "50931", "2170-01-01 10:00:00", "310", "abnormal"),
            ],
        )
    )
    items = text_frame(spark, ("itemid", "label"), [("50931", "Glucose")] * 2)
    assert _as_dict(lab_features(labs, items)) == {
        "10": (2, 2, "not_measured", "above_300", ["glucose"])
    }


def test_a_lab_item_whose_rows_disagree_has_no_label(spark: SparkSession) -> None:
    """Two labels for one itemid: neither is right, so neither names an abnormal result."""
    labs = typed_labs(
        text_frame(
            spark,
            ("hadm_id", "itemid", "charttime", "valuenum", "flag"),
            [
                ("10", "50931", "2170-01-01 10:00:00", "310", "abnormal"),
                ("10", "50971", "2170-01-01 10:00:00", "6.0", "abnormal"),
            ],
        )
    )
    items = text_frame(
        spark,
        ("itemid", "label"),
        [("50931", "Glucose"), ("50931", "Potassium"), ("50971", "Potassium")],
    )
    assert _as_dict(lab_features(labs, items)) == {
        "10": (2, 2, "not_measured", "above_300", ["potassium"])
    }
