"""Table builders of the synthetic generator: numpy arrays -> MIMIC-III-shaped Arrow tables.

Every builder is vectorised: child rows come from ``np.repeat`` over per-admission counts,
ranks within an admission from one sort, texts from ``take`` on phrase arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from glue_jobs.synthetic_vocab import (
    ACUTE_DIAGNOSES,
    ADMISSION_LOCATIONS,
    CARE_UNITS,
    CHRONIC_CONDITIONS,
    CONDITION_DRUGS,
    DEAD,
    DISCHARGE_LOCATIONS,
    EMERGENCY_ROOM,
    ETHNICITIES,
    GENERAL_DRUGS,
    HBA1C_ITEM_ID,
    INSURANCES,
    LAB_ITEMS,
    MARITAL_STATUSES,
    NEWBORN_DIAGNOSES,
    NEWBORN_DRUGS,
    NEWBORN_PROCEDURES,
    NEWBORN_SERVICE,
    NOTE_CLINICAL_HIGH,
    NOTE_CLINICAL_LOW,
    NOTE_FOLLOW_UP,
    NOTE_OPENINGS,
    NOTE_SOCIAL_NEUTRAL,
    NOTE_SOCIAL_RISK,
    PROCEDURES,
    SERVICES,
    synthetic_ndc,
)

if TYPE_CHECKING:
    from glue_jobs.synthetic_ehr import Patients

SECONDS_PER_DAY = 86_400
SECONDS_PER_YEAR = int(365.25 * SECONDS_PER_DAY)
MIMIC_AGE_SHIFT_YEARS = 300
OUTPATIENT_LAB_RATE = 0.05
ICU_RATE = 0.35
SECOND_SERVICE_RATE = 0.08
CONDITION_CODED_RATE = 0.85
HBA1C_MEASURED_RATE = 0.5
NEWBORN_TYPE = 3
ADMISSION_TYPE_NAMES = ("EMERGENCY", "URGENT", "ELECTIVE", "NEWBORN")
_DIABETES = [i for i, c in enumerate(CHRONIC_CONDITIONS) if c[0].startswith("diabetes")]
_DIABETES_COMPLICATED = [
    i for i, c in enumerate(CHRONIC_CONDITIONS) if c[0] == "diabetes_complicated"
]


def _probabilities(weights: list[float] | tuple[float, ...]) -> np.ndarray:
    array = np.asarray(weights, dtype=np.float64)
    return np.asarray(array / array.sum())


ETHNICITY_NAMES = tuple(name for name, _ in ETHNICITIES)
ETHNICITY_P = _probabilities([w for _, w in ETHNICITIES])
ACUTE_P = _probabilities([w for _, w, _ in ACUTE_DIAGNOSES])
_PROCEDURE_P = _probabilities([w for _, w in PROCEDURES])
_NEWBORN_PROCEDURE_P = _probabilities([w for _, w in NEWBORN_PROCEDURES])
_GENERAL_DRUG_P = _probabilities([w for _, w, _ in GENERAL_DRUGS])
_LAB_P = _probabilities([item[8] for item in LAB_ITEMS])
_SERVICE_P = _probabilities([w for _, w in SERVICES])
_CARE_UNIT_P = _probabilities([w for _, w in CARE_UNITS])

#: One drug vocabulary: general drugs, then the condition drugs, then newborn drugs.
DRUG_NAMES = (
    tuple(d[0] for d in GENERAL_DRUGS)
    + tuple(CONDITION_DRUGS[c[0]][0] for c in CHRONIC_CONDITIONS)
    + tuple(d[0] for d in NEWBORN_DRUGS)
)
DRUG_ROUTES = (
    tuple(d[2] for d in GENERAL_DRUGS)
    + tuple(CONDITION_DRUGS[c[0]][1] for c in CHRONIC_CONDITIONS)
    + tuple(d[2] for d in NEWBORN_DRUGS)
)
#: Each drug's (synthetic, never real) NDC, as the MIMIC-IV and FHIR layouts write it too.
_NDC_BY_NAME = {name: synthetic_ndc(index) for index, name in enumerate(dict.fromkeys(DRUG_NAMES))}
DRUG_NDCS = tuple(_NDC_BY_NAME[name] for name in DRUG_NAMES)
_CONDITION_DRUG_OFFSET = len(GENERAL_DRUGS)
_NEWBORN_DRUG_OFFSET = _CONDITION_DRUG_OFFSET + len(CHRONIC_CONDITIONS)

#: One diagnosis vocabulary: acute codes, then chronic codes, then newborn codes.
DIAGNOSIS_CODES = (
    tuple(d[0] for d in ACUTE_DIAGNOSES)
    + tuple(c[1] for c in CHRONIC_CONDITIONS)
    + NEWBORN_DIAGNOSES
)
_CHRONIC_OFFSET = len(ACUTE_DIAGNOSES)
_NEWBORN_DIAGNOSIS_OFFSET = _CHRONIC_OFFSET + len(CHRONIC_CONDITIONS)


def _timestamps(seconds: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Epoch seconds -> UTC timestamps (null where ``mask``)."""
    return pa.array(seconds.astype(np.int64) * 1_000_000, type=pa.int64(), mask=mask).cast(
        pa.timestamp("us", tz="UTC")
    )


