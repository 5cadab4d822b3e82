"""UCI Diabetes-130 transforms on hand-written rows: features, exclusions, quarantine."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from glue_jobs.mappings import UCI_ADMISSION_SOURCE, UCI_ADMISSION_TYPE, UCI_DISCHARGE_DISPOSITION
from glue_jobs.uci_diabetes import add_features, add_history, parse_encounters, stage_encounters
from tests.glue_jobs import uci_rows
from tests.glue_jobs.conftest import UCI_DIABETES, text_frame

pytestmark = pytest.mark.spark


def _staged(spark: SparkSession):  # type: ignore[no-untyped-def]
    raw = text_frame(
        spark, [c.lower() for c in uci_rows.HEADER], [c[0] for c in uci_rows.CASES.values()]
    )
    return add_features(add_history(stage_encounters(parse_encounters(raw))))


def test_each_row_gets_its_status_and_reason(spark: SparkSession) -> None:
    actual = sorted((r["encounter_id"], r["status"], r["reason"]) for r in _staged(spark).collect())
    expected = sorted(
        (key.rstrip("b"), status, reason) for key, (_, status, reason) in uci_rows.CASES.items()
    )
    assert actual == expected


def test_features_of_kept_rows(spark: SparkSession) -> None:
    staged = _staged(spark).where("status = 'ok'")
    columns = (
        "age_years",
        "sex",
        "admission_type",
        "admission_source",
        "discharge_disposition",
        "admitting_service",
        "length_of_stay_days",
        "prior_admissions_12m",
        "prior_ed_visits_12m",
        "prior_outpatient_visits_12m",
        "days_since_last_discharge",
        "num_diagnoses",
        "num_procedures",
        "num_medications",
        "num_lab_tests",
        "num_abnormal_labs",
        "hba1c_result",
        "max_glucose_result",
        "charlson_index",
        "diagnosis_codes",
        "procedure_codes",
        "medications",
        "abnormal_labs",
        "note_text",
        "readmitted_30d",
        "source",
        "race",
        "unmapped__admission_source",
    )
    actual = {r["encounter_id"]: tuple(r[c] for c in columns) for r in staged.collect()}
    assert actual["1000"] == (
        75,
        "F",
        "emergency",
        "emergency_department",
        "home",
        "internalmedicine",
        3.0,
        2,
        1,
        0,
        None,
        9,
        1,
        12,
        41,
        1,
        "above_8",
        "not_measured",
        3,
        ["icd9cm:428", "icd9cm:25043"],
        [],
        ["metformin", "insulin"],
        ["hba1c"],
        None,
        1,
        "uci_diabetes",
        "white",
        False,
    )
    assert actual["1001"] == (
        90,
        "unknown",
        "emergency",
        "transfer_hospital",
        "skilled_nursing",
        None,
        3.0,
        2,
        1,
        0,
        None,
        9,
        1,
        12,
        41,
        1,
        "not_measured",
        "above_300",
        0,
        ["icd9cm:V57"],
        [],
        [],
        ["glucose"],
        None,
        0,
        "uci_diabetes",
        "unknown",
        False,
    )
    assert actual["1012"][3] == "unknown"
    assert actual["1012"][-1] is True


def test_history_counts_earlier_encounters_in_encounter_id_order(spark: SparkSession) -> None:
    """Patient 500: 1000 (ok), 1002-1004 (excluded), 1006-1010 (quarantined), 1012 (ok).

    Every one of its rows carries ``<30``; excluded rows count as history, quarantined ones
    neither count nor get a value.
    """
    columns = ("status", "prior_encounters_on_record", "prior_readmissions_30d_on_record")
    actual = {
        r["encounter_id"]: tuple(r[c] for c in columns)
        for r in _staged(spark).collect()
        if r["patient_nbr"] in ("500", "501")
    }
    assert actual["1000"] == ("ok", 0, 0)
    assert actual["1001"] == ("ok", 0, 0)
    assert actual["1002"] == ("excluded", 1, 1)
    assert actual["1004"] == ("excluded", 3, 3)
    assert actual["1012"] == ("ok", 4, 4)
    assert actual["1007"] == ("quarantined", None, None)


def test_history_counts_only_earlier_30_day_readmissions(spark: SparkSession) -> None:
    rows = [
        uci_rows.row(encounter_id="20", patient_nbr="9", readmitted=">30"),
        uci_rows.row(encounter_id="7", patient_nbr="9", readmitted="NO"),
        uci_rows.row(encounter_id="31", patient_nbr="9", readmitted="<30"),
        uci_rows.row(encounter_id="100", patient_nbr="9", readmitted="NO"),
    ]
    raw = text_frame(spark, [c.lower() for c in uci_rows.HEADER], rows)
    history = add_history(stage_encounters(parse_encounters(raw)))
    actual = {
        r["encounter_id"]: (r["prior_encounters_on_record"], r["prior_readmissions_30d_on_record"])
        for r in history.collect()
    }
    # Numeric order (7 < 20 < 31 < 100), not string order.
    assert actual == {"7": (0, 0), "20": (1, 0), "31": (2, 0), "100": (3, 1)}


def test_any_readmission_is_the_auxiliary_label(spark: SparkSession) -> None:
    """'<30' and '>30' are a readmission on record; only '<30' is the 30-day label."""
    rows = [
        uci_rows.row(encounter_id="1", patient_nbr="1", readmitted="<30"),
        uci_rows.row(encounter_id="2", patient_nbr="2", readmitted=">30"),
        uci_rows.row(encounter_id="3", patient_nbr="3", readmitted="NO"),
    ]
    raw = text_frame(spark, [c.lower() for c in uci_rows.HEADER], rows)
    features = add_features(add_history(stage_encounters(parse_encounters(raw))))
    actual = {
        r["encounter_id"]: (r["readmitted_30d"], r["readmitted_any"]) for r in features.collect()
    }
    assert actual == {"1": (1, 1), "2": (0, 1), "3": (0, 0)}


def test_every_id_in_ids_mapping_is_mapped() -> None:
    tables: list[dict[str, str]] = [
        UCI_ADMISSION_TYPE,
        UCI_DISCHARGE_DISPOSITION,
        UCI_ADMISSION_SOURCE,
    ]
    ids: list[set[str]] = [set(), set(), set()]
    block = 0
    lines = (UCI_DIABETES / "IDs_mapping.csv").read_text().splitlines()
    for line in lines[1:]:
        if line.strip() in {",", ""}:
            block += 1
            continue
        if line.endswith("description"):
            continue
        ids[block].add(line.split(",")[0])
    for mapping, present in zip(tables, ids, strict=True):
        assert present == set(mapping)
