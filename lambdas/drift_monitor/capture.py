"""Read SageMaker data-capture JSON Lines for a window, one line at a time.

SageMaker writes ``s3://<bucket>/<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``; each
line holds ``captureData.endpointInput``/``endpointOutput`` (``data`` encoded as ``JSON`` text
or ``BASE64``) and ``eventMetadata.inferenceTime``. Requests are canonical encounters (one record
or ``{"instances": [...]}``); responses are ``{"predictions": [...]}`` in the same order
(contracts.serving), or a bare list. A line that cannot be read this way is counted as corrupt
and skipped: one bad line never stops a run.
"""

from __future__ import annotations

import base64
import binascii
import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from contracts.serving import (
    ENCOUNTER_KEY,
    HEALTH_PROBE_INFERENCE_ID,
    HEALTH_PROBE_PATIENT_KEY,
    INSTANCES_KEY,
    PATIENT_KEY,
    PREDICTIONS_KEY,
    PROBABILITY,
    RISK_BAND,
)
from lambdas.drift_monitor.window import HOUR, TimeWindow, parse_time

#: Bytes read from S3 per chunk, and chunks read ahead: bounds memory per open object (4 MiB).
STREAM_CHUNK_BYTES = 256 * 1024
READ_AHEAD_CHUNKS = 16
QUEUE_POLL_SECONDS = 0.1
#: Lines between two looks at the clock (a look costs little, but not nothing).
DEADLINE_CHECK_LINES = 256
_END = object()


class CaptureDecodeError(ValueError):
    """A capture line is malformed; the message names the part, never the content."""


class ScoredRecord(NamedTuple):
    """One encounter the endpoint scored: the request record, its probability, its key and
    the risk band the endpoint answered (``high``: at or above the decision threshold)."""

    record: Mapping[str, Any]
    probability: float | None
    encounter_key: str | None
    risk_band: str | None = None


@dataclass
class CaptureStats:
    """What a pass over the capture saw; corrupt lines are counted, never raised."""

    files: int = 0
    lines: int = 0
    corrupt_lines: int = 0
    out_of_window_lines: int = 0
    records: int = 0
    truncated: bool = False


def _payload(capture: Mapping[str, Any], part: str) -> Any:
    section = capture.get(part)
    if not isinstance(section, dict):
        raise CaptureDecodeError(f"'{part}' is missing")
    data = section.get("data")
    encoding = str(section.get("encoding", "JSON")).upper()
    if not isinstance(data, str):
        raise CaptureDecodeError(f"'{part}.data' is missing")
    if encoding == "BASE64":
        try:
            return json.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError) as error:
            raise CaptureDecodeError(f"'{part}.data' is not base64 JSON") from error
    if encoding == "JSON":
        try:
            return json.loads(data)
        except ValueError as error:
            raise CaptureDecodeError(f"'{part}.data' is not JSON") from error
    raise CaptureDecodeError(f"'{part}.encoding' is not supported")


def _instances(body: Any) -> list[Mapping[str, Any]]:
    instances = body.get(INSTANCES_KEY, [body]) if isinstance(body, dict) else body
    if not isinstance(instances, list) or not all(isinstance(i, dict) for i in instances):
        raise CaptureDecodeError("request is not an encounter or a list of encounters")
    return instances


def _prediction(item: Any) -> tuple[float, str | None, str | None]:
    if isinstance(item, dict):
        probability = item.get(PROBABILITY)
        key = item.get(ENCOUNTER_KEY)
        band = item.get(RISK_BAND)
    else:
        probability, key, band = item, None, None
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise CaptureDecodeError(f"prediction '{PROBABILITY}' is not a number")
    return (
        float(probability),
        key if isinstance(key, str) else None,
        band if isinstance(band, str) else None,
    )


def _predictions(body: Any) -> list[tuple[float, str | None, str | None]]:
    items = body.get(PREDICTIONS_KEY) if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise CaptureDecodeError("response has no prediction list")
    return [_prediction(item) for item in items]


def decode_capture_line(line: bytes | str) -> tuple[datetime, list[ScoredRecord]]:
    """Return the inference time and the scored records of one capture line."""
    try:
        document = json.loads(line)
    except ValueError as error:
        raise CaptureDecodeError("line is not JSON") from error
    if not isinstance(document, dict):
        raise CaptureDecodeError("line is not a JSON object")
    metadata = document.get("eventMetadata")
    raw_time = metadata.get("inferenceTime") if isinstance(metadata, dict) else None
    if not isinstance(raw_time, str):
        raise CaptureDecodeError("'eventMetadata.inferenceTime' is missing")
    try:
        inference_time = parse_time(raw_time)
    except ValueError as error:
        raise CaptureDecodeError("'eventMetadata.inferenceTime' is not a time") from error
    capture = document.get("captureData")
    if not isinstance(capture, dict):
        raise CaptureDecodeError("'captureData' is missing")
    if isinstance(metadata, dict) and metadata.get("inferenceId") == HEALTH_PROBE_INFERENCE_ID:
        return inference_time, []  # the prediction API's /health probe, not a patient
    instances = _instances(_payload(capture, "endpointInput"))
    if "endpointOutput" not in capture:
        return inference_time, [ScoredRecord(i, None, _key(i)) for i in instances if _real(i)]
    predictions = _predictions(_payload(capture, "endpointOutput"))
    if len(predictions) != len(instances):
        raise CaptureDecodeError("request and response hold different numbers of records")
    return inference_time, [
        ScoredRecord(instance, probability, key or _key(instance), band)
        for instance, (probability, key, band) in zip(instances, predictions, strict=True)
        if _real(instance)
    ]


