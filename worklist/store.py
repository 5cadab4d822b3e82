"""The worklist store's interface.

Nightly batch scoring writes a day through :meth:`WorklistStore.write_day`; the worklist data API
reads it back. In AWS the store is a DynamoDB table (partition key ``contracts.worklist.KEY_DAY``,
sort key ``KEY_ENTRY``, TTL attribute ``KEY_EXPIRES_AT``); locally it is a file-backed stand-in
holding the same items. Both implement this protocol and are tested against the same cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.worklist import DaySummary, WorklistEntry


class WorklistStore(Protocol):
    """Where a day's worklist lives."""

    def write_day(self, summary: DaySummary, entries: Sequence[WorklistEntry]) -> None:
        """Store a day's entries and its summary (idempotent: re-running a day overwrites it)."""
        ...

    def read_day(self, day: str) -> tuple[DaySummary | None, list[WorklistEntry]]:
        """Return a day's summary (``None`` if the day was never scored) and all its entries."""
        ...

    def read_entry(self, day: str, encounter_key: str) -> WorklistEntry | None:
        """Return one entry of a day, or ``None``."""
        ...
