"""The Charlson comorbidity index over ICD-9-CM codes (Quan et al. 2005, enhanced), defined once.

The categories, weights and severity hierarchy are data here, with a plain-Python index over a
list of codes: the Spark ETL (``glue_jobs.charlson``, the same table as Spark columns) and the
prediction API's FHIR input (``fhir_mapping``) both score with them, so training and serving
cannot disagree. Codes are matched without dots on their first 3, 4 or 5 characters; where a
mild and a severe form of one disease are both present only the severe one counts.

Standard library only, like the rest of ``contracts``.
"""

from __future__ import annotations

from collections.abc import Iterable


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

#: Category -> Charlson weight.
CHARLSON_WEIGHTS: dict[str, int] = {name: weight for name, weight, _ in CHARLSON_CATEGORIES}


def charlson_index(codes: Iterable[str]) -> int:
    """Return the Charlson index of normalised ICD-9-CM diagnosis codes (no dots, upper case)."""
    prefixes = {code[:n] for code in codes for n in CHARLSON_PREFIX_LENGTHS if len(code) >= n}
    present = {name for name, _, listed in CHARLSON_CATEGORIES if prefixes.intersection(listed)}
    score = sum(CHARLSON_WEIGHTS[name] for name in present)
    for mild, severe in CHARLSON_HIERARCHY:
        if mild in present and severe in present:
            score -= CHARLSON_WEIGHTS[mild]
    return score
