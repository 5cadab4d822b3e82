"""FHIR R4 Bundle -> canonical record: the rules, every failure reason, and properties."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import fhir
from contracts.charlson import charlson_index
from fhir_mapping import MappingError, Reason, map_bundle
from fhir_mapping.record import age_at
from lambdas.predict.schema import EncounterRequest
from local_platform import ehr_bundle as b

ADMIT = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
DISCHARGE = ADMIT + timedelta(days=4, hours=12)


def stay_resources(**encounter_options: Any) -> list[dict[str, Any]]:
    """One patient, one inpatient stay with a little of everything."""
    return [
        b.patient("p1", "1950-04-02", "male"),
        b.encounter("e1", "p1", ADMIT, DISCHARGE, service="Cardiology", **encounter_options),
        b.condition("c1", "p1", "e1", "I50.9", fhir.SYSTEM_ICD10CM),
        b.condition("c2", "p1", "e1", "428.0", fhir.SYSTEM_ICD9CM),
        b.condition("c3", "p1", "e1", "250.40", fhir.SYSTEM_ICD9CM),
        b.procedure("x1", "p1", "e1", "02HV33Z", fhir.SYSTEM_ICD10PCS),
        b.medication_request("m1", "p1", "e1", "Insulin", ADMIT + timedelta(hours=5)),
        b.medication_request("m2", "p1", "e1", "Furosemide", ADMIT + timedelta(hours=1)),
        b.medication_request("m3", "p1", "e1", "INSULIN", ADMIT + timedelta(hours=2)),
        b.observation(
            "o1",
            "p1",
            "e1",
            name="HbA1c",
            loinc="4548-4",
            value=8.4,
            effective=ADMIT + timedelta(hours=3),
            abnormal=True,
        ),
        b.observation(
            "o2",
            "p1",
            "e1",
            name="Glucose",
            loinc="2345-7",
            value=180,
            effective=ADMIT + timedelta(hours=2),
        ),
        b.observation(
            "o3", "p1", "e1", name="Sodium", effective=ADMIT + timedelta(hours=1), abnormal=True
        ),
        b.discharge_summary("d1", "p1", "e1", "Discharged home, stable.", DISCHARGE),
    ]


def test_a_stay_maps_to_the_canonical_record() -> None:
    mapped = map_bundle(b.bundle(stay_resources()))
    assert mapped.record == {
        "patient_id": "p1",
        "encounter_id": "e1",
        "age_years": 70,
        "sex": "M",
        "admission_type": "emergency",
        "admission_source": "emergency_department",
        "discharge_disposition": "home",
        "admitting_service": "cardiology",
        "length_of_stay_days": 4.5,
        "prior_admissions_12m": 0,
        "prior_ed_visits_12m": 0,
        "prior_outpatient_visits_12m": None,
        "days_since_last_discharge": None,
        "prior_encounters_on_record": None,
        "prior_readmissions_30d_on_record": None,
        # No diagnosis ranks on the Encounter: by code, as the ETL orders unranked codes.
        "diagnosis_codes": ["icd10cm:I509", "icd9cm:25040", "icd9cm:4280"],
        "num_diagnoses": 3,
        "charlson_index": 3,  # heart failure 1 + complicated diabetes 2 (ICD-9 codes only)
        "procedure_codes": ["icd10pcs:02HV33Z"],
        "num_procedures": 1,
        "medications": ["furosemide", "insulin"],
        "num_medications": 2,
        "num_lab_tests": 3,
        "num_abnormal_labs": 2,
        "abnormal_labs": ["sodium", "hba1c"],
        "hba1c_result": "above_8",
        "max_glucose_result": "normal",
        "note_text": "Discharged home, stable.",
    }
    assert (mapped.patient_reference, mapped.encounter_reference) == ("Patient/p1", "Encounter/e1")
    EncounterRequest.model_validate(mapped.record)  # what /predict validates it as


def test_history_gives_prior_utilisation_and_earlier_readmissions() -> None:
    resources = stay_resources()
    resources += [
        # 400 days back: on record, outside the 12 months; readmitted 10 days after it (unplanned).
        b.encounter("h1", "p1", ADMIT - timedelta(days=400), ADMIT - timedelta(days=395)),
        b.encounter("h2", "p1", ADMIT - timedelta(days=385), ADMIT - timedelta(days=380)),
        # 100 days back, and 20 days back: an inpatient stay (planned readmission of the stay
        # before is not counted), then an ED visit and an outpatient visit.
        b.encounter(
            "h3",
            "p1",
            ADMIT - timedelta(days=100),
            ADMIT - timedelta(days=90),
            priority="EL",
            admit_source="gp",
        ),
        b.encounter(
            "h4", "p1", ADMIT - timedelta(days=20), ADMIT - timedelta(days=19), class_code="EMER"
        ),
        b.encounter(
            "h5", "p1", ADMIT - timedelta(days=15), ADMIT - timedelta(days=15), class_code="AMB"
        ),
        # Not counted: cancelled, not finished, or in another patient's... (one patient only).
        b.encounter(
            "h6", "p1", ADMIT - timedelta(days=50), ADMIT - timedelta(days=49), status="cancelled"
        ),
        b.encounter(
            "h7",
            "p1",
            ADMIT - timedelta(days=40),
            ADMIT - timedelta(days=39),
            class_code="EMER",
            status="in-progress",
        ),
    ]
    record = map_bundle(b.bundle(resources)).record
    assert record["prior_admissions_12m"] == 1
    assert record["prior_ed_visits_12m"] == 1
    assert record["prior_outpatient_visits_12m"] == 1
    assert record["days_since_last_discharge"] == pytest.approx(90.0)
    assert record["prior_encounters_on_record"] == 3
    # h1 -> h2 within 30 days, unplanned: 1; h2 -> h3 over 30 days; h3 -> index 90 days.
    assert record["prior_readmissions_30d_on_record"] == 1


def test_index_is_the_latest_stay_or_the_one_named() -> None:
    resources = [
        *stay_resources(),
        b.encounter("h1", "p1", ADMIT - timedelta(days=30), ADMIT - timedelta(days=25)),
    ]
    assert map_bundle(b.bundle(resources)).record["encounter_id"] == "e1"
    named = map_bundle(b.bundle(resources), encounter_id="h1").record
    assert named["encounter_id"] == "h1"
    assert named["num_diagnoses"] == 0  # the clinical resources are e1's


def test_a_missing_end_is_the_discharge_time_given() -> None:
    resources = stay_resources()
    resources[1] = b.encounter("e1", "p1", ADMIT, None, status="in-progress")
    with pytest.raises(MappingError) as caught:
        map_bundle(b.bundle(resources))
    assert (caught.value.reason, caught.value.location) == (
        Reason.INVALID_ELEMENT,
        "Encounter.period.end",
    )
    record = map_bundle(b.bundle(resources), discharged_at=ADMIT + timedelta(days=2)).record
    assert record["length_of_stay_days"] == 2.0


def test_transaction_bundles_and_fullurl_references_map_the_same() -> None:
    resources = stay_resources()
    expected = map_bundle(b.bundle(resources)).record
    assert map_bundle(b.bundle(resources, "transaction")).record == expected
    by_url = copy.deepcopy(b.bundle(resources))
    for entry in by_url["entry"]:
        entry["fullUrl"] = f"urn:uuid:{entry['resource']['id']}"
        for name in ("subject", "encounter"):
            if name in entry["resource"]:
                target = entry["resource"][name]["reference"].split("/")[1]
                entry["resource"][name]["reference"] = f"urn:uuid:{target}"
        for ref in entry["resource"].get("context", {}).get("encounter", []):
            ref["reference"] = "urn:uuid:" + ref["reference"].split("/")[1]
    mapped = map_bundle(by_url)
    assert mapped.record == expected
    assert mapped.patient_reference == "urn:uuid:p1"


def test_age_is_completed_years_capped_at_90() -> None:
    assert age_at(datetime(1950, 4, 2).date(), datetime(2021, 4, 1).date()) == 70
    assert age_at(datetime(1950, 4, 2).date(), datetime(2021, 4, 2).date()) == 71
    assert age_at(datetime(1900, 1, 1).date(), datetime(2021, 4, 2).date()) == 90


def test_charlson_matches_the_etl_cases() -> None:
    from tests.glue_jobs.test_mimic3_details import CHARLSON_CASES

    assert {case: charlson_index(codes) for case, (codes, _) in CHARLSON_CASES.items()} == {
        case: expected for case, (_, expected) in CHARLSON_CASES.items()
    }


def test_bands_are_the_etls() -> None:
    from fhir_mapping import clinical
    from glue_jobs import mimic3_details

    for name in ("HBA1C_ABOVE_8", "HBA1C_ABOVE_7", "GLUCOSE_ABOVE_300", "GLUCOSE_ABOVE_200"):
        assert getattr(clinical, name) == getattr(mimic3_details, name)


def _mutate(resources: list[dict[str, Any]], index: int, **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(resources)
    changed[index].update(changes)
    return b.bundle(changed)


BASE = stay_resources()
SECRET = "SECRET-9f2c"  # planted in inputs: must never appear in an error


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([1, 2], Reason.MALFORMED_BUNDLE),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": SECRET},
            Reason.MALFORMED_BUNDLE,
        ),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": [SECRET]},
            Reason.MALFORMED_BUNDLE,
        ),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": SECRET}]},
            Reason.MALFORMED_BUNDLE,
        ),
        ({"resourceType": "Patient", "id": SECRET}, Reason.WRONG_RESOURCE_TYPE),
        ({"resourceType": "Bundle", "type": "searchset", "entry": []}, Reason.WRONG_RESOURCE_TYPE),
        (b.bundle([*BASE, {"resourceType": "Claim", "id": "x"}]), Reason.WRONG_RESOURCE_TYPE),
        (b.bundle(BASE[:1]), Reason.NO_INPATIENT_ENCOUNTER),
        (b.bundle(BASE[1:]), Reason.NO_PATIENT),
        (b.bundle([*BASE, b.patient("p2", "1960-01-01")]), Reason.SEVERAL_PATIENTS),
        (b.bundle([*BASE, BASE[2]]), Reason.DUPLICATE_RESOURCE),
        (_mutate(BASE, 0, id=SECRET + "/../x"), Reason.INVALID_ELEMENT),
        (_mutate(BASE, 0, birthDate=SECRET), Reason.INVALID_ELEMENT),
        (_mutate(BASE, 0, birthDate="2030-01-01"), Reason.OUT_OF_CONTRACT),
        (_mutate(BASE, 1, period={"start": SECRET}), Reason.INVALID_ELEMENT),
        (_mutate(BASE, 1, period={"start": "2021-03-01T08:00:00"}), Reason.INVALID_ELEMENT),
        (
            _mutate(BASE, 1, period={"start": "2021-03-05T08:00:00Z", "end": "2021-03-01"}),
            Reason.OUT_OF_CONTRACT,
        ),
        (_mutate(BASE, 1, subject={"reference": f"Patient/{SECRET}"}), Reason.DANGLING_REFERENCE),
        (_mutate(BASE, 1, subject=SECRET), Reason.INVALID_ELEMENT),
        (
            _mutate(BASE, 2, encounter={"reference": f"Encounter/{SECRET}"}),
            Reason.DANGLING_REFERENCE,
        ),
        (
            _mutate(
                BASE, 2, code={"coding": [{"system": "http://snomed.info/sct", "code": SECRET}]}
            ),
            Reason.UNKNOWN_CODE_SYSTEM,
        ),
        (
            _mutate(BASE, 2, code={"coding": [{"system": fhir.SYSTEM_ICD10CM, "code": SECRET}]}),
            Reason.INVALID_CODE,
        ),
        (_mutate(BASE, 2, code={"coding": SECRET}), Reason.INVALID_ELEMENT),
        (_mutate(BASE, 9, valueQuantity={"value": SECRET}), Reason.INVALID_ELEMENT),
        (_mutate(BASE, 9, valueQuantity={"value": True}), Reason.INVALID_ELEMENT),
        (
            _mutate(BASE, 12, content=[{"attachment": {"data": SECRET + "!"}}]),
            Reason.INVALID_ELEMENT,
        ),
    ],
)
def test_every_failure_has_its_reason_and_no_input(document: Any, reason: Reason) -> None:
    with pytest.raises(MappingError) as caught:
        map_bundle(document)
    assert caught.value.reason is reason
    assert SECRET not in str(caught.value)
    assert caught.value.malformed == (reason is Reason.MALFORMED_BUNDLE)


def test_overlapping_inpatient_stays_leave_no_index() -> None:
    overlapping = b.encounter("e2", "p1", ADMIT - timedelta(days=1), ADMIT + timedelta(days=1))
    with pytest.raises(MappingError) as caught:
        map_bundle(b.bundle([*BASE, overlapping]))
    assert caught.value.reason is Reason.SEVERAL_INDEX_ENCOUNTERS
    same_start = b.encounter("e2", "p1", ADMIT, ADMIT + timedelta(days=1))
    with pytest.raises(MappingError) as caught:
        map_bundle(b.bundle([*BASE, same_start]))
    assert caught.value.reason is Reason.SEVERAL_INDEX_ENCOUNTERS


def test_entered_in_error_and_other_stays_resources_are_not_read() -> None:
    resources = [
        *BASE,
        b.encounter("h1", "p1", ADMIT - timedelta(days=30), ADMIT - timedelta(days=25)),
        b.condition("c9", "p1", "h1", "I10", fhir.SYSTEM_ICD10CM),
        {
            **b.condition("c8", "p1", "e1", "I10", fhir.SYSTEM_ICD10CM),
            "verificationStatus": {"coding": [{"code": "entered-in-error"}]},
        },
        {**b.procedure("x9", "p1", "e1", "0DTJ4ZZ", fhir.SYSTEM_ICD10PCS), "status": "not-done"},
    ]
    record = map_bundle(b.bundle(resources)).record
    assert record["diagnosis_codes"] == ["icd10cm:I509", "icd9cm:25040", "icd9cm:4280"]
    assert record["procedure_codes"] == ["icd10pcs:02HV33Z"]


def test_codes_follow_diagnosis_ranks_and_procedure_times() -> None:
    resources = copy.deepcopy(BASE)
    resources[1]["diagnosis"] = [
        {"condition": {"reference": "Condition/c3"}, "rank": 1},
        {"condition": {"reference": "Condition/c1"}, "rank": 2},
    ]
    resources += [
        {
            **b.procedure("x2", "p1", "e1", "0DTJ4ZZ", fhir.SYSTEM_ICD10PCS),
            "performedDateTime": "2021-03-01T09:00:00Z",
        },
        {
            **b.procedure("x3", "p1", "e1", "0BH17EZ", fhir.SYSTEM_ICD10PCS),
            "performedDateTime": "2021-03-02T09:00:00Z",
        },
    ]
    record = map_bundle(b.bundle(resources)).record
    # Ranked first in rank order, then the unranked by code.
    assert record["diagnosis_codes"] == ["icd9cm:25040", "icd10cm:I509", "icd9cm:4280"]
    # Performed first in time order, then the undated by code.
    assert record["procedure_codes"] == ["icd10pcs:0DTJ4ZZ", "icd10pcs:0BH17EZ", "icd10pcs:02HV33Z"]
    resources[1]["diagnosis"][0]["condition"] = {"reference": "Condition/" + SECRET}
    with pytest.raises(MappingError) as caught:
        map_bundle(b.bundle(resources))
    assert caught.value.reason is Reason.DANGLING_REFERENCE


# --- properties over generated bundles ------------------------------------------------------

_CATEGORY_CODES = st.sampled_from([*sorted(fhir.PRIORITY), None])


@st.composite
def stays(draw: st.DrawFn) -> dict[str, Any]:
    """A patient with a random index stay, random history and random clinical resources."""
    admitted = ADMIT + timedelta(minutes=draw(st.integers(0, 10**6)))
    stay_hours = draw(st.integers(0, 24 * 60))
    resources = [
        b.patient(
            "p",
            f"{draw(st.integers(1900, 2020))}-0{draw(st.integers(1, 9))}-15",
            draw(st.sampled_from(["male", "female", "other", "unknown", None])),
        ),
        b.encounter(
            "e",
            "p",
            admitted,
            admitted + timedelta(hours=stay_hours),
            priority=draw(_CATEGORY_CODES),
            admit_source=draw(st.sampled_from([*sorted(fhir.ADMIT_SOURCE), "zzz", None])),
            disposition=draw(st.sampled_from([*sorted(fhir.DISCHARGE_DISPOSITION), None])),
        ),
    ]
    for n in range(draw(st.integers(0, 6))):
        days = draw(st.integers(2, 900))
        klass = draw(st.sampled_from(["IMP", "EMER", "AMB", "OBSENC"]))
        start = admitted - timedelta(days=days)
        resources.append(
            b.encounter(f"h{n}", "p", start, start + timedelta(hours=20), class_code=klass)
        )
    codes = st.sampled_from(["I509", "E119", "4280", "25040", "V4501", "042"])
    for n, code in enumerate(draw(st.lists(codes, max_size=8))):
        system = fhir.SYSTEM_ICD10CM if code[0] in "IE" and len(code) == 4 else fhir.SYSTEM_ICD9CM
        resources.append(b.condition(f"c{n}", "p", "e", code, system))
    names = st.sampled_from(["insulin", "heparin", "aspirin", "senna"])
    for n, name in enumerate(draw(st.lists(names, max_size=6))):
        resources.append(
            b.medication_request(
                f"m{n}", "p", "e", name, admitted + timedelta(hours=draw(st.integers(0, 48)))
            )
        )
    for n in range(draw(st.integers(0, 5))):
        resources.append(
            b.observation(
                f"o{n}",
                "p",
                "e",
                name=draw(names),
                abnormal=draw(st.booleans()),
                effective=admitted + timedelta(hours=n),
                loinc=draw(st.sampled_from([None, *fhir.LOINC_HBA1C, *fhir.LOINC_GLUCOSE])),
                value=draw(st.floats(0, 600, allow_nan=False)),
            )
        )
    return {"resources": resources, "order": draw(st.permutations(range(len(resources))))}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stays())
def test_generated_stays_map_to_valid_records_whatever_the_entry_order(
    case: dict[str, Any],
) -> None:
    resources = case["resources"]
    record = map_bundle(b.bundle(resources)).record
    EncounterRequest.model_validate(record)
    assert record["num_diagnoses"] == len(record["diagnosis_codes"])
    assert record["num_medications"] == len(set(record["medications"]))
    assert record["num_abnormal_labs"] <= record["num_lab_tests"]
    history = [r for r in resources if r["resourceType"] == "Encounter" and r["id"] != "e"]
    assert (record["prior_encounters_on_record"] is None) == (not history)
    # Nothing follows the entries' order (the ETL reads NDJSON lines in no order either).
    assert map_bundle(b.bundle([resources[i] for i in case["order"]])).record == record


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_damage_to_a_bundle_is_a_mapping_error_never_a_crash(data: st.DataObject) -> None:
    """Replace one element anywhere in a valid bundle with arbitrary JSON."""
    document = json.loads(json.dumps(b.bundle(BASE)))
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            paths.append((node, key))
            if isinstance(value, dict | list):
                walk(value)

    walk(document)
    parent, key = data.draw(st.sampled_from(paths))
    parent[key] = data.draw(_json_values())
    try:
        record = map_bundle(document).record
    except MappingError as error:
        reason = error.reason
    else:
        reason = None
        assert record["patient_id"]
    assert reason is None or reason in Reason


def test_an_ed_visit_is_an_emer_encounter_or_a_stay_admitted_from_the_ed() -> None:
    """contracts.fhir's record rule, the same in the FHIR ETL source (test_spark_parity)."""
    resources = stay_resources()
    resources += [
        b.encounter("h1", "p1", ADMIT - timedelta(days=200), ADMIT - timedelta(days=195)),
        b.encounter(
            "h2",
            "p1",
            ADMIT - timedelta(days=100),
            ADMIT - timedelta(days=95),
            admit_source="gp",
        ),
        b.encounter(
            "h3", "p1", ADMIT - timedelta(days=30), ADMIT - timedelta(days=30), class_code="EMER"
        ),
        # Outside the 12 months: not counted.
        b.encounter(
            "h4", "p1", ADMIT - timedelta(days=366), ADMIT - timedelta(days=366), class_code="EMER"
        ),
    ]
    record = map_bundle(b.bundle(resources)).record
    assert record["prior_admissions_12m"] == 2
    assert record["prior_ed_visits_12m"] == 2  # h1 (admitted from the ED) and h3
    assert record["prior_outpatient_visits_12m"] == 0


