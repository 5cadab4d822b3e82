"""UCI Diabetes-130 (``diabetic_data.csv``) -> staged encounters and canonical encounter rows.

One row per encounter_id: an exact copy of another row with the same id is dropped (its first
copy goes on), rows that share an id but disagree are all quarantined (``glue_jobs.copies``).
The extract has no dates, so intervals that need them
(days since the last discharge) are null, and prior utilisation comes from its counts. A
patient's earlier encounters in the extract are ordered by encounter_id, which the extract's
authors assigned in time order (Strack et al., 2014).
UCI cannot tell planned from unplanned readmissions: ``<30`` is taken as the label as is.
"""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import CodeSystem
from contracts.encounter import AGE_CAP_YEARS, field
from glue_jobs import cohort
from glue_jobs.charlson import charlson_index
from glue_jobs.codes import tagged
from glue_jobs.copies import CONFLICTING, EXTRA_COPY, ROW_TEXT, mark_copies, row_text
from glue_jobs.deid import add_keys
from glue_jobs.mappings import (
    UCI_ADMISSION_SOURCE,
    UCI_ADMISSION_TYPE,
    UCI_DISCHARGE_DISPOSITION,
    UCI_EXCLUDED_DISPOSITIONS,
    UCI_GENDER,
    UCI_GLUCOSE,
    UCI_HBA1C,
    UCI_NEWBORN_ADMISSION_TYPE_ID,
    UCI_RACE,
    lookup,
    map_category,
)
from glue_jobs.parsing import as_id_string, as_long

INPUT_TABLE = "diabetic_data"
SOURCE_NAME = "uci_diabetes"
MISSING = "?"
AGE_BRACKET_PATTERN = r"^\[(\d+)-(\d+)\)$"
READMITTED_VALUES = ("NO", ">30", "<30")
READMITTED_WITHIN_30_DAYS = "<30"
#: Any readmission on record: within 30 days or later ("NO": none).
READMITTED_ANY = ("<30", ">30")
ACTIVE_DRUG_VALUES = ("Up", "Down", "Steady")
DIAGNOSIS_COLUMNS = ("diag_1", "diag_2", "diag_3")
DRUG_COLUMNS = (
    "metformin",
    "repaglinide",
    "nateglinide",
    "chlorpropamide",
    "glimepiride",
    "acetohexamide",
    "glipizide",
    "glyburide",
    "tolbutamide",
    "pioglitazone",
    "rosiglitazone",
    "acarbose",
    "miglitol",
    "troglitazone",
    "tolazamide",
    "examide",
    "citoglipton",
    "insulin",
    "glyburide-metformin",
    "glipizide-metformin",
    "glimepiride-pioglitazone",
    "metformin-rosiglitazone",
    "metformin-pioglitazone",
)
#: Integer columns -> the contract field they feed (checked against its valid range).
COUNT_COLUMNS: dict[str, str] = {
    "time_in_hospital": "length_of_stay_days",
    "num_lab_procedures": "num_lab_tests",
    "num_procedures": "num_procedures",
    "num_medications": "num_medications",
    "number_outpatient": "prior_outpatient_visits_12m",
    "number_emergency": "prior_ed_visits_12m",
    "number_inpatient": "prior_admissions_12m",
    "number_diagnoses": "num_diagnoses",
}
#: Text columns read as they are (trimmed); category ids stay text to match the mappings.
TEXT_COLUMNS = (
    "gender",
    "admission_type_id",
    "discharge_disposition_id",
    "admission_source_id",
    "medical_specialty",
    "a1cresult",
    "max_glu_serum",
    "readmitted",
    *DIAGNOSIS_COLUMNS,
    *DRUG_COLUMNS,
)
#: Compared to tell copies from disagreeing rows: every column read but the id itself.
COMPARED_COLUMNS = ("patient_nbr", "age", *COUNT_COLUMNS, *TEXT_COLUMNS, "race")
ABNORMAL_HBA1C = ("above_7", "above_8")
ABNORMAL_GLUCOSE = ("above_200", "above_300")


def _text(name: str) -> Column:
    return F.trim(F.col(name))


def _out_of_range(column: str, target: str) -> Column:
    spec = field(target)
    value = F.col(column)
    return value.isNull() | (value < F.lit(spec.valid_min)) | (value > F.lit(spec.valid_max))


