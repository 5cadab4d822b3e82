"""MIMIC-III admissions: typing, validation, cohort rules, prior utilisation and the label.

Every ADMISSIONS row leaves ``stage_admissions`` exactly once with a status: an exact copy of
another row with the same ``hadm_id`` is dropped (its first copy goes on), rows that share an
id but disagree are all quarantined (``glue_jobs.copies``). The timeline (prior utilisation,
days since the last discharge, the label) is computed over the patient's kept and excluded
admissions: a readmission that ends in death is still a readmission of the admission before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.encounter import (
    AGE_CAP_YEARS,
    PRIOR_UTILISATION_WINDOW_DAYS,
    READMISSION_WINDOW_DAYS,
    field,
)
from glue_jobs import cohort
from glue_jobs.copies import (
    CONFLICTING,
    EXTRA_COPY,
    ROW_TEXT,
    ROWS,
    VARIANTS,
    group_by_key,
    mark_copies,
    row_text,
)
from glue_jobs.mappings import (
    MIMIC_ADMISSION_LOCATION,
    MIMIC_ADMISSION_TYPE,
    MIMIC_DISCHARGE_LOCATION,
    MIMIC_ETHNICITY,
    MIMIC_GENDER,
    MIMIC_NEWBORN_ADMISSION_TYPE,
    MIMIC_PLANNED_ADMISSION_TYPES,
    lookup,
    map_category,
)
from glue_jobs.parsing import (
    SECONDS_PER_DAY,
    as_id_string,
    as_long,
    as_timestamp,
    days_between,
    is_bad,
)
from glue_jobs.readers import MIMIC_COLUMNS

MONTHS_PER_YEAR = 12
_MAX_LENGTH_OF_STAY_DAYS = field("length_of_stay_days").valid_max
_TEXT_COLUMNS = ("admission_type", "admission_location", "discharge_location", "ethnicity")
#: Compared to tell copies from disagreeing rows: every column read but the id itself.
ADMISSION_COMPARED = tuple(c for c in MIMIC_COLUMNS["ADMISSIONS"] if c != "hadm_id")
PATIENT_COMPARED = tuple(c for c in MIMIC_COLUMNS["PATIENTS"] if c != "subject_id")
#: A patient's number of PATIENTS rows and of distinct ones (``copies.group_by_key``).
PATIENT_ROWS = "_patient_rows"
PATIENT_VARIANTS = "_patient_variants"
#: Set by each source's parser: the admission is a birth (excluded from the cohort).
IS_NEWBORN = "_is_newborn"


@dataclass(frozen=True)
class Vocabulary:
    """A source's category tables (raw value -> contract category) and planned types.

    The staging, timeline and label rules are the same for every source; only the values
    differ (MIMIC-III ``EMERGENCY``, MIMIC-IV ``EW EMER.``, FHIR ``EM``).
    """

    admission_type: Mapping[str, str]
    admission_location: Mapping[str, str]
    discharge_location: Mapping[str, str]
    gender: Mapping[str, str]
    ethnicity: Mapping[str, str]
    planned_admission_types: tuple[str, ...]


MIMIC3_VOCABULARY = Vocabulary(
    admission_type=MIMIC_ADMISSION_TYPE,
    admission_location=MIMIC_ADMISSION_LOCATION,
    discharge_location=MIMIC_DISCHARGE_LOCATION,
    gender=MIMIC_GENDER,
    ethnicity=MIMIC_ETHNICITY,
    planned_admission_types=MIMIC_PLANNED_ADMISSION_TYPES,
)


def _clean_text(name: str) -> Column:
    return F.upper(F.trim(F.col(name)))


def parse_admissions(raw: DataFrame) -> DataFrame:
    """Raw ADMISSIONS -> typed keys and times, upper-cased category text, parse-failure flags."""
    return raw.select(
        as_id_string(raw, "subject_id").alias("subject_id"),
        as_id_string(raw, "hadm_id").alias("hadm_id"),
        as_timestamp(raw, "admittime").alias("admit_ts"),
        as_timestamp(raw, "dischtime").alias("disch_ts"),
        as_timestamp(raw, "edregtime").alias("edreg_ts"),
        *[_clean_text(name).alias(name) for name in _TEXT_COLUMNS],
        as_long(raw, "hospital_expire_flag").alias("hospital_expire_flag"),
        is_bad(F.col("edregtime"), as_timestamp(raw, "edregtime")).alias("_bad_edregtime"),
        (_clean_text("admission_type") == MIMIC_NEWBORN_ADMISSION_TYPE).alias(IS_NEWBORN),
        row_text(raw, ADMISSION_COMPARED).alias(ROW_TEXT),
    )


def parse_patients(raw: DataFrame) -> DataFrame:
    """Raw PATIENTS -> one row per subject_id (rows without one: a single null row) with sex,
    dob, its number of rows and of distinct ones (copies of one row are one patient)."""
    typed = raw.select(
        as_id_string(raw, "subject_id").alias("subject_id"),
        F.upper(F.trim(F.col("gender"))).alias("gender"),
        as_timestamp(raw, "dob").alias("dob_ts"),
        row_text(raw, PATIENT_COMPARED).alias(ROW_TEXT),
    )
    grouped = group_by_key(
        typed, "subject_id", F.min("gender").alias("gender"), F.min("dob_ts").alias("dob_ts")
    )
    return grouped.select(
        "subject_id",
        F.col(ROWS).alias(PATIENT_ROWS),
        F.col(VARIANTS).alias(PATIENT_VARIANTS),
        "gender",
        "dob_ts",
    )


def stage_admissions(
    admissions: DataFrame,
    patients: DataFrame,
    early_checks: Sequence[tuple[Column, str, str]] = (),
) -> DataFrame:
    """Parsed admissions + parsed patients -> one row per admission row with status and reason.

    ``early_checks``: a source's own checks that come first (``cohort.with_outcome``)."""
    joined = mark_copies(admissions, "hadm_id").join(patients, on="subject_id", how="left")
    age = F.floor(F.months_between(F.col("admit_ts"), F.col("dob_ts")) / MONTHS_PER_YEAR)
    los = days_between(F.col("disch_ts"), F.col("admit_ts"))
    staged = joined.select(
        "*",
        F.least(age, F.lit(AGE_CAP_YEARS)).cast("int").alias("age_years"),
        los.alias("length_of_stay_days"),
    )
    quarantine_checks = [
        (F.col("subject_id").isNull() | F.col("hadm_id").isNull(), cohort.MISSING_KEY),
        (F.col(CONFLICTING), cohort.CONFLICTING_DUPLICATE),
        (
            F.col("admit_ts").isNull() | F.col("disch_ts").isNull() | F.col("_bad_edregtime"),
            cohort.UNPARSEABLE_DATE,
        ),
        (F.col(PATIENT_ROWS).isNull(), cohort.UNKNOWN_PATIENT),
        (F.col(PATIENT_VARIANTS) > 1, cohort.CONFLICTING_PATIENT),
        (F.col("dob_ts").isNull(), cohort.UNPARSEABLE_DATE),
        (F.col("disch_ts") < F.col("admit_ts"), cohort.DISCHARGE_BEFORE_ADMISSION),
        (
            (F.col("length_of_stay_days") > F.lit(_MAX_LENGTH_OF_STAY_DAYS))
            | (F.col("age_years") < 0)
            | ~F.coalesce(F.col("hospital_expire_flag").isin(0, 1), F.lit(False)),
            cohort.OUT_OF_CONTRACT,
        ),
    ]
    exclusion_checks = [
        (F.col("hospital_expire_flag") == 1, cohort.IN_HOSPITAL_DEATH),
        (F.col(IS_NEWBORN), cohort.NEWBORN),
    ]
    outcome = cohort.with_outcome(
        staged,
        quarantine_checks,
        exclusion_checks,
        extra_copy=F.col(EXTRA_COPY),
        early_checks=early_checks,
    )
    return outcome.drop(
        CONFLICTING,
        EXTRA_COPY,
        ROW_TEXT,
        PATIENT_ROWS,
        PATIENT_VARIANTS,
        "_bad_edregtime",
        IS_NEWBORN,
    )


