"""The generator: reproducible by seed, MIMIC-shaped, and its label is learnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest
from pyspark.sql import SparkSession
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from glue_jobs.ehr_features import run_job
from glue_jobs.readers import MIMIC_COLUMNS
from glue_jobs.synthetic_ehr import generate
from tests.glue_jobs.conftest import MIMIC_DEMO, TEST_KEY
from tests.glue_jobs.output_checks import read_dataset

TABLES = (
    "ADMISSIONS",
    "PATIENTS",
    "DIAGNOSES_ICD",
    "PROCEDURES_ICD",
    "PRESCRIPTIONS",
    "LABEVENTS",
    "D_LABITEMS",
    "ICUSTAYS",
    "SERVICES",
    "NOTEEVENTS",
)


def _table(folder: Path, name: str):  # type: ignore[no-untyped-def]
    return ds.dataset(folder / name, format="parquet").to_table()


def test_same_seed_same_tables_other_seed_other_tables(tmp_path: Path) -> None:
    first = generate(300, 11, str(tmp_path / "a"), notes=True)
    second = generate(300, 11, str(tmp_path / "b"), notes=True)
    other = generate(300, 12, str(tmp_path / "c"), notes=True)
    assert first == second
    assert first["ADMISSIONS"] == 300
    for name in TABLES:
        assert _table(tmp_path / "a", name).equals(_table(tmp_path / "b", name)), name
    assert not _table(tmp_path / "a", "ADMISSIONS").equals(_table(tmp_path / "c", "ADMISSIONS"))
    assert other["ADMISSIONS"] == 300


def test_tables_have_the_demo_columns(tmp_path: Path) -> None:
    generate(50, 1, str(tmp_path / "g"))
    for name in TABLES:
        demo_header = (MIMIC_DEMO / f"{name}.csv").read_text().splitlines()[0].split(",")
        assert _table(tmp_path / "g", name).column_names == demo_header, name
        assert set(MIMIC_COLUMNS.get(name, ())) <= set(demo_header)
    assert _table(tmp_path / "g", "NOTEEVENTS").num_rows == 0


def test_hadm_ids_are_unique_and_children_point_at_admissions(tmp_path: Path) -> None:
    generate(500, 3, str(tmp_path / "g"), notes=True)
    hadm = _table(tmp_path / "g", "ADMISSIONS").column("hadm_id").to_numpy()
    assert np.unique(hadm).size == hadm.size
    for name in ("DIAGNOSES_ICD", "PRESCRIPTIONS", "SERVICES", "NOTEEVENTS"):
        child = _table(tmp_path / "g", name).column("hadm_id").drop_null().to_numpy()
        assert np.isin(child, hadm).all(), name


@pytest.mark.spark
@pytest.mark.slow
def test_etl_on_generated_data_yields_a_learnable_label(
    spark: SparkSession, tmp_path: Path
) -> None:
    generate(6000, 5, str(tmp_path / "synth"), notes=True)
    result = run_job(spark, "mimic3", str(tmp_path / "synth"), str(tmp_path / "out"), TEST_KEY)
    assert result["record_source"] == "synthetic"
    assert result["reconciled"] is True
    assert result["rows_in"] == 6000
    assert set(result["excluded_by_reason"]) == {"in_hospital_death", "newborn"}
    rows = read_dataset(tmp_path / "out" / "features")
    rate = np.mean([r["readmitted_30d"] for r in rows])
    assert 0.08 < rate < 0.25

    def features(row: dict) -> list[float]:
        return [
            row["age_years"],
            row["charlson_index"],
            np.log1p(row["prior_admissions_12m"]),
            row["num_abnormal_labs"],
            np.log(row["length_of_stay_days"]),
            float(row["admission_type"] == "emergency"),
            float(row["discharge_disposition"] == "home"),
            float(row["discharge_disposition"] == "skilled_nursing"),
            float(row["discharge_disposition"] == "left_against_advice"),
        ]

    train = [r for r in rows if r["split"] != "test"]
    test = [r for r in rows if r["split"] == "test"]
    model = LogisticRegression(max_iter=2000).fit(
        [features(r) for r in train], [r["readmitted_30d"] for r in train]
    )
    scores = model.predict_proba([features(r) for r in test])[:, 1]
    auroc = roc_auc_score([r["readmitted_30d"] for r in test], scores)
    assert auroc > 0.75
