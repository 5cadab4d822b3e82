"""``--source fhir`` bad input: every kind of bad line gets its reason, the cohort of the clean
export does not move, and in = out + excluded + quarantined + copies holds for every type.

A clean generated export, then a copy with bad lines appended to its NDJSON files: lines that
are not JSON, resources of another type, missing ids, unparseable dates, references to
missing resources, codes of an unknown system, exact copies and conflicting resources, and
encounters that are not finished inpatient stays (which must not enter any patient's history).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from contracts import etl_manifest as keys
from contracts import fhir as terms
from glue_jobs import fhir, fhir_readers
from glue_jobs.ehr_features import RunCounts, count_rows, row_accounting
from glue_jobs.synthetic_ehr import generate
from tests.glue_jobs.conftest import TEST_KEY

pytestmark = pytest.mark.spark


def build_and_count(spark: SparkSession, folder: Path) -> tuple[dict[str, Any], RunCounts]:
    """What ``run_job`` computes before writing: (kept feature rows by key, counts)."""
    resources, missing = fhir_readers.read_export(spark, str(folder))
    frames = fhir.build(resources, TEST_KEY, "fhir", missing)
    try:
        counts = count_rows(frames)
        features = {row["encounter_key"]: row.asDict() for row in frames.features.collect()}
    finally:
        for frame in frames.persisted:
            frame.unpersist()
    return features, counts


def _lines(folder: Path, resource_type: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (folder / f"{resource_type}.ndjson").read_text().splitlines()
    ]


def _append(folder: Path, resource_type: str, *lines: str | dict[str, Any]) -> None:
    with (folder / f"{resource_type}.ndjson").open("a") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


def _inpatient(encounter: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**encounter, **changes}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fhir-bad")
    clean, bad = root / "clean", root / "bad"
    generate(80, 12, str(clean), notes=True, layout="fhir")
    shutil.copytree(clean, bad)
    return clean, bad


EXPECTED_QUARANTINE = {
    "malformed_resource": 2,
    "wrong_resource_type": 1,
    "missing_key": 1,
    "unparseable_date": 2,
    "unknown_patient": 1,
    "conflicting_duplicate": 2,
}
EXPECTED_EXCLUDED_EXTRA = {"not_inpatient": 2, "not_finished": 1}


def _corrupt_encounters(bad: Path) -> None:
    encounters = _lines(bad, "Encounter")
    first = encounters[0]
    ambulatory_class = {"system": terms.SYSTEM_ACT_CODE, "code": "AMB"}
    emergency_class = {"system": terms.SYSTEM_ACT_CODE, "code": "EMER"}
    _append(
        bad,
        "Encounter",
        '{"resourceType":"Encounter","id":"x1","status":"fin',  # cut off: not JSON
        '{"resourceType":"Encounter","id":"x2","class":"IMP"}',  # class of the wrong JSON type
        {**_lines(bad, "Patient")[0], "id": first["id"]},  # a Patient, with an encounter's id
        {k: v for k, v in first.items() if k != "id"},
        _inpatient(first, id="x3", period={"start": "2150-13-45T00:00:00Z", "end": "2150-02-01"}),
        _inpatient(first, id="x4", period={"start": "2150-01-01T00:00:00Z", "end": "soon"}),
        _inpatient(first, id="x5", subject={"reference": "Patient/nobody"}),
        _inpatient(first, id="x6", status="finished"),
        _inpatient(first, id="x6", status="finished", serviceType={"text": "CMED"}),
        first,  # an exact copy: dropped and counted
        # Visits of a clean patient that are not inpatient stays, one within days of a stay:
        # excluded, and never a readmission or a prior admission.
        _inpatient(first, id="x7", **{"class": ambulatory_class}),
        _inpatient(first, id="x8", **{"class": emergency_class}),
        _inpatient(first, id="x9", status="in-progress", period={"start": "2199-01-01"}),
    )


def _corrupt_children(bad: Path) -> dict[str, Counter[str]]:
    condition = _lines(bad, "Condition")[0]
    observation = _lines(bad, "Observation")[0]
    snomed = {"coding": [{"system": "http://snomed.info/sct", "code": "42343007"}]}
    _append(
        bad,
        "Condition",
        "not json at all",
        {**condition, "id": "c-unknown", "code": snomed},
        {**condition, "id": "c-orphan", "encounter": {"reference": "Encounter/none"}},
        {**condition, "id": "c-conflict"},
        {
            **condition,
            "id": "c-conflict",
            "code": {"coding": [{"system": terms.SYSTEM_ICD9CM, "code": "401.9"}]},
        },
        condition,
        {k: v for k, v in condition.items() if k != "id"},
    )
    _append(bad, "Observation", condition, observation)
    patient = _lines(bad, "Patient")[0]
    _append(bad, "Patient", "{", patient, {**patient, "id": "lonely"})
    return {
        "Condition": Counter(
            {
                "malformed_resource": 1,
                "unknown_code_system": 1,
                "orphan": 1,
                "conflicting_duplicate": 2,
                "duplicate": 1,
                "missing_key": 1,
            }
        ),
        "Observation": Counter({"wrong_resource_type": 1, "duplicate": 1}),
        "Patient": Counter({"malformed_resource": 1, "duplicate": 1, "orphan": 1}),
    }


def test_every_bad_line_has_its_reason_and_the_cohort_stays(
    spark: SparkSession, exports: tuple[Path, Path]
) -> None:
    clean, bad = exports
    clean_features, clean_counts = build_and_count(spark, clean)
    _corrupt_encounters(bad)
    added = _corrupt_children(bad)
    features, counts = build_and_count(spark, bad)

    assert features == clean_features
    index = counts.index
    assert index.quarantined == EXPECTED_QUARANTINE
    assert index.duplicates_dropped == 1
    assert index.excluded == dict(
        Counter(clean_counts.index.excluded) + Counter(EXPECTED_EXCLUDED_EXTRA)
    )
    assert index.rows_in == clean_counts.index.rows_in + 13
    for table, reasons in added.items():
        before, after = clean_counts.linked[table], counts.linked[table]
        unused = Counter(after.unused_by_reason)
        unused.subtract(before.unused_by_reason)
        assert after.rows_in == before.rows_in + sum(reasons.values()), table
        assert after.duplicates_dropped - before.duplicates_dropped == reasons["duplicate"], table
        assert after.rows_used == before.rows_used, table
        assert +unused == Counter({k: v for k, v in reasons.items() if k != "duplicate"}), table
    entries = row_accounting(fhir.INPUT_TABLE, counts)
    assert keys.unbalanced_tables(entries) == []
    assert entries[keys.RECONCILED] is True


def test_an_export_without_encounters_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_text("")
    with pytest.raises(FileNotFoundError, match="Encounter"):
        fhir_readers.read_export(spark, str(tmp_path))
