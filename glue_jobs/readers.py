"""Readers of the source layouts: MIMIC-III tables (CSV, CSV.gz or Parquet) and the UCI file.

A MIMIC table is looked up as ``NAME.csv``, ``NAME.csv.gz``, ``NAME.parquet`` or a ``NAME/``
folder of Parquet files (upper or lower case), so the real PhysioNet layout and the
generator's output are read by the same job. CSV is read as text; typing happens in the
transforms, where a bad value becomes a quarantine reason instead of a failed job.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 (house style)

from glue_jobs import storage
from glue_jobs.copies import ROW_ID

MIMIC_REQUIRED_TABLES = ("ADMISSIONS", "PATIENTS")
MIMIC_OPTIONAL_TABLES = (
    "DIAGNOSES_ICD",
    "PROCEDURES_ICD",
    "PRESCRIPTIONS",
    "LABEVENTS",
    "D_LABITEMS",
    "SERVICES",
    "NOTEEVENTS",
)

#: Columns the job reads from each table (a missing optional table is an empty frame of these).
MIMIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "ADMISSIONS": (
        "subject_id",
        "hadm_id",
        "admittime",
        "dischtime",
        "admission_type",
        "admission_location",
        "discharge_location",
        "ethnicity",
        "edregtime",
        "hospital_expire_flag",
    ),
    "PATIENTS": ("subject_id", "gender", "dob"),
    "DIAGNOSES_ICD": ("hadm_id", "seq_num", "icd9_code"),
    "PROCEDURES_ICD": ("hadm_id", "seq_num", "icd9_code"),
    "PRESCRIPTIONS": ("hadm_id", "startdate", "drug", "ndc"),
    "LABEVENTS": ("hadm_id", "itemid", "charttime", "valuenum", "flag"),
    "D_LABITEMS": ("itemid", "label"),
    "SERVICES": ("hadm_id", "transfertime", "curr_service"),
    "NOTEEVENTS": (
        "row_id",
        "hadm_id",
        "chartdate",
        "charttime",
        "category",
        "iserror",
        "text",
    ),
}

#: Columns an extract may lack (read as null): a PRESCRIPTIONS extract without NDCs still gives
#: the drug names, and its ``medication_codes`` are empty.
MIMIC_OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"PRESCRIPTIONS": ("ndc",)}

#: ``row_id`` is read where a table has it (null otherwise): it tells two equal events in a
#: child table from one event written twice (``glue_jobs.copies``).

#: Tables whose text fields may hold quoted line breaks.
_MULTILINE_TABLES = frozenset({"NOTEEVENTS"})

#: MIMIC-IV v2/v3: module folder, table, and the columns the job reads (``row_id`` taken from
#: the table's own event id where it has one: labevent_id, note_id, pharmacy_id).
MIMIC4_REQUIRED_TABLES = ("admissions", "patients")
MIMIC4_TABLES: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "admissions": (
        "hosp",
        (
            "subject_id",
            "hadm_id",
            "admittime",
            "dischtime",
            "admission_type",
            "admission_location",
            "discharge_location",
            "race",
            "edregtime",
            "hospital_expire_flag",
        ),
        None,
    ),
    "patients": ("hosp", ("subject_id", "gender", "anchor_age", "anchor_year"), None),
    "diagnoses_icd": ("hosp", ("hadm_id", "seq_num", "icd_code", "icd_version"), None),
    "procedures_icd": ("hosp", ("hadm_id", "seq_num", "icd_code", "icd_version"), None),
    "prescriptions": ("hosp", ("hadm_id", "starttime", "drug", "ndc"), "pharmacy_id"),
    "labevents": ("hosp", ("hadm_id", "itemid", "charttime", "valuenum", "flag"), "labevent_id"),
    "d_labitems": ("hosp", ("itemid", "label"), None),
    "services": ("hosp", ("hadm_id", "transfertime", "curr_service"), None),
    "discharge": ("note", ("hadm_id", "note_type", "charttime", "text"), "note_id"),
}

UCI_DATA_FILE_NAMES = ("diabetic_data.csv", "diabetic_data.csv.gz")

#: Marker file the generator writes; its presence labels rows ``source = synthetic``.
SYNTHETIC_MARKER = "SYNTHETIC.json"


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def find_mimic_table(spark: SparkSession, input_path: str, table: str) -> str | None:
    """Return the path of a MIMIC table in any supported layout, or None."""
    for name in (table, table.lower()):
        for candidate in (f"{name}.csv", f"{name}.csv.gz", f"{name}.parquet", name):
            path = _join(input_path, candidate)
            if storage.exists(spark, path):
                return path
    return None


def _read_csv(spark: SparkSession, path: str, multiline: bool) -> DataFrame:
    frame = spark.read.csv(
        path,
        header=True,
        inferSchema=False,
        escape='"',
        multiLine=multiline,
        mode="PERMISSIVE",
    )
    return frame.toDF(*[column.lower() for column in frame.columns])


def _with_row_id(frame: DataFrame, table: str) -> DataFrame:
    columns = [F.col(c) for c in MIMIC_COLUMNS[table]]
    if ROW_ID not in MIMIC_COLUMNS[table]:
        row_id = F.col(ROW_ID) if ROW_ID in frame.columns else F.lit(None).cast("string")
        columns.append(row_id.alias(ROW_ID))
    return frame.select(*columns)


def read_mimic_table(spark: SparkSession, input_path: str, table: str) -> DataFrame | None:
    """Return the job's columns of one MIMIC table and its ``row_id``, or None when absent."""
    path = find_mimic_table(spark, input_path, table)
    if path is None:
        return None
    is_csv = path.endswith((".csv", ".csv.gz"))
    # Parquet from pyarrow holds proleptic-Gregorian times; MIMIC's shifted births (~1800)
    # would otherwise trip Spark's legacy-calendar check.
    frame = (
        _read_csv(spark, path, table in _MULTILINE_TABLES)
        if is_csv
        else spark.read.option("datetimeRebaseMode", "CORRECTED").parquet(path)
    )
    frame = frame.toDF(*[column.lower() for column in frame.columns])
    for column in MIMIC_OPTIONAL_COLUMNS.get(table, ()):
        if column not in frame.columns:
            frame = frame.withColumn(column, F.lit(None).cast("string"))
    missing = [column for column in MIMIC_COLUMNS[table] if column not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {', '.join(sorted(missing))}")
    return _with_row_id(frame, table)


def empty_mimic_table(spark: SparkSession, table: str) -> DataFrame:
    """Return an empty all-text frame with the job's columns of ``table`` and ``row_id``."""
    columns = [F.lit(None).cast("string").alias(c) for c in MIMIC_COLUMNS[table]]
    return _with_row_id(spark.range(0).select(*columns), table)


def read_mimic_tables(
    spark: SparkSession, input_path: str
) -> tuple[dict[str, DataFrame], list[str]]:
    """Return every table the job reads and the names of optional tables that were absent."""
    tables: dict[str, DataFrame] = {}
    absent: list[str] = []
    for table in MIMIC_REQUIRED_TABLES:
        frame = read_mimic_table(spark, input_path, table)
        if frame is None:
            raise FileNotFoundError(f"input: required MIMIC table {table} not found")
        tables[table] = frame
    for table in MIMIC_OPTIONAL_TABLES:
        frame = read_mimic_table(spark, input_path, table)
        if frame is None:
            absent.append(table)
            frame = empty_mimic_table(spark, table)
        tables[table] = frame
    return tables, absent


def read_mimic4_table(spark: SparkSession, input_path: str, table: str) -> DataFrame | None:
    """One MIMIC-IV table (``hosp/<table>`` or ``note/<table>``, CSV, CSV.gz or Parquet) as
    its read columns plus ``row_id``; None when absent."""
    module, columns, id_column = MIMIC4_TABLES[table]
    path = find_mimic_table(spark, _join(input_path, module), table)
    if path is None:
        return None
    is_csv = path.endswith((".csv", ".csv.gz"))
    frame = (
        _read_csv(spark, path, table == "discharge")
        if is_csv
        else spark.read.option("datetimeRebaseMode", "CORRECTED").parquet(path)
    )
    frame = frame.toDF(*[column.lower() for column in frame.columns])
    missing = [c for c in (*columns, *([id_column] if id_column else [])) if c not in frame.columns]
    if missing:
        raise ValueError(f"{module}/{table}: missing column(s) {', '.join(sorted(missing))}")
    row_id = F.col(id_column).cast("string") if id_column else F.lit(None).cast("string")
    return frame.select(*columns, row_id.alias(ROW_ID))


def read_mimic4_tables(
    spark: SparkSession, input_path: str
) -> tuple[dict[str, DataFrame], list[str]]:
    """Every MIMIC-IV table the job reads and the optional ones that were absent (an absent
    table is an empty all-text frame of its columns)."""
    tables: dict[str, DataFrame] = {}
    absent: list[str] = []
    for table, (module, columns, _) in MIMIC4_TABLES.items():
        frame = read_mimic4_table(spark, input_path, table)
        if frame is None:
            if table in MIMIC4_REQUIRED_TABLES:
                raise FileNotFoundError(
                    f"input: required MIMIC-IV table {module}/{table} not found"
                )
            absent.append(f"{module}/{table}")
            empty = [F.lit(None).cast("string").alias(c) for c in (*columns, ROW_ID)]
            frame = spark.range(0).select(*empty)
        tables[table] = frame
    return tables, absent


def is_synthetic(spark: SparkSession, input_path: str) -> bool:
    """Return whether the input folder was written by the synthetic generator."""
    return storage.exists(spark, _join(input_path, SYNTHETIC_MARKER))


def read_uci(spark: SparkSession, input_path: str) -> DataFrame:
    """Return ``diabetic_data.csv`` (or ``.csv.gz``) as text columns; ``?`` stays literal."""
    for name in UCI_DATA_FILE_NAMES:
        path = _join(input_path, name)
        if storage.exists(spark, path):
            return _read_csv(spark, path, multiline=False)
    raise FileNotFoundError("input: diabetic_data.csv(.gz) not found")
