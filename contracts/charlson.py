"""The Charlson comorbidity index from ICD-9-CM and ICD-10 diagnosis codes, defined once.

Quan H, Sundararajan V, Halfon P, et al. Coding algorithms for defining comorbidities in
ICD-9-CM and ICD-10 administrative data. Med Care 2005;43(11):1130-1139, Table 1: the
enhanced ICD-9-CM and the ICD-10 coding algorithms of the Charlson conditions, transcribed
below as published (a published coding algorithm is a definition, not a hand-made mapping).

Codes are system-tagged (``icd9cm:4280``, ``icd10cm:I509``; an untagged code is read as
ICD-9-CM, ``contracts.codes``) and matched on the tag plus the code's first 3, 4 or 5
characters; a code of another system (a procedure, a drug) matches nothing. Charlson weights;
where a mild and a severe form of the same disease are both present only the severe one counts
(diabetes, liver disease, malignancy), as in the usual implementations of the index. ICD-10
codes that ICD-10-CM does not use (E12, E14, F00) stay in the sets: they are part of the
published algorithm and match nothing in US data.

The tables are data here with a plain-Python index over a list of codes: the Spark ETL
(``glue_jobs.charlson``, the same tables as Spark columns) and the prediction API's FHIR input
(``fhir_mapping``) both score with them, so training and serving cannot disagree.

Standard library only, like the rest of ``contracts``.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.codes import LEGACY_SYSTEM, SEPARATOR, CodeSystem


def _span(first: int, last: int, width: int = 3) -> tuple[str, ...]:
    """Return the zero-padded numeric prefixes ``first..last`` inclusive."""
    return tuple(str(number).zfill(width) for number in range(first, last + 1))


def _decimal_span(stem: str, first: int, last: int) -> tuple[str, ...]:
    """Return ``stem`` followed by each digit ``first..last`` (e.g. 4254..4259)."""
    return tuple(f"{stem}{digit}" for digit in range(first, last + 1))


def _letter_span(letter: str, first: int, last: int) -> tuple[str, ...]:
    """Return the ICD-10 categories ``letter first..last`` (e.g. C00..C26)."""
    return tuple(f"{letter}{number:02d}" for number in range(first, last + 1))


def _subcategories(stems: tuple[str, ...], digits: str) -> tuple[str, ...]:
    """Return each ICD-10 category stem followed by each of ``digits`` (E10 + "01" ->
    E100, E101)."""
    return tuple(f"{stem}{digit}" for stem in stems for digit in digits)


_DIABETES_ICD10 = ("E10", "E11", "E12", "E13", "E14")


#: (category, Charlson weight, ICD-9-CM prefixes without dots), Quan 2005 enhanced ICD-9-CM.
ICD9_CATEGORIES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
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

#: Category -> ICD-10 prefixes without dots, Quan 2005 Table 1 (ICD-10 coding algorithm).
ICD10_PREFIXES: dict[str, tuple[str, ...]] = {
    "myocardial_infarction": ("I21", "I22", "I252"),
    "congestive_heart_failure": (
        "I099",
        "I110",
        "I130",
        "I132",
        "I255",
        "I420",
        *_decimal_span("I42", 5, 9),
        "I43",
        "I50",
        "P290",
    ),
    "peripheral_vascular": (
        "I70",
        "I71",
        "I731",
        "I738",
        "I739",
        "I771",
        "I790",
        "I792",
        "K551",
        "K558",
        "K559",
        "Z958",
        "Z959",
    ),
    "cerebrovascular": ("G45", "G46", "H340", *_letter_span("I", 60, 69)),
    "dementia": (*_letter_span("F", 0, 3), "F051", "G30", "G311"),
    "chronic_pulmonary": (
        "I278",
        "I279",
        *_letter_span("J", 40, 47),
        *_letter_span("J", 60, 67),
        "J684",
        "J701",
        "J703",
    ),
    "rheumatic": (
        "M05",
        "M06",
        "M315",
        *_letter_span("M", 32, 34),
        "M351",
        "M353",
        "M360",
    ),
    "peptic_ulcer": _letter_span("K", 25, 28),
    "mild_liver": (
        "B18",
        *_decimal_span("K70", 0, 3),
        "K709",
        *_decimal_span("K71", 3, 5),
        "K717",
        "K73",
        "K74",
        "K760",
        *_decimal_span("K76", 2, 4),
        "K768",
        "K769",
        "Z944",
    ),
    "diabetes_uncomplicated": _subcategories(_DIABETES_ICD10, "01689"),
    "diabetes_complicated": _subcategories(_DIABETES_ICD10, "23457"),
    "hemiplegia_paraplegia": (
        "G041",
        "G114",
        "G801",
        "G802",
        "G81",
        "G82",
        *_decimal_span("G83", 0, 4),
        "G839",
    ),
    "renal": (
        "I120",
        "I131",
        *_decimal_span("N03", 2, 7),
        *_decimal_span("N05", 2, 7),
        "N18",
        "N19",
        "N250",
        *_decimal_span("Z49", 0, 2),
        "Z940",
        "Z992",
    ),
    "malignancy": (
        *_letter_span("C", 0, 26),
        *_letter_span("C", 30, 34),
        *_letter_span("C", 37, 41),
        "C43",
        *_letter_span("C", 45, 58),
        *_letter_span("C", 60, 76),
        *_letter_span("C", 81, 85),
        "C88",
        *_letter_span("C", 90, 97),
    ),
    "moderate_severe_liver": (
        "I850",
        "I859",
        "I864",
        "I982",
        "K704",
        "K711",
        "K721",
        "K729",
        "K765",
        "K766",
        "K767",
    ),
    "metastatic_solid_tumour": _letter_span("C", 77, 80),
    "hiv_aids": ("B20", "B21", "B22", "B24"),
}


def _tagged_prefixes(icd9: tuple[str, ...], icd10: tuple[str, ...]) -> tuple[str, ...]:
    return (
        *[f"{CodeSystem.ICD9CM.value}{SEPARATOR}{p}" for p in icd9],
        *[f"{CodeSystem.ICD10CM.value}{SEPARATOR}{p}" for p in icd10],
    )


#: (category, Charlson weight, tagged prefixes of both eras).
CHARLSON_CATEGORIES: tuple[tuple[str, int, tuple[str, ...]], ...] = tuple(
    (name, weight, _tagged_prefixes(icd9, ICD10_PREFIXES[name]))
    for name, weight, icd9 in ICD9_CATEGORIES
)

#: Category -> Charlson weight.
CHARLSON_WEIGHTS: dict[str, int] = {name: weight for name, weight, _ in CHARLSON_CATEGORIES}


#: Lengths of the untagged code prefixes the tables list.
CHARLSON_PREFIX_LENGTHS = (3, 4, 5)


def _tagged(code: str) -> str:
    """The code with its system tag; an untagged code is the field's legacy ICD-9-CM."""
    if SEPARATOR in code:
        return code
    return f"{LEGACY_SYSTEM['diagnosis_codes'].value}{SEPARATOR}{code}"


def charlson_index(codes: Iterable[str]) -> int:
    """Return the Charlson index of normalised diagnosis codes (no dots, upper case), tagged
    ICD-9-CM or ICD-10-CM, or untagged (read as ICD-9-CM)."""
    prefixes: set[str] = set()
    for code in codes:
        system, _, value = _tagged(code).partition(SEPARATOR)
        prefixes.update(
            f"{system}{SEPARATOR}{value[:n]}" for n in CHARLSON_PREFIX_LENGTHS if len(value) >= n
        )
    present = {name for name, _, listed in CHARLSON_CATEGORIES if prefixes.intersection(listed)}
    score = sum(CHARLSON_WEIGHTS[name] for name in present)
    for mild, severe in CHARLSON_HIERARCHY:
        if mild in present and severe in present:
            score -= CHARLSON_WEIGHTS[mild]
    return score
