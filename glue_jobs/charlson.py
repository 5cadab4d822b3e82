"""The Charlson comorbidity index as a Spark column (the tables: ``contracts.charlson``).

Evaluated per row on the admission's code array (no explode, no join): each tagged code is
matched on the tag plus its first 3, 4 or 5 characters against literal sets, with the severity
hierarchy applied; ``contracts.charlson.charlson_index`` is the same rule in plain Python.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F  # noqa: N812 (house style)

from contracts.charlson import CHARLSON_CATEGORIES, CHARLSON_HIERARCHY, CHARLSON_WEIGHTS
from glue_jobs.codes import with_legacy_tag


def _has_category(codes: Column, prefixes: tuple[str, ...]) -> Column:
    """True when any tagged code starts with one of the tagged prefixes."""
    lengths = sorted({len(p) for p in prefixes})

    def matches(code: Column) -> Column:
        tests = [
            F.substring(code, 1, n).isin(*sorted({p for p in prefixes if len(p) == n}))
            for n in lengths
        ]
        return reduce(lambda left, right: left | right, tests)

    return F.coalesce(F.exists(codes, matches), F.lit(False))


def charlson_index(codes: Column) -> Column:
    """Return the Charlson index of an ``array<string>`` of normalised diagnosis codes,
    system-tagged (ICD-9-CM or ICD-10-CM) or untagged (read as ICD-9-CM)."""
    codes = with_legacy_tag("diagnosis_codes", codes)
    present = {name: _has_category(codes, prefixes) for name, _, prefixes in CHARLSON_CATEGORIES}
    score: Column = F.lit(0)
    for name, weight in CHARLSON_WEIGHTS.items():
        score = score + present[name].cast("int") * F.lit(weight)
    for mild, severe in CHARLSON_HIERARCHY:
        both = present[mild] & present[severe]
        score = score - both.cast("int") * F.lit(CHARLSON_WEIGHTS[mild])
    return score.cast("int")
