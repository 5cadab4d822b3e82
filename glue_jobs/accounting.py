"""Row accounting of the tables linked to the index table (the manifest's ``linked_tables``).

Every row of a linked table is used once, dropped as a copy of a used row, or unused for one
reason, the first that applies: ``no_admission_id`` / ``missing_key`` (no or non-integer
id), ``conflicting_duplicate`` (a lookup table's rows for one id disagree), ``orphan`` (it
links to no admission), ``no_value`` / ``not_selected`` (nothing the job reads). Every copy of
an unused row carries its reason; copies are dropped only among used rows.

Counts come from the per-admission aggregates the features are built from, so a child table
is read once, and joined to the ADMISSIONS ids once for all child tables. Everything here
returns (table, outcome, rows) rows; the driver collects them all at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts import etl_manifest as keys
from glue_jobs import cohort
from glue_jobs.copies import COPIES, HAS_VALUE, ROWS, UNKNOWN_SYSTEM, VARIANTS

# Per-admission counts carried by a child table's aggregate (glue_jobs.mimic3_details).
ROWS_IN = "_rows_in"
ROWS_WITH_VALUE = "_rows_with_value"
ROWS_USED = "_rows_used"
#: Rows whose code names a system the source's table does not know (FHIR system URI,
#: MIMIC-IV icd_version): unused, with their own reason.
ROWS_UNKNOWN_SYSTEM = "_rows_unknown_system"
COUNT_COLUMNS = (ROWS_IN, ROWS_WITH_VALUE, ROWS_USED, ROWS_UNKNOWN_SYSTEM)

# Outcomes of a linked table's rows besides the unused reasons.
USED = "used"
DUPLICATE = "duplicate"
#: Not an outcome: the table's rows counted on their own, to check the outcomes add up.
TOTAL = "total"

# Reasons a linked table's row is unused.
NO_ADMISSION_ID = "no_admission_id"
ORPHAN = "orphan"
NO_VALUE = "no_value"
NOT_SELECTED = "not_selected"
UNKNOWN_CODE_SYSTEM = "unknown_code_system"

_LINKED = "_linked"
_VALUE_REASON = "_value_reason"
_WITHOUT_VALUE = "_without_value"
OUTCOME_SCHEMA = "table string, outcome string, rows long"


def child_row_counts(coded: bool = False) -> list[Column]:
    """Aggregates over a child table's distinct rows (``copies.distinct_rows``) per admission:
    input rows, of them rows with a value, distinct rows with a value (the used ones) and,
    for a ``coded`` table (one with ``_unknown_system``), rows of an unknown code system."""
    copies, has_value = F.col(COPIES), F.col(HAS_VALUE)
    unknown = (
        F.coalesce(F.sum(F.when(F.col(UNKNOWN_SYSTEM), copies)), F.lit(0))
        if coded
        else F.lit(0).cast("long")
    )
    return [
        F.sum(copies).alias(ROWS_IN),
        F.coalesce(F.sum(F.when(has_value, copies)), F.lit(0)).alias(ROWS_WITH_VALUE),
        F.count(F.when(has_value, F.lit(1))).alias(ROWS_USED),
        unknown.alias(ROWS_UNKNOWN_SYSTEM),
    ]


def _long(totals: DataFrame, outcomes: Sequence[tuple[Column, str]]) -> DataFrame:
    """Rows of sums with a ``table`` column -> (table, outcome, rows) rows; ``outcomes`` pairs
    each outcome's name with the column holding its sum."""
    pairs = [
        F.struct(name.alias("outcome"), F.coalesce(F.col(column), F.lit(0)).alias("rows"))
        for name, column in [(F.lit(TOTAL), TOTAL), *outcomes]
    ]
    exploded = totals.select("table", F.explode(F.array(*pairs)).alias("_o"))
    return exploded.select(
        "table",
        F.col("_o.outcome").alias("outcome"),
        F.col("_o.rows").cast("long").alias("rows"),
    )


