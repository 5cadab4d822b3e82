"""JSON lines: how SageMaker Batch Transform talks to the serving container.

With ``SplitType=Line`` and ``BatchStrategy=MultiRecord`` Batch Transform posts mini-batches of
input lines to ``/invocations`` (as many whole lines as ``MaxPayloadInMB`` holds), and with
``AssembleWith=Line`` it writes each answer followed by a newline into ``<input file>.out``
(https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html). So a request of
``application/jsonlines`` is answered line for line: the i-th non-blank line of the request gets
the i-th line of the answer, a prediction (``contracts.serving``) or, for a record that cannot be
scored, ``{"error": code, "message": ...}`` naming the field, never its value. One bad record
therefore never fails its mini-batch (Batch Transform fails a whole input file on an error
answer); the batch writer lists it as a failed entry of the day.

Blank lines carry no record and get no answer line; the writer skips them the same way. Records
are scored in chunks of ``contracts.serving.MAX_BATCH_SIZE``, whatever the mini-batch's size,
so memory stays bounded by the chunk, as for a real-time request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.serving import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSONLINES,
    LINE_ERROR,
    LINE_ERROR_MESSAGE,
    MAX_BATCH_SIZE,
)
from inference.encoding import UnscorableRecordError
from inference.errors import InferenceError, InvalidRequestError, UnsupportedAcceptError
from inference.payload import EncounterBatch, _decode, check_record, media_parameters, media_type
from inference.predictor import ServingModel, predict

#: ``application/jsonlines; factors=none`` scores without top factors (the benchmark's baseline).
FACTORS_PARAMETER = "factors"
NO_FACTORS = "none"
#: Accept values a JSON-lines request is answered under (in JSON lines: the request's format
#: decides; ``application/json`` is the server's default Accept when a caller sends none).
JSONLINES_ACCEPTS = frozenset({CONTENT_TYPE_JSONLINES, CONTENT_TYPE_JSON, "*/*", "application/*"})


@dataclass(frozen=True)
class LineBatch:
    """The records of a JSON-lines request in order; ``None`` where a line was refused."""

    records: list[Mapping[str, Any] | None]
    errors: dict[int, InferenceError]
    explain: bool = True


def is_jsonlines(content_type: str | None) -> bool:
    return media_type(content_type) == CONTENT_TYPE_JSONLINES


def parse_lines(body: bytes | bytearray | str, content_type: str | None) -> LineBatch:
    """Split a request into records; a line that is not one encounter is refused alone."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    explain = media_parameters(content_type).get(FACTORS_PARAMETER, "").lower() != NO_FACTORS
    batch = LineBatch(records=[], errors={}, explain=explain)
    holder = EncounterBatch(records=[], batched=True)
    for line in raw.splitlines():
        if not line.strip():
            continue
        index = len(batch.records)
        try:
            record = check_record(_decode(line), holder, index)
        except InferenceError as e:
            batch.records.append(None)
            batch.errors[index] = e
            continue
        batch.records.append(record)
    return batch


def _error_line(error: InferenceError) -> dict[str, Any]:
    return {LINE_ERROR: error.code, LINE_ERROR_MESSAGE: error.message}


def _score_chunk(
    serving: ServingModel, indexed: list[tuple[int, Mapping[str, Any]]], explain: bool
) -> dict[int, dict[str, Any]]:
    """Predictions of one chunk by line number; a record the encoder refuses is set apart."""
    good: list[tuple[int, Mapping[str, Any]]] = []
    answers: dict[int, dict[str, Any]] = {}
    try:
        serving.encoder.encode([record for _, record in indexed])
        good = indexed
    except UnscorableRecordError:
        for index, record in indexed:  # error path only: find the records at fault
            try:
                serving.encoder.encode([record])
                good.append((index, record))
            except UnscorableRecordError as e:
                path = EncounterBatch(records=[], batched=True).field_path(index, e.field)
                answers[index] = _error_line(InvalidRequestError(path, e.reason))
    if good:
        chunk = EncounterBatch(records=[record for _, record in good], batched=True)
        for (index, _), prediction in zip(
            good, predict(serving, chunk, explain=explain), strict=True
        ):
            answers[index] = prediction
    return answers


class LineAnswers(list[dict[str, Any]]):
    """The answers to a JSON-lines request (``output_fn`` writes them as lines)."""


def predict_lines(serving: ServingModel, batch: LineBatch) -> LineAnswers:
    """One answer per record, in order: its prediction, or the error that kept it unscored."""
    answers = {index: _error_line(error) for index, error in batch.errors.items()}
    valid = [(i, record) for i, record in enumerate(batch.records) if record is not None]
    for start in range(0, len(valid), MAX_BATCH_SIZE):
        answers.update(_score_chunk(serving, valid[start : start + MAX_BATCH_SIZE], batch.explain))
    return LineAnswers(answers[index] for index in range(len(batch.records)))


def lines_body(answers: Sequence[Mapping[str, Any]], accept: str | None) -> tuple[str, str]:
    """The answer lines joined by newlines (Batch Transform adds the last one)."""
    if accept and {media_type(part) for part in accept.split(",")}.isdisjoint(JSONLINES_ACCEPTS):
        raise UnsupportedAcceptError(
            f"JSON-lines requests are answered in {CONTENT_TYPE_JSONLINES}"
        )
    text = "\n".join(
        json.dumps(answer, separators=(",", ":"), allow_nan=False) for answer in answers
    )
    return text, CONTENT_TYPE_JSONLINES