def _days(seconds: np.ndarray) -> np.ndarray:
    """Floor to midnight, as MIMIC's date-only columns are."""
    return (seconds // SECONDS_PER_DAY) * SECONDS_PER_DAY


def _text(vocab: tuple[str, ...], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    taken = pa.array(vocab, type=pa.string()).take(pa.array(index.astype(np.int64)))
    if mask is None:
        return taken
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), taken)


def _null(kind: pa.DataType, n: int) -> pa.Array:
    return pa.nulls(n, type=kind)


def rank_within(groups: np.ndarray) -> np.ndarray:
    """0-based position of each row within its run of equal, already sorted group ids."""
    n = groups.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


@dataclass
class Identifiers:
    """Identifiers: subject ids by patient, hadm ids by admission (a seeded permutation)."""

    subject_id: np.ndarray
    hadm_id: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, patients: int, admissions: int) -> Identifiers:
        """Return MIMIC-looking ids: subjects from 1,000,001, admissions from 2,000,000."""
        return cls(
            subject_id=np.arange(patients, dtype=np.int64) + 1_000_001,
            hadm_id=rng.permutation(admissions).astype(np.int64) + 2_000_000,
        )


@dataclass
class Chunk:
    """A contiguous range of admissions with the patient attributes the child tables need."""

    start: int
    hadm_id: np.ndarray
    subject_id: np.ndarray
    admit: np.ndarray
    disch: np.ndarray
    kind: np.ndarray
    severity: np.ndarray
    n_labs: np.ndarray
    n_abnormal: np.ndarray
    discharge: np.ndarray
    social: np.ndarray
    principal: np.ndarray
    conditions: np.ndarray
    frailty: np.ndarray

    @classmethod
    def slice(
        cls, pat: Patients, adm: dict[str, np.ndarray], ids: Identifiers, start: int, stop: int
    ) -> Chunk:
        """Return admissions ``start:stop``."""
        patient = adm["patient"][start:stop]
        return cls(
            start=start,
            hadm_id=ids.hadm_id[start:stop],
            subject_id=ids.subject_id[patient],
            admit=adm["admit"][start:stop],
            disch=adm["disch"][start:stop],
            kind=adm["kind"][start:stop],
            severity=adm["severity"][start:stop],
            n_labs=adm["n_labs"][start:stop],
            n_abnormal=adm["n_abnormal"][start:stop],
            discharge=adm["discharge"][start:stop],
            social=adm["social"][start:stop],
            principal=adm["principal"][start:stop],
            conditions=pat.conditions[patient],
            frailty=pat.frailty[patient],
        )

    @property
    def size(self) -> int:
        """Number of admissions in the chunk."""
        return int(self.hadm_id.size)

    @property
    def newborn(self) -> np.ndarray:
        """Newborn admissions."""
        return np.asarray(self.kind == NEWBORN_TYPE)


def _row_ids(n: int, start: int) -> pa.Array:
    return pa.array(np.arange(start, start + n, dtype=np.int64))


