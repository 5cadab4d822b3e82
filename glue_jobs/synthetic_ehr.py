"""Synthetic MIMIC-III-format EHR generator (local tool; never imported by the Glue job).

Writes the tables the ETL reads (same names and columns as the MIMIC-III demo) as Parquet
folders, plus a ``SYNTHETIC.json`` marker, so that ``--source mimic3`` reads them and labels the
rows ``source = synthetic``. Everything is vectorised numpy/pyarrow and reproducible by seed:

    python -m glue_jobs.synthetic_ehr --admissions 100000 --seed 7 --output /tmp/synth [--notes]
        [--layout mimic3|mimic4|fhir] [--icd10-from 2150-01-01]

The same seed writes the same patients and stays in each layout (MIMIC-IV ``hosp``/``note``
folders via ``synthetic_layouts``, FHIR R4 Bulk Data NDJSON via ``synthetic_fhir``).

Readmission signal: after each admission the chance of a non-elective return within 30 days
rises with age, Charlson burden, recent admissions, abnormal labs, length of stay, emergency
admission and discharge disposition, plus a hidden social risk that only the notes reveal.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glue_jobs import synthetic_fhir
from glue_jobs import synthetic_layouts as layouts
from glue_jobs import synthetic_tables as tables
from glue_jobs.synthetic_vocab import (
    ACUTE_DIAGNOSES,
    CHRONIC_CONDITIONS,
    DISCHARGE_LOCATIONS,
)

SECONDS_PER_DAY = 86_400
DAYS_PER_YEAR = 365.25
#: MIMIC-III shifts dates into 2100-2200; first admissions fall in this span.
FIRST_ADMISSION_START = 4_102_444_800  # 2100-01-01T00:00:00Z
FIRST_ADMISSION_SPAN_DAYS = 95 * 365
MAX_ADMISSIONS_PER_PATIENT = 24
NEWBORN_FRACTION = 0.06
OLDEST_FRACTION = 0.04
LOOK_BACK_DAYS = 365
READMISSION_WINDOW_DAYS = 30
SOCIAL_RISK_RATE = 0.2
CHUNK_ADMISSIONS = 200_000

EMERGENCY, URGENT, ELECTIVE, NEWBORN = 0, 1, 2, 3
ADMISSION_TYPE_NAMES = ("EMERGENCY", "URGENT", "ELECTIVE", "NEWBORN")
DEAD_INDEX = len(DISCHARGE_LOCATIONS)

_CONDITION_WEIGHTS = np.array([c[2] for c in CHRONIC_CONDITIONS], dtype=np.float64)
_CONDITION_LOGITS = np.array([c[3] for c in CHRONIC_CONDITIONS], dtype=np.float64)
_DISCHARGE = np.array([d[1:] for d in DISCHARGE_LOCATIONS], dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """Return an independent generator for one (seed, stream...) so chunks are reproducible."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


