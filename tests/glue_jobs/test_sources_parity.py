"""The same generated patients through ``--source mimic3``, ``mimic4`` and ``fhir``: the same
canonical rows (ids, labels, intervals, categories, labs, notes), codes of the same clinical
groups across the ICD-9 -> ICD-10 switch. Also: the generator's three layouts themselves
(FHIR output valid against the ``fhir.resources`` R4B models, MIMIC-IV's columns and eras).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as ds
import pytest
from pyspark.sql import SparkSession

from contracts import fhir
from glue_jobs.ehr_features import run_job
from glue_jobs.synthetic_ehr import generate
from glue_jobs.synthetic_layouts import backward_gem, forward_gem, icd10_of_icd9
from glue_jobs.synthetic_tables import DIAGNOSIS_CODES
from glue_jobs.synthetic_vocab import ICD10_PCS_OF_ICD9
from tests.glue_jobs.conftest import TEST_KEY
from tests.glue_jobs.output_checks import manifest, read_dataset

pytestmark = pytest.mark.spark

ADMISSIONS = 2500
SEED = 23
ICD10_FROM = "2150-01-01"
CODE_FIELDS = ("diagnosis_codes", "procedure_codes")
OUTPATIENT = "prior_outpatient_visits_12m"
#: MIMIC-IV de-identifies ages as anchor_age in anchor_year: the age at a later admission is
#: exact to the year only (the birthday is not known), so it may differ from MIMIC-III's by 1.
MIMIC4_AGE_TOLERANCE = 1


@pytest.fixture(scope="module")
def outputs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parity")
    out: dict[str, Path] = {}
    for layout in ("mimic3", "mimic4", "fhir"):
        generate(ADMISSIONS, SEED, str(root / f"in-{layout}"), True, layout, ICD10_FROM)
        run_job(spark, layout, str(root / f"in-{layout}"), str(root / layout), TEST_KEY)
        out[layout] = root / layout
    return out


def _rows(output: Path) -> dict[str, dict[str, Any]]:
    return {row["encounter_key"]: row for row in read_dataset(output / "features")}


def _linked(code9: str, code10: str) -> bool:
    """The two diagnosis codes are one clinical concept by the CMS GEMs (either direction)."""
    system9, value9 = code9.split(":")
    system10, value10 = code10.split(":")
    if system10 == "icd9cm":
        return code9 == code10
    assert (system9, system10) == ("icd9cm", "icd10cm")
    # A category code the GEM lacks (the generator's 3429, 4349) stands for its subcodes.
    targets = {t for code, found in forward_gem().items() if code.startswith(value9) for t in found}
    return value10 in targets or value9 in backward_gem().get(value10, [])


def _same_group(mimic3: dict[str, Any], other: dict[str, Any]) -> None:
    diagnoses9, diagnoses = mimic3["diagnosis_codes"], other["diagnosis_codes"]
    assert len(diagnoses9) == len(diagnoses)
    for code9, code in zip(diagnoses9, diagnoses, strict=True):
        assert _linked(code9, code), (code9, code)
    for code9, code in zip(mimic3["procedure_codes"], other["procedure_codes"], strict=True):
        expected = f"icd10pcs:{ICD10_PCS_OF_ICD9[code9.split(':')[1]]}"
        assert code in (code9, expected), (code9, code)


@pytest.mark.parametrize("source", ["mimic4", "fhir"])
def test_same_patients_give_the_same_canonical_rows(outputs: dict[str, Path], source: str) -> None:
    reference, rows = _rows(outputs["mimic3"]), _rows(outputs[source])
    assert len(reference) > 0.85 * ADMISSIONS
    assert set(rows) == set(reference)
    icd10_rows = 0
    for key, expected in reference.items():
        actual = rows[key]
        _same_group(expected, actual)
        icd10_rows += any(c.startswith("icd10cm:") for c in actual["diagnosis_codes"])
        if source == "mimic4":
            assert abs(actual["age_years"] - expected["age_years"]) <= MIMIC4_AGE_TOLERANCE
        ignored = {*CODE_FIELDS, "age_years"} if source == "mimic4" else set(CODE_FIELDS)
        if source == "fhir":
            # MIMIC does not record outpatient visits (null); a FHIR export holds every
            # encounter class, so it counts them (the generator writes none: 0).
            assert (expected[OUTPATIENT], actual[OUTPATIENT]) == (None, 0), key
            ignored.add(OUTPATIENT)
        assert {k: v for k, v in actual.items() if k not in ignored} == {
            k: v for k, v in expected.items() if k not in ignored
        }, key
    # Both eras are present, and MIMIC-III stays ICD-9 as the real one is.
    assert 0.2 * len(rows) < icd10_rows < 0.8 * len(rows)
    assert all(
        c.startswith(("icd9cm:", "icd9pcs:"))
        for r in reference.values()
        for f in CODE_FIELDS
        for c in r[f]
    )


def test_protected_rows_and_row_accounting_agree(outputs: dict[str, Path]) -> None:
    protected = {
        source: read_dataset(outputs[source] / "protected") for source in ("mimic3", "fhir")
    }
    assert protected["fhir"] == protected["mimic3"]
    for source, output in outputs.items():
        entries = manifest(output)
        assert entries["reconciled"] is True, source
        assert entries["rows_in"] == (
            entries["rows_out"]
            + entries["rows_excluded"]
            + entries["rows_quarantined"]
            + entries["duplicates_dropped"]
        )
    # MIMIC-IV's hosp module has no neonates; FHIR's births are excluded as newborns.
    assert "newborn" not in manifest(outputs["mimic4"])["excluded_by_reason"]
    assert (
        manifest(outputs["fhir"])["excluded_by_reason"]
        == manifest(outputs["mimic3"])["excluded_by_reason"]
    )


# --- The layouts themselves --------------------------------------------------------------------


def test_fhir_layout_validates_against_the_r4b_models(tmp_path: Path) -> None:
    """Every generated line is a valid resource of its file's type (fhir.resources' R4B
    models: FHIR 4.3, whose resources used here are R4's)."""
    counts = generate(150, 4, str(tmp_path / "fhir"), notes=True, layout="fhir")
    seen: dict[str, int] = {}
    for path in sorted((tmp_path / "fhir").glob("*.ndjson")):
        resource_type = path.name.split(".")[0]
        model = getattr(
            importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}"), resource_type
        )
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            assert resource["resourceType"] == resource_type
            model.model_validate(resource)
            seen[resource_type] = seen.get(resource_type, 0) + 1
    assert seen == counts
    assert set(seen) == set(fhir.RESOURCE_TYPES)


