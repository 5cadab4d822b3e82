"""The index stay's clinical resources: diagnoses, procedures, medications, labs and the note.

A resource belongs to the stay when its ``encounter`` (``context.encounter`` for a
DocumentReference) references the index Encounter; one that references another Encounter of
the bundle is not read, and one that references an Encounter or a Patient the bundle does not
hold is an error (``DANGLING_REFERENCE``). Resources of a status in
``contracts.fhir.VOID_STATUSES`` (Conditions: ``VOID_CONDITION_VERIFICATIONS``) are not part of
the record; the note is read as ``contracts.fhir.NOTE_CONTENT_TYPE`` states.

The orders and bands are the ETL's (``glue_jobs.mimic3_details`` and the FHIR source):
diagnoses in the order of the stay's ``Encounter.diagnosis`` ranks and procedures in order of
performance (unordered ones last, then by code), medications and abnormal labs distinct and
lower case in order of their first time (those without a time last, then by name), a result
abnormal when an interpretation code is one of ``ABNORMAL_INTERPRETATIONS``, HbA1c and glucose
banded on their highest value, the note the latest discharge summary.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from contracts import fhir
from contracts.charlson import charlson_index
from contracts.codes import Code, CodeSystem, is_well_formed, normalise
from fhir_mapping.bundle import Entry, EntryIndex
from fhir_mapping.elements import (
    codings,
    concept,
    concept_name,
    date_time,
    invalid,
    number,
    objects,
    optional,
    text,
)
from fhir_mapping.errors import MappingError, Reason

SYSTEM_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# Bands of the highest HbA1c (%) and glucose (mg/dL) of the stay, as the ETL bands them
# (glue_jobs.mimic3_details; tests/fhir_mapping check that the two agree).
HBA1C_ABOVE_8 = 8.0
HBA1C_ABOVE_7 = 7.0
GLUCOSE_ABOVE_300 = 300.0
GLUCOSE_ABOVE_200 = 200.0


def belongs(entry: Entry, index: EntryIndex, patient: Entry, stay: Entry) -> bool:
    """Whether a clinical resource is the patient's and of the index stay (references checked)."""
    resource, kind = entry.resource, entry.resource_type
    subject = optional(resource, "subject", dict, kind)
    reference = None if subject is None else text(subject, "reference", f"{kind}.subject")
    if (
        reference is not None
        and index.resolve(reference, "Patient", f"{kind}.subject") is not patient
    ):
        raise MappingError(Reason.DANGLING_REFERENCE, f"{kind}.subject")
    if kind == "DocumentReference":
        context = optional(resource, "context", dict, kind) or {}
        references = list(objects(context, "encounter", f"{kind}.context"))
        where = f"{kind}.context.encounter"
    else:
        single = optional(resource, "encounter", dict, kind)
        references = [] if single is None else [single]
        where = f"{kind}.encounter"
    targets = [text(ref, "reference", where) for ref in references]
    resolved = [index.resolve(target, "Encounter", where) for target in targets if target]
    return any(found is stay for found in resolved)


def _void(resource: Mapping[str, Any], kind: str) -> bool:
    """Whether the resource's status says it is not part of the record."""
    void = fhir.VOID_STATUSES[kind]
    if text(resource, "status", kind) in void:
        return True
    return kind == "DocumentReference" and text(resource, "docStatus", kind) in void


def _coded(resource: Mapping[str, Any], kind: str, systems: Mapping[str, CodeSystem]) -> Code:
    """The first coding of ``code`` in a system of ``systems``, normalised and shape-checked."""
    where = f"{kind}.code"
    for coding in codings(concept(resource, "code", kind), where):
        system = systems.get(coding.system or "")
        if system is not None and coding.code is not None:
            code = Code(system, normalise(system, coding.code))
            if not is_well_formed(code):
                raise MappingError(Reason.INVALID_CODE, where)
            return code
    raise MappingError(Reason.UNKNOWN_CODE_SYSTEM, where)


def _ordered(items: list[tuple[Any, Code]]) -> list[Code]:
    """Codes by their order key (none last), then by code: the ETL's ``code_sequences``."""
    ordered = sorted(items, key=lambda item: (item[0] is None, item[0] or 0, item[1].tagged))
    return [code for _, code in ordered]


