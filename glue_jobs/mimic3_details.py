"""Per-admission aggregates of the MIMIC-III child tables, each keyed by ``hadm_id``.

Each typing function keeps every row, with ``_has_value`` (the row holds what the job reads:
an ICD-9 code, a drug, a service, a discharge summary) and ``_row_text``. Exact copies are
collapsed before aggregating (``copies.distinct_rows``), so a row written twice is counted
once, and each aggregate carries its row counts (``accounting.child_row_counts``): rows
without an admission id (outpatient labs), orphans and rows without a value are counted in
the manifest, never used. The aggregate of the rows without an admission id has a null key.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import CodeSystem
from glue_jobs.accounting import COUNT_COLUMNS, child_row_counts
from glue_jobs.codes import tagged
from glue_jobs.copies import (
    HAS_VALUE,
    ROW_ID,
    ROW_TEXT,
    UNKNOWN_SYSTEM,
    VARIANTS,
    distinct_rows,
    group_by_key,
    row_text,
)
from glue_jobs.parsing import as_double, as_id_string, as_long, as_timestamp

HBA1C_ITEM_ID = 50852
GLUCOSE_ITEM_ID = 50931
ABNORMAL_FLAG = "abnormal"
DISCHARGE_SUMMARY_CATEGORY = "discharge summary"
NOTE_ERROR_FLAG = "1"

HBA1C_ABOVE_8 = 8.0
HBA1C_ABOVE_7 = 7.0
GLUCOSE_ABOVE_300 = 300.0
GLUCOSE_ABOVE_200 = 200.0

#: Compared to tell copies from distinct rows: every column read but ``hadm_id``, and row_id.
ICD9_COMPARED = ("seq_num", "icd9_code", ROW_ID)
PRESCRIPTION_COMPARED = ("startdate", "drug", "ndc", "medication_code", ROW_ID)
NDC_PATTERN = r"^\d{11}$"
LAB_COMPARED = ("itemid", "charttime", "valuenum", "flag", ROW_ID)
SERVICE_COMPARED = ("transfertime", "curr_service", ROW_ID)
NOTE_COMPARED = (ROW_ID, "chartdate", "charttime", "category", "iserror", "text")
LABITEM_COMPARED = ("label",)


def _has(value: Column) -> Column:
    """Never-null flag: the value is there."""
    return F.coalesce(value, F.lit(False)).alias(HAS_VALUE)


def _ordered_values(order: Column, value: Column) -> Column:
    """Aggregate over rows with a value: values sorted by ``order`` (nulls last), then by value."""
    item = F.struct(order.isNull(), order, value)
    return F.array_sort(F.collect_list(F.when(F.col(HAS_VALUE), item)))


def coded_icd9(table: DataFrame, system: CodeSystem) -> DataFrame:
    """DIAGNOSES_ICD or PROCEDURES_ICD -> (hadm_id, seq_num, code), codes normalised and
    tagged with ``system`` (MIMIC-III is all ICD-9-CM: diagnoses and volume 3 procedures)."""
    code = tagged(system, F.col("icd9_code"))
    return table.select(
        as_id_string(table, "hadm_id").alias("hadm_id"),
        as_long(table, "seq_num").alias("seq_num"),
        code.alias("code"),
        _has(code.isNotNull()),
        row_text(table, ICD9_COMPARED).alias(ROW_TEXT),
    )


def code_sequences(coded: DataFrame, codes_name: str, count_name: str) -> DataFrame:
    """(hadm_id, seq_num, code) -> (hadm_id, codes in seq_num order, number of codes).

    A source whose codes may name an unknown system marks those rows ``_unknown_system``
    (counted apart, never used)."""
    counts = child_row_counts(coded=UNKNOWN_SYSTEM in coded.columns)
    grouped = (
        distinct_rows(coded, "hadm_id")
        .groupBy("hadm_id")
        .agg(_ordered_values(F.col("seq_num"), F.col("code")).alias("_codes"), *counts)
    )
    return grouped.select(
        "hadm_id",
        F.col("_codes.code").alias(codes_name),
        F.size("_codes").cast("int").alias(count_name),
        *COUNT_COLUMNS,
    )


def procedure_features(procedures: DataFrame) -> DataFrame:
    """PROCEDURES_ICD -> (hadm_id, procedure_codes, num_procedures)."""
    return code_sequences(
        coded_icd9(procedures, CodeSystem.ICD9PCS), "procedure_codes", "num_procedures"
    )


def _first_occurrences(ordered: Column, field: str) -> Column:
    """Distinct values of ``field`` from structs sorted by time: each at its first time."""
    return F.array_distinct(F.transform(F.array_sort(ordered), lambda item: item[field]))


def admission_id(df: DataFrame, text_ids: bool) -> Column:
    """The admission id: MIMIC's integer ids in canonical text, or (``text_ids``, FHIR) the
    id text as it is, trimmed (an empty id is null)."""
    if not text_ids:
        return as_id_string(df, "hadm_id")
    trimmed = F.trim(F.col("hadm_id").cast("string"))
    return F.when(F.length(trimmed) > 0, trimmed)


def ndc_code(ndc: Column) -> Column:
    """``ndc:<11 digits>`` from an NDC column (hyphens and spaces removed); null where it is
    not 11 digits (MIMIC writes ``0`` for a drug without one)."""
    digits = F.regexp_replace(F.trim(ndc.cast("string")), r"[-\s]", "")
    return F.when(digits.rlike(NDC_PATTERN), tagged(CodeSystem.NDC, digits))


def medication_code(prescriptions: DataFrame) -> Column:
    """The row's tagged drug code: a source's own ``medication_code`` (FHIR: NDC or RxNorm),
    else its ``ndc`` column (MIMIC), else none."""
    if "medication_code" in prescriptions.columns:
        return F.col("medication_code")
    if "ndc" in prescriptions.columns:
        return ndc_code(F.col("ndc"))
    return F.lit(None).cast("string")


def medication_features(prescriptions: DataFrame, text_ids: bool = False) -> DataFrame:
    """PRESCRIPTIONS -> (hadm_id, distinct lower-case drugs by first start, their number, the
    distinct tagged codes of those prescriptions by first start)."""
    drug = F.lower(F.trim(F.col("drug")))
    drugs = prescriptions.select(
        admission_id(prescriptions, text_ids).alias("hadm_id"),
        as_timestamp(prescriptions, "startdate").alias("startdate"),
        drug.alias("drug"),
        medication_code(prescriptions).alias("medication_code"),
        _has(F.length(drug) > 0),
        row_text(prescriptions, PRESCRIPTION_COMPARED).alias(ROW_TEXT),
    )
    item = F.struct(
        F.col("startdate").isNull(), F.col("startdate"), F.col("drug"), F.col("medication_code")
    )
    grouped = (
        distinct_rows(drugs, "hadm_id")
        .groupBy("hadm_id")
        .agg(F.collect_list(F.when(F.col(HAS_VALUE), item)).alias("_drugs"), *child_row_counts())
    )
    medications = _first_occurrences(F.col("_drugs"), "drug")
    codes = F.array_compact(_first_occurrences(F.col("_drugs"), "medication_code"))
    return grouped.select(
        "hadm_id",
        medications.alias("medications"),
        F.size(medications).cast("int").alias("num_medications"),
        codes.alias("medication_codes"),
        *COUNT_COLUMNS,
    )


def typed_labs(labevents: DataFrame) -> DataFrame:
    """LABEVENTS -> (hadm_id, itemid, charttime, valuenum, abnormal); every row is a test."""
    return labevents.select(
        as_id_string(labevents, "hadm_id").alias("hadm_id"),
        as_long(labevents, "itemid").alias("itemid"),
        as_timestamp(labevents, "charttime").alias("charttime"),
        as_double(labevents, "valuenum").alias("valuenum"),
        F.coalesce(F.lower(F.trim(F.col("flag"))) == ABNORMAL_FLAG, F.lit(False)).alias("abnormal"),
        _has(F.lit(True)),
        row_text(labevents, LAB_COMPARED).alias(ROW_TEXT),
    )


def hba1c_band(value: Column) -> Column:
    """Highest HbA1c (%) -> contract band; no value -> not_measured."""
    return (
        F.when(value.isNull(), F.lit("not_measured"))
        .when(value > HBA1C_ABOVE_8, F.lit("above_8"))
        .when(value > HBA1C_ABOVE_7, F.lit("above_7"))
        .when(value <= HBA1C_ABOVE_7, F.lit("normal"))
    )


def glucose_band(value: Column) -> Column:
    """Highest glucose (mg/dL) -> contract band; no value -> not_measured."""
    return (
        F.when(value.isNull(), F.lit("not_measured"))
        .when(value > GLUCOSE_ABOVE_300, F.lit("above_300"))
        .when(value > GLUCOSE_ABOVE_200, F.lit("above_200"))
        .when(value <= GLUCOSE_ABOVE_200, F.lit("normal"))
    )


def lab_names(labitems: DataFrame) -> DataFrame:
    """D_LABITEMS -> one row per itemid: its lower-case label (null where the id's rows
    disagree or the label is empty), ``_rows`` and ``_variants``."""
    typed = labitems.select(
        as_long(labitems, "itemid").alias("itemid"),
        F.lower(F.trim(F.col("label"))).alias("label"),
        row_text(labitems, LABITEM_COMPARED).alias(ROW_TEXT),
    )
    grouped = group_by_key(typed, "itemid", F.min("label").alias("_label"))
    agreed = (F.col(VARIANTS) == 1) & (F.length("_label") > 0)
    return grouped.select("*", F.when(agreed, F.col("_label")).alias("label")).drop("_label")


def lab_features(labs: DataFrame, labitems: DataFrame) -> DataFrame:
    """Typed labs + D_LABITEMS -> (hadm_id, num_lab_tests, num_abnormal_labs, hba1c_result,
    max_glucose_result, abnormal_labs) in one aggregation over the largest table.

    ``abnormal_labs``: distinct lower-case labels in order of their first abnormal result.
    """
    names = lab_names(labitems).where(F.col("label").isNotNull()).select("itemid", "label")
    named = distinct_rows(labs, "hadm_id").join(F.broadcast(names), on="itemid", how="left")
    abnormal_named = F.col("abnormal") & F.col("label").isNotNull()
    time = F.col("charttime")
    grouped = named.groupBy("hadm_id").agg(
        F.count(F.lit(1)).cast("int").alias("num_lab_tests"),
        F.sum(F.col("abnormal").cast("int")).cast("int").alias("num_abnormal_labs"),
        F.max(F.when(F.col("itemid") == HBA1C_ITEM_ID, F.col("valuenum"))).alias("_hba1c"),
        F.max(F.when(F.col("itemid") == GLUCOSE_ITEM_ID, F.col("valuenum"))).alias("_glucose"),
        F.collect_list(F.when(abnormal_named, F.struct(time.isNull(), time, F.col("label")))).alias(
            "_abnormal"
        ),
        *child_row_counts(),
    )
    return grouped.select(
        "hadm_id",
        "num_lab_tests",
        "num_abnormal_labs",
        hba1c_band(F.col("_hba1c")).alias("hba1c_result"),
        glucose_band(F.col("_glucose")).alias("max_glucose_result"),
        _first_occurrences(F.col("_abnormal"), "label").alias("abnormal_labs"),
        *COUNT_COLUMNS,
    )


def service_features(services: DataFrame) -> DataFrame:
    """SERVICES -> (hadm_id, first curr_service in lower case)."""
    service = F.lower(F.trim(F.col("curr_service")))
    typed = services.select(
        as_id_string(services, "hadm_id").alias("hadm_id"),
        as_timestamp(services, "transfertime").alias("transfertime"),
        service.alias("service"),
        _has(F.length(service) > 0),
        row_text(services, SERVICE_COMPARED).alias(ROW_TEXT),
    )
    item = F.struct(F.col("transfertime").isNull(), "transfertime", "service")
    first = (
        distinct_rows(typed, "hadm_id")
        .groupBy("hadm_id")
        .agg(F.min(F.when(F.col(HAS_VALUE), item)).alias("_s"), *child_row_counts())
    )
    return first.select("hadm_id", F.col("_s.service").alias("admitting_service"), *COUNT_COLUMNS)


def note_features(notes: DataFrame, text_ids: bool = False) -> DataFrame:
    """NOTEEVENTS -> (hadm_id, text of the latest discharge summary not marked in error)."""
    selected = (
        (F.lower(F.trim(F.col("category"))) == DISCHARGE_SUMMARY_CATEGORY)
        & (F.coalesce(F.trim(F.col("iserror").cast("string")), F.lit("")) != NOTE_ERROR_FLAG)
        & (F.length("text") > 0)
    )
    summaries = notes.select(
        admission_id(notes, text_ids).alias("hadm_id"),
        as_timestamp(notes, "chartdate").alias("chartdate"),
        as_timestamp(notes, "charttime").alias("charttime"),
        as_long(notes, "row_id").alias("row_id"),
        F.col("text").cast("string").alias("text"),
        _has(selected),
        row_text(notes, NOTE_COMPARED, untrimmed=("text",)).alias(ROW_TEXT),
    )
    item = F.struct("chartdate", "charttime", "row_id", "text")
    latest = (
        distinct_rows(summaries, "hadm_id")
        .groupBy("hadm_id")
        .agg(F.max(F.when(F.col(HAS_VALUE), item)).alias("_n"), *child_row_counts())
    )
    return latest.select("hadm_id", F.col("_n.text").alias("note_text"), *COUNT_COLUMNS)
