"""HMAC and split in Spark agree with the Python contract; key resolution and Secrets Manager."""

from __future__ import annotations

import logging

import boto3
import pytest
from moto import mock_aws
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.deidentify import DEMO_DEIDENTIFICATION_KEY, keyed_hash, split_for_patient_key
from glue_jobs.deid import (
    DEID_KEY_ENV,
    add_keys,
    keyed_hash_column,
    read_deid_key_from_secrets_manager,
    resolve_deid_key,
    split_column,
)
from tests.glue_jobs.conftest import first_row

pytestmark = pytest.mark.spark

KEYS = ["k", "test-deidentification-key", "x" * 64, "long-" * 30, "clé-ünïcode"]
VALUES = ["10006", "142345", "0", "8222157", "a b:c", "ü"]


@pytest.mark.parametrize("key", KEYS)
def test_spark_hmac_equals_python_keyed_hash(spark: SparkSession, key: str) -> None:
    frame = spark.createDataFrame([(v,) for v in VALUES], "value string")
    rows = frame.select(
        "value",
        keyed_hash_column(F.col("value"), key, "patient").alias("patient"),
        keyed_hash_column(F.col("value"), key, "encounter").alias("encounter"),
    ).collect()
    assert {r["value"]: r["patient"] for r in rows} == {
        v: keyed_hash(key, "patient", v) for v in VALUES
    }
    assert {r["value"]: r["encounter"] for r in rows} == {
        v: keyed_hash(key, "encounter", v) for v in VALUES
    }


def test_null_identifier_hashes_to_null(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(None,)], "value string")
    assert first_row(frame.select(keyed_hash_column(F.col("value"), "k", "patient")))[0] is None


def test_spark_split_agrees_with_python_on_many_keys(spark: SparkSession) -> None:
    keys = [keyed_hash("k", "patient", str(i)) for i in range(3000)]
    frame = spark.createDataFrame([(k,) for k in keys], "patient_key string")
    rows = frame.select("patient_key", split_column(F.col("patient_key")).alias("s")).collect()
    assert {r["patient_key"]: r["s"] for r in rows} == {k: split_for_patient_key(k) for k in keys}
    shares = {
        s: sum(r["s"] == s for r in rows) / len(rows) for s in ("train", "validation", "test")
    }
    assert 0.77 < shares["train"] < 0.83
    assert 0.08 < shares["validation"] < 0.12


def test_add_keys_hashes_both_identifiers_and_sets_split(spark: SparkSession) -> None:
    frame = spark.createDataFrame([("10006", "142345")], "subject_id string, hadm_id string")
    row = first_row(add_keys(frame, "k", "subject_id", "hadm_id"))
    assert row["patient_key"] == keyed_hash("k", "patient", "10006")
    assert row["encounter_key"] == keyed_hash("k", "encounter", "142345")
    assert row["split"] == split_for_patient_key(row["patient_key"])


def test_key_option_wins_over_environment() -> None:
    assert resolve_deid_key("opt", {DEID_KEY_ENV: "env"}) == "opt"
    assert resolve_deid_key(None, {DEID_KEY_ENV: "env"}) == "env"


def test_demo_key_is_the_fallback_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="glue_jobs.deid"):
        assert resolve_deid_key(None, {}) == DEMO_DEIDENTIFICATION_KEY
    assert "demo key" in caplog.text
    assert DEMO_DEIDENTIFICATION_KEY not in caplog.text


@mock_aws
def test_key_is_read_from_secrets_manager() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="readmission/deid-key", SecretString="s3cr3t-key")
    assert read_deid_key_from_secrets_manager(client, "readmission/deid-key") == "s3cr3t-key"


@mock_aws
def test_binary_only_secret_is_refused_without_echoing_it() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="binary", SecretBinary=b"\x00\x01")
    with pytest.raises(ValueError, match="deid_secret_id"):
        read_deid_key_from_secrets_manager(client, "binary")
