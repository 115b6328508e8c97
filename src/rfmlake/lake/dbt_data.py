"""The data dbt-athena's tables keep under the lake (`gold/_dbt/`, infra's DBT_DATA_DIR), and the
part of it no table reads any more.

dbt-athena writes each build of a mart to a new folder (`s3_data_naming: schema_table_unique`). The
project keeps a replaced mart's data where it was (dbt/macros/keep_replaced_data.sql), so that a
failed run's rollback can point the mart back at it (rfmlake.pipeline.rollback); what no table
reads is deleted when no rollback can need it any more: at the start of the next run and by erasure.
"""

from __future__ import annotations

import os

from rfmlake.lake.storage import Storage
from rfmlake.lake.tables import Lake

DBT_DATA_ENV = "RFMLAKE_ATHENA_S3_DATA_DIR"
DBT_DATA_FOLDER = "gold/_dbt"  # infra: dbt-athena's tables keep their data inside the gold zone


def dbt_data_location(lake: Lake) -> str:
    configured = os.environ.get(DBT_DATA_ENV)
    return configured.rstrip("/") if configured else Storage.join(lake.location, DBT_DATA_FOLDER)


def _live_locations(lake: Lake) -> list[str]:
    live: list[str] = []
    for ref in lake.tables():
        live.extend([p.uri for p in ref.partitions] if ref.is_partitioned else [ref.uri])
        if ref.schema_uri:
            live.append(ref.schema_uri)
    return [uri.rstrip("/") for uri in live]


def delete_unread_dbt_data(lake: Lake) -> int:
    """Delete the files under dbt-athena's data folder that no current table of the lake reads
    (replaced marts, temporary tables a failed dbt run left); returns how many."""
    folder = dbt_data_location(lake)
    live = _live_locations(lake)
    removed = 0
    for uri in lake.storage.walk(folder):
        if not any(uri == loc or uri.startswith(loc + "/") for loc in live):
            lake.storage.delete_file(uri)
            removed += 1
    return removed
