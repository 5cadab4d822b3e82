"""A small clean MIMIC-III extract (every table the job reads) and helpers to corrupt it.

Rows are dicts (absent keys are empty fields); ``mimic_tables`` turns them into the text
frames the readers hand to ``glue_jobs.mimic3.build``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from glue_jobs import mimic3
from glue_jobs.ehr_features import RunCounts, count_rows
from glue_jobs.readers import MIMIC_COLUMNS, MIMIC_OPTIONAL_TABLES, MIMIC_REQUIRED_TABLES
from tests.glue_jobs import mimic_rows
from tests.glue_jobs.conftest import TEST_KEY, text_frame

Row = dict[str, str | None]
TABLES = (*MIMIC_REQUIRED_TABLES, *MIMIC_OPTIONAL_TABLES)
CHILD_TABLES = (
    "DIAGNOSES_ICD",
    "PROCEDURES_ICD",
    "PRESCRIPTIONS",
    "LABEVENTS",
    "SERVICES",
    "NOTEEVENTS",
)


def columns(table: str) -> tuple[str, ...]:
    """The columns the job reads from ``table``, and row_id."""
    names = MIMIC_COLUMNS[table]
    return names if "row_id" in names else (*names, "row_id")


def _dicts(names: Sequence[str], rows: Sequence[Sequence[str | None]]) -> list[Row]:
    return [dict(zip(names, row, strict=True)) for row in rows]


def clean_extract() -> dict[str, list[Row]]:
    """The clean extract: mimic_rows' admissions and patients, and child rows for them."""
    return {
        "ADMISSIONS": _dicts(mimic_rows.ADMISSION_COLUMNS, mimic_rows.ADMISSIONS),
        "PATIENTS": _dicts(mimic_rows.PATIENT_COLUMNS, mimic_rows.PATIENTS),
        "DIAGNOSES_ICD": _dicts(
            ("row_id", "hadm_id", "seq_num", "icd9_code"),
            [
                ("1", "101", "1", "4280"),
                ("2", "101", "2", "410.71"),
                ("3", "102", "1", "25000"),
                ("4", "201", "1", "1977"),
                ("5", "202", "1", "4019"),
                ("6", "103", "1", "V4581"),
            ],
        ),
        "PROCEDURES_ICD": _dicts(
            ("row_id", "hadm_id", "seq_num", "icd9_code"),
            [("1", "101", "1", "3722"), ("2", "201", "1", "9604")],
        ),
        "PRESCRIPTIONS": _dicts(
            ("row_id", "hadm_id", "startdate", "drug"),
            [
                ("1", "101", "2170-01-10 00:00:00", "Insulin"),
                ("2", "101", "2170-01-11 00:00:00", "Heparin"),
                ("3", "201", "2150-03-01 00:00:00", "Aspirin"),
            ],
        ),
        "LABEVENTS": _dicts(
            ("row_id", "hadm_id", "itemid", "charttime", "valuenum", "flag"),
            [
                ("1", "101", "50931", "2170-01-10 10:00:00", "310", "abnormal"),
                ("2", "101", "50852", "2170-01-11 10:00:00", "7.5", "abnormal"),
                ("3", "102", "50931", "2170-02-01 10:00:00", "120", None),
                ("4", None, "50931", "2170-03-01 10:00:00", "99", None),
            ],
        ),
        "D_LABITEMS": _dicts(
            ("row_id", "itemid", "label"),
            [("1", "50931", "Glucose"), ("2", "50852", "% Hemoglobin A1c")],
        ),
        "SERVICES": _dicts(
            ("row_id", "hadm_id", "transfertime", "curr_service"),
            [
                ("1", "101", "2170-01-10 08:00:00", "MED"),
                ("2", "102", "2170-02-01 08:00:00", "SURG"),
                ("3", "201", "2150-03-01 00:00:00", "MED"),
            ],
        ),
        "NOTEEVENTS": _dicts(
            ("row_id", "hadm_id", "chartdate", "charttime", "category", "iserror", "text"),
            [
                ("1", "101", "2170-01-15", None, "Discharge summary", None, "Home with services."),
                ("2", "102", "2170-02-02", None, "Nursing", None, "Stable overnight."),
            ],
        ),
    }


def padded(row: Mapping[str, str | None], untrimmed: Sequence[str] = ("text",)) -> Row:
    """The row with spaces around its values (not the note text, which the job reads as is)."""
    return {
        name: value if value is None or name in untrimmed else f" {value}  "
        for name, value in row.items()
    }


def mimic_tables(spark: SparkSession, extract: Mapping[str, list[Row]]) -> dict[str, DataFrame]:
    """Text frames of every table the job reads (tables not in ``extract`` are empty)."""
    frames: dict[str, DataFrame] = {}
    for table in TABLES:
        names = columns(table)
        rows = [tuple(row.get(name) for name in names) for row in extract.get(table, [])]
        frames[table] = text_frame(spark, names, rows)
    return frames


def run_counts(spark: SparkSession, extract: Mapping[str, list[Row]]) -> tuple[Any, RunCounts]:
    """Build the source from the extract: (its kept feature rows by encounter_key, counts)."""
    return build_and_count(mimic_tables(spark, extract))


def build_and_count(tables: dict[str, DataFrame]) -> tuple[Any, RunCounts]:
    """What ``run_job`` computes before writing: (kept feature rows by encounter_key, counts)."""
    frames = mimic3.build(tables, TEST_KEY, "mimic3", [])
    try:
        counts = count_rows(frames)
        features = {row["encounter_key"]: row.asDict() for row in frames.features.collect()}
    finally:
        for frame in frames.persisted:
            frame.unpersist()
    return features, counts
