"""The ETL's ``manifest.json``: its keys and the accounting identity every run must satisfy.

The Glue job writes the manifest (``glue_jobs.ehr_features.make_manifest``); the local
platform, training and the benchmarks read it. The keys are defined here once.

Every row of the index table (MIMIC ``ADMISSIONS``, UCI ``diabetic_data``) leaves the job
exactly once: kept (``rows_out``), excluded by a cohort rule, quarantined as malformed, or
dropped as an exact copy of another row. Every other table the job reads is accounted for in
``linked_tables`` the same way: a row is used, dropped as an exact copy, or unused for a
stated reason (``orphan``: it links to no admission).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MANIFEST_FILE = "manifest.json"

SCHEMA_VERSION = "schema_version"
SOURCE = "source"
RECORD_SOURCE = "record_source"
INPUT_TABLE = "input_table"
TABLES_MISSING = "tables_missing"

# Index table (one row per admission or encounter).
ROWS_IN = "rows_in"
ROWS_OUT = "rows_out"
ROWS_EXCLUDED = "rows_excluded"
ROWS_QUARANTINED = "rows_quarantined"
#: Exact copies dropped (one copy of each row is kept and goes on through the checks).
DUPLICATES_DROPPED = "duplicates_dropped"
EXCLUDED_BY_REASON = "excluded_by_reason"
QUARANTINED_BY_REASON = "quarantined_by_reason"
#: True when the index identity and every linked table's identity hold.
RECONCILED = "reconciled"
ROWS_OUT_BY_SPLIT = "rows_out_by_split"
LABEL_COUNTS_BY_SPLIT = "label_counts_by_split"
UNMAPPED_VALUES = "unmapped_values"

#: Table name -> its row accounting (keys below), for every table read besides the index.
LINKED_TABLES = "linked_tables"
TABLE_ROWS_IN = "rows_in"
TABLE_ROWS_USED = "rows_used"
TABLE_DUPLICATES_DROPPED = "duplicates_dropped"
TABLE_ROWS_UNUSED_BY_REASON = "rows_unused_by_reason"

DEID_DEMO_KEY = "deid_demo_key"
RUN_STARTED_AT = "run_started_at"
RUN_SECONDS = "run_seconds"


def index_balance(manifest: Mapping[str, Any]) -> int:
    """``rows_in - (out + excluded + quarantined + duplicates dropped)``: 0 when it adds up."""
    accounted = (
        manifest[ROWS_OUT]
        + manifest[ROWS_EXCLUDED]
        + manifest[ROWS_QUARANTINED]
        + manifest.get(DUPLICATES_DROPPED, 0)
    )
    return int(manifest[ROWS_IN]) - int(accounted)


def table_balance(counts: Mapping[str, Any]) -> int:
    """``rows_in - (used + duplicates dropped + unused)`` of one linked table: 0 when it adds up."""
    unused = sum(counts[TABLE_ROWS_UNUSED_BY_REASON].values())
    accounted = counts[TABLE_ROWS_USED] + counts[TABLE_DUPLICATES_DROPPED] + unused
    return int(counts[TABLE_ROWS_IN]) - int(accounted)


def unbalanced_tables(manifest: Mapping[str, Any]) -> list[str]:
    """Names of the tables whose rows do not add up (the index table as ``input_table``)."""
    names = [manifest[INPUT_TABLE]] if index_balance(manifest) else []
    linked: Mapping[str, Mapping[str, Any]] = manifest.get(LINKED_TABLES, {})
    return names + sorted(name for name, counts in linked.items() if table_balance(counts))
