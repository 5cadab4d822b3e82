"""Readers of a job's output folder for the job-level tests (pyarrow, no Spark)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from contracts.etl_manifest import MANIFEST_FILE

_DIGIT_TOKEN = re.compile(r"(?<![0-9A-Za-z])\d+(?![0-9A-Za-z])")


def read_dataset(path: Path) -> list[dict[str, Any]]:
    """Rows of a (hive-partitioned) Parquet folder, sorted for comparison."""
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    rows = table.to_pylist()
    for row in rows:
        if "split" in row and row["split"] is not None:
            row["split"] = str(row["split"])
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def manifest(output: Path) -> dict[str, Any]:
    """The parsed manifest.json."""
    return dict(json.loads((output / MANIFEST_FILE).read_text()))


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _walk(item)] + list(value)
    if isinstance(value, list):
        return [v for item in value for v in _walk(item)]
    return [value]


#: ICD-9 codes are clinical values, and 3-digit ones ("135", "729") coincide with small UCI
#: patient numbers; they are checked apart (every one must be a diagnosis or procedure code).
CODE_COLUMNS = ("diagnosis_codes", "procedure_codes")
#: Manifest fields the job's clock writes: "run_seconds": 12.104 holds the digit run "104" by
#: chance (about one run in a hundred with the bad-input rows' 3-digit ids), not a leak.
CLOCK_FIELDS = ("run_seconds", "run_started_at")


def leaked_identifiers(output: Path, identifiers: set[str]) -> set[str]:
    """Identifiers that appear as a value or a standalone number anywhere in the outputs."""
    found: set[str] = set()
    values: list[Any] = []
    for name in ("features", "protected", "quarantine"):
        for row in read_dataset(output / name):
            values.extend(_walk({k: v for k, v in row.items() if k not in CODE_COLUMNS}))
    values.extend(_walk({k: v for k, v in manifest(output).items() if k not in CLOCK_FIELDS}))
    for value in values:
        if value is None:
            continue
        text = str(value)
        if text in identifiers:
            found.add(text)
        found.update(t for t in _DIGIT_TOKEN.findall(text) if t in identifiers)
    paths = " ".join(str(p.relative_to(output)) for p in output.rglob("*"))
    found.update(t for t in _DIGIT_TOKEN.findall(paths) if t in identifiers)
    return found
