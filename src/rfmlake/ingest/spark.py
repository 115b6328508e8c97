"""One way to get a SparkSession, so local runs, tests and Glue 5.0 behave alike (UTC, no ANSI)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Set in the driver's environment by the runtimes that start it: Glue, and spark-submit (through
# which Glue, EMR and any cluster launch a Python driver; its JVM already holds the master).
_PROVIDED_MASTER_ENV = ("GLUE_VERSION", "GLUE_PYTHON_VERSION", "PYSPARK_GATEWAY_PORT")


def local_master(master: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The master to set on the builder, or None when the environment provides one: under Glue
    (awsglue importable or Glue's markers), when spark-submit started this driver, or when a
    SparkContext is already running. Setting one there would pin the job to the driver alone.
    An explicit `master` or RFMLAKE_SPARK_MASTER wins; the local default is local[*]."""
    env = os.environ if env is None else env
    if master or env.get("RFMLAKE_SPARK_MASTER"):
        return master or env["RFMLAKE_SPARK_MASTER"]
    if any(env.get(name) for name in _PROVIDED_MASTER_ENV) or importlib.util.find_spec("awsglue") is not None:
        return None
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        return None
    return "local[*]"


def _similarity_jars() -> list[str]:
    """splink's string-similarity UDFs (Jaro-Winkler, Damerau-Levenshtein), shipped in its wheel, for
    identity matching on Spark (rfmlake.identity); none where splink is not installed."""
    try:
        from splink.internals.spark.jar_location import similarity_jar_location
    except ImportError:
        return []
    return [similarity_jar_location()]


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
    master = local_master(master)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    if master is not None and master.startswith("local"):
        # A local run talks to itself only; this also silences the "hostname resolves to loopback" warning.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        builder
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
    jars = _similarity_jars()
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