def patients_table(pat: Patients, adm: dict[str, np.ndarray], ids: Identifiers) -> pa.Table:
    """PATIENTS: sex, dob (300 years back for ages over 89, as MIMIC does), death dates."""
    n = pat.newborn.size
    age_seconds = (pat.age0 * SECONDS_PER_YEAR).astype(np.int64)
    oldest = pat.age0 >= 90.0
    dob = _days(
        pat.first_admit - np.where(oldest, MIMIC_AGE_SHIFT_YEARS * SECONDS_PER_YEAR, age_seconds)
    )
    died = np.zeros(n, dtype=bool)
    death_day = np.zeros(n, dtype=np.int64)
    died_rows = adm["death"]
    died[adm["patient"][died_rows]] = True
    death_day[adm["patient"][died_rows]] = _days(adm["disch"][died_rows])
    return pa.table(
        {
            "row_id": _row_ids(n, 1),
            "subject_id": pa.array(ids.subject_id),
            "gender": _text(("M", "F"), pat.female.astype(np.int64)),
            "dob": _timestamps(dob),
            "dod": _timestamps(death_day, ~died),
            "dod_hosp": _timestamps(death_day, ~died),
            "dod_ssn": _timestamps(death_day, ~died),
            "expire_flag": pa.array(died.astype(np.int64)),
        }
    )


def _by_type(
    rng: np.random.Generator, kind: np.ndarray, options: dict[str, tuple[tuple[str, float], ...]]
) -> pa.Array:
    vocab = tuple(dict.fromkeys(name for group in options.values() for name, _ in group))
    chosen = np.zeros(kind.size, dtype=np.int64)
    for type_index, type_name in enumerate(ADMISSION_TYPE_NAMES[:NEWBORN_TYPE]):
        rows = np.flatnonzero(kind == type_index)
        names = [name for name, _ in options[type_name]]
        picks = rng.choice(
            len(names), rows.size, p=_probabilities([w for _, w in options[type_name]])
        )
        chosen[rows] = np.array([vocab.index(name) for name in names])[picks]
    chosen[kind == NEWBORN_TYPE] = vocab.index("PHYS REFERRAL/NORMAL DELI")
    return _text(vocab, chosen)


def admissions_table(
    rng: np.random.Generator, pat: Patients, adm: dict[str, np.ndarray], ids: Identifiers
) -> pa.Table:
    """ADMISSIONS with every MIMIC-III column."""
    n = adm["admit"].size
    patient = adm["patient"]
    kind = adm["kind"]
    location = _by_type(rng, kind, ADMISSION_LOCATIONS)
    from_er = np.asarray(pc.equal(location, EMERGENCY_ROOM).to_numpy(zero_copy_only=False))
    ed_start = adm["admit"] - rng.integers(3_600, 8 * 3_600, n) // 60 * 60
    discharge_names = (*[d[0] for d in DISCHARGE_LOCATIONS], DEAD)
    newborn = kind == NEWBORN_TYPE
    death = adm["death"]
    insurance = rng.choice(len(INSURANCES), n, p=_probabilities([w for _, w in INSURANCES]))
    marital = rng.choice(
        len(MARITAL_STATUSES), n, p=_probabilities([w for _, w in MARITAL_STATUSES])
    )
    return pa.table(
        {
            "row_id": _row_ids(n, 1),
            "subject_id": pa.array(ids.subject_id[patient]),
            "hadm_id": pa.array(ids.hadm_id),
            "admittime": _timestamps(adm["admit"]),
            "dischtime": _timestamps(adm["disch"]),
            "deathtime": _timestamps(adm["disch"], ~death),
            "admission_type": _text(ADMISSION_TYPE_NAMES, kind),
            "admission_location": location,
            "discharge_location": _text(discharge_names, adm["discharge"]),
            "insurance": _text(tuple(i for i, _ in INSURANCES), insurance),
            "language": _null(pa.string(), n),
            "religion": _null(pa.string(), n),
            "marital_status": _text(tuple(m for m, _ in MARITAL_STATUSES), marital, newborn),
            "ethnicity": _text(ETHNICITY_NAMES, pat.ethnicity[patient]),
            "edregtime": _timestamps(ed_start, ~from_er),
            "edouttime": _timestamps(adm["admit"], ~from_er),
            "diagnosis": _text(tuple(d[2] for d in ACUTE_DIAGNOSES), adm["principal"], newborn),
            "hospital_expire_flag": pa.array(death.astype(np.int64)),
            "has_chartevents_data": pa.array(np.ones(n, dtype=np.int64)),
        }
    )


