"""The generator's FHIR R4 Bulk Data layout: the MIMIC-III tables' patients as NDJSON resources.

Test and benchmark code only (never imported by the Glue job). One line per resource, built
column-wise with Arrow string joins (no per-row Python), from the MIMIC-III table of the same
chunk, with the terminology of ``contracts.fhir``:
- Patient: gender, birthDate, US Core race/ethnicity; Encounter: class IMP, period, priority,
  serviceType, hospitalization.admitSource / dischargeDisposition (NUBC), diagnosis ranks;
- Condition, Procedure (performed in coded order), MedicationRequest (NDC + the drug's name),
  Observation (LOINC, value, interpretation ``A`` when abnormal), DocumentReference (the
  discharge summary, base64 text).
Codes of stays from the ICD-10 switch on are ICD-10-CM/PCS (``synthetic_layouts.coded``).
Generated texts hold no characters JSON must escape (the generator's vocabularies).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contracts import fhir
from glue_jobs.synthetic_layouts import Era, _recode, coded
from glue_jobs.synthetic_vocab import (
    FHIR_ADMIT_SOURCES,
    FHIR_NEWBORN_ADMIT_SOURCE,
    FHIR_NUBC_DISCHARGE,
    FHIR_PRIORITIES,
    FHIR_RACES,
    LAB_ITEMS,
)

Part: TypeAlias = str | pa.Array | pa.ChunkedArray
OMB_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
OMB_NOT_HISPANIC = "2186-5"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _join(parts: Sequence[Part]) -> pa.Array:
    """Concatenate literal fragments and string columns row by row."""
    arrays = [
        part if isinstance(part, str) else pa.chunked_array([part]).combine_chunks()
        for part in parts
    ]
    return pc.binary_join_element_wise(*arrays, "")


def _optional(present: pa.Array | np.ndarray, fragment: pa.Array) -> pa.Array:
    """The fragment where ``present``, else an empty string."""
    return pc.if_else(pa.array(np.asarray(present, dtype=bool)), fragment, "")


def _ids(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.cast(column, pa.string())


def _instant(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")


def _date(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.strftime(column, format="%Y-%m-%d")


def _coding(system: str, code: Part) -> list[Part]:
    return ['{"coding":[{"system":"', system, '","code":"', code, '"}]}']


def _ref(kind: str, ids: Part) -> list[Part]:
    return ['{"reference":"', kind, "/", ids, '"}']


def dotted(code: pa.Array, version: pa.Array, procedures: bool) -> pa.Array:
    """Codes as FHIR exports write them: ICD-9-CM (``428.0``, ``E878.2``, volume 3 ``38.93``)
    and ICD-10-CM (``I50.9``) with their dot; ICD-10-PCS without one."""
    text = pa.chunked_array([code]).combine_chunks()
    icd9 = pc.equal(version, 9)
    cut = 2 if procedures else 3
    e_code = pc.and_(icd9, pc.starts_with(text, "E")) if not procedures else pa.scalar(False)

    def split_at(at: int) -> pa.Array:
        head = pc.utf8_slice_codeunits(text, 0, at)
        tail = pc.utf8_slice_codeunits(text, at)
        return pc.if_else(
            pc.greater(pc.utf8_length(tail), 0), pc.binary_join_element_wise(head, tail, "."), text
        )

    with_dot = pc.if_else(e_code, split_at(4), split_at(cut))
    if procedures:
        return pc.if_else(icd9, with_dot, text)
    return with_dot


def patients(mimic3: pa.Table, ethnicity: Sequence[str]) -> pa.Array:
    """Patient lines; ``ethnicity`` is each patient's MIMIC ethnicity."""
    race = [FHIR_RACES.get(name, ("", False)) for name in ethnicity]
    has_race = np.array([code != "" for code, _ in race])
    known = np.array([name in FHIR_RACES for name in ethnicity])
    race_code = pa.array([code for code, _ in race])
    hispanic = pa.array([fhir.OMB_ETHNICITY_HISPANIC if h else OMB_NOT_HISPANIC for _, h in race])
    race_ext = _join(
        [
            '{"url":"',
            fhir.US_CORE_RACE_URL,
            '","extension":[{"url":"ombCategory","valueCoding":{"system":"',
            OMB_SYSTEM,
            '","code":"',
            race_code,
            '"}}]},',
        ]
    )
    eth_ext = _join(
        [
            '{"url":"',
            fhir.US_CORE_ETHNICITY_URL,
            '","extension":[{"url":"ombCategory","valueCoding":{"system":"',
            OMB_SYSTEM,
            '","code":"',
            hispanic,
            '"}}]}',
        ]
    )
    gender = _recode(mimic3["gender"], {"M": "male", "F": "female"})
    extensions = _optional(
        known, _join([',"extension":[', _optional(has_race, race_ext), eth_ext, "]"])
    )
    return _join(
        [
            '{"resourceType":"Patient","id":"',
            _ids(mimic3["subject_id"]),
            '","gender":"',
            gender,
            '","birthDate":"',
            _date(mimic3["dob"]),
            '"',
            extensions,
            "}",
        ]
    )


