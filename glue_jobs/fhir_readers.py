"""Reader of a FHIR R4 Bulk Data export folder: one ``<Type>*.ndjson`` set per resource type.

Each type is read with an EXPLICIT schema of the fields the job uses (no inference: a field
of the wrong JSON type must not change the schema of the whole file) in PERMISSIVE mode with
a corrupt-record column, so a line that is not JSON, or whose used fields have the wrong JSON
type, stays a row: it goes to quarantine with its reason instead of failing the job or being
dropped. Each row keeps its text (``_line``) for telling exact copies from conflicting ones.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T  # noqa: N812 (house style)

from contracts.fhir import NDJSON_SUFFIX, REQUIRED_RESOURCE_TYPES, RESOURCE_TYPES
from glue_jobs import storage

CORRUPT_RECORD = "_corrupt_record"

_STRING = T.StringType()
CODING = T.StructType(
    [
        T.StructField("system", _STRING),
        T.StructField("code", _STRING),
        T.StructField("display", _STRING),
    ]
)
CODEABLE_CONCEPT = T.StructType(
    [T.StructField("coding", T.ArrayType(CODING)), T.StructField("text", _STRING)]
)
REFERENCE = T.StructType([T.StructField("reference", _STRING)])


def _resource(*fields: tuple[str, T.DataType]) -> T.StructType:
    """A resource schema: resourceType, id, the given fields and the corrupt-record column."""
    return T.StructType(
        [
            T.StructField("resourceType", _STRING),
            T.StructField("id", _STRING),
            *[T.StructField(name, kind) for name, kind in fields],
            T.StructField(CORRUPT_RECORD, _STRING),
        ]
    )


_EXTENSION = T.StructType(
    [
        T.StructField("url", _STRING),
        T.StructField(
            "extension",
            T.ArrayType(
                T.StructType([T.StructField("url", _STRING), T.StructField("valueCoding", CODING)])
            ),
        ),
    ]
)

#: The fields the job reads from each resource type (FHIR R4 element names).
SCHEMAS: dict[str, T.StructType] = {
    "Patient": _resource(
        ("gender", _STRING), ("birthDate", _STRING), ("extension", T.ArrayType(_EXTENSION))
    ),
    "Encounter": _resource(
        ("status", _STRING),
        ("class", CODING),
        ("subject", REFERENCE),
        ("period", T.StructType([T.StructField("start", _STRING), T.StructField("end", _STRING)])),
        ("priority", CODEABLE_CONCEPT),
        ("serviceType", CODEABLE_CONCEPT),
        (
            "hospitalization",
            T.StructType(
                [
                    T.StructField("admitSource", CODEABLE_CONCEPT),
                    T.StructField("dischargeDisposition", CODEABLE_CONCEPT),
                ]
            ),
        ),
        (
            "diagnosis",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("condition", REFERENCE),
                        T.StructField("rank", T.LongType()),
                    ]
                )
            ),
        ),
    ),
    "Condition": _resource(
        ("code", CODEABLE_CONCEPT),
        ("verificationStatus", CODEABLE_CONCEPT),
        ("subject", REFERENCE),
        ("encounter", REFERENCE),
    ),
    "Procedure": _resource(
        ("status", _STRING),
        ("code", CODEABLE_CONCEPT),
        ("subject", REFERENCE),
        ("encounter", REFERENCE),
        ("performedDateTime", _STRING),
    ),
    "MedicationRequest": _resource(
        ("status", _STRING),
        ("medicationCodeableConcept", CODEABLE_CONCEPT),
        ("subject", REFERENCE),
        ("encounter", REFERENCE),
        ("authoredOn", _STRING),
    ),
    "Observation": _resource(
        ("status", _STRING),
        ("category", T.ArrayType(CODEABLE_CONCEPT)),
        ("code", CODEABLE_CONCEPT),
        ("subject", REFERENCE),
        ("encounter", REFERENCE),
        ("effectiveDateTime", _STRING),
        (
            "valueQuantity",
            T.StructType([T.StructField("value", T.DoubleType()), T.StructField("unit", _STRING)]),
        ),
        ("interpretation", T.ArrayType(CODEABLE_CONCEPT)),
    ),
    "DocumentReference": _resource(
        ("status", _STRING),
        ("docStatus", _STRING),
        ("type", CODEABLE_CONCEPT),
        ("subject", REFERENCE),
        ("date", _STRING),
        (
            "content",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField(
                            "attachment",
                            T.StructType(
                                [
                                    T.StructField("contentType", _STRING),
                                    T.StructField("data", _STRING),
                                ]
                            ),
                        )
                    ]
                )
            ),
        ),
        ("context", T.StructType([T.StructField("encounter", T.ArrayType(REFERENCE))])),
    ),
}


def resource_files(spark: SparkSession, folder: str, resource_type: str) -> list[str]:
    """The export's files of one type: ``<Type>.ndjson``, ``<Type>.001.ndjson``, ..."""
    return storage.glob(spark, f"{folder.rstrip('/')}/{resource_type}*{NDJSON_SUFFIX}")


def read_resources(spark: SparkSession, paths: list[str], resource_type: str) -> DataFrame:
    """Read NDJSON files with the type's schema; malformed lines keep their text in
    ``_corrupt_record`` (their fields null). Blank lines are skipped by Spark's reader."""
    schema = SCHEMAS[resource_type]
    if not paths:
        return spark.createDataFrame([], schema)
    return (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .json(paths)
    )


def read_export(spark: SparkSession, folder: str) -> tuple[dict[str, DataFrame], list[str]]:
    """Every resource type the job reads and the optional types the export lacks."""
    frames: dict[str, DataFrame] = {}
    absent: list[str] = []
    for resource_type in RESOURCE_TYPES:
        paths = resource_files(spark, folder, resource_type)
        if not paths:
            if resource_type in REQUIRED_RESOURCE_TYPES:
                raise FileNotFoundError(f"input: no {resource_type}{NDJSON_SUFFIX} in the export")
            absent.append(resource_type)
        frames[resource_type] = read_resources(spark, paths, resource_type)
    return frames, absent
