"""gold.engagement_segment_history: each person's engagement segment (gold.customer_engagement, built
by dbt) at every as_of date, one partition per date, as gold.segment_membership_history keeps the
RFM segments. gold.customer_engagement holds only the latest run; journeys that trigger on entering
or leaving an engagement segment ("Abandoned a cart") compare two dates of this table
(rfmlake.journeys.triggers). The segmentation stage records it after the RFM history, so both
histories hold the same as_of dates; a re-run for the same as_of replaces its partition.
"""

from __future__ import annotations

import pyarrow as pa

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake, TableRef
from rfmlake.lake.duck import connect_duckdb, fetch
from rfmlake.lake.tables import parquet_scan, partition_key

ENGAGEMENT_TABLE = "customer_engagement"
ENGAGEMENT_HISTORY_TABLE = "engagement_segment_history"
ENGAGEMENT_HISTORY_PARTITION_BY: tuple[str, ...] = ("as_of_date",)
ENGAGEMENT_HISTORY_SCHEMA = pa.schema([
    ("as_of_date", pa.date32()), ("person_id", pa.string()), ("customer_id", pa.string()),
    ("engagement_segment", pa.string()),
])


def record_engagement_history(lake: Lake) -> TableRef | None:
    """Write gold.customer_engagement's as_of as one partition of gold.engagement_segment_history
    (streamed by DuckDB, never held whole in Python). None when the lake has no engagement yet."""
    from rfmlake.segmentation.history import _copy_partition, _data_schema

    ref = lake.current("gold", ENGAGEMENT_TABLE)
    if ref is None:
        return None
    scan = parquet_scan(ref)
    con = connect_duckdb(lake)
    try:
        days = [r[0] for r in fetch(con, f"SELECT DISTINCT as_of_date FROM {scan}").fetchall()]
        if not days:
            return None  # nobody at all: nothing to remember for this as_of
        if len(days) != 1:
            raise RfmlakeError(f"gold.{ENGAGEMENT_TABLE} holds several as_of dates ({sorted(days)}); "
                               "it is rebuilt for one as_of per run")
        key = partition_key({"as_of_date": days[0].isoformat()})
        schema = _data_schema(ENGAGEMENT_HISTORY_SCHEMA, ENGAGEMENT_HISTORY_PARTITION_BY)
        version = lake.new_version("gold", ENGAGEMENT_HISTORY_TABLE)
        _copy_partition(lake, con, version, key, f"SELECT {', '.join(schema.names)} FROM {scan} ORDER BY person_id",
                        schema)
    finally:
        con.close()
    return lake.commit_partitions("gold", ENGAGEMENT_HISTORY_TABLE, ENGAGEMENT_HISTORY_PARTITION_BY,
                                  add={key: version}, schema=ENGAGEMENT_HISTORY_SCHEMA)
