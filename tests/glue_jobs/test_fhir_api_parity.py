"""Training and serving read FHIR alike: the Spark FHIR source over a generated Bulk Data
export, and the API's mapper over the Bundle of each index stay built from the same lines, give
the same canonical record (every field the mapper returns, keys hashed as the predict path
hashes them).

The generated export (ICD-9 and ICD-10 eras) is extended with what a real hospital's export
holds and the generator does not write, so that every record rule of ``contracts.fhir`` is
exercised on both sides: emergency (EMER) and outpatient (AMB) encounters, an unfinished one,
a refuted Condition, a not-done Procedure, a cancelled Observation, and discharge summaries
whose first attachment is a PDF or that were entered in error.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from contracts import fhir
from contracts.deidentify import ENCOUNTER_NAMESPACE, keyed_hash
from contracts.encounter import model_input_fields
from fhir_mapping import map_resources
from fhir_mapping.bundle import entry_of
from glue_jobs.ehr_features import run_job
from glue_jobs.synthetic_ehr import generate
from lambdas.predict.records import to_endpoint_record
from tests.glue_jobs.conftest import TEST_KEY
from tests.glue_jobs.output_checks import read_dataset

pytestmark = pytest.mark.spark

ADMISSIONS = 300
SEED = 41
ICD10_FROM = "2150-01-01"
CLINICAL_TYPES = ("Condition", "Procedure", "MedicationRequest", "Observation", "DocumentReference")
#: Fields the API may not know from a Bundle holding no other encounter of the patient (null
#: there), which the ETL knows from the whole export (0 there): contracts.fhir's record rules.
HISTORY_FIELDS = (
    "prior_outpatient_visits_12m",
    "prior_encounters_on_record",
    "prior_readmissions_30d_on_record",
)
FLOAT_FIELDS = ("length_of_stay_days", "days_since_last_discharge")

Resources = dict[str, list[dict[str, Any]]]


def _read(folder: Path) -> Resources:
    by_type: Resources = {}
    for path in sorted(folder.glob("*.ndjson")):
        kind = path.name.split(".")[0]
        by_type.setdefault(kind, []).extend(
            json.loads(line) for line in path.read_text().splitlines() if line.strip()
        )
    return by_type


def _instant(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _target(reference: dict[str, Any]) -> str:
    return str(reference["reference"]).split("/")[-1]


def _encounter_of(resource: dict[str, Any]) -> str | None:
    if resource["resourceType"] == "DocumentReference":
        return _target(resource["context"]["encounter"][0])
    return _target(resource["encounter"]) if "encounter" in resource else None


def _visit(stay: dict[str, Any], visit_id: str, klass: str, days: float, status: str) -> Any:
    start = _parse(stay["period"]["start"]) - timedelta(days=days)
    return {
        "resourceType": "Encounter",
        "id": visit_id,
        "status": status,
        "class": {"system": fhir.SYSTEM_ACT_CODE, "code": klass},
        "subject": stay["subject"],
        "period": {"start": _instant(start), "end": _instant(start + timedelta(hours=3))},
    }


def _summary(document: dict[str, Any], new_id: str, minutes: int, note: str) -> Any:
    later = copy.deepcopy(document)
    later["id"] = new_id
    later["date"] = _instant(_parse(document["date"]) + timedelta(minutes=minutes))
    data = base64.b64encode(note.encode()).decode()
    later["content"] = [
        {"attachment": {"contentType": "application/pdf", "data": "JVBERi0xLjQK/////w=="}},
        {"attachment": {"contentType": "text/plain; charset=utf-8", "data": data}},
    ]
    return later


def _extend(export: Resources, rng: random.Random) -> Resources:
    """What the generator does not write: other encounter classes and void resources."""
    extra: Resources = defaultdict(list)
    children: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for kind in CLINICAL_TYPES:
        for resource in export.get(kind, []):
            children[(kind, _encounter_of(resource) or "")].append(resource)
    for number, stay in enumerate(export["Encounter"]):
        if rng.random() < 0.4:
            for klass, status in (("EMER", "finished"), ("AMB", "finished"), ("EMER", "planned")):
                extra["Encounter"].append(
                    _visit(stay, f"v{number}{klass}{status}", klass, rng.uniform(1, 420), status)
                )
        if rng.random() >= 0.3:
            continue
        voided = {
            "Condition": ("verificationStatus", {"coding": [{"code": "refuted"}]}),
            "Procedure": ("status", "not-done"),
            "Observation": ("status", "cancelled"),
        }
        for kind, (element, value) in voided.items():
            for original in children[(kind, stay["id"])][:1]:
                extra[kind].append({**copy.deepcopy(original), "id": f"x{number}", element: value})
        for document in children[("DocumentReference", stay["id"])][:1]:
            extra["DocumentReference"].append(
                _summary(document, f"a{number}", 1, f"Addendum {number}.")
            )
            withdrawn = _summary(document, f"w{number}", 2, "Wrong patient.")
            extra["DocumentReference"].append({**withdrawn, "docStatus": "entered-in-error"})
    return extra


@pytest.fixture(scope="module")
def export_and_rows(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Resources, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("fhir-parity")
    generate(ADMISSIONS, SEED, str(root / "in"), True, "fhir", ICD10_FROM)
    extra = _extend(_read(root / "in"), random.Random(SEED))
    for kind, lines in extra.items():
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (root / "in" / f"{kind}.900{fhir.NDJSON_SUFFIX}").write_text(text)
    run_job(spark, "fhir", str(root / "in"), str(root / "out"), TEST_KEY)
    return _read(root / "in"), read_dataset(root / "out" / "features")


def _bundle(export: Resources, stay: dict[str, Any]) -> list[Any]:
    """The Patient, the stay, its clinical resources and the patient's earlier Encounters."""
    patient_id = _target(stay["subject"])
    start = _parse(stay["period"]["start"])
    patient = [p for p in export["Patient"] if p["id"] == patient_id]
    earlier = [
        e
        for e in export["Encounter"]
        if _target(e["subject"]) == patient_id and _parse(e["period"]["start"]) < start
    ]
    clinical = [
        r for kind in CLINICAL_TYPES for r in export.get(kind, []) if _encounter_of(r) == stay["id"]
    ]
    return [entry_of(r) for r in (*patient, stay, *earlier, *clinical)]