def _diagnosis_lists(diagnoses: pa.Table) -> pa.Table:
    """hadm_id -> the Encounter.diagnosis array text, ranks in coded order."""
    entry = _join(
        [
            '{"condition":{"reference":"Condition/',
            _ids(diagnoses["row_id"]),
            '"},"rank":',
            _ids(diagnoses["seq_num"]),
            "}",
        ]
    )
    grouped = (
        pa.table({"hadm_id": diagnoses["hadm_id"], "entry": entry})
        .group_by("hadm_id", use_threads=False)
        .aggregate([("entry", "list")])
    )
    return pa.table(
        {
            "hadm_id": grouped["hadm_id"],
            "diagnosis": pc.binary_join(grouped["entry_list"], ","),
        }
    )


def _first_services(services: pa.Table) -> pa.Table:
    """hadm_id -> the admitting (first) service; rows are sorted by time within a stay."""
    return (
        services.select(["hadm_id", "curr_service"])
        .group_by("hadm_id", use_threads=False)
        .aggregate([("curr_service", "first")])
    )


def _lookup(keys: pa.Array, table: pa.Table, column: str) -> pa.Array:
    """``table[column]`` at each key's row (null where the key has none)."""
    index = pc.index_in(keys, value_set=table["hadm_id"])
    return pc.take(table[column], index)


def encounters(admissions: pa.Table, diagnoses: pa.Table, services: pa.Table) -> pa.Array:
    """Encounter lines of the chunk's admissions (class IMP; newborns admitted from ``born``)."""
    hadm = admissions["hadm_id"].combine_chunks()
    newborn = pc.equal(admissions["admission_type"], "NEWBORN")
    source = pc.if_else(
        newborn,
        FHIR_NEWBORN_ADMIT_SOURCE,
        _recode(admissions["admission_location"], {**FHIR_ADMIT_SOURCES, **_none_source()}),
    )
    priority = _recode(admissions["admission_type"], {**FHIR_PRIORITIES, "NEWBORN": ""})
    disposition = _recode(admissions["discharge_location"], FHIR_NUBC_DISCHARGE)
    diagnosis = _lookup(hadm, _diagnosis_lists(diagnoses), "diagnosis")
    service = _lookup(hadm, _first_services(services), "curr_service_first")
    has = pc.is_valid
    return _join(
        [
            '{"resourceType":"Encounter","id":"',
            _ids(hadm),
            '","status":"finished","class":{"system":"',
            fhir.SYSTEM_ACT_CODE,
            '","code":"IMP"},"subject":',
            *_ref("Patient", _ids(admissions["subject_id"])),
            ',"period":{"start":"',
            _instant(admissions["admittime"]),
            '","end":"',
            _instant(admissions["dischtime"]),
            '"}',
            _optional(
                pc.not_equal(priority, "").to_numpy(zero_copy_only=False),
                _join([',"priority":', *_coding(fhir.SYSTEM_ACT_PRIORITY, priority)]),
            ),
            _optional(
                has(service).to_numpy(zero_copy_only=False),
                _join([',"serviceType":{"text":"', pc.fill_null(service, ""), '"}']),
            ),
            ',"hospitalization":{',
            _optional(
                pc.not_equal(source, "").to_numpy(zero_copy_only=False),
                _join(['"admitSource":', *_coding(fhir.SYSTEM_ADMIT_SOURCE, source), ","]),
            ),
            '"dischargeDisposition":',
            *_coding(fhir.SYSTEM_NUBC_DISCHARGE_STATUS, disposition),
            "}",
            _optional(
                has(diagnosis).to_numpy(zero_copy_only=False),
                _join([',"diagnosis":[', pc.fill_null(diagnosis, ""), "]"]),
            ),
            "}",
        ]
    )


def _none_source() -> dict[str, str]:
    return {"** INFO NOT AVAILABLE **": ""}


def conditions(diagnoses: pa.Table, era: Era) -> pa.Array:
    """Condition lines: ICD-9-CM or ICD-10-CM by the stay's era, dotted."""
    code, version = coded(diagnoses, era, procedures=False)
    system = pc.if_else(pc.equal(version, 10), fhir.SYSTEM_ICD10CM, fhir.SYSTEM_ICD9CM)
    return _join(
        [
            '{"resourceType":"Condition","id":"',
            _ids(diagnoses["row_id"]),
            '","category":[',
            *_coding(CONDITION_CATEGORY, "encounter-diagnosis"),
            '],"code":{"coding":[{"system":"',
            system,
            '","code":"',
            dotted(code, version, procedures=False),
            '"}]},"subject":',
            *_ref("Patient", _ids(diagnoses["subject_id"])),
            ',"encounter":',
            *_ref("Encounter", _ids(diagnoses["hadm_id"])),
            "}",
        ]
    )


