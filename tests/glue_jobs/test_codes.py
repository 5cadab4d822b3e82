"""The Spark tagging helpers agree with ``contracts.codes`` (the form the API and model read)."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import CodeSystem, parse
from contracts.fhir import MEDICATION_SYSTEMS, SYSTEM_NDC, SYSTEM_RXNORM
from glue_jobs.codes import tagged, tagged_by, with_legacy_tag

pytestmark = pytest.mark.spark

RAW = ["428.0", " v45.81 ", "e878.2", "I50.9", "", None]


def test_tagged_is_the_contract_form(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(c,) for c in RAW], "code string")
    row = frame.select(
        F.collect_list(tagged(CodeSystem.ICD9CM, F.col("code"))).alias("dx"),
        F.collect_list(tagged(CodeSystem.ICD10CM, F.col("code"))).alias("dx10"),
    ).first()
    assert row is not None
    assert row["dx"] == ["icd9cm:4280", "icd9cm:V4581", "icd9cm:E8782", "icd9cm:I509"]
    expected = [parse("diagnosis_codes", f"icd9cm:{c}", strict=False).tagged for c in RAW[:4]]
    assert row["dx"] == expected
    assert row["dx10"][-1] == "icd10cm:I509"


def test_tagged_by_names_the_system_of_each_row(spark: SparkSession) -> None:
    rows = [
        (SYSTEM_NDC, "12345-6789-01"),
        (SYSTEM_RXNORM, " 197361 "),
        ("http://snomed.info/sct", "42343007"),
        (None, "123"),
    ]
    frame = spark.createDataFrame(rows, "system string, code string")
    tagged_codes = [
        r[0]
        for r in frame.select(
            tagged_by(MEDICATION_SYSTEMS, F.col("system"), F.col("code"))
        ).collect()
    ]
    assert tagged_codes == ["ndc:12345678901", "rxnorm:197361", None, None]


def test_untagged_codes_are_read_as_icd9(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(["4280", "icd10cm:I509"],)], "codes array<string>")
    row = frame.select(with_legacy_tag("diagnosis_codes", F.col("codes")).alias("c")).first()
    assert row is not None
    assert row["c"] == ["icd9cm:4280", "icd10cm:I509"]
