"""Row outcomes shared by every source: kept, excluded, quarantined or dropped as a copy.

Each admission or encounter row gets exactly one ``status`` and, unless kept, one ``reason``;
the first matching check wins. Counting by status is what makes in = out + excluded +
quarantined + duplicates dropped hold by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F  # noqa: N812 (house style)

STATUS_OK = "ok"
STATUS_EXCLUDED = "excluded"
STATUS_QUARANTINED = "quarantined"
#: A copy of a valid row with the same id: dropped and counted, the first copy goes on.
STATUS_DUPLICATE = "duplicate"
EXACT_DUPLICATE = "exact_duplicate"

# Quarantine reasons (malformed rows).
MISSING_KEY = "missing_key"
#: Rows that share an id but disagree: all of them, since the right one cannot be told.
CONFLICTING_DUPLICATE = "conflicting_duplicate"
UNPARSEABLE_DATE = "unparseable_date"
UNKNOWN_PATIENT = "unknown_patient"
#: The admission's patient has PATIENTS rows that disagree.
CONFLICTING_PATIENT = "conflicting_patient"
DISCHARGE_BEFORE_ADMISSION = "discharge_before_admission"
OUT_OF_CONTRACT = "out_of_contract"

# Exclusion reasons (cohort rules).
IN_HOSPITAL_DEATH = "in_hospital_death"
DISCHARGED_TO_HOSPICE = "discharged_to_hospice"
NEWBORN = "newborn"
#: An encounter that is not an inpatient stay (FHIR Encounter.class): not an index admission
#: and not part of the admission history either.
NOT_INPATIENT = "not_inpatient"
#: An encounter that has not ended (FHIR Encounter.status other than finished).
NOT_FINISHED = "not_finished"
#: FHIR: a line that is not JSON or whose used fields have the wrong JSON type, a line of
#: another resource type than its file's.
MALFORMED_RESOURCE = "malformed_resource"
WRONG_RESOURCE_TYPE = "wrong_resource_type"

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
    extra_copy: Column | None = None,
    early_checks: Sequence[tuple[Column, str, str]] = (),
) -> DataFrame:
    """Add ``status`` and ``reason``: quarantine checks first (every copy of a malformed row
    is quarantined), then extra copies of a valid row are dropped, then cohort exclusions.

    ``early_checks`` (condition, status, reason) come before all of these: a source's rows
    that are not records of the index kind at all (a FHIR line that is not JSON, an
    encounter that is not an inpatient stay) get their status before any other check."""
    copy = F.lit(False) if extra_copy is None else F.coalesce(extra_copy, F.lit(False))
    early_status = first_reason([(condition, status) for condition, status, _ in early_checks])
    early_reason = first_reason([(condition, reason) for condition, _, reason in early_checks])
    quarantine = first_reason(quarantine_checks)
    exclusion = first_reason(exclusion_checks)
    return (
        df.withColumn("_early_status", early_status)
        .withColumn("_early_reason", early_reason)
        .withColumn("_quarantine_reason", quarantine)
        .withColumn("_extra_copy", copy)
        .select(
            "*",
            F.when(F.col("_early_status").isNotNull(), F.col("_early_status"))
            .when(F.col("_quarantine_reason").isNotNull(), F.lit(STATUS_QUARANTINED))
            .when(F.col("_extra_copy"), F.lit(STATUS_DUPLICATE))
            .when(exclusion.isNotNull(), F.lit(STATUS_EXCLUDED))
            .when(exclusion.isNull(), F.lit(STATUS_OK))
            .alias("status"),
            F.coalesce(
                F.col("_early_reason"),
                F.col("_quarantine_reason"),
                F.when(F.col("_extra_copy"), F.lit(EXACT_DUPLICATE)),
                exclusion,
            ).alias("reason"),
        )
        .drop("_early_status", "_early_reason", "_quarantine_reason", "_extra_copy")
    )


def in_timeline() -> Column:
    """True for the rows a patient's history is built from: kept and excluded admissions (a
    readmission that ends in death is still a readmission), never quarantined rows, copies
    or encounters that are not inpatient stays."""
    return F.col("status").isin(STATUS_OK, STATUS_EXCLUDED) & ~F.coalesce(
        F.col("reason").isin(NOT_INPATIENT, NOT_FINISHED), F.lit(False)
    )


@dataclass
class OutcomeCounts:
    """Row counts of the index table, the body of the manifest's reconciliation (whose
    identity ``contracts.etl_manifest`` checks)."""

    rows_in: int = 0
    rows_out: int = 0
    duplicates_dropped: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    rows_out_by_split: dict[str, int] = field(default_factory=dict)
    labels_by_split: dict[str, dict[str, int]] = field(default_factory=dict)
    unmapped_values: dict[str, int] = field(default_factory=dict)


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
        elif row["status"] == STATUS_DUPLICATE:
            counts.duplicates_dropped += rows
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
    """What a source's transforms hand to the writer: staged rows, the three outputs, the
    linked tables' (table, outcome, rows) and the frames to unpersist after the run."""

    staged: DataFrame
    features: DataFrame
    protected: DataFrame
    quarantine: DataFrame
    input_table: str
    record_source: str
    tables_missing: list[str] = field(default_factory=list)
    linked_outcomes: DataFrame | None = None
    linked_tables: list[str] = field(default_factory=list)
    persisted: list[DataFrame] = field(default_factory=list)


def quarantine_rows(staged: DataFrame, table: str) -> DataFrame:
    """Staged rows in quarantine -> (table, reason, patient_key, encounter_key)."""
    return staged.where(F.col("status") == STATUS_QUARANTINED).select(
        F.lit(table).alias("table"), "reason", "patient_key", "encounter_key"
    )
