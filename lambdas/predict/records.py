"""Turn validated request records into endpoint records: identifiers hashed, age capped.

This is the de-identification boundary of the API: what this returns is all the endpoint
(and anything after it) ever sees of a patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts import serving
from contracts.deidentify import ENCOUNTER_NAMESPACE, PATIENT_NAMESPACE, keyed_hash
from contracts.encounter import AGE_CAP_YEARS
from lambdas.predict.schema import ENCOUNTER_ID, PATIENT_ID

PATIENT_KEY = serving.PATIENT_KEY
ENCOUNTER_KEY = serving.ENCOUNTER_KEY
AGE_FIELD = "age_years"


def to_endpoint_record(record: Mapping[str, Any], key: str | bytes) -> dict[str, Any]:
    """Return ``record`` with raw ids replaced by keyed hashes and age capped as in the ETL.

    Integer identifiers hash as their decimal string, which is how the ETL hashes them.
    """
    out = {name: value for name, value in record.items() if name not in (PATIENT_ID, ENCOUNTER_ID)}
    out[PATIENT_KEY] = keyed_hash(key, PATIENT_NAMESPACE, str(record[PATIENT_ID]))
    encounter_id = record.get(ENCOUNTER_ID)
    out[ENCOUNTER_KEY] = (
        None if encounter_id is None else keyed_hash(key, ENCOUNTER_NAMESPACE, str(encounter_id))
    )
    if out.get(AGE_FIELD) is not None:
        out[AGE_FIELD] = min(out[AGE_FIELD], AGE_CAP_YEARS)
    return out


def to_endpoint_records(records: list[dict[str, Any]], key: str | bytes) -> list[dict[str, Any]]:
    """De-identify every record of a request, keeping the order."""
    return [to_endpoint_record(record, key) for record in records]
