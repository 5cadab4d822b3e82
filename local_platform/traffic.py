"""Requests for the API: encounters of the test split, sent as a hospital system would send them.

The curated features carry hashed keys only, so each request gets a made-up raw identifier
(``demo-patient-<n>``) that the predict Lambda hashes, as it hashes a real one. A replayed day
shifts part of its encounters (older patients, more prior admissions, a diagnosis category the
training data never had) so that the drift monitor has something to find.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.dataset as pa_dataset

from contracts import serving
from contracts.drift import code_group
from contracts.encounter import AGE_CAP_YEARS, FieldKind, model_input_fields

PATIENT_ID = serving.PATIENT_ID
ENCOUNTER_ID = serving.ENCOUNTER_ID

#: The injected shift: what changes for the shifted part of the day.
SHIFT_AGE_YEARS = 25
SHIFT_PRIOR_ADMISSIONS = 3
SHIFTED_FEATURES = ("age_years", "prior_admissions_12m", "diagnosis_codes")
#: Candidate new diagnosis codes; the first whose ICD-9 category is not among the training
#: baseline's diagnosis buckets is used (E947: adverse effect of other drugs).
NEW_DIAGNOSIS_CANDIDATES = ("E9479", "V8741", "E9300", "V1588")
#: Share of the day, from its start, served before the shift begins.
UNSHIFTED_SHARE = 0.4
TRAFFIC_BATCH_SIZE = 25


@dataclass(frozen=True)
class Reply:
    """One HTTP answer and how long it took."""

    status: int
    body: Any
    latency_ms: float


def read_split(features_dir: Path, split: str) -> list[dict[str, Any]]:
    """The split's encounters as dicts holding the model inputs only (no keys, no label)."""
    names = [spec.name for spec in model_input_fields()]
    table = pa_dataset.dataset(str(features_dir / f"split={split}"), format="parquet").to_table(
        columns=names
    )
    required = [spec.name for spec in model_input_fields() if not spec.nullable]
    return [row for row in table.to_pylist() if all(row[name] is not None for name in required)]


def as_request(record: Mapping[str, Any], number: int) -> dict[str, Any]:
    """An API request body for one encounter, with made-up raw identifiers."""
    body: dict[str, Any] = {PATIENT_ID: f"demo-patient-{number}"}
    body[ENCOUNTER_ID] = f"demo-encounter-{number}"
    for spec in model_input_fields():
        value = record.get(spec.name)
        if value is None or (spec.kind == FieldKind.TEXT and not value):
            continue
        body[spec.name] = list(value) if spec.kind == FieldKind.CODE_SEQUENCE else value
    return body


def new_diagnosis_code(baseline: Mapping[str, Any]) -> str:
    """A candidate code whose group (by the baseline's grouping) the baseline does not hold."""
    feature = baseline["features"]["diagnosis_codes"]
    known = set(feature["buckets"])
    for code in NEW_DIAGNOSIS_CANDIDATES:
        if code_group(code, feature["grouping"]) not in known:
            return code
    raise ValueError("every candidate diagnosis category is already in the baseline")


def shifted(request: Mapping[str, Any], new_code: str) -> dict[str, Any]:
    """The request with the injected shift applied."""
    out = dict(request)
    out["age_years"] = min(int(out["age_years"]) + SHIFT_AGE_YEARS, AGE_CAP_YEARS)
    out["prior_admissions_12m"] = int(out["prior_admissions_12m"]) + SHIFT_PRIOR_ADMISSIONS
    out["diagnosis_codes"] = [*out.get("diagnosis_codes", []), new_code]
    return out


def day_of_traffic(
    records: Sequence[Mapping[str, Any]], count: int, new_code: str, seed: int
) -> list[dict[str, Any]]:
    """``count`` requests drawn from ``records``; the later part of the day is shifted."""
    if not records:
        raise ValueError("no encounters to replay")
    rng = random.Random(seed)  # noqa: S311 - sampling traffic, not a secret
    unshifted = int(count * UNSHIFTED_SHARE)
    requests = []
    for number in range(count):
        request = as_request(rng.choice(records), number)
        requests.append(request if number < unshifted else shifted(request, new_code))
    return requests


def batches(items: Sequence[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def call(url: str, method: str = "GET", body: Any = None, timeout_s: float = 30.0) -> Reply:
    """One HTTP call; a JSON body in and out. HTTP errors are replies, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    latency_ms = (time.perf_counter() - started) * 1000
    return Reply(status, json.loads(raw) if raw else None, latency_ms)


def curl_lines(api_url: str, example: Mapping[str, Any]) -> list[str]:
    """The curl commands a user can paste to call the local API."""
    body = json.dumps(example, separators=(",", ":"))
    return [
        f"curl -s {api_url}/health",
        f"curl -s -X POST {api_url}/predict -H 'Content-Type: application/json' -d '{body}'",
    ]


#: A made-up encounter for the curl example and the README (no record of any dataset).
EXAMPLE_REQUEST: dict[str, Any] = {
    PATIENT_ID: "MRN-0001",
    ENCOUNTER_ID: "ADM-0001",
    "age_years": 71,
    "sex": "F",
    "admission_type": "emergency",
    "admission_source": "emergency_department",
    "discharge_disposition": "home_health",
    "length_of_stay_days": 5.0,
    "prior_admissions_12m": 2,
    "prior_ed_visits_12m": 1,
    "num_diagnoses": 3,
    "num_procedures": 1,
    "num_medications": 12,
    "num_lab_tests": 40,
    "num_abnormal_labs": 6,
    "hba1c_result": "above_8",
    "max_glucose_result": "normal",
    "charlson_index": 4,
    "diagnosis_codes": ["4280", "25000", "5849"],
    "procedure_codes": ["3893"],
    "medications": ["furosemide", "insulin"],
    "abnormal_labs": ["creatinine"],
}
