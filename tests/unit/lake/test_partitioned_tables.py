"""Partitioned tables: one immutable version folder per partition, changed in one pointer write."""

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.lake.tables import partition_key

BY = ("as_of_date",)


def _rows(lake: Lake, sql: str) -> list[tuple]:
    con = connect(lake)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _history(day: str, customers: list[str]) -> pa.Table:
    return pa.table({"as_of_date": [day] * len(customers), "customer_id": customers})


def test_partition_columns_live_in_folder_names_and_keep_their_type(lake: Lake) -> None:
    from datetime import date

    table = pa.table({"customer_id": ["a"], "as_of_date": pa.array([date(2026, 1, 1)], pa.date32())})
    ref = lake.write_partitions("gold", "h", BY, table)
    data_file = lake.files(ref)[0]
    assert pq.read_schema(data_file).names == ["customer_id"]  # as Spark and DuckDB write them
    assert _rows(lake, "SELECT as_of_date, customer_id FROM gold.h WHERE as_of_date = DATE '2026-01-01'") == [
        (date(2026, 1, 1), "a")]
    assert lake.read_arrow(ref).equals(table)


def test_partitions_are_added_replaced_and_dropped(lake: Lake) -> None:
    lake.write_partitions("gold", "h", BY, _history("2026-01-01", ["a", "b"]))
    lake.write_partitions("gold", "h", BY, _history("2026-01-02", ["a"]))
    assert _rows(lake, "SELECT as_of_date, count(*) FROM gold.h GROUP BY 1 ORDER BY 1") == [
        ("2026-01-01", 2), ("2026-01-02", 1)]
    # a rerun for one as_of replaces that partition only
    lake.write_partitions("gold", "h", BY, _history("2026-01-02", ["a", "b", "c"]))
    assert _rows(lake, "SELECT as_of_date, count(*) FROM gold.h GROUP BY 1 ORDER BY 1") == [
        ("2026-01-01", 2), ("2026-01-02", 3)]
    ref = lake.commit_partitions("gold", "h", BY, drop={partition_key({"as_of_date": "2026-01-01"})})
    assert [p.key for p in ref.partitions] == ["as_of_date=2026-01-02"]
    assert lake.count_rows(ref) == 3


def test_an_uncommitted_partition_is_invisible(lake: Lake) -> None:
    lake.write_partitions("gold", "h", BY, _history("2026-01-01", ["a"]))
    orphan = Path(lake.new_version("gold", "h")) / "as_of_date=2026-01-09"
    orphan.mkdir(parents=True)
    pq.write_table(_history("2026-01-09", ["x", "y"]), orphan / "part-0.parquet")
    assert _rows(lake, "SELECT count(*) FROM gold.h") == [(1,)]


def test_an_empty_partitioned_table_keeps_its_columns(lake: Lake) -> None:
    schema = pa.schema([("entity", pa.string()), ("reason", pa.string()), ("_file", pa.string())])
    lake.commit_partitions("bronze", "q", ("_file",), schema=schema)
    assert _rows(lake, "SELECT entity, reason, count(*) FROM bronze.q GROUP BY ALL") == []
    assert lake.count_rows(lake.require("bronze", "q")) == 0
    assert lake.read_arrow(lake.require("bronze", "q")).schema.names == ["entity", "reason", "_file"]


def test_partitions_with_different_columns_read_by_name(lake: Lake) -> None:
    by = ("_file",)
    lake.write_partitions("bronze", "c", by, pa.table({"_file": ["f1"], "customer_id": ["1"]}))
    lake.write_partitions("bronze", "c", by, pa.table({"_file": ["f2"], "customer_id": ["2"], "loyalty": ["gold"]}))
    assert _rows(lake, "SELECT customer_id, loyalty FROM bronze.c ORDER BY 1") == [("1", None), ("2", "gold")]


