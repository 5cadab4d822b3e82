"""Training-serving parity: the Spark ETL and the online path give the model the same inputs.

A handful of hand-made MIMIC-III rows (two patients, three admissions, every child table) go
through the real ETL (``glue_jobs.ehr_features.run_job``); their Parquet output is read the way
training reads it. The same encounters, written as a hospital client would send them to the API
(raw ids, canonical fields), go through the API's request model and de-identification
(``lambdas.predict``), the endpoint's JSON wire format and ``input_fn``. Both must give the same
canonical values, byte-identical encoder arrays and the same scores.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import SparkSession

from contracts.codes import FIELD_SYSTEMS, parse
from contracts.encounter import model_input_fields
from inference.handler import input_fn, predict_fn
from inference.predictor import ServingModel
from lambdas.predict.records import to_endpoint_records
from lambdas.predict.schema import PredictRequest, request_records
from training.data import read_records

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DEID_KEY = "parity-test-deidentification-key"


def _lab(hadm_id: int, itemid: int, charttime: str, value: float, flag: str) -> dict[str, Any]:
    return {
        "hadm_id": hadm_id,
        "itemid": itemid,
        "charttime": charttime,
        "valuenum": value,
        "flag": flag,
    }


TABLES: dict[str, list[dict[str, Any]]] = {
    "PATIENTS": [
        {"subject_id": 101, "gender": "F", "dob": "2100-01-15 00:00:00"},
        {"subject_id": 102, "gender": "M", "dob": "2080-06-01 00:00:00"},
    ],
    "ADMISSIONS": [
        {
            "subject_id": 101,
            "hadm_id": 1001,
            "admittime": "2170-03-01 08:00:00",
            "dischtime": "2170-03-05 20:00:00",
            "admission_type": "EMERGENCY",
            "admission_location": "EMERGENCY ROOM ADMIT",
            "discharge_location": "HOME HEALTH CARE",
            "ethnicity": "WHITE",
            "edregtime": "2170-03-01 06:00:00",
            "hospital_expire_flag": 0,
        },
        {
            "subject_id": 101,
            "hadm_id": 1002,
            "admittime": "2170-06-10 08:00:00",
            "dischtime": "2170-06-12 08:00:00",
            "admission_type": "URGENT",
            "admission_location": "TRANSFER FROM HOSP/EXTRAM",
            "discharge_location": "SNF",
            "ethnicity": "WHITE",
            "edregtime": "",
            "hospital_expire_flag": 0,
        },
        {
            "subject_id": 102,
            "hadm_id": 2001,
            "admittime": "2150-01-10 12:00:00",
            "dischtime": "2150-01-13 00:00:00",
            "admission_type": "ELECTIVE",
            "admission_location": "PHYS REFERRAL/NORMAL DELI",
            "discharge_location": "HOME",
            "ethnicity": "BLACK/AFRICAN AMERICAN",
            "edregtime": "",
            "hospital_expire_flag": 0,
        },
    ],
    "DIAGNOSES_ICD": [
        {"hadm_id": 1001, "seq_num": 1, "icd9_code": "4280"},
        {"hadm_id": 1001, "seq_num": 2, "icd9_code": "25000"},
        {"hadm_id": 1001, "seq_num": 3, "icd9_code": "4019"},
        {"hadm_id": 1002, "seq_num": 1, "icd9_code": "5849"},
        {"hadm_id": 1002, "seq_num": 2, "icd9_code": "4280"},
        {"hadm_id": 2001, "seq_num": 2, "icd9_code": "V5861"},
        {"hadm_id": 2001, "seq_num": 1, "icd9_code": "41401"},
    ],
    "PROCEDURES_ICD": [
        {"hadm_id": 1001, "seq_num": 1, "icd9_code": "3995"},
        {"hadm_id": 2001, "seq_num": 1, "icd9_code": "3722"},
        {"hadm_id": 2001, "seq_num": 2, "icd9_code": "8856"},
    ],
    "PRESCRIPTIONS": [
        {"hadm_id": 1001, "startdate": "2170-03-01 00:00:00", "drug": "Furosemide"},
        {"hadm_id": 1001, "startdate": "2170-03-02 00:00:00", "drug": "Metformin"},
        {"hadm_id": 1001, "startdate": "2170-03-03 00:00:00", "drug": "furosemide"},
        {"hadm_id": 2001, "startdate": "2150-01-10 00:00:00", "drug": "Aspirin"},
    ],
    "LABEVENTS": [
        _lab(1001, 50852, "2170-03-01 10:00:00", 7.5, "abnormal"),
        _lab(1001, 50931, "2170-03-01 11:00:00", 180, ""),
        _lab(1001, 50912, "2170-03-02 09:00:00", 2.1, "abnormal"),
        _lab(1002, 50931, "2170-06-10 09:00:00", 320, "abnormal"),
    ],
    "D_LABITEMS": [
        {"itemid": 50852, "label": "% Hemoglobin A1c"},
        {"itemid": 50931, "label": "Glucose"},
        {"itemid": 50912, "label": "Creatinine"},
    ],
    "SERVICES": [
        {"hadm_id": 1001, "transfertime": "2170-03-01 08:00:00", "curr_service": "CMED"},
        {"hadm_id": 1001, "transfertime": "2170-03-03 08:00:00", "curr_service": "MED"},
        {"hadm_id": 1002, "transfertime": "2170-06-10 08:00:00", "curr_service": "MED"},
        {"hadm_id": 2001, "transfertime": "2150-01-10 12:00:00", "curr_service": "SURG"},
    ],
    "NOTEEVENTS": [
        {
            "row_id": 1,
            "hadm_id": 1001,
            "chartdate": "2170-03-05",
            "charttime": "",
            "category": "Discharge summary",
            "iserror": "",
            "text": "Patient admitted with shortness of breath, treated and discharged home.\n"
            "Follow up with primary care physician in one week.",
        },
        {
            "row_id": 2,
            "hadm_id": 1002,
            "chartdate": "2170-06-11",
            "charttime": "",
            "category": "Nursing",
            "iserror": "",
            "text": "stable overnight",
        },
    ],
}

#: The same encounters as a client sends them to POST /predict (the canonical fields).
CLIENT_RECORDS: list[dict[str, Any]] = [
    {
        "patient_id": "101", "encounter_id": "1001", "age_years": 70, "sex": "F",
        "admission_type": "emergency", "admission_source": "emergency_department",
        "discharge_disposition": "home_health", "admitting_service": "cmed",
        "length_of_stay_days": 4.5, "prior_admissions_12m": 0, "prior_ed_visits_12m": 0,
        "prior_outpatient_visits_12m": None, "days_since_last_discharge": None,
        "prior_encounters_on_record": 0, "prior_readmissions_30d_on_record": 0,
        "num_diagnoses": 3, "num_procedures": 1, "num_medications": 2, "num_lab_tests": 3,
        "num_abnormal_labs": 2, "hba1c_result": "above_7", "max_glucose_result": "normal",
        "charlson_index": 2, "diagnosis_codes": ["4280", "25000", "4019"],
        "procedure_codes": ["3995"], "medications": ["furosemide", "metformin"],
        "abnormal_labs": ["% hemoglobin a1c", "creatinine"],
        "note_text": TABLES["NOTEEVENTS"][0]["text"],
    },
    {
        "patient_id": "101", "encounter_id": "1002", "age_years": 70, "sex": "F",
        "admission_type": "urgent", "admission_source": "transfer_hospital",
        "discharge_disposition": "skilled_nursing", "admitting_service": "med",
        "length_of_stay_days": 2.0, "prior_admissions_12m": 1, "prior_ed_visits_12m": 1,
        "prior_outpatient_visits_12m": None, "days_since_last_discharge": 96.5,
        "prior_encounters_on_record": 1, "prior_readmissions_30d_on_record": 0,
        "num_diagnoses": 2, "num_procedures": 0, "num_medications": 0, "num_lab_tests": 1,
        "num_abnormal_labs": 1, "hba1c_result": "not_measured",
        "max_glucose_result": "above_300", "charlson_index": 1,
        "diagnosis_codes": ["5849", "4280"], "procedure_codes": [], "medications": [],
        "abnormal_labs": ["glucose"], "note_text": None,
    },
    {
        "patient_id": "102", "encounter_id": "2001", "age_years": 69, "sex": "M",
        "admission_type": "elective", "admission_source": "physician_referral",
        "discharge_disposition": "home", "admitting_service": "surg",
        "length_of_stay_days": 2.5, "prior_admissions_12m": 0, "prior_ed_visits_12m": 0,
        "prior_outpatient_visits_12m": None, "days_since_last_discharge": None,
        "prior_encounters_on_record": 0, "prior_readmissions_30d_on_record": 0,
        "num_diagnoses": 2, "num_procedures": 2, "num_medications": 1, "num_lab_tests": 0,
        "num_abnormal_labs": 0, "hba1c_result": "not_measured",
        "max_glucose_result": "not_measured", "charlson_index": 0,
        "diagnosis_codes": ["41401", "V5861"], "procedure_codes": ["3722", "8856"],
        "medications": ["aspirin"], "abnormal_labs": [], "note_text": None,
    },
]  # fmt: skip

MODEL_INPUTS = tuple(spec.name for spec in model_input_fields())


def write_tables(folder: Path) -> Path:
    """Write the hand-made tables as MIMIC-III demo CSVs (lower-case headers, quoted text)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in TABLES.items():
        with (folder / f"{table}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), quoting=csv.QUOTE_MINIMAL)
            writer.writeheader()
            writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("inference-parity")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def etl_records(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """The ETL's feature rows, read as training reads them, in the client records' order."""
    from glue_jobs.ehr_features import run_job

    root = tmp_path_factory.mktemp("parity")
    source = write_tables(root / "mimic")
    manifest = run_job(spark, "mimic3", str(source), str(root / "out"), DEID_KEY)
    assert manifest["rows_out"] == len(CLIENT_RECORDS)
    rows = [
        record
        for split in sorted((root / "out" / "features").glob("split=*"))
        for record in read_records(split)
    ]
    by_key = {row["encounter_key"]: row for row in rows}
    return [by_key[key["encounter_key"]] for key in online_records()]


def online_records() -> list[dict[str, Any]]:
    """The client's records after the API's validation and de-identification."""
    request = PredictRequest.model_validate({"instances": CLIENT_RECORDS})
    return to_endpoint_records(request_records(request), DEID_KEY)


def served(records: list[dict[str, Any]]) -> Any:
    """What ``input_fn`` decodes from the endpoint's JSON body of ``records``."""
    body = json.dumps({"instances": records}, separators=(",", ":"), allow_nan=False)
    return input_fn(body.encode("utf-8"), "application/json")


def test_the_etl_and_a_client_describe_each_encounter_identically(
    etl_records: list[dict[str, Any]],
) -> None:
    online = online_records()
    for etl, client in zip(etl_records, online, strict=True):
        assert etl["patient_key"] == client["patient_key"]
        assert _as_codes(etl) == _as_codes(client)


def _as_codes(record: dict[str, Any]) -> dict[str, Any]:
    """The model inputs with each code as its (system, code): the ETL writes ``icd9cm:4280``,
    the API forwards ICD-9 bare (``4280``, which a deployed 1.x model also reads) and both mean
    the same code (contracts.codes.parse); every other value must be equal as it is."""
    out = {name: record[name] for name in MODEL_INPUTS}
    for name in FIELD_SYSTEMS:
        if name in out and out[name] is not None:
            out[name] = [parse(name, code) for code in out[name]]
    return out


def test_the_encoder_gives_identical_arrays_on_both_paths(
    etl_records: list[dict[str, Any]], serving_model: ServingModel
) -> None:
    encoder = serving_model.encoder
    training_side = encoder.encode(etl_records).arrays()
    serving_side = encoder.encode(served(online_records()).records).arrays()
    assert set(training_side) == set(serving_side)
    assert "note_ids" in training_side
    for name, array in training_side.items():
        assert serving_side[name].dtype == array.dtype, name
        np.testing.assert_array_equal(serving_side[name], array, err_msg=name)


def test_the_hooks_give_identical_scores_on_both_paths(
    etl_records: list[dict[str, Any]], serving_model: ServingModel
) -> None:
    from_etl = predict_fn(etl_records, serving_model)
    from_client = predict_fn(served(online_records()), serving_model)
    assert [p["probability"] for p in from_etl] == [p["probability"] for p in from_client]
    assert from_etl == from_client
