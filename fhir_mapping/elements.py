"""Strict readers of the FHIR R4 elements the mapping uses: JSON types, dates, codings.

This is the "lighter strict parser" of the FHIR input (the ``fhir.resources`` models cost the
Lambda's cold import more than the rest of the function; see
``benchmarks/results/fhir_parsing.json``): every element the mapping reads is checked against
its FHIR R4 datatype (http://hl7.org/fhir/R4/datatypes.html) and anything else fails with
``Reason.INVALID_ELEMENT`` and the element's path. Elements the mapping does not read are
not inspected, as a FHIR server ignores extensions it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from fhir_mapping.errors import MappingError, Reason

# FHIR R4 primitive formats (datatypes.html): date, dateTime, id.
_DATE = re.compile(r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?")
_DATE_TIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?:\.\d{1,9})?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?"
)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def invalid(location: str) -> MappingError:
    """The error for an element of the wrong type or format."""
    return MappingError(Reason.INVALID_ELEMENT, location)


def optional(resource: Mapping[str, Any], name: str, kind: type, location: str) -> Any:
    """Element ``name`` of ``resource`` if present (a JSON null counts as absent), checked to
    be of JSON type ``kind`` (``dict``, ``list``, ``str``, ``bool``)."""
    value = resource.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise invalid(f"{location}.{name}")
    return value


def objects(resource: Mapping[str, Any], name: str, location: str) -> Iterator[dict[str, Any]]:
    """The items of a repeating complex element (each must be a JSON object)."""
    for item in optional(resource, name, list, location) or ():
        if not isinstance(item, dict):
            raise invalid(f"{location}.{name}")
        yield item


def text(resource: Mapping[str, Any], name: str, location: str) -> str | None:
    """A string element, stripped; empty counts as absent."""
    value = optional(resource, name, str, location)
    if value is None:
        return None
    return value.strip() or None


def number(resource: Mapping[str, Any], name: str, location: str) -> float | None:
    """A decimal element (a JSON number, never a string or a boolean)."""
    value = resource.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise invalid(f"{location}.{name}")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any double
        raise invalid(f"{location}.{name}") from None


def fhir_id(value: Any, location: str) -> str:
    """A resource id as FHIR R4 allows it: 1-64 of ``[A-Za-z0-9-.]``."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise invalid(location)
    return value


def parse_date(value: Any, location: str) -> date:
    """A FHIR ``date``; a partial date (``1950`` or ``1950-04``) reads as its first day."""
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise invalid(location)
    try:
        return date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
    except ValueError:
        raise invalid(location) from None


def parse_date_time(value: Any, location: str) -> datetime:
    """A FHIR ``dateTime`` as an aware UTC datetime.

    A value without a time is midnight UTC of its (first) day; FHIR requires a time zone
    whenever a time is given, so a time without one is invalid.
    """
    match = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise invalid(location)
    try:
        if match["H"] is None:
            day = date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return datetime(
            int(match["y"]),
            int(match["m"]),
            int(match["d"]),
            int(match["H"]),
            int(match["M"]),
            min(int(match["S"]), 59),  # FHIR allows a leap second
            tzinfo=_zone(match["tz"]),
        ).astimezone(UTC)
    except ValueError:
        raise invalid(location) from None


def _zone(value: str) -> timezone:
    if value == "Z":
        return UTC
    sign = -1 if value[0] == "-" else 1
    hours, minutes = int(value[1:3]), int(value[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def date_time(resource: Mapping[str, Any], name: str, location: str) -> datetime | None:
    """An optional ``dateTime`` element."""
    value = resource.get(name)
    return None if value is None else parse_date_time(value, f"{location}.{name}")


@dataclass(frozen=True)
class Coding:
    """One ``Coding``: system URI, code and display (each may be absent)."""

    system: str | None
    code: str | None
    display: str | None


def codings(concept: Mapping[str, Any] | None, location: str) -> list[Coding]:
    """The codings of a ``CodeableConcept``, in order."""
    if concept is None:
        return []
    found = []
    for coding in objects(concept, "coding", location):
        where = f"{location}.coding"
        found.append(
            Coding(
                text(coding, "system", where),
                text(coding, "code", where),
                text(coding, "display", where),
            )
        )
    return found


def concept(resource: Mapping[str, Any], name: str, location: str) -> dict[str, Any] | None:
    """An optional ``CodeableConcept`` element (a JSON object)."""
    value: dict[str, Any] | None = optional(resource, name, dict, location)
    return value


def code_in(concept_value: Mapping[str, Any] | None, system: str, location: str) -> str | None:
    """The first code of ``system`` in a CodeableConcept (``None`` when it has none)."""
    for coding in codings(concept_value, location):
        if coding.system == system and coding.code is not None:
            return coding.code
    return None


def concept_name(concept_value: Mapping[str, Any] | None, location: str) -> str | None:
    """A concept's name as the contract stores names: its text, else the first coding's
    display, lower case."""
    if concept_value is None:
        return None
    name = text(concept_value, "text", location)
    if name is None:
        first = codings(concept_value, location)[:1]
        name = first[0].display if first else None
    return None if name is None else name.lower()
