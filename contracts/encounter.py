"""The canonical encounter schema: one row per index admission.

Every source (MIMIC-III, UCI Diabetes-130, the synthetic generator) is mapped by the ETL into
these fields; training reads them, the inference module encodes them and the prediction API
validates requests against them. ``docs/data-contract.md`` is the prose version of this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: 2.0.0: code-sequence fields hold system-tagged codes (``contracts.codes``), ``medication_codes``
#: added. Artifacts of 1.x keep loading and serving (``docs/data-contract.md``, "Migration").
SCHEMA_VERSION = "2.0.0"

#: Ages above this are reported as this value (HIPAA safe-harbour style cap).
AGE_CAP_YEARS = 90

#: The label's horizon: an unplanned readmission within this many days of discharge.
READMISSION_WINDOW_DAYS = 30

#: Look-back window of the prior-utilisation features.
PRIOR_UTILISATION_WINDOW_DAYS = 365

UNKNOWN = "unknown"


class FieldKind(StrEnum):
    """What role a field plays; decides how training and serving treat it."""

    IDENTIFIER = "identifier"
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    CODE_SEQUENCE = "code_sequence"
    TEXT = "text"
    LABEL = "label"
    #: A training-only target beside the label (multi-task learning); never a model input,
    #: and training runs without it when a dataset lacks it.
    AUXILIARY_LABEL = "auxiliary_label"
    PROTECTED = "protected"
    META = "meta"


@dataclass(frozen=True)
class FieldSpec:
    """One field of the canonical encounter schema.

    ``valid_min``/``valid_max`` bound what a request may carry (outside: rejected with the
    field named); ``categories`` is the closed vocabulary of a categorical field (``None``
    means an open vocabulary learnt from the training split).
    """

    name: str
    kind: FieldKind
    dtype: str
    description: str
    nullable: bool = False
    model_input: bool = False
    categories: tuple[str, ...] | None = None
    valid_min: float | None = None
    valid_max: float | None = None
    clinical_label: str = ""

    @property
    def readable_name(self) -> str:
        """Name shown to clinicians in explanations."""
        return self.clinical_label or self.name.replace("_", " ")


SEX_CATEGORIES = ("F", "M", UNKNOWN)
ADMISSION_TYPE_CATEGORIES = ("emergency", "urgent", "elective", "newborn", "other", UNKNOWN)
ADMISSION_SOURCE_CATEGORIES = (
    "emergency_department",
    "physician_referral",
    "clinic_referral",
    "transfer_hospital",
    "transfer_nursing_facility",
    "transfer_other",
    "other",
    UNKNOWN,
)
DISCHARGE_DISPOSITION_CATEGORIES = (
    "home",
    "home_health",
    "skilled_nursing",
    "rehabilitation",
    "transfer_acute",
    "long_term_care",
    "psychiatric",
    "hospice",
    "left_against_advice",
    "expired",
    "other",
    UNKNOWN,
)
HBA1C_CATEGORIES = ("not_measured", "normal", "above_7", "above_8")
GLUCOSE_CATEGORIES = ("not_measured", "normal", "above_200", "above_300")
RACE_CATEGORIES = ("white", "black", "hispanic", "asian", "other", UNKNOWN)
SOURCES = ("mimic3", "uci_diabetes", "synthetic", "mimic4", "fhir")

_COUNT_MAX = 10_000.0

#: The de-identified identifiers (``contracts.deidentify``), named once: every record of the
#: ETL, the endpoint, the captures, the worklist and the labels carries them under these names.
PATIENT_KEY = "patient_key"
ENCOUNTER_KEY = "encounter_key"

ENCOUNTER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(PATIENT_KEY, FieldKind.IDENTIFIER, "string", "HMAC-SHA256 of the patient id."),
    FieldSpec(ENCOUNTER_KEY, FieldKind.IDENTIFIER, "string", "HMAC-SHA256 of the admission id."),
    FieldSpec(
        "age_years",
        FieldKind.NUMERIC,
        "int",
        "Age at admission, capped at 90.",
        model_input=True,
        valid_min=0,
        valid_max=130,
        clinical_label="age",
    ),
    FieldSpec(
        "sex",
        FieldKind.CATEGORICAL,
        "string",
        "Administrative sex.",
        model_input=True,
        categories=SEX_CATEGORIES,
        clinical_label="sex",
    ),
    FieldSpec(
        "admission_type",
        FieldKind.CATEGORICAL,
        "string",
        "Urgency of the admission.",
        model_input=True,
        categories=ADMISSION_TYPE_CATEGORIES,
        clinical_label="admission type",
    ),
    FieldSpec(
        "admission_source",
        FieldKind.CATEGORICAL,
        "string",
        "Where the patient came from.",
        model_input=True,
        categories=ADMISSION_SOURCE_CATEGORIES,
        clinical_label="admission source",
    ),
    FieldSpec(
        "discharge_disposition",
        FieldKind.CATEGORICAL,
        "string",
        "Where the patient went.",
        model_input=True,
        categories=DISCHARGE_DISPOSITION_CATEGORIES,
        clinical_label="discharge disposition",
    ),
    FieldSpec(
        "admitting_service",
        FieldKind.CATEGORICAL,
        "string",
        "Clinical service or specialty (open vocabulary, lower case).",
        nullable=True,
        model_input=True,
        clinical_label="admitting service",
    ),
    FieldSpec(
        "length_of_stay_days",
        FieldKind.NUMERIC,
        "double",
        "Discharge minus admission, in days.",
        model_input=True,
        valid_min=0,
        valid_max=400,
        clinical_label="length of stay (days)",
    ),
    FieldSpec(
        "prior_admissions_12m",
        FieldKind.NUMERIC,
        "int",
        "Inpatient admissions in the 365 days before this one.",
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="admissions in the prior 12 months",
    ),
    FieldSpec(
        "prior_ed_visits_12m",
        FieldKind.NUMERIC,
        "int",
        "Emergency department visits in the 365 days before this admission.",
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="ED visits in the prior 12 months",
    ),
    FieldSpec(
        "prior_outpatient_visits_12m",
        FieldKind.NUMERIC,
        "int",
        "Outpatient visits in the prior 12 months, where the source records them.",
        nullable=True,
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="outpatient visits in the prior 12 months",
    ),
    FieldSpec(
        "days_since_last_discharge",
        FieldKind.NUMERIC,
        "double",
        "Days from the previous discharge to this admission; null for a first admission.",
        nullable=True,
        model_input=True,
        valid_min=0,
        valid_max=100_000,
        clinical_label="days since last discharge",
    ),
    FieldSpec(
        "prior_encounters_on_record",
        FieldKind.NUMERIC,
        "int",
        "Earlier inpatient encounters of this patient in the hospital's record, any time back; "
        "null where the source cannot link a patient's encounters.",
        nullable=True,
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="earlier admissions on record",
    ),
    FieldSpec(
        "prior_readmissions_30d_on_record",
        FieldKind.NUMERIC,
        "int",
        "How many of those earlier encounters were followed by a readmission within 30 days "
        "(the label's definition); null where unknown.",
        nullable=True,
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="earlier 30-day readmissions on record",
    ),
    FieldSpec(
        "num_diagnoses",
        FieldKind.NUMERIC,
        "int",
        "Diagnoses coded for the admission.",
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="number of diagnoses",
    ),
    FieldSpec(
        "num_procedures",
        FieldKind.NUMERIC,
        "int",
        "Procedures coded for the admission.",
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="number of procedures",
    ),
    FieldSpec(
        "num_medications",
        FieldKind.NUMERIC,
        "int",
        "Distinct medications given.",
        model_input=True,
        valid_min=0,
        valid_max=_COUNT_MAX,
        clinical_label="number of medications",
    ),
    FieldSpec(
        "num_lab_tests",
        FieldKind.NUMERIC,
        "int",
        "Lab results during the admission.",
        model_input=True,
        valid_min=0,
        valid_max=100_000,
        clinical_label="number of lab tests",
    ),
    FieldSpec(
        "num_abnormal_labs",
        FieldKind.NUMERIC,
        "int",
        "Lab results flagged abnormal.",
        model_input=True,
        valid_min=0,
        valid_max=100_000,
        clinical_label="number of abnormal lab results",
    ),
    FieldSpec(
        "hba1c_result",
        FieldKind.CATEGORICAL,
        "string",
        "Highest HbA1c band in the admission.",
        model_input=True,
        categories=HBA1C_CATEGORIES,
        clinical_label="HbA1c",
    ),
    FieldSpec(
        "max_glucose_result",
        FieldKind.CATEGORICAL,
        "string",
        "Highest serum glucose band in the admission.",
        model_input=True,
        categories=GLUCOSE_CATEGORIES,
        clinical_label="maximum glucose",
    ),
    FieldSpec(
        "charlson_index",
        FieldKind.NUMERIC,
        "int",
        "Charlson comorbidity index (Quan 2005 ICD-9 mapping, unweighted by age).",
        model_input=True,
        valid_min=0,
        valid_max=40,
        clinical_label="Charlson comorbidity index",
    ),
    FieldSpec(
        "diagnosis_codes",
        FieldKind.CODE_SEQUENCE,
        "array<string>",
        "Diagnosis codes tagged with their system, icd9cm:<code> or icd10cm:<code> (upper case, "
        "no dots), in coded (priority) order; an untagged code is read as ICD-9-CM.",
        model_input=True,
        clinical_label="diagnosis",
    ),
    FieldSpec(
        "procedure_codes",
        FieldKind.CODE_SEQUENCE,
        "array<string>",
        "Procedure codes tagged with their system, icd9pcs:<code> (ICD-9-CM volume 3) or "
        "icd10pcs:<code>, in coded order; an untagged code is read as ICD-9-CM.",
        model_input=True,
        clinical_label="procedure",
    ),
    FieldSpec(
        "medications",
        FieldKind.CODE_SEQUENCE,
        "array<string>",
        "Medication names as the source gives them, lower case, in order of first prescription.",
        model_input=True,
        clinical_label="medication",
    ),
    FieldSpec(
        "medication_codes",
        FieldKind.CODE_SEQUENCE,
        "array<string>",
        "The medications' codes where the source has them, tagged ndc:<11 digits> or "
        "rxnorm:<RXCUI>, in order of first prescription; null or empty where it has none. Not a "
        "model input: sources code drugs unevenly (UCI none, MIMIC NDC, FHIR RxNorm), and the "
        "model reads the names every source has.",
        nullable=True,
        clinical_label="medication code",
    ),
    FieldSpec(
        "abnormal_labs",
        FieldKind.CODE_SEQUENCE,
        "array<string>",
        "Names (lower case) of lab tests with an abnormal result, in order of first result.",
        model_input=True,
        clinical_label="abnormal lab",
    ),
    FieldSpec(
        "note_text",
        FieldKind.TEXT,
        "string",
        "Discharge summary text, where there is one.",
        nullable=True,
        model_input=True,
        clinical_label="discharge note",
    ),
    FieldSpec(
        "readmitted_30d",
        FieldKind.LABEL,
        "int",
        "1 if an unplanned (non-elective) admission starts within 30 days of discharge.",
    ),
    FieldSpec(
        "readmitted_any",
        FieldKind.AUXILIARY_LABEL,
        "int",
        "1 if the patient's next admission is unplanned, however long after discharge "
        "(so readmitted_30d = 1 implies 1): an auxiliary training target.",
    ),
    FieldSpec(
        "source", FieldKind.META, "string", "Which source the row came from.", categories=SOURCES
    ),
    FieldSpec("split", FieldKind.META, "string", "train, validation or test (by patient_key)."),
)

#: Protected attributes: written to a separate dataset for fairness evaluation, never a model
#: input unless a training config opts in.
PROTECTED_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(ENCOUNTER_KEY, FieldKind.IDENTIFIER, "string", "Joins to the features."),
    FieldSpec(
        "race", FieldKind.PROTECTED, "string", "Race/ethnicity group.", categories=RACE_CATEGORIES
    ),
    FieldSpec("split", FieldKind.META, "string", "Same split as the features row."),
)

_BY_NAME = {spec.name: spec for spec in ENCOUNTER_FIELDS}


def field(name: str) -> FieldSpec:
    """Return the spec of one encounter field; ``KeyError`` names an unknown field."""
    return _BY_NAME[name]


def model_input_fields(kind: FieldKind | None = None) -> tuple[FieldSpec, ...]:
    """Return the fields the model reads, optionally only those of one kind."""
    return tuple(
        spec
        for spec in ENCOUNTER_FIELDS
        if spec.model_input and (kind is None or spec.kind == kind)
    )


def column_names() -> tuple[str, ...]:
    """Return the feature table's columns in contract order."""
    return tuple(spec.name for spec in ENCOUNTER_FIELDS)
