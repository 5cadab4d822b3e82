"""``--source mimic4`` bad input: each bad row gets its reason, the clean cohort does not move,
and in = out + excluded + quarantined + copies holds for every table.

A clean generated MIMIC-IV extract written as CSV text (as PhysioNet ships it), then a copy
with bad rows appended: copies, missing or non-integer ids, unparseable times and anchors,
unknown patients, disagreeing admissions, orphans, codes of an unknown ``icd_version``.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from pyspark.sql import SparkSession

from contracts import etl_manifest as keys
from glue_jobs import mimic4, readers
from glue_jobs.ehr_features import RunCounts, count_rows, row_accounting
from glue_jobs.mappings import MIMIC4_DIAGNOSIS_SYSTEMS, MIMIC4_PROCEDURE_SYSTEMS
from glue_jobs.synthetic_ehr import MIMIC4_TABLES, generate
from tests.glue_jobs.conftest import TEST_KEY

pytestmark = pytest.mark.spark

Row = dict[str, Any]


def build_and_count(spark: SparkSession, folder: Path) -> tuple[dict[str, Any], RunCounts]:
    """What ``run_job`` computes before writing: (kept feature rows by key, counts)."""
    tables, missing = readers.read_mimic4_tables(spark, str(folder))
    frames = mimic4.build(tables, TEST_KEY, "mimic4", missing)
    try:
        counts = count_rows(frames)
        features = {row["encounter_key"]: row.asDict() for row in frames.features.collect()}
    finally:
        for frame in frames.persisted:
            frame.unpersist()
    return features, counts


def _as_csv(parquet_root: Path, csv_root: Path) -> None:
    for name in MIMIC4_TABLES.values():
        frame = ds.dataset(parquet_root / name, format="parquet").to_table()
        path = csv_root / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_pandas(integer_object_nulls=True).to_csv(
            path, index=False, date_format="%Y-%m-%d %H:%M:%S"
        )


def _rows(root: Path, name: str) -> list[Row]:
    with (root / f"{name}.csv").open() as handle:
        return list(csv.DictReader(handle))


def _append(root: Path, name: str, *rows: Row) -> None:
    path = root / f"{name}.csv"
    header = path.read_text().splitlines()[0].split(",")
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        for row in rows:
            writer.writerow(row)


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mimic4-bad")
    generate(80, 31, str(root / "parquet"), notes=True, layout="mimic4", icd10_from="2140-01-01")
    _as_csv(root / "parquet", root / "clean")
    _as_csv(root / "parquet", root / "bad")
    return root / "clean", root / "bad"


def _corrupt_admissions(bad: Path) -> None:
    first = _rows(bad, "hosp/admissions")[0]
    patient = _rows(bad, "hosp/patients")[0]
    _append(
        bad,
        "hosp/admissions",
        first,
        {**first, "hadm_id": "9x1"},
        {**first, "hadm_id": "9000001", "admittime": "2150-13-45 99:00:00"},
        {**first, "hadm_id": "9000002", "subject_id": "99"},
        {**first, "hadm_id": "9000003"},
        {**first, "hadm_id": "9000003", "admission_type": "URGENT"},
        {**first, "hadm_id": "9000004", "subject_id": "77"},
    )
    _append(
        bad,
        "hosp/patients",
        patient,
        {**patient, "subject_id": "77", "anchor_year": "20x5"},
        {**patient, "subject_id": "78"},
    )


def _corrupt_children(bad: Path) -> dict[str, Counter[str]]:
    diagnosis = _rows(bad, "hosp/diagnoses_icd")[0]
    note = _rows(bad, "note/discharge")[0]
    _append(
        bad,
        "hosp/diagnoses_icd",
        diagnosis,
        {**diagnosis, "seq_num": "90", "icd_version": "11"},
        {**diagnosis, "seq_num": "91", "hadm_id": "123"},
        {**diagnosis, "seq_num": "92", "icd_code": ""},
    )
    _append(bad, "note/discharge", {**note, "note_id": "n-rr", "note_type": "RR"})
    return {
        "hosp/diagnoses_icd": Counter(
            {"duplicate": 1, "unknown_code_system": 1, "orphan": 1, "no_value": 1}
        ),
        "hosp/patients": Counter({"duplicate": 1, "used": 1, "orphan": 1}),
        "note/discharge": Counter({"not_selected": 1}),
    }


def test_every_bad_row_has_its_reason_and_the_cohort_stays(
    spark: SparkSession, extracts: tuple[Path, Path]
) -> None:
    clean, bad = extracts
    clean_features, clean_counts = build_and_count(spark, clean)
    _corrupt_admissions(bad)
    added = _corrupt_children(bad)
    features, counts = build_and_count(spark, bad)

    assert features == clean_features
    assert counts.index.quarantined == {
        "missing_key": 1,
        "unparseable_date": 2,
        "unknown_patient": 1,
        "conflicting_duplicate": 2,
    }
    assert counts.index.duplicates_dropped == 1
    assert counts.index.rows_in == clean_counts.index.rows_in + 7
    for table, reasons in added.items():
        before, after = clean_counts.linked[table], counts.linked[table]
        unused = Counter(after.unused_by_reason)
        unused.subtract(before.unused_by_reason)
        assert after.rows_in == before.rows_in + sum(reasons.values()), table
        assert after.duplicates_dropped - before.duplicates_dropped == reasons["duplicate"]
        assert after.rows_used - before.rows_used == reasons["used"], table
        expected = {k: v for k, v in reasons.items() if k not in ("duplicate", "used")}
        assert +unused == Counter(expected), table
    entries = row_accounting(mimic4.TABLE_NAMES["ADMISSIONS"], counts)
    assert keys.unbalanced_tables(entries) == []


def test_icd_version_tags_each_code(spark: SparkSession) -> None:
    """Per row: version 9 -> ICD-9-CM/PCS, 10 -> ICD-10-CM/PCS, anything else unused."""
    rows = [
        ("1", "1", "428.0", "9"),
        ("1", "2", "I50.9", "10"),
        ("1", "3", "I509", " 10 "),
        ("1", "4", "4280", "11"),
        ("1", "5", "4280", None),
    ]
    frame = spark.createDataFrame(
        [(*row, None) for row in rows],
        "hadm_id string, seq_num string, icd_code string, icd_version string, row_id string",
    )
    diagnoses = [r.asDict() for r in mimic4.coded(frame, MIMIC4_DIAGNOSIS_SYSTEMS).collect()]
    assert [r["code"] for r in diagnoses] == [
        "icd9cm:4280",
        "icd10cm:I509",
        "icd10cm:I509",
        None,
        None,
    ]
    assert [r["_unknown_system"] for r in diagnoses] == [False, False, False, True, True]
    procedures = mimic4.coded(frame, MIMIC4_PROCEDURE_SYSTEMS).collect()
    assert [r["code"] for r in procedures][:2] == ["icd9pcs:4280", "icd10pcs:I509"]
