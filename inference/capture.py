"""SageMaker-style data capture for the local endpoint server, read by the drift monitor.

Lines go to ``<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl``, one JSON
object per invocation with ``captureData.endpointInput``/``endpointOutput`` (content type, mode,
data, encoding) and ``eventMetadata`` (``eventId``, ``inferenceTime``), the layout SageMaker
writes to S3 and ``lambdas/drift_monitor/capture.py`` reads. Payloads are de-identified
encounters (the API hashed the identifiers) and go to these files only, never to a log.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

CAPTURE_ENCODING_JSON = "JSON"
EVENT_VERSION = "0"
MODE_INPUT = "INPUT"
MODE_OUTPUT = "OUTPUT"


def capture_line(
    request: str,
    request_content_type: str,
    response: str,
    response_content_type: str,
    when: datetime,
    event_id: str,
) -> str:
    """One capture record, as SageMaker writes it (JSON payloads kept as JSON text)."""
    document: dict[str, Any] = {
        "captureData": {
            "endpointInput": {
                "observedContentType": request_content_type,
                "mode": MODE_INPUT,
                "data": request,
                "encoding": CAPTURE_ENCODING_JSON,
            },
            "endpointOutput": {
                "observedContentType": response_content_type,
                "mode": MODE_OUTPUT,
                "data": response,
                "encoding": CAPTURE_ENCODING_JSON,
            },
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "eventVersion": EVENT_VERSION,
    }
    return json.dumps(document, separators=(",", ":"))


def hour_folder(root: Path, endpoint_name: str, variant_name: str, when: datetime) -> Path:
    """The folder of one hour's capture files."""
    return root / endpoint_name / variant_name / when.astimezone(UTC).strftime("%Y/%m/%d/%H")


class DataCapture:
    """Appends capture lines; one file per process and hour, flushed after every line."""

    def __init__(
        self,
        root: str | Path,
        variant_name: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.root = Path(root)
        self.variant_name = variant_name
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[tuple[str, str], IO[str]] = {}

    def record(
        self,
        endpoint_name: str,
        request: str,
        request_content_type: str,
        response: str,
        response_content_type: str,
    ) -> Path:
        """Append one invocation; returns the file written to."""
        when = self._clock()
        line = capture_line(
            request, request_content_type, response, response_content_type, when, str(uuid.uuid4())
        )
        folder = hour_folder(self.root, endpoint_name, self.variant_name, when)
        with self._lock:
            handle = self._handle(endpoint_name, folder, when)
            handle.write(line + "\n")
            handle.flush()
            return Path(handle.name)

    def _handle(self, endpoint_name: str, folder: Path, when: datetime) -> IO[str]:
        key = (endpoint_name, str(folder))
        handle = self._files.get(key)
        if handle is None:
            for stale in [k for k in self._files if k[0] == endpoint_name]:
                self._files.pop(stale).close()
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
            handle = (folder / name).open("a", encoding="utf-8")
            self._files[key] = handle
        return handle

    def close(self) -> None:
        """Close every open file."""
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
