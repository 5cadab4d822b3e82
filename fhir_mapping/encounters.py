"""Encounters: the index stay, its categories, and the patient's utilisation before it.

Rules (the same as the ETL's timeline, ``glue_jobs.mimic3_admissions.add_timeline``):

- The index encounter is the latest inpatient stay (``Encounter.class`` in
  ``contracts.fhir.INPATIENT_CLASS_CODES``) unless the caller names one; two inpatient stays
  that start together or overlap leave no latest one (``SEVERAL_INDEX_ENCOUNTERS``).
- Earlier encounters count when ``finished``: inpatient stays, emergency department visits
  (EMER encounters and inpatient stays admitted from the ED) and outpatient visits whose start
  lies in the 365 days before the admission, as ``contracts.fhir``'s record rules state for
  both this mapper and the FHIR ETL source; the stay before it gives
  ``days_since_last_discharge``; every earlier stay counts on record, and those followed by an
  unplanned stay within 30 days of their end are earlier readmissions.
- A bundle with no encounter of the patient but the index one carries no history: the counts
  the contract requires are 0, and the ones it allows to be unknown
  (``prior_outpatient_visits_12m``, ``prior_encounters_on_record``,
  ``prior_readmissions_30d_on_record``) are null. Send the patient's earlier encounters (the
  CDS service's prefetch asks for them) for a score that knows the history.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contracts import fhir
from contracts.encounter import (
    PRIOR_UTILISATION_WINDOW_DAYS,
    READMISSION_WINDOW_DAYS,
    UNKNOWN,
)
from fhir_mapping.bundle import Entry, EntryIndex
from fhir_mapping.elements import (
    code_in,
    codings,
    concept,
    date_time,
    invalid,
    optional,
    text,
)
from fhir_mapping.errors import MappingError, Reason

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Stay:
    """What the mapping reads of one Encounter."""

    entry: Entry
    class_code: str | None
    status: str | None
    start: datetime | None
    end: datetime | None
    admission_type: str
    admit_source: str | None

    @property
    def inpatient(self) -> bool:
        return self.class_code in fhir.INPATIENT_CLASS_CODES

    @property
    def finished(self) -> bool:
        return self.status in fhir.FINISHED_STATUSES

    @property
    def emergency_visit(self) -> bool:
        """An ED visit: an EMER encounter, or an inpatient stay that began in the ED."""
        return self.class_code in fhir.EMERGENCY_CLASS_CODES or (
            self.inpatient and self.admit_source == fhir.ADMIT_SOURCE_EMERGENCY
        )


def read_stay(entry: Entry, patient: Entry, index: EntryIndex) -> Stay:
    """One Encounter: class, status, period and priority; its subject must be the patient."""
    resource = entry.resource
    subject = optional(resource, "subject", dict, "Encounter")
    reference = None if subject is None else text(subject, "reference", "Encounter.subject")
    if reference is None or index.resolve(reference, "Patient", "Encounter.subject") is not patient:
        raise MappingError(Reason.DANGLING_REFERENCE, "Encounter.subject")
    klass = optional(resource, "class", dict, "Encounter")
    class_code = None
    if klass is not None and text(klass, "system", "Encounter.class") == fhir.SYSTEM_ACT_CODE:
        class_code = text(klass, "code", "Encounter.class")
    period = optional(resource, "period", dict, "Encounter") or {}
    start = date_time(period, "start", "Encounter.period")
    end = date_time(period, "end", "Encounter.period")
    priority = code_in(
        concept(resource, "priority", "Encounter"), fhir.SYSTEM_ACT_PRIORITY, "Encounter.priority"
    )
    hospitalization = optional(resource, "hospitalization", dict, "Encounter") or {}
    where = "Encounter.hospitalization"
    admit_source = code_in(
        concept(hospitalization, "admitSource", where), fhir.SYSTEM_ADMIT_SOURCE, where
    )
    return Stay(
        entry=entry,
        class_code=class_code,
        status=text(resource, "status", "Encounter"),
        start=start,
        end=end,
        admission_type=fhir.PRIORITY.get(priority or "", UNKNOWN),
        admit_source=admit_source,
    )


def patient_stays(index: EntryIndex, patient: Entry) -> list[Stay]:
    """Every Encounter of the bundle that is part of the record."""
    stays = [read_stay(entry, patient, index) for entry in index.of_type("Encounter")]
    return [stay for stay in stays if stay.status not in fhir.VOID_ENCOUNTER_STATUSES]


def index_stay(stays: list[Stay], encounter_id: str | None) -> Stay:
    """The stay to score: the one named, else the latest inpatient stay."""
    if encounter_id is not None:
        named = [s for s in stays if encounter_id in (s.entry.resource_id, s.entry.full_url)]
        if not named:
            raise MappingError(Reason.DANGLING_REFERENCE, "context.encounterId")
        if not named[0].inpatient:
            raise MappingError(Reason.NO_INPATIENT_ENCOUNTER, "Encounter.class")
        chosen = named[0]
    else:
        inpatient = sorted(
            (s for s in stays if s.inpatient), key=lambda s: (s.start is None, s.start)
        )
        if not inpatient:
            raise MappingError(Reason.NO_INPATIENT_ENCOUNTER, "Encounter.class")
        chosen = inpatient[-1]
        if chosen.start is None and len(inpatient) > 1:
            raise MappingError(Reason.SEVERAL_INDEX_ENCOUNTERS, "Encounter.period")
        if len(inpatient) > 1:
            before = inpatient[-2]
            assert before.start is not None
            assert chosen.start is not None
            if before.start == chosen.start or before.end is None or before.end > chosen.start:
                raise MappingError(Reason.SEVERAL_INDEX_ENCOUNTERS, "Encounter.period")
    if chosen.start is None:
        raise invalid("Encounter.period.start")
    return chosen


def stay_fields(stay: Stay, discharged_at: datetime | None) -> dict[str, Any]:
    """The index stay's own fields: categories, service and length of stay."""
    resource = stay.entry.resource
    hospitalization = optional(resource, "hospitalization", dict, "Encounter") or {}
    where = "Encounter.hospitalization"
    disposition = _disposition(concept(hospitalization, "dischargeDisposition", where))
    services = optional(resource, "serviceType", dict, "Encounter") or {}
    end = stay.end or discharged_at
    if end is None:
        raise invalid("Encounter.period.end")
    assert stay.start is not None  # index_stay checked it
    length_of_stay = (end - stay.start).total_seconds() / SECONDS_PER_DAY
    if length_of_stay < 0:
        raise MappingError(Reason.OUT_OF_CONTRACT, "Encounter.period")
    return {
        "admission_type": stay.admission_type,
        "admission_source": fhir.ADMIT_SOURCE.get(stay.admit_source or "", UNKNOWN),
        "discharge_disposition": disposition,
        "admitting_service": _lower(text(services, "text", "Encounter.serviceType")),
        "length_of_stay_days": length_of_stay,
    }