def parse_encounters(raw: DataFrame) -> DataFrame:
    """Raw rows -> typed ids, age midpoint, integer counts and trimmed text columns."""
    age = _text("age")
    low = F.regexp_extract(age, AGE_BRACKET_PATTERN, 1)
    high = F.regexp_extract(age, AGE_BRACKET_PATTERN, 2)
    midpoint = F.when(low != "", F.floor((low.cast("int") + high.cast("int")) / 2))
    return raw.select(
        as_id_string(raw, "encounter_id").alias("encounter_id"),
        as_id_string(raw, "patient_nbr").alias("patient_nbr"),
        midpoint.cast("int").alias("age_midpoint"),
        *[as_long(raw, name).alias(name) for name in COUNT_COLUMNS],
        *[_text(name).alias(name) for name in TEXT_COLUMNS],
        _text("race").alias("race_raw"),
        row_text(raw, COMPARED_COLUMNS).alias(ROW_TEXT),
    )


def stage_encounters(parsed: DataFrame) -> DataFrame:
    """Parsed rows -> one row per input row with status and reason (exact copies: keep one)."""
    marked = mark_copies(parsed, "encounter_id")
    out_of_contract = (
        F.col("age_midpoint").isNull()
        | ~F.coalesce(F.col("readmitted").isin(*READMITTED_VALUES), F.lit(False))
        | lookup(UCI_HBA1C, F.col("a1cresult")).isNull()
        | lookup(UCI_GLUCOSE, F.col("max_glu_serum")).isNull()
    )
    for column, target in COUNT_COLUMNS.items():
        out_of_contract = out_of_contract | _out_of_range(column, target)
    disposition = F.col("discharge_disposition_id")
    quarantine_checks = [
        (F.col("encounter_id").isNull() | F.col("patient_nbr").isNull(), cohort.MISSING_KEY),
        (F.col(CONFLICTING), cohort.CONFLICTING_DUPLICATE),
        (out_of_contract, cohort.OUT_OF_CONTRACT),
    ]
    exclusion_checks = [
        (
            lookup(UCI_EXCLUDED_DISPOSITIONS, disposition) == cohort.IN_HOSPITAL_DEATH,
            cohort.IN_HOSPITAL_DEATH,
        ),
        (
            lookup(UCI_EXCLUDED_DISPOSITIONS, disposition) == cohort.DISCHARGED_TO_HOSPICE,
            cohort.DISCHARGED_TO_HOSPICE,
        ),
        (F.col("admission_type_id") == UCI_NEWBORN_ADMISSION_TYPE_ID, cohort.NEWBORN),
    ]
    outcome = cohort.with_outcome(
        marked, quarantine_checks, exclusion_checks, extra_copy=F.col(EXTRA_COPY)
    )
    return outcome.drop(CONFLICTING, EXTRA_COPY, ROW_TEXT)