def diagnosis_ranks(stay: Entry, index: EntryIndex) -> dict[int, int]:
    """``Encounter.diagnosis[].rank`` of each Condition it lists (by the entry's identity),
    the lowest when a Condition is listed twice."""
    ranks: dict[int, int] = {}
    for diagnosis in objects(stay.resource, "diagnosis", "Encounter"):
        condition = optional(diagnosis, "condition", dict, "Encounter.diagnosis") or {}
        reference = text(condition, "reference", "Encounter.diagnosis.condition")
        rank = diagnosis.get("rank")
        if reference is None or rank is None:
            continue
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise invalid("Encounter.diagnosis.rank")
        entry = index.resolve(reference, "Condition", "Encounter.diagnosis.condition")
        ranks[id(entry)] = min(rank, ranks.get(id(entry), rank))
    return ranks


def diagnosis_fields(conditions: Iterable[Entry], ranks: Mapping[int, int]) -> dict[str, Any]:
    """Diagnosis codes (tagged) in the order of the stay's diagnosis ranks (unranked last, then
    by code), their number and the Charlson index."""
    items: list[tuple[Any, Code]] = []
    for entry in conditions:
        status = concept(entry.resource, "verificationStatus", "Condition")
        verification = [c.code for c in codings(status, "Condition.verificationStatus")]
        if any(code in fhir.VOID_CONDITION_VERIFICATIONS for code in verification):
            continue
        code = _coded(entry.resource, "Condition", fhir.CONDITION_SYSTEMS)
        items.append((ranks.get(id(entry)), code))
    codes = _ordered(items)
    tagged = [code.tagged for code in codes]
    return {
        "diagnosis_codes": tagged,
        "num_diagnoses": len(codes),
        "charlson_index": charlson_index(tagged),
    }


def procedure_fields(procedures: Iterable[Entry]) -> dict[str, Any]:
    """Procedure codes (tagged) in order of performance (``performedDateTime``; none last,
    then by code) and their number."""
    items = [
        (
            date_time(entry.resource, "performedDateTime", "Procedure"),
            _coded(entry.resource, "Procedure", fhir.PROCEDURE_SYSTEMS),
        )
        for entry in procedures
        if not _void(entry.resource, "Procedure")
    ]
    codes = [code.tagged for code in _ordered_by_time(items)]
    return {"procedure_codes": codes, "num_procedures": len(codes)}


def _ordered_by_time(items: list[tuple[datetime | None, Code]]) -> list[Code]:
    ordered = sorted(
        items, key=lambda item: (item[0] is None, item[0] or datetime.min, item[1].tagged)
    )
    return [code for _, code in ordered]


def _first_occurrences(items: list[tuple[datetime | None, str]]) -> list[str]:
    """Distinct names in order of their first time (no time last, then by name)."""
    ordered = sorted(items, key=lambda item: (item[0] is None, item[0] or datetime.min, item[1]))
    return list(dict.fromkeys(name for _, name in ordered))


def medication_fields(requests: Iterable[Entry]) -> dict[str, Any]:
    """Distinct medication names (lower case) by first ``authoredOn``, and their number.

    The name is ``medicationCodeableConcept.text``, else its first coding's display; a request
    without one is not counted (as the ETL skips a prescription without a drug).
    """
    named: list[tuple[datetime | None, str]] = []
    for entry in requests:
        resource = entry.resource
        if _void(resource, "MedicationRequest"):
            continue
        medication = concept(resource, "medicationCodeableConcept", "MedicationRequest")
        name = concept_name(medication, "MedicationRequest.medicationCodeableConcept")
        if name:
            named.append((date_time(resource, "authoredOn", "MedicationRequest"), name))
    medications = _first_occurrences(named)
    return {"medications": medications, "num_medications": len(medications)}


def _is_laboratory(resource: Mapping[str, Any]) -> bool:
    return any(
        coding.code == fhir.LABORATORY_CATEGORY
        for category in objects(resource, "category", "Observation")
        for coding in codings(category, "Observation.category")
    )


def _lab_name(code: Mapping[str, Any] | None) -> str | None:
    """A lab's name: the code's text, else its LOINC coding's display, lower case."""
    if code is None:
        return None
    name = text(code, "text", "Observation.code")
    if name is None:
        loinc = [c for c in codings(code, "Observation.code") if c.system == fhir.SYSTEM_LOINC]
        name = loinc[0].display if loinc else None
    return None if name is None else name.lower()