def child_table_outcomes(
    details: Mapping[str, DataFrame], admission_ids: DataFrame, value_reasons: Mapping[str, str]
) -> DataFrame:
    """Child tables' per-admission aggregates + the ADMISSIONS ids -> their outcome rows, in
    one join (``value_reasons``: a table's reason for rows without a value, else no_value)."""
    counts = reduce(
        DataFrame.unionByName,
        [
            detail.select(
                F.lit(name).alias("table"),
                F.lit(value_reasons.get(name, NO_VALUE)).alias(_VALUE_REASON),
                "hadm_id",
                *COUNT_COLUMNS,
            )
            for name, detail in details.items()
        ],
    )
    linked = counts.join(
        admission_ids.select("hadm_id", F.lit(True).alias(_LINKED)), on="hadm_id", how="left"
    )
    has_id = F.col("hadm_id").isNotNull()
    is_linked = F.col(_LINKED).isNotNull()
    rows_in, with_value, used = F.col(ROWS_IN), F.col(ROWS_WITH_VALUE), F.col(ROWS_USED)
    unknown = F.col(ROWS_UNKNOWN_SYSTEM)
    totals = linked.groupBy("table", _VALUE_REASON).agg(
        F.sum(rows_in).alias(TOTAL),
        F.sum(F.when(~has_id, rows_in)).alias(NO_ADMISSION_ID),
        F.sum(F.when(has_id & ~is_linked, rows_in)).alias(ORPHAN),
        F.sum(F.when(is_linked, unknown)).alias(UNKNOWN_CODE_SYSTEM),
        F.sum(F.when(is_linked, rows_in - with_value - unknown)).alias(_WITHOUT_VALUE),
        F.sum(F.when(is_linked, with_value - used)).alias(DUPLICATE),
        F.sum(F.when(is_linked, used)).alias(USED),
    )
    names = (NO_ADMISSION_ID, ORPHAN, UNKNOWN_CODE_SYSTEM, DUPLICATE, USED)
    return _long(
        totals,
        [*[(F.lit(n), n) for n in names], (F.col(_VALUE_REASON), _WITHOUT_VALUE)],
    )


def lookup_table_outcomes(
    table: str, grouped: DataFrame, key: str, entry_checks: Sequence[tuple[Column, str]]
) -> DataFrame:
    """A lookup table grouped by key (``copies.group_by_key``) -> its outcome rows.

    A key without rows that agree (missing, conflicting) or failing an entry check leaves all
    its rows unused with that reason; otherwise one row is used and the rest are copies.
    """
    checks = [
        (F.col(key).isNull(), cohort.MISSING_KEY),
        (F.col(VARIANTS) > 1, cohort.CONFLICTING_DUPLICATE),
        *entry_checks,
    ]
    reasons = [name for _, name in checks]
    reason = cohort.first_reason(checks)
    rows = F.col(ROWS)
    totals = grouped.select(rows, reason.alias("_reason")).agg(
        F.sum(rows).alias(TOTAL),
        *[F.sum(F.when(F.col("_reason") == name, rows)).alias(name) for name in reasons],
        F.sum(F.when(F.col("_reason").isNull(), rows - 1)).alias(DUPLICATE),
        F.count(F.when(F.col("_reason").isNull(), F.lit(1))).alias(USED),
    )
    return _long(
        totals.select(F.lit(table).alias("table"), "*"),
        [(F.lit(name), name) for name in (*reasons, DUPLICATE, USED)],
    )


@dataclass
class TableCounts:
    """One linked table's rows: used, dropped copies, unused by reason, and their total."""

    rows_in: int = 0
    rows_used: int = 0
    duplicates_dropped: int = 0
    unused_by_reason: dict[str, int] = field(default_factory=dict)

    def as_manifest(self) -> dict[str, Any]:
        """The table's entry in the manifest's ``linked_tables``."""
        return {
            keys.TABLE_ROWS_IN: self.rows_in,
            keys.TABLE_ROWS_USED: self.rows_used,
            keys.TABLE_DUPLICATES_DROPPED: self.duplicates_dropped,
            keys.TABLE_ROWS_UNUSED_BY_REASON: dict(sorted(self.unused_by_reason.items())),
        }


def collect_table_counts(
    outcomes: Iterable[Any], tables_read: Iterable[str]
) -> dict[str, TableCounts]:
    """(table, outcome, rows) rows -> counts per table read (an empty table has no rows);
    reasons with no rows are left out."""
    tables = {name: TableCounts() for name in tables_read}
    for row in outcomes:
        counts = tables.setdefault(row["table"], TableCounts())
        rows = int(row["rows"])
        if row["outcome"] == TOTAL:
            counts.rows_in += rows
        elif row["outcome"] == USED:
            counts.rows_used += rows
        elif row["outcome"] == DUPLICATE:
            counts.duplicates_dropped += rows
        elif rows:
            reasons = counts.unused_by_reason
            reasons[row["outcome"]] = reasons.get(row["outcome"], 0) + rows
    return dict(sorted(tables.items()))
