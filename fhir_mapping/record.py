"""A FHIR R4 record of one stay -> the canonical request record the prediction API scores.

``map_bundle`` reads a collection or transaction Bundle; ``map_resources`` the same resources
gathered another way (a CDS Hooks prefetch). The record has ``patient_id``/``encounter_id``
(the Patient's and the index Encounter's ids, else their fullUrls: hashed downstream like any
request's) and every model-input field of ``contracts.encounter``, derived with the rules of
``encounters.py`` and ``clinical.py`` and the terminology of ``contracts.fhir``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from contracts import fhir, serving
from contracts.encounter import AGE_CAP_YEARS, UNKNOWN
from fhir_mapping import clinical, encounters
from fhir_mapping.bundle import Entry, EntryIndex, bundle_entries
from fhir_mapping.elements import invalid, parse_date, text
from fhir_mapping.errors import MappingError, Reason

PATIENT_ID = serving.PATIENT_ID
ENCOUNTER_ID = serving.ENCOUNTER_ID
CLINICAL_TYPES = ("Condition", "Procedure", "MedicationRequest", "Observation", "DocumentReference")


@dataclass(frozen=True)
class MappedRecord:
    """The canonical record, and how the caller referenced the patient and the stay.

    ``patient_reference``/``encounter_reference`` are the caller's own identifiers, to be
    returned as they were given (the index Encounter's ``subject.reference``, and the
    Encounter as ``Encounter/<id>`` or its fullUrl); nothing else of the input goes back.
    """

    record: dict[str, Any]
    patient_reference: str
    encounter_reference: str


def age_at(birth: date, admitted: date) -> int:
    """Completed years on the admission day, capped at ``AGE_CAP_YEARS``."""
    years = admitted.year - birth.year - ((admitted.month, admitted.day) < (birth.month, birth.day))
    return min(years, AGE_CAP_YEARS)


def patient_fields(patient: Entry, admitted: datetime) -> dict[str, Any]:
    """Age at admission (from ``birthDate``) and sex (from ``gender``)."""
    resource = patient.resource
    birth_value = resource.get("birthDate")
    if birth_value is None:
        raise invalid("Patient.birthDate")
    age = age_at(parse_date(birth_value, "Patient.birthDate"), admitted.date())
    if age < 0:
        raise MappingError(Reason.OUT_OF_CONTRACT, "Patient.birthDate")
    gender = text(resource, "gender", "Patient")
    return {"age_years": age, "sex": fhir.GENDER.get(gender or "", UNKNOWN)}


def _single_patient(index: EntryIndex) -> Entry:
    patients = index.of_type("Patient")
    if not patients:
        raise MappingError(Reason.NO_PATIENT, "Patient")
    if len(patients) > 1:
        raise MappingError(Reason.SEVERAL_PATIENTS, "Patient")
    return patients[0]


def map_resources(
    entries: Iterable[Entry],
    *,
    encounter_id: str | None = None,
    discharged_at: datetime | None = None,
) -> MappedRecord:
    """Map one patient's resources; ``encounter_id`` names the index stay (else the latest
    inpatient one), ``discharged_at`` stands in for a missing ``period.end`` (a stay being
    discharged now)."""
    index = EntryIndex(entries)
    patient = _single_patient(index)
    stays = encounters.patient_stays(index, patient)
    stay = encounters.index_stay(stays, encounter_id)
    assert stay.start is not None  # index_stay checked it
    of_stay: dict[str, list[Entry]] = {kind: [] for kind in CLINICAL_TYPES}
    for kind in CLINICAL_TYPES:
        for entry in index.of_type(kind):
            if clinical.belongs(entry, index, patient, stay.entry):
                of_stay[kind].append(entry)
    record: dict[str, Any] = {
        PATIENT_ID: patient.identity,
        ENCOUNTER_ID: stay.entry.identity,
        **patient_fields(patient, stay.start),
        **encounters.stay_fields(stay, discharged_at),
        **encounters.history_fields(stays, stay),
        **clinical.diagnosis_fields(
            of_stay["Condition"], clinical.diagnosis_ranks(stay.entry, index)
        ),
        **clinical.procedure_fields(of_stay["Procedure"]),
        **clinical.medication_fields(of_stay["MedicationRequest"]),
        **clinical.lab_fields(of_stay["Observation"]),
        **clinical.note_fields(of_stay["DocumentReference"]),
    }
    subject = stay.entry.resource["subject"]["reference"]  # read_stay checked it
    return MappedRecord(record, subject.strip(), stay.entry.reference)


def map_bundle(
    document: Any,
    *,
    encounter_id: str | None = None,
    discharged_at: datetime | None = None,
) -> MappedRecord:
    """Map a parsed collection or transaction Bundle (see ``map_resources``)."""
    return map_resources(
        bundle_entries(document), encounter_id=encounter_id, discharged_at=discharged_at
    )
