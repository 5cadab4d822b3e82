"""Exact copies and disagreeing rows in a source table, told apart with Spark built-ins.

Two rows are **copies** when every column the job reads from them holds the same text once
surrounding spaces are removed where the job's parsing removes them too (everywhere but a
note's text), so the output cannot depend on which copy is kept. Any other difference, case
included (UCI's mappings are case-sensitive), makes rows **disagree**. Columns the job does
not read are not compared; a child table's ``row_id`` is, where the table has one: it is
what tells two identical events (two equal lab results) from one event written twice.

Three shapes of table, three transforms:
- an index table, one row per id (ADMISSIONS, UCI encounters): ``mark_copies`` flags, per
  row, an id whose rows disagree and each extra copy, so every row still gets one status;
- a lookup table, one entry per id (PATIENTS, D_LABITEMS): ``group_by_key`` gives one row
  per id with its number of rows and of distinct variants;
- a child table, many rows per admission: ``distinct_rows`` keeps one row per distinct row
  text with its number of copies.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812 (house style)

ROW_ID = "row_id"
#: The row as the job reads it: a struct of the compared columns' trimmed text.
ROW_TEXT = "_row_text"
#: Index tables: the id's rows disagree / this row is an extra copy of an earlier one.
CONFLICTING = "_conflicting"
EXTRA_COPY = "_extra_copy"
#: Lookup tables: rows with the key / distinct row texts among them.
ROWS = "_rows"
VARIANTS = "_variants"
#: Child tables: whether a row holds a value the job uses / how many input rows one
#: distinct row stands for.
HAS_VALUE = "_has_value"
COPIES = "_copies"
#: Coded child tables: the row's code names a system the source does not know (counted
#: apart from rows without a value; never used).
UNKNOWN_SYSTEM = "_unknown_system"


def present(df: DataFrame, names: Sequence[str]) -> tuple[str, ...]:
    """The names, in order, that are columns of ``df`` (``row_id`` is optional in a source)."""
    return tuple(name for name in names if name in df.columns)


def row_text(df: DataFrame, columns: Sequence[str], untrimmed: Sequence[str] = ()) -> Column:
    """The compared text of a row: each column cast to text, surrounding spaces removed but
    from the ``untrimmed`` columns (those the job reads as they are)."""
    texts = {name: F.col(name).cast("string") for name in present(df, columns)}
    return F.struct(
        *[(text if name in untrimmed else F.trim(text)).alias(name) for name, text in texts.items()]
    )


def mark_copies(df: DataFrame, key: str) -> DataFrame:
    """Add ``_conflicting`` (the key's rows disagree) and ``_extra_copy`` (a copy after the
    first of a key whose rows all agree). Rows without a key are neither. Needs ``_row_text``.
    """
    has_key = F.col(key).isNotNull()
    by_key = Window.partitionBy(key)
    by_text = Window.partitionBy(key, ROW_TEXT).orderBy(ROW_TEXT)
    agree = F.min(ROW_TEXT).over(by_key).eqNullSafe(F.max(ROW_TEXT).over(by_key))
    marked = df.select("*", (has_key & ~agree).alias(CONFLICTING))
    return marked.select(
        "*",
        (has_key & ~F.col(CONFLICTING) & (F.row_number().over(by_text) > 1)).alias(EXTRA_COPY),
    )


def group_by_key(typed: DataFrame, key: str, *values: Column) -> DataFrame:
    """One row per key (rows without one form a single group): ``_rows``, ``_variants`` and
    the given aggregates of the values (meaningful where ``_variants`` is 1). Needs ``_row_text``.
    """
    return typed.groupBy(key).agg(
        F.count(F.lit(1)).alias(ROWS),
        F.size(F.collect_set(ROW_TEXT)).alias(VARIANTS),
        *values,
    )


def distinct_rows(typed: DataFrame, key: str) -> DataFrame:
    """One row per distinct (key, row text) with ``_copies``. Rows without a key collapse into
    one row per ``_has_value``, and a key's rows without a value into one: they are only
    counted (their typed values are null). Needs ``_row_text`` and ``_has_value``.

    The typed values are grouped on too: they follow from the row text (parsing trims the
    same spaces), so they never split copies, and a plain hash aggregation needs no sort.
    """
    compared = F.col(key).isNotNull() & F.col(HAS_VALUE)
    flags = [c for c in (HAS_VALUE, UNKNOWN_SYSTEM) if c in typed.columns]
    columns = [c for c in typed.columns if c not in (key, *flags, ROW_TEXT)]
    return (
        typed.groupBy(
            key,
            *flags,
            *[F.when(compared, F.col(c)).alias(c) for c in columns],
            F.when(compared, F.col(ROW_TEXT)).alias(ROW_TEXT),
        )
        .agg(F.count(F.lit(1)).alias(COPIES))
        .drop(ROW_TEXT)
    )
