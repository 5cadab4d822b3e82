"""Validating what a request names: the day, an encounter key and the filters.

Each check raises a typed error whose body is fixed; no value is ever quoted back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from contracts.serving import RISK_BANDS
from contracts.worklist import parse_day
from lambdas.worklist_api.errors import (
    InvalidDayError,
    InvalidEncounterKeyError,
    InvalidFilterError,
)
from lambdas.worklist_api.ranking import FILTER_BAND, FILTER_UNIT, Filters

#: A de-identified encounter key: HMAC-SHA256 in hex (contracts.deidentify).
ENCOUNTER_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")
#: A unit (admitting service) name as the ETL writes it: letters, digits, a few separators.
UNIT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _/&().,'-]{0,63}$")


def valid_day(value: str) -> str:
    """``value`` if it is a real ``YYYY-MM-DD`` date."""
    try:
        parse_day(value)
    except (TypeError, ValueError):
        raise InvalidDayError from None
    return value


def valid_encounter_key(value: str) -> str:
    if not ENCOUNTER_KEY_PATTERN.fullmatch(value):
        raise InvalidEncounterKeyError
    return value


def valid_filters(query: Mapping[str, Sequence[str]] | None) -> Filters:
    """The ``unit`` and ``band`` query parameters; unknown or repeated ones are refused."""
    query = query or {}
    if set(query) - {FILTER_UNIT, FILTER_BAND}:
        raise InvalidFilterError
    values: dict[str, str | None] = {}
    for name in (FILTER_UNIT, FILTER_BAND):
        given = list(query.get(name) or [])
        if len(given) > 1:
            raise InvalidFilterError
        values[name] = given[0] if given and given[0] != "" else None
    unit, band = values[FILTER_UNIT], values[FILTER_BAND]
    if unit is not None and not UNIT_PATTERN.fullmatch(unit):
        raise InvalidFilterError
    if band is not None and band not in RISK_BANDS:
        raise InvalidFilterError
    return Filters(unit=unit, band=band)
