"""Two segmentation runs -> gold.segment_migration in the catalog and `rfmlake segments diff`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.segmentation.job import run_segmentation
from rfmlake.settings import load_settings


def test_two_runs_give_migration_table_and_cli_matrix(lake: Lake, tmp_path: Path, features_table,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    first, second = date(2024, 6, 1), date(2024, 7, 1)
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=80, as_of=first))
    run_segmentation(RunContext(tmp_path, lake, load_settings(), as_of=first))
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=90, as_of=second, seed=4))
    report = run_segmentation(RunContext(tmp_path, lake, load_settings(overrides={"segmentation.refit": True}),
                                         as_of=second))
    assert any("aligned to the previous model" in note for note in report.notes)

    con = connect(lake)
    totals = dict(con.execute("""
        SELECT dimension, sum(customers) FROM gold.segment_migration
        WHERE from_as_of_date = DATE '2024-06-01' AND to_as_of_date = DATE '2024-07-01' GROUP BY 1""").fetchall())
    # 80 customers in run 1, 90 in run 2 (ids CUST-00000..), so 90 distinct customers across both.
    assert totals == {"rfm_segment": 90, "cluster_label": 90}
    entered = con.execute("""SELECT sum(customers) FROM gold.segment_migration
        WHERE dimension = 'rfm_segment' AND from_segment IS NULL""").fetchone()[0]
    assert entered == 10

    assert main(["segments", "diff", "--lake", str(lake.root), "--from", "2024-06-01", "--to", "2024-07-01"]) == 0
    out = capsys.readouterr().out
    assert "rfm_segment: 2024-06-01 -> 2024-07-01 (90 customers" in out and "(new)" in out
    assert main(["segments", "diff", "--lake", str(lake.root), "--from", "2024-05-01", "--to", "2024-07-01"]) == 1
    assert "2024-05-01 is not an as_of date" in capsys.readouterr().err
