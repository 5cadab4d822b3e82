"""System-tagged codes in Spark: every source's codes normalised and tagged in one place.

The contract's code fields hold ``<system>:<code>`` (``contracts.codes``): upper case, no
dots or spaces, e.g. ``icd10cm:I509``. The helpers here build that form from a source's
columns with Spark built-ins, so MIMIC-III, MIMIC-IV, FHIR and UCI tag codes identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain

from pyspark.sql import Column
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.codes import LEGACY_SYSTEM, SEPARATOR, CodeSystem

#: What ``contracts.codes.normalise`` removes: dots and white space.
_STRIP_PATTERN = r"[.\s]"


def normalised(code: Column) -> Column:
    """The code upper-cased without dots or spaces; empty or null becomes null."""
    cleaned = F.upper(F.regexp_replace(code.cast("string"), _STRIP_PATTERN, ""))
    return F.when(F.length(cleaned) > 0, cleaned)


def tagged(system: CodeSystem, code: Column) -> Column:
    """``<system>:<normalised code>``; null where the code is null or empty.

    NDCs also lose their hyphens, as ``contracts.codes.normalise`` does.
    """
    value = normalised(code)
    if system is CodeSystem.NDC:
        value = F.regexp_replace(value, "-", "")
    return F.concat(F.lit(f"{system.value}{SEPARATOR}"), value)


def tagged_by(systems: Mapping[str, CodeSystem], key: Column, code: Column) -> Column:
    """Tag each row's code with the system its ``key`` names (an ``icd_version`` of 9 or 10,
    a FHIR system URI); null where the key is not in ``systems`` (the caller quarantines)."""
    system_of = F.create_map(
        *[F.lit(item) for item in chain.from_iterable((k, s.value) for k, s in systems.items())]
    )
    system = system_of[key.cast("string")]
    value = normalised(code)
    if CodeSystem.NDC in systems.values():
        value = F.coalesce(
            F.when(system == CodeSystem.NDC.value, F.regexp_replace(value, "-", "")), value
        )
    return F.when(system.isNotNull(), F.concat(system, F.lit(SEPARATOR), value))


def with_legacy_tag(field_name: str, codes: Column) -> Column:
    """An ``array<string>`` of codes with every untagged entry read as the field's legacy
    system (ICD-9), as ``contracts.codes.parse`` reads it."""
    legacy = f"{LEGACY_SYSTEM[field_name].value}{SEPARATOR}"
    return F.transform(
        codes,
        lambda code: F.coalesce(
            F.when(F.instr(code, SEPARATOR) > 0, code), F.concat(F.lit(legacy), code)
        ),
    )