def labitems_table() -> pa.Table:
    """D_LABITEMS for the generated lab items (labels as in MIMIC-III)."""
    return pa.table(
        {
            "row_id": pa.array(np.arange(1, len(LAB_ITEMS) + 1, dtype=np.int64)),
            "itemid": pa.array([item[0] for item in LAB_ITEMS], type=pa.int64()),
            "label": pa.array([item[1] for item in LAB_ITEMS]),
            "fluid": pa.array([item[2] for item in LAB_ITEMS]),
            "category": pa.array([item[3] for item in LAB_ITEMS]),
            "loinc_code": pa.array([item[4] for item in LAB_ITEMS]),
        }
    )


def _sorted_child(
    admission: np.ndarray, order: np.ndarray, *columns: np.ndarray
) -> tuple[np.ndarray, ...]:
    index = np.lexsort((order, admission))
    return (admission[index], *[c[index] for c in columns])


def diagnoses_table(rng: np.random.Generator, chunk: Chunk) -> pa.Table:
    """DIAGNOSES_ICD: principal acute code, chronic codes (mostly coded), secondary codes."""
    n = chunk.size
    adult = ~chunk.newborn
    secondary = np.where(adult, rng.poisson(2.0 + 0.8 * np.clip(chunk.severity, 0, None)), 0)
    sec_adm = np.repeat(np.arange(n), secondary)
    sec_code = rng.choice(len(ACUTE_DIAGNOSES), sec_adm.size, p=ACUTE_P)
    coded = chunk.conditions & (rng.random(chunk.conditions.shape) < CONDITION_CODED_RATE)
    chronic_adm, chronic_idx = np.nonzero(coded)
    newborn_count = np.where(chunk.newborn, rng.integers(2, 5, n), 0)
    nb_adm = np.repeat(np.arange(n), newborn_count)
    nb_code = _NEWBORN_DIAGNOSIS_OFFSET + rng.integers(0, len(NEWBORN_DIAGNOSES), nb_adm.size)
    principal_adm = np.flatnonzero(adult)
    admission = np.concatenate([principal_adm, chronic_adm, sec_adm, nb_adm])
    code = np.concatenate(
        [chunk.principal[principal_adm], _CHRONIC_OFFSET + chronic_idx, sec_code, nb_code]
    )
    order = np.concatenate(
        [np.zeros(principal_adm.size), 1.0 + rng.random(admission.size - principal_adm.size)]
    )
    admission, code = _sorted_child(admission, order, code)
    return pa.table(
        {
            "row_id": _row_ids(admission.size, 1 + 20 * chunk.start),
            "subject_id": pa.array(chunk.subject_id[admission]),
            "hadm_id": pa.array(chunk.hadm_id[admission]),
            "seq_num": pa.array(rank_within(admission) + 1),
            "icd9_code": _text(DIAGNOSIS_CODES, code),
        }
    )


def procedures_table(rng: np.random.Generator, chunk: Chunk) -> pa.Table:
    """PROCEDURES_ICD: more procedures for elective and severe admissions."""
    n = chunk.size
    rate = 0.9 + 0.8 * (chunk.kind == 2) + 0.3 * np.clip(chunk.severity, 0, None)
    count = rng.poisson(np.where(chunk.newborn, 0.8, rate))
    admission = np.repeat(np.arange(n), count)
    newborn_row = chunk.newborn[admission]
    vocab = tuple(p[0] for p in PROCEDURES) + tuple(p[0] for p in NEWBORN_PROCEDURES)
    code = np.where(
        newborn_row,
        len(PROCEDURES)
        + rng.choice(len(NEWBORN_PROCEDURES), admission.size, p=_NEWBORN_PROCEDURE_P),
        rng.choice(len(PROCEDURES), admission.size, p=_PROCEDURE_P),
    )
    return pa.table(
        {
            "row_id": _row_ids(admission.size, 1 + 10 * chunk.start),
            "subject_id": pa.array(chunk.subject_id[admission]),
            "hadm_id": pa.array(chunk.hadm_id[admission]),
            "seq_num": pa.array(rank_within(admission) + 1),
            "icd9_code": _text(vocab, code),
        }
    )


