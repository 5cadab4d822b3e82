"""Row outcomes shared by every source: kept, excluded (by cohort rule) or quarantined.

Each admission or encounter row gets exactly one ``status`` and, unless kept, one ``reason``;
the first matching check wins. Counting by status is what makes in = out + excluded +
quarantined hold by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F  # noqa: N812 (house style)

STATUS_OK = "ok"
STATUS_EXCLUDED = "excluded"
STATUS_QUARANTINED = "quarantined"

# Quarantine reasons (malformed rows).
MISSING_KEY = "missing_key"
DUPLICATE_ID = "duplicate_id"
UNPARSEABLE_DATE = "unparseable_date"
UNKNOWN_PATIENT = "unknown_patient"
DUPLICATE_PATIENT = "duplicate_patient"
DISCHARGE_BEFORE_ADMISSION = "discharge_before_admission"
OUT_OF_CONTRACT = "out_of_contract"

# Exclusion reasons (cohort rules).
IN_HOSPITAL_DEATH = "in_hospital_death"
DISCHARGED_TO_HOSPICE = "discharged_to_hospice"
NEWBORN = "newborn"

#: Prefix of the per-row flags that mark a categorical value missing from its mapping table.
UNMAPPED_PREFIX = "unmapped__"


def first_reason(checks: Sequence[tuple[Column, str]]) -> Column:
    """Return the reason of the first check that is true, null when none is."""
    reason: Column | None = None
    for condition, name in checks:
        when_true = F.coalesce(condition, F.lit(False))
        reason = (
            F.when(when_true, F.lit(name))
            if reason is None
            else reason.when(when_true, F.lit(name))
        )
    if reason is None:
        return F.lit(None).cast("string")
    return reason


def with_outcome(
    df: DataFrame,
    quarantine_checks: Sequence[tuple[Column, str]],
    exclusion_checks: Sequence[tuple[Column, str]],
) -> DataFrame:
    """Add ``status`` and ``reason``: quarantine checks first, then cohort exclusions."""
    quarantine = first_reason(quarantine_checks)
    exclusion = first_reason(exclusion_checks)
    return (
        df.withColumn("_quarantine_reason", quarantine)
        .select(
            "*",
            F.when(F.col("_quarantine_reason").isNotNull(), F.lit(STATUS_QUARANTINED))
            .when(exclusion.isNotNull(), F.lit(STATUS_EXCLUDED))
            .when(exclusion.isNull(), F.lit(STATUS_OK))
            .alias("status"),
            F.coalesce(F.col("_quarantine_reason"), exclusion).alias("reason"),
        )
        .drop("_quarantine_reason")
    )


@dataclass
class OutcomeCounts:
    """Row counts of one run, the body of the manifest's reconciliation."""

    rows_in: int = 0
    rows_out: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    rows_out_by_split: dict[str, int] = field(default_factory=dict)
    labels_by_split: dict[str, dict[str, int]] = field(default_factory=dict)
    unmapped_values: dict[str, int] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        """in = out + excluded + quarantined."""
        total = self.rows_out + sum(self.excluded.values()) + sum(self.quarantined.values())
        return self.rows_in == total


def count_outcomes(staged: DataFrame, label: str = "readmitted_30d") -> OutcomeCounts:
    """Count rows by status and reason, kept rows by split and label, and unmapped values.

    One aggregation over the staged rows; only a handful of rows reach the driver.
    """
    unmapped = [c for c in staged.columns if c.startswith(UNMAPPED_PREFIX)]
    is_ok = F.col("status") == STATUS_OK
    grouped = staged.groupBy(
        "status",
        "reason",
        F.when(is_ok, F.col("split")).alias("_split"),
        F.when(is_ok, F.col(label)).alias("_label"),
    ).agg(
        F.count(F.lit(1)).alias("_rows"),
        *[F.sum(F.col(c).cast("long")).alias(c) for c in unmapped],
    )
    counts = OutcomeCounts()
    for row in grouped.collect():
        rows = int(row["_rows"])
        counts.rows_in += rows
        if row["status"] == STATUS_EXCLUDED:
            counts.excluded[row["reason"]] = counts.excluded.get(row["reason"], 0) + rows
        elif row["status"] == STATUS_QUARANTINED:
            counts.quarantined[row["reason"]] = counts.quarantined.get(row["reason"], 0) + rows
        else:
            _count_kept(counts, row, rows, unmapped)
    return counts


def _count_kept(counts: OutcomeCounts, row: Row, rows: int, unmapped: list[str]) -> None:
    split, label = str(row["_split"]), str(row["_label"])
    counts.rows_out += rows
    counts.rows_out_by_split[split] = counts.rows_out_by_split.get(split, 0) + rows
    by_label = counts.labels_by_split.setdefault(split, {})
    by_label[label] = by_label.get(label, 0) + rows
    for column in unmapped:
        name = column.removeprefix(UNMAPPED_PREFIX)
        counts.unmapped_values[name] = counts.unmapped_values.get(name, 0) + int(row[column] or 0)


@dataclass
class SourceFrames:
    """What a source's transforms hand to the writer: staged rows and the three outputs."""

    staged: DataFrame
    features: DataFrame
    protected: DataFrame
    quarantine: DataFrame
    input_table: str
    record_source: str
    tables_missing: list[str] = field(default_factory=list)


def quarantine_rows(staged: DataFrame, table: str) -> DataFrame:
    """Staged rows in quarantine -> (table, reason, patient_key, encounter_key)."""
    return staged.where(F.col("status") == STATUS_QUARANTINED).select(
        F.lit(table).alias("table"), "reason", "patient_key", "encounter_key"
    )