def add_timeline(staged: DataFrame, vocabulary: Vocabulary = MIMIC3_VOCABULARY) -> DataFrame:
    """Add prior utilisation, days since the last discharge, the record's history and the labels.

    ``readmitted_30d`` is 1 when the next admission is unplanned and starts 0-30 days after
    discharge; ``readmitted_any`` (the auxiliary training target) when it is unplanned at all.

    ``prior_encounters_on_record`` counts every earlier admission of the patient and
    ``prior_readmissions_30d_on_record`` those of them whose own label is 1: known by this
    admission's discharge, since the latest such readmission is at the latest this admission.

    Windows run per patient over the kept and excluded admissions (quarantined rows and
    dropped copies form their own partitions and their values are never used).
    """
    with_seconds = staged.select(
        "*",
        cohort.in_timeline().alias("_in_timeline"),
        F.unix_timestamp(F.col("admit_ts")).alias("_admit_s"),
        F.unix_timestamp(F.col("disch_ts")).alias("_disch_s"),
    )
    patient = Window.partitionBy("subject_id", "_in_timeline")
    ordered = patient.orderBy("_admit_s", "hadm_id")
    look_back = patient.orderBy("_admit_s").rangeBetween(
        -PRIOR_UTILISATION_WINDOW_DAYS * SECONDS_PER_DAY, -1
    )
    next_gap = F.lead("_admit_s").over(ordered) - F.col("_disch_s")
    next_type = F.lead("admission_type").over(ordered)
    next_unplanned = ~F.coalesce(next_type, F.lit("")).isin(*vocabulary.planned_admission_types)
    readmitted = next_gap.between(0, READMISSION_WINDOW_DAYS * SECONDS_PER_DAY) & next_unplanned
    readmitted_any = (next_gap >= 0) & next_unplanned
    since_last = (F.col("_admit_s") - F.lag("_disch_s").over(ordered)) / F.lit(SECONDS_PER_DAY)
    earlier = ordered.rowsBetween(Window.unboundedPreceding, -1)
    labelled = with_seconds.select(
        "*",
        F.count(F.lit(1)).over(look_back).cast("int").alias("prior_admissions_12m"),
        F.count(F.col("edreg_ts")).over(look_back).cast("int").alias("prior_ed_visits_12m"),
        F.when(since_last.isNotNull(), F.greatest(since_last, F.lit(0.0))).alias(
            "days_since_last_discharge"
        ),
        F.coalesce(readmitted, F.lit(False)).cast("int").alias("readmitted_30d"),
        F.coalesce(readmitted_any, F.lit(False)).cast("int").alias("readmitted_any"),
    )
    return labelled.select(
        "*",
        F.count(F.lit(1)).over(earlier).cast("int").alias("prior_encounters_on_record"),
        F.coalesce(F.sum("readmitted_30d").over(earlier), F.lit(0))
        .cast("int")
        .alias("prior_readmissions_30d_on_record"),
    ).drop("_in_timeline", "_admit_s", "_disch_s")


def add_categories(staged: DataFrame, vocabulary: Vocabulary = MIMIC3_VOCABULARY) -> DataFrame:
    """Map the source vocabularies to the contract's categories and flag unmapped values."""
    mappings = {
        "admission_type": (vocabulary.admission_type, "admission_type_raw"),
        "admission_source": (vocabulary.admission_location, "admission_location"),
        "discharge_disposition": (vocabulary.discharge_location, "discharge_location"),
        "sex": (vocabulary.gender, "gender"),
        "race": (vocabulary.ethnicity, "ethnicity"),
    }
    # Renamed first: a new column named like an input column must not shadow it.
    renamed = staged.withColumnRenamed("admission_type", "admission_type_raw")
    columns = [F.col(c) for c in renamed.columns]
    for target, (mapping, source) in mappings.items():
        columns.append(map_category(mapping, F.col(source)).alias(target))
        columns.append(
            lookup(mapping, F.col(source)).isNull().alias(f"{cohort.UNMAPPED_PREFIX}{target}")
        )
    return renamed.select(*columns)