@dataclass
class Patients:
    """Patient-level draws (one element per patient)."""

    newborn: np.ndarray
    female: np.ndarray
    age0: np.ndarray
    frailty: np.ndarray
    conditions: np.ndarray
    first_admit: np.ndarray
    ethnicity: np.ndarray

    @property
    def charlson(self) -> np.ndarray:
        """Charlson-like burden of the chronic conditions (drives the risk)."""
        return np.asarray(self.conditions @ _CONDITION_WEIGHTS)

    def take(self, index: np.ndarray) -> Patients:
        """Return the patients at ``index``."""
        return Patients(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


def draw_patients(rng: np.random.Generator, n: int) -> Patients:
    """Draw ``n`` patients: newborns, adults (a few over 89), frailty and chronic conditions."""
    newborn = rng.random(n) < NEWBORN_FRACTION
    age0 = np.clip(rng.normal(64.0, 16.0, n), 18.0, 89.9)
    oldest = rng.random(n) < OLDEST_FRACTION
    age0 = np.where(oldest, rng.uniform(90.0, 99.0, n), age0)
    age0 = np.where(newborn, 0.0, age0)
    frailty = rng.normal(0.0, 1.0, n) + 0.02 * (age0 - 64.0)
    logits = _CONDITION_LOGITS[None, :] + 0.7 * frailty[:, None] + 0.035 * (age0[:, None] - 64.0)
    conditions = (rng.random((n, len(CHRONIC_CONDITIONS))) < _sigmoid(logits)) & ~newborn[:, None]
    first_admit = FIRST_ADMISSION_START + rng.integers(
        0, FIRST_ADMISSION_SPAN_DAYS * SECONDS_PER_DAY, n
    )
    return Patients(
        newborn=newborn,
        female=rng.random(n) < np.where(newborn, 0.49, 0.44),
        age0=age0,
        frailty=frailty,
        conditions=conditions,
        first_admit=first_admit,
        ethnicity=rng.choice(len(tables.ETHNICITY_NAMES), n, p=tables.ETHNICITY_P),
    )


def _admission_type(
    rng: np.random.Generator, after_short_gap: np.ndarray, newborn: np.ndarray
) -> np.ndarray:
    u = rng.random(after_short_gap.size)
    p_elective = np.where(after_short_gap, 0.08, 0.18)
    kind = np.where(u < p_elective, ELECTIVE, np.where(u < p_elective + 0.05, URGENT, EMERGENCY))
    return np.where(newborn, NEWBORN, kind).astype(np.int8)


def _discharge(rng: np.random.Generator, age: np.ndarray, frailty: np.ndarray) -> np.ndarray:
    decade = (age - 60.0) / 10.0
    logits = (
        _DISCHARGE[:, 0] + _DISCHARGE[:, 1] * decade[:, None] + _DISCHARGE[:, 2] * frailty[:, None]
    )
    return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1).astype(np.int16)


