"""Per-admission aggregates of the MIMIC-III child tables, each keyed by ``hadm_id``.

Child rows without an admission id (outpatient labs) or without a value are not part of any
admission and are ignored; the reconciliation of the manifest is over ADMISSIONS rows.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)

from glue_jobs.charlson import normalise_icd9
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


def _ordered_values(order: Column, value: Column) -> Column:
    """Aggregate: values sorted by ``order`` (nulls last), then by value for ties."""
    return F.array_sort(F.collect_list(F.struct(order.isNull(), order, value)))


def coded_icd9(table: DataFrame) -> DataFrame:
    """DIAGNOSES_ICD or PROCEDURES_ICD -> (hadm_id, seq_num, code), codes normalised."""
    return table.select(
        as_id_string(table, "hadm_id").alias("hadm_id"),
        as_long(table, "seq_num").alias("seq_num"),
        normalise_icd9(F.col("icd9_code").cast("string")).alias("code"),
    ).where(F.col("hadm_id").isNotNull() & F.col("code").isNotNull())


def code_sequences(coded: DataFrame, codes_name: str, count_name: str) -> DataFrame:
    """(hadm_id, seq_num, code) -> (hadm_id, codes in seq_num order, number of codes)."""
    grouped = coded.groupBy("hadm_id").agg(
        _ordered_values(F.col("seq_num"), F.col("code")).alias("_codes")
    )
    return grouped.select(
        "hadm_id",
        F.col("_codes.code").alias(codes_name),
        F.size("_codes").cast("int").alias(count_name),
    )


def procedure_features(procedures: DataFrame) -> DataFrame:
    """PROCEDURES_ICD -> (hadm_id, procedure_codes, num_procedures)."""
    return code_sequences(coded_icd9(procedures), "procedure_codes", "num_procedures")


def _first_occurrences(ordered: Column, field: str) -> Column:
    """Distinct values of ``field`` from structs sorted by time: each at its first time."""
    return F.array_distinct(F.transform(F.array_sort(ordered), lambda item: item[field]))


def medication_features(prescriptions: DataFrame) -> DataFrame:
    """PRESCRIPTIONS -> (hadm_id, distinct lower-case drugs by first start, their number)."""
    drugs = prescriptions.select(
        as_id_string(prescriptions, "hadm_id").alias("hadm_id"),
        as_timestamp(prescriptions, "startdate").alias("startdate"),
        F.lower(F.trim(F.col("drug"))).alias("drug"),
    ).where(F.col("hadm_id").isNotNull() & (F.length("drug") > 0))
    grouped = drugs.groupBy("hadm_id").agg(
        F.collect_list(
            F.struct(F.col("startdate").isNull(), F.col("startdate"), F.col("drug"))
        ).alias("_drugs")
    )
    medications = _first_occurrences(F.col("_drugs"), "drug")
    return grouped.select(
        "hadm_id",
        medications.alias("medications"),
        F.size(medications).cast("int").alias("num_medications"),
    )


def typed_labs(labevents: DataFrame) -> DataFrame:
    """LABEVENTS -> (hadm_id, itemid, charttime, valuenum, abnormal) for admission labs."""
    return labevents.select(
        as_id_string(labevents, "hadm_id").alias("hadm_id"),
        as_long(labevents, "itemid").alias("itemid"),
        as_timestamp(labevents, "charttime").alias("charttime"),
        as_double(labevents, "valuenum").alias("valuenum"),
        F.coalesce(F.lower(F.trim(F.col("flag"))) == ABNORMAL_FLAG, F.lit(False)).alias("abnormal"),
    ).where(F.col("hadm_id").isNotNull())


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


def lab_features(labs: DataFrame, labitems: DataFrame) -> DataFrame:
    """Typed labs + D_LABITEMS -> (hadm_id, num_lab_tests, num_abnormal_labs, hba1c_result,
    max_glucose_result, abnormal_labs) in one aggregation over the largest table.

    ``abnormal_labs``: distinct lower-case labels in order of their first abnormal result.
    """
    names = labitems.select(
        as_long(labitems, "itemid").alias("itemid"),
        F.lower(F.trim(F.col("label"))).alias("label"),
    ).where(F.col("itemid").isNotNull() & (F.length("label") > 0))
    named = labs.join(F.broadcast(names.dropDuplicates(["itemid"])), on="itemid", how="left")
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
    )
    return grouped.select(
        "hadm_id",
        "num_lab_tests",
        "num_abnormal_labs",
        hba1c_band(F.col("_hba1c")).alias("hba1c_result"),
        glucose_band(F.col("_glucose")).alias("max_glucose_result"),
        _first_occurrences(F.col("_abnormal"), "label").alias("abnormal_labs"),
    )


def service_features(services: DataFrame) -> DataFrame:
    """SERVICES -> (hadm_id, first curr_service in lower case)."""
    typed = services.select(
        as_id_string(services, "hadm_id").alias("hadm_id"),
        as_timestamp(services, "transfertime").alias("transfertime"),
        F.lower(F.trim(F.col("curr_service"))).alias("service"),
    ).where(F.col("hadm_id").isNotNull() & (F.length("service") > 0))
    first = typed.groupBy("hadm_id").agg(
        F.min(F.struct(F.col("transfertime").isNull(), "transfertime", "service")).alias("_s")
    )
    return first.select("hadm_id", F.col("_s.service").alias("admitting_service"))


def note_features(notes: DataFrame) -> DataFrame:
    """NOTEEVENTS -> (hadm_id, text of the latest discharge summary not marked in error)."""
    kept = notes.where(
        (F.lower(F.trim(F.col("category"))) == DISCHARGE_SUMMARY_CATEGORY)
        & (F.coalesce(F.trim(F.col("iserror").cast("string")), F.lit("")) != NOTE_ERROR_FLAG)
        & (F.length("text") > 0)
    )
    summaries = kept.select(
        as_id_string(kept, "hadm_id").alias("hadm_id"),
        as_timestamp(kept, "chartdate").alias("chartdate"),
        as_timestamp(kept, "charttime").alias("charttime"),
        as_long(kept, "row_id").alias("row_id"),
        F.col("text").cast("string").alias("text"),
    ).where(F.col("hadm_id").isNotNull())
    latest = summaries.groupBy("hadm_id").agg(
        F.max(F.struct("chartdate", "charttime", "row_id", "text")).alias("_n")
    )
    return latest.select("hadm_id", F.col("_n.text").alias("note_text"))
