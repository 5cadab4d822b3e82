"""File-system operations through Hadoop's FileSystem API, so local paths and S3 behave alike.

Used to find source tables and to publish outputs: datasets are written to a staging folder
and renamed into place, and ``manifest.json`` (the completion marker) is written last.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def _path_and_fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm: Any = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return hadoop_path, fs


def exists(spark: SparkSession, path: str) -> bool:
    """Return whether a file or folder exists."""
    hadoop_path, fs = _path_and_fs(spark, path)
    return bool(fs.exists(hadoop_path))


def is_directory(spark: SparkSession, path: str) -> bool:
    """Return whether the path is an existing folder."""
    hadoop_path, fs = _path_and_fs(spark, path)
    return bool(fs.exists(hadoop_path) and fs.getFileStatus(hadoop_path).isDirectory())


def delete(spark: SparkSession, path: str) -> None:
    """Delete a file or folder (recursively) if it exists."""
    hadoop_path, fs = _path_and_fs(spark, path)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, True)


def replace(spark: SparkSession, source: str, destination: str) -> None:
    """Move ``source`` to ``destination``, removing what was there."""
    source_path, fs = _path_and_fs(spark, source)
    destination_path, _ = _path_and_fs(spark, destination)
    if fs.exists(destination_path):
        fs.delete(destination_path, True)
    fs.mkdirs(destination_path.getParent())
    if not fs.rename(source_path, destination_path):
        raise OSError("could not move a staged output into place")


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a UTF-8 text file, overwriting it."""
    hadoop_path, fs = _path_and_fs(spark, path)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str:
    """Read a small UTF-8 text file."""
    return "\n".join(row.value for row in spark.read.text(path, wholetext=True).collect())


def glob(spark: SparkSession, pattern: str) -> list[str]:
    """Return the paths matching a glob pattern (``folder/Type*.ndjson``), sorted; [] if none."""
    hadoop_path, fs = _path_and_fs(spark, pattern)
    statuses = fs.globStatus(hadoop_path)
    if statuses is None:
        return []
    return sorted(str(status.getPath().toString()) for status in statuses)
