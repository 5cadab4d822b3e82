"""``make demo``'s nightly batch scoring: the replayed day, scored as Batch Transform scores it.

In AWS a SageMaker Batch Transform job reads the day's JSON-lines files, posts them to the
serving container's ``/invocations`` in mini-batches of whole lines (``SplitType=Line``,
``BatchStrategy=MultiRecord``, at most ``MaxPayloadInMB``) and writes each answer, followed by a
newline (``AssembleWith=Line``), into ``<file>.out``; the batch writer Lambda then turns inputs
and outputs into the worklist (``worklist.batch_output.build_day``). Here :func:`transform` does
the job's part against the local endpoint server, byte for byte the same requests, and
:func:`write_worklist` the writer's part into the local file store and a Parquet file under
the run folder's ``curated/worklist-scores/day=<day>/``.

Streaming throughout: lines are read, posted and written a mini-batch at a time (with at most
``concurrency`` in flight, answers written in input order), so memory does not grow with the
day's size.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import http.client
import json
import random
import threading
import urllib.parse
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.dataset as pa_dataset

from contracts import serving
from contracts.encounter import FieldKind, model_input_fields
from contracts.serving import BATCH_MAX_PAYLOAD_MB, CONTENT_TYPE_JSONLINES
from contracts.worklist import DaySummary
from worklist.batch_output import PATIENT_KEY, build_day
from worklist.local import LocalWorklistStore
from worklist.scores_table import parquet_bytes, scores_key

INVOCATIONS_PATH = "/invocations"
#: Batch Transform's MB (the same bound as the cloud job's MaxPayloadInMB).
MAX_PAYLOAD_BYTES = BATCH_MAX_PAYLOAD_MB * 1_000_000
INPUT_SUFFIX = ".jsonl"
OUTPUT_SUFFIX = ".out"
SOURCE_FOLDER = "discharges"
OUTPUT_FOLDER = "batch-scoring/output"
SCORES_FOLDER = "worklist-scores"
STORE_FILE = "worklist.json"
ENCOUNTER_KEY = serving.ENCOUNTER_KEY
REQUEST_TIMEOUT_S = 600.0
#: Files the demo splits its day into (Batch Transform pairs each with its own ``.out``).
DEMO_FILES = 2
DEMO_SEED = 19
#: The demo's one incomplete record (its age is missing), to show how a failed record is listed.
INCOMPLETE_FIELD = "age_years"


class TransformError(RuntimeError):
    """The endpoint refused a mini-batch: Batch Transform would fail the job (status only)."""


@dataclass(frozen=True)
class TransformStats:
    files: int
    records: int
    requests: int


def mini_batches(lines: Iterable[bytes], max_bytes: int = MAX_PAYLOAD_BYTES) -> Iterator[bytes]:
    """Whole non-blank lines packed into bodies of at most ``max_bytes`` (a longer line alone)."""
    batch: list[bytes] = []
    size = 0
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        if batch and size + len(line) + 1 > max_bytes:
            yield b"\n".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
    if batch:
        yield b"\n".join(batch)


class _Invoker:
    """POSTs bodies to ``/invocations`` over one kept-alive connection per thread."""

    def __init__(self, endpoint_url: str, content_type: str) -> None:
        parsed = urllib.parse.urlsplit(endpoint_url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 80
        self._content_type = content_type
        self._local = threading.local()

    def __call__(self, body: bytes) -> bytes:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, REQUEST_TIMEOUT_S)
            self._local.connection = connection
        headers = {"Content-Type": self._content_type, "Accept": CONTENT_TYPE_JSONLINES}
        connection.request("POST", INVOCATIONS_PATH, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise TransformError(f"/invocations answered {response.status}")
        return answer


def transform_file(
    invoke: Any,
    source: Path,
    target: Path,
    *,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    concurrency: int = 1,
) -> tuple[int, int]:
    """One input file to its ``.out`` file; returns (records, requests)."""
    records = requests = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        source.open("rb") as lines,
        target.open("wb") as out,
        concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool,
    ):
        pending: deque[concurrent.futures.Future[bytes]] = deque()

        def drain(keep: int) -> None:
            while len(pending) > keep:
                out.write(pending.popleft().result() + b"\n")

        for body in mini_batches(lines, max_payload_bytes):
            records += body.count(b"\n") + 1
            requests += 1
            pending.append(pool.submit(invoke, body))
            drain(concurrency)
        drain(0)
    return records, requests


def transform(
    endpoint_url: str,
    input_dir: Path,
    output_dir: Path,
    *,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    concurrency: int = 1,
    content_type: str = CONTENT_TYPE_JSONLINES,
) -> TransformStats:
    """Every ``*.jsonl`` file of ``input_dir`` through ``/invocations`` into ``output_dir``."""
    invoke = _Invoker(endpoint_url, content_type)
    files = sorted(input_dir.glob(f"*{INPUT_SUFFIX}"))
    records = requests = 0
    for source in files:
        done, posted = transform_file(
            invoke,
            source,
            output_dir / f"{source.name}{OUTPUT_SUFFIX}",
            max_payload_bytes=max_payload_bytes,
            concurrency=concurrency,
        )
        records += done
        requests += posted
    return TransformStats(len(files), records, requests)


def _lines(path: Path) -> Iterator[bytes]:
    if not path.is_file():
        return
    with path.open("rb") as handle:
        yield from handle


def write_worklist(
    day: str,
    input_dir: Path,
    output_dir: Path,
    store: LocalWorklistStore,
    curated_dir: Path,
    *,
    budget_share: float,
    now: dt.datetime,
) -> DaySummary:
    """The writer Lambda's part: the day into the store and its Parquet file."""
    files = sorted(input_dir.glob(f"*{INPUT_SUFFIX}"))
    summary, entries = build_day(
        day,
        (
            (_lines(source), _lines(output_dir / f"{source.name}{OUTPUT_SUFFIX}"))
            for source in files
        ),
        generated_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        budget_share=budget_share,
    )
    store.write_day(summary, entries)
    target = curated_dir / scores_key(SCORES_FOLDER, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(parquet_bytes(entries))
    return summary


def day_records(features_dir: Path, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` encounters of the test split with their de-identified keys (the day's
    discharges as the curated extract would deliver them)."""
    names = [PATIENT_KEY, ENCOUNTER_KEY, *(spec.name for spec in model_input_fields())]
    table = pa_dataset.dataset(str(features_dir / "split=test"), format="parquet").to_table(
        columns=names
    )
    rows = table.to_pylist()
    if not rows:
        raise ValueError("the test split is empty")
    rng = random.Random(seed)  # noqa: S311 - sampling a demo day, not a secret
    chosen = rows if len(rows) <= count else rng.sample(rows, count)
    codes = {spec.name for spec in model_input_fields(FieldKind.CODE_SEQUENCE)}
    return [
        {
            k: (list(v) if k in codes and v is not None else v)
            for k, v in row.items()
            if v is not None
        }
        for row in chosen
    ]


def write_day_inputs(
    records: Sequence[Mapping[str, Any]], input_dir: Path, files: int = DEMO_FILES
) -> list[Path]:
    """The day as ``part-<n>.jsonl`` files of JSON lines, as the curated extract lands."""
    input_dir.mkdir(parents=True, exist_ok=True)
    per_file = max(1, -(-len(records) // files))
    paths = []
    for number, start in enumerate(range(0, max(len(records), 1), per_file)):
        path = input_dir / f"part-{number}{INPUT_SUFFIX}"
        chunk = records[start : start + per_file]
        path.write_text("".join(json.dumps(record) + "\n" for record in chunk), encoding="utf-8")
        paths.append(path)
    return paths


def score_replayed_day(run: Any) -> dict[str, Any]:
    """The demo's step: yesterday's discharges through the local endpoint into the worklist."""
    progress, config = run.progress, run.config
    progress.line("Nightly batch scoring (Batch Transform's protocol against the local endpoint)")
    now = dt.datetime.now(dt.UTC)
    day = (now.date() - dt.timedelta(days=1)).isoformat()
    curated = run.run_dir / "curated"
    input_dir = curated / SOURCE_FOLDER / f"day={day}"
    output_dir = curated / OUTPUT_FOLDER / f"day={day}"
    records = day_records(run.features_dir, config.day_of_traffic, DEMO_SEED)
    if records:
        records[-1] = {k: v for k, v in records[-1].items() if k != INCOMPLETE_FIELD}
    write_day_inputs(records, input_dir)
    stats = transform(run.endpoint_url, input_dir, output_dir)
    store = LocalWorklistStore(run.run_dir / STORE_FILE)
    summary = write_worklist(
        day,
        input_dir,
        output_dir,
        store,
        curated,
        budget_share=config.stage.batch_scoring.budget_share,
        now=now,
    )
    progress.fact("day", f"{day}: {stats.records} discharges in {stats.files} files")
    progress.fact("requests", f"{stats.requests} mini-batches to {run.endpoint_url}/invocations")
    progress.fact(
        "worklist",
        f"{summary.scored} scored, {summary.failed} failed (listed with their reason), "
        f"model {', '.join(summary.model_versions) or 'none'}",
    )
    progress.fact("worklist store", str(store.path))
    return {
        "day": day,
        "records": stats.records,
        "requests": stats.requests,
        "scored": summary.scored,
        "failed": summary.failed,
        "model_versions": list(summary.model_versions),
        "store": str(store.path),
        "scores": str(curated / scores_key(SCORES_FOLDER, day)),
    }
