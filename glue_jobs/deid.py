"""De-identification inside Spark: HMAC-SHA256 from built-ins, the patient-level split, the key.

The hash equals ``contracts.deidentify.keyed_hash`` bit for bit, so the ETL, the prediction
API and training agree on every key, while hashing stays in the JVM (no Python UDF).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.deidentify import (
    DEMO_DEIDENTIFICATION_KEY,
    ENCOUNTER_NAMESPACE,
    PATIENT_NAMESPACE,
    SPLIT_BUCKETS,
    SPLIT_PREFIX_HEX_CHARS,
    TRAIN_BUCKETS,
    VALIDATION_BUCKETS,
    hmac_pads,
)

LOGGER = logging.getLogger(__name__)

#: Environment variable holding the key for local runs.
DEID_KEY_ENV = "READMISSION_DEID_KEY"

SHA256_BITS = 256


def keyed_hash_column(value: Column, key: str, namespace: str) -> Column:
    """Return hex HMAC-SHA256(key, ``namespace:value``) of a string column; null stays null.

    HMAC(K, m) = sha256(outer_pad || sha256(inner_pad || m)) with the RFC 2104 pads.
    """
    inner_pad, outer_pad = hmac_pads(key)
    message = F.concat(F.lit(f"{namespace}:"), value.cast("string")).cast("binary")
    inner_digest = F.unhex(F.sha2(F.concat(F.lit(inner_pad), message), SHA256_BITS))
    return F.sha2(F.concat(F.lit(outer_pad), inner_digest), SHA256_BITS)


def split_column(patient_key: Column) -> Column:
    """Return train/validation/test from a hashed patient key, as split_for_patient_key does."""
    prefix = F.substring(patient_key, 1, SPLIT_PREFIX_HEX_CHARS)
    bucket = F.conv(prefix, 16, 10).cast("long") % F.lit(SPLIT_BUCKETS)
    return (
        F.when(bucket < TRAIN_BUCKETS, F.lit("train"))
        .when(bucket < TRAIN_BUCKETS + VALIDATION_BUCKETS, F.lit("validation"))
        .when(bucket < SPLIT_BUCKETS, F.lit("test"))
    )


def resolve_deid_key(option: str | None, environ: dict[str, str] | None = None) -> str:
    """Return the key: the option, else ``READMISSION_DEID_KEY``, else the documented demo key."""
    env = os.environ if environ is None else environ
    if option:
        return option
    from_env = env.get(DEID_KEY_ENV, "")
    if from_env:
        return from_env
    LOGGER.warning(
        "De-identification uses the public demo key: outputs are NOT protected. "
        "Pass --deid-key or set %s for real data.",
        DEID_KEY_ENV,
    )
    return DEMO_DEIDENTIFICATION_KEY


def read_deid_key_from_secrets_manager(secrets_client: Any, secret_id: str) -> str:
    """Return the key stored as the secret's string value (the Glue job's source of the key)."""
    response = secrets_client.get_secret_value(SecretId=secret_id)
    secret = response.get("SecretString")
    if not secret:
        raise ValueError("deid_secret_id: the secret has no SecretString value")
    return str(secret)


def add_keys(df: DataFrame, key: str, patient_id: str, encounter_id: str) -> DataFrame:
    """Add ``patient_key``, ``encounter_key`` and ``split`` from the raw identifier columns."""
    patient_key = keyed_hash_column(F.col(patient_id), key, PATIENT_NAMESPACE)
    return df.withColumn("patient_key", patient_key).select(
        "*",
        keyed_hash_column(F.col(encounter_id), key, ENCOUNTER_NAMESPACE).alias("encounter_key"),
        split_column(F.col("patient_key")).alias("split"),
    )