def test_refuted_and_void_resources_are_not_part_of_the_record() -> None:
    refuted = b.condition("c9", "p1", "e1", "C34.90", fhir.SYSTEM_ICD10CM)
    refuted["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    cancelled = b.observation("o9", "p1", "e1", name="Potassium", effective=ADMIT, abnormal=True)
    cancelled["status"] = "cancelled"
    withdrawn = b.discharge_summary("d9", "p1", "e1", "Wrong patient.", DISCHARGE + timedelta(1))
    withdrawn["docStatus"] = "entered-in-error"
    base = map_bundle(b.bundle(stay_resources())).record
    record = map_bundle(b.bundle([*stay_resources(), refuted, cancelled, withdrawn])).record
    for field in (
        "diagnosis_codes",
        "charlson_index",
        "num_lab_tests",
        "abnormal_labs",
        "note_text",
    ):
        assert record[field] == base[field], field


def test_the_note_is_plain_text_content_never_the_narrative() -> None:
    """The narrative summarises the resource (http://hl7.org/fhir/R4/narrative.html); a PDF
    attachment is not the note's text, a plain-text one after it is."""
    summary = b.discharge_summary("d1", "p1", "e1", "Plain text note.", DISCHARGE)
    summary["content"].insert(
        0, {"attachment": {"contentType": "application/pdf", "data": "JVBERi0xLjQK/////w=="}}
    )
    summary["text"] = {"status": "generated", "div": "<div>Narrative summary</div>"}
    resources = [r for r in stay_resources() if r["resourceType"] != "DocumentReference"]
    assert map_bundle(b.bundle([*resources, summary])).record["note_text"] == "Plain text note."
    summary["content"] = summary["content"][:1]
    assert map_bundle(b.bundle([*resources, summary])).record["note_text"] is None
