"""Charlson comorbidity index from ICD-9-CM diagnosis codes (Quan et al. 2005, enhanced).

Codes are matched without dots on their first 3, 4 or 5 characters against literal sets,
per row on the admission's code array (no explode, no join). Charlson weights; where a mild
and a severe form of the same disease are both present only the severe one counts
(diabetes, liver disease, malignancy), as in the usual implementations of the index.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F  # noqa: N812 (house style)

# The table is data shared with the API's FHIR input (contracts.charlson); this module is its
# Spark form.
from contracts.charlson import (
    CHARLSON_CATEGORIES,
    CHARLSON_HIERARCHY,
    CHARLSON_PREFIX_LENGTHS,
    CHARLSON_WEIGHTS,
)

__all__ = [
    "CHARLSON_CATEGORIES",
    "CHARLSON_HIERARCHY",
    "CHARLSON_PREFIX_LENGTHS",
    "CHARLSON_WEIGHTS",
    "charlson_index",
    "normalise_icd9",
]


def normalise_icd9(code: Column) -> Column:
    """Return the ICD-9 code upper-cased without dots or spaces; empty becomes null."""
    cleaned = F.upper(F.regexp_replace(code, r"[.\s]", ""))
    return F.when(F.length(cleaned) > 0, cleaned)


def _has_category(codes: Column, prefixes: tuple[str, ...]) -> Column:
    """True when any code starts with one of the prefixes (3, 4 or 5 characters)."""

    def matches(code: Column) -> Column:
        tests = [
            F.substring(code, 1, n).isin(*sorted({p for p in prefixes if len(p) == n}))
            for n in CHARLSON_PREFIX_LENGTHS
            if any(len(p) == n for p in prefixes)
        ]
        return reduce(lambda left, right: left | right, tests)

    return F.coalesce(F.exists(codes, matches), F.lit(False))


def charlson_index(codes: Column) -> Column:
    """Return the Charlson index of an ``array<string>`` of normalised ICD-9 codes.

    Evaluated per row on the admission's code array (no explode, no join), with the
    severity hierarchy applied.
    """
    present = {name: _has_category(codes, prefixes) for name, _, prefixes in CHARLSON_CATEGORIES}
    score: Column = F.lit(0)
    for name, weight in CHARLSON_WEIGHTS.items():
        score = score + present[name].cast("int") * F.lit(weight)
    for mild, severe in CHARLSON_HIERARCHY:
        both = present[mild] & present[severe]
        score = score - both.cast("int") * F.lit(CHARLSON_WEIGHTS[mild])
    return score.cast("int")
