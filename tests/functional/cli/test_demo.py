"""`rfmlake demo --order-lines 50` (issue 21): the smallest demo runs end to end (both runs: the
first and the one measuring the demo journey), publishes segments, says which models it skipped and
why, and `rfmlake report` and `rfmlake dashboard` work on its lake and say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from report_pages import page_text, render_dashboard, render_report, section_text
from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.reporting import find_run

pytestmark = pytest.mark.slow


def test_the_smallest_demo_publishes_segments_and_notes_every_skipped_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dir", str(tmp_path), "--order-lines", "50"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    lake = tmp_path / "lake"

    summary = json.loads((find_run(lake) / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in summary["stages"]}
    assert set(status.values()) <= {"succeeded", "skipped"}, status
    assert status["segmentation"] == "succeeded" and status["customer_value"] == "skipped"
    con = connect(Lake(lake))
    try:
        scored, named = con.execute("SELECT count(*), count(rfm_segment) FROM gold.customer_rfm").fetchone()
        valued = con.execute("SELECT count(*) FROM gold.customer_value").fetchone()[0]
    finally:
        con.close()
    assert scored == named > 0 and valued == 0

    value_note = next(n for n in summary["notes"] if n.startswith("customer_value: "))
    clustering_note = next(n for n in summary["notes"] if n.startswith("segmentation: clustering skipped: "))
    assert "at least 50 customers" in value_note  # value.min_customers
    # The first run's notes are printed under its stage table, as the user sees them (the second run,
    # which measures the demo journey, prints the journey's results).
    first_run = min(p for p in Lake(lake).runs_dir.iterdir() if p.is_dir())
    first_notes = json.loads((first_run / "summary.json").read_text())["notes"]
    assert {n.split(":")[0] for n in first_notes} >= {"customer_value", "segmentation"}
    for note in first_notes:
        assert note in printed

    report = render_report(lake, tmp_path / "report.html")
    assert ("Skipped: nothing was fitted or published (gold.customer_value is empty for this run). "
            + value_note.removeprefix("customer_value: ")) in section_text(report, "customer-value")
    assert clustering_note.removeprefix("segmentation: clustering skipped: ") in section_text(report, "k-selection")
    dashboard = page_text(render_dashboard(lake, tmp_path / "dashboard.html"))
    assert "gold.customer_value is empty: the customer value stage was skipped in the latest run" in dashboard
