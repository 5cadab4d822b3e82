"""Property: corrupting a clean extract never changes its cohort, and every row is counted.

Every source the ETL reads: MIMIC-III text tables, UCI Diabetes-130, the generator's Parquet.

Each example takes a clean extract and injects random exact copies (byte for byte, or with
spaces around the values, which the job trims), orphans, child rows without an admission id
or a value, malformed and disagreeing admissions or encounters. The kept rows and labels
must equal the clean run's, in = out + excluded + quarantined + duplicates dropped, and each
table's counts must move by exactly what was injected. Examples are few (Spark is slow on
two cores) but each injects many corruptions.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from contracts import etl_manifest as keys
from glue_jobs import cohort, readers, uci_diabetes
from glue_jobs.accounting import TableCounts
from glue_jobs.ehr_features import RunCounts, row_accounting
from glue_jobs.synthetic_ehr import generate
from tests.glue_jobs import extract_rows, uci_rows
from tests.glue_jobs.conftest import TEST_KEY, text_frame
from tests.glue_jobs.extract_rows import CHILD_TABLES, Row

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SETTINGS = settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COPYABLE = ("ADMISSIONS", "PATIENTS", "D_LABITEMS", *CHILD_TABLES)
#: A child row without what the job reads, per table (the reason it is then unused).
NO_VALUE: dict[str, tuple[dict[str, str | None], str]] = {
    "DIAGNOSES_ICD": ({"icd9_code": None}, "no_value"),
    "PROCEDURES_ICD": ({"icd9_code": " "}, "no_value"),
    "PRESCRIPTIONS": ({"drug": ""}, "no_value"),
    "SERVICES": ({"curr_service": None}, "no_value"),
    "NOTEEVENTS": ({"iserror": "1"}, "not_selected"),
}
#: A malformed admission (one fault each) and the reason it must be quarantined with.
MALFORMED_ADMISSIONS: list[tuple[dict[str, str | None], str]] = [
    ({"hadm_id": None}, "missing_key"),
    ({"hadm_id": "9x1"}, "missing_key"),
    ({"admittime": "2170-13-45 99:00:00"}, "unparseable_date"),
    ({"edregtime": "yesterday"}, "unparseable_date"),
    ({"subject_id": "99"}, "unknown_patient"),
    ({"dischtime": "2160-01-01 00:00:00"}, "discharge_before_admission"),
    ({"hospital_expire_flag": "7"}, "out_of_contract"),
]


@dataclass
class Corrupted:
    """A corrupted extract and what the counts must move by."""

    extract: dict[str, list[Row]]
    admissions_added: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    linked: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, table: str, row: Row, outcome: str) -> None:
        """Append a row to a linked table and expect it counted under ``outcome``."""
        self.extract[table].append(row)
        self.linked.setdefault(table, Counter())[outcome] += 1


def _is_used(table: str, row: Row) -> bool:
    if table in ("ADMISSIONS", "PATIENTS", "D_LABITEMS"):
        return True
    selected = table != "NOTEEVENTS" or row["category"] == "Discharge summary"
    return row["hadm_id"] is not None and selected


def _copy(draw: st.DrawFn, row: Row) -> Row:
    return extract_rows.padded(row) if draw(st.booleans()) else dict(row)


def _inject_copies(draw: st.DrawFn, corrupted: Corrupted) -> None:
    for _ in range(draw(st.integers(0, 5))):
        table = draw(st.sampled_from(COPYABLE))
        used = [r for r in extract_rows.clean_extract()[table] if _is_used(table, r)]
        row = _copy(draw, draw(st.sampled_from(used)))
        if table == "ADMISSIONS":
            corrupted.extract[table].append(row)
            corrupted.admissions_added += 1
            corrupted.duplicates += 1
        else:
            corrupted.add(table, row, "duplicate")


def _inject_child_faults(draw: st.DrawFn, corrupted: Corrupted, serial: int) -> None:
    """Orphans (copies included), rows without an admission id, rows without a value."""
    for index in range(draw(st.integers(0, 4))):
        table = draw(st.sampled_from(CHILD_TABLES))
        used = [r for r in extract_rows.clean_extract()[table] if _is_used(table, r)]
        row = {**draw(st.sampled_from(used)), "row_id": str(serial + index)}
        kind = draw(st.sampled_from(["orphan", "no_admission_id", "no_value"]))
        if kind == "orphan":
            orphan = {**row, "hadm_id": str(7000 + index)}
            for _ in range(draw(st.integers(1, 2))):
                corrupted.add(table, _copy(draw, orphan), "orphan")
        elif kind == "no_admission_id":
            hadm_id = draw(st.sampled_from([None, "12a", " "]))
            corrupted.add(table, {**row, "hadm_id": hadm_id}, "no_admission_id")
        elif table in NO_VALUE:
            change, reason = NO_VALUE[table]
            corrupted.add(table, {**row, **change}, reason)


def _inject_bad_admissions(draw: st.DrawFn, corrupted: Corrupted) -> None:
    """Malformed admissions of the clean patients (and their copies), disagreeing pairs, and a
    diagnosis linked to one: quarantined rows must not reach the timeline or the features."""
    base = dict(extract_rows.clean_extract()["ADMISSIONS"][0])
    for index in range(draw(st.integers(0, 4))):
        fault, reason = draw(st.sampled_from(MALFORMED_ADMISSIONS))
        subject = draw(st.sampled_from(["1", "2", "3"]))
        row = {**base, "subject_id": subject, "hadm_id": str(900 + index), **fault}
        rows = [row] * draw(st.integers(1, 2))
        if draw(st.booleans()):
            rows = [row, {**row, "admission_type": str(row["admission_type"]).lower()}]
            reason = "missing_key" if row["hadm_id"] in (None, "9x1") else "conflicting_duplicate"
        corrupted.extract["ADMISSIONS"] += rows
        corrupted.admissions_added += len(rows)
        corrupted.quarantined[reason] += len(rows)
        if str(row["hadm_id"]).isdigit() and draw(st.booleans()):
            diagnosis = {"row_id": str(800 + index), "hadm_id": row["hadm_id"], "seq_num": "1"}
            corrupted.add("DIAGNOSES_ICD", {**diagnosis, "icd9_code": "4280"}, "used")


def _inject_bad_lookups(draw: st.DrawFn, corrupted: Corrupted) -> None:
    """Patients without an id or an admission; lab items without an id or a label, or with
    rows that disagree (fresh item ids: the clean labs' names must not change)."""
    for index in range(draw(st.integers(0, 2))):
        subject = draw(st.sampled_from([None, str(80 + index)]))
        reason = "missing_key" if subject is None else "orphan"
        row = {"subject_id": subject, "gender": "M", "dob": "2100-01-01 00:00:00"}
        corrupted.add("PATIENTS", row, reason)
    for index in range(draw(st.integers(0, 2))):
        item = {"row_id": str(60 + index), "itemid": str(60000 + index), "label": "Sodium"}
        kind = draw(st.sampled_from(["missing_key", "no_value", "conflicting_duplicate"]))
        if kind == "missing_key":
            corrupted.add(
                "D_LABITEMS", {**item, "itemid": draw(st.sampled_from([None, "5x"]))}, kind
            )
        elif kind == "no_value":
            corrupted.add("D_LABITEMS", {**item, "label": " "}, kind)
        else:
            corrupted.add("D_LABITEMS", item, kind)
            corrupted.add("D_LABITEMS", {**item, "label": "sodium"}, kind)


@st.composite
def corrupted_extracts(draw: st.DrawFn) -> Corrupted:
    """The clean extract with random copies, orphans and malformed rows in every table (each
    reason of every table can be drawn)."""
    corrupted = Corrupted(extract=extract_rows.clean_extract())
    _inject_copies(draw, corrupted)
    _inject_child_faults(draw, corrupted, serial=100)
    _inject_bad_admissions(draw, corrupted)
    _inject_bad_lookups(draw, corrupted)
    return corrupted


@pytest.fixture(scope="module", autouse=True)
def small_frame_settings(spark: SparkSession) -> Iterator[None]:
    """One shuffle partition and no adaptive re-planning: the same results, in about half the
    time on frames of a few rows (restored afterwards)."""
    settings = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false"}
    before = {name: spark.conf.get(name) for name in settings}
    for name, value in settings.items():
        spark.conf.set(name, value)
    yield
    for name, value in before.items():
        spark.conf.set(name, value)


@pytest.fixture(scope="module")
def clean_run(spark: SparkSession) -> tuple[dict[str, Any], RunCounts]:
    return extract_rows.run_counts(spark, extract_rows.clean_extract())


EMPTY = TableCounts().as_manifest()


def _manifest(counts: dict[str, TableCounts]) -> dict[str, dict]:
    return {name: table.as_manifest() for name, table in counts.items()}


def test_clean_extract_uses_every_row_but_an_outpatient_lab_and_a_nursing_note(
    clean_run: tuple[dict[str, Any], RunCounts],
) -> None:
    _, counts = clean_run
    linked = _manifest(counts.linked)
    assert linked["DIAGNOSES_ICD"] == {**EMPTY, "rows_in": 6, "rows_used": 6}
    assert set(linked) == set(extract_rows.TABLES) - {"ADMISSIONS"}
    assert linked["LABEVENTS"] == {
        **EMPTY,
        "rows_in": 4,
        "rows_used": 3,
        "rows_unused_by_reason": {"no_admission_id": 1},
    }
    assert linked["NOTEEVENTS"] == {
        **EMPTY,
        "rows_in": 2,
        "rows_used": 1,
        "rows_unused_by_reason": {"not_selected": 1},
    }
    assert linked["PATIENTS"] == {**EMPTY, "rows_in": 3, "rows_used": 3}
    assert linked["D_LABITEMS"] == {**EMPTY, "rows_in": 2, "rows_used": 2}
    assert counts.index.duplicates_dropped == 0


def _expected_table(clean: TableCounts, added: Counter[str]) -> dict[str, Any]:
    reasons = Counter(clean.unused_by_reason)
    reasons.update({k: v for k, v in added.items() if k not in ("used", "duplicate")})
    return TableCounts(
        rows_in=clean.rows_in + sum(added.values()),
        rows_used=clean.rows_used + added["used"],
        duplicates_dropped=clean.duplicates_dropped + added["duplicate"],
        unused_by_reason=dict(reasons),
    ).as_manifest()


@SETTINGS
@given(corrupted=corrupted_extracts())
def test_mimic_corruption_leaves_the_cohort_and_adds_up(
    spark: SparkSession, clean_run: tuple[dict[str, Any], RunCounts], corrupted: Corrupted
) -> None:
    clean_features, clean = clean_run
    features, counts = extract_rows.run_counts(spark, corrupted.extract)
    assert features == clean_features
    assert counts.index.rows_in == clean.index.rows_in + corrupted.admissions_added
    assert counts.index.duplicates_dropped == corrupted.duplicates
    assert counts.index.quarantined == dict(corrupted.quarantined)
    assert counts.index.excluded == clean.index.excluded
    for table, added in corrupted.linked.items():
        expected = _expected_table(clean.linked[table], added)
        assert counts.linked[table].as_manifest() == expected, table
    entries = row_accounting("ADMISSIONS", counts)  # what run_job checks before publishing
    assert keys.unbalanced_tables(entries) == []
    assert entries[keys.RECONCILED] is True


# --- UCI Diabetes-130 ------------------------------------------------------------------------

UCI_COLUMNS = [c.lower() for c in uci_rows.HEADER]
UCI_CLEAN = [
    row
    for key, (row, status, _) in uci_rows.CASES.items()
    if status in (cohort.STATUS_OK, cohort.STATUS_EXCLUDED) and not key.endswith("b")
]
#: A malformed encounter (one fault each, patient 500 has clean encounters) and its reason.
MALFORMED_ENCOUNTERS: list[tuple[dict[str, str | None], str]] = [
    ({"patient_nbr": None}, "missing_key"),
    ({"encounter_id": "12a"}, "missing_key"),
    ({"age": "seventy"}, "out_of_contract"),
    ({"time_in_hospital": "-2"}, "out_of_contract"),
    ({"readmitted": "maybe"}, "out_of_contract"),
    ({"A1Cresult": ">9"}, "out_of_contract"),
    ({"num_lab_procedures": "4x"}, "out_of_contract"),
]


def _padded(row: list[str | None]) -> list[str | None]:
    return [None if value is None else f" {value}  " for value in row]


@st.composite
def corrupted_uci(draw: st.DrawFn) -> tuple[list[list[str | None]], int, Counter[str]]:
    """UCI rows with copies (exact or padded), malformed encounters (and their copies) and
    disagreeing pairs: (rows, copies dropped, quarantined by reason)."""
    rows, duplicates, quarantined = list(UCI_CLEAN), 0, Counter[str]()
    for _ in range(draw(st.integers(0, 4))):
        row = draw(st.sampled_from(UCI_CLEAN))
        rows.append(_padded(row) if draw(st.booleans()) else list(row))
        duplicates += 1
    for index in range(draw(st.integers(0, 4))):
        fault, reason = draw(st.sampled_from(MALFORMED_ENCOUNTERS))
        changes = {"encounter_id": str(3000 + index), "patient_nbr": "500", **fault}
        copies = [uci_rows.row(**changes)] * draw(st.integers(1, 2))
        if draw(st.booleans()):
            copies = [uci_rows.row(**changes), uci_rows.row(**changes, race="AfricanAmerican")]
            reason = "missing_key" if reason == "missing_key" else "conflicting_duplicate"
        rows += copies
        quarantined[reason] += len(copies)
    return rows, duplicates, quarantined


def _uci_run(spark: SparkSession, rows: list[list[str | None]]) -> tuple[dict, Any]:
    frames = uci_diabetes.build(text_frame(spark, UCI_COLUMNS, rows), TEST_KEY)
    try:
        counts = cohort.count_outcomes(frames.staged)
        features = {r["encounter_key"]: r.asDict() for r in frames.features.collect()}
    finally:
        for frame in frames.persisted:
            frame.unpersist()
    return features, counts


@pytest.fixture(scope="module")
def clean_uci(spark: SparkSession) -> tuple[dict, Any]:
    return _uci_run(spark, UCI_CLEAN)


@SETTINGS
@given(corrupted=corrupted_uci())
def test_uci_corruption_leaves_the_cohort_and_adds_up(
    spark: SparkSession,
    clean_uci: tuple[dict, Any],
    corrupted: tuple[list[list[str | None]], int, Counter[str]],
) -> None:
    rows, duplicates, quarantined = corrupted
    clean_features, clean = clean_uci
    features, counts = _uci_run(spark, rows)
    assert features == clean_features
    assert counts.rows_in == len(rows)
    assert counts.duplicates_dropped == duplicates
    assert counts.quarantined == dict(quarantined)
    assert counts.excluded == clean.excluded
    entries = row_accounting("diabetic_data", RunCounts(counts, {}))
    assert keys.unbalanced_tables(entries) == []


# --- The generator's Parquet ---------------------------------------------------------------


def test_copies_and_orphans_in_generated_parquet_leave_the_cohort(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Typed Parquet with admissions, patients and labs written twice, and diagnoses of
    admissions that do not exist: the same features, every extra row counted."""
    clean, corrupted = tmp_path / "clean", tmp_path / "corrupted"
    generate(60, 9, str(clean))
    shutil.copytree(clean, corrupted)

    def table(name: str) -> pa.Table:
        return ds.dataset(clean / name, format="parquet").to_table()

    def append(name: str, rows: pa.Table) -> None:
        pq.write_table(rows, corrupted / name / "part-99999.parquet")

    append("ADMISSIONS", table("ADMISSIONS").slice(0, 3))
    append("PATIENTS", table("PATIENTS").slice(0, 2))
    labs = table("LABEVENTS")
    append("LABEVENTS", labs.filter(pc.is_valid(labs["hadm_id"])).slice(0, 5))
    diagnoses = table("DIAGNOSES_ICD").slice(0, 4)
    nowhere = pa.array(np.arange(4, dtype=np.int64) + 10**9)
    column = diagnoses.schema.get_field_index("hadm_id")
    append("DIAGNOSES_ICD", diagnoses.set_column(column, "hadm_id", nowhere))

    before_features, before = extract_rows.build_and_count(
        readers.read_mimic_tables(spark, str(clean))[0]
    )
    features, after = extract_rows.build_and_count(
        readers.read_mimic_tables(spark, str(corrupted))[0]
    )
    assert features == before_features
    assert after.index.rows_in == before.index.rows_in + 3
    assert after.index.duplicates_dropped == 3
    assert _manifest(after.linked)["PATIENTS"] == {
        **_manifest(before.linked)["PATIENTS"],
        "rows_in": before.linked["PATIENTS"].rows_in + 2,
        "duplicates_dropped": 2,
    }
    assert after.linked["LABEVENTS"].duplicates_dropped == 5
    assert after.linked["DIAGNOSES_ICD"].unused_by_reason == {"orphan": 4}
    assert after.linked["DIAGNOSES_ICD"].rows_used == before.linked["DIAGNOSES_ICD"].rows_used
    assert keys.unbalanced_tables(row_accounting("ADMISSIONS", after)) == []
