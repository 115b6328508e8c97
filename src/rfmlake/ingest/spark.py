"""One way to get a SparkSession, so local runs, tests and Glue 5.0 behave alike (UTC, no ANSI)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def get_spark(app_name: str = "rfmlake", master: str | None = None) -> SparkSession:
    """The active session if one exists (as on Glue), else a local one sized for this machine."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - exercised only without the spark extra
        from rfmlake.errors import RfmlakeError

        raise RfmlakeError("pyspark is not installed: pip install 'rfmlake[spark]'") from None

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    master = master or os.environ.get("RFMLAKE_SPARK_MASTER", "local[*]")
    if master.startswith("local"):
        # A local run talks to itself only; this also silences the "hostname resolves to loopback" warning.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("RFMLAKE_SPARK_SHUFFLE_PARTITIONS", "8"))
        .config("spark.driver.memory", os.environ.get("RFMLAKE_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # the CLI shows its own per-stage progress
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
