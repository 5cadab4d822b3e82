"""MIMIC-IV v2/v3 (``hosp`` module, optional ``note`` module) -> the canonical encounter rows.

The same cohort, label, copy and accounting rules as MIMIC-III (``glue_jobs.mimic3``): each
MIMIC-IV table is re-shaped into its MIMIC-III counterpart by small pure transforms, then the
MIMIC-III staging runs with MIMIC-IV's vocabulary. What differs:
- ages: MIMIC-IV de-identifies them as ``anchor_age`` in ``anchor_year``; the age at an
  admission is ``anchor_age + year(admittime) - anchor_year`` (the MIMIC-IV documentation's
  rule), written here as a birth date on 1 January of ``anchor_year - anchor_age``, which
  gives exactly that age through the MIMIC-III rule (whole years between birth and admission);
- codes: ``icd_version`` 9 or 10 per row tags the code (``icd9cm:``/``icd10cm:`` diagnoses,
  ``icd9pcs:``/``icd10pcs:`` procedures); another version is an ``unknown_code_system`` row;
- labs are abnormal by ``flag`` (``abnormal``), as in MIMIC-III;
- notes: ``note/discharge`` (note type ``DS``) is the discharge summary.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import CodeSystem
from glue_jobs import cohort, mimic3
from glue_jobs.codes import tagged_by
from glue_jobs.copies import HAS_VALUE, ROW_ID, ROW_TEXT, UNKNOWN_SYSTEM, row_text
from glue_jobs.mappings import (
    MIMIC4_ADMISSION_LOCATION,
    MIMIC4_ADMISSION_TYPE,
    MIMIC4_DIAGNOSIS_SYSTEMS,
    MIMIC4_DISCHARGE_LOCATION,
    MIMIC4_DISCHARGE_NOTE_TYPE,
    MIMIC4_PLANNED_ADMISSION_TYPES,
    MIMIC4_PROCEDURE_SYSTEMS,
    MIMIC4_RACE,
    MIMIC_GENDER,
)
from glue_jobs.mimic3_admissions import Vocabulary
from glue_jobs.mimic3_details import (
    DISCHARGE_SUMMARY_CATEGORY,
    code_sequences,
    lab_features,
    medication_features,
    note_features,
    service_features,
    typed_labs,
)
from glue_jobs.parsing import as_id_string, as_long

SOURCE_NAME = "mimic4"
VOCABULARY = Vocabulary(
    admission_type=MIMIC4_ADMISSION_TYPE,
    admission_location=MIMIC4_ADMISSION_LOCATION,
    discharge_location=MIMIC4_DISCHARGE_LOCATION,
    gender=MIMIC_GENDER,
    ethnicity=MIMIC4_RACE,
    planned_admission_types=MIMIC4_PLANNED_ADMISSION_TYPES,
)
#: MIMIC-III table (as the shared transforms name it) -> the MIMIC-IV table in the manifest.
TABLE_NAMES: dict[str, str] = {
    "ADMISSIONS": "hosp/admissions",
    "PATIENTS": "hosp/patients",
    "DIAGNOSES_ICD": "hosp/diagnoses_icd",
    "PROCEDURES_ICD": "hosp/procedures_icd",
    "PRESCRIPTIONS": "hosp/prescriptions",
    "LABEVENTS": "hosp/labevents",
    "D_LABITEMS": "hosp/d_labitems",
    "SERVICES": "hosp/services",
    "NOTEEVENTS": "note/discharge",
}
ICD_COMPARED = ("seq_num", "icd_code", "icd_version", ROW_ID)
YEAR_DIGITS = 4


def admissions(raw: DataFrame) -> DataFrame:
    """hosp/admissions -> MIMIC-III ADMISSIONS columns (``race`` read as ``ethnicity``)."""
    return raw.select(
        "subject_id",
        "hadm_id",
        "admittime",
        "dischtime",
        "admission_type",
        "admission_location",
        "discharge_location",
        F.col("race").alias("ethnicity"),
        "edregtime",
        "hospital_expire_flag",
        ROW_ID,
    )


def patients(raw: DataFrame) -> DataFrame:
    """hosp/patients -> (subject_id, gender, dob): the birth date that gives MIMIC-IV's age
    rule (null where an anchor is not an integer or the year is not positive)."""
    birth_year = as_long(raw, "anchor_year") - as_long(raw, "anchor_age")
    dob = F.when(
        birth_year > 0,
        F.concat(F.lpad(birth_year.cast("string"), YEAR_DIGITS, "0"), F.lit("-01-01")),
    )
    return raw.select("subject_id", "gender", dob.alias("dob"), ROW_ID)


def coded(raw: DataFrame, systems: Mapping[str, CodeSystem]) -> DataFrame:
    """hosp/diagnoses_icd or procedures_icd -> (hadm_id, seq_num, code), the code tagged by
    its row's ``icd_version``; a code whose version is not in ``systems`` is unused and
    marked ``_unknown_system``."""
    version = as_id_string(raw, "icd_version")
    code = tagged_by(systems, version, F.col("icd_code"))
    present = F.length(F.trim(F.col("icd_code").cast("string"))) > 0
    return raw.select(
        as_id_string(raw, "hadm_id").alias("hadm_id"),
        as_long(raw, "seq_num").alias("seq_num"),
        code.alias("code"),
        F.coalesce(code.isNotNull(), F.lit(False)).alias(HAS_VALUE),
        F.coalesce(present & code.isNull(), F.lit(False)).alias(UNKNOWN_SYSTEM),
        row_text(raw, ICD_COMPARED).alias(ROW_TEXT),
    )


def prescriptions(raw: DataFrame) -> DataFrame:
    """hosp/prescriptions -> MIMIC-III PRESCRIPTIONS columns (``starttime`` as startdate)."""
    return raw.select("hadm_id", F.col("starttime").alias("startdate"), "drug", "ndc", ROW_ID)


def discharge_notes(raw: DataFrame) -> DataFrame:
    """note/discharge -> MIMIC-III NOTEEVENTS columns: note type ``DS`` is a discharge
    summary; a note of another type is not selected."""
    is_summary = F.upper(F.trim(F.col("note_type"))) == MIMIC4_DISCHARGE_NOTE_TYPE
    return raw.select(
        ROW_ID,
        "hadm_id",
        F.col("charttime").alias("chartdate"),
        F.lit(None).cast("string").alias("charttime"),
        F.coalesce(F.when(is_summary, F.lit(DISCHARGE_SUMMARY_CATEGORY)), F.col("note_type")).alias(
            "category"
        ),
        F.lit(None).cast("string").alias("iserror"),
        "text",
    )


def mimic3_shaped(tables: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """MIMIC-IV tables -> the MIMIC-III tables the shared staging reads."""
    return {
        "ADMISSIONS": admissions(tables["admissions"]),
        "PATIENTS": patients(tables["patients"]),
        "D_LABITEMS": tables["d_labitems"].select("itemid", "label", ROW_ID),
    }


def admission_details(tables: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Each MIMIC-IV child table's per-admission aggregate, under its MIMIC-III name."""
    return {
        "DIAGNOSES_ICD": code_sequences(
            coded(tables["diagnoses_icd"], MIMIC4_DIAGNOSIS_SYSTEMS),
            "diagnosis_codes",
            "num_diagnoses",
        ),
        "PROCEDURES_ICD": code_sequences(
            coded(tables["procedures_icd"], MIMIC4_PROCEDURE_SYSTEMS),
            "procedure_codes",
            "num_procedures",
        ),
        "PRESCRIPTIONS": medication_features(prescriptions(tables["prescriptions"])),
        "LABEVENTS": lab_features(typed_labs(tables["labevents"]), tables["d_labitems"]),
        "SERVICES": service_features(tables["services"]),
        "NOTEEVENTS": note_features(discharge_notes(tables["discharge"])),
    }


def build(
    tables: dict[str, DataFrame], deid_key: str, record_source: str, tables_missing: list[str]
) -> cohort.SourceFrames:
    """Return the staged admissions, outputs and linked-table outcomes of a MIMIC-IV extract."""
    return mimic3.build(
        mimic3_shaped(tables),
        deid_key,
        record_source,
        tables_missing,
        vocabulary=VOCABULARY,
        details=admission_details(tables),
        table_names=TABLE_NAMES,
    )