def prescriptions_table(rng: np.random.Generator, chunk: Chunk) -> pa.Table:
    """PRESCRIPTIONS: general drugs, drugs of the chronic conditions, newborn drugs."""
    n = chunk.size
    los_days = (chunk.disch - chunk.admit) / SECONDS_PER_DAY
    general = np.where(
        chunk.newborn,
        0,
        rng.poisson(4.0 + 1.5 * np.clip(chunk.frailty, 0, None) + 0.6 * np.sqrt(los_days)),
    )
    gen_adm = np.repeat(np.arange(n), general)
    gen_drug = rng.choice(len(GENERAL_DRUGS), gen_adm.size, p=_GENERAL_DRUG_P)
    cond_adm, cond_idx = np.nonzero(chunk.conditions & (rng.random(chunk.conditions.shape) < 0.9))
    nb_adm = np.repeat(np.flatnonzero(chunk.newborn), len(NEWBORN_DRUGS))
    nb_drug = _NEWBORN_DRUG_OFFSET + np.tile(
        np.arange(len(NEWBORN_DRUGS)), int(chunk.newborn.sum())
    )
    admission = np.concatenate([gen_adm, cond_adm, nb_adm])
    drug = np.concatenate([gen_drug, _CONDITION_DRUG_OFFSET + cond_idx, nb_drug])
    start = _days(
        chunk.admit[admission]
        + (rng.random(admission.size) * los_days[admission] * SECONDS_PER_DAY).astype(np.int64)
    )
    end = start + rng.integers(1, 6, admission.size) * SECONDS_PER_DAY
    admission, start, end, drug = _sorted_child(admission, start, start, end, drug)
    rows = admission.size
    names = _text(DRUG_NAMES, drug)
    return pa.table(
        {
            "row_id": _row_ids(rows, 1 + 30 * chunk.start),
            "subject_id": pa.array(chunk.subject_id[admission]),
            "hadm_id": pa.array(chunk.hadm_id[admission]),
            "icustay_id": _null(pa.int64(), rows),
            "startdate": _timestamps(start),
            "enddate": _timestamps(end),
            "drug_type": pa.array(np.full(rows, "MAIN")),
            "drug": names,
            "drug_name_poe": names,
            "drug_name_generic": names,
            "formulary_drug_cd": _null(pa.string(), rows),
            "gsn": _null(pa.string(), rows),
            "ndc": _text(DRUG_NDCS, drug),
            "prod_strength": _null(pa.string(), rows),
            "dose_val_rx": _null(pa.string(), rows),
            "dose_unit_rx": _null(pa.string(), rows),
            "form_val_disp": _null(pa.string(), rows),
            "form_unit_disp": _null(pa.string(), rows),
            "route": _text(DRUG_ROUTES, drug),
        }
    )


def _lab_values(rng: np.random.Generator, item: np.ndarray, abnormal: np.ndarray) -> np.ndarray:
    low = np.array([i[6] for i in LAB_ITEMS])[item]
    high = np.array([i[7] for i in LAB_ITEMS])[item]
    normal = low + rng.random(item.size) * (high - low)
    above = rng.random(item.size) < 0.6
    outside = np.where(
        above,
        high * (1.0 + rng.uniform(0.1, 2.6, item.size)),
        low * rng.uniform(0.5, 0.9, item.size),
    )
    return np.round(np.where(abnormal, outside, normal), 2)


