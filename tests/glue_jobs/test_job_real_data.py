"""The whole job on the real MIMIC-III demo and the real UCI file (one run each)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from contracts.encounter import ENCOUNTER_FIELDS, PROTECTED_FIELDS
from glue_jobs.ehr_features import run_job
from tests.glue_jobs.conftest import MIMIC_DEMO, TEST_KEY, UCI_DIABETES
from tests.glue_jobs.output_checks import leaked_identifiers, manifest, read_dataset

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ARROW_TYPES = {
    "int": "int32",
    "double": "double",
    "string": "string",
    "array<string>": "list<element: string>",
}


@pytest.fixture(scope="module")
def mimic_output(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    output = tmp_path_factory.mktemp("mimic") / "out"
    return output, run_job(spark, "mimic3", str(MIMIC_DEMO), str(output), TEST_KEY)


@pytest.fixture(scope="module")
def uci_output(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    output = tmp_path_factory.mktemp("uci") / "out"
    return output, run_job(spark, "uci_diabetes", str(UCI_DIABETES), str(output), TEST_KEY)


def test_mimic_demo_gives_89_eligible_and_11_positive(
    mimic_output: tuple[Path, dict[str, Any]],
) -> None:
    output, result = mimic_output
    rows = read_dataset(output / "features")
    assert len(rows) == 89
    assert sum(r["readmitted_30d"] for r in rows) == 11
    assert result == manifest(output)
    assert (result["rows_in"], result["rows_out"], result["rows_excluded"]) == (129, 89, 40)
    assert result["excluded_by_reason"] == {"in_hospital_death": 40}
    assert result["reconciled"] is True
    assert sum(v.get("1", 0) for v in result["label_counts_by_split"].values()) == 11
    assert result["record_source"] == "mimic3"
    assert {r["source"] for r in rows} == {"mimic3"}


def test_output_schema_is_the_contract(mimic_output: tuple[Path, dict[str, Any]]) -> None:
    output, _ = mimic_output
    for folder, fields in (("features", ENCOUNTER_FIELDS), ("protected", PROTECTED_FIELDS)):
        files = sorted((output / folder).rglob("*.parquet"))
        assert {f.parent.name for f in files} <= {"split=train", "split=validation", "split=test"}
        schema = pq.read_schema(files[0])
        stored = [f for f in fields if f.name != "split"]
        assert schema.names == [f.name for f in stored]
        assert [str(schema.field(f.name).type) for f in stored] == [
            ARROW_TYPES[f.dtype] for f in stored
        ]


def test_patients_never_span_splits(mimic_output: tuple[Path, dict[str, Any]]) -> None:
    output, _ = mimic_output
    splits: dict[str, set[str]] = {}
    for row in read_dataset(output / "features"):
        splits.setdefault(row["patient_key"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits.values())
    protected = {r["encounter_key"]: r["split"] for r in read_dataset(output / "protected")}
    features = {r["encounter_key"]: r["split"] for r in read_dataset(output / "features")}
    assert protected == features


def test_no_mimic_identifier_leaves_the_job(mimic_output: tuple[Path, dict[str, Any]]) -> None:
    output, _ = mimic_output
    identifiers: set[str] = set()
    with (MIMIC_DEMO / "ADMISSIONS.csv").open() as handle:
        for row in csv.DictReader(handle):
            identifiers.update({row["subject_id"], row["hadm_id"]})
    assert leaked_identifiers(output, identifiers) == set()


def test_uci_counts_reconcile_to_101766(uci_output: tuple[Path, dict[str, Any]]) -> None:
    output, result = uci_output
    assert result["rows_in"] == 101_766
    assert result["excluded_by_reason"] == {
        "discharged_to_hospice": 771,
        "in_hospital_death": 1652,
        "newborn": 10,
    }
    assert result["rows_quarantined"] == 0
    assert result["rows_out"] == 101_766 - 2433
    assert result["rows_out"] == sum(result["rows_out_by_split"].values())
    labels = result["label_counts_by_split"]
    assert sum(sum(v.values()) for v in labels.values()) == result["rows_out"]
    rows = read_dataset(output / "features")
    assert len(rows) == result["rows_out"]
    assert sum(r["readmitted_30d"] for r in rows) == sum(v.get("1", 0) for v in labels.values())


def test_no_uci_identifier_leaves_the_job(uci_output: tuple[Path, dict[str, Any]]) -> None:
    output, _ = uci_output
    identifiers: set[str] = set()
    with gzip.open(UCI_DIABETES / "diabetic_data.csv.gz", "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            identifiers.update({row["encounter_id"], row["patient_nbr"]})
    assert leaked_identifiers(output, identifiers) == set()