def _one_round(
    rng: np.random.Generator, pat: Patients, t: np.ndarray, recent: np.ndarray, short: np.ndarray
) -> dict[str, np.ndarray]:
    """Draw one admission for each active patient and what happens after it."""
    m = t.size
    newborn = pat.newborn
    age = pat.age0 + (t - pat.first_admit) / (DAYS_PER_YEAR * SECONDS_PER_DAY)
    kind = _admission_type(rng, short, newborn)
    severity = rng.normal(0.0, 1.0, m)
    los = np.exp(
        np.log(3.5)
        + 0.25 * pat.frailty
        + 0.3 * severity
        + 0.25 * (kind == EMERGENCY)
        - 0.2 * (kind == ELECTIVE)
        + rng.normal(0.0, 0.45, m)
    )
    los = np.where(newborn, rng.gamma(2.0, 1.3, m), los).clip(0.15, 150.0)
    n_labs = rng.poisson(np.where(newborn, 2.0, 4.0 + 2.2 * np.sqrt(los)))
    n_abnormal = rng.binomial(n_labs, _sigmoid(-1.2 + 0.45 * pat.frailty + 0.7 * severity))
    discharge = _discharge(rng, np.maximum(age, 18.0), pat.frailty)
    decade = (np.minimum(age, 90.0) - 60.0) / 10.0
    charlson = pat.charlson
    death = rng.random(m) < np.where(
        newborn,
        0.002,
        _sigmoid(-4.3 + 0.5 * pat.frailty + 0.7 * severity + 0.35 * decade + 0.15 * charlson),
    )
    social = rng.random(m) < SOCIAL_RISK_RATE
    risk = (
        -4.5
        + 0.2 * decade
        + 0.3 * charlson
        + 0.55 * np.log1p(recent)
        + 0.12 * n_abnormal
        + 0.3 * np.log(los)
        + 0.35 * (kind == EMERGENCY)
        + _DISCHARGE[discharge, 3]
        + 0.9 * social
    )
    risk = np.where(newborn, -4.0, risk)
    readmit = (rng.random(m) < _sigmoid(risk)) & ~death
    returns = ~readmit & ~death & ~newborn & (rng.random(m) < _sigmoid(-1.2 + 0.45 * pat.frailty))
    gap_days = np.where(
        readmit,
        rng.uniform(0.3, READMISSION_WINDOW_DAYS - 0.1, m),
        READMISSION_WINDOW_DAYS + 0.5 + rng.exponential(280.0, m),
    )
    admit = (t // 60) * 60
    disch = admit + np.maximum(60, (los * SECONDS_PER_DAY // 60) * 60).astype(np.int64)
    principal = rng.choice(len(ACUTE_DIAGNOSES), m, p=tables.ACUTE_P)
    return {
        "admit": admit.astype(np.int64),
        "disch": disch,
        "kind": kind,
        "severity": severity,
        "n_labs": n_labs,
        "n_abnormal": n_abnormal,
        "discharge": np.where(death, DEAD_INDEX, discharge).astype(np.int16),
        "death": death,
        "social": social,
        "principal": principal,
        "next_admit": disch + (gap_days * SECONDS_PER_DAY).astype(np.int64),
        "continues": readmit | returns,
        "short_gap": readmit,
    }


def simulate(rng: np.random.Generator, pat: Patients) -> dict[str, np.ndarray]:
    """Simulate every patient's admissions round by round (one vector step per round).

    Returns per-admission arrays sorted by patient then time, with ``patient`` indices.
    """
    n = pat.newborn.size
    active = np.arange(n)
    t = pat.first_admit.astype(np.int64).copy()
    short = np.zeros(n, dtype=bool)
    history = np.full((n, MAX_ADMISSIONS_PER_PATIENT), np.iinfo(np.int64).min // 2)
    rounds: list[dict[str, np.ndarray]] = []
    for k in range(MAX_ADMISSIONS_PER_PATIENT):
        if active.size == 0:
            break
        recent = (history[active] > (t[active] - LOOK_BACK_DAYS * SECONDS_PER_DAY)[:, None]).sum(1)
        drawn = _one_round(rng, pat.take(active), t[active], recent, short[active])
        drawn["patient"] = active
        history[active, k] = drawn["admit"]
        short[active] = drawn["short_gap"]
        t[active] = drawn["next_admit"]
        rounds.append(drawn)
        active = active[drawn["continues"]]
    merged = {key: np.concatenate([r[key] for r in rounds]) for key in rounds[0]}
    order = np.lexsort((merged["admit"], merged["patient"]))
    return {key: value[order] for key, value in merged.items()}


def simulate_exactly(seed: int, admissions: int) -> tuple[Patients, dict[str, np.ndarray]]:
    """Simulate patients in batches until there are ``admissions``, then keep exactly that many."""
    batches: list[tuple[Patients, dict[str, np.ndarray]]] = []
    total, offset, batch = 0, 0, 0
    while total < admissions:
        n = max(16, int((admissions - total) / 1.4) + 16)
        pat = draw_patients(rng_for(seed, 1, batch), n)
        adm = simulate(rng_for(seed, 2, batch), pat)
        adm["patient"] = adm["patient"] + offset
        batches.append((pat, adm))
        total += adm["patient"].size
        offset += n
        batch += 1
    patients = Patients(
        **{
            name: np.concatenate([getattr(p, name) for p, _ in batches])
            for name in Patients.__dataclass_fields__
        }
    )
    adm = {key: np.concatenate([a[key] for _, a in batches])[:admissions] for key in batches[0][1]}
    used = int(adm["patient"].max()) + 1 if admissions else 0
    return patients.take(np.arange(used)), adm


def _write(table: pa.Table, folder: Path, part: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"part-{part:05d}.parquet", compression="snappy")


LAYOUTS = ("mimic3", "mimic4", "fhir")
#: Default first day coded in ICD-10 (the generator's dates are shifted into 2100-2195, as
#: MIMIC's are): about half the stays fall on each side.
DEFAULT_ICD10_FROM = "2150-01-01"
MIMIC4_TABLES = {
    "PATIENTS": "hosp/patients",
    "ADMISSIONS": "hosp/admissions",
    "D_LABITEMS": "hosp/d_labitems",
    "DIAGNOSES_ICD": "hosp/diagnoses_icd",
    "PROCEDURES_ICD": "hosp/procedures_icd",
    "PRESCRIPTIONS": "hosp/prescriptions",
    "LABEVENTS": "hosp/labevents",
    "SERVICES": "hosp/services",
    "NOTEEVENTS": "note/discharge",
}


#: Written with the admissions (the ETL does not read it: ED arrivals come from edregtime).
TRANSFERS = "hosp/transfers"


def _epoch_seconds(day: str) -> int:
    return int(np.datetime64(day, "s").astype(np.int64))


def _mimic3_chunk(seed: int, part: int, chunk: tables.Chunk, notes: bool) -> dict[str, pa.Table]:
    """The MIMIC-III child tables of one chunk (every layout is built from these)."""
    return {
        "DIAGNOSES_ICD": tables.diagnoses_table(rng_for(seed, 5, part), chunk),
        "PROCEDURES_ICD": tables.procedures_table(rng_for(seed, 6, part), chunk),
        "PRESCRIPTIONS": tables.prescriptions_table(rng_for(seed, 7, part), chunk),
        "LABEVENTS": tables.labevents_table(rng_for(seed, 8, part), chunk),
        "SERVICES": tables.services_table(rng_for(seed, 9, part), chunk),
        "ICUSTAYS": tables.icustays_table(rng_for(seed, 10, part), chunk),
        "NOTEEVENTS": (
            tables.notes_table(rng_for(seed, 11, part), chunk)
            if notes
            else tables.empty_notes_table()
        ),
    }


class _Writer:
    """Writes the MIMIC-III tables of each chunk in one layout and counts rows per table."""

    def __init__(self, out: Path, layout: str, era: layouts.Era, newborn_hadm: np.ndarray):
        self.out, self.layout, self.era, self.newborn_hadm = out, layout, era, newborn_hadm
        self.counts: dict[str, int] = {}

    def _count(self, name: str, rows: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + rows

    def mimic(self, name: str, table: pa.Table, part: int = 0) -> None:
        """MIMIC-III as it is; MIMIC-IV re-shaped under hosp/ and note/."""
        if self.layout == "mimic3":
            _write(table, self.out / name, part)
            self._count(name, table.num_rows)
            return
        if name not in MIMIC4_TABLES:
            return
        converted = self._mimic4(name, table)
        _write(converted, self.out / MIMIC4_TABLES[name], part)
        self._count(MIMIC4_TABLES[name], converted.num_rows)
        if name == "ADMISSIONS":
            moves = layouts.transfers(converted)
            _write(moves, self.out / TRANSFERS, part)
            self._count(TRANSFERS, moves.num_rows)

    def _mimic4(self, name: str, table: pa.Table) -> pa.Table:
        if "hadm_id" in table.column_names and name != "PATIENTS":
            table = layouts.adult_rows(table, self.newborn_hadm)
        builders = {
            "ADMISSIONS": layouts.admissions,
            "D_LABITEMS": layouts.labitems,
            "DIAGNOSES_ICD": lambda t: layouts.icd_table(t, self.era, procedures=False),
            "PROCEDURES_ICD": lambda t: layouts.icd_table(t, self.era, procedures=True),
            "PRESCRIPTIONS": layouts.prescriptions,
            "LABEVENTS": layouts.labevents,
            "SERVICES": layouts.services,
            "NOTEEVENTS": layouts.discharge_notes,
        }
        return builders[name](table)

    def fhir(self, resource_type: str, lines: pa.Array, part: int) -> None:
        """One NDJSON file of the type."""
        self._count(resource_type, synthetic_fhir.write_lines(self.out, resource_type, part, lines))


def _write_fhir_chunk(
    writer: _Writer, part: int, admissions: pa.Table, child: dict[str, pa.Table]
) -> None:
    era = writer.era
    writer.fhir(
        "Encounter",
        synthetic_fhir.encounters(admissions, child["DIAGNOSES_ICD"], child["SERVICES"]),
        part,
    )
    writer.fhir("Condition", synthetic_fhir.conditions(child["DIAGNOSES_ICD"], era), part)
    writer.fhir("Procedure", synthetic_fhir.procedures(child["PROCEDURES_ICD"], era), part)
    writer.fhir(
        "MedicationRequest",
        synthetic_fhir.medication_requests(child["PRESCRIPTIONS"]),
        part,
    )
    writer.fhir("Observation", synthetic_fhir.observations(child["LABEVENTS"]), part)
    if child["NOTEEVENTS"].num_rows:
        writer.fhir(
            "DocumentReference", synthetic_fhir.document_references(child["NOTEEVENTS"]), part
        )


def generate(
    admissions: int,
    seed: int,
    output: str,
    notes: bool = False,
    layout: str = "mimic3",
    icd10_from: str = DEFAULT_ICD10_FROM,
) -> dict[str, int]:
    """Write ``admissions`` synthetic admissions and their child tables in ``layout``
    (``mimic3``: all ICD-9; ``mimic4``, ``fhir``: ICD-10 for stays admitted from
    ``icd10_from`` on); return row counts. The same seed gives the same patients in every
    layout."""
    if admissions < 1:
        raise ValueError("admissions: must be at least 1")
    if layout not in LAYOUTS:
        raise ValueError(f"layout: must be one of {', '.join(LAYOUTS)}")
    out = Path(output)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    patients, adm = simulate_exactly(seed, admissions)
    ids = tables.Identifiers.draw(rng_for(seed, 3), patients.newborn.size, admissions)
    era = layouts.Era.of(_epoch_seconds(icd10_from), ids.hadm_id, adm["admit"])
    newborn_hadm = ids.hadm_id[adm["kind"] == NEWBORN]
    writer = _Writer(out, layout, era, newborn_hadm)
    patient_table = tables.patients_table(patients, adm, ids)
    admission_table = tables.admissions_table(rng_for(seed, 4), patients, adm, ids)
    if layout == "mimic4":
        adult = ~patients.newborn
        first_admit = (patients.first_admit // 60) * 60
        writer.counts["hosp/patients"] = adult.sum()
        _write(
            layouts.patients(patient_table, first_admit, patients.age0 >= 90.0).filter(
                pa.array(adult)
            ),
            out / "hosp/patients",
            0,
        )
    elif layout == "fhir":
        ethnicity = [tables.ETHNICITY_NAMES[i] for i in patients.ethnicity]
        writer.fhir("Patient", synthetic_fhir.patients(patient_table, ethnicity), 0)
    else:
        writer.mimic("PATIENTS", patient_table)
    if layout != "fhir":
        writer.mimic("ADMISSIONS", admission_table)
        writer.mimic("D_LABITEMS", tables.labitems_table())
    for part, start in enumerate(range(0, admissions, CHUNK_ADMISSIONS)):
        stop = min(admissions, start + CHUNK_ADMISSIONS)
        chunk = tables.Chunk.slice(patients, adm, ids, start, stop)
        child = _mimic3_chunk(seed, part, chunk, notes)
        if layout == "fhir":
            _write_fhir_chunk(writer, part, admission_table.slice(start, stop - start), child)
            continue
        for name, table in child.items():
            writer.mimic(name, table, part)
    counts = {name: int(rows) for name, rows in sorted(writer.counts.items())}
    marker: dict[str, Any] = {
        "generator": "glue_jobs.synthetic_ehr",
        "seed": seed,
        "admissions": admissions,
        "notes": notes,
        "layout": layout,
        "rows": counts,
    }
    if layout != "mimic3":
        marker["icd10_from"] = icd10_from
    (out / "SYNTHETIC.json").write_text(json.dumps(marker, indent=2, sort_keys=True))
    return counts


def main(argv: Sequence[str] | None = None) -> dict[str, int]:
    """Command line: ``--admissions N --seed S --output PATH [--notes]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admissions", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    parser.add_argument("--notes", action="store_true", help="also write discharge summaries")
    parser.add_argument("--layout", choices=LAYOUTS, default="mimic3")
    parser.add_argument(
        "--icd10-from",
        default=DEFAULT_ICD10_FROM,
        help="first admission day coded in ICD-10 (mimic4 and fhir layouts)",
    )
    args = parser.parse_args(argv)
    counts = generate(
        args.admissions, args.seed, args.output, args.notes, args.layout, args.icd10_from
    )
    print(json.dumps(counts, indent=2))
    return counts


if __name__ == "__main__":
    main()
