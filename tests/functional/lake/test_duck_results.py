"""rfmlake.lake.duck.fetch and batches on the query shape that deadlocks DuckDB 1.5 when streamed: a
UNION ALL of two joins over Parquet whose result outgrows the streaming buffer (about a million rows
a side is enough; `con.execute(QUERY).to_arrow_table()` on it never returns, docs/adr/0024). Each
read runs in a child process with a deadline, so a regression fails the test instead of hanging
the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from rfmlake.lake.duck import batches

ROWS = 1_000_000
QUERY = ("SELECT o.c, p.name FROM o JOIN p USING (id) "
         "UNION ALL SELECT o.c, p.name FROM p JOIN o USING (id)")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("union_of_joins")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT i AS id, i % 100 AS c FROM range({ROWS}) t(i)) TO '{folder}/o.parquet'")
    con.execute(f"COPY (SELECT i AS id, 'x' || i AS name FROM range({ROWS}) t(i)) TO '{folder}/p.parquet'")
    con.close()
    return folder


def _run(folder: Path, read: str) -> str:
    script = textwrap.dedent(f"""
        import duckdb
        from rfmlake.lake.duck import batches, fetch
        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute("CREATE VIEW o AS SELECT * FROM '{folder}/o.parquet'")
        con.execute("CREATE VIEW p AS SELECT * FROM '{folder}/p.parquet'")
        QUERY = {QUERY!r}
        {read}
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_fetch_reads_a_union_of_joins_whole(tables: Path) -> None:
    out = _run(tables, "t = fetch(con, QUERY).to_arrow_table(); "
                       "print(t.num_rows, len(fetch(con, 'SELECT * FROM o WHERE c = ?', [7]).fetchall()))")
    assert out == f"{2 * ROWS} {ROWS // 100}"


def test_batches_streams_a_union_of_joins_in_bounded_batches(tables: Path) -> None:
    out = _run(tables, "sizes = [b.num_rows for b in batches(con, QUERY, 50_000)]; "
                       "print(sum(sizes), max(sizes) <= 50_000, len(sizes) > 1)")
    assert out == f"{2 * ROWS} True True"


def test_batches_keeps_the_order_of_the_query(tables: Path) -> None:
    ordered = "SELECT id FROM o WHERE c < 3 UNION ALL SELECT id FROM o WHERE c > 96 ORDER BY id DESC"
    out = _run(tables, f"ids = [i for b in batches(con, {ordered!r}, 1_000) for i in b.column(0).to_pylist()]; "
                       "print(len(ids), ids == sorted(ids, reverse=True))")
    assert out == f"{ROWS * 6 // 100} True"


def test_batches_reads_in_the_connections_time_zone() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # not the machine's: a cursor would fall back to that
    rows = [r for b in batches(con, "SELECT current_setting('TimeZone') AS z, "
                                    "CAST(TIMESTAMPTZ '2026-01-01 05:00:00+00' AS DATE) AS d", 10)
            for r in b.to_pylist()]
    assert rows == [{"z": "America/New_York", "d": date(2026, 1, 1)}]
    rows = [r for b in batches(con, "SELECT CAST(TIMESTAMPTZ '2026-01-01 03:00:00+00' AS DATE) AS d", 10)
            for r in b.to_pylist()]
    assert rows == [{"d": date(2025, 12, 31)}]  # 22:00 the day before in New York
