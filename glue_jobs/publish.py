"""The job's outputs: contract-shaped features, protected attributes, quarantine, manifest.

Datasets are written under ``<output>/_staging-<run id>/`` and renamed into place; the old
``manifest.json`` is removed first and the new one written last, so a reader that finds a
manifest finds complete outputs. Re-running on the same input rewrites the same rows.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 (house style)
from pyspark.sql import types as T  # noqa: N812 (house style)

from contracts.encounter import ENCOUNTER_FIELDS, PROTECTED_FIELDS, FieldSpec
from contracts.etl_manifest import MANIFEST_FILE
from glue_jobs import storage

FEATURES_DIR = "features"
PROTECTED_DIR = "protected"
QUARANTINE_DIR = "quarantine"
PARTITION_COLUMN = "split"

#: Output files per dataset: a hash partitioning on encounter_key keeps row placement stable.
OUTPUT_FILE_PARTITIONS = 4

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("table", T.StringType(), nullable=False),
        T.StructField("reason", T.StringType(), nullable=False),
        T.StructField("patient_key", T.StringType()),
        T.StructField("encounter_key", T.StringType()),
    ]
)

_SPARK_TYPES: dict[str, T.DataType] = {
    "int": T.IntegerType(),
    "double": T.DoubleType(),
    "string": T.StringType(),
    "array<string>": T.ArrayType(T.StringType()),
}


def spark_type(spec: FieldSpec) -> T.DataType:
    """Return the Spark type of a contract field."""
    return _SPARK_TYPES[spec.dtype]


def conform(df: DataFrame, fields: tuple[FieldSpec, ...]) -> DataFrame:
    """Select exactly the contract's columns, in order, cast to the contract's types."""
    missing = [spec.name for spec in fields if spec.name not in df.columns]
    if missing:
        raise ValueError(f"features: missing contract column(s) {', '.join(missing)}")
    return df.select(*[F.col(spec.name).cast(spark_type(spec)).alias(spec.name) for spec in fields])


def conform_features(df: DataFrame) -> DataFrame:
    """Return the feature rows in the canonical encounter schema."""
    return conform(df, ENCOUNTER_FIELDS)


def conform_protected(df: DataFrame) -> DataFrame:
    """Return the protected-attribute rows (encounter_key, race, split)."""
    return conform(df, PROTECTED_FIELDS)


def conform_quarantine(df: DataFrame) -> DataFrame:
    """Return quarantine rows: table, reason and the de-identified keys, nothing else."""
    return df.select(
        *[F.col(f.name).cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields]
    )


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _write_partitioned(df: DataFrame, path: str) -> None:
    (
        df.repartition(OUTPUT_FILE_PARTITIONS, F.col("encounter_key"))
        .sortWithinPartitions(PARTITION_COLUMN, "encounter_key")
        .write.mode("overwrite")
        .partitionBy(PARTITION_COLUMN)
        .parquet(path)
    )


def _write_quarantine(df: DataFrame, path: str) -> None:
    (
        df.coalesce(1)
        .sortWithinPartitions("table", "reason", "encounter_key", "patient_key")
        .write.mode("overwrite")
        .parquet(path)
    )


def publish(
    spark: SparkSession,
    output_path: str,
    features: DataFrame,
    protected: DataFrame,
    quarantine: DataFrame,
    manifest_for: Any,
) -> dict[str, Any]:
    """Write the three datasets atomically, then ``manifest.json`` from ``manifest_for(rows)``.

    ``manifest_for`` receives the number of feature rows actually written and returns the
    manifest dict; it may raise to abort before anything is moved into place.
    """
    staging = _join(output_path, f"_staging-{uuid.uuid4().hex}")
    try:
        _write_partitioned(features, _join(staging, FEATURES_DIR))
        _write_partitioned(protected, _join(staging, PROTECTED_DIR))
        _write_quarantine(quarantine, _join(staging, QUARANTINE_DIR))
        written = spark.read.schema(features.schema).parquet(_join(staging, FEATURES_DIR)).count()
        manifest: dict[str, Any] = manifest_for(written)
        storage.delete(spark, _join(output_path, MANIFEST_FILE))
        for name in (FEATURES_DIR, PROTECTED_DIR, QUARANTINE_DIR):
            storage.replace(spark, _join(staging, name), _join(output_path, name))
        storage.write_text(
            spark, _join(output_path, MANIFEST_FILE), json.dumps(manifest, indent=2, sort_keys=True)
        )
    finally:
        storage.delete(spark, staging)
    return manifest
