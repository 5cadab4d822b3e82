"""``--source fhir`` keeps its memory bounded as the export grows (1M admissions: 9.5 GB of NDJSON
on a 4 GB local[2] driver): no table that grows with the export reaches the driver.

- No broadcast join: a broadcast copies its build side (encounters, patients, condition ranks,
  per-encounter aggregates) onto the driver and into every task. The planner decides from a
  size ESTIMATE, which for a JSON scan behind filters, explodes and aggregates is far below the
  real size, so a tiny test export is where the planner is most tempted: its plans are checked.
- What is reused is persisted on local disk, not in the JVM heap.
- Copies are told apart by a 32-byte digest, not by the resource's whole text carried along.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 (house style)

from glue_jobs import cohort, fhir, fhir_readers
from glue_jobs.copies import ROW_TEXT
from glue_jobs.synthetic_ehr import generate
from tests.glue_jobs.conftest import TEST_KEY

pytestmark = pytest.mark.spark

#: Physical operators that ship one side of a join to the driver and every task.
DRIVER_SIDE_OPERATORS = ("BroadcastExchange", "BroadcastHashJoin", "BroadcastNestedLoopJoin")
DIGEST_BYTES = 32


@pytest.fixture(scope="module")
def frames(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[cohort.SourceFrames]:
    folder = tmp_path_factory.mktemp("fhir-memory") / "export"
    generate(60, 5, str(folder), notes=True, layout="fhir")
    resources, missing = fhir_readers.read_export(spark, str(folder))
    built = fhir.build(resources, TEST_KEY, "fhir", missing)
    yield built
    for frame in built.persisted:
        frame.unpersist()


def executed_plan(frame: DataFrame) -> str:
    """The physical plan Spark would run (the planner's join choices included)."""
    return str(frame._jdf.queryExecution().executedPlan().toString())


def outputs(built: cohort.SourceFrames) -> dict[str, DataFrame]:
    assert built.linked_outcomes is not None
    return {
        "staged": built.staged,
        "features": built.features,
        "protected": built.protected,
        "quarantine": built.quarantine,
        "linked_outcomes": built.linked_outcomes,
    }


@pytest.mark.parametrize(
    "output", ["staged", "features", "protected", "quarantine", "linked_outcomes"]
)
def test_no_join_broadcasts_a_side_to_the_driver(
    frames: cohort.SourceFrames, output: str, spark: SparkSession
) -> None:
    """Even with broadcasts allowed for any side (threshold 1 GB, as a careless session might
    set it), every join the FHIR source plans is a shuffled sort-merge join."""
    threshold = "spark.sql.autoBroadcastJoinThreshold"
    before = spark.conf.get(threshold) or "10MB"
    spark.conf.set(threshold, str(2**30))
    try:
        plan = executed_plan(outputs(frames)[output])
    finally:
        spark.conf.set(threshold, before)
    found = [op for op in DRIVER_SIDE_OPERATORS if op in plan]
    assert not found, f"{output} plans {found}"
    assert "SortMergeJoin" in plan


def test_reused_frames_are_persisted_on_disk_only(frames: cohort.SourceFrames) -> None:
    """Screened resources, staged encounters and aggregates are cached off the JVM heap."""
    assert len(frames.persisted) == len(fhir.CHILD_TYPES) + 2 + 1 + len(fhir.CHILD_TYPES)
    levels = {str(frame.storageLevel) for frame in frames.persisted}
    assert levels == {str(StorageLevel.DISK_ONLY)}


def test_copies_are_told_apart_by_a_fixed_size_digest(spark: SparkSession) -> None:
    """The compared value is 32 bytes however long the resource; equal resources share it,
    resources that differ in any field read do not."""
    long_text = "x" * 5_000
    rows = [
        ("Patient", "a", "female", long_text),
        ("Patient", "a", "female", long_text),
        ("Patient", "a", "female", long_text + "y"),
        ("Patient", "a", "male", long_text),
    ]
    frame = spark.createDataFrame(
        rows, "resourceType string, id string, gender string, birthDate string"
    )
    digests = [
        row[ROW_TEXT] for row in frame.select(fhir.row_digest(frame).alias(ROW_TEXT)).collect()
    ]
    assert all(len(digest) == DIGEST_BYTES for digest in digests)
    assert digests[0] == digests[1]
    assert len({bytes(d) for d in digests}) == 3


def test_screen_reason_follows_the_digest(spark: SparkSession) -> None:
    """A conflicting duplicate is still found by the digest: same id, one field differs."""
    schema = fhir_readers.SCHEMAS["Procedure"]
    rows = [
        {"resourceType": "Procedure", "id": "p1", "status": "completed"},
        {"resourceType": "Procedure", "id": "p1", "status": "completed"},
        {"resourceType": "Procedure", "id": "p2", "status": "completed"},
        {"resourceType": "Procedure", "id": "p2", "status": "entered-in-error"},
    ]
    frame = spark.createDataFrame(
        [tuple(row.get(f.name) for f in schema.fields) for row in rows], schema
    )
    reasons = {
        (row["id"], row[fhir.REASON])
        for row in fhir.screen(frame, "Procedure").select("id", F.col(fhir.REASON)).collect()
    }
    assert reasons == {("p1", None), ("p2", cohort.CONFLICTING_DUPLICATE)}


def test_screened_rows_do_not_carry_the_resource_text(frames: cohort.SourceFrames) -> None:
    """The digest column is binary: no JSON text of the resource is kept beside its fields."""
    for frame in frames.persisted[: len(fhir.CHILD_TYPES) + 2]:
        assert dict(frame.dtypes)[ROW_TEXT] == "binary"
