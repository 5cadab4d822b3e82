"""Small contract-conforming synthetic encounters with a known, learnable readmission signal.

Used by the tests (and anyone who needs an ETL-shaped dataset without the ETL): it writes the
same layout as the ETL, ``features/split=<split>/``, ``protected/split=<split>/`` and
``manifest.json``, with the patient-level split of ``contracts.deidentify``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from contracts.deidentify import (
    DEMO_DEIDENTIFICATION_KEY,
    ENCOUNTER_NAMESPACE,
    PATIENT_NAMESPACE,
    SPLITS,
    keyed_hash,
    split_for_patient_key,
)
from contracts.encounter import (
    ADMISSION_SOURCE_CATEGORIES,
    ADMISSION_TYPE_CATEGORIES,
    DISCHARGE_DISPOSITION_CATEGORIES,
    ENCOUNTER_FIELDS,
    ENCOUNTER_KEY,
    GLUCOSE_CATEGORIES,
    HBA1C_CATEGORIES,
    PATIENT_KEY,
    RACE_CATEGORIES,
)
from contracts.etl_manifest import MANIFEST_FILE

DIAGNOSES = (
    "4280", "42731", "25000", "5849", "486", "41401", "5990", "2724", "4019", "V5861",
    "E8889", "5859", "49121", "27651", "2851", "4168", "7802", "78650", "3051", "311",
)  # fmt: skip
PROCEDURES = ("3995", "9904", "8856", "3722", "4513", "9671", "3893", "8872")
MEDICATIONS = (
    "insulin", "metformin", "furosemide", "metoprolol", "lisinopril", "warfarin",
    "aspirin", "heparin", "glipizide", "atorvastatin",
)  # fmt: skip
LABS = ("glucose", "creatinine", "potassium", "sodium", "hemoglobin", "wbc", "bnp")
SERVICES = ("medicine", "cardiology", "surgery", "nephrology", "orthopedics")
NOTE_WORDS = (
    "patient", "admitted", "with", "shortness", "of", "breath", "treated", "and", "discharged",
    "in", "stable", "condition", "follow", "up", "with", "primary", "care", "physician", "in",
    "one", "week", "continue", "current", "medications",
)  # fmt: skip

#: Risk log-odds above which a synthetic patient counts as readmitted later if not within 30 days.
LATER_READMISSION_LOGIT = -1.5
_DTYPES = {"int": "int32", "double": "float64", "string": "string", "array<string>": "list"}


def _pick(rng: np.random.Generator, pool: tuple[str, ...], k: int) -> list[str]:
    return [str(x) for x in rng.choice(pool, size=min(k, len(pool)), replace=False)]


def synthetic_encounter(
    rng: np.random.Generator, patient: int, encounter: int, with_notes: bool
) -> tuple[dict[str, Any], str]:
    """Return one encounter record (every contract field) and the patient's race."""
    age = int(min(90, max(18, rng.normal(66, 15))))
    prior = int(rng.poisson(0.7))
    ed = int(rng.poisson(0.4))
    charlson = int(min(40, rng.poisson(2.0)))
    diagnoses = _pick(rng, DIAGNOSES, int(rng.integers(1, 8)))
    medications = _pick(rng, MEDICATIONS, int(rng.integers(0, 7)))
    disposition = str(rng.choice(DISCHARGE_DISPOSITION_CATEGORIES[:8]))
    lives_alone = bool(rng.random() < 0.3)
    logit = (
        -3.2
        + 0.8 * prior
        + 0.4 * ed
        + 0.12 * charlson
        + 0.03 * (age - 65)
        + (1.5 if "4280" in diagnoses else 0.0)
        + (1.2 if "5859" in diagnoses else 0.0)
        + (1.0 if disposition in ("skilled_nursing", "home_health") else 0.0)
        + (0.8 if "insulin" in medications else 0.0)
        + (1.2 if with_notes and lives_alone else 0.0)
    )
    readmitted = int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
    # A later readmission for the riskier patients too (no extra draw: earlier seeds keep
    # their records).
    readmitted_any = int(readmitted or logit > LATER_READMISSION_LOGIT)
    length_of_stay = float(round(rng.gamma(2.0, 2.5), 2))
    note = None
    if with_notes:
        words = list(rng.choice(NOTE_WORDS, size=30))
        if lives_alone:
            words[int(rng.integers(0, 30)) : 0] = ["lives", "alone"]
        note = " ".join(words)
    record: dict[str, Any] = {
        PATIENT_KEY: keyed_hash(DEMO_DEIDENTIFICATION_KEY, PATIENT_NAMESPACE, str(patient)),
        ENCOUNTER_KEY: keyed_hash(DEMO_DEIDENTIFICATION_KEY, ENCOUNTER_NAMESPACE, str(encounter)),
        "age_years": age,
        "sex": str(rng.choice(("F", "M"))),
        "admission_type": str(rng.choice(ADMISSION_TYPE_CATEGORIES[:3])),
        "admission_source": str(rng.choice(ADMISSION_SOURCE_CATEGORIES[:4])),
        "discharge_disposition": disposition,
        "admitting_service": None if rng.random() < 0.1 else str(rng.choice(SERVICES)),
        "length_of_stay_days": length_of_stay,
        "prior_admissions_12m": prior,
        "prior_ed_visits_12m": ed,
        "prior_outpatient_visits_12m": None if rng.random() < 0.2 else int(rng.poisson(2)),
        "days_since_last_discharge": float(rng.integers(5, 365)) if prior else None,
        "num_diagnoses": len(diagnoses),
        "num_procedures": int(rng.integers(0, 4)),
        "num_medications": len(medications),
        "num_lab_tests": int(rng.integers(5, 80)),
        "num_abnormal_labs": int(rng.integers(0, 10)),
        "hba1c_result": str(rng.choice(HBA1C_CATEGORIES)),
        "max_glucose_result": str(rng.choice(GLUCOSE_CATEGORIES)),
        "charlson_index": charlson,
        "diagnosis_codes": diagnoses,
        "procedure_codes": _pick(rng, PROCEDURES, int(rng.integers(0, 3))),
        "medications": medications,
        "abnormal_labs": _pick(rng, LABS, int(rng.integers(0, 4))),
        "note_text": note,
        "readmitted_30d": readmitted,
        "readmitted_any": readmitted_any,
        "source": "synthetic",
    }
    record["split"] = split_for_patient_key(record[PATIENT_KEY])
    race = str(rng.choice(RACE_CATEGORIES))
    return record, race


