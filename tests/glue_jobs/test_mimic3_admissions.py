"""MIMIC admissions: cohort rules, timeline features, label and quarantine on tiny frames."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession

from glue_jobs.mimic3 import stage
from glue_jobs.mimic3_admissions import parse_admissions, parse_patients, stage_admissions
from tests.glue_jobs import mimic_rows as rows
from tests.glue_jobs.conftest import first_row, text_frame

pytestmark = pytest.mark.spark


def _tables(spark: SparkSession, admissions: list, patients: list) -> dict[str, DataFrame]:
    return {
        "ADMISSIONS": text_frame(spark, rows.ADMISSION_COLUMNS, admissions),
        "PATIENTS": text_frame(spark, rows.PATIENT_COLUMNS, patients),
    }


def test_staged_timeline_labels_and_categories(spark: SparkSession) -> None:
    staged = stage(_tables(spark, rows.ADMISSIONS, rows.PATIENTS), "k")
    columns = (
        "hadm_id",
        "status",
        "reason",
        "age_years",
        "length_of_stay_days",
        "prior_admissions_12m",
        "prior_ed_visits_12m",
        "days_since_last_discharge",
        "readmitted_30d",
        "admission_type",
        "admission_source",
        "discharge_disposition",
        "sex",
        "race",
        "unmapped__admission_source",
    )
    actual = {r["hadm_id"]: tuple(r[c] for c in columns) for r in staged.select(*columns).collect()}
    assert actual == {
        "101": (
            "101",
            "ok",
            None,
            70,
            5.0,
            0,
            0,
            None,
            1,
            "emergency",
            "emergency_department",
            "home",
            "F",
            "white",
            False,
        ),
        "102": (
            "102",
            "ok",
            None,
            70,
            2.5,
            1,
            1,
            17.0,
            0,
            "emergency",
            "transfer_hospital",
            "skilled_nursing",
            "F",
            "white",
            False,
        ),
        "103": (
            "103",
            "ok",
            None,
            70,
            5.0,
            2,
            1,
            16.5,
            0,
            "elective",
            "physician_referral",
            "home",
            "F",
            "white",
            False,
        ),
        "104": (
            "104",
            "excluded",
            "in_hospital_death",
            71,
            1.0,
            0,
            0,
            461.0,
            0,
            "emergency",
            "emergency_department",
            "expired",
            "F",
            "white",
            False,
        ),
        "201": (
            "201",
            "ok",
            None,
            90,
            10.0,
            0,
            0,
            None,
            1,
            "urgent",
            "unknown",
            "hospice",
            "M",
            "asian",
            True,
        ),
        "202": (
            "202",
            "excluded",
            "in_hospital_death",
            90,
            1.0,
            1,
            0,
            9.0,
            0,
            "emergency",
            "emergency_department",
            "expired",
            "M",
            "asian",
            False,
        ),
        "301": (
            "301",
            "excluded",
            "newborn",
            0,
            3.0,
            0,
            0,
            None,
            0,
            "newborn",
            "physician_referral",
            "home",
            "F",
            "white",
            False,
        ),
    }


def test_record_history_counts_earlier_admissions_and_their_labels(spark: SparkSession) -> None:
    """Patient 1: 101 (label 1), 102, 103 (elective, so 102's label is 0), 104; patient 2: 201
    (label 1), 202. A 30-day readmission counts once its admission has been discharged."""
    staged = stage(_tables(spark, rows.ADMISSIONS, rows.PATIENTS), "k")
    actual = {
        r["hadm_id"]: (r["prior_encounters_on_record"], r["prior_readmissions_30d_on_record"])
        for r in staged.collect()
    }
    assert actual == {
        "101": (0, 0),
        "102": (1, 1),
        "103": (2, 1),
        "104": (3, 1),
        "201": (0, 0),
        "202": (1, 1),
        "301": (0, 0),
    }


def test_any_later_unplanned_admission_is_the_auxiliary_label(spark: SparkSession) -> None:
    """103 is followed by an emergency admission 15 months later: no 30-day readmission, but
    a readmission on record; 102 by an elective one: neither; the last admissions: neither."""
    staged = stage(_tables(spark, rows.ADMISSIONS, rows.PATIENTS), "k")
    actual = {r["hadm_id"]: (r["readmitted_30d"], r["readmitted_any"]) for r in staged.collect()}
    assert actual == {
        "101": (1, 1),
        "102": (0, 0),
        "103": (0, 1),
        "104": (0, 0),
        "201": (1, 1),
        "202": (0, 0),
        "301": (0, 0),
    }


def test_every_malformed_admission_gets_its_reason(spark: SparkSession) -> None:
    tables = _tables(
        spark, rows.ADMISSIONS + rows.BAD_ADMISSIONS, rows.PATIENTS + rows.BAD_PATIENTS
    )
    staged = stage_admissions(
        parse_admissions(tables["ADMISSIONS"]), parse_patients(tables["PATIENTS"])
    ).collect()
    assert len(staged) == len(rows.ADMISSIONS) + len(rows.BAD_ADMISSIONS)
    by_order = sorted(
        (r["reason"] for r in staged if r["status"] == "quarantined"),
    )
    assert by_order == sorted(rows.BAD_REASONS[a[1]] for a in rows.BAD_ADMISSIONS)
    quarantined = {(r["hadm_id"], r["reason"]) for r in staged if r["status"] == "quarantined"}
    expected = {(h, reason) for h, reason in rows.BAD_REASONS.items() if h.isdigit()}
    assert expected <= quarantined
    assert {r["hadm_id"] for r in staged if r["status"] == "ok"} == {"101", "102", "103", "201"}


def test_quarantined_admissions_do_not_feed_the_timeline(spark: SparkSession) -> None:
    admissions = [
        (
            "1",
            "101",
            "2170-01-10 08:00:00",
            "2170-01-15 08:00:00",
            None,
            "EMERGENCY",
            "EMERGENCY ROOM ADMIT",
            "HOME",
            "WHITE",
            "0",
        ),
        (
            "1",
            "102",
            "2170-01-20 08:00:00",
            "2170-01-19 08:00:00",
            None,
            "EMERGENCY",
            "EMERGENCY ROOM ADMIT",
            "HOME",
            "WHITE",
            "0",
        ),
    ]
    staged = stage(_tables(spark, admissions, rows.PATIENTS), "k")
    first = first_row(staged.where("hadm_id = '101'"))
    assert first["readmitted_30d"] == 0
    assert first_row(staged.where("hadm_id = '102'"))["reason"] == "discharge_before_admission"