def add_history(staged: DataFrame) -> DataFrame:
    """Add the patient's earlier encounters in the extract and how many led to a readmission.

    Runs over the kept and excluded rows (a hospice discharge is still an earlier encounter);
    quarantined rows and dropped copies form their own partition and get nulls.
    """
    in_history = cohort.in_timeline()
    earlier = (
        Window.partitionBy("patient_nbr", "_in_history")
        .orderBy(F.col("encounter_id").cast("long"))
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    readmitted = (F.col("readmitted") == READMITTED_WITHIN_30_DAYS).cast("int")
    flagged = staged.withColumn("_in_history", in_history)
    return flagged.select(
        "*",
        F.when(in_history, F.count(F.lit(1)).over(earlier))
        .cast("int")
        .alias("prior_encounters_on_record"),
        F.when(in_history, F.coalesce(F.sum(readmitted).over(earlier), F.lit(0)))
        .cast("int")
        .alias("prior_readmissions_30d_on_record"),
    ).drop("_in_history")


def _present(values: list[Column]) -> Column:
    return F.filter(F.array(*values), lambda value: value.isNotNull())


def add_features(staged: DataFrame) -> DataFrame:
    """Staged rows -> contract features (valid on kept rows) and unmapped-value flags."""
    mappings = {
        "sex": (UCI_GENDER, "gender"),
        "admission_type": (UCI_ADMISSION_TYPE, "admission_type_id"),
        "admission_source": (UCI_ADMISSION_SOURCE, "admission_source_id"),
        "discharge_disposition": (UCI_DISCHARGE_DISPOSITION, "discharge_disposition_id"),
        "race": (UCI_RACE, "race_raw"),
    }
    categories: list[Column] = []
    for target, (mapping, source) in mappings.items():
        categories.append(map_category(mapping, F.col(source)).alias(target))
        categories.append(
            lookup(mapping, F.col(source)).isNull().alias(f"{cohort.UNMAPPED_PREFIX}{target}")
        )
    hba1c = lookup(UCI_HBA1C, F.col("a1cresult"))
    glucose = lookup(UCI_GLUCOSE, F.col("max_glu_serum"))
    abnormal = _present(
        [
            F.when(hba1c.isin(*ABNORMAL_HBA1C), F.lit("hba1c")),
            F.when(glucose.isin(*ABNORMAL_GLUCOSE), F.lit("glucose")),
        ]
    )
    specialty = F.col("medical_specialty")
    return staged.select(
        "*",
        *categories,
        F.least(F.col("age_midpoint"), F.lit(AGE_CAP_YEARS)).alias("age_years"),
        F.when((specialty != MISSING) & (F.length(specialty) > 0), F.lower(specialty)).alias(
            "admitting_service"
        ),
        F.col("time_in_hospital").cast("double").alias("length_of_stay_days"),
        F.col("number_inpatient").alias("prior_admissions_12m"),
        F.col("number_emergency").alias("prior_ed_visits_12m"),
        F.col("number_outpatient").alias("prior_outpatient_visits_12m"),
        F.lit(None).cast("double").alias("days_since_last_discharge"),
        F.col("number_diagnoses").alias("num_diagnoses"),
        F.col("num_lab_procedures").alias("num_lab_tests"),
        F.size(abnormal).alias("num_abnormal_labs"),
        hba1c.alias("hba1c_result"),
        glucose.alias("max_glucose_result"),
        diagnosis_codes().alias("diagnosis_codes"),
        charlson_index(diagnosis_codes()).alias("charlson_index"),
        F.array().cast("array<string>").alias("procedure_codes"),
        _present(
            [F.when(F.col(d).isin(*ACTIVE_DRUG_VALUES), F.lit(d)) for d in DRUG_COLUMNS]
        ).alias("medications"),
        # The extract names its 23 drugs by column and codes none of them.
        F.array().cast("array<string>").alias("medication_codes"),
        abnormal.alias("abnormal_labs"),
        F.lit(None).cast("string").alias("note_text"),
        (F.col("readmitted") == READMITTED_WITHIN_30_DAYS).cast("int").alias("readmitted_30d"),
        F.col("readmitted").isin(*READMITTED_ANY).cast("int").alias("readmitted_any"),
        F.lit(SOURCE_NAME).alias("source"),
    )


def diagnosis_codes() -> Column:
    """diag_1..diag_3 tagged ICD-9-CM (``icd9cm:25083``), ``?`` and blanks dropped, in coded
    order (the extract predates ICD-10: every code is ICD-9-CM)."""
    return _present(
        [
            F.when(F.col(d) != MISSING, tagged(CodeSystem.ICD9CM, F.col(d)))
            for d in DIAGNOSIS_COLUMNS
        ]
    )


def build(raw: DataFrame, deid_key: str) -> cohort.SourceFrames:
    """Return staged encounters (persisted: counted and written) and the three outputs."""
    staged = add_keys(
        add_features(add_history(stage_encounters(parse_encounters(raw)))),
        deid_key,
        "patient_nbr",
        "encounter_id",
    ).persist(StorageLevel.MEMORY_AND_DISK)
    kept = staged.where(F.col("status") == cohort.STATUS_OK)
    return cohort.SourceFrames(
        staged=staged,
        features=kept,
        protected=kept.select("encounter_key", "race", "split"),
        quarantine=cohort.quarantine_rows(staged, INPUT_TABLE),
        input_table=INPUT_TABLE,
        record_source=SOURCE_NAME,
        persisted=[staged],
    )
