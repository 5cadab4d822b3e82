"""How FHIR R4 resources map onto the canonical encounter: the terminology, defined once.

The FHIR ETL source (Spark, over a Bulk Data export) and the prediction API's FHIR input (a
``Bundle`` per request) both map resources to canonical records with these tables, so training
and serving read FHIR the same way. Every value is listed; a value not listed maps to
``unknown`` (categories) or is quarantined (codes of an unknown system), as for the other sources.

Standard library only, like the rest of ``contracts``.

References (FHIR R4, http://hl7.org/fhir/R4/):
- Encounter.class: v3 ActCode, terminology.hl7.org/CodeSystem/v3-ActCode
- Encounter.hospitalization.admitSource: terminology.hl7.org/CodeSystem/admit-source
- Encounter.hospitalization.dischargeDisposition:
  terminology.hl7.org/CodeSystem/discharge-disposition
- Encounter.priority: v3 ActPriority, terminology.hl7.org/CodeSystem/v3-ActPriority
- Observation.interpretation: v3 ObservationInterpretation
- Code system URIs: http://hl7.org/fhir/R4/terminologies-systems.html
- US Core race/ethnicity extensions: http://hl7.org/fhir/us/core/
"""

from __future__ import annotations

from contracts.codes import CodeSystem
from contracts.encounter import UNKNOWN

# --- Bulk Data export layout ----------------------------------------------------------------

#: Resource types read from an export folder, one ``<Type>.ndjson`` file each (Bulk Data
#: exports may split a type across ``<Type>.ndjson``, ``<Type>.001.ndjson``...; all are read).
RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Procedure",
    "MedicationRequest",
    "Observation",
    "DocumentReference",
)
#: Types an export must hold; the others are optional.
REQUIRED_RESOURCE_TYPES = ("Patient", "Encounter")
NDJSON_SUFFIX = ".ndjson"

# --- Code systems -----------------------------------------------------------------------------

SYSTEM_ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
SYSTEM_ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SYSTEM_ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
SYSTEM_NDC = "http://hl7.org/fhir/sid/ndc"
SYSTEM_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SYSTEM_LOINC = "http://loinc.org"

#: Condition.code system URI -> contract code system.
CONDITION_SYSTEMS: dict[str, CodeSystem] = {
    SYSTEM_ICD9CM: CodeSystem.ICD9CM,
    SYSTEM_ICD10CM: CodeSystem.ICD10CM,
}
#: Procedure.code system URI -> contract code system (FHIR names ICD-9-CM volume 3 with the
#: same URI as the diagnoses; the resource type tells them apart).
PROCEDURE_SYSTEMS: dict[str, CodeSystem] = {
    SYSTEM_ICD9CM: CodeSystem.ICD9PCS,
    SYSTEM_ICD10PCS: CodeSystem.ICD10PCS,
}
#: MedicationRequest.medicationCodeableConcept system URI -> contract code system. The drug's
#: name is ``medicationCodeableConcept.text``, else the first coding's ``display``.
MEDICATION_SYSTEMS: dict[str, CodeSystem] = {
    SYSTEM_NDC: CodeSystem.NDC,
    SYSTEM_RXNORM: CodeSystem.RXNORM,
}

# --- Encounter --------------------------------------------------------------------------------