def procedures(table: pa.Table, era: Era) -> pa.Array:
    """Procedure lines, performed one minute apart in coded order from the admission."""
    code, version = coded(table, era, procedures=True)
    system = pc.if_else(pc.equal(version, 10), fhir.SYSTEM_ICD10PCS, fhir.SYSTEM_ICD9CM)
    admit = era.admit_by_hadm[table["hadm_id"].to_numpy() - 2_000_000]
    performed = (admit + 60 * table["seq_num"].to_numpy()) * 1_000_000
    when = pa.array(performed).cast(pa.timestamp("us", tz="UTC"))
    return _join(
        [
            '{"resourceType":"Procedure","id":"',
            _ids(table["row_id"]),
            '","status":"completed","code":{"coding":[{"system":"',
            system,
            '","code":"',
            dotted(code, version, procedures=True),
            '"}]},"subject":',
            *_ref("Patient", _ids(table["subject_id"])),
            ',"encounter":',
            *_ref("Encounter", _ids(table["hadm_id"])),
            ',"performedDateTime":"',
            _instant(when),
            '"}',
        ]
    )


def medication_requests(table: pa.Table) -> pa.Array:
    """MedicationRequest lines: NDC coding and the drug's name as text."""
    ndc = table["ndc"]
    return _join(
        [
            '{"resourceType":"MedicationRequest","id":"',
            _ids(table["row_id"]),
            '","status":"completed","intent":"order","medicationCodeableConcept":{"coding":'
            '[{"system":"',
            fhir.SYSTEM_NDC,
            '","code":"',
            ndc,
            '"}],"text":"',
            table["drug"],
            '"},"subject":',
            *_ref("Patient", _ids(table["subject_id"])),
            ',"encounter":',
            *_ref("Encounter", _ids(table["hadm_id"])),
            ',"authoredOn":"',
            _instant(table["startdate"]),
            '"}',
        ]
    )


def observations(labs: pa.Table) -> pa.Array:
    """Observation lines (category laboratory); outpatient results have no encounter."""
    loinc = _recode(
        pc.cast(labs["itemid"], pa.string()), {str(item[0]): item[4] for item in LAB_ITEMS}
    )
    label = _recode(pc.cast(labs["itemid"], pa.string()), {str(i[0]): i[1] for i in LAB_ITEMS})
    hadm = labs["hadm_id"]
    abnormal = pc.is_valid(labs["flag"]).to_numpy(zero_copy_only=False)
    return _join(
        [
            '{"resourceType":"Observation","id":"',
            _ids(labs["row_id"]),
            '","status":"final","category":[',
            *_coding(OBSERVATION_CATEGORY, fhir.LABORATORY_CATEGORY),
            '],"code":{"coding":[{"system":"',
            fhir.SYSTEM_LOINC,
            '","code":"',
            loinc,
            '","display":"',
            label,
            '"}],"text":"',
            label,
            '"},"subject":',
            *_ref("Patient", _ids(labs["subject_id"])),
            _optional(
                pc.is_valid(hadm).to_numpy(zero_copy_only=False),
                _join([',"encounter":', *_ref("Encounter", pc.fill_null(_ids(hadm), ""))]),
            ),
            ',"effectiveDateTime":"',
            _instant(labs["charttime"]),
            '","valueQuantity":{"value":',
            _ids(labs["valuenum"]),
            "}",
            _optional(
                abnormal,
                _join(
                    [
                        ',"interpretation":[',
                        *_coding(fhir.SYSTEM_OBSERVATION_INTERPRETATION, "A"),
                        "]",
                    ]
                ),
            ),
            "}",
        ]
    )


def document_references(notes: pa.Table) -> pa.Array:
    """DocumentReference lines: the discharge summary's text as a base64 attachment."""
    import base64

    data = pa.array(
        [base64.b64encode(text.encode()).decode() for text in notes["text"].to_pylist()]
    )
    return _join(
        [
            '{"resourceType":"DocumentReference","id":"',
            _ids(notes["row_id"]),
            '","status":"current","type":',
            *_coding(fhir.SYSTEM_LOINC, fhir.LOINC_DISCHARGE_SUMMARY),
            ',"subject":',
            *_ref("Patient", _ids(notes["subject_id"])),
            ',"date":"',
            _instant(notes["chartdate"]),
            '","content":[{"attachment":{"contentType":"text/plain","data":"',
            data,
            '"}}],"context":{"encounter":[',
            *_ref("Encounter", _ids(notes["hadm_id"])),
            "]}}",
        ]
    )


def write_lines(folder: Path, resource_type: str, part: int, lines: pa.Array) -> int:
    """Write one NDJSON file of the type (``Type.ndjson``, then ``Type.001.ndjson``...)."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = fhir.NDJSON_SUFFIX if part == 0 else f".{part:03d}{fhir.NDJSON_SUFFIX}"
    with (folder / f"{resource_type}{suffix}").open("a", encoding="utf-8") as handle:
        if len(lines):
            handle.write("\n".join(lines.to_pylist()))
            handle.write("\n")
    return len(lines)
