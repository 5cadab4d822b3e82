"""Which span of capture a run analyses, and where SageMaker puts that span in S3."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WindowError(ValueError):
    """The invocation event carries a time that cannot be read; names the key."""


@dataclass(frozen=True)
class TimeWindow:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise WindowError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise WindowError("window end must come after its start")

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the window."""
        return self.start <= moment < self.end

    def shifted(self, delta: timedelta) -> TimeWindow:
        """The same-length window moved by ``delta``."""
        return TimeWindow(self.start + delta, self.end + delta)

    def hours(self) -> Iterator[datetime]:
        """Each whole UTC hour overlapping the window (SageMaker's capture partitions)."""
        hour = self.start.replace(minute=0, second=0, microsecond=0)
        while hour < self.end:
            yield hour
            hour += HOUR

    def days(self) -> Iterator[datetime]:
        """Each whole UTC day overlapping the window."""
        day = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < self.end:
            yield day
            day += DAY

    def as_dict(self) -> dict[str, str]:
        """ISO-8601 bounds, for logs and the invocation result."""
        return {"start": iso(self.start), "end": iso(self.end)}


def iso(moment: datetime) -> str:
    """``2024-05-01T09:00:00Z``: the form SageMaker writes in capture records."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time; a time without zone is taken as UTC."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_time(event: Mapping[str, Any], default: datetime) -> datetime:
    """The run's reference time: ``window_end`` or EventBridge's ``time``, else ``default``."""
    for key in ("window_end", "time"):
        raw = event.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise WindowError(f"event '{key}' must be an ISO-8601 string")
        try:
            return parse_time(raw)
        except ValueError as error:
            raise WindowError(f"event '{key}' must be an ISO-8601 string") from error
    return default


def latest_complete_window(now: datetime, minutes: int, settle_minutes: int) -> TimeWindow:
    """The last whole window (aligned to multiples of ``minutes`` since the epoch, in UTC)
    that ended at least ``settle_minutes`` before ``now``."""
    length = timedelta(minutes=minutes)
    settled = now - timedelta(minutes=settle_minutes)
    end = _EPOCH + ((settled - _EPOCH) // length) * length
    return TimeWindow(end - length, end)


def requested_window(
    event: Mapping[str, Any], now: datetime, minutes: int, settle_minutes: int
) -> TimeWindow:
    """The window a run analyses: an explicit ``window_end`` (a backfill) ends exactly there;
    a scheduled run takes the latest complete window before its event time."""
    if event.get("window_end") is not None:
        end = event_time(event, now)
        return TimeWindow(end - timedelta(minutes=minutes), end)
    return latest_complete_window(event_time(event, now), minutes, settle_minutes)


def fairness_window(
    event: Mapping[str, Any], now: datetime, window_days: int, delay_days: int
) -> TimeWindow:
    """The scored span a fairness run assesses: an explicit ``window_end`` (a backfill) ends
    exactly there; a scheduled run takes the ``window_days`` whole UTC days that ended
    ``delay_days`` before its event time's day (their outcomes are complete by then)."""
    length = timedelta(days=window_days)
    if event.get("window_end") is not None:
        end = event_time(event, now)
        return TimeWindow(end - length, end)
    day = event_time(event, now).replace(hour=0, minute=0, second=0, microsecond=0)
    end = day - timedelta(days=delay_days)
    return TimeWindow(end - length, end)
