"""The ETL job: a source's tables -> de-identified encounter features, labels and a manifest.

``run_job`` is what the Glue script, the local entrypoint, the tests and the demo call:

    python -m glue_jobs.ehr_features --source mimic3 --input data/mimic3-demo --output out/
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from contracts.deidentify import DEMO_DEIDENTIFICATION_KEY
from contracts.encounter import SCHEMA_VERSION
from glue_jobs import cohort, mimic3, publish, readers, uci_diabetes
from glue_jobs.deid import resolve_deid_key

LOGGER = logging.getLogger(__name__)

SOURCE_CHOICES = ("mimic3", "uci_diabetes")
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
    raise ValueError(f"source: must be one of {', '.join(SOURCE_CHOICES)}")


def make_manifest(
    frames: cohort.SourceFrames,
    counts: cohort.OutcomeCounts,
    source: str,
    deid_key: str,
    started_at: str,
    started: float,
) -> dict[str, Any]:
    """Return the manifest: reconciliation, label counts per split and run metadata."""
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "record_source": frames.record_source,
        "input_table": frames.input_table,
        "tables_missing": sorted(frames.tables_missing),
        "rows_in": counts.rows_in,
        "rows_out": counts.rows_out,
        "rows_excluded": sum(counts.excluded.values()),
        "rows_quarantined": sum(counts.quarantined.values()),
        "excluded_by_reason": dict(sorted(counts.excluded.items())),
        "quarantined_by_reason": dict(sorted(counts.quarantined.items())),
        "reconciled": counts.reconciled,
        "rows_out_by_split": dict(sorted(counts.rows_out_by_split.items())),
        "label_counts_by_split": {
            split: dict(sorted(labels.items()))
            for split, labels in sorted(counts.labels_by_split.items())
        },
        "unmapped_values": dict(sorted(counts.unmapped_values.items())),
        "deid_demo_key": deid_key == DEMO_DEIDENTIFICATION_KEY,
        "run_started_at": started_at,
        "run_seconds": round(time.monotonic() - started, 3),
    }


def run_job(
    spark: SparkSession, source: str, input_path: str, output_path: str, deid_key: str
) -> dict[str, Any]:
    """Run the ETL for one source and return the manifest written to ``manifest.json``.

    Raises ``ReconciliationError`` (and publishes nothing) if in != out + excluded +
    quarantined or the written feature rows differ from the counted ones.
    """
    started, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    frames = build_source(spark, source, input_path, deid_key)
    try:
        counts = cohort.count_outcomes(frames.staged)
        if not counts.reconciled:
            raise ReconciliationError(
                "row counts do not reconcile (in != out+excluded+quarantined)"
            )

        def manifest_for(written: int) -> dict[str, Any]:
            if written != counts.rows_out:
                raise ReconciliationError("written feature rows differ from the counted rows")
            return make_manifest(frames, counts, source, deid_key, started_at, started)

        manifest = publish.publish(
            spark,
            output_path,
            publish.conform_features(frames.features),
            publish.conform_protected(frames.protected),
            publish.conform_quarantine(frames.quarantine),
            manifest_for,
        )
    finally:
        frames.staged.unpersist()
    LOGGER.info(
        "ETL %s: %d in, %d out, %d excluded, %d quarantined",
        source,
        manifest["rows_in"],
        manifest["rows_out"],
        manifest["rows_excluded"],
        manifest["rows_quarantined"],
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