def _real(record: Mapping[str, Any]) -> bool:
    """Not the prediction API's synthetic health-probe record (contracts.serving)."""
    return record.get(PATIENT_KEY) != HEALTH_PROBE_PATIENT_KEY


def _key(record: Mapping[str, Any]) -> str | None:
    key = record.get(ENCOUNTER_KEY)
    return key if isinstance(key, str) else None


def _hour_prefix(hour: datetime) -> str:
    return hour.strftime("%Y/%m/%d/%H/")


def capture_object_keys(
    s3: Any, bucket: str, prefix: str, endpoint_name: str, window: TimeWindow
) -> Iterator[str]:
    """Keys of every capture file that can hold records of ``window``, for every variant.

    Files of the hour before the window are included when written after the window started:
    a file opened just before an hour boundary can run past it.
    """
    endpoint_prefix = f"{prefix}/{endpoint_name}/" if prefix else f"{endpoint_name}/"
    paginator = s3.get_paginator("list_objects_v2")
    variants: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=endpoint_prefix, Delimiter="/"):
        variants.extend(entry["Prefix"] for entry in page.get("CommonPrefixes", []))
    hours = list(window.hours())
    earlier = hours[0] - HOUR
    for variant_prefix in sorted(variants):
        for hour in [earlier, *hours]:
            pages = paginator.paginate(Bucket=bucket, Prefix=variant_prefix + _hour_prefix(hour))
            for page in pages:
                for item in page.get("Contents", []):
                    if hour == earlier and item["LastModified"] < window.start:
                        continue
                    yield item["Key"]


def _put(chunks: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put unless the reader has gone away; ``False`` once it has."""
    while not stop.is_set():
        try:
            chunks.put(item, timeout=QUEUE_POLL_SECONDS)
        except queue.Full:
            continue
        return True
    return False


def read_ahead(body: Any, chunk_size: int, depth: int) -> Iterator[bytes]:
    """Chunks of ``body`` read by a background thread up to ``depth`` chunks ahead, so that
    network reads (which release the GIL) overlap the decoding of earlier chunks."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            while chunk := body.read(chunk_size):
                if not _put(chunks, chunk, stop):
                    return
        except Exception as error:  # handed to the reader, raised there
            _put(chunks, error, stop)
            return
        _put(chunks, _END, stop)

    thread = threading.Thread(target=produce, name="capture-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def object_lines(s3: Any, bucket: str, key: str) -> Iterator[bytes]:
    """Stream one object's lines without holding the object in memory."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        pending = b""
        for chunk in read_ahead(body, STREAM_CHUNK_BYTES, READ_AHEAD_CHUNKS):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            yield from lines
        if pending:
            yield pending
    finally:
        body.close()


def scored_records(
    lines: Iterator[bytes],
    window: TimeWindow,
    stats: CaptureStats,
    deadline: float | None = None,
) -> Iterator[ScoredRecord]:
    """Decode capture lines into the window's scored records, counting what was skipped.

    Stops early, setting ``stats.truncated``, once ``time.monotonic()`` passes ``deadline``.
    """
    for line in lines:
        if not line.strip():
            continue
        stats.lines += 1
        if (
            deadline is not None
            and not stats.lines % DEADLINE_CHECK_LINES
            and time.monotonic() > deadline
        ):
            stats.truncated = True
            return
        try:
            inference_time, records = decode_capture_line(line)
        except CaptureDecodeError:
            stats.corrupt_lines += 1
            continue
        if not window.contains(inference_time):
            stats.out_of_window_lines += 1
            continue
        stats.records += len(records)
        yield from records


def read_window(
    s3: Any,
    bucket: str,
    prefix: str,
    endpoint_name: str,
    window: TimeWindow,
    stats: CaptureStats,
    deadline: float | None = None,
) -> Iterator[ScoredRecord]:
    """Every scored record captured for ``endpoint_name`` within ``window``, streamed, until
    ``deadline`` (a ``time.monotonic()`` value) if one is given."""
    for key in capture_object_keys(s3, bucket, prefix, endpoint_name, window):
        if stats.truncated:
            return
        stats.files += 1
        yield from scored_records(object_lines(s3, bucket, key), window, stats, deadline)
