"""Web server access logs (Combined Log Format) -> silver.access_logs, with regexp_extract only.

`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`, e.g.
127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rfmlake.contract.entities import QuarantineReason
from rfmlake.ingest.bronze import LOG_LINE_COLUMN
from rfmlake.ingest.conform import V
from rfmlake.ingest.parsing import Check, col, iso_from_parts, shown, with_checks
from rfmlake.ingest.pii import token_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Quoted fields allow backslash-escaped quotes, as Apache and nginx write them.
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
COMBINED_LOG_FORMAT = (
    r"^(\S+) (\S+) (\S+) \[(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}:\d{2}:\d{2}) ([+-]\d{4})\] "
    r'"(\S+) (\S+) (\S+)" (\d{3}) (\d+|-) ' + _QUOTED + " " + _QUOTED + r"\s*$"
)


def _group(line: Column, index: int) -> Column:
    from pyspark.sql import functions as F

    return F.regexp_extract(line, COMBINED_LOG_FORMAT, index)


def _dash_null(value: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when((value != "-") & (value != ""), value)


def classify_access_logs(bronze: DataFrame, key: bytes) -> DataFrame:
    from pyspark.sql import functions as F

    line = col(LOG_LINE_COLUMN)
    iso = iso_from_parts(_group(line, 6), _group(line, 5), _group(line, 4), _group(line, 7), _group(line, 8))
    df = bronze.select(
        "*",
        line.rlike(COMBINED_LOG_FORMAT).alias("_matches"),
        token_column(_group(line, 1), key, "ip").alias(V + "ip_token"),
        token_column(_dash_null(_group(line, 3)), key, "user").alias(V + "remote_user_token"),
        iso.cast("timestamp").alias(V + "request_ts"),
        _group(line, 9).alias(V + "method"),
        _group(line, 10).alias(V + "path"),
        _group(line, 11).alias(V + "protocol"),
        _group(line, 12).cast("int").alias(V + "status"),
        F.when(_group(line, 13) == "-", F.lit(0).cast("bigint"))
        .otherwise(_group(line, 13).cast("bigint"))
        .alias(V + "bytes_sent"),
        _dash_null(_group(line, 14)).alias(V + "referrer"),
        _dash_null(_group(line, 15)).alias(V + "user_agent"),
    ).withColumn(V + "request_date", F.to_date(F.col(V + "request_ts")))
    checks = [
        Check(
            QuarantineReason.UNPARSABLE_LINE,
            ~F.coalesce(F.col("_matches"), F.lit(False)),
            F.concat(F.lit("not Combined Log Format: "), F.substring(F.coalesce(line, F.lit("")), 1, 200)),
        ),
        Check(
            QuarantineReason.UNPARSABLE_DATE,
            F.col(V + "request_ts").isNull(),
            shown("time", F.regexp_extract(line, r"\[([^\]]*)\]", 1)),
        ),
        Check(
            QuarantineReason.BAD_TYPE,
            F.col(V + "bytes_sent").isNull(),
            shown("bytes", _group(line, 13)),
        ),
    ]
    # Identical lines are kept: the same request twice in one second is real traffic, not a re-delivery.
    return with_checks(df, checks).drop("_matches")
