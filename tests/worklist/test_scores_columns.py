"""The Glue columns (``worklist.scores_columns``, read by the stack) match the Parquet schema."""

from __future__ import annotations

import pyarrow as pa

from worklist.scores_columns import COLUMNS
from worklist.scores_table import SCHEMA

_SCALARS = {pa.string(): "string", pa.float64(): "double", pa.int64(): "bigint"}


def _hive(kind: pa.DataType) -> str:
    """The Hive/Glue spelling of a pyarrow type."""
    if pa.types.is_list(kind):
        return f"array<{_hive(kind.value_type)}>"
    if pa.types.is_struct(kind):
        fields = ",".join(f"{f.name}:{_hive(f.type)}" for f in kind)
        return f"struct<{fields}>"
    return _SCALARS[kind]


def test_glue_columns_are_the_parquet_schema_in_file_order() -> None:
    assert tuple((field.name, _hive(field.type)) for field in SCHEMA) == COLUMNS
