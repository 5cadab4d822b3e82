"""Why a FHIR input cannot be mapped: a fixed reason code and a location, never a value.

A ``MappingError`` says what is wrong (``reason``, one of ``Reason``) and where
(``location``: a resource type and FHIR element names, e.g. ``Encounter.period.start``, or
``Bundle.entry``), both built from this package's own vocabulary, so that no identifier,
code or text of the input can reach a log or a response through it.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """The fixed reason codes of a mapping failure."""

    #: Not a JSON object, or not shaped like a FHIR Bundle (entry not a list, and so on).
    MALFORMED_BUNDLE = "malformed_bundle"
    #: The document is a resource of another type, the Bundle's type is not collection or
    #: transaction, or an entry holds a resource type the mapping does not read.
    WRONG_RESOURCE_TYPE = "wrong_resource_type"
    #: An element the mapping reads has the wrong JSON type or a value FHIR does not allow.
    INVALID_ELEMENT = "invalid_element"
    #: Two entries with the same ``Type/id`` (or the same fullUrl).
    DUPLICATE_RESOURCE = "duplicate_resource"
    #: A reference to a Patient or Encounter that is not in the Bundle.
    DANGLING_REFERENCE = "dangling_reference"
    #: A coded element with no coding in a system the contract knows.
    UNKNOWN_CODE_SYSTEM = "unknown_code_system"
    #: A code of a known system that does not have that system's shape.
    INVALID_CODE = "invalid_code"
    #: No Patient, or more than one.
    NO_PATIENT = "no_patient"
    SEVERAL_PATIENTS = "several_patients"
    #: No Encounter of an inpatient class (contracts.fhir.INPATIENT_CLASS_CODES).
    NO_INPATIENT_ENCOUNTER = "no_inpatient_encounter"
    #: Inpatient encounters that overlap or start together, so none is the latest stay.
    SEVERAL_INDEX_ENCOUNTERS = "several_index_encounters"
    #: A value outside the encounter contract (birth after admission, a stay over 400 days,
    #: a note or a code list over the API's bounds).
    OUT_OF_CONTRACT = "out_of_contract"


#: Reasons about the document's shape (HTTP 400); every other reason is about its meaning
#: (HTTP 422): the JSON is a Bundle, but not one that describes a scorable stay.
MALFORMED_REASONS = frozenset({Reason.MALFORMED_BUNDLE})


class MappingError(ValueError):
    """A FHIR input that cannot become a canonical record; ``str()`` is safe to log."""

    def __init__(self, reason: Reason, location: str) -> None:
        super().__init__(f"{reason.value} at {location}")
        self.reason = reason
        self.location = location

    @property
    def malformed(self) -> bool:
        """Whether the document's shape is at fault (400) rather than its meaning (422)."""
        return self.reason in MALFORMED_REASONS
