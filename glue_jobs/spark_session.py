"""Local SparkSession builder shared by the local entrypoint, the benchmark and the tests."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

LOCAL_MASTER = "local[2]"
DEFAULT_DRIVER_MEMORY = "3g"
DEFAULT_SHUFFLE_PARTITIONS = 8
SESSION_TIME_ZONE = "UTC"


def build_local_session(
    app_name: str = "readmission-etl",
    master: str = LOCAL_MASTER,
    driver_memory: str = DEFAULT_DRIVER_MEMORY,
    shuffle_partitions: int = DEFAULT_SHUFFLE_PARTITIONS,
) -> SparkSession:
    """Return a local-mode session sized for a 2-core laptop; UTC so intervals ignore DST.

    ``SPARK_LOCAL_IP`` is honoured (defaulting to loopback) so no network interface is needed.
    Driver memory only takes effect when this call starts the JVM.
    """
    local_ip = os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.bindAddress", local_ip)
        .config("spark.driver.host", local_ip)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", SESSION_TIME_ZONE)
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "false")
        .getOrCreate()
    )
