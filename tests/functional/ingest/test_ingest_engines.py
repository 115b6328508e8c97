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
