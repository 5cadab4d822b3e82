"""MIMIC-III (and generator) tables -> staged admissions and the canonical encounter rows.

Also accounts for every row of the other tables (``linked_tables`` in the manifest).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import CodeSystem
from glue_jobs import cohort
from glue_jobs.accounting import (
    COUNT_COLUMNS,
    NO_VALUE,
    NOT_SELECTED,
    ORPHAN,
    child_table_outcomes,
    lookup_table_outcomes,
)
from glue_jobs.charlson import charlson_index
from glue_jobs.copies import ROWS, VARIANTS
from glue_jobs.deid import add_keys
from glue_jobs.mappings import lookup
from glue_jobs.mimic3_admissions import (
    MIMIC3_VOCABULARY,
    PATIENT_ROWS,
    PATIENT_VARIANTS,
    Vocabulary,
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
    lab_names,
    medication_features,
    note_features,
    procedure_features,
    service_features,
    typed_labs,
)

INPUT_TABLE = "ADMISSIONS"
#: The reason a child row without what the job reads is unused, where not ``no_value``.
VALUE_REASONS = {"NOTEEVENTS": NOT_SELECTED}


def empty_strings() -> Column:
    """An empty ``array<string>``."""
    return F.array().cast("array<string>")


def admission_details(tables: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Return each child table's per-admission aggregate, keyed by hadm_id, with row counts."""
    return {
        "DIAGNOSES_ICD": code_sequences(
            coded_icd9(tables["DIAGNOSES_ICD"], CodeSystem.ICD9CM),
            "diagnosis_codes",
            "num_diagnoses",
        ),
        "PROCEDURES_ICD": procedure_features(tables["PROCEDURES_ICD"]),
        "PRESCRIPTIONS": medication_features(tables["PRESCRIPTIONS"]),
        "LABEVENTS": lab_features(typed_labs(tables["LABEVENTS"]), tables["D_LABITEMS"]),
        "SERVICES": service_features(tables["SERVICES"]),
        "NOTEEVENTS": note_features(tables["NOTEEVENTS"]),
    }


def assemble_features(
    kept: DataFrame, details: Iterable[DataFrame], record_source: str
) -> DataFrame:
    """Kept admissions + per-admission aggregates -> contract columns with explicit defaults."""
    joined = kept
    for detail in details:
        joined = joined.join(detail.drop(*COUNT_COLUMNS), on="hadm_id", how="left")
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
        # A source that records outpatient visits (FHIR) brings its own count.
        (
            F.col("prior_outpatient_visits_12m")
            if "prior_outpatient_visits_12m" in kept.columns
            else F.lit(None).cast("int").alias("prior_outpatient_visits_12m")
        ),
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
        # Published once the contract has the field (contract 2.0); dropped by conform before.
        F.coalesce("medication_codes", empty_strings()).alias("medication_codes"),
        F.coalesce("abnormal_labs", empty_strings()).alias("abnormal_labs"),
        "note_text",
        "readmitted_30d",
        "readmitted_any",
        F.lit(record_source).alias("source"),
        "split",
    )


def stage(
    tables: dict[str, DataFrame], deid_key: str, vocabulary: Vocabulary = MIMIC3_VOCABULARY
) -> DataFrame:
    """ADMISSIONS + PATIENTS -> every admission with status, timeline, categories and keys."""
    staged = stage_admissions(
        parse_admissions(tables["ADMISSIONS"]), parse_patients(tables["PATIENTS"])
    )
    categorised = add_categories(add_timeline(staged, vocabulary), vocabulary)
    return add_keys(categorised, deid_key, "subject_id", "hadm_id")


def linked_table_outcomes(
    tables: dict[str, DataFrame], staged: DataFrame, details: dict[str, DataFrame]
) -> DataFrame:
    """(table, outcome, rows) for PATIENTS, D_LABITEMS and every child table.

    A patient without any ADMISSIONS row and a child row whose hadm_id no ADMISSIONS row has
    are orphans; whether the admission is then kept is counted once, in ADMISSIONS.
    """
    admission_ids = staged.where(F.col("hadm_id").isNotNull()).select("hadm_id").distinct()
    subjects = staged.where(F.col("subject_id").isNotNull()).select("subject_id").distinct()
    patients = (
        parse_patients(tables["PATIENTS"])
        .select(
            "subject_id", F.col(PATIENT_ROWS).alias(ROWS), F.col(PATIENT_VARIANTS).alias(VARIANTS)
        )
        .join(
            subjects.select("subject_id", F.lit(True).alias("_admitted")),
            on="subject_id",
            how="left",
        )
    )
    outcomes = [
        lookup_table_outcomes(
            "PATIENTS", patients, "subject_id", [(F.col("_admitted").isNull(), ORPHAN)]
        ),
        lookup_table_outcomes(
            "D_LABITEMS",
            lab_names(tables["D_LABITEMS"]),
            "itemid",
            [(F.col("label").isNull(), NO_VALUE)],
        ),
        child_table_outcomes(details, admission_ids, VALUE_REASONS),
    ]
    return reduce(DataFrame.unionByName, outcomes)


def renamed_tables(outcomes: DataFrame, names: Mapping[str, str]) -> DataFrame:
    """Outcome rows with each MIMIC-III table name replaced by the source's own name."""
    if not names:
        return outcomes
    return outcomes.select(
        F.coalesce(lookup(names, F.col("table")), F.col("table")).alias("table"),
        "outcome",
        "rows",
    )


def build(
    tables: dict[str, DataFrame],
    deid_key: str,
    record_source: str,
    tables_missing: list[str],
    vocabulary: Vocabulary = MIMIC3_VOCABULARY,
    details: dict[str, DataFrame] | None = None,
    table_names: Mapping[str, str] | None = None,
) -> cohort.SourceFrames:
    """Return staged admissions and the child aggregates (persisted: each is read twice), the
    three outputs and the linked tables' row outcomes.

    ``tables`` are MIMIC-III-shaped; another layout (MIMIC-IV) passes its vocabulary, its own
    child aggregates and the names its tables have in the manifest (``table_names``)."""
    names = dict(table_names or {})
    staged = stage(tables, deid_key, vocabulary).persist(StorageLevel.MEMORY_AND_DISK)
    details = {
        name: detail.persist(StorageLevel.MEMORY_AND_DISK)
        for name, detail in (details or admission_details(tables)).items()
    }
    kept = staged.where(F.col("status") == cohort.STATUS_OK)
    input_table = names.get(INPUT_TABLE, INPUT_TABLE)
    return cohort.SourceFrames(
        staged=staged,
        features=assemble_features(kept, details.values(), record_source),
        protected=kept.select("encounter_key", "race", "split"),
        quarantine=cohort.quarantine_rows(staged, input_table),
        input_table=input_table,
        record_source=record_source,
        tables_missing=tables_missing,
        linked_outcomes=renamed_tables(linked_table_outcomes(tables, staged, details), names),
        linked_tables=[names.get(n, n) for n in ("PATIENTS", "D_LABITEMS", *details)],
        persisted=[staged, *details.values()],
    )
