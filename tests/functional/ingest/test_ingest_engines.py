"""One SQL source, two engines: the crafted landing ingested on Spark (what Glue runs) gives the
same bronze rows, silver tables, quarantine and reconciliation as on DuckDB (the local default)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ingest_rerun import snapshot  # type: ignore[import-not-found]

pytestmark = pytest.mark.spark


def test_spark_and_duckdb_build_the_same_lake(spark, ingested, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from ingest_landing_fixture import TEST_KEY, run_once  # type: ignore[import-not-found]

    from rfmlake.ingest.engine import SparkEngine

    monkeypatch.setenv("RFMLAKE_PII_KEY", TEST_KEY)
    shutil.copytree(ingested.landing, tmp_path / "landing")
    on_spark = run_once(tmp_path, SparkEngine(spark))
    duck, sparked = snapshot(ingested.ctx.lake), snapshot(on_spark.ctx.lake)
    assert set(duck) == set(sparked)
    for table in sorted(duck):
        if table == "bronze.ingest_files":
            continue  # the manifest records when and by which run a file was read
        assert sparked[table] == duck[table], table
    assert on_spark.report.quarantine_counts == ingested.report.quarantine_counts
    assert [r.__dict__ for r in on_spark.report.reconciliation] == [r.__dict__ for r in ingested.report.reconciliation]


# Hostile files (tests/hostile_landing.py) both engines must read the same way: encodings and line
# ends, quoted newlines, records beyond DuckDB's 2 MB line default, odd ids, JSON shapes, Parquet
# types, impossible dates and amounts, other log formats, empty and header-only files.
HOSTILE_ON_BOTH = (
    "customers/bom.csv", "customers/cr-endings.csv", "customers/quoted-newline.csv", "customers/huge-record.csv",
    "customers/odd-ids.csv", "customers/types.jsonl", "customers/odd-types.parquet", "customers/header-only.csv",
    "customers/empty.csv", "orders/dates.csv", "orders/amounts.csv", "orders/native-types.parquet",
    "order_items/discounts.csv", "order_items/shapes.jsonl", "products/ragged.csv", "products/unicode.csv",
    "events/mixed.jsonl", "events/bom-crlf.jsonl", "events/huge-line.jsonl", "events/odd.jsonl",
    "access_logs/other-formats.log", "access_logs/dates.log", "access_logs/nul.log", "aws_rfm_guidance/odd.csv",
)


def test_spark_and_duckdb_read_hostile_files_the_same(spark, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest_landing_fixture import TEST_KEY, run_once  # type: ignore[import-not-found]

    from hostile_landing import CASES, write_base, write_case  # type: ignore[import-not-found]
    from rfmlake.ingest.engine import SparkEngine

    monkeypatch.setenv("RFMLAKE_PII_KEY", TEST_KEY)
    by_path = {c.path: c for c in CASES}
    for engine in ("duckdb", "spark"):
        write_base(tmp_path / engine / "landing")
        for path in HOSTILE_ON_BOTH:
            write_case(tmp_path / engine / "landing", by_path[path])
    duck = run_once(tmp_path / "duckdb")
    on_spark = run_once(tmp_path / "spark", SparkEngine(spark))
    duck_tables, spark_tables = snapshot(duck.ctx.lake), snapshot(on_spark.ctx.lake)
    assert set(duck_tables) == set(spark_tables)
    for table in sorted(duck_tables):
        if table != "bronze.ingest_files":
            assert spark_tables[table] == duck_tables[table], table
    assert on_spark.report.quarantine_counts == duck.report.quarantine_counts
    assert sorted(r.__dict__.items() for r in on_spark.report.reconciliation) == sorted(
        r.__dict__.items() for r in duck.report.reconciliation)
