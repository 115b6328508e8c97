import os
import time
from pathlib import Path

import pyarrow as pa
import pytest

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect


def test_write_commit_and_read_back(lake: Lake) -> None:
    ref = lake.write_arrow("silver", "orders", pa.table({"order_id": ["a", "b"]}))
    assert lake.current("silver", "orders") == ref
    con = connect(lake)
    assert con.execute("SELECT count(*) FROM silver.orders").fetchone() == (2,)


def test_uncommitted_version_is_invisible(lake: Lake) -> None:
    lake.write_arrow("gold", "t", pa.table({"x": [1]}))
    # a writer that crashed after writing files but before commit
    orphan = Path(lake.new_version("gold", "t"))
    orphan.mkdir(parents=True)
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2, 3]}), orphan / "part-0.parquet")
    assert connect(lake).execute("SELECT count(*) FROM gold.t").fetchone() == (1,)


def test_commit_refuses_an_empty_version(lake: Lake) -> None:
    version = Path(lake.new_version("silver", "x"))
    version.mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no Parquet files"):
        lake.commit("silver", "x", version)
    assert lake.current("silver", "x") is None


def test_unknown_zone_is_rejected(lake: Lake) -> None:
    with pytest.raises(ValueError, match="unknown zone"):
        lake.table_dir("platinum", "x")


def test_vacuum_keeps_current_and_previous_and_removes_old_orphans(lake: Lake) -> None:
    refs = [lake.write_arrow("silver", "t", pa.table({"x": [i]})) for i in range(4)]
    orphan = Path(lake.new_version("silver", "t"))
    orphan.mkdir(parents=True)
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    removed = lake.vacuum(keep=2)
    remaining = sorted(p.name for p in (lake.table_dir("silver", "t") / "versions").iterdir())
    assert remaining == [refs[2].path.name, refs[3].path.name]
    assert str(orphan) in removed
    assert lake.current("silver", "t") == refs[3]


def test_vacuum_spares_a_young_uncommitted_version(lake: Lake) -> None:
    lake.write_arrow("silver", "t", pa.table({"x": [1]}))
    live = Path(lake.new_version("silver", "t"))
    live.mkdir(parents=True)  # a writer that is still running
    lake.vacuum()
    assert live.exists()


def test_exclusive_lock_refuses_a_second_holder(tmp_path) -> None:
    from rfmlake.lake.locks import exclusive_lock

    path = tmp_path / "x.lock"
    with exclusive_lock(path, RuntimeError("busy")):  # noqa: SIM117 - the outer holder must be visible
        with pytest.raises(RuntimeError, match="busy"), exclusive_lock(path, RuntimeError("busy")):
            pass
    with exclusive_lock(path, RuntimeError("busy")):  # released after the block
        pass


def test_pipeline_connections_hold_their_memory_limit_and_spill_folder(lake: Lake, tmp_path: Path) -> None:
    from rfmlake.lake.duck import connect_duckdb

    for make in (lambda d: connect(lake, memory_limit="256MB", temp_dir=d),
                 lambda d: connect_duckdb(lake, memory_limit="256MB", temp_dir=d)):
        scratch = tmp_path / f"scratch-{id(make)}"
        con = make(scratch)
        limit, temp = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
        assert limit == "244.1 MiB" and temp == str(scratch) and scratch.is_dir()
        con.close()
    unbounded = connect(lake)
    assert unbounded.execute("SELECT current_setting('temp_directory')").fetchone() == (".tmp",)
