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


def _span(first: int, last: int, width: int = 3) -> tuple[str, ...]:
    """Return the zero-padded numeric prefixes ``first..last`` inclusive."""
    return tuple(str(number).zfill(width) for number in range(first, last + 1))


def _decimal_span(stem: str, first: int, last: int) -> tuple[str, ...]:
    """Return ``stem`` followed by each digit ``first..last`` (e.g. 4254..4259)."""
    return tuple(f"{stem}{digit}" for digit in range(first, last + 1))


#: (category, Charlson weight, ICD-9-CM prefixes without dots), Quan 2005 enhanced ICD-9-CM.
CHARLSON_CATEGORIES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("myocardial_infarction", 1, ("410", "412")),
    (
        "congestive_heart_failure",
        1,
        (
            "39891",
            "40201",
            "40211",
            "40291",
            "40401",
            "40403",
            "40411",
            "40413",
            "40491",
            "40493",
            *_decimal_span("425", 4, 9),
            "428",
        ),
    ),
    (
        "peripheral_vascular",
        1,
        ("0930", "4373", "440", "441", *_decimal_span("443", 1, 9), "4471", "5571", "5579", "V434"),
    ),
    ("cerebrovascular", 1, ("36234", *_span(430, 438))),
    ("dementia", 1, ("290", "2941", "3312")),
    (
        "chronic_pulmonary",
        1,
        ("4168", "4169", *_span(490, 505), "5064", "5081", "5088"),
    ),
    (
        "rheumatic",
        1,
        ("4465", *_decimal_span("710", 0, 4), *_decimal_span("714", 0, 2), "7148", "725"),
    ),
    ("peptic_ulcer", 1, _span(531, 534)),
    (
        "mild_liver",
        1,
        (
            "07022",
            "07023",
            "07032",
            "07033",
            "07044",
            "07054",
            "0706",
            "0709",
            "570",
            "571",
            "5733",
            "5734",
            "5738",
            "5739",
            "V427",
        ),
    ),
    # "250" alone (a 3-digit code, as UCI truncates) is diabetes of some kind: count it as the
    # mild form; the hierarchy drops it when a complicated 250.4-250.7 code is present.
    ("diabetes_uncomplicated", 1, ("250", *_decimal_span("250", 0, 3), "2508", "2509")),
    ("diabetes_complicated", 2, _decimal_span("250", 4, 7)),
    (
        "hemiplegia_paraplegia",
        2,
        ("3341", "342", "343", *_decimal_span("344", 0, 6), "3449"),
    ),
    (
        "renal",
        2,
        (
            "40301",
            "40311",
            "40391",
            "40402",
            "40403",
            "40412",
            "40413",
            "40492",
            "40493",
            "582",
            *_decimal_span("583", 0, 7),
            "585",
            "586",
            "5880",
            "V420",
            "V451",
            "V56",
        ),
    ),
    (
        "malignancy",
        2,
        (*_span(140, 172), *_span(174, 194), *_decimal_span("195", 0, 8), *_span(200, 208), "2386"),
    ),
    ("moderate_severe_liver", 3, (*_decimal_span("456", 0, 2), *_decimal_span("572", 2, 8))),
    ("metastatic_solid_tumour", 6, _span(196, 199)),
    ("hiv_aids", 6, _span(42, 44)),
)

#: (mild category, severe category): the mild one is not counted when the severe one is.
CHARLSON_HIERARCHY: tuple[tuple[str, str], ...] = (
    ("diabetes_uncomplicated", "diabetes_complicated"),
    ("mild_liver", "moderate_severe_liver"),
    ("malignancy", "metastatic_solid_tumour"),
)

CHARLSON_PREFIX_LENGTHS = (3, 4, 5)

_WEIGHTS = {name: weight for name, weight, _ in CHARLSON_CATEGORIES}


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
    for name, weight in _WEIGHTS.items():
        score = score + present[name].cast("int") * F.lit(weight)
    for mild, severe in CHARLSON_HIERARCHY:
        both = present[mild] & present[severe]
        score = score - both.cast("int") * F.lit(_WEIGHTS[mild])
    return score.cast("int")