MIMIC4_COLUMNS = {
    "hosp/patients": [
        "subject_id",
        "gender",
        "anchor_age",
        "anchor_year",
        "anchor_year_group",
        "dod",
    ],
    "hosp/diagnoses_icd": ["subject_id", "hadm_id", "seq_num", "icd_code", "icd_version"],
    "hosp/procedures_icd": [
        "subject_id",
        "hadm_id",
        "seq_num",
        "chartdate",
        "icd_code",
        "icd_version",
    ],
    "note/discharge": [
        "note_id",
        "subject_id",
        "hadm_id",
        "note_type",
        "note_seq",
        "charttime",
        "storetime",
        "text",
    ],
}


def test_mimic4_layout_switches_to_icd10_at_the_chosen_date(tmp_path: Path) -> None:
    generate(400, 8, str(tmp_path / "m4"), notes=True, layout="mimic4", icd10_from="2140-06-01")
    table = {
        name: ds.dataset(tmp_path / "m4" / name, format="parquet").to_table()
        for name in ("hosp/admissions", *MIMIC4_COLUMNS)
    }
    for name, columns in MIMIC4_COLUMNS.items():
        assert table[name].column_names == columns, name
    admissions = table["hosp/admissions"].to_pandas().set_index("hadm_id")
    assert "NEWBORN" not in set(admissions["admission_type"])
    switch = np.datetime64("2140-06-01T00:00:00")
    diagnoses = table["hosp/diagnoses_icd"].to_pandas()
    after = (
        admissions.loc[diagnoses["hadm_id"], "admittime"].dt.tz_localize(None).to_numpy() >= switch
    )
    assert (diagnoses["icd_version"].to_numpy() == np.where(after, 10, 9)).all()
    assert 0 < after.sum() < after.size
    gem_targets = {icd10_of_icd9(code) for code in DIAGNOSIS_CODES}
    assert set(diagnoses[after]["icd_code"]) <= gem_targets
    assert set(diagnoses[~after]["icd_code"]) <= set(DIAGNOSIS_CODES)
    ages = table["hosp/patients"]["anchor_age"].to_numpy()
    assert ages.min() >= 18
    assert ages.max() == 91
