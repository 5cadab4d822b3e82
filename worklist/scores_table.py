"""The day's scores with their factors as Parquet: one file per day under ``day=YYYY-MM-DD/``.

The columns are the Glue catalog table's (``stacks.components.batch_scoring`` declares the
same names and types from ``worklist.scores_columns.COLUMNS``); the day is the partition,
not a column of the file, as Athena and Glue expect of Hive-style partitions. A re-run of a
day overwrites its one file (:func:`scores_key`), so the table never holds a day twice.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from contracts.encounter import ENCOUNTER_KEY, PATIENT_KEY
from contracts.worklist import WorklistEntry
from worklist.scores_columns import COLUMNS as COLUMNS
from worklist.scores_columns import FILE_NAME, PARTITION_COLUMN

FACTOR_TYPE = pa.struct(
    [
        ("feature", pa.string()),
        ("direction", pa.string()),
        ("contribution", pa.float64()),
        ("label", pa.string()),
    ]
)
SCHEMA = pa.schema(
    [
        (ENCOUNTER_KEY, pa.string()),
        (PATIENT_KEY, pa.string()),
        ("unit", pa.string()),
        ("status", pa.string()),
        ("scored_at", pa.string()),
        ("probability", pa.float64()),
        ("risk_band", pa.string()),
        ("model_version", pa.string()),
        ("failure_reason", pa.string()),
        ("factors", pa.list_(FACTOR_TYPE)),
    ]
)


def scores_key(prefix: str, day: str) -> str:
    """``<prefix>/day=<day>/scores.parquet``."""
    return f"{prefix.rstrip('/')}/{PARTITION_COLUMN}={day}/{FILE_NAME}"


def scores_table(entries: Iterable[WorklistEntry]) -> pa.Table:
    """Entries as a table of :data:`SCHEMA` (an empty day gives an empty table)."""
    rows = [
        {
            ENCOUNTER_KEY: e.encounter_key,
            PATIENT_KEY: e.patient_key,
            "unit": e.unit,
            "status": e.status,
            "scored_at": e.scored_at,
            "probability": e.probability,
            "risk_band": e.risk_band,
            "model_version": e.model_version,
            "failure_reason": e.failure_reason,
            "factors": [
                {
                    "feature": f.feature,
                    "direction": f.direction,
                    "contribution": f.contribution,
                    "label": f.label,
                }
                for f in e.factors
            ],
        }
        for e in entries
    ]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def parquet_bytes(entries: Iterable[WorklistEntry]) -> bytes:
    """The day's Parquet file (zstd-compressed)."""
    sink = io.BytesIO()
    pq.write_table(scores_table(entries), sink, compression="zstd")
    return sink.getvalue()