def _disposition(value: dict[str, Any] | None) -> str:
    """The first coding of a known system, mapped; ``unknown`` otherwise."""
    for coding in codings(value, "Encounter.hospitalization.dischargeDisposition"):
        table = fhir.DISCHARGE_DISPOSITION_SYSTEMS.get(coding.system or "")
        if table is not None:
            return table.get(coding.code or "", UNKNOWN)
    return UNKNOWN


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def history_fields(stays: list[Stay], index_stay_: Stay) -> dict[str, Any]:
    """Prior utilisation of the patient before the index stay, from the bundle's encounters."""
    assert index_stay_.start is not None
    admit = index_stay_.start
    others = [s for s in stays if s is not index_stay_]
    earlier = [s for s in others if s.finished and s.start is not None and s.start < admit]
    window_start = admit - timedelta(days=PRIOR_UTILISATION_WINDOW_DAYS)

    recent = [s for s in earlier if s.start is not None and s.start >= window_start]

    stays_before = sorted(
        (s for s in earlier if s.inpatient), key=lambda s: (s.start, s.entry.identity)
    )
    last = stays_before[-1] if stays_before else None
    since_last = (
        None
        if last is None or last.end is None
        else max((admit - last.end).total_seconds() / SECONDS_PER_DAY, 0.0)
    )
    known = bool(others)
    return {
        "prior_admissions_12m": sum(1 for s in recent if s.inpatient),
        "prior_ed_visits_12m": sum(1 for s in recent if s.emergency_visit),
        "prior_outpatient_visits_12m": (
            sum(1 for s in recent if s.class_code in fhir.OUTPATIENT_CLASS_CODES) if known else None
        ),
        "days_since_last_discharge": since_last,
        "prior_encounters_on_record": len(stays_before) if known else None,
        "prior_readmissions_30d_on_record": (
            _readmissions(stays_before, index_stay_) if known else None
        ),
    }


def _readmissions(stays_before: list[Stay], index_stay_: Stay) -> int:
    """How many earlier stays were followed by an unplanned stay within 30 days of their end."""
    timeline = [*stays_before, index_stay_]
    window = READMISSION_WINDOW_DAYS * SECONDS_PER_DAY
    count = 0
    for stay, following in itertools.pairwise(timeline):
        if stay.end is None or following.start is None:
            continue
        gap = (following.start - stay.end).total_seconds()
        planned = following.admission_type in fhir.PLANNED_ADMISSION_TYPES
        count += int(0 <= gap <= window and not planned)
    return count
