"""The endpoint's wire format (contracts.serving): request bodies in, response bodies out.

A request is one canonical encounter, a JSON list of them, or ``{"instances": [...]}``. Every
record is checked here for what the model cannot do without (the contract's non-nullable
model inputs) and for what must never reach it (raw identifiers); types and ranges are the
encoder's business. Errors name the field by its path (``instances.3.age_years``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.encounter import model_input_fields
from contracts.serving import CONTENT_TYPE_JSON, INSTANCES_KEY, MAX_BATCH_SIZE, PREDICTIONS_KEY
from inference.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)

BODY = "body"
ENCOUNTER_KEY = "encounter_key"

#: The API hashes these before calling the endpoint; a record carrying one is refused.
RAW_IDENTIFIER_FIELDS = ("patient_id", "encounter_id")

#: Model inputs a record must carry with a value; the nullable ones are imputed when absent.
REQUIRED_FIELDS = tuple(spec.name for spec in model_input_fields() if not spec.nullable)

#: Accept values answered with JSON (no Accept header at all is treated the same).
JSON_ACCEPTS = frozenset({CONTENT_TYPE_JSON, "*/*", "application/*"})


@dataclass(frozen=True)
class EncounterBatch:
    """Records of one request, in order; ``batched`` tells a list from a single object."""

    records: list[Mapping[str, Any]]
    batched: bool

    def field_path(self, index: int, field: str) -> str:
        """Path of a field of record ``index`` as the caller wrote it."""
        return f"{INSTANCES_KEY}.{index}.{field}" if self.batched else field


def media_type(header: str | None) -> str:
    """The bare, lower-case media type of a Content-Type or Accept value."""
    return (header or "").split(";", 1)[0].strip().lower()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _decode(body: bytes | bytearray | str) -> Any:
    text: str
    if isinstance(body, bytes | bytearray):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidRequestError(BODY, "must be UTF-8 encoded JSON") from e
    elif isinstance(body, str):
        text = body
    else:
        raise InvalidRequestError(BODY, "must be bytes or text")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise InvalidRequestError(BODY, "must be valid JSON") from e


def _instances(document: Any) -> tuple[list[Any], bool]:
    if isinstance(document, dict) and INSTANCES_KEY in document:
        instances = document[INSTANCES_KEY]
        if not isinstance(instances, list):
            raise InvalidRequestError(INSTANCES_KEY, "must be a list of encounters")
        return instances, True
    if isinstance(document, dict):
        return [document], False
    if isinstance(document, list):
        return document, True
    raise InvalidRequestError(BODY, "must be an encounter, a list of them or {instances: [...]}")


def check_record(record: Any, batch: EncounterBatch, index: int) -> Mapping[str, Any]:
    """Return ``record`` if it can go to the encoder; raise naming the first field at fault."""
    if not isinstance(record, dict):
        path = f"{INSTANCES_KEY}.{index}" if batch.batched else BODY
        raise InvalidRequestError(path, "must be an object of encounter fields")
    for name in RAW_IDENTIFIER_FIELDS:
        if name in record:
            raise InvalidRequestError(
                batch.field_path(index, name), "raw identifiers are not accepted"
            )
    key = record.get(ENCOUNTER_KEY)
    if key is not None and not isinstance(key, str):
        raise InvalidRequestError(batch.field_path(index, ENCOUNTER_KEY), "must be a string")
    for name in REQUIRED_FIELDS:
        if record.get(name) is None:
            raise InvalidRequestError(batch.field_path(index, name), "is required")
    return record


def parse_request(body: bytes | bytearray | str, content_type: str | None) -> EncounterBatch:
    """Decode and check a request body; the records are not encoded yet."""
    if media_type(content_type) != CONTENT_TYPE_JSON:
        raise UnsupportedContentTypeError(f"content type must be {CONTENT_TYPE_JSON}")
    instances, batched = _instances(_decode(body))
    if not instances:
        raise InvalidRequestError(INSTANCES_KEY, "must hold at least one encounter")
    if len(instances) > MAX_BATCH_SIZE:
        raise PayloadTooLargeError(f"at most {MAX_BATCH_SIZE} encounters per request")
    batch = EncounterBatch(records=[], batched=batched)
    for index, record in enumerate(instances):
        batch.records.append(check_record(record, batch, index))
    return batch


def response_body(predictions: Sequence[Mapping[str, Any]], accept: str | None) -> tuple[str, str]:
    """Serialise predictions as ``{"predictions": [...]}``; JSON is the only answer type."""
    if accept and {media_type(part) for part in accept.split(",")}.isdisjoint(JSON_ACCEPTS):
        raise UnsupportedAcceptError(f"only {CONTENT_TYPE_JSON} responses are available")
    document = {PREDICTIONS_KEY: list(predictions)}
    return json.dumps(document, separators=(",", ":"), allow_nan=False), CONTENT_TYPE_JSON