def test_partition_rules_are_enforced(lake: Lake) -> None:
    lake.write_partitions("gold", "h", BY, _history("2026-01-01", ["a"]))
    with pytest.raises(ValueError, match="partitioned by"):
        lake.commit_partitions("gold", "h", ("other",), drop={"other=1"})
    lake.write_arrow("gold", "flat", pa.table({"x": [1]}))
    with pytest.raises(ValueError, match="not a partitioned table"):
        lake.write_partitions("gold", "flat", BY, _history("2026-01-01", ["a"]))
    empty = lake.new_version("gold", "h")
    (Path(empty) / "as_of_date=2026-01-05").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no Parquet files"):
        lake.commit_partitions("gold", "h", BY, add={"as_of_date=2026-01-05": empty})
    with pytest.raises(ValueError, match="invalid partition values"):
        partition_key({"as_of_date": "a/b"})


def test_vacuum_keeps_current_and_just_replaced_partition_versions(lake: Lake) -> None:
    first = lake.write_partitions("gold", "h", BY, _history("2026-01-01", ["a"]))
    second = lake.write_partitions("gold", "h", BY, _history("2026-01-01", ["b"]))
    third = lake.write_partitions("gold", "h", BY, _history("2026-01-01", ["c"]))
    orphan = Path(lake.new_version("gold", "h"))
    (orphan / "as_of_date=2026-01-01").mkdir(parents=True)
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    live = Path(lake.new_version("gold", "h"))
    (live / "as_of_date=2026-01-02").mkdir(parents=True)  # a writer still running
    removed = lake.vacuum()
    kept = sorted(p.name for p in (lake.table_dir("gold", "h") / "versions").iterdir())
    assert kept == sorted([second.partitions[0].version, third.partitions[0].version, live.name])
    assert str(Path(first.partitions[0].uri).parent) in removed and str(orphan) in removed
    assert live.exists()
    assert _rows(lake, "SELECT customer_id FROM gold.h") == [("c",)]


def test_a_transaction_commits_every_table_or_none(lake: Lake) -> None:
    lake.write_arrow("silver", "a", pa.table({"x": [1]}))
    before = lake.require("silver", "a")
    with pytest.raises(RuntimeError), lake.transaction():
        lake.write_arrow("silver", "a", pa.table({"x": [2]}))
        lake.write_partitions("silver", "b", BY, _history("2026-01-01", ["c"]))
        assert lake.count_rows(lake.require("silver", "a")) == 1  # the block sees its own commits
        raise RuntimeError("a stage failed after writing")
    assert lake.current("silver", "a") == before and lake.current("silver", "b") is None
    with lake.transaction():
        lake.write_arrow("silver", "a", pa.table({"x": [2, 3]}))
        lake.write_partitions("silver", "b", BY, _history("2026-01-01", ["c"]))
        assert _rows(Lake(lake.root), "SELECT count(*) FROM silver.a") == [(1,)]  # other readers: not yet
    assert _rows(lake, "SELECT count(*) FROM silver.a") == [(2,)]
    assert _rows(lake, "SELECT count(*) FROM silver.b") == [(1,)]


def test_recover_rolls_back_a_transaction_killed_while_applying(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    lake.write_arrow("silver", "a", pa.table({"x": [1]}))
    before = lake.require("silver", "a")
    real = Lake._write_pointer
    calls: list[str] = []

    def dies_on_second(self: Lake, zone: str, name: str, pointer):  # type: ignore[no-untyped-def]
        calls.append(name)
        if len(calls) == 2:
            raise SystemExit("killed")  # as far as the lake can tell, the process is gone
        return real(self, zone, name, pointer)

    monkeypatch.setattr(Lake, "_write_pointer", dies_on_second)
    with pytest.raises(SystemExit), lake.transaction():
        lake.write_arrow("silver", "a", pa.table({"x": [2]}))
        lake.write_partitions("silver", "b", BY, _history("2026-01-01", ["c"]))
    monkeypatch.setattr(Lake, "_write_pointer", real)
    assert lake.current("silver", "a") != before  # half applied: a moved, b did not
    assert Lake(lake.root).recover() == ["silver.a"]
    assert lake.current("silver", "a") == before and lake.current("silver", "b") is None
    assert Lake(lake.root).recover() == []
