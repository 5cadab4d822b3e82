"""The worklist store on local disk: the same items as the DynamoDB table, in one JSON file.

The demo's batch scoring fills it and the local worklist page reads it. The file maps
``day -> entry key -> item`` (``contracts.worklist`` items, unchanged); every write replaces
the file atomically (a temporary file, then a rename), so a reader never sees half a day.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.worklist import SUMMARY_SORT_KEY, DaySummary, WorklistEntry


class LocalWorklistStore:
    """:class:`worklist.store.WorklistStore` in a JSON file at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write_day(self, summary: DaySummary, entries: Sequence[WorklistEntry]) -> None:
        """Replace the day with these entries and this summary."""
        items: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if entry.day != summary.day:
                raise ValueError("every entry must belong to the summary's day")
            if entry.encounter_key in items:
                raise ValueError("a day's entries must have distinct encounter keys")
            items[entry.encounter_key] = entry.to_item()
        items[SUMMARY_SORT_KEY] = summary.to_item()
        with self._lock:
            days = self._load()
            days[summary.day] = items
            self._save(days)

    def read_day(self, day: str) -> tuple[DaySummary | None, list[WorklistEntry]]:
        items = self._load().get(day, {})
        summary_item = items.get(SUMMARY_SORT_KEY)
        entries = [
            WorklistEntry.from_item(item)
            for key, item in sorted(items.items())
            if key != SUMMARY_SORT_KEY
        ]
        return (None if summary_item is None else DaySummary.from_item(summary_item)), entries

    def read_entry(self, day: str, encounter_key: str) -> WorklistEntry | None:
        if encounter_key == SUMMARY_SORT_KEY:
            return None
        item = self._load().get(day, {}).get(encounter_key)
        return None if item is None else WorklistEntry.from_item(item)

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        if not self.path.is_file():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{self.path.name} is not a worklist store")
        return data

    def _save(self, days: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(days, out, sort_keys=True, separators=(",", ":"))
            Path(temporary).replace(self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
