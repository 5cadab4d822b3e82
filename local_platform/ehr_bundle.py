"""FHIR R4 resources as an EHR would send them: builders for the demo's EHR and the tests.

``record_bundle`` writes one canonical encounter record (a row of the test split) as the
Patient, the index Encounter (and earlier Encounters standing for its prior utilisation) and
the stay's Conditions, Procedures, MedicationRequests, Observations and discharge summary,
with the terminology of ``contracts.fhir``, so the demo can play an EHR calling the CDS
service about a real test patient. A category the FHIR tables have no code for is sent without
one (and so reads back as ``unknown``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import fhir
from contracts.codes import SEPARATOR, CodeSystem

Resource = dict[str, Any]

_CONDITION_URIS = {system: uri for uri, system in fhir.CONDITION_SYSTEMS.items()}
_PROCEDURE_URIS = {system: uri for uri, system in fhir.PROCEDURE_SYSTEMS.items()}


def _first_code(table: Mapping[str, str], value: str | None) -> str | None:
    """The first FHIR code a contract category is mapped from."""
    return next((code for code, category in table.items() if category == value), None)


def _concept(system: str, code: str | None, display: str | None = None) -> Resource | None:
    if code is None:
        return None
    coding: Resource = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _drop_none(resource: Resource) -> Resource:
    return {k: v for k, v in resource.items() if v is not None}


def patient(patient_id: str, birth_date: str, gender: str | None = "female") -> Resource:
    """A Patient with a birth date and an administrative gender."""
    return _drop_none(
        {"resourceType": "Patient", "id": patient_id, "birthDate": birth_date, "gender": gender}
    )


def encounter(
    encounter_id: str,
    patient_id: str,
    start: datetime,
    end: datetime | None,
    *,
    class_code: str = "IMP",
    status: str = "finished",
    priority: str | None = "EM",
    admit_source: str | None = "emd",
    disposition: str | None = "home",
    service: str | None = None,
) -> Resource:
    """An Encounter of the patient; ``class_code`` from v3 ActCode."""
    period = {"start": _iso(start), **({"end": _iso(end)} if end else {})}
    hospitalization = _drop_none(
        {
            "admitSource": _concept(fhir.SYSTEM_ADMIT_SOURCE, admit_source),
            "dischargeDisposition": _concept(fhir.SYSTEM_DISCHARGE_DISPOSITION, disposition),
        }
    )
    return _drop_none(
        {
            "resourceType": "Encounter",
            "id": encounter_id,
            "status": status,
            "class": {"system": fhir.SYSTEM_ACT_CODE, "code": class_code},
            "priority": _concept(fhir.SYSTEM_ACT_PRIORITY, priority),
            "serviceType": {"text": service} if service else None,
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": period,
            "hospitalization": hospitalization or None,
        }
    )


def _clinical(kind: str, resource_id: str, patient_id: str, encounter_id: str) -> Resource:
    return {
        "resourceType": kind,
        "id": resource_id,
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
    }


def condition(
    resource_id: str, patient_id: str, encounter_id: str, code: str, system: str
) -> Resource:
    """A Condition (an encounter diagnosis) coded in ``system``."""
    return {
        **_clinical("Condition", resource_id, patient_id, encounter_id),
        "code": _concept(system, code),
    }


def procedure(
    resource_id: str, patient_id: str, encounter_id: str, code: str, system: str
) -> Resource:
    """A completed Procedure coded in ``system``."""
    return {
        **_clinical("Procedure", resource_id, patient_id, encounter_id),
        "status": "completed",
        "code": _concept(system, code),
    }


def medication_request(
    resource_id: str, patient_id: str, encounter_id: str, name: str, authored: datetime
) -> Resource:
    """A MedicationRequest naming its drug in ``medicationCodeableConcept.text``."""
    return {
        **_clinical("MedicationRequest", resource_id, patient_id, encounter_id),
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {"text": name},
        "authoredOn": _iso(authored),
    }


def observation(
    resource_id: str,
    patient_id: str,
    encounter_id: str,
    *,
    name: str,
    effective: datetime,
    loinc: str | None = None,
    value: float | None = None,
    abnormal: bool = False,
) -> Resource:
    """A laboratory Observation, flagged ``A`` (abnormal) or ``N``."""
    code: Resource = {"text": name}
    if loinc:
        code["coding"] = [{"system": fhir.SYSTEM_LOINC, "code": loinc}]
    return _drop_none(
        {
            **_clinical("Observation", resource_id, patient_id, encounter_id),
            "status": "final",
            "category": [{"coding": [{"code": fhir.LABORATORY_CATEGORY}]}],
            "code": code,
            "effectiveDateTime": _iso(effective),
            "valueQuantity": None if value is None else {"value": value},
            "interpretation": [
                _concept(fhir.SYSTEM_OBSERVATION_INTERPRETATION, "A" if abnormal else "N")
            ],
        }
    )


def discharge_summary(
    resource_id: str, patient_id: str, encounter_id: str, note: str, written: datetime
) -> Resource:
    """A DocumentReference of LOINC type 18842-5 with the note as base64 attachment data."""
    return {
        "resourceType": "DocumentReference",
        "id": resource_id,
        "status": "current",
        "type": _concept(fhir.SYSTEM_LOINC, fhir.LOINC_DISCHARGE_SUMMARY),
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": _iso(written),
        "context": {"encounter": [{"reference": f"Encounter/{encounter_id}"}]},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(note.encode("utf-8")).decode("ascii"),
                }
            }
        ],
    }


def bundle(resources: Iterable[Resource], bundle_type: str = "collection") -> Resource:
    """A Bundle of ``resources``, each with a ``urn:uuid``-free fullUrl of ``Type/id``."""
    entries = []
    for resource in resources:
        entry: Resource = {
            "fullUrl": f"urn:readmission:{resource['resourceType']}/{resource['id']}",
            "resource": resource,
        }
        if bundle_type == "transaction":
            entry["request"] = {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
        entries.append(entry)
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def _coded(value: str, uris: Mapping[CodeSystem, str]) -> tuple[str, str] | None:
    """A tagged contract code (or an untagged ICD-9 one) as (system URI, code)."""
    tag, separator, code = value.partition(SEPARATOR)
    if not separator:
        return next(iter(uris.values())), value
    try:
        return uris[CodeSystem(tag)], code
    except (KeyError, ValueError):
        return None


def record_resources(
    record: Mapping[str, Any], patient_id: str, encounter_id: str, admitted: datetime
) -> list[Resource]:
    """One canonical record as FHIR resources (see the module's docstring)."""
    discharged = admitted + timedelta(days=float(record["length_of_stay_days"]))
    birth = admitted.date().replace(year=admitted.year - int(record["age_years"]) - 1)
    birth = birth + timedelta(days=1)
    resources: list[Resource] = [
        patient(patient_id, birth.isoformat(), {"F": "female", "M": "male"}.get(record["sex"])),
        encounter(
            encounter_id,
            patient_id,
            admitted,
            discharged,
            priority=_first_code(fhir.PRIORITY, record["admission_type"]),
            admit_source=_first_code(fhir.ADMIT_SOURCE, record["admission_source"]),
            disposition=_first_code(fhir.DISCHARGE_DISPOSITION, record["discharge_disposition"]),
            service=record.get("admitting_service"),
        ),
    ]
    resources += _history(record, patient_id, encounter_id, admitted)
    for n, value in enumerate(record.get("diagnosis_codes") or []):
        coded = _coded(value, _CONDITION_URIS)
        if coded:
            resources.append(
                condition(f"{encounter_id}-dx{n}", patient_id, encounter_id, coded[1], coded[0])
            )
    for n, value in enumerate(record.get("procedure_codes") or []):
        coded = _coded(value, _PROCEDURE_URIS)
        if coded:
            resources.append(
                procedure(f"{encounter_id}-px{n}", patient_id, encounter_id, coded[1], coded[0])
            )
    for n, name in enumerate(record.get("medications") or []):
        resources.append(
            medication_request(
                f"{encounter_id}-rx{n}",
                patient_id,
                encounter_id,
                name,
                admitted + timedelta(minutes=n),
            )
        )
    for n, name in enumerate(record.get("abnormal_labs") or []):
        resources.append(
            observation(
                f"{encounter_id}-lab{n}",
                patient_id,
                encounter_id,
                name=name,
                effective=admitted + timedelta(minutes=n),
                abnormal=True,
            )
        )
    if record.get("note_text"):
        resources.append(
            discharge_summary(
                f"{encounter_id}-note", patient_id, encounter_id, record["note_text"], discharged
            )
        )
    return resources


def _history(
    record: Mapping[str, Any], patient_id: str, encounter_id: str, admitted: datetime
) -> list[Resource]:
    """Earlier stays and visits standing for the record's prior utilisation counts."""
    found: list[Resource] = []
    stays = int(record.get("prior_admissions_12m") or 0)
    for n in range(stays):
        start = admitted - timedelta(days=300 - 40 * (n % 7), hours=n)
        found.append(
            encounter(f"{encounter_id}-prior{n}", patient_id, start, start + timedelta(days=3))
        )
    for n in range(int(record.get("prior_ed_visits_12m") or 0)):
        start = admitted - timedelta(days=200 - n % 150, hours=n)
        found.append(
            encounter(
                f"{encounter_id}-ed{n}",
                patient_id,
                start,
                start + timedelta(hours=4),
                class_code="EMER",
                priority=None,
                admit_source=None,
                disposition=None,
            )
        )
    return found
