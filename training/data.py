"""Reading the ETL's Parquet splits into records, the form the encoder takes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contracts import encounter
from contracts.encounter import ENCOUNTER_FIELDS, FieldKind
from inference.encoding import labels

PROTECTED_ATTRIBUTE = "race"
ENCOUNTER_KEY = encounter.ENCOUNTER_KEY
LABEL = next(spec.name for spec in ENCOUNTER_FIELDS if spec.kind == FieldKind.LABEL)
AUXILIARY_LABEL = next(
    spec.name for spec in ENCOUNTER_FIELDS if spec.kind == FieldKind.AUXILIARY_LABEL
)


def read_records(directory: str | Path) -> list[dict[str, Any]]:
    """Read every Parquet file under one split's folder as a list of records.

    Only the contract's columns are kept; a missing label or model-input column is an error
    naming the column (the ETL must write the full schema).
    """
    import pyarrow.parquet as pq

    table = pq.read_table(str(directory), partitioning=None)
    present = set(table.column_names)
    required = [
        spec.name
        for spec in ENCOUNTER_FIELDS
        if spec.model_input or spec.kind in (FieldKind.LABEL, FieldKind.IDENTIFIER)
    ]
    missing = [name for name in required if name not in present]
    if missing:
        raise ValueError(f"split is missing contract columns: {missing}")
    keep = [spec.name for spec in ENCOUNTER_FIELDS if spec.name in present]
    return list(table.select(keep).to_pylist())


def auxiliary_labels(records: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    """The auxiliary target as float32 0/1, or None when any record lacks it.

    Optional by design: a dataset written before contract 1.2.0 (or a source that cannot tell
    a later readmission) trains on the main label alone.
    """
    if not records or any(record.get(AUXILIARY_LABEL) is None for record in records):
        return None
    return labels(records, AUXILIARY_LABEL)


def read_protected(directory: str | Path | None) -> dict[str, str]:
    """Return ``encounter_key -> race`` from the protected dataset, or empty when absent."""
    if not directory or not Path(directory).exists():
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(str(directory), columns=[ENCOUNTER_KEY, PROTECTED_ATTRIBUTE])
    keys = table.column(ENCOUNTER_KEY).to_pylist()
    values = table.column(PROTECTED_ATTRIBUTE).to_pylist()
    return {k: (v if v is not None else "unknown") for k, v in zip(keys, values, strict=True)}


def read_manifest(path: str | Path | None) -> dict[str, Any]:
    """Return the ETL's manifest (row counts, source, versions) when there is one."""
    if not path or not Path(path).is_file():
        return {}
    data = json.loads(Path(path).read_text())
    return data if isinstance(data, dict) else {}


def manifest_summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the manifest's scalar entries and one level of scalar dicts (no row-level data)."""
    summary: dict[str, Any] = {}
    for key, value in manifest.items():
        if isinstance(value, str | int | float | bool) or value is None:
            summary[key] = value
        elif isinstance(value, dict) and all(
            isinstance(v, str | int | float | bool) or v is None for v in value.values()
        ):
            summary[key] = dict(value)
    return summary