def _band(value: float | None, upper: float, lower: float, names: tuple[str, ...]) -> str:
    """``names``: (not measured, normal, above lower, above upper)."""
    if value is None:
        return names[0]
    if value > upper:
        return names[3]
    if value > lower:
        return names[2]
    return names[1]


def lab_fields(observations: Iterable[Entry]) -> dict[str, Any]:
    """Laboratory results: counts, abnormal names by first time, HbA1c and glucose bands."""
    tests = abnormal = 0
    abnormal_names: list[tuple[datetime | None, str]] = []
    highest: dict[str, float] = {}
    for entry in observations:
        resource = entry.resource
        if _void(resource, "Observation"):
            continue
        if not _is_laboratory(resource):
            continue
        tests += 1
        code = concept(resource, "code", "Observation")
        flags = [
            c.code
            for interpretation in objects(resource, "interpretation", "Observation")
            for c in codings(interpretation, "Observation.interpretation")
        ]
        if any(flag in fhir.ABNORMAL_INTERPRETATIONS for flag in flags):
            abnormal += 1
            name = _lab_name(code)
            if name:
                time = date_time(resource, "effectiveDateTime", "Observation")
                abnormal_names.append((time, name))
        loinc = {c.code for c in codings(code, "Observation.code") if c.system == fhir.SYSTEM_LOINC}
        quantity = optional(resource, "valueQuantity", dict, "Observation")
        value = None if quantity is None else number(quantity, "value", "Observation.valueQuantity")
        for kind, codes in (("hba1c", fhir.LOINC_HBA1C), ("glucose", fhir.LOINC_GLUCOSE)):
            if value is not None and loinc.intersection(codes):
                highest[kind] = max(value, highest.get(kind, value))
    return {
        "num_lab_tests": tests,
        "num_abnormal_labs": abnormal,
        "abnormal_labs": _first_occurrences(abnormal_names),
        "hba1c_result": _band(
            highest.get("hba1c"),
            HBA1C_ABOVE_8,
            HBA1C_ABOVE_7,
            ("not_measured", "normal", "above_7", "above_8"),
        ),
        "max_glucose_result": _band(
            highest.get("glucose"),
            GLUCOSE_ABOVE_300,
            GLUCOSE_ABOVE_200,
            ("not_measured", "normal", "above_200", "above_300"),
        ),
    }


def _plain_text(attachment: Mapping[str, Any]) -> bool:
    """Whether the attachment is plain text (``text/plain``, any parameters, or untyped)."""
    kind = text(attachment, "contentType", "DocumentReference.content.attachment")
    return kind is None or kind.split(";")[0].strip().lower() == fhir.NOTE_CONTENT_TYPE


def _note_text(resource: Mapping[str, Any]) -> str | None:
    """The note: the first plain-text attachment's base64 ``data`` as UTF-8, when not blank
    (``contracts.fhir.NOTE_CONTENT_TYPE``); the narrative is not the document."""
    for content in objects(resource, "content", "DocumentReference"):
        attachment = optional(content, "attachment", dict, "DocumentReference.content") or {}
        data = optional(attachment, "data", str, "DocumentReference.content.attachment")
        if data is not None and _plain_text(attachment):
            try:
                decoded = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
                raise invalid("DocumentReference.content.attachment.data") from None
            if decoded.strip():
                return decoded
    return None


def note_fields(documents: Iterable[Entry]) -> dict[str, Any]:
    """The text of the latest discharge summary (LOINC 18842-5) by ``date``, or null."""
    notes: list[tuple[datetime | None, int, str]] = []
    for position, entry in enumerate(documents):
        resource = entry.resource
        if _void(resource, "DocumentReference"):
            continue
        kind = concept(resource, "type", "DocumentReference")
        loinc = {
            c.code for c in codings(kind, "DocumentReference.type") if c.system == fhir.SYSTEM_LOINC
        }
        if fhir.LOINC_DISCHARGE_SUMMARY not in loinc:
            continue
        note = _note_text(resource)
        if note is not None:
            notes.append((date_time(resource, "date", "DocumentReference"), position, note))
    if not notes:
        return {"note_text": None}
    latest = max(notes, key=lambda item: (item[0] is not None, item[0] or datetime.min, item[1]))
    return {"note_text": latest[2]}