def synthetic_records(
    n: int, seed: int = 0, with_notes: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """``n`` encounters of ``n`` distinct patients, and each one's race."""
    rng = np.random.default_rng(seed)
    records, races = [], []
    for i in range(n):
        record, race = synthetic_encounter(
            rng, patient=seed * 1_000_000 + i, encounter=i, with_notes=with_notes
        )
        records.append(record)
        races.append(race)
    return records, races


def _arrow_schema() -> Any:
    import pyarrow as pa

    types = {
        "int32": pa.int32(),
        "float64": pa.float64(),
        "string": pa.string(),
        "list": pa.list_(pa.string()),
    }
    return pa.schema(
        [
            pa.field(spec.name, types[_DTYPES[spec.dtype]])
            for spec in ENCOUNTER_FIELDS
            if spec.name != "split"
        ]
    )


def write_synthetic_dataset(
    root: str | Path, n: int, seed: int = 0, with_notes: bool = False
) -> Path:
    """Write an ETL-shaped dataset under ``root``; return its ``features`` folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    records, races = synthetic_records(n, seed, with_notes)
    schema = _arrow_schema()
    counts = {}
    for split in SPLITS:
        rows = [r for r in records if r["split"] == split]
        keys = [r[ENCOUNTER_KEY] for r in rows]
        race = [races[i] for i, r in enumerate(records) if r["split"] == split]
        features = root / "features" / f"split={split}"
        protected = root / "protected" / f"split={split}"
        features.mkdir(parents=True, exist_ok=True)
        protected.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(
            [{k: v for k, v in r.items() if k != "split"} for r in rows], schema
        )
        pq.write_table(table, features / "part-00000.parquet")
        pq.write_table(
            pa.table({ENCOUNTER_KEY: keys, "race": race}), protected / "part-00000.parquet"
        )
        counts[split] = len(rows)
    manifest = {"source": "synthetic", "seed": seed, "rows": counts, "with_notes": with_notes}
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    return root / "features"
