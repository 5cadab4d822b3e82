"""The endpoint's wire format (contracts.serving): request bodies in, response bodies out.

A request is one canonical encounter, a JSON list of them, or ``{"instances": [...]}``. Every
record is checked here for what the model cannot do without (the contract's non-nullable
model inputs) and for what must never reach it (raw identifiers); types and ranges are the
encoder's business. Errors name the field by its path (``instances.3.age_years``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts import serving
from contracts.encounter import model_input_fields
from contracts.serving import CONTENT_TYPE_JSON, INSTANCES_KEY, MAX_BATCH_SIZE, PREDICTIONS_KEY
from inference.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)

BODY = "body"
ENCOUNTER_KEY = serving.ENCOUNTER_KEY

#: The API hashes these before calling the endpoint; a record carrying one is refused.
RAW_IDENTIFIER_FIELDS = serving.RAW_IDENTIFIER_FIELDS

#: Model inputs a record must carry with a value; the nullable ones are imputed when absent.
REQUIRED_FIELDS = tuple(spec.name for spec in model_input_fields() if not spec.nullable)

#: Accept values answered with JSON (no Accept header at all is treated the same).
JSON_ACCEPTS = frozenset({CONTENT_TYPE_JSON, "*/*", "application/*"})

#: Deepest nesting of arrays and objects a request may have. A valid request nests 4 deep
#: (``{"instances": [{"diagnosis_codes": [...]}]}``); deeper is refused before any walk of it
#: can exhaust the stack.
MAX_JSON_DEPTH = 32
#: Digits beyond which an integer literal is surely outside float range (max ~1.8e308, 309
#: digits); such a literal becomes ``BEYOND_FLOAT_RANGE`` (with its sign) without being
#: converted, so a 100,000-digit number costs nothing and is clipped like any out-of-range value.
MAX_INT_DIGITS = 310
BEYOND_FLOAT_RANGE = 10**MAX_INT_DIGITS
#: The only charset a JSON body may declare (RFC 8259: JSON exchanged between systems is UTF-8).
JSON_CHARSET = "utf-8"


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


def media_parameters(header: str | None) -> dict[str, str]:
    """The ``name=value`` parameters of a Content-Type value, names lower-cased, quotes off."""
    parameters: dict[str, str] = {}
    for part in (header or "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip():
            parameters[name.strip().lower()] = value.strip().strip('"')
    return parameters


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _bounded_int(literal: str) -> int:
    """An integer literal; one surely beyond float range is not converted (see above)."""
    digits = len(literal) - (literal[0] == "-")
    if digits > MAX_INT_DIGITS:
        return -BEYOND_FLOAT_RANGE if literal[0] == "-" else BEYOND_FLOAT_RANGE
    return int(literal)


def _bounded_float(literal: str) -> float | int:
    """A number literal with a fraction or exponent; one beyond float range (``1e999``) is
    out of range, not infinite: JSON has no infinity, so it is clipped like an integer."""
    number = float(literal)
    if math.isinf(number):
        return -BEYOND_FLOAT_RANGE if number < 0 else BEYOND_FLOAT_RANGE
    return number


def _check_structure(document: Any) -> None:
    """Refuse nesting deeper than ``MAX_JSON_DEPTH`` and text that is not Unicode (a lone
    surrogate written as an escape, which no UTF-8 consumer downstream can take)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequestError(BODY, f"nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            for key in value:
                _check_text(key)
            pending.extend((child, depth + 1) for child in value.values())
        else:
            pending.extend((child, depth + 1) for child in value)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidRequestError(BODY, "contains text that is not valid Unicode") from e


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
        document = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except RecursionError as e:
        raise InvalidRequestError(BODY, f"nests deeper than {MAX_JSON_DEPTH} levels") from e
    except ValueError as e:
        raise InvalidRequestError(BODY, "must be valid JSON") from e
    _check_structure(document)
    return document


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
    charset = media_parameters(content_type).get("charset", JSON_CHARSET)
    if charset.lower() != JSON_CHARSET:
        raise UnsupportedContentTypeError(f"JSON must be {JSON_CHARSET} encoded")
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