SYSTEM_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: Encounter.class codes of an inpatient stay (the cohort's index admissions): IMP inpatient
#: encounter, ACUTE inpatient acute, NONAC inpatient non-acute.
INPATIENT_CLASS_CODES = ("IMP", "ACUTE", "NONAC")
#: Encounter.class code of an emergency visit (counted in prior_ed_visits_12m).
EMERGENCY_CLASS_CODES = ("EMER",)
#: Encounter.class codes of outpatient visits (prior_outpatient_visits_12m).
OUTPATIENT_CLASS_CODES = ("AMB", "OBSENC", "VR", "HH", "FLD")
#: Encounter.status values of an encounter that took place (others are not counted).
FINISHED_STATUSES = ("finished",)
#: Encounter.status values of an encounter that is not part of the record at all.
VOID_ENCOUNTER_STATUSES = ("entered-in-error", "cancelled")

SYSTEM_ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
#: Encounter.priority (v3 ActPriority) -> admission_type. EL elective and R routine are planned.
PRIORITY: dict[str, str] = {
    "EM": "emergency",
    "A": "emergency",
    "S": "emergency",
    "UR": "urgent",
    "EL": "elective",
    "R": "elective",
    "PRN": "other",
}
#: admission_type values whose admission is planned (not a readmission event), as for MIMIC.
PLANNED_ADMISSION_TYPES = ("elective",)

SYSTEM_ADMIT_SOURCE = "http://terminology.hl7.org/CodeSystem/admit-source"
#: admitSource code of a stay that began in the emergency department ("From accident/emergency
#: department").
ADMIT_SOURCE_EMERGENCY = "emd"
ADMIT_SOURCE: dict[str, str] = {
    "emd": "emergency_department",
    "gp": "physician_referral",
    "mp": "physician_referral",
    "outp": "clinic_referral",
    "hosp-trans": "transfer_hospital",
    "nursing": "transfer_nursing_facility",
    "psych": "transfer_other",
    "rehab": "transfer_other",
    "born": "other",
    "other": "other",
}

SYSTEM_DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
DISCHARGE_DISPOSITION: dict[str, str] = {
    "home": "home",
    "alt-home": "home",
    "other-hcf": "other",
    "hosp": "hospice",
    "long": "long_term_care",
    "aadvice": "left_against_advice",
    "exp": "expired",
    "psy": "psychiatric",
    "rehab": "rehabilitation",
    "snf": "skilled_nursing",
    "oth": "other",
}

#: NUBC patient discharge status (UB-04 form locator 17), the code set US claims and many EHR
#: exports put in dischargeDisposition; it tells home health and acute transfers apart, which
#: the HL7 table above does not.
SYSTEM_NUBC_DISCHARGE_STATUS = "https://www.nubc.org/CodeSystem/PatDischargeStatus"
NUBC_DISCHARGE_STATUS: dict[str, str] = {
    "01": "home",
    "02": "transfer_acute",
    "03": "skilled_nursing",
    "04": "long_term_care",
    "05": "transfer_acute",
    "06": "home_health",
    "07": "left_against_advice",
    "09": "other",
    "20": "expired",
    "21": "other",
    "30": "other",
    "40": "expired",
    "41": "expired",
    "42": "expired",
    "43": "other",
    "50": "hospice",
    "51": "hospice",
    "61": "skilled_nursing",
    "62": "rehabilitation",
    "63": "long_term_care",
    "64": "skilled_nursing",
    "65": "psychiatric",
    "66": "transfer_acute",
    "69": "other",
    "70": "other",
}
#: dischargeDisposition system URI -> its table.
DISCHARGE_DISPOSITION_SYSTEMS: dict[str, dict[str, str]] = {
    SYSTEM_DISCHARGE_DISPOSITION: DISCHARGE_DISPOSITION,
    SYSTEM_NUBC_DISCHARGE_STATUS: NUBC_DISCHARGE_STATUS,
}

# --- Patient ------------------------------------------------------------------------------------

#: Patient.gender (administrative gender) -> sex.
GENDER: dict[str, str] = {"female": "F", "male": "M", "other": UNKNOWN, "unknown": UNKNOWN}

US_CORE_RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
#: OMB race category codes (urn:oid:2.16.840.1.113883.6.238) -> race. Hispanic or Latino is
#: an ethnicity in US Core; a patient with that ethnicity is ``hispanic`` whatever the race,
#: as the MIMIC mapping does.
OMB_RACE: dict[str, str] = {
    "2106-3": "white",
    "2054-5": "black",
    "2028-9": "asian",
    "1002-5": "other",
    "2076-8": "other",
    "2131-1": "other",
}
OMB_ETHNICITY_HISPANIC = "2135-2"

# --- Observation ------------------------------------------------------------------------------

SYSTEM_OBSERVATION_INTERPRETATION = (
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
)
#: Interpretation codes that mark a result abnormal (num_abnormal_labs, abnormal_labs).
ABNORMAL_INTERPRETATIONS = ("A", "AA", "H", "HH", "L", "LL", "HU", "LU", "<", ">")
#: Observation.category code of a laboratory result (other observations are not lab tests).
LABORATORY_CATEGORY = "laboratory"
#: LOINC codes of the two results the contract bands (hba1c_result, max_glucose_result).
LOINC_HBA1C = ("4548-4", "17856-6")
LOINC_GLUCOSE = ("2345-7", "2339-0")

# --- DocumentReference ------------------------------------------------------------------------

#: LOINC type of a discharge summary (DocumentReference.type); its text is the note.
LOINC_DISCHARGE_SUMMARY = "18842-5"

# --- Record rules: what the FHIR ETL source and the API mapper both count --------------------
#
# Stated once here; ``glue_jobs.fhir`` (Spark, over a Bulk Data export) and ``fhir_mapping``
# (a Bundle per request) both read them, and tests/glue_jobs/test_fhir_api_parity.py runs the
# two over the same generated export and compares every model input.
#
# Prior utilisation (contracts.encounter), over the patient's *finished* Encounters whose
# period.start lies in the 365 days before the index admission:
# - prior_admissions_12m: inpatient-class Encounters (INPATIENT_CLASS_CODES);
# - prior_ed_visits_12m: emergency department visits, i.e. EMER-class Encounters
#   (EMERGENCY_CLASS_CODES) plus inpatient stays that began in the ED (admitSource
#   ADMIT_SOURCE_EMERGENCY; an export that records the ED part of such a stay as the stay
#   itself, as MIMIC does, has no EMER Encounter for it);
# - prior_outpatient_visits_12m: OUTPATIENT_CLASS_CODES Encounters. A Bulk Data export holds
#   every class, so the ETL counts them (0 when none); a Bundle holding no Encounter of the
#   patient but the index one says nothing about the history, so the API's record has null.

#: Status values of clinical resources that are not part of the record (FHIR R4 value sets:
#: event-status for Procedure, medicationrequest-status, observation-status,
#: document-reference-status and composition-status for DocumentReference.docStatus).
ENTERED_IN_ERROR = "entered-in-error"
VOID_STATUSES: dict[str, tuple[str, ...]] = {
    "Procedure": (ENTERED_IN_ERROR, "not-done"),
    "MedicationRequest": (ENTERED_IN_ERROR,),
    "Observation": (ENTERED_IN_ERROR, "cancelled"),
    "DocumentReference": (ENTERED_IN_ERROR,),
}
#: Condition.verificationStatus codes (terminology.hl7.org/CodeSystem/condition-ver-status)
#: of a diagnosis that is not part of the record: recorded in error, or ruled out.
VOID_CONDITION_VERIFICATIONS = (ENTERED_IN_ERROR, "refuted")

#: The note is the text of the first ``content.attachment`` carrying inline ``data`` of plain
#: text (contentType ``text/plain``, with any parameters, or none given), base64-decoded as
#: UTF-8, when not blank. The resource's narrative (``DocumentReference.text``) is a summary of
#: the resource, not the document (http://hl7.org/fhir/R4/narrative.html), and is not read.
NOTE_CONTENT_TYPE = "text/plain"
