"""Nightly batch scoring, the Lambda's two steps: plan the day, then write its worklist.

``plan`` (first state of the workflow) picks the day (the event's ``day``, else the day before
the schedule's time) and says whether the day has discharges under
``<source prefix>day=<day>/`` in the curated bucket, where the transform job writes its output
(a folder of its own per run, so a re-run never mixes with an earlier one) and the job's name.

``write`` (after the transform job, or straight after ``plan`` for a day with no discharges)
pairs each input file with its ``<file>.out`` line by line (``worklist.batch_output``), writes
the day to the worklist store (replacing an earlier run of the day), and the day's Parquet
file under ``<scores prefix>day=<day>/``. It returns counts only, never a key or a score.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from contracts.worklist import parse_day
from lambdas.batch_writer.settings import WriterSettings
from worklist.batch_output import build_day
from worklist.scores_table import parquet_bytes, scores_key
from worklist.store import WorklistStore

#: Batch Transform names each output object after its input object plus this suffix.
OUTPUT_SUFFIX = ".out"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


class PlanError(ValueError):
    """The event names no usable day (the message says which key, never its value)."""


def day_of(event: Mapping[str, Any], now: dt.datetime) -> str:
    """``event["day"]``, else the day before ``event["scheduled_time"]`` (or before ``now``)."""
    day = event.get("day")
    if day is not None:
        try:
            return parse_day(str(day)).isoformat()
        except ValueError as e:
            raise PlanError("day must be YYYY-MM-DD") from e
    scheduled = event.get("scheduled_time")
    moment = now
    if scheduled is not None:
        try:
            moment = dt.datetime.fromisoformat(str(scheduled).replace("Z", "+00:00"))
        except ValueError as e:
            raise PlanError("scheduled_time must be an ISO 8601 time") from e
    return (moment.date() - dt.timedelta(days=1)).isoformat()


def input_prefix(settings: WriterSettings, day: str) -> str:
    return f"{settings.source_prefix}day={day}/"


def input_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Non-empty objects under ``prefix``, in key order (the order Batch Transform lists them)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []) if o.get("Size", 0) > 0)
    return sorted(keys)


def plan(
    event: Mapping[str, Any],
    settings: WriterSettings,
    s3: Any,
    now: dt.datetime,
    run_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
) -> dict[str, Any]:
    """What the workflow needs to run the day's transform job, or to skip it."""
    day = day_of(event, now)
    prefix = input_prefix(settings, day)
    has_records = bool(input_keys(s3, settings.curated_bucket, prefix))
    run = run_id()
    output_prefix = f"{settings.output_prefix}day={day}/{run}/"
    bucket = settings.curated_bucket
    return {
        "day": day,
        "has_records": has_records,
        "input_uri": f"s3://{bucket}/{prefix}",
        "output_uri": f"s3://{bucket}/{output_prefix}",
        "output_prefix": output_prefix,
        "job_name": f"{settings.job_name_prefix}-{day.replace('-', '')}-{run}",
    }


def _lines(s3: Any, bucket: str, key: str) -> Iterator[bytes]:
    """An object's lines, streamed; none when the object does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        return
    yield from body.iter_lines()


def write(
    event: Mapping[str, Any],
    settings: WriterSettings,
    s3: Any,
    store: WorklistStore,
    now: dt.datetime,
) -> dict[str, Any]:
    """Write the day's worklist and Parquet file from the transform output; return counts."""
    day = day_of(event, now)
    bucket = settings.curated_bucket
    prefix = input_prefix(settings, day)
    output_prefix = event.get("output_prefix") if event.get("has_records", True) else None

    def files_of(key: str) -> tuple[Iterator[bytes], Iterator[bytes]]:
        answers: Iterator[bytes] = iter(())
        if output_prefix:
            answers = _lines(s3, bucket, f"{output_prefix}{key[len(prefix) :]}{OUTPUT_SUFFIX}")
        return _lines(s3, bucket, key), answers

    stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds")
    keys = input_keys(s3, bucket, prefix)
    summary, entries = build_day(
        day,
        (files_of(key) for key in keys),
        generated_at=stamp,
        budget_share=settings.budget_share,
    )
    store.write_day(summary, entries)
    target = scores_key(settings.scores_prefix, day)
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_arn}
    s3.put_object(
        Bucket=bucket,
        Key=target,
        Body=parquet_bytes(entries),
        ContentType=PARQUET_CONTENT_TYPE,
        **(extra if settings.kms_key_arn else {}),
    )
    return {
        "day": day,
        "input_files": len(keys),
        "scored": summary.scored,
        "failed": summary.failed,
        "model_versions": list(summary.model_versions),
        "scores_key": target,
    }
