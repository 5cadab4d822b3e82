"""The columns of the day's scores table, as the Glue catalog declares them (standard library).

``worklist.scores_table`` writes the Parquet file with the matching pyarrow schema;
``stacks.components.batch_scoring`` declares the Glue table from :data:`COLUMNS` without
importing pyarrow (``cdk synth`` loads no data library).
"""

from __future__ import annotations

from contracts.encounter import ENCOUNTER_KEY, PATIENT_KEY

PARTITION_COLUMN = "day"
FILE_NAME = "scores.parquet"

#: Glue/Hive type of each column, in file order.
COLUMNS: tuple[tuple[str, str], ...] = (
    (ENCOUNTER_KEY, "string"),
    (PATIENT_KEY, "string"),
    ("unit", "string"),
    ("status", "string"),
    ("scored_at", "string"),
    ("probability", "double"),
    ("risk_band", "string"),
    ("model_version", "string"),
    ("failure_reason", "string"),
    (
        "factors",
        "array<struct<feature:string,direction:string,contribution:double,label:string>>",
    ),
)
