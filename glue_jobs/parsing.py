"""Typed views of raw source columns that never fail: a bad value becomes null.

CSV sources arrive as strings and the generator's Parquet arrives typed; these helpers accept
both, so one transform serves a real MIMIC extract and generated data. ``try_*`` built-ins keep
the job from failing on a bad row even where ANSI mode is on (Glue may enable it).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 (house style)
from pyspark.sql import types as T  # noqa: N812 (house style)

SECONDS_PER_DAY = 86_400


def _is_string(df: DataFrame, name: str) -> bool:
    return isinstance(df.schema[name].dataType, T.StringType)


def as_long(df: DataFrame, name: str) -> Column:
    """Return the column as bigint; non-integer text (``12a``, ``1.5``) becomes null."""
    if _is_string(df, name):
        trimmed = F.trim(F.col(name))
        return F.when(trimmed.rlike(r"^-?[0-9]{1,18}$"), trimmed.cast("long"))
    return F.col(name).cast("long")


def as_double(df: DataFrame, name: str) -> Column:
    """Return the column as double; text that is not a number becomes null."""
    if _is_string(df, name):
        trimmed = F.trim(F.col(name))
        return F.when(
            trimmed.rlike(r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"),
            trimmed.cast("double"),
        )
    return F.col(name).cast("double")


def as_timestamp(df: DataFrame, name: str) -> Column:
    """Return the column as a timestamp; text that is not an ISO date or date-time is null.

    Accepts MIMIC's ``2164-10-23 21:09:00`` and date-only ``2164-10-23`` (NOTEEVENTS).
    """
    if _is_string(df, name):
        return F.expr(f"try_to_timestamp(trim(`{name}`))")
    return F.col(name).cast("timestamp")


def as_id_string(df: DataFrame, name: str) -> Column:
    """Return an integer identifier in canonical decimal text (``"00123"`` -> ``"123"``)."""
    return as_long(df, name).cast("string")


def is_bad(raw: Column, parsed: Column) -> Column:
    """True where a value was present but did not parse."""
    return raw.isNotNull() & parsed.isNull()


def epoch_seconds(timestamp: Column) -> Column:
    """Seconds since the epoch; only differences of these leave a transform."""
    return F.unix_micros(timestamp) / F.lit(1_000_000)


def days_between(later: Column, earlier: Column) -> Column:
    """Return ``later - earlier`` in fractional days."""
    return (epoch_seconds(later) - epoch_seconds(earlier)) / F.lit(SECONDS_PER_DAY)
