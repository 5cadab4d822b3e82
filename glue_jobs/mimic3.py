"""MIMIC-III (and generator) tables -> staged admissions and the canonical encounter rows."""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)

from glue_jobs import cohort
from glue_jobs.charlson import charlson_index
from glue_jobs.deid import add_keys
from glue_jobs.mimic3_admissions import (
    add_categories,
    add_timeline,
    parse_admissions,
    parse_patients,
    stage_admissions,
)
from glue_jobs.mimic3_details import (
    code_sequences,
    coded_icd9,
    lab_features,
    medication_features,
    note_features,
    procedure_features,
    service_features,
    typed_labs,
)

INPUT_TABLE = "ADMISSIONS"


def empty_strings() -> Column:
    """An empty ``array<string>``."""
    return F.array().cast("array<string>")


def admission_details(tables: dict[str, DataFrame]) -> list[DataFrame]:
    """Return the per-admission aggregates of every child table, each keyed by hadm_id."""
    return [
        code_sequences(coded_icd9(tables["DIAGNOSES_ICD"]), "diagnosis_codes", "num_diagnoses"),
        procedure_features(tables["PROCEDURES_ICD"]),
        medication_features(tables["PRESCRIPTIONS"]),
        lab_features(typed_labs(tables["LABEVENTS"]), tables["D_LABITEMS"]),
        service_features(tables["SERVICES"]),
        note_features(tables["NOTEEVENTS"]),
    ]


def assemble_features(kept: DataFrame, details: list[DataFrame], record_source: str) -> DataFrame:
    """Kept admissions + per-admission aggregates -> contract columns with explicit defaults."""
    joined = kept
    for detail in details:
        joined = joined.join(detail, on="hadm_id", how="left")
    zero = F.lit(0)
    return joined.select(
        "patient_key",
        "encounter_key",
        "age_years",
        "sex",
        "admission_type",
        "admission_source",
        "discharge_disposition",
        "admitting_service",
        "length_of_stay_days",
        "prior_admissions_12m",
        "prior_ed_visits_12m",
        F.lit(None).cast("int").alias("prior_outpatient_visits_12m"),
        "days_since_last_discharge",
        "prior_encounters_on_record",
        "prior_readmissions_30d_on_record",
        F.coalesce("num_diagnoses", zero).alias("num_diagnoses"),
        F.coalesce("num_procedures", zero).alias("num_procedures"),
        F.coalesce("num_medications", zero).alias("num_medications"),
        F.coalesce("num_lab_tests", zero).alias("num_lab_tests"),
        F.coalesce("num_abnormal_labs", zero).alias("num_abnormal_labs"),
        F.coalesce("hba1c_result", F.lit("not_measured")).alias("hba1c_result"),
        F.coalesce("max_glucose_result", F.lit("not_measured")).alias("max_glucose_result"),
        charlson_index(F.coalesce("diagnosis_codes", empty_strings())).alias("charlson_index"),
        F.coalesce("diagnosis_codes", empty_strings()).alias("diagnosis_codes"),
        F.coalesce("procedure_codes", empty_strings()).alias("procedure_codes"),
        F.coalesce("medications", empty_strings()).alias("medications"),
        F.coalesce("abnormal_labs", empty_strings()).alias("abnormal_labs"),
        "note_text",
        "readmitted_30d",
        "readmitted_any",
        F.lit(record_source).alias("source"),
        "split",
    )


def stage(tables: dict[str, DataFrame], deid_key: str) -> DataFrame:
    """ADMISSIONS + PATIENTS -> every admission with status, timeline, categories and keys."""
    staged = stage_admissions(
        parse_admissions(tables["ADMISSIONS"]), parse_patients(tables["PATIENTS"])
    )
    return add_keys(add_categories(add_timeline(staged)), deid_key, "subject_id", "hadm_id")


def build(
    tables: dict[str, DataFrame],
    deid_key: str,
    record_source: str,
    tables_missing: list[str],
) -> cohort.SourceFrames:
    """Return staged admissions (persisted: counted and written) and the three outputs."""
    staged = stage(tables, deid_key).persist(StorageLevel.MEMORY_AND_DISK)
    kept = staged.where(F.col("status") == cohort.STATUS_OK)
    return cohort.SourceFrames(
        staged=staged,
        features=assemble_features(kept, admission_details(tables), record_source),
        protected=kept.select("encounter_key", "race", "split"),
        quarantine=cohort.quarantine_rows(staged, INPUT_TABLE),
        input_table=INPUT_TABLE,
        record_source=record_source,
        tables_missing=tables_missing,
    )