def labevents_table(rng: np.random.Generator, chunk: Chunk) -> pa.Table:
    """LABEVENTS: admission labs (the first ``n_abnormal`` flagged), HbA1c, outpatient labs."""
    n = chunk.size
    los = (chunk.disch - chunk.admit).astype(np.float64)
    admission = np.repeat(np.arange(n), chunk.n_labs)
    item = rng.choice(len(LAB_ITEMS), admission.size, p=_LAB_P)
    abnormal = rank_within(admission) < chunk.n_abnormal[admission]
    diabetic = chunk.conditions[:, _DIABETES].any(axis=1)
    a1c_adm = np.flatnonzero(diabetic & (rng.random(n) < HBA1C_MEASURED_RATE))
    complicated = chunk.conditions[a1c_adm][:, _DIABETES_COMPLICATED].any(axis=1)
    a1c_value = np.round(np.clip(rng.normal(7.4 + 1.0 * complicated, 1.2), 4.5, 15.0), 1)
    values = np.concatenate([_lab_values(rng, item, abnormal), a1c_value])
    item_ids = np.array([i[0] for i in LAB_ITEMS], dtype=np.int64)
    itemid = np.concatenate([item_ids[item], np.full(a1c_adm.size, HBA1C_ITEM_ID)])
    flag = np.concatenate([abnormal, a1c_value > 6.0])
    admission = np.concatenate([admission, a1c_adm])
    when = (
        chunk.admit[admission]
        + (rng.random(admission.size) * los[admission]).astype(np.int64) // 60 * 60
    )
    outpatient = rng.random(admission.size) < OUTPATIENT_LAB_RATE
    when = np.where(
        outpatient,
        chunk.admit[admission] - rng.integers(1, 60, admission.size) * SECONDS_PER_DAY,
        when,
    )
    admission, when, itemid, values, flag, outpatient = _sorted_child(
        admission, when, when, itemid, values, flag, outpatient
    )
    units = {i[0]: i[5] for i in LAB_ITEMS}
    unit_vocab = tuple(units[i] for i in item_ids)
    unit_index = np.searchsorted(item_ids, itemid, sorter=np.argsort(item_ids))
    unit_index = np.argsort(item_ids)[unit_index]
    value_array = pa.array(values)
    return pa.table(
        {
            "row_id": _row_ids(admission.size, 1 + 40 * chunk.start),
            "subject_id": pa.array(chunk.subject_id[admission]),
            "hadm_id": pa.array(chunk.hadm_id[admission], mask=outpatient),
            "itemid": pa.array(itemid),
            "charttime": _timestamps(when),
            "value": pc.cast(value_array, pa.string()),
            "valuenum": value_array,
            "valueuom": _text(unit_vocab, unit_index),
            "flag": _text(("abnormal",), np.zeros(admission.size, dtype=np.int64), ~flag),
        }
    )


def services_table(rng: np.random.Generator, chunk: Chunk) -> pa.Table:
    """SERVICES: the admitting service, sometimes a later transfer to another one."""
    n = chunk.size
    vocab = (*[s for s, _ in SERVICES], NEWBORN_SERVICE)
    first = np.where(chunk.newborn, len(SERVICES), rng.choice(len(SERVICES), n, p=_SERVICE_P))
    moved = np.flatnonzero(~chunk.newborn & (rng.random(n) < SECOND_SERVICE_RATE))
    second = rng.choice(len(SERVICES), moved.size, p=_SERVICE_P)
    los = chunk.disch - chunk.admit
    admission = np.concatenate([np.arange(n), moved])
    service = np.concatenate([first, second])
    previous = np.concatenate([np.full(n, -1), first[moved]])
    when = np.concatenate(
        [
            chunk.admit + rng.integers(0, 7_200, n) // 60 * 60,
            chunk.admit[moved]
            + (rng.uniform(0.2, 0.8, moved.size) * los[moved]).astype(np.int64) // 60 * 60,
        ]
    )
    admission, when, service, previous = _sorted_child(admission, when, when, service, previous)
    return pa.table(
        {
            "row_id": _row_ids(admission.size, 1 + 2 * chunk.start),
            "subject_id": pa.array(chunk.subject_id[admission]),
            "hadm_id": pa.array(chunk.hadm_id[admission]),
            "transfertime": _timestamps(when),
            "prev_service": _text(vocab, np.maximum(previous, 0), previous < 0),
            "curr_service": _text(vocab, service),
        }
    )