def test_the_mapper_gives_the_spark_source_record_on_generated_bundles(
    export_and_rows: tuple[Resources, list[dict[str, Any]]],
) -> None:
    export, rows = export_and_rows
    stays = {
        keyed_hash(TEST_KEY, ENCOUNTER_NAMESPACE, e["id"]): e
        for e in export["Encounter"]
        if e["class"]["code"] in fhir.INPATIENT_CLASS_CODES
    }
    assert len(rows) > 0.8 * ADMISSIONS
    inputs = {spec.name for spec in model_input_fields()}
    seen: dict[str, set[Any]] = defaultdict(set)
    for row in rows:
        stay = stays[row["encounter_key"]]
        entries = _bundle(export, stay)
        mapped = map_resources(entries, encounter_id=stay["id"]).record
        record = to_endpoint_record(mapped, TEST_KEY)
        assert inputs <= set(record)
        history_known = sum(e.resource_type == "Encounter" for e in entries) > 1
        for name, value in record.items():
            expected = row[name]
            if name in HISTORY_FIELDS and not history_known:
                assert value is None, (name, value)
                assert expected == 0, (name, expected)
            elif name in FLOAT_FIELDS and value is not None:
                assert expected == pytest.approx(value, abs=1e-6), (name, value, expected)
            else:
                assert value == expected, (name, value, expected)
            seen[name].add(json.dumps(value, sort_keys=True))
    # The rules were exercised: ED and outpatient visits counted, both code eras, notes.
    for name in ("prior_ed_visits_12m", "prior_outpatient_visits_12m", "note_text"):
        assert len(seen[name]) > 2, name
    codes = {c.split(":")[0] for r in rows for c in r["diagnosis_codes"]}
    assert {"icd9cm", "icd10cm"} <= codes
