"""Bad-input battery through the whole job, idempotency, and the atomic publish.

The input holds malformed rows (each quarantined with its reason) and exact copies of valid
rows (each dropped and counted, the admission kept).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from contracts.deidentify import keyed_hash
from contracts.etl_manifest import MANIFEST_FILE
from glue_jobs import publish
from glue_jobs.ehr_features import run_job
from tests.glue_jobs import mimic_rows as rows
from tests.glue_jobs.conftest import TEST_KEY
from tests.glue_jobs.output_checks import leaked_identifiers, manifest, read_dataset

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _write_csv(path: Path, columns: tuple[str, ...], data: list) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in row] for row in data])


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad_mimic")
    _write_csv(
        folder / "ADMISSIONS.csv",
        rows.ADMISSION_COLUMNS,
        rows.ADMISSIONS + rows.BAD_ADMISSIONS + rows.COPIED_ADMISSIONS,
    )
    _write_csv(
        folder / "PATIENTS.csv",
        rows.PATIENT_COLUMNS,
        rows.PATIENTS + rows.BAD_PATIENTS + rows.COPIED_PATIENTS,
    )
    return folder


@pytest.fixture(scope="module")
def two_runs(
    spark: SparkSession, bad_input: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    output = tmp_path_factory.mktemp("bad_out") / "out"
    run_job(spark, "mimic3", str(bad_input), str(output), TEST_KEY)
    first = {name: read_dataset(output / name) for name in ("features", "protected", "quarantine")}
    first_manifest = manifest(output)
    run_job(spark, "mimic3", str(bad_input), str(output), TEST_KEY)
    second = {name: read_dataset(output / name) for name in ("features", "protected", "quarantine")}
    second_manifest = manifest(output)
    for volatile in ("run_started_at", "run_seconds"):
        first_manifest.pop(volatile)
        second_manifest.pop(volatile)
    assert first == second
    assert first_manifest == second_manifest
    return output


def test_every_malformed_row_is_quarantined_with_its_reason(two_runs: Path) -> None:
    quarantine = read_dataset(two_runs / "quarantine")
    by_key: dict[str | None, list[str]] = {}
    for row in quarantine:
        assert row["table"] == "ADMISSIONS"
        by_key.setdefault(row["encounter_key"], []).append(row["reason"])
    for hadm_id, reason in rows.BAD_REASONS.items():
        if hadm_id.isdigit():
            assert reason in by_key[keyed_hash(TEST_KEY, "encounter", hadm_id)], hadm_id
    assert sorted(r["reason"] for r in quarantine) == sorted(
        rows.BAD_REASONS[a[1]] for a in rows.BAD_ADMISSIONS
    )


def test_manifest_reconciles_in_out_excluded_quarantined_duplicates(two_runs: Path) -> None:
    result = manifest(two_runs)
    assert result["rows_in"] == (
        len(rows.ADMISSIONS) + len(rows.BAD_ADMISSIONS) + len(rows.COPIED_ADMISSIONS)
    )
    assert result["rows_out"] == 4
    assert result["duplicates_dropped"] == len(rows.COPIED_ADMISSIONS)
    assert result["excluded_by_reason"] == {"in_hospital_death": 2, "newborn": 1}
    assert result["quarantined_by_reason"] == {
        "conflicting_duplicate": 2,
        "conflicting_patient": 1,
        "discharge_before_admission": 1,
        "missing_key": 2,
        "out_of_contract": 2,
        "unknown_patient": 1,
        "unparseable_date": 4,
    }
    assert result["rows_in"] == (
        result["rows_out"]
        + result["rows_excluded"]
        + result["rows_quarantined"]
        + result["duplicates_dropped"]
    )
    assert result["reconciled"] is True
    # Patients 1, 2, 3, 5 and 6 are used once; 1's copy is dropped; 4's two rows disagree.
    assert result["linked_tables"]["PATIENTS"] == {
        "rows_in": len(rows.PATIENTS) + len(rows.BAD_PATIENTS) + len(rows.COPIED_PATIENTS),
        "rows_used": 5,
        "duplicates_dropped": 1,
        "rows_unused_by_reason": {"conflicting_duplicate": 2},
    }
    assert result["unmapped_values"]["admission_source"] == 1
    assert "LABEVENTS" in result["tables_missing"]
    assert len(read_dataset(two_runs / "features")) == 4


def test_no_identifier_in_quarantine_or_features(two_runs: Path) -> None:
    # Admission ids only: the one-digit subject ids here are indistinguishable from counts
    # (the real-data tests check subject ids).
    identifiers = {a[1] for a in rows.ADMISSIONS + rows.BAD_ADMISSIONS}
    assert leaked_identifiers(two_runs, identifiers) == set()


def test_failed_publish_leaves_previous_output_untouched(
    spark: SparkSession, two_runs: Path, bad_input: Path
) -> None:
    before = read_dataset(two_runs / "features")

    def refuse(_: int) -> dict:
        raise RuntimeError("simulated failure before publishing")

    frames = spark.read.parquet(str(two_runs / "features"))
    with pytest.raises(RuntimeError, match="simulated"):
        publish.publish(
            spark,
            str(two_runs),
            frames,
            frames.select("encounter_key", "split"),
            spark.read.parquet(str(two_runs / "quarantine")),
            refuse,
        )
    assert read_dataset(two_runs / "features") == before
    assert (two_runs / MANIFEST_FILE).exists()
    assert not [p for p in two_runs.iterdir() if p.name.startswith("_staging")]


def test_unknown_source_is_refused_naming_the_field(
    spark: SparkSession, bad_input: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"^source:"):
        run_job(spark, "hl7", str(bad_input), str(tmp_path / "o"), TEST_KEY)