def icustays_table(rng: np.random.Generator, chunk: Chunk) -> pa.Table:
    """ICUSTAYS: one stay for about a third of adult admissions, more often when severe."""
    p = np.clip(ICU_RATE + 0.15 * chunk.severity, 0.02, 0.95)
    admission = np.flatnonzero(~chunk.newborn & (rng.random(chunk.size) < p))
    los = (chunk.disch - chunk.admit)[admission]
    intime = chunk.admit[admission] + (rng.uniform(0.0, 0.2, admission.size) * los).astype(np.int64)
    outtime = intime + np.maximum(
        600, (rng.uniform(0.2, 0.75, admission.size) * los).astype(np.int64)
    )
    unit = rng.choice(len(CARE_UNITS), admission.size, p=_CARE_UNIT_P)
    units = tuple(u for u, _ in CARE_UNITS)
    ward = pa.array(rng.integers(1, 60, admission.size))
    return pa.table(
        {
            "row_id": _row_ids(admission.size, 1 + chunk.start),
            "subject_id": pa.array(chunk.subject_id[admission]),
            "hadm_id": pa.array(chunk.hadm_id[admission]),
            "icustay_id": pa.array(3_000_000 + chunk.start + admission),
            "dbsource": pa.array(np.full(admission.size, "metavision")),
            "first_careunit": _text(units, unit),
            "last_careunit": _text(units, unit),
            "first_wardid": ward,
            "last_wardid": ward,
            "intime": _timestamps(intime),
            "outtime": _timestamps(outtime),
            "los": pa.array(np.round((outtime - intime) / SECONDS_PER_DAY, 4)),
        }
    )


NOTE_COLUMNS = (
    "row_id",
    "subject_id",
    "hadm_id",
    "chartdate",
    "charttime",
    "storetime",
    "category",
    "description",
    "cgid",
    "iserror",
    "text",
)


def empty_notes_table() -> pa.Table:
    """NOTEEVENTS with no rows (as in the MIMIC-III demo)."""
    schema = pa.schema(
        [
            ("row_id", pa.int64()),
            ("subject_id", pa.int64()),
            ("hadm_id", pa.int64()),
            ("chartdate", pa.timestamp("us", tz="UTC")),
            ("charttime", pa.timestamp("us", tz="UTC")),
            ("storetime", pa.timestamp("us", tz="UTC")),
            ("category", pa.string()),
            ("description", pa.string()),
            ("cgid", pa.int64()),
            ("iserror", pa.string()),
            ("text", pa.string()),
        ]
    )
    return schema.empty_table()


def _phrase(
    rng: np.random.Generator,
    signal: np.ndarray,
    when_true: tuple[str, ...],
    when_false: tuple[str, ...],
    noise: float,
) -> pa.Array:
    shown = signal ^ (rng.random(signal.size) < noise)
    pick = rng.integers(0, 3, signal.size)
    return _text(when_true + when_false, np.where(shown, pick, len(when_true) + pick))


def notes_table(rng: np.random.Generator, chunk: Chunk) -> pa.Table:
    """NOTEEVENTS: one discharge summary per adult admission whose phrases track the risk."""
    admission = np.flatnonzero(~chunk.newborn)
    m = admission.size
    sick = (chunk.n_abnormal[admission] >= 4) | (chunk.severity[admission] > 1.0)
    home = chunk.discharge[admission] == 0
    principal = _text(
        tuple(f"Principal diagnosis: {d[2].lower()}." for d in ACUTE_DIAGNOSES),
        chunk.principal[admission],
    )
    text = pc.binary_join_element_wise(
        _text(NOTE_OPENINGS, rng.integers(0, len(NOTE_OPENINGS), m)),
        principal,
        _phrase(rng, chunk.social[admission], NOTE_SOCIAL_RISK, NOTE_SOCIAL_NEUTRAL, 0.1),
        _phrase(rng, sick, NOTE_CLINICAL_HIGH, NOTE_CLINICAL_LOW, 0.15),
        _text(NOTE_FOLLOW_UP, np.where(home, 0, rng.integers(0, len(NOTE_FOLLOW_UP), m))),
        " ",
    )
    day = _days(chunk.disch[admission])
    return pa.table(
        {
            "row_id": _row_ids(m, 1 + chunk.start),
            "subject_id": pa.array(chunk.subject_id[admission]),
            "hadm_id": pa.array(chunk.hadm_id[admission]),
            "chartdate": _timestamps(day),
            "charttime": _null(pa.timestamp("us", tz="UTC"), m),
            "storetime": _null(pa.timestamp("us", tz="UTC"), m),
            "category": pa.array(np.full(m, "Discharge summary")),
            "description": pa.array(np.full(m, "Report")),
            "cgid": _null(pa.int64(), m),
            "iserror": _null(pa.string(), m),
            "text": text,
        }
    )
