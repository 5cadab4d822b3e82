"""The ETL job: a source's tables -> de-identified encounter features, labels and a manifest.

``run_job`` is what the Glue script, the local entrypoint, the tests and the demo call:

    python -m glue_jobs.ehr_features --source mimic3 --input data/mimic3-demo --output out/
    python -m glue_jobs.ehr_features --source mimic4 --input <mimic-iv folder> --output out/
    python -m glue_jobs.ehr_features --source fhir --input <bulk export folder> --output out/
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from contracts import etl_manifest as keys
from contracts.deidentify import DEMO_DEIDENTIFICATION_KEY
from contracts.encounter import SCHEMA_VERSION
from glue_jobs import (
    accounting,
    cohort,
    fhir,
    fhir_readers,
    mimic3,
    mimic4,
    publish,
    readers,
    uci_diabetes,
)
from glue_jobs.deid import resolve_deid_key

LOGGER = logging.getLogger(__name__)

SOURCE_CHOICES = ("mimic3", "uci_diabetes", "mimic4", "fhir")
SYNTHETIC_SOURCE = "synthetic"


class ReconciliationError(RuntimeError):
    """Row counts do not add up: nothing is published."""


def build_source(
    spark: SparkSession, source: str, input_path: str, deid_key: str
) -> cohort.SourceFrames:
    """Read one source and return its staged rows and outputs (nothing is computed yet)."""
    if source == "mimic3":
        tables, missing = readers.read_mimic_tables(spark, input_path)
        record_source = SYNTHETIC_SOURCE if readers.is_synthetic(spark, input_path) else source
        return mimic3.build(tables, deid_key, record_source, missing)
    if source == "uci_diabetes":
        return uci_diabetes.build(readers.read_uci(spark, input_path), deid_key)
    if source == "mimic4":
        tables, missing = readers.read_mimic4_tables(spark, input_path)
        record_source = SYNTHETIC_SOURCE if readers.is_synthetic(spark, input_path) else source
        return mimic4.build(tables, deid_key, record_source, missing)
    if source == "fhir":
        resources, missing = fhir_readers.read_export(spark, input_path)
        record_source = SYNTHETIC_SOURCE if readers.is_synthetic(spark, input_path) else source
        return fhir.build(resources, deid_key, record_source, missing)
    raise ValueError(f"source: must be one of {', '.join(SOURCE_CHOICES)}")


@dataclass
class RunCounts:
    """The index table's outcomes and every linked table's row accounting."""

    index: cohort.OutcomeCounts
    linked: dict[str, accounting.TableCounts]


def count_rows(frames: cohort.SourceFrames) -> RunCounts:
    """Count the index table's outcomes and collect the linked tables' (two small jobs)."""
    linked = (
        accounting.collect_table_counts(frames.linked_outcomes.collect(), frames.linked_tables)
        if frames.linked_outcomes is not None
        else {}
    )
    return RunCounts(cohort.count_outcomes(frames.staged), linked)


def row_accounting(input_table: str, run: RunCounts) -> dict[str, Any]:
    """The manifest's row counts, ``reconciled`` included: what the identities are checked on."""
    counts = run.index
    entries: dict[str, Any] = {
        keys.INPUT_TABLE: input_table,
        keys.ROWS_IN: counts.rows_in,
        keys.ROWS_OUT: counts.rows_out,
        keys.ROWS_EXCLUDED: sum(counts.excluded.values()),
        keys.ROWS_QUARANTINED: sum(counts.quarantined.values()),
        keys.DUPLICATES_DROPPED: counts.duplicates_dropped,
        keys.EXCLUDED_BY_REASON: dict(sorted(counts.excluded.items())),
        keys.QUARANTINED_BY_REASON: dict(sorted(counts.quarantined.items())),
        keys.LINKED_TABLES: {name: table.as_manifest() for name, table in run.linked.items()},
    }
    entries[keys.RECONCILED] = not keys.unbalanced_tables(entries)
    return entries


def make_manifest(
    frames: cohort.SourceFrames,
    run: RunCounts,
    source: str,
    deid_key: str,
    started_at: str,
    started: float,
) -> dict[str, Any]:
    """Return the manifest: row accounting, label counts per split and run metadata."""
    counts = run.index
    return {
        keys.SCHEMA_VERSION: SCHEMA_VERSION,
        keys.SOURCE: source,
        keys.RECORD_SOURCE: frames.record_source,
        keys.TABLES_MISSING: sorted(frames.tables_missing),
        **row_accounting(frames.input_table, run),
        keys.ROWS_OUT_BY_SPLIT: dict(sorted(counts.rows_out_by_split.items())),
        keys.LABEL_COUNTS_BY_SPLIT: {
            split: dict(sorted(labels.items()))
            for split, labels in sorted(counts.labels_by_split.items())
        },
        keys.UNMAPPED_VALUES: dict(sorted(counts.unmapped_values.items())),
        keys.DEID_DEMO_KEY: deid_key == DEMO_DEIDENTIFICATION_KEY,
        keys.RUN_STARTED_AT: started_at,
        keys.RUN_SECONDS: round(time.monotonic() - started, 3),
    }


def run_job(
    spark: SparkSession, source: str, input_path: str, output_path: str, deid_key: str
) -> dict[str, Any]:
    """Run the ETL for one source and return the manifest written to ``manifest.json``.

    Raises ``ReconciliationError`` (and publishes nothing) if in != out + excluded +
    quarantined + duplicates dropped, a linked table's rows do not add up, or the written
    feature rows differ from the counted ones.
    """
    started, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    frames = build_source(spark, source, input_path, deid_key)
    try:
        run = count_rows(frames)
        unbalanced = keys.unbalanced_tables(row_accounting(frames.input_table, run))
        if unbalanced:
            raise ReconciliationError(f"row counts do not reconcile: {', '.join(unbalanced)}")

        def manifest_for(written: int) -> dict[str, Any]:
            if written != run.index.rows_out:
                raise ReconciliationError("written feature rows differ from the counted rows")
            return make_manifest(frames, run, source, deid_key, started_at, started)

        manifest = publish.publish(
            spark,
            output_path,
            publish.conform_features(frames.features),
            publish.conform_protected(frames.protected),
            publish.conform_quarantine(frames.quarantine),
            manifest_for,
        )
    finally:
        for frame in frames.persisted:
            frame.unpersist()
    LOGGER.info(
        "ETL %s: %d in, %d out, %d excluded, %d quarantined, %d duplicates dropped",
        source,
        manifest[keys.ROWS_IN],
        manifest[keys.ROWS_OUT],
        manifest[keys.ROWS_EXCLUDED],
        manifest[keys.ROWS_QUARANTINED],
        manifest[keys.DUPLICATES_DROPPED],
    )
    return manifest


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the local entrypoint's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, choices=SOURCE_CHOICES)
    parser.add_argument("--input", required=True, help="folder holding the source tables")
    parser.add_argument("--output", required=True, help="output folder (overwritten)")
    parser.add_argument(
        "--deid-key",
        default=None,
        help="HMAC key; default: $READMISSION_DEID_KEY, else the public demo key",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Local entrypoint: parse options, start local Spark, run the job."""
    from glue_jobs.spark_session import build_local_session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    spark = build_local_session()
    return run_job(spark, args.source, args.input, args.output, resolve_deid_key(args.deid_key))


if __name__ == "__main__":
    main()
