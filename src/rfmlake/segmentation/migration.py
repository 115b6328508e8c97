"""Segment migration: how many customers moved from which segment to which between two as_of
dates of gold.segment_membership_history, including customers who entered (from_segment null: not
scored at the earlier date) and exited (to_segment null: not scored at the later date).

gold.segment_migration holds every consecutive pair of as_of dates, for both segmentations
(dimension 'rfm_segment' and 'cluster_label'), one partition per to_as_of_date. A run adds the pair
that ends at its as_of (rfmlake.segmentation.history), computed by DuckDB from the two history
partitions: the work is two customer lists, never the whole history. A dbt model would run before
the segmentation stage and always lag one run behind, so the stage writes it.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from rfmlake.errors import RfmlakeError
from rfmlake.lake.duck import fetch

MIGRATION_TABLE = "segment_migration"
MIGRATION_PARTITION_BY: tuple[str, ...] = ("to_as_of_date",)
DIMENSIONS: tuple[str, ...] = ("rfm_segment", "cluster_label")
MIGRATION_SCHEMA = pa.schema([
    pa.field("dimension", pa.string(), nullable=False),
    pa.field("from_as_of_date", pa.date32(), nullable=False),
    pa.field("to_as_of_date", pa.date32(), nullable=False),
    pa.field("from_segment", pa.string()),
    pa.field("to_segment", pa.string()),
    pa.field("customers", pa.int64(), nullable=False),
])


def check_dimension(dimension: str) -> str:
    if dimension not in DIMENSIONS:
        raise RfmlakeError(f"dimension must be one of {list(DIMENSIONS)}, got {dimension!r}")
    return dimension


def migration_sql(before: str, after: str, from_date: date, to_date: date,
                  dimensions: tuple[str, ...] = DIMENSIONS) -> str:
    """Counts per (dimension, from_segment, to_segment) between two membership lists, given as
    DuckDB table expressions holding customer_id and the dimension columns. Ordered by dimension
    (as listed), then segment names with entered/exited (null) last."""
    parts = []
    for rank, dimension in enumerate(map(check_dimension, dimensions)):
        parts.append(f"""
        SELECT {rank} AS rank, '{dimension}' AS dimension,
               DATE '{from_date.isoformat()}' AS from_as_of_date, DATE '{to_date.isoformat()}' AS to_as_of_date,
               b.{dimension} AS from_segment, a.{dimension} AS to_segment, count(*)::BIGINT AS customers
        FROM (SELECT customer_id, {dimension} FROM {before}) AS b
        FULL OUTER JOIN (SELECT customer_id, {dimension} FROM {after}) AS a ON a.customer_id = b.customer_id
        GROUP BY ALL""")
    return (f"SELECT dimension, from_as_of_date, to_as_of_date, from_segment, to_segment, customers "
            f"FROM ({' UNION ALL '.join(parts)}) "
            "ORDER BY rank, from_segment NULLS LAST, to_segment NULLS LAST")


def migration_table(con: duckdb.DuckDBPyConnection, before: str, after: str, from_date: date, to_date: date,
                    dimensions: tuple[str, ...] = DIMENSIONS) -> pa.Table:
    """gold.segment_migration rows for one pair of dates (MIGRATION_SCHEMA)."""
    table = fetch(con, migration_sql(before, after, from_date, to_date, dimensions)).fetch_arrow_table()
    return table.cast(MIGRATION_SCHEMA)


def render_matrix(counts: pd.DataFrame) -> str:
    """A from x to table of counts; '(new)' and '(gone)' stand for entered and exited."""
    if counts.empty:
        return "(no customers at either date)"
    frame = counts.assign(from_segment=counts["from_segment"].fillna("(new)"),
                          to_segment=counts["to_segment"].fillna("(gone)"))
    matrix = frame.pivot_table(index="from_segment", columns="to_segment", values="customers",
                               aggfunc="sum", fill_value=0)
    order_rows = sorted(matrix.index, key=lambda s: (s == "(new)", s))
    order_cols = sorted(matrix.columns, key=lambda s: (s == "(gone)", s))
    matrix = matrix.loc[order_rows, order_cols]
    width = max(len(str(c)) for c in [*order_cols, "from \\ to"]) + 2
    first = max(len(str(r)) for r in [*order_rows, "from \\ to"]) + 2
    lines = ["from \\ to".ljust(first) + "".join(str(c).rjust(width) for c in order_cols)]
    for row in order_rows:
        lines.append(str(row).ljust(first) + "".join(str(int(matrix.at[row, c])).rjust(width) for c in order_cols))
    return "\n".join(lines)
