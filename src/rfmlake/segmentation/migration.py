"""Segment migration: how many customers moved from which segment to which between two as_of
dates of gold.segment_membership_history, including customers who entered (from_segment null: not
scored at the earlier date) and exited (to_segment null: not scored at the later date).

gold.segment_migration holds every consecutive pair of as_of dates, for both segmentations
(dimension 'rfm_segment' and 'cluster_label'). It is derived from the history the segmentation job
has just written, so the job rebuilds it in the same stage (a dbt model would run before the
segmentation stage and always lag one run behind).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa

from rfmlake.errors import RfmlakeError

MIGRATION_TABLE = "segment_migration"
DIMENSIONS: tuple[str, ...] = ("rfm_segment", "cluster_label")
MIGRATION_SCHEMA = pa.schema([
    pa.field("dimension", pa.string(), nullable=False),
    pa.field("from_as_of_date", pa.date32(), nullable=False),
    pa.field("to_as_of_date", pa.date32(), nullable=False),
    pa.field("from_segment", pa.string()),
    pa.field("to_segment", pa.string()),
    pa.field("customers", pa.int64(), nullable=False),
])


def _dates(history: pd.DataFrame) -> list[date]:
    return sorted({pd.Timestamp(d).date() for d in history["as_of_date"].unique()})


def migration_between(history: pd.DataFrame, from_date: date, to_date: date,
                      dimension: str = "rfm_segment") -> pd.DataFrame:
    """Counts per (from_segment, to_segment) between two as_of dates present in `history`."""
    if dimension not in DIMENSIONS:
        raise RfmlakeError(f"dimension must be one of {list(DIMENSIONS)}, got {dimension!r}")
    available = _dates(history)
    for name, wanted in (("--from", from_date), ("--to", to_date)):
        if wanted not in available:
            listed = ", ".join(d.isoformat() for d in available) or "none"
            raise RfmlakeError(f"{name} {wanted.isoformat()} is not an as_of date of "
                               f"gold.segment_membership_history (available: {listed})")
    if from_date >= to_date:
        raise RfmlakeError(f"--from ({from_date.isoformat()}) must be before --to ({to_date.isoformat()})")
    day = pd.to_datetime(history["as_of_date"]).dt.date
    before = history.loc[day == from_date, ["customer_id", dimension]].rename(columns={dimension: "from_segment"})
    after = history.loc[day == to_date, ["customer_id", dimension]].rename(columns={dimension: "to_segment"})
    joined = before.merge(after, on="customer_id", how="outer")
    counts = (joined.groupby(["from_segment", "to_segment"], dropna=False).size()
              .rename("customers").reset_index())
    counts.insert(0, "to_as_of_date", to_date)
    counts.insert(0, "from_as_of_date", from_date)
    counts.insert(0, "dimension", dimension)
    counts["customers"] = counts["customers"].astype("int64")
    counts = counts.astype({"from_segment": "object", "to_segment": "object"})
    counts = counts.where(counts.notna(), None)
    # Entered/exited (null) sort after the named segments.
    ordered = counts.sort_values(["from_segment", "to_segment"], na_position="last", kind="mergesort")
    return ordered.reset_index(drop=True)


def consecutive_migrations(history: pd.DataFrame) -> pa.Table:
    """gold.segment_migration: every consecutive pair of as_of dates, both dimensions."""
    dates = _dates(history)
    frames = [migration_between(history, a, b, dimension)
              for dimension in DIMENSIONS for a, b in zip(dates, dates[1:], strict=False)]
    if not frames:
        return MIGRATION_SCHEMA.empty_table()
    frame = pd.concat(frames, ignore_index=True)
    return pa.Table.from_pandas(frame, schema=MIGRATION_SCHEMA, preserve_index=False)


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
