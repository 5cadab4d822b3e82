"""Shared fixtures: one local SparkSession for the whole ETL test session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import types as T  # noqa: N812 (house style)

REPO_ROOT = Path(__file__).resolve().parents[2]
MIMIC_DEMO = REPO_ROOT / "data" / "mimic3-demo"
UCI_DIABETES = REPO_ROOT / "data" / "uci-diabetes"
TEST_KEY = "test-deidentification-key"


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A small local[2] session: few shuffle partitions, no UI, UTC."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("glue-jobs-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def text_frame(
    spark: SparkSession, columns: Sequence[str], rows: Sequence[Sequence[str | None]]
) -> DataFrame:
    """A frame of text columns, as a CSV source arrives (None = empty field)."""
    schema = T.StructType([T.StructField(name, T.StringType()) for name in columns])
    return spark.createDataFrame([tuple(row) for row in rows], schema)


def first_row(frame: DataFrame) -> Row:
    """The frame's first row (the test fails if it has none)."""
    row = frame.first()
    assert row is not None
    return row
